/* disk_linux_uaccess_wait.c - a musl (Linux) program whose calls' buffers
 * lie in mappings of a /home file whose pages are not cached: the kernel's
 * access to them reads each page without the kernel lock (docs/design.md,
 * "User memory without the kernel lock"), run by tests/in_qemu.rs. No
 * timing: only the order of what is seen.
 *
 * /home/usuario/datos.bin (256 pages, byte i = i * 7 + 3) is mapped shared
 * read-only and private read-write; nothing of it is cached. Round r:
 * - a write of one page from page 2 + 8r of the shared mapping (a miss
 *   whose page before is not cached: one device read, no read-ahead) to a
 *   /tmp file;
 * - a read of 100 bytes of a /tmp file into page 6 + 8r of the private
 *   mapping (50 bytes in: the page is read, then copied);
 * - a stat whose path string lies in a shared mapping of
 *   /home/usuario/ruta.bin (made first, holding "/home/usuario/datos.bin"),
 *   mapped for the call and unmapped after (its page goes with its
 *   object).
 * While each runs, a second thread reads the disk's request and interrupt
 * counts (/proc/meminfo's DiskRequests, DiskInterrupts) and whether the
 * call returned, in a loop (disk_flight_watch.h): it must see the call's
 * request on the device (more requests than interrupts) before the call
 * returned, in one of at most ROUNDS rounds. Were the page read under the
 * kernel lock by the access (as before), the call was one lock section
 * and no call could run while its request was on the device. Each call's
 * count, the descriptor's position (moved once) and the bytes are checked.
 *
 * Hostile: a forked child writing from pages of the shared mapping not
 * cached, in a loop, is killed (SIGKILL) once its reads are seen going; it
 * ends by the signal and the mapping then reads right.
 *
 * With argument "eio" (under blkdebug rules failing once the reads of
 * blocks 2 and 5 of datos.bin): a write from page 2 of the shared mapping
 * gives EIO with nothing written (as the read under the lock gave), then
 * the whole count; a read into page 5 of the private mapping likewise. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "disk_flight_watch.h"

#include "../linux/linux_check.h"

#define PAGE 4096
#define PAGES 256
#define ROUNDS 10
#define DATOS "/home/usuario/datos.bin"
#define OUT "/tmp/uaccess.out"
#define IN "/tmp/uaccess.in"
#define PIECE 100
#define RUTA "/home/usuario/ruta.bin"

static unsigned char back[PAGE];
static unsigned char piece[PIECE];

static unsigned char datos_byte(long i)
{
    return (unsigned char)(i * 7 + 3);
}

/* How many bytes of page `page` of a mapping of datos.bin at `map` are
 * not the file's, outside [from, from + len) (which must hold `piece`). */
static int wrong_in_page(const unsigned char *map, long page, long from, long len)
{
    int wrong = 0;
    for (long i = 0; i < PAGE; i++) {
        unsigned char want = i >= from && i < from + len ? piece[i - from]
                                                         : datos_byte(page * PAGE + i);
        wrong += map[page * PAGE + i] != want;
    }
    return wrong;
}

static pthread_t watch;
static long before, base;

/* Starts the watcher (once it has looked once) and notes the counts. */
static void watch_start(void)
{
    stop = 0;
    returned = 0;
    seen_count = 0;
    CHECK(pthread_create(&watch, 0, watcher, 0) == 0);
    while (seen_count == 0)
        sched_yield();
    before = meminfo_now("DiskRequests:");
    base = before - meminfo_now("DiskInterrupts:");
}

/* The call returned: stops the watcher; whether it saw one of the call's
 * requests on the device before the call returned. */
static int watch_end(const char *what, int round)
{
    returned = 1;
    long after = meminfo_now("DiskRequests:");
    stop = 1;
    CHECK(pthread_join(watch, 0) == 0);
    printf("disk_linux_uaccess_wait: %s round %d: requests %ld..%ld, watcher saw %d counts\n", what,
           round, before, after, seen_count);
    CHECK(after > before);
    for (int s = 0; s < seen_count; s++)
        if (seen_requests[s] > before && seen_requests[s] <= after && !seen_returned[s] &&
            seen_requests[s] - seen_interrupts[s] > base)
            return 1;
    return 0;
}

/* Round `round`'s write from the shared mapping: whether it was seen
 * waiting. */
