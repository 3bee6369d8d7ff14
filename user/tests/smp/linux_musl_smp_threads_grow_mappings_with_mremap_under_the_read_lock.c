// expect-output: PASS linux threads grow mappings with mremap under the read lock
/* Issue 13 item 4 for mremap: growing a whole mapping of private anonymous
 * memory (in place when the range after it is free, else moved with
 * MREMAP_MAYMOVE) goes under the read side of the kernel lock with the
 * space's own lock (/proc/meminfo's MremapsShared counts them), as the
 * mapping calls do, and so does a shrink (the tail unmapped as munmap
 * unmaps it); growing a part of a mapping or a locked one goes the writing
 * way. First, alone: a growth that must move, and a shrink, can each go
 * the shared way (the counter moves, within 16 tries). Then, on the 4-CPU boot, 4 threads
 * each map 4 pages with a 1-page neighbour right after them, write them,
 * grow them to 8 pages (they move), check the words at the new address and
 * that the old range, in the thread's own region, is gone (mincore
 * ENOMEM), write the new pages, unmap
 * the neighbour, grow them to 12 pages (in place or moved) and check every
 * word again, 100 times. Checked: every word right, every old range gone
 * once mremap returned, many growths made the shared way. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include "../linux/linux_check.h"
#include "smp_spin.h"

#define THREADS 4
#define PAGE 4096
#define WORDS (PAGE / 8)
#define ROUNDS 100

static int bad[THREADS];

static uint64_t tag(int thread, int round, int page)
{
    return 0x7e3a000000000000ull | ((uint64_t)thread << 40) | ((uint64_t)round << 16) |
           (uint64_t)page;
}

/* The count of pages 0..pages of p not holding their tags. */
static int wrong_pages(const uint64_t *p, int pages, int me, int r)
{
    int wrong = 0;
    for (int i = 0; i < pages; i++)
        wrong += p[i * WORDS] != tag(me, r, i) || p[i * WORDS + WORDS - 1] != tag(me, r, i);
    return wrong;
}

static void write_pages(uint64_t *p, int from, int to, int me, int r)
{
    for (int i = from; i < to; i++)
        p[i * WORDS] = p[i * WORDS + WORDS - 1] = tag(me, r, i);
}

/* 1 when [p, p + pages) is mapped nowhere. */
static int gone(void *p, int pages)
{
    unsigned char v[16];
    return mincore(p, (size_t)pages * PAGE, v) == -1 && errno == ENOMEM;
}

static void *grow_rounds(void *arg)
{
    int me = (int)(intptr_t)arg;
    smp_wait_for_start();
    char *region = (char *)(0x200000000000ul + ((unsigned long)me << 28));
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t *p = mmap(region, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                           -1, 0);
        void *next = mmap(region + 4 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != (uint64_t *)region || next != region + 4 * PAGE) {
            bad[me]++;
            continue;
        }
        write_pages(p, 0, 4, me, r);
        uint64_t *q = mremap(p, 4 * PAGE, 8 * PAGE, MREMAP_MAYMOVE);
        if (q == MAP_FAILED || q == p) {
            bad[me]++;
            continue;
        }
        bad[me] += wrong_pages(q, 4, me, r) + !gone(p, 4);
        write_pages(q, 4, 8, me, r);
        bad[me] += munmap(next, PAGE) != 0;
        uint64_t *g = mremap(q, 8 * PAGE, 12 * PAGE, MREMAP_MAYMOVE);
        if (g == MAP_FAILED) {
            bad[me]++;
            continue;
        }
        /* (q's old range, if it moved, lies where every thread's moved
         * mappings go, outside the thread's region: another thread may map
         * it at once. So may g's once unmapped.) */
        bad[me] += wrong_pages(g, 8, me, r);
        write_pages(g, 8, 12, me, r);
        bad[me] += wrong_pages(g, 12, me, r);
        bad[me] += munmap(g, 12 * PAGE) != 0;
    }
    return 0;
}

/* Alone: 4 pages with a neighbour right after them, grown to 6 (they
 * move), checked, shrunk to 3 (the tail unmapped), checked, unmapped; 1
 * when every answer was right. The counter is read around each step. */
static long moves, shrinks;

static int move_and_shrink(void)
{
    char *a = mmap(0, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED || munmap(a + 4 * PAGE, 4 * PAGE) != 0 ||
        mmap(a + 4 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) !=
            a + 4 * PAGE)
        return 0;
    write_pages((uint64_t *)a, 0, 4, 0, 999);
    long before = meminfo_now("MremapsShared:");
    uint64_t *moved = mremap(a, 4 * PAGE, 6 * PAGE, MREMAP_MAYMOVE);
    moves += meminfo_now("MremapsShared:") > before;
    int right = moved != MAP_FAILED && (char *)moved != a && munmap(a + 4 * PAGE, PAGE) == 0;
    if (!right)
        return 0;
    right = wrong_pages(moved, 4, 0, 999) == 0 && gone(a, 4);
    before = meminfo_now("MremapsShared:");
    right &= mremap(moved, 6 * PAGE, 3 * PAGE, 0) == moved;
    shrinks += meminfo_now("MremapsShared:") > before;
    right &= wrong_pages(moved, 3, 0, 999) == 0 && gone((char *)moved + 3 * PAGE, 3);
    return munmap(moved, 3 * PAGE) == 0 && right;
}

int main(void)
{
    /* Alone, a growth that must move and a shrink can each go the shared
     * way (within 16 tries). */
    for (int t = 0; t < 16 && !(moves && shrinks); t++)
        CHECK(move_and_shrink());
    CHECK(moves > 0 && shrinks > 0);

    long before = meminfo_now("MremapsShared:");
    CHECK(smp_run_threads(THREADS, grow_rounds));
    long shared = meminfo_now("MremapsShared:") - before;
    for (int i = 0; i < THREADS; i++) {
        if (bad[i])
            printf("thread %d: %d wrong pages or calls\n", i, bad[i]);
        CHECK(bad[i] == 0);
    }
    long calls = 2L * THREADS * ROUNDS;
    printf("%ld of %ld mremap growths made under the read lock\n", shared, calls);
    /* Some meet the space's lock held by another thread's call and go the
     * writing way; the bound is loose. */
    CHECK(shared >= calls / 10);
    if (failures == 0)
        printf("PASS linux threads grow mappings with mremap under the read lock\n");
    return failures != 0;
}
