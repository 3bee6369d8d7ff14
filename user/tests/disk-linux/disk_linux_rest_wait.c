/* disk_linux_rest_wait.c - a musl (Linux) program whose open with O_TRUNC,
 * truncate to a length inside a block (its zeroed tail) and last close of
 * a file unlinked while open (which frees its inode and blocks) write
 * their blocks without the kernel lock (docs/design.md, "Their metadata
 * writes too"), run by tests/in_qemu.rs. No timing: only what is seen.
 *
 * Each call is made under the lock with no write there; the blocks it
 * changed are then written, all started at once, then the device flushed,
 * the caller asleep meanwhile. A watcher thread reads /proc/meminfo in a
 * loop (disk_flight_watch.h). It must see, before the call returned,
 * either a request count strictly between the counts before and after the
 * call with at least two requests sent and not answered by an interrupt
 * (since before the call): several writes on the device at once; or the
 * call's last count (its flush sent) with the interrupt count below the
 * one after the call: its flush on the device. Either while a system call
 * of another thread ran. Written and flushed under the lock (as before),
 * each request's interrupt was taken before the lock was let go. In
 * rounds (a new file each), at most ROUNDS, for each call. None of their
 * writes is waited for as it is sent (/proc/meminfo's DiskSyncWrites: the
 * writes made under the lock) in any round, and none of their reads
 * (DiskSyncReads): what the change reads beyond the path (the truncate's
 * last block, the bitmaps, the blocks freeing the orphan) is read before
 * the call is made, the caller asleep.
 *
 * Hostile: a forked child opens a file with O_TRUNC, writes a byte and
 * closes it in a loop and is killed (SIGKILL) once its requests are seen
 * going; it ends by the signal, and the file is there.
 *
 * With argument "eio" (under a blkdebug rule failing the first write of
 * /usuario/datos.bin's block 1 once): a truncate of datos.bin to 4096 +
 * 100 bytes gives EIO with the new length (the call is made; its zeroed
 * tail stays to write), a chmod then succeeds (and writes it); the bytes
 * kept read back, and grown again to 8192 bytes the file reads zeros past
 * the cut (the harness checks the image holds them). e2fsck -fn clean. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../linux/linux_meminfo.h"

#include "../linux/linux_check.h"
#include "disk_flight_watch.h"

#define DIR "/home/usuario/resto"
/* Rounds are tried until one shows the overlap: on a loaded host with 4
 * CPUs (NEOOS_SUITE_CPUS=4) the watcher's vCPU may not run while a call's
 * few requests are in flight; 10 rounds once missed every truncate. */
#define ROUNDS 40
#define CUT (4096 + 100)

static void name_of(char *out, size_t size, const char *kind, int n)
{
    snprintf(out, size, DIR "/%s%02d", kind, n);
}

/* A file of two pages of 'x', on the disk. */
static void make_file(const char *path)
{
    static char page[4096];
    memset(page, 'x', sizeof page);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, page, sizeof page) == sizeof page);
    CHECK(write(fd, page, sizeof page) == sizeof page);
    CHECK(fsync(fd) == 0);
    CHECK(close(fd) == 0);
}

enum call { TRUNC_OPEN, TRUNCATE, CLOSE_ORPHAN };
static const char *call_names[] = { "open O_TRUNC", "truncate", "close of an orphan" };

/* One watched call of round `n`: whether several of its writes were seen
 * on the device while it had not returned. */
