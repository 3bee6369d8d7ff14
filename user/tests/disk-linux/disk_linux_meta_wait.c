/* disk_linux_meta_wait.c - a musl (Linux) program whose unlink, rename and
 * mkdir of /home names (and an open that creates a file) write their metadata blocks (directory blocks,
 * inodes, bitmaps) without the kernel lock (docs/design.md, "Namespace
 * calls without the kernel lock"), run by tests/in_qemu.rs. No timing:
 * only what is seen.
 *
 * Each call is made under the lock with no write there; the blocks it
 * changed are then written, all started at once, then the device flushed,
 * the caller asleep meanwhile. A watcher thread reads /proc/meminfo in a
 * loop (DiskRequests, DiskInterrupts, then whether the call returned). It
 * must see, before the call returned, a request count strictly between
 * the counts before and after the call with at least two requests sent and
 * not answered by an interrupt (since before the call): several writes on
 * the device at once while a system call ran. Written under the lock (as
 * before), each write's interrupt was taken before the lock was let go,
 * and only the flush was ever seen in flight. In rounds (a new name each),
 * at most ROUNDS, for each of unlink, rename, mkdir and open(O_CREAT) of
 * a new file. And none of its
 * writes is waited for as it is sent (/proc/meminfo's DiskSyncWrites: the
 * writes made under the lock) in any round.
 *
 * Hostile: a forked child renames a file to and fro in a loop and is
 * killed (SIGKILL) once its requests are seen going; it ends by the
 * signal, and the file is found under one of its names.
 *
 * With argument "eio" (under a blkdebug rule failing the first write of
 * /usuario's directory block once): an unlink of /home/usuario/datos.bin
 * gives EIO with the name gone (the call is made; its blocks stay to
 * write), a chmod then succeeds (and writes them). e2fsck -fn clean. */
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

#define DIR "/home/usuario/meta"
#define ROUNDS 30

static void name_of(char *out, size_t size, const char *kind, int n)
{
    snprintf(out, size, DIR "/%s%02d", kind, n);
}

static void make_file(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, "x", 1) == 1);
    CHECK(close(fd) == 0);
}

enum call { UNLINK, RENAME, MKDIR, CREATE };
static const char *call_names[] = { "unlink", "rename", "mkdir", "create" };

/* One watched call of round `n`: whether several of its writes were seen
 * on the device while it had not returned. */
static int watched(enum call call, int n)
{
    char path[64], other[64];
    name_of(path, sizeof path, "f", n);
    name_of(other, sizeof other, call == MKDIR ? "d" : call == CREATE ? "c" : "g", n);
    struct stat st;
    /* Looked up first: the call's walk reads nothing. */
    stat(path, &st);
    stat(DIR, &st);
    stop = 0;
    returned = 0;
    seen_count = 0;
    pthread_t tid;
    CHECK(pthread_create(&tid, 0, watcher, 0) == 0);
    while (seen_count == 0)
        sched_yield();
    long sync_before = meminfo_now("DiskSyncWrites:");
    long before = meminfo_now("DiskRequests:");
    long base = before - meminfo_now("DiskInterrupts:");
    int rc = call == UNLINK   ? unlink(path)
             : call == RENAME ? rename(path, other)
             : call == MKDIR  ? mkdir(other, 0755)
                              : open(other, O_CREAT | O_WRONLY, 0644);
    returned = 1;
    long after = meminfo_now("DiskRequests:");
    long sync_writes = meminfo_now("DiskSyncWrites:") - sync_before;
    stop = 1;
    CHECK(pthread_join(tid, 0) == 0);
    if (call == CREATE && rc >= 0)
        rc = close(rc);
    CHECK(rc == 0);
    if (call == UNLINK)
        CHECK(access(path, F_OK) == -1 && errno == ENOENT);
    else
        CHECK(access(other, F_OK) == 0);
    int seen = 0;
    long most = 0;
    for (int s = 0; s < seen_count; s++) {
        long in_flight = seen_requests[s] - seen_interrupts[s] - base;
        if (seen_requests[s] > before && seen_requests[s] < after && !seen_returned[s]) {
            if (in_flight > most)
                most = in_flight;
            if (in_flight >= 2)
                seen = 1;
        }
    }
    printf("disk_linux_meta_wait: %s %s: requests %ld..%ld, %ld written under the lock, %d "
           "changes seen, at most %ld in flight: %s\n",
           call_names[call], call == MKDIR || call == CREATE ? other : path, before, after, sync_writes, seen_count,
           most, seen ? "seen" : "not seen");
    CHECK(after > before);
    CHECK(sync_before >= 0 && sync_writes == 0);
    return seen;
}

static void eio(void)
{
    const char *datos = "/home/usuario/datos.bin";
    CHECK_ERR(unlink(datos), EIO);
    CHECK(access(datos, F_OK) == -1 && errno == ENOENT);
    CHECK(chmod("/home/usuario", 0755) == 0);
    CHECK(access(datos, F_OK) == -1 && errno == ENOENT);
    printf("disk_linux_meta_wait: eio: unlink EIO with the name gone, then chmod 0\n");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "eio") == 0) {
        eio();
        if (failures == 0)
            printf("disk_linux_meta_wait: done\n");
        return failures != 0;
    }
    CHECK(mkdir(DIR, 0755) == 0);
    char path[64], other[64];
    for (int n = 0; n < 2 * ROUNDS + 1; n++) {
        name_of(path, sizeof path, "f", n);
        make_file(path);
    }
    sync();
    enum call calls[] = { UNLINK, RENAME, MKDIR, CREATE };
    int next = 0;
    for (int c = 0; c < 4; c++) {
        int seen = 0, round = 0;
        while (round < ROUNDS && !seen) {
            seen = watched(calls[c], c == UNLINK ? next : next + ROUNDS);
            round++;
            next++;
        }
        if (c == UNLINK)
            next = 0;
        CHECK(seen);
    }

    /* Hostile: a child renaming to and fro in a loop, killed. */
    name_of(path, sizeof path, "f", 2 * ROUNDS);
    name_of(other, sizeof other, "h", 2 * ROUNDS);
    long start = meminfo_now("DiskRequests:");
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        for (;;) {
            rename(path, other);
            rename(other, path);
        }
    }
    while (meminfo_now("DiskRequests:") < start + 20)
        sched_yield();
    CHECK(kill(child, SIGKILL) == 0);
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    int here = access(path, F_OK) == 0, there = access(other, F_OK) == 0;
    CHECK(here + there == 1);
    CHECK(unlink(here ? path : other) == 0);
    CHECK(rmdir(DIR "/d10") == 0 || errno == ENOENT);
    if (failures == 0)
        printf("disk_linux_meta_wait: done\n");
    return failures != 0;
}
