// expect-output: PASS linux shootdown ipis go only to cpus running the space
/* TLB shootdowns are exact and rare (issue 13 item 5), counted by
 * /proc/meminfo's TlbShootdownIpis/TlbRemotePages/TlbRemoteFull rows, on
 * the 4-CPU boot (this program runs alone there), in a process of 4
 * threads:
 *  - the 3 others asleep (a futex wait; they ran before, on other CPUs):
 *    a munmap and an mprotect by the main thread ask no other CPU;
 *  - all 4 threads touched the range and the 3 others spin (no system
 *    call) on the other 3 CPUs: one munmap of 8 pages asks exactly those 3
 *    CPUs, once each, for 8 pages each; one mprotect of 8 pages likewise;
 *    a munmap of 40 pages asks each for one full flush.
 * The ranges lie inside a larger mapping whose first page stays mapped,
 * so no page table is freed with them (that would be a second round). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../linux/linux_check.h"
#include "smp_spin.h"

#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129
#define OTHERS 3
#define AREA_PAGES 128

static volatile int phase, ready[OTHERS], sleeping[OTHERS];
static volatile unsigned long beat[OTHERS];
static char *volatile target;
static volatile long target_pages;
static volatile int futex_word;

static void touch(char *p, long pages)
{
    for (long i = 0; i < pages; i++)
        ((volatile char *)p)[i * 4096] += 1;
}

static void *other(void *arg)
{
    int me = (int)(intptr_t)arg;
    /* Phase 0: sleep in a futex wait until the main thread wakes us. */
    sleeping[me] = 1;
    while (__atomic_load_n(&futex_word, __ATOMIC_SEQ_CST) == 0)
        syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, 0, 0, 0);
    /* Then, each phase: touch the target and spin until the next. */
    for (int seen = 1; seen < 4; seen++) {
        while (phase < seen)
            ;
        touch(target, target_pages);
        ready[me] = seen;
        while (phase == seen)
            beat[me]++;
    }
    return 0;
}

static int all_ready(int seen)
{
    for (int i = 0; i < OTHERS; i++)
        if (ready[i] != seen)
            return 0;
    return 1;
}

/* Whether all the others run right now: each one's beat moves while the
 * main thread spins (no system call) for a while. Once all four threads
 * run at once, none waits for a CPU, so none is preempted. */
static int all_running(void)
{
    unsigned long before[OTHERS];
    for (int i = 0; i < OTHERS; i++)
        before[i] = beat[i];
    for (volatile int k = 0; k < 200000; k++)
        ;
    for (int i = 0; i < OTHERS; i++)
        if (beat[i] == before[i])
            return 0;
    return 1;
}

static void expect(struct shootdowns before, long ipis, long pages, long full, const char *what)
{
    struct shootdowns after = read_shootdowns();
    long d_ipis = after.ipis - before.ipis, d_pages = after.pages - before.pages,
         d_full = after.full - before.full;
    printf("%s: %ld shootdown IPIs, %ld remote pages, %ld remote full flushes\n", what, d_ipis,
           d_pages, d_full);
    CHECK(before.ipis >= 0 && after.ipis >= 0);
    CHECK(d_ipis == ipis);
    CHECK(d_pages == pages);
    CHECK(d_full == full);
}

int main(void)
{
    char *area = mmap(0, AREA_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(area != MAP_FAILED);
    touch(area, 1); /* keeps the area's page table in use */
    pthread_t t[OTHERS];
    for (int i = 0; i < OTHERS; i++)
        CHECK(pthread_create(&t[i], 0, other, (void *)(intptr_t)i) == 0);
    for (int i = 0; i < OTHERS; i++)
        while (!sleeping[i])
            usleep(1000);
    usleep(200000); /* each is in its futex wait by now */

    /* Only the caller touched (the others sleep): no other CPU asked. */
    touch(area + 8 * 4096, 8);
    struct shootdowns before = read_shootdowns();
    CHECK(mprotect(area + 8 * 4096, 8 * 4096, PROT_READ) == 0);
    expect(before, 0, 0, 0, "mprotect, only the caller touched");
    before = read_shootdowns();
    CHECK(munmap(area + 8 * 4096, 8 * 4096) == 0);
    expect(before, 0, 0, 0, "munmap, only the caller touched");

    /* All four touched; the others spin on the other three CPUs. */
    __atomic_store_n(&futex_word, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, OTHERS, 0, 0, 0);
    const struct {
        long first, pages;
        int unmap;
        long full;
        const char *what;
    } steps[3] = {
        {16, 8, 1, 0, "munmap of 8 pages all four touched"},
        {32, 8, 0, 0, "mprotect of 8 pages all four touched"},
        {48, 40, 1, 1, "munmap of 40 pages all four touched"},
    };
    for (int s = 0; s < 3; s++) {
        char *p = area + steps[s].first * 4096;
        long pages = steps[s].pages;
        touch(p, pages);
        target = p;
        target_pages = pages;
        phase = s + 1;
        CHECK(SPIN_UNTIL(all_ready(s + 1) && all_running(), 20));
        before = read_shootdowns();
        if (steps[s].unmap)
            CHECK(munmap(p, pages * 4096) == 0);
        else
            CHECK(mprotect(p, pages * 4096, PROT_READ) == 0);
        if (steps[s].full)
            expect(before, OTHERS, 0, OTHERS, steps[s].what);
        else
            expect(before, OTHERS, OTHERS * pages, 0, steps[s].what);
    }
    phase = 4;
    for (int i = 0; i < OTHERS; i++)
        CHECK(pthread_join(t[i], 0) == 0);
    CHECK(munmap(area, AREA_PAGES * 4096) == 0);
    if (failures == 0)
        printf("PASS linux shootdown ipis go only to cpus running the space\n");
    return failures != 0;
}
