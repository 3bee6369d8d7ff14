/* disk_linux_pread_wait.c - a musl (Linux) program whose pread64, readv
 * and preadv of a /home file wait for the disk without the kernel lock
 * (docs/design.md, "Read faults without the kernel lock"), run by
 * tests/in_qemu.rs. No timing: only the order of what is seen.
 *
 * /home/usuario/preads.bin (PAGES pages, byte i of page p = p * 3 + i + 7)
 * is written, synced and closed (its cached pages go with its object), so
 * each call below reads it from the disk: several windows of 32 pages, a
 * device read or more each. While one call runs, a second thread reads
 * the disk request count (/proc/meminfo's DiskRequests) in a loop and
 * records each new count it sees. It must see one strictly between the
 * counts before and after the call: it made system calls between two of
 * the call's reads. Were the reads made under the kernel lock (as before),
 * the call was one lock section and no other call could see the count
 * between. The gaps between a call's reads are short (QEMU's disk is
 * fast) and a loaded host may run the watcher's CPU less, so each call is
 * made in rounds (the file closed between them) until the watcher saw one
 * (at most ROUNDS; with the old path no round can). Each call's bytes and
 * the descriptor's position are checked: pread64 and preadv keep it, readv
 * moves it by what it read.
 *
 * With argument "eio" (under blkdebug rules failing once the reads of
 * blocks 2 and 5 of /home/usuario/datos.bin): pread64 of page 2 fails with
 * EIO, its buffer and the position untouched; a readv of page 3 then pages
 * 4-5 gives the short count of page 3 and moves the position by it alone;
 * the same calls then succeed. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include "disk_request_watch.h"

#include "../linux/linux_check.h"

#define PAGE 4096
#define PAGES 128
#define PATH "/home/usuario/preads.bin"
#define ROUNDS 20

static unsigned char all[PAGES * PAGE];

static unsigned char byte_of(long p, long i)
{
    return (unsigned char)(p * 3 + i + 7);
}

/* Checks that `len` bytes at `got` are the file's from offset `at`. */
static void check_bytes(const unsigned char *got, long at, long len)
{
    int wrong = 0;
    for (long i = 0; i < len; i++) {
        long o = at + i;
        wrong += got[i] != byte_of(o / PAGE, o % PAGE);
    }
    CHECK(wrong == 0);
}

enum call { PREAD, READV, PREADV };
static const char *const names[] = {"pread64", "readv", "preadv"};

/* Opens the file (not cached: it was closed), moves the position to 100,
 * and makes `call` of the rest of the file from page 1 (readv: from the
 * position) while the watcher records; checks the bytes and the position.
 * Whether the watcher saw the call wait. */
static int watched_once(enum call call)
{
    int fd = open(PATH, O_RDONLY);
    CHECK(fd >= 0);
    CHECK(lseek(fd, 100, SEEK_SET) == 100);
    long at = call == READV ? 100 : PAGE;
    long len = PAGES * PAGE - at;
    memset(all, 0, sizeof all);
    /* Two buffers: 5 bytes, then the rest. */
    struct iovec iov[2] = {{all, 5}, {all + 5, len - 5}};
    stop = 0;
    seen_count = 0;
    pthread_t tid;
    CHECK(pthread_create(&tid, 0, watcher, 0) == 0);
    /* Running before the call: it has seen a count. */
    while (seen_count == 0)
        sched_yield();
    long before = disk_requests();
    ssize_t n = -1;
    switch (call) {
    case PREAD:
        n = pread(fd, all, len, at);
        break;
    case READV:
        n = readv(fd, iov, 2);
        break;
    case PREADV:
        n = preadv(fd, iov, 2, at);
        break;
    }
    long after = disk_requests();
    stop = 1;
    CHECK(pthread_join(tid, 0) == 0);
    CHECK(n == len);
    check_bytes(all, at, len);
    CHECK(lseek(fd, 0, SEEK_CUR) == (call == READV ? PAGES * PAGE : 100));
    CHECK(after - before >= 3);
    CHECK(close(fd) == 0);
    return seen_between(before, after);
}

/* `call` in rounds until the watcher saw it wait (at most ROUNDS). */
static void watched(enum call call)
{
    int round = 0, seen_wait = 0;
    while (round < ROUNDS && !seen_wait) {
        seen_wait = watched_once(call);
        round++;
    }
    printf("disk_linux_pread_wait: %s: seen waiting in round %d of %d\n", names[call],
           seen_wait ? round : 0, round);
    CHECK(seen_wait);
}

/* Under the rules failing blocks 2 and 5 of datos.bin once. */
static void eio(void)
{
    static unsigned char page[3 * PAGE];
    int fd = open("/home/usuario/datos.bin", O_RDONLY);
    CHECK(fd >= 0);
    CHECK(lseek(fd, 100, SEEK_SET) == 100);
    memset(page, 0xa5, sizeof page);
    CHECK_ERR(pread(fd, page, PAGE, 2 * PAGE), EIO);
    CHECK(page[0] == 0xa5 && page[PAGE - 1] == 0xa5);
    CHECK(lseek(fd, 0, SEEK_CUR) == 100);
    CHECK(pread(fd, page, PAGE, 2 * PAGE) == PAGE);
    printf("disk_linux_pread_wait: pread64 -> EIO, then a page\n");

    CHECK(lseek(fd, 3 * PAGE, SEEK_SET) == 3 * PAGE);
    struct iovec iov[2] = {{page, PAGE}, {page + PAGE, 2 * PAGE}};
    CHECK(readv(fd, iov, 2) == PAGE);
    CHECK(lseek(fd, 0, SEEK_CUR) == 4 * PAGE);
    CHECK(readv(fd, iov + 1, 1) == 2 * PAGE);
    CHECK(lseek(fd, 0, SEEK_CUR) == 6 * PAGE);
    printf("disk_linux_pread_wait: readv -> a short count, then the rest\n");
    CHECK(close(fd) == 0);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "eio") == 0) {
        eio();
    } else {
        for (long p = 0; p < PAGES; p++)
            for (long i = 0; i < PAGE; i++)
                all[p * PAGE + i] = byte_of(p, i);
        int fd = open(PATH, O_RDWR | O_CREAT | O_TRUNC, 0644);
        CHECK(fd >= 0);
        CHECK(write(fd, all, sizeof all) == (ssize_t)sizeof all);
        CHECK(fsync(fd) == 0);
        CHECK(close(fd) == 0);
        watched(PREAD);
        watched(READV);
        watched(PREADV);
    }
    if (failures == 0)
        printf("disk_linux_pread_wait: done\n");
    return failures != 0;
}
