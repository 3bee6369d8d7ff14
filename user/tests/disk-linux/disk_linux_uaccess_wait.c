/* disk_linux_uaccess_wait.c - a musl (Linux) program whose calls' buffers
 * lie in mappings of /home files whose pages are not cached: the kernel's
 * access to them reads each page without the kernel lock (docs/design.md,
 * "User memory without the kernel lock"), run by tests/in_qemu.rs. No
 * timing: only the order of what is seen.
 *
 * /home/usuario/fuente.bin (SOURCE pages, byte i = i * 7 + 3) is made,
 * synced and closed (its pages go with its object), then mapped shared
 * read-only and private read-write. Round r uses STRIDE pages from
 * R = STRIDE * r, every other page of them loaded through the mapping
 * first, so that each page the call's access misses is one device read
 * and one wait of its own (the call made again after each):
 * - a write of 2 * WAITS pages from page R of the shared mapping to a /tmp
 *   file (WAITS reads);
 * - a read of 4 pages of a /tmp file into page R + 2 * WAITS of the
 *   private mapping (its first chunk: 2 reads);
 * - STATS stats whose path string crosses from page 1 to page 2 of a
 *   shared mapping of /home/usuario/ruta.bin (made first), mapped for each
 *   and unmapped after (its pages go with its object): 2 reads each.
 * While each runs, a second thread reads the disk's request and interrupt
 * counts (/proc/meminfo's DiskRequests, DiskInterrupts, from one read of
 * it) and whether the call returned, in a loop: it must see a request
 * count strictly between the counts before and after the call (some of the
 * call's reads sent, not all) before the call returned, in one of at most
 * ROUNDS rounds. Were the pages read under the kernel lock by the access
 * (as before), the call was one lock section: no call could run between
 * its reads. (More requests than interrupts, which the other disk-wait
 * tests look for, is not enough here: a read made under the lock may have
 * its interrupt counted after the lock goes, before the call returns.)
 * Each call's count, the descriptor's position (moved once) and the bytes
 * are checked.
 *
 * Hostile: a forked child writing from pages of the shared mapping not
 * cached, in a loop, is killed (SIGKILL) once its reads are seen going; it
 * ends by the signal and the mapping then reads right.
 *
 * With argument "eio" (under blkdebug rules failing once the reads of
 * blocks 2 and 5 of /home/usuario/datos.bin, mapped as above): a write
 * from page 2 of the shared mapping gives EIO with nothing written (as the
 * read under the lock gave), then the whole count; a read into page 5 of
 * the private mapping likewise. */
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
#include "../linux/linux_meminfo.h"

#include "../linux/linux_check.h"

#define PAGE 4096
#define DATOS_PAGES 256
#define ROUNDS 10
#define WAITS 8
/* A round's pages: the write's 2 * WAITS, the read's 4, one for the child. */
#define STRIDE (2 * WAITS + 5)
#define SOURCE (ROUNDS * STRIDE + 1)
#define IN_LEN (4 * PAGE)
#define PIECE 100
#define STATS 4
#define DATOS "/home/usuario/datos.bin"
#define FUENTE "/home/usuario/fuente.bin"
#define RUTA "/home/usuario/ruta.bin"
#define OUT "/tmp/uaccess.out"
#define IN "/tmp/uaccess.in"

static unsigned char back[2 * WAITS * PAGE];
static unsigned char input[IN_LEN];

static unsigned char file_byte(long i)
{
    return (unsigned char)(i * 7 + 3);
}

static unsigned char input_byte(long i)
{
    return (unsigned char)(250 - i);
}

/* How many bytes of pages [page, page + pages) of a mapping of one of the
 * files at `map` are not the file's, outside [from, from + len) (counted
 * from `page`'s start), which must hold the input's first bytes. */
