/* disk_linux_holes_wait.c - a musl (Linux) program whose msync(MS_SYNC) of
 * a file with holes, and whose read of a block mapped through an indirect
 * block not cached, make no device request under the kernel lock
 * (docs/design.md, "Write-backs that fill holes, without the kernel
 * lock"), run by tests/in_qemu.rs. No timing: only what is seen.
 *
 * Reads: first thing after boot (nothing of datos.bin's map cached), a
 * pread64 of page 100 of /home/usuario/datos.bin (its block mapped through
 * the single-indirect block): /proc/meminfo's DiskSyncReads (the reads
 * the driver sent with the caller waiting, all under the lock) does not
 * move, and the bytes are the image's. On the old path the indirect block
 * was read there, under the lock.
 *
 * Write-backs: in rounds (a new file each), a file made with
 * O_CREAT|O_EXCL, ftruncate'd to 20 MiB (a hole throughout), mapped
 * shared, gets a store every 4 MiB (5 pages: 6 indirect blocks to
 * allocate with the 5 data blocks), then msync(MS_SYNC). Its placing reads the metadata it needs (bitmap, group
 * descriptor, superblock blocks) without the lock first, leaves its
 * changes dirty in the volume's cache, writes the data, then the
 * metadata, then flushes, the caller asleep meanwhile. Every round:
 * DiskSyncWrites and DiskSyncReads do not move across the msync (on the
 * old path each allocation wrote its bitmap, descriptor and superblock
 * blocks under the lock). A watcher thread reads /proc/meminfo in a loop
 * and must see, before the msync returned, a request count strictly
 * between the counts before and after it with a request not answered by
 * an interrupt: in at most ROUNDS rounds.
 *
 * Hostile: a forked child does the same in a loop and is killed (SIGKILL)
 * once its requests are seen going; it ends by the signal.
 *
 * With argument "eio" (under a blkdebug rule failing the first write of
 * the first group's block bitmap once): the first msync gives EIO (its
 * data written, its metadata write failed, kept dirty), the second 0; the
 * image holds the stores (the host checks huecos-00.bin) and is clean. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../linux/linux_meminfo.h"

#include "../linux/linux_check.h"
#include "disk_flight_watch.h"

#define PAGE 4096
#define FILE_SIZE (20L << 20)
/* One store every 4 MiB, 2 MiB in: 5 runs (all on the device's queue at
 * once), 5
 * blocks under 5 indirect blocks (the single-indirect one, the
 * double-indirect one and 4 under it). */
#define STRIDE (4L << 20)
#define FIRST (2L << 20)
#define STORES (FILE_SIZE / STRIDE)
#define ROUNDS 10

static void path_of(char *out, size_t size, int n)
{
    snprintf(out, size, "/home/usuario/huecos-%02d.bin", n);
}

/* The store of round `n` at byte `FIRST + i * STRIDE + 100` (the host
 * checks round 0's: "hueco-00-NN"). */
static void store_of(char *out, size_t size, int n, long i)
{
    snprintf(out, size, "hueco-%02d-%02ld", n, i);
}

/* A new file of FILE_SIZE bytes, all hole, mapped shared, with a store
 * every STRIDE bytes: the mapping (its descriptor in `*fd`). */
