// expect-output: PASS linux threads fault in parallel under the read lock
/* Issue 13 item 4: faults on different pages of one address space proceed
 * in parallel. On the 4-CPU boot, 4 threads of one process first-touch
 * pages of one private anonymous mapping at once: each its own 1,024
 * pages, then all of them the same 1,024 pages of a second mapping (each
 * thread writes its own word of every page). The kernel resolves such
 * faults under the read side of its lock; /proc/meminfo counts them
 * (FaultsShared) and those that began while another was under way on
 * another CPU (FaultsAtOnce). Checked: most of the first touches went the
 * shared way, some ran at once (the threads start together; a round is
 * made again, at most 5 times, when none overlapped: the host may not
 * have run two vCPUs together), and every word of every page holds what
 * its thread wrote: a page given two frames by two racing faults would
 * lose one thread's words. A third mapping, 2 MiB aligned, has each
 * thread touch its own page of each of 64 fresh 2 MiB blocks in the same
 * order, so the threads race to link each block's page table (linked by
 * compare-and-swap; a lost race gives its table back): every page must
 * hold its thread's word, and the boot's end checks every frame came
 * back. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include "../linux/linux_check.h"
#include "smp_spin.h"

#define THREADS 4
#define PAGES_EACH 1024
#define PAGE 4096
#define ROUNDS 5
#define BLOCKS 64
#define BLOCK (2L << 20)

static uint64_t *own_area, *common_area, *striped_area;
static char *blocks_base;

static uint64_t tag(int thread, long page)
{
    return 0x5eed000000000000ull | ((uint64_t)thread << 32) | (uint64_t)page;
}

static void *touch(void *arg)
{
    int me = (int)(intptr_t)arg;
    smp_wait_for_start();
    for (long p = 0; p < PAGES_EACH; p++) {
        long page = me * PAGES_EACH + p;
        own_area[page * (PAGE / 8)] = tag(me, page);
    }
    for (long p = 0; p < PAGES_EACH; p++)
        common_area[p * (PAGE / 8) + me] = tag(me, p);
    for (long b = 0; b < BLOCKS; b++)
        striped_area[(b * BLOCK + me * PAGE) / 8] = tag(me, b);
    return 0;
}

/* BLOCKS fresh 2 MiB blocks, the first at a 2 MiB boundary (NULL if the
 * mapping fails); the mapping starts at blocks_base. */
static uint64_t *map_blocks(void)
{
    blocks_base = mmap(NULL, (BLOCKS + 1) * BLOCK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(blocks_base != MAP_FAILED);
    if (blocks_base == MAP_FAILED)
        return NULL;
    uintptr_t aligned = ((uintptr_t)blocks_base + BLOCK - 1) & ~(uintptr_t)(BLOCK - 1);
    return (uint64_t *)aligned;
}

static void *map_pages(long pages)
{
    void *a = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    CHECK(a != MAP_FAILED);
    return a == MAP_FAILED ? NULL : a;
}

/* One round: both mappings made and touched by every thread at once;
 * 1 when every word is right. */
static int round_of_touches(void)
{
    own_area = map_pages(THREADS * PAGES_EACH);
    common_area = map_pages(PAGES_EACH);
    striped_area = map_blocks();
    if (!own_area || !common_area || !striped_area)
        return 0;
    CHECK(smp_run_threads(THREADS, touch));
    int right = 1;
    for (long page = 0; page < THREADS * PAGES_EACH; page++)
        right &= own_area[page * (PAGE / 8)] == tag((int)(page / PAGES_EACH), page);
    for (long p = 0; p < PAGES_EACH; p++)
        for (int i = 0; i < THREADS; i++)
            right &= common_area[p * (PAGE / 8) + i] == tag(i, p);
    for (long b = 0; b < BLOCKS; b++)
        for (int i = 0; i < THREADS; i++)
            right &= striped_area[(b * BLOCK + i * PAGE) / 8] == tag(i, b);
    CHECK(munmap(own_area, THREADS * PAGES_EACH * PAGE) == 0);
    CHECK(munmap(common_area, PAGES_EACH * PAGE) == 0);
    CHECK(munmap(blocks_base, (BLOCKS + 1) * BLOCK) == 0);
    return right;
}

int main(void)
{
    long shared_before = meminfo_now("FaultsShared:");
    long at_once_before = meminfo_now("FaultsAtOnce:");
    CHECK(shared_before >= 0 && at_once_before >= 0);
    long shared = 0, at_once = 0;
    int rounds = 0;
    while (rounds < ROUNDS && at_once == 0) {
        long s0 = meminfo_now("FaultsShared:"), a0 = meminfo_now("FaultsAtOnce:");
        CHECK(round_of_touches());
        rounds++;
        shared = meminfo_now("FaultsShared:") - s0;
        at_once = meminfo_now("FaultsAtOnce:") - a0;
        printf("round %d: %ld first touches of %d pages resolved under the read lock, "
               "%ld of them while another was under way\n",
               rounds, shared, (THREADS + 1) * PAGES_EACH + THREADS * BLOCKS, at_once);
    }
    /* Each round's first touches: 4 x 1,024 own pages, 1,024 common ones
     * (the other threads' touches of a common page find it there and go
     * the writing way) and 4 x 64 striped ones; some may go that way
     * anyway, when a writer waits at the gate. */
    CHECK(shared >= THREADS * PAGES_EACH / 2);
    CHECK(shared <= (THREADS + 1) * PAGES_EACH + THREADS * BLOCKS + 256); /* and stacks */
    CHECK(at_once > 0);
    if (failures == 0)
        printf("PASS linux threads fault in parallel under the read lock\n");
    return failures != 0;
}