static int wrong_in(const unsigned char *map, long page, long pages, long from, long len)
{
    int wrong = 0;
    for (long i = 0; i < pages * PAGE; i++) {
        unsigned char want =
            i >= from && i < from + len ? input_byte(i - from) : file_byte(page * PAGE + i);
        wrong += map[page * PAGE + i] != want;
    }
    return wrong;
}

#define MOST_SEEN 4096

static volatile int stop;
static volatile int returned;
static volatile long seen_requests[MOST_SEEN];
static volatile long seen_interrupts[MOST_SEEN];
static volatile int seen_returned[MOST_SEEN];
static volatile int seen_count;

/* Records each change of the two counts (one read of /proc/meminfo for
 * both), with whether the call had returned, until told to stop. */
static void *watcher(void *arg)
{
    (void)arg;
    char buf[8192];
    long last_r = -2, last_i = -2;
    while (!stop) {
        const char *text = read_meminfo_into(buf, sizeof buf);
        int done = returned;
        if (!text)
            continue;
        long r = meminfo_row(text, "DiskRequests:");
        long i = meminfo_row(text, "DiskInterrupts:");
        if ((r != last_r || i != last_i) && seen_count < MOST_SEEN) {
            seen_requests[seen_count] = r;
            seen_interrupts[seen_count] = i;
            seen_returned[seen_count] = done;
            seen_count = seen_count + 1;
            last_r = r;
            last_i = i;
        }
    }
    return 0;
}

static pthread_t watch;
static long before;

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
}

/* The call returned: stops the watcher; whether it saw a request count
 * strictly between those before and after the call before the call
 * returned. The call made at least `reads` requests. */
static int watch_end(const char *what, int round, long reads)
{
    returned = 1;
    long after = meminfo_now("DiskRequests:");
    stop = 1;
    CHECK(pthread_join(watch, 0) == 0);
    printf("disk_linux_uaccess_wait: %s round %d: requests %ld..%ld, watcher saw %d counts\n", what,
           round, before, after, seen_count);
    CHECK(after - before >= reads);
    for (int s = 0; s < seen_count; s++)
        if (seen_requests[s] > before && seen_requests[s] < after && !seen_returned[s])
            return 1;
    return 0;
}

/* Loads a byte of page `page` of a mapping (a fault: the page cached). */
static void load(const unsigned char *map, long page)
{
    volatile unsigned char b = map[page * PAGE];
    (void)b;
}

/* Round `round`'s write from the shared mapping: whether it was seen
 * waiting. */
static int watched_write(const unsigned char *shared, int round)
{
    long page = (long)STRIDE * round;
    for (long p = 1; p < 2 * WAITS; p += 2)
        load(shared, page + p);
    int out = open(OUT, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(out >= 0);
    watch_start();
    ssize_t n = write(out, shared + page * PAGE, sizeof back);
    int seen = watch_end("write", round, WAITS);
    CHECK(n == (ssize_t)sizeof back);
    CHECK(lseek(out, 0, SEEK_CUR) == (off_t)sizeof back);
    CHECK(pread(out, back, sizeof back, 0) == (ssize_t)sizeof back);
    CHECK(close(out) == 0);
    int wrong = 0;
    for (long i = 0; i < (long)sizeof back; i++)
        wrong += back[i] != file_byte(page * PAGE + i);
    CHECK(wrong == 0);
    return seen;
}

/* Round `round`'s read into the private mapping: whether it was seen
 * waiting. */
static int watched_read(unsigned char *private, int round)
{
    long page = (long)STRIDE * round + 2 * WAITS;
    load(private, page + 1);
    load(private, page + 3);
    int in = open(IN, O_RDONLY);
    CHECK(in >= 0);
    watch_start();
    ssize_t n = read(in, private + page * PAGE, IN_LEN);
    int seen = watch_end("read", round, 2);
    CHECK(n == IN_LEN);
    CHECK(lseek(in, 0, SEEK_CUR) == IN_LEN);
    CHECK(close(in) == 0);
    CHECK(wrong_in(private, page, 4, 0, IN_LEN) == 0);
    return seen;
}

/* Round `round`'s stat of the path ruta.bin holds, mapped for it: whether
 * it was seen waiting. */
static int watched_stat(int round)
{
    int fd = open(RUTA, O_RDONLY);
    CHECK(fd >= 0);
    const char *map = mmap(0, 3 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(map != MAP_FAILED);
    CHECK(close(fd) == 0);
    struct stat st;
    watch_start();
    int r = stat(map + 2 * PAGE - 6, &st);
    int seen = watch_end("stat", round, 2);
    CHECK(r == 0 && st.st_size == DATOS_PAGES * PAGE);
    CHECK(munmap((void *)map, 3 * PAGE) == 0);
    return seen;
}

/* `path`, made anew with `len` bytes of `bytes`, synced and closed. */
static void make(const char *path, const void *bytes, long len)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, bytes, len) == len);
    CHECK(fsync(fd) == 0);
    CHECK(close(fd) == 0);
}

