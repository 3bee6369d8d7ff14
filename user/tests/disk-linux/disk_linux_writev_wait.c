/* disk_linux_writev_wait.c - a musl (Linux) program whose writev of a
 * /home file reads the pages it writes in part without the kernel lock
 * (docs/design.md, "Namespace calls without the kernel lock", writev),
 * run by tests/in_qemu.rs. No timing: only the order of what is seen.
 *
 * /home/usuario/writev.bin (PAGES pages, byte i of page p = p * 3 + i + 7)
 * is written, synced and closed (its cached pages go with its object).
 * Then a writev of BUFFERS buffers of PAGE + 10 bytes each from offset 100
 * writes in part every page it touches (each buffer's first and last),
 * so those pages are read from the disk first: one device read each,
 * with the caller asleep and the call made again after. While it runs, a
 * second thread reads the disk's request and interrupt counts
 * (/proc/meminfo's DiskRequests, DiskInterrupts) and whether the writev
 * returned, in a loop (disk_flight_watch.h): it must see one of the
 * writev's requests on the device (more requests than interrupts) before
 * the writev returned, in one of at most ROUNDS rounds (the file closed
 * between them, so its pages go). Were the reads made under the kernel
 * lock by the writes (as before), the writev was one lock section and no
 * call could run while its requests were on the device. (A count strictly
 * between the two, which this test looked for first, need not come: with
 * one CPU the round's reads all start together.) Each round's bytes (the buffers' and the untouched ones around)
 * and the position are checked.
 *
 * Hostile: a forked child writing the same way in a loop is killed
 * (SIGKILL) once its requests are seen going; it ends by the signal, and
 * the file then reads back whole (the last writev's bytes where they were
 * written, the file's own elsewhere).
 *
 * With argument "eio" (under blkdebug rules failing once the reads of
 * blocks 2 and 5 of /home/usuario/datos.bin): a writev from 100 bytes into
 * page 2 to 100 bytes into page 5 (so both written in part) returns its
 * whole count: the failed reads are made again. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "disk_flight_watch.h"

#include "../linux/linux_check.h"

#define PAGE 4096
#define PAGES 64
#define BUFFERS 12
#define PIECE (PAGE + 10)
#define PATH "/home/usuario/writev.bin"
#define ROUNDS 20

static unsigned char all[PAGES * PAGE];
static unsigned char pieces[BUFFERS][PIECE];

static unsigned char byte_of(long p, long i)
{
    return (unsigned char)(p * 3 + i + 7);
}

/* The buffers of round `round`, and their iovecs. */
static void fill(int round, struct iovec *iov)
{
    for (int b = 0; b < BUFFERS; b++) {
        for (long i = 0; i < PIECE; i++)
            pieces[b][i] = (unsigned char)(b * 11 + i + round);
        iov[b].iov_base = pieces[b];
        iov[b].iov_len = PIECE;
    }
}

/* Opens `path`, puts the position at `at` and writes round `round`'s
 * buffers by one writev: its count. */
static ssize_t writev_at(const char *path, long at, int round)
{
    struct iovec iov[BUFFERS];
    fill(round, iov);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    CHECK(lseek(fd, at, SEEK_SET) == at);
    ssize_t n = writev(fd, iov, BUFFERS);
    CHECK(lseek(fd, 0, SEEK_CUR) == at + n);
    CHECK(close(fd) == 0);
    return n;
}

/* The file as it is after round `round`'s writev at 100. */
static void check_file(int round)
{
    int fd = open(PATH, O_RDONLY);
    CHECK(fd >= 0);
    CHECK(read(fd, all, sizeof all) == (ssize_t)sizeof all);
    CHECK(close(fd) == 0);
    int wrong = 0;
    long end = 100 + (long)BUFFERS * PIECE;
    for (long o = 0; o < PAGES * PAGE; o++) {
        unsigned char want = o >= 100 && o < end
                                 ? (unsigned char)((o - 100) / PIECE * 11 + (o - 100) % PIECE + round)
                                 : byte_of(o / PAGE, o % PAGE);
        wrong += all[o] != want;
    }
    CHECK(wrong == 0);
}

