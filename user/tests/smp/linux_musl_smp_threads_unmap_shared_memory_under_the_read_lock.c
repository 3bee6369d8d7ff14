// expect-output: PASS linux threads unmap shared memory under the read lock
/* Issue 13 item 4 for shared memory: mmap, munmap and mprotect of
 * MAP_SHARED | MAP_ANON memory go under the read side of the kernel lock
 * with the space's own lock (/proc/meminfo's MmapsShared, MunmapsShared and
 * MprotectsShared count them), as private anonymous memory's do. The memory lives as long as
 * any mapping of it: a forked child keeps a region whose middle the parent
 * unmapped, and sees the parent's later writes to the rest.
 *
 * On the 4-CPU boot, 4 threads of one process each, 100 times: map 32
 * pages of shared memory, write every page, make pages 0..8 read-only and
 * writable again, unmap pages 0..3 (a cut), check they are gone (mincore
 * ENOMEM) and the rest still right, unmap the rest. Checked: every page
 * holds what its thread wrote, each range is gone once munmap returned,
 * and many of the calls went the shared way. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../linux/linux_check.h"
#include "smp_spin.h"

#define THREADS 4
#define PAGES 32
#define PAGE 4096
#define ROUNDS 100
#define WORDS (PAGE / 8)

static int bad[THREADS];

/* What thread `me` writes in round `r` at word `w` of page `page`. */
static uint64_t word(int me, int r, int page, int w)
{
    return ((uint64_t)me << 48) | ((uint64_t)r << 32) | ((uint64_t)page << 16) | (uint64_t)w;
}

static int page_right(const uint64_t *p, int me, int r, int page)
{
    return p[page * WORDS] == word(me, r, page, 0) &&
           p[page * WORDS + 511] == word(me, r, page, 511);
}

static void *unmap_rounds(void *arg)
{
    int me = (int)(intptr_t)arg;
    smp_wait_for_start();
    void *region = (void *)(0x200000000000ul + ((unsigned long)me << 28));
    unsigned char v[PAGES];
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t *p = mmap(region, PAGES * PAGE, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p != region) {
            bad[me]++;
            continue;
        }
        for (int i = 0; i < PAGES; i++) {
            p[i * WORDS] = word(me, r, i, 0);
            p[i * WORDS + 511] = word(me, r, i, 511);
        }
        bad[me] += mprotect(p, 8 * PAGE, PROT_READ) != 0;
        for (int i = 0; i < PAGES; i++)
            bad[me] += !page_right(p, me, r, i);
        bad[me] += mprotect(p, 8 * PAGE, PROT_READ | PROT_WRITE) != 0;
        p[5 * WORDS + 1] = 5;
        bad[me] += munmap(p, 3 * PAGE) != 0;
        bad[me] += !(mincore(p, 3 * PAGE, v) == -1 && errno == ENOMEM);
        for (int i = 3; i < PAGES; i++)
            bad[me] += !page_right(p, me, r, i);
        bad[me] += p[5 * WORDS + 1] != 5;
        bad[me] += munmap(p + 3 * WORDS, (PAGES - 3) * PAGE) != 0;
        bad[me] += !(mincore(p, PAGES * PAGE, v) == -1 && errno == ENOMEM);
    }
    return 0;
}

/* A child keeps shared memory whose middle its parent unmaps: the child
 * sees the parent's writes to the rest after the cut, its own view whole. */
static void child_keeps_what_the_parent_unmaps(void)
{
    volatile uint64_t *s = mmap(0, 16 * PAGE, PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(s != MAP_FAILED);
    if (s == MAP_FAILED)
        return;
    for (int i = 0; i < 16; i++)
        s[i * WORDS] = 100 + i;
    int go_pipe[2];
    CHECK(pipe(go_pipe) == 0);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        char c;
        int wrong = read(go_pipe[0], &c, 1) != 1;
        for (int i = 0; i < 16; i++) {
            uint64_t want = i == 15 ? 7777 : 100 + (uint64_t)i;
            wrong += s[i * WORDS] != want;
        }
        _exit(wrong != 0);
    }
    CHECK(munmap((void *)(s + 4 * WORDS), 8 * PAGE) == 0);
    s[15 * WORDS] = 7777;
    CHECK(write(go_pipe[1], "g", 1) == 1);
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(munmap((void *)s, 16 * PAGE) == 0);
}

int main(void)
{
    long mmaps_before = meminfo_now("MmapsShared:");
    long munmaps_before = meminfo_now("MunmapsShared:");
    long mprotects_before = meminfo_now("MprotectsShared:");
    CHECK(mmaps_before >= 0 && munmaps_before >= 0 && mprotects_before >= 0);
    child_keeps_what_the_parent_unmaps();
    CHECK(smp_run_threads(THREADS, unmap_rounds));
    long mmaps = meminfo_now("MmapsShared:") - mmaps_before;
    long munmaps = meminfo_now("MunmapsShared:") - munmaps_before;
    long mprotects = meminfo_now("MprotectsShared:") - mprotects_before;
    for (int i = 0; i < THREADS; i++) {
        if (bad[i])
            printf("thread %d: %d wrong pages or ranges\n", i, bad[i]);
        CHECK(bad[i] == 0);
    }
    long calls = (long)THREADS * ROUNDS * 2;
    printf("%ld of %ld shared memory mmaps, %ld of %ld munmaps and %ld of %ld mprotects made "
           "under the read lock\n",
           mmaps, calls / 2, munmaps, calls, mprotects, calls);
    /* Some go the writing way (a writer waiting at the gate, another
     * thread holding the space's lock); the bound is loose. */
    CHECK(mmaps >= calls / 20);
    CHECK(munmaps >= calls / 10);
    CHECK(mprotects >= calls / 10);
    if (failures == 0)
        printf("PASS linux threads unmap shared memory under the read lock\n");
    return failures != 0;
}
