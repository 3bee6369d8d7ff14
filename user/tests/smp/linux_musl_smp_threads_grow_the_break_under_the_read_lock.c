// expect-output: PASS linux threads grow the break under the read lock
/* Issue 13 item 4 for the program break: a Linux `brk` that asks where the
 * break is, moves it within its page or grows the heap's mapping in place
 * goes under the read side of the kernel lock with the space's own lock
 * (/proc/meminfo's BrksShared counts them), as private anonymous mmaps do,
 * and so does a shrink (its pages unmapped as munmap's are); the growth
 * that makes the heap's mapping goes the writing way. First, alone: a
 * query and an in-place growth can each go the shared way (one of at most
 * 16 tries moves the counter: moves_counter). Then, on the 4-CPU boot,
 * thread 0
 * grows the break page by page (writing a tag into each new page and
 * publishing how many are done) while threads 1..3 read the published heap
 * pages (faults on other CPUs) and map, touch and unmap memory of their
 * own. Checked: every heap page holds its tag, every thread's own pages are
 * right, the break is where each brk said, many brks went the shared way,
 * a shrink alone can too, and the shrink back to the start unmaps the heap
 * (mincore ENOMEM). */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../linux/linux_check.h"
#include "smp_spin.h"

#define THREADS 4
#define PAGE 4096
#define GROWTHS 200
#define WORDS (PAGE / 8)

static int bad[THREADS];
static unsigned long heap;      /* the break when the threads start */
static volatile long published; /* heap pages thread 0 has tagged */

static unsigned long brk_to(unsigned long addr)
{
    return (unsigned long)syscall(SYS_brk, addr);
}

/* The break the "alone" checks keep: asked, grown a page, shrunk a page
 * (each 1 when brk answered right). */
static unsigned long alone_end;

static int query_break(void)
{
    return brk_to(0) == alone_end;
}

static int grow_break(void)
{
    alone_end += PAGE;
    return brk_to(alone_end) == alone_end;
}

static int shrink_break(void)
{
    alone_end -= PAGE;
    return brk_to(alone_end) == alone_end;
}

static uint64_t tag(int page)
{
    return 0xb4e0000000000000ull | (uint64_t)page;
}

/* Thread 0: the break grows a page at a time, each page tagged. */
static void grow(void)
{
    for (int i = 0; i < GROWTHS; i++) {
        unsigned long want = heap + (unsigned long)(i + 1) * PAGE;
        if (brk_to(want) != want) {
            bad[0]++;
            break;
        }
        uint64_t *p = (uint64_t *)(heap + (unsigned long)i * PAGE);
        bad[0] += p[0] != 0 || p[WORDS - 1] != 0; /* a new page reads zero */
        p[0] = p[WORDS - 1] = tag(i);
        __atomic_store_n(&published, i + 1, __ATOMIC_RELEASE);
    }
}

/* Threads 1..3: read the published heap pages, map and unmap their own. */
static void read_and_map(int me)
{
    void *region = (void *)(0x200000000000ul + ((unsigned long)me << 28));
    while (__atomic_load_n(&published, __ATOMIC_ACQUIRE) < GROWTHS && !bad[0]) {
        long done = __atomic_load_n(&published, __ATOMIC_ACQUIRE);
        for (long i = 0; i < done; i += 1 + me) {
            const uint64_t *p = (const uint64_t *)(heap + (unsigned long)i * PAGE);
            bad[me] += p[0] != tag((int)i) || p[WORDS - 1] != tag((int)i);
        }
        uint64_t *q = mmap(region, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                           -1, 0);
        if (q != region) {
            bad[me]++;
            continue;
        }
        for (int i = 0; i < 4; i++)
            q[i * WORDS] = tag(1000 * me + i);
        for (int i = 0; i < 4; i++)
            bad[me] += q[i * WORDS] != tag(1000 * me + i);
        bad[me] += munmap(q, 4 * PAGE) != 0;
    }
}

static void *work(void *arg)
{
    int me = (int)(intptr_t)arg;
    smp_wait_for_start();
    if (me == 0)
        grow();
    else
        read_and_map(me);
    return 0;
}

int main(void)
{
    unsigned long start = brk_to(0);
    CHECK(start != 0 && start % PAGE == 0);
    /* The heap's mapping made (the writing way), then, alone, a query and
     * a growth in place can each go the shared way. */
    CHECK(brk_to(start + PAGE) == start + PAGE);
    alone_end = start + PAGE;
    CHECK(moves_counter("BrksShared:", 16, query_break));
    CHECK(moves_counter("BrksShared:", 16, grow_break));
    heap = alone_end;
    long shared_before = meminfo_now("BrksShared:");
    CHECK(smp_run_threads(THREADS, work));
    long shared = meminfo_now("BrksShared:") - shared_before;
    for (int i = 0; i < THREADS; i++) {
        if (bad[i])
            printf("thread %d: %d wrong pages or calls\n", i, bad[i]);
        CHECK(bad[i] == 0);
    }
    /* Every heap page still holds its tag; the break is where it went. */
    for (int i = 0; i < GROWTHS; i++) {
        const uint64_t *p = (const uint64_t *)(heap + (unsigned long)i * PAGE);
        CHECK(p[0] == tag(i) && p[WORDS - 1] == tag(i));
    }
    CHECK(brk_to(0) == heap + GROWTHS * PAGE);
    printf("%ld of %d brk growths made under the read lock\n", shared, GROWTHS);
    /* Some meet the space's lock held by another thread's mmap or munmap
     * and go the writing way; the bound is loose. */
    CHECK(shared >= GROWTHS / 10);
    /* Alone, a shrink can go the shared way too (a page at a time), and
     * back at the start the heap is unmapped. */
    alone_end = heap + GROWTHS * PAGE;
    CHECK(moves_counter("BrksShared:", 16, shrink_break));
    CHECK(brk_to(start) == start);
    unsigned char v[GROWTHS + 2];
    CHECK(mincore((void *)start, (GROWTHS + 2) * PAGE, v) == -1 && errno == ENOMEM);
    if (failures == 0)
        printf("PASS linux threads grow the break under the read lock\n");
    return failures != 0;
}