/* One watched writev of round `round`: whether the watcher saw it wait. */
static int watched_once(int round)
{
    stop = 0;
    returned = 0;
    seen_count = 0;
    pthread_t tid;
    CHECK(pthread_create(&tid, 0, watcher, 0) == 0);
    while (seen_count == 0)
        sched_yield();
    struct iovec iov[BUFFERS];
    fill(round, iov);
    int fd = open(PATH, O_RDWR);
    CHECK(fd >= 0);
    CHECK(lseek(fd, 100, SEEK_SET) == 100);
    long before = meminfo_now("DiskRequests:");
    long base = before - meminfo_now("DiskInterrupts:");
    ssize_t n = writev(fd, iov, BUFFERS);
    returned = 1;
    long after = meminfo_now("DiskRequests:");
    stop = 1;
    CHECK(pthread_join(tid, 0) == 0);
    CHECK(n == (ssize_t)BUFFERS * PIECE);
    CHECK(lseek(fd, 0, SEEK_CUR) == 100 + n);
    CHECK(close(fd) == 0);
    printf("disk_linux_writev_wait: round %d: requests %ld..%ld, watcher saw %d counts\n", round,
           before, after, seen_count);
    /* A read per page written in part (13 pages). */
    CHECK(after - before >= BUFFERS);
    check_file(round);
    for (int s = 0; s < seen_count; s++)
        if (seen_requests[s] > before && seen_requests[s] <= after && !seen_returned[s] &&
            seen_requests[s] - seen_interrupts[s] > base)
            return 1;
    return 0;
}

static void eio(void)
{
    /* From 100 bytes into page 2 to 100 bytes into page 5. */
    struct iovec iov[BUFFERS];
    fill(1, iov);
    iov[0].iov_len = 3 * PAGE;
    int fd = open("/home/usuario/datos.bin", O_RDWR);
    CHECK(fd >= 0);
    CHECK(lseek(fd, 2 * PAGE + 100, SEEK_SET) == 2 * PAGE + 100);
    static unsigned char block[3 * PAGE];
    for (long i = 0; i < 3 * PAGE; i++)
        block[i] = (unsigned char)(i * 5 + 3);
    iov[0].iov_base = block;
    CHECK(writev(fd, iov, 1) == 3 * PAGE);
    CHECK(close(fd) == 0);
    printf("disk_linux_writev_wait: eio: writev whole after failed reads\n");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "eio") == 0) {
        eio();
        if (failures == 0)
            printf("disk_linux_writev_wait: done\n");
        return failures != 0;
    }
    for (long p = 0; p < PAGES; p++)
        for (long i = 0; i < PAGE; i++)
            all[p * PAGE + i] = byte_of(p, i);
    int fd = open(PATH, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, all, sizeof all) == (ssize_t)sizeof all);
    CHECK(fsync(fd) == 0);
    CHECK(close(fd) == 0);
    int round = 0, seen_wait = 0;
    while (round < ROUNDS && !seen_wait)
        seen_wait = watched_once(++round);
    printf("disk_linux_writev_wait: seen waiting in round %d of %d\n", seen_wait ? round : 0,
           round);
    CHECK(seen_wait);

    /* Hostile: a child writing in a loop, killed. */
    long start = meminfo_now("DiskRequests:");
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        for (int r = 100;; r++)
            writev_at(PATH, 100, r);
    }
    while (meminfo_now("DiskRequests:") < start + 3 * BUFFERS)
        sched_yield();
    CHECK(kill(child, SIGKILL) == 0);
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK(writev_at(PATH, 100, 7) == (ssize_t)BUFFERS * PIECE);
    check_file(7);
    if (failures == 0)
        printf("disk_linux_writev_wait: done\n");
    return failures != 0;
}
