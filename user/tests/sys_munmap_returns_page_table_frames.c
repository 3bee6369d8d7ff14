/* Issue 9 item 3: page tables come back while a process lives. A loop maps
 * one page at MAP_FIXED, touches it and unmaps it, 1 GiB further on each
 * step: every step needs a new page directory and page table, which used
 * to stay allocated (two frames a step) until the process ended. The free
 * frame count must stay at its baseline, for munmap and for shmdt alike.
 * Tables still in use must stay: a neighbour in the same page table (and
 * in the same directory) keeps its contents when the other page goes, and
 * a range whose tables were freed maps and reads again (fresh zeroes).
 * Tables are freed in batches (crates/abi limits::PAGE_TABLE_RELEASE_BATCH
 * unmaps at a time), so at most that many recent unmaps may still hold
 * their emptied tables: up to three each (directory pointer table,
 * directory, table). Before the fix, 2048 steps kept 4,093 frames. */
#include <neo_test.h>
#include <sys/mman.h>
#include <sys/shm.h>

#define GIB (1UL << 30)
#define BASE 0x200000000000UL /* 32 TiB: far from the program and the mmap area */
#define STEPS 2048
#define RELEASE_BATCH 16 /* crates/abi limits::PAGE_TABLE_RELEASE_BATCH */
#define CHECK_TABLES_BACK(baseline) CHECK_FRAMES_BACK((baseline) - 3 * RELEASE_BATCH)

static void map_touch_unmap(unsigned long addr, unsigned char value)
{
    unsigned char *p = mmap((void *)addr, 4096, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0);
    CHECK_EQ((unsigned long)p, addr);
    CHECK_EQ(p[100], 0);
    p[100] = value;
    CHECK_EQ(munmap(p, 4096), 0);
}

static void attach_touch_detach(int id, unsigned long addr)
{
    unsigned char *p = shmat(id, (void *)addr, 0);
    CHECK_EQ((unsigned long)p, addr);
    p[7]++;
    CHECK_EQ(shmdt(p), 0);
}

int main(void)
{
    map_touch_unmap(BASE, 1); /* warm-up */
    long baseline = test_free_frames();
    for (unsigned long i = 0; i < STEPS; i++)
        map_touch_unmap(BASE + i * GIB, (unsigned char)i);
    CHECK_TABLES_BACK(baseline);
    /* the same addresses again: tables are made anew, pages are fresh */
    for (unsigned long i = 0; i < STEPS; i += 64)
        map_touch_unmap(BASE + i * GIB, 9);
    CHECK_TABLES_BACK(baseline);

    /* shmdt */
    int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    CHECK_GE(id, 0);
    attach_touch_detach(id, BASE);
    long shm_baseline = test_free_frames();
    for (unsigned long i = 0; i < STEPS / 4; i++)
        attach_touch_detach(id, BASE + i * GIB);
    CHECK_TABLES_BACK(shm_baseline);
    unsigned char *seg = shmat(id, NULL, 0);
    CHECK(seg != (void *)-1);
    CHECK_EQ(seg[7], (unsigned char)(STEPS / 4 + 1));
    CHECK_EQ(shmdt(seg), 0);
    CHECK_EQ(shmctl(id, IPC_RMID, NULL), 0);

    /* neighbours: same page table (next page), same directory (next 2 MiB) */
    unsigned long a = BASE + 7 * GIB;
    unsigned long near[] = { a + 4096, a + (2UL << 20) };
    for (unsigned k = 0; k < 2; k++) {
        unsigned char *n = mmap((void *)near[k], 4096, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0);
        CHECK_EQ((unsigned long)n, near[k]);
        n[5] = 77;
        map_touch_unmap(a, 3);
        CHECK_EQ(n[5], 77);
        CHECK_EQ(munmap(n, 4096), 0);
    }
    CHECK_TABLES_BACK(baseline);

    /* a partial unmap that empties the tables: two pages, two calls */
    unsigned char *two = mmap((void *)(BASE + 9 * GIB), 8192, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0);
    CHECK_EQ((unsigned long)two, BASE + 9 * GIB);
    two[0] = 1;
    two[4096] = 2;
    CHECK_EQ(munmap(two, 4096), 0);
    CHECK_EQ(two[4096], 2);
    CHECK_EQ(munmap(two + 4096, 4096), 0);
    CHECK_TABLES_BACK(baseline);
    PASS();
}