/* fuente.bin; ruta.bin, 3 pages, the path of datos.bin from 6 bytes
 * before page 2 ("/home/" in page 1). */
static void make_files(void)
{
    static unsigned char all[SOURCE * PAGE];
    for (long i = 0; i < SOURCE * PAGE; i++)
        all[i] = file_byte(i);
    make(FUENTE, all, sizeof all);
    static char ruta[3 * PAGE];
    strcpy(ruta + 2 * PAGE - 6, DATOS);
    make(RUTA, ruta, sizeof ruta);
}

/* The /tmp file reads take their bytes from. */
static void make_input(void)
{
    for (long i = 0; i < IN_LEN; i++)
        input[i] = input_byte(i);
    int fd = open(IN, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, input, IN_LEN) == IN_LEN);
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
        wrong += back[i] != file_byte(2 * PAGE + i);
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
    CHECK(wrong_in(private, 5, 1, 10, PIECE) == 0);
    printf("disk_linux_uaccess_wait: eio: EIO with nothing moved, then the whole count\n");
}

/* `pages` pages of `path` mapped shared read-only, and private read-write
 * (`*private`). */
static unsigned char *map_file(const char *path, long pages, unsigned char **private)
{
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    unsigned char *shared = mmap(0, pages * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    *private = mmap(0, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(shared != MAP_FAILED && *private != MAP_FAILED);
    CHECK(close(fd) == 0);
    return shared;
}

int main(int argc, char **argv)
{
    make_input();
    unsigned char *private;
    if (argc > 1 && strcmp(argv[1], "eio") == 0) {
        unsigned char *shared = map_file(DATOS, DATOS_PAGES, &private);
        eio(shared, private);
        if (failures == 0)
            printf("disk_linux_uaccess_wait: done\n");
        return failures != 0;
    }
    make_files();
    unsigned char *shared = map_file(FUENTE, SOURCE, &private);
    /* datos.bin's metadata cached: a stat's only reads are its path's. */
    struct stat st;
    CHECK(stat(DATOS, &st) == 0 && st.st_size == DATOS_PAGES * PAGE);
    int round = 0, seen_write = 0, seen_read = 0, seen_stat = 0;
    while (round < ROUNDS && !(seen_write && seen_read && seen_stat)) {
        seen_write |= watched_write(shared, round);
        seen_read |= watched_read(private, round);
        for (int s = 0; s < STATS; s++)
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
        for (long k = 0;; k = (k + 1) % ROUNDS)
            if (pwrite(out, shared + (STRIDE - 1 + STRIDE * k) * PAGE, PAGE, 0) != PAGE) {
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
    for (long k = 0; k < ROUNDS; k++)
        wrong += wrong_in(shared, STRIDE - 1 + STRIDE * k, 1, 0, 0);
    CHECK(wrong == 0);
    if (failures == 0)
        printf("disk_linux_uaccess_wait: done\n");
    return failures != 0;
}