static char *stored_file(int n, int *fd)
{
    char path[64], store[32];
    path_of(path, sizeof path, n);
    *fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
    CHECK(*fd >= 0);
    CHECK(ftruncate(*fd, FILE_SIZE) == 0);
    char *map = mmap(0, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    CHECK(map != MAP_FAILED);
    for (long i = 0; i < STORES; i++) {
        store_of(store, sizeof store, n, i);
        memcpy(map + FIRST + i * STRIDE + 100, store, strlen(store));
    }
    return map;
}

/* The pread of a page mapped through datos.bin's indirect block. */
static void read_through_the_indirect_block(void)
{
    long sync_reads = meminfo_now("DiskSyncReads:");
    int fd = open("/home/usuario/datos.bin", O_RDONLY);
    CHECK(fd >= 0);
    static unsigned char page[PAGE];
    CHECK(pread(fd, page, PAGE, 100 * PAGE) == PAGE);
    long reads = meminfo_now("DiskSyncReads:") - sync_reads;
    int right = 1;
    for (long i = 0; i < PAGE; i++)
        right &= page[i] == (unsigned char)((100 * PAGE + i) * 7 + 3);
    printf("disk_linux_holes_wait: pread of page 100: %ld reads under the lock, bytes %s\n",
           reads, right ? "right" : "wrong");
    CHECK(sync_reads >= 0 && reads == 0);
    CHECK(right);
    CHECK(close(fd) == 0);
}

/* One watched msync of round `n`: whether a request of it was seen in
 * flight before it returned. */
static int watched(int n)
{
    int fd;
    char *map = stored_file(n, &fd);
    stop = 0;
    returned = 0;
    seen_count = 0;
    pthread_t tid;
    CHECK(pthread_create(&tid, 0, watcher, 0) == 0);
    while (seen_count == 0)
        sched_yield();
    long writes_before = meminfo_now("DiskSyncWrites:");
    long reads_before = meminfo_now("DiskSyncReads:");
    long before = meminfo_now("DiskRequests:");
    long base = before - meminfo_now("DiskInterrupts:");
    int rc = msync(map, FILE_SIZE, MS_SYNC);
    returned = 1;
    long after = meminfo_now("DiskRequests:");
    long sync_writes = meminfo_now("DiskSyncWrites:") - writes_before;
    long sync_reads = meminfo_now("DiskSyncReads:") - reads_before;
    stop = 1;
    CHECK(pthread_join(tid, 0) == 0);
    int seen = 0;
    for (int s = 0; s < seen_count; s++) {
        long in_flight = seen_requests[s] - seen_interrupts[s] - base;
        if (seen_requests[s] > before && seen_requests[s] < after && !seen_returned[s] &&
            in_flight >= 1)
            seen = 1;
    }
    printf("disk_linux_holes_wait: msync of huecos-%02d.bin: %d, requests %ld..%ld, %ld written "
           "and %ld read under the lock, %d changes seen: %s\n",
           n, rc, before, after, sync_writes, sync_reads, seen_count, seen ? "seen" : "not seen");
    CHECK(rc == 0);
    CHECK(after >= before + 2 * STORES);
    CHECK(writes_before >= 0 && sync_writes == 0);
    CHECK(reads_before >= 0 && sync_reads == 0);
    CHECK(munmap(map, FILE_SIZE) == 0);
    CHECK(close(fd) == 0);
    return seen;
}

static void eio(void)
{
    int fd;
    char *map = stored_file(0, &fd);
    CHECK_ERR(msync(map, FILE_SIZE, MS_SYNC), EIO);
    CHECK(msync(map, FILE_SIZE, MS_SYNC) == 0);
    CHECK(munmap(map, FILE_SIZE) == 0);
    CHECK(close(fd) == 0);
    printf("disk_linux_holes_wait: eio: msync EIO, then 0\n");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "eio") == 0) {
        eio();
        if (failures == 0)
            printf("disk_linux_holes_wait: done\n");
        return failures != 0;
    }
    read_through_the_indirect_block();
    int seen = 0, round = 0;
    while (round < ROUNDS && !seen) {
        seen = watched(round);
        round++;
    }
    CHECK(seen);

    /* Hostile: a child filling holes and msyncing in a loop, killed. */
    long start = meminfo_now("DiskRequests:");
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        for (int n = 50;; n++) {
            int fd;
            char *map = stored_file(n, &fd);
            msync(map, FILE_SIZE, MS_SYNC);
            munmap(map, FILE_SIZE);
            close(fd);
        }
    }
    while (meminfo_now("DiskRequests:") < start + 40)
        sched_yield();
    CHECK(kill(child, SIGKILL) == 0);
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    if (failures == 0)
        printf("disk_linux_holes_wait: done\n");
    return failures != 0;
}