static int watched_write(const unsigned char *shared, int round)
{
    long page = 2 + 8L * round;
    int out = open(OUT, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(out >= 0);
    watch_start();
    ssize_t n = write(out, shared + page * PAGE, PAGE);
    int seen = watch_end("write", round);
    CHECK(n == PAGE);
    CHECK(lseek(out, 0, SEEK_CUR) == PAGE);
    CHECK(pread(out, back, PAGE, 0) == PAGE);
    CHECK(close(out) == 0);
    int wrong = 0;
    for (long i = 0; i < PAGE; i++)
        wrong += back[i] != datos_byte(page * PAGE + i);
    CHECK(wrong == 0);
    return seen;
}

/* Round `round`'s read into the private mapping: whether it was seen
 * waiting. */
static int watched_read(unsigned char *private, int round)
{
    long page = 6 + 8L * round;
    int in = open(IN, O_RDONLY);
    CHECK(in >= 0);
    watch_start();
    ssize_t n = read(in, private + page * PAGE + 50, PIECE);
    int seen = watch_end("read", round);
    CHECK(n == PIECE);
    CHECK(lseek(in, 0, SEEK_CUR) == PIECE);
    CHECK(close(in) == 0);
    CHECK(wrong_in_page(private, page, 50, PIECE) == 0);
    return seen;
}

/* Round `round`'s stat of the path held by ruta.bin, mapped for it:
 * whether it was seen waiting. */
static int watched_stat(int round)
{
    int fd = open(RUTA, O_RDONLY);
    CHECK(fd >= 0);
    const char *path = mmap(0, PAGE, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(path != MAP_FAILED);
    CHECK(close(fd) == 0);
    struct stat st;
    watch_start();
    int r = stat(path, &st);
    int seen = watch_end("stat", round);
    CHECK(r == 0 && st.st_size == PAGES * PAGE);
    CHECK(munmap((void *)path, PAGE) == 0);
    return seen;
}

/* ruta.bin, holding the path of datos.bin. */
static void make_ruta(void)
{
    static char page[PAGE];
    strcpy(page, DATOS);
    int fd = open(RUTA, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, page, PAGE) == PAGE);
    CHECK(fsync(fd) == 0);
    CHECK(close(fd) == 0);
}

/* The /tmp file reads take their bytes from. */
static void make_input(void)
{
    for (int i = 0; i < PIECE; i++)
        piece[i] = (unsigned char)(250 - i);
    int fd = open(IN, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, piece, PIECE) == PIECE);
    CHECK(close(fd) == 0);
}

static void eio(const unsigned char *shared, unsigned char *private)
{
    int out = open(OUT, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(out >= 0);
    errno = 0;
    CHECK(write(out, shared + 2 * PAGE, PIECE) == -1 && errno == EIO);
    CHECK(lseek(out, 0, SEEK_CUR) == 0);
    CHECK(write(out, shared + 2 * PAGE, PIECE) == PIECE);
    CHECK(pread(out, back, PIECE, 0) == PIECE);
    int wrong = 0;
    for (long i = 0; i < PIECE; i++)
        wrong += back[i] != datos_byte(2 * PAGE + i);
    CHECK(wrong == 0);
    CHECK(close(out) == 0);
    int in = open(IN, O_RDONLY);
    CHECK(in >= 0);
    errno = 0;
    CHECK(read(in, private + 5 * PAGE + 10, PIECE) == -1 && errno == EIO);
    CHECK(lseek(in, 0, SEEK_CUR) == 0);
    CHECK(read(in, private + 5 * PAGE + 10, PIECE) == PIECE);
    CHECK(lseek(in, 0, SEEK_CUR) == PIECE);
    CHECK(close(in) == 0);
    CHECK(wrong_in_page(private, 5, 10, PIECE) == 0);
    printf("disk_linux_uaccess_wait: eio: EIO with nothing moved, then the whole count\n");
}

int main(int argc, char **argv)
{
    make_input();
    int fd = open(DATOS, O_RDONLY);
    CHECK(fd >= 0);
    unsigned char *shared = mmap(0, PAGES * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    unsigned char *private = mmap(0, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(shared != MAP_FAILED && private != MAP_FAILED);
    CHECK(close(fd) == 0);
    if (argc > 1 && strcmp(argv[1], "eio") == 0) {
        eio(shared, private);
        if (failures == 0)
            printf("disk_linux_uaccess_wait: done\n");
        return failures != 0;
    }
    make_ruta();
    int round = 0, seen_write = 0, seen_read = 0, seen_stat = 0;
    while (round < ROUNDS && !(seen_write && seen_read && seen_stat)) {
        seen_write |= watched_write(shared, round);
        seen_read |= watched_read(private, round);
        seen_stat |= watched_stat(round);
        round++;
    }
    printf("disk_linux_uaccess_wait: write seen waiting: %d, read: %d, stat: %d, in %d rounds\n",
           seen_write, seen_read, seen_stat, round);
    CHECK(seen_write);
    CHECK(seen_read);
    CHECK(seen_stat);

    /* Hostile: a child writing from pages not cached, in a loop, killed. */
    long start = meminfo_now("DiskRequests:");
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        int out = open("/tmp/uaccess.child", O_RDWR | O_CREAT | O_TRUNC, 0644);
        for (long k = 0;; k = (k + 1) % (PAGES / 8))
            if (pwrite(out, shared + (4 + 8 * k) * PAGE, PAGE, 0) != PAGE) {
                printf("disk_linux_uaccess_wait: child's write failed: %s\n", strerror(errno));
                _exit(3);
            }
    }
    int status = 0;
    pid_t ended = 0;
    while (meminfo_now("DiskRequests:") < start + 3 &&
           (ended = waitpid(child, &status, WNOHANG)) == 0)
        sched_yield();
    if (ended == 0) {
        CHECK(kill(child, SIGKILL) == 0);
        CHECK(waitpid(child, &status, 0) == child);
    }
    printf("disk_linux_uaccess_wait: child: requests %ld.., status %#x\n", start, status);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    int wrong = 0;
    for (long k = 0; k < PAGES / 8; k++)
        wrong += wrong_in_page(shared, 4 + 8 * k, 0, 0);
    CHECK(wrong == 0);
    if (failures == 0)
        printf("disk_linux_uaccess_wait: done\n");
    return failures != 0;
}
