// expect-output: PASS linux threads unmap file mappings under the read lock
/* Issue 13 item 4 for files: munmap of a shared file mapping (read-only or
 * writable) and of a private file mapping, and mmap of either, go
 * under the read side of the kernel lock with the space's own lock
 * (/proc/meminfo's MunmapsShared and MmapsShared count them), as private
 * anonymous memory's do. On the 4-CPU boot, 4
 * threads of one process each map a cached 32-page /tmp file, in turn
 * read-only shared, private and writable (a write to page 3: the thread's
 * own copy), and shared and writable (a write to word 1 of page 16 + the
 * thread's number: the file's own page), check every page, unmap pages
 * 0..2 (a cut), check they are gone (mincore ENOMEM) and the rest still
 * right, and unmap the rest, 99 times. Checked: every page read holds the
 * file's bytes (or the thread's own write), each range is gone once munmap
 * returned, the file is unchanged by the private writes and holds each
 * shared write once its munmap returned, and many of the munmaps and mmaps
 * went the shared way (and a private mmap made alone can). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
#include "../linux/linux_check.h"
#include "smp_spin.h"

#define THREADS 4
#define PAGES 32
#define PAGE 4096
#define ROUNDS 99
#define WORDS (PAGE / 8)

static int bad[THREADS];
static int fd;

/* The file's word `w` of page `page`. */
static uint64_t word(int page, int w)
{
    return 0x51e0000000000000ull | ((uint64_t)page << 16) | (uint64_t)w;
}

static int page_right(const uint64_t *p, int page)
{
    return p[page * WORDS] == word(page, 0) && p[page * WORDS + 511] == word(page, 511);
}

static void *unmap_rounds(void *arg)
{
    int me = (int)(intptr_t)arg;
    smp_wait_for_start();
    void *region = (void *)(0x200000000000ul + ((unsigned long)me << 28));
    unsigned char v[PAGES];
    for (int r = 0; r < ROUNDS; r++) {
        int private = r % 3 == 1, writer = r % 3 == 2;
        int prot = private || writer ? PROT_READ | PROT_WRITE : PROT_READ;
        uint64_t *p = mmap(region, PAGES * PAGE, prot, private ? MAP_PRIVATE : MAP_SHARED, fd, 0);
        if (p != region) {
            bad[me]++;
            continue;
        }
        for (int i = 0; i < PAGES; i++)
            bad[me] += !page_right(p, i);
        if (private) {
            p[3 * WORDS] = (uint64_t)me << 32 | (uint64_t)r;
            bad[me] += p[3 * WORDS] != ((uint64_t)me << 32 | (uint64_t)r);
        }
        uint64_t mine = (uint64_t)me << 32 | (uint64_t)r, seen = 0;
        if (writer)
            p[(16 + me) * WORDS + 1] = mine;
        bad[me] += munmap(p, 3 * PAGE) != 0;
        bad[me] += !(mincore(p, 3 * PAGE, v) == -1 && errno == ENOMEM);
        for (int i = 3; i < PAGES; i++)
            bad[me] += i == 3 && private ? p[3 * WORDS + 511] != word(3, 511) : !page_right(p, i);
        bad[me] += munmap(p + 3 * WORDS, (PAGES - 3) * PAGE) != 0;
        bad[me] += !(mincore(p, PAGES * PAGE, v) == -1 && errno == ENOMEM);
        if (writer)
            bad[me] += pread(fd, &seen, 8, (16 + me) * PAGE + 8) != 8 || seen != mine;
    }
    return 0;
}

/* A private writable view of the file: the file's words, a write its
 * own (1 when right), unmapped. */
static int private_view(void)
{
    uint64_t *view = mmap(0, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (view == MAP_FAILED)
        return 0;
    int right = page_right(view, 5);
    view[5 * WORDS] = 0xcafe;
    right &= view[5 * WORDS] == 0xcafe && page_right(view, 6);
    return munmap(view, PAGES * PAGE) == 0 && right;
}

int main(void)
{
    static uint64_t page[WORDS];
    fd = open("/tmp/smp_file_unmaps.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    for (int i = 0; i < PAGES; i++) {
        for (int w = 0; w < WORDS; w++)
            page[w] = word(i, w);
        CHECK(write(fd, page, PAGE) == PAGE);
    }
    /* Alone, a private mmap of the file can go the shared way: a view of
     * its own over the file, its top object one of the spares the kernel
     * makes ahead (a first mmap asks for them if none are left). */
    CHECK(moves_counter("MmapsShared:", 16, private_view));
    long munmaps_before = meminfo_now("MunmapsShared:");
    long mmaps_before = meminfo_now("MmapsShared:");
    CHECK(munmaps_before >= 0 && mmaps_before >= 0);
    CHECK(smp_run_threads(THREADS, unmap_rounds));
    long munmaps = meminfo_now("MunmapsShared:") - munmaps_before;
    long mmaps = meminfo_now("MmapsShared:") - mmaps_before;
    for (int i = 0; i < THREADS; i++) {
        if (bad[i])
            printf("thread %d: %d wrong pages or ranges\n", i, bad[i]);
        CHECK(bad[i] == 0);
    }
    /* The private writes stayed private. */
    CHECK(pread(fd, page, PAGE, 3 * PAGE) == PAGE);
    CHECK(page[0] == word(3, 0) && page[511] == word(3, 511));
    CHECK(pread(fd, page, 8, 5 * PAGE) == 8 && page[0] == word(5, 0));
    /* A writable shared mapping's write reaches the file, the whole
     * mapping unmapped. */
    uint64_t *w = mmap(0, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(w != MAP_FAILED);
    if (w != MAP_FAILED) {
        w[31 * WORDS] = 0xfeed;
        CHECK(munmap(w, PAGES * PAGE) == 0);
    }
    CHECK(pread(fd, page, 8, 31 * PAGE) == 8 && page[0] == 0xfeed);
    long calls = (long)THREADS * ROUNDS * 2;
    printf("%ld of %ld file munmaps and %ld of %ld file mmaps made under the read lock\n",
           munmaps, calls, mmaps, calls / 2);
    /* Some go the writing way (a writer waiting at the gate, another
     * thread holding the space's lock); the bound is loose. */
    CHECK(munmaps >= calls / 10);
    CHECK(mmaps >= calls / 20);
    CHECK(munmaps <= calls + 64); /* and the threads' own stacks */
    CHECK(close(fd) == 0 && unlink("/tmp/smp_file_unmaps.dat") == 0);
    if (failures == 0)
        printf("PASS linux threads unmap file mappings under the read lock\n");
    return failures != 0;
}