static int watched(enum call call, int n)
{
    char path[64];
    name_of(path, sizeof path, call == TRUNC_OPEN ? "o" : call == TRUNCATE ? "t" : "c", n);
    make_file(path);
    struct stat st;
    /* Looked up first: the call's walk reads nothing. */
    CHECK(stat(path, &st) == 0);
    int orphan = -1;
    if (call == CLOSE_ORPHAN) {
        orphan = open(path, O_RDONLY);
        CHECK(orphan >= 0);
        CHECK(unlink(path) == 0);
    }
    stop = 0;
    returned = 0;
    seen_count = 0;
    pthread_t tid;
    CHECK(pthread_create(&tid, 0, watcher, 0) == 0);
    while (seen_count == 0)
        sched_yield();
    long sync_before = meminfo_now("DiskSyncWrites:");
    long sync_reads_before = meminfo_now("DiskSyncReads:");
    long before = meminfo_now("DiskRequests:");
    long base = before - meminfo_now("DiskInterrupts:");
    int rc = call == TRUNC_OPEN ? open(path, O_WRONLY | O_TRUNC)
             : call == TRUNCATE ? truncate(path, CUT)
                                : close(orphan);
    returned = 1;
    long after = meminfo_now("DiskRequests:");
    long interrupts_after = meminfo_now("DiskInterrupts:");
    long sync_writes = meminfo_now("DiskSyncWrites:") - sync_before;
    long sync_reads = meminfo_now("DiskSyncReads:") - sync_reads_before;
    stop = 1;
    CHECK(pthread_join(tid, 0) == 0);
    if (call == TRUNC_OPEN && rc >= 0)
        rc = close(rc);
    CHECK(rc == 0);
    if (call == CLOSE_ORPHAN) {
        CHECK(access(path, F_OK) == -1 && errno == ENOENT);
    } else {
        CHECK(stat(path, &st) == 0);
        CHECK(st.st_size == (call == TRUNC_OPEN ? 0 : CUT));
    }
    int writes_seen = 0, flush_seen = 0;
    long most = 0;
    for (int s = 0; s < seen_count; s++) {
        if (seen_returned[s])
            continue;
        long in_flight = seen_requests[s] - seen_interrupts[s] - base;
        if (seen_requests[s] > before && seen_requests[s] < after) {
            if (in_flight > most)
                most = in_flight;
            if (in_flight >= 2)
                writes_seen = 1;
        }
        if (seen_requests[s] == after && seen_interrupts[s] < interrupts_after)
            flush_seen = 1;
    }
    printf("disk_linux_rest_wait: %s %s: requests %ld..%ld, %ld written and %ld read under the "
           "lock, %d changes seen, at most %ld writes in flight, the flush in flight %s\n",
           call_names[call], path, before, after, sync_writes, sync_reads, seen_count, most,
           flush_seen ? "seen" : "not seen");
    int seen = writes_seen || flush_seen;
    CHECK(after > before);
    CHECK(sync_before >= 0 && sync_writes == 0);
    CHECK(sync_reads_before >= 0 && sync_reads == 0);
    if (call != CLOSE_ORPHAN)
        CHECK(unlink(path) == 0);
    return seen;
}

static void eio(void)
{
    const char *datos = "/home/usuario/datos.bin";
    char kept[100], back[CUT];
    int fd = open(datos, O_RDONLY);
    CHECK(fd >= 0);
    CHECK(pread(fd, kept, sizeof kept, 4096) == sizeof kept);
    CHECK(close(fd) == 0);
    CHECK_ERR(truncate(datos, CUT), EIO);
    struct stat st;
    CHECK(stat(datos, &st) == 0 && st.st_size == CUT);
    CHECK(chmod(datos, 0644) == 0);
    CHECK(truncate(datos, 8192) == 0);
    fd = open(datos, O_RDONLY);
    CHECK(fd >= 0);
    CHECK(pread(fd, back, 100, 4096) == 100);
    CHECK(memcmp(back, kept, 100) == 0);
    static char rest[8192 - CUT];
    CHECK(pread(fd, rest, sizeof rest, CUT) == sizeof rest);
    int zeros = 1;
    for (size_t i = 0; i < sizeof rest; i++)
        if (rest[i] != 0)
            zeros = 0;
    CHECK(zeros);
    CHECK(close(fd) == 0);
    printf("disk_linux_rest_wait: eio: truncate EIO with the new length, then chmod 0, the tail "
           "zeros\n");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "eio") == 0) {
        eio();
        if (failures == 0)
            printf("disk_linux_rest_wait: done\n");
        return failures != 0;
    }
    CHECK(mkdir(DIR, 0755) == 0);
    enum call calls[] = { TRUNC_OPEN, TRUNCATE, CLOSE_ORPHAN };
    for (int c = 0; c < 3; c++) {
        int seen = 0, round = 0;
        while (round < ROUNDS && !seen) {
            seen = watched(calls[c], round);
            round++;
        }
        CHECK(seen);
    }

    /* Hostile: a child truncating in a loop, killed. */
    char path[64];
    name_of(path, sizeof path, "k", 0);
    make_file(path);
    long start = meminfo_now("DiskRequests:");
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        for (;;) {
            int fd = open(path, O_WRONLY | O_TRUNC);
            if (fd >= 0) {
                write(fd, "k", 1);
                close(fd);
            }
        }
    }
    while (meminfo_now("DiskRequests:") < start + 20)
        sched_yield();
    CHECK(kill(child, SIGKILL) == 0);
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size <= 1);
    CHECK(unlink(path) == 0);
    CHECK(rmdir(DIR) == 0);
    if (failures == 0)
        printf("disk_linux_rest_wait: done\n");
    return failures != 0;
}
