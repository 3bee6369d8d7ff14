/* disk_linux_flush_wait.c - a musl (Linux) program whose unlink, chmod and
 * rename of /home files wait for their device flush without the kernel
 * lock (docs/design.md, "Namespace calls without the kernel lock"), run
 * by tests/in_qemu.rs. No timing: only the order of what is seen.
 *
 * Each call is made under the lock (its directory block and inode written
 * there), then its device flush is started and the caller sleeps until it
 * is done. A watcher thread reads /proc/meminfo in a loop (DiskRequests,
 * then DiskInterrupts, then whether the call returned) and records each
 * change. It must see the call's last request count (the flush sent) with
 * the interrupt count below the one after the call and the call not
 * returned: a system call ran while the flush was on the device. Were the
 * flush waited for under the lock (as before), its completion interrupt
 * was taken before the lock was let go. In rounds (one new file each), at
 * most ROUNDS, for unlink; then a chmod and a rename are made and checked.
 *
 * Hostile: a forked child chmods a file in a loop and is killed (SIGKILL)
 * once its requests are seen going; it ends by the signal, and unlink,
 * rename and chmod work after.
 *
 * With argument "eio" (under a blkdebug rule failing the first device
 * flush once): the first call is an unlink of /home/usuario/datos.bin: it
 * gives EIO (the flush failed) and the name is gone (the change was made
 * before the flush, as when the flush was made under the lock); a chmod
 * then succeeds. */
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

#define DIR "/home/usuario/flush"
#define ROUNDS 30

static void name_of(char *out, size_t size, int n)
{
    snprintf(out, size, DIR "/f%02d", n);
}

static void make_file(int n)
{
    char path[64];
    name_of(path, sizeof path, n);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, "x", 1) == 1);
    CHECK(close(fd) == 0);
}

/* One watched unlink of file `n`: whether its flush was seen in flight. */
static int watched_unlink(int n)
{
    char path[64];
    name_of(path, sizeof path, n);
    stop = 0;
    returned = 0;
    seen_count = 0;
    pthread_t tid;
    CHECK(pthread_create(&tid, 0, watcher, 0) == 0);
    while (seen_count == 0)
        sched_yield();
    long before = meminfo_now("DiskRequests:");
    int rc = unlink(path);
    returned = 1;
    long after = meminfo_now("DiskRequests:");
    long after_interrupts = meminfo_now("DiskInterrupts:");
    stop = 1;
    CHECK(pthread_join(tid, 0) == 0);
    CHECK(rc == 0);
    CHECK(access(path, F_OK) == -1 && errno == ENOENT);
    int flush = 0;
    for (int s = 0; s < seen_count; s++)
        if (seen_requests[s] == after && seen_interrupts[s] < after_interrupts && !seen_returned[s])
            flush = 1;
    printf("disk_linux_flush_wait: unlink %s: requests %ld..%ld, %d changes seen, flush %s\n", path,
           before, after, seen_count, flush ? "seen" : "not seen");
    CHECK(after > before);
    return flush;
}

static void eio(void)
{
    const char *datos = "/home/usuario/datos.bin";
    CHECK_ERR(unlink(datos), EIO);
    CHECK(access(datos, F_OK) == -1 && errno == ENOENT);
    CHECK(chmod("/home/usuario", 0755) == 0);
    printf("disk_linux_flush_wait: eio: unlink EIO with the name gone, then chmod 0\n");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "eio") == 0) {
        eio();
        if (failures == 0)
            printf("disk_linux_flush_wait: done\n");
        return failures != 0;
    }
    CHECK(mkdir(DIR, 0755) == 0);
    for (int n = 0; n < ROUNDS + 3; n++)
        make_file(n);
    sync();
    int seen = 0, round = 0;
    while (round < ROUNDS && !seen)
        seen = watched_unlink(round++);
    CHECK(seen);

    char from[64], to[64];
    name_of(from, sizeof from, ROUNDS);
    name_of(to, sizeof to, ROUNDS + 20);
    CHECK(chmod(from, 0600) == 0);
    struct stat st;
    CHECK(stat(from, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(rename(from, to) == 0);
    CHECK(access(from, F_OK) == -1 && access(to, F_OK) == 0);

    /* Hostile: a child chmodding in a loop, killed. */
    name_of(from, sizeof from, ROUNDS + 1);
    long start = meminfo_now("DiskRequests:");
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        for (int i = 0;; i++)
            chmod(from, i % 2 ? 0600 : 0644);
    }
    while (meminfo_now("DiskRequests:") < start + 10)
        sched_yield();
    CHECK(kill(child, SIGKILL) == 0);
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK(chmod(from, 0640) == 0);
    CHECK(stat(from, &st) == 0 && (st.st_mode & 0777) == 0640);
    CHECK(unlink(to) == 0);
    name_of(to, sizeof to, ROUNDS + 2);
    CHECK(rename(from, to) == 0);
    if (failures == 0)
        printf("disk_linux_flush_wait: done\n");
    return failures != 0;
}
