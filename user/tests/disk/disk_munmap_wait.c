/* Disk test of sys_munmap's write-back waiting for the disk without the
 * kernel lock (docs/design.md, "Device interrupts and disk waits"), run by
 * tests/in_qemu.rs with 2 CPUs and with 1, which then checks the image.
 *
 * Ordering: the main thread dirties every other page of
 * /home/usuario/unmapped.bin (512 pages: 256 runs, many batches) through a
 * sys_mmap mapping and calls sys_munmap while a second thread calls
 * sys_meminfo in a loop, recording every disk request count it sees. It
 * must see one strictly between the counts before and after the munmap,
 * in one of at most WATCH_ROUNDS rounds: impossible when the write-back
 * held the kernel lock throughout. No timing: only the order of the
 * counts. The same for the last sys_close of the file after stores
 * through a POSIX mapping already unmapped.
 *
 * The range stays reserved while the munmap waits: in three more rounds a
 * second thread, once it sees the munmap's writes going, calls mprotect on
 * the range, sys_munmap of the same mapping, and mmap(MAP_FIXED) over one
 * of its pages. Each waits until the munmap is over (a call made while the
 * munmap waited returns only after the munmap's last request), then sees
 * the range unmapped: ENOMEM, E_INVAL, and a new anonymous page. The
 * munmap itself returns E_OK every time.
 *
 * Hostile: a child process (this program with argument "unmapper") maps,
 * dirties and sys_munmaps the file in a loop; once its writes are seen
 * going, it is killed (sys_kill) while it most likely waits; its end is
 * status 137, the free frames come back to what they were (once the
 * flusher has written what its exit left dirty), and the file is
 * then written whole again by this process (sys_munmap E_OK). Final
 * bytes: page p byte i = (p * 7 + i + 3), checked on the image. */
#include <error.h>
#include <errno.h>
#include <syscalls.h>
#include <neo_test.h>
#include <sys/mman.h>
#include <neo_test_disk_watch.h>

#define PAGE 4096
#define PAGES 512
#define PATH "/home/usuario/unmapped.bin"
#define STACK_SIZE (64 * 1024)
/* The watched rounds: the second thread sees a write-back's counts only if
 * its CPU gets turns from the host meanwhile; on a loaded host one
 * write-back can pass without (the whole suite once saw only the counts
 * before and after), so each watch is made again until seen, at most this
 * often. The old path (one lock section) fails every round. */
#define WATCH_ROUNDS 10

enum meddling { WATCH, MPROTECT, MUNMAP, MAP_OVER };

static volatile int stop;
static volatile long munmap_before;
static unsigned char *volatile target;
static volatile enum meddling meddling;
/* What the meddler's call gave, and the request counts right before the
 * call and right after it returned. */
static volatile long meddled;
static volatile long meddled_at;
static volatile long meddled_back;

/* The meddler's one call on the range being unmapped. */
static long meddle(void)
{
    switch (meddling) {
    case MPROTECT:
        return mprotect(target, PAGES * PAGE, PROT_READ) == 0 ? 0 : -errno;
    case MUNMAP:
        return sys_munmap(target, PAGES * PAGE);
    case MAP_OVER: {
        void *p = mmap(target + PAGE, PAGE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0);
        return p == (void *)(target + PAGE) ? 0 : -errno;
    }
    default:
        return 0;
    }
}

/* The second thread: records each new disk request count it sees; in a
 * meddling round, makes its call once the munmap's writes are seen. */
static int second(void *arg)
{
    (void)arg;
    long last = -2;
    int done = meddling == WATCH;
    while (!stop) {
        long now = note_disk_requests(&last);
        if (!done && munmap_before >= 0 && now > munmap_before) {
            meddled_at = now;
            meddled = meddle();
            meddled_back = disk_requests();
            done = 1;
        }
    }
    return 0;
}

static unsigned char byte_of(long p, long i, int round)
{
    return (unsigned char)(p * 7 + i + round);
}

/* A sys_mmap of the whole file with every other page stored to. */
static unsigned char *map_dirty(int fd, int round)
{
    unsigned char *m = (unsigned char *)sys_mmap(fd, 0, PAGES * PAGE);
    CHECK(m != NULL);
    for (long p = 0; p < PAGES; p += 2)
        for (long i = 0; i < PAGE; i++)
            m[p * PAGE + i] = byte_of(p, i, round);
    return m;
}

/* The child of the hostile part: maps, dirties and unmaps until killed. */
static void unmapper_forever(void)
{
    int fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    for (int round = 10;; round++)
        CHECK_EQ(sys_munmap(map_dirty(fd, round), PAGES * PAGE), E_OK);
}

/* Starts the second thread on its own stack for `what`; its id. */
static int start_second(enum meddling what, unsigned char *m)
{
    stop = 0;
    seen_count = 0;
    munmap_before = -1;
    meddling = what;
    target = m;
    meddled = 1;
    void *stack = mmap(0, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(stack != MAP_FAILED);
    int tid = sys_thread_create(second, 0, stack, STACK_SIZE);
    CHECK_GE(tid, 1);
    /* Running before the munmap starts: it has seen a count. */
    while (seen_count == 0)
        sys_yield();
    return tid;
}

static void stop_second(int tid)
{
    stop = 1;
    int status = -1;
    CHECK_EQ(sys_thread_join(tid, &status), E_OK);
    CHECK_EQ(status, 0);
}

/* One round: open the file (afresh: the flusher leaves a new file object
 * alone for 25 s), map and dirty it, start the second thread, sys_munmap;
 * the request counts before and after the munmap. */
static void unmap_round(enum meddling what, long *before, long *after)
{
    int fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = map_dirty(fd, 1);
    int tid = start_second(what, m);
    *before = disk_requests();
    munmap_before = *before;
    CHECK_EQ(sys_munmap(m, PAGES * PAGE), E_OK);
    *after = disk_requests();
    /* The meddler's call comes once the writes are seen: wait for it. */
    while (what != WATCH && meddled == 1)
        sys_yield();
    stop_second(tid);
    CHECK_EQ(sys_close(fd), E_OK);
    CHECK(*after - *before >= PAGES / 2);
    if (what != WATCH && meddled_at < *after)
        /* Made while the munmap was under way: it waited for its end. */
        CHECK(meddled_back >= *after);
}

/* The last close: stores through a POSIX mapping (whose munmap leaves the
 * pages dirty in the page cache: the descriptor holds the file), then
 * sys_close writes them, the second thread watching; the request counts
 * before and after the close. */
static void last_close_round(long *before, long *after)
{
    int fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = mmap(0, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    for (long p = 0; p < PAGES; p += 2)
        for (long i = 0; i < PAGE; i++)
            m[p * PAGE + i] = byte_of(p, i, 2);
    *before = disk_requests();
    CHECK_EQ(munmap(m, PAGES * PAGE), 0);
    CHECK_EQ(disk_requests(), *before); /* nothing written yet */
    int tid = start_second(WATCH, 0);
    *before = disk_requests();
    munmap_before = *before;
    CHECK_EQ(sys_close(fd), E_OK);
    *after = disk_requests();
    stop_second(tid);
    CHECK(*after - *before >= PAGES / 2);
}

/* The number after "dirty=" on the line of `name` in sys_maps (-1: none). */
static long dirty_in_maps(const char *name)
{
    static char maps[8192];
    int n = sys_maps(maps, sizeof maps - 1);
    CHECK_GE(n, 0);
    maps[n] = 0;
    char *line = strstr(maps, name);
    char *at = line ? strstr(line, "dirty=") : 0;
    if (!at)
        return -1;
    long count = 0;
    for (at += 6; *at >= '0' && *at <= '9'; at++)
        count = count * 10 + (*at - '0');
    return count;
}

/* Run with argument "eio" under blkdebug rules failing, once, the first
 * write of page 200's block of /home/usuario/datos.bin (256 pages): every
 * even page stored to (128 runs, 8 batches), the munmap's seventh batch
 * fails: E_IO, the mapping intact with its stores, the pages not written
 * still dirty; the second sys_munmap E_OK. Even page p byte i =
 * (p * 7 + i + 5), checked on the image. */
static void eio_then_ok(void)
{
    long pages = DATOS_SIZE / PAGE;
    int fd = sys_open(DATOS_PATH, O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = (unsigned char *)sys_mmap(fd, 0, DATOS_SIZE);
    CHECK(m != NULL);
    for (long p = 0; p < pages; p += 2)
        for (long i = 0; i < PAGE; i++)
            m[p * PAGE + i] = byte_of(p, i, 5);
    CHECK_EQ(sys_munmap(m, DATOS_SIZE), E_IO);
    long dirty = dirty_in_maps("datos.bin");
    printf("disk_munmap_wait: after E_IO, %ld pages still dirty\n", dirty);
    CHECK(dirty >= 1 && dirty <= pages / 2);
    for (long p = 0; p < pages; p++)
        for (long i = 0; i < PAGE; i += 61)
            CHECK_EQ(m[p * PAGE + i], p % 2 ? DATOS_BYTE(p * PAGE + i) : byte_of(p, i, 5));
    CHECK_EQ(sys_munmap(m, DATOS_SIZE), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);
    printf("disk_munmap_wait: E_IO then E_OK\n");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "unmapper") == 0) {
        unmapper_forever();
        return 1;
    }
    if (argc > 1 && strcmp(argv[1], "eio") == 0) {
        eio_then_ok();
        return 0;
    }
    static unsigned char fill[PAGES * PAGE];
    for (long i = 0; i < PAGES * PAGE; i++)
        fill[i] = 0x5a;
    int fd = sys_open(PATH, O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_write(fd, fill, PAGES * PAGE), PAGES * PAGE);
    CHECK_EQ(sys_fsync(fd), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);

    long before, after;
    int seen = 0;
    for (int round = 1; round <= WATCH_ROUNDS && !seen; round++) {
        unmap_round(WATCH, &before, &after);
        printf("disk_munmap_wait: munmap round %d: requests %ld..%ld, second thread saw %d "
               "counts\n",
               round, before, after, seen_count);
        seen = seen_between("disk_munmap_wait: the second thread", before, after);
    }
    CHECK(seen);

    seen = 0;
    for (int round = 1; round <= WATCH_ROUNDS && !seen; round++) {
        last_close_round(&before, &after);
        printf("disk_munmap_wait: last close round %d: requests %ld..%ld, second thread saw %d "
               "counts\n",
               round, before, after, seen_count);
        seen = seen_between("disk_munmap_wait: the second thread", before, after);
    }
    CHECK(seen);
    unsigned char *m;

    unmap_round(MPROTECT, &before, &after);
    printf("disk_munmap_wait: mprotect meanwhile: %ld at %ld, back at %ld (munmap %ld..%ld)\n",
           meddled, meddled_at, meddled_back, before, after);
    CHECK_EQ(meddled, -ENOMEM);

    unmap_round(MUNMAP, &before, &after);
    printf("disk_munmap_wait: sys_munmap meanwhile: %ld at %ld, back at %ld (munmap %ld..%ld)\n",
           meddled, meddled_at, meddled_back, before, after);
    CHECK_EQ(meddled, E_INVAL);

    unmap_round(MAP_OVER, &before, &after);
    printf("disk_munmap_wait: mmap fixed meanwhile: %ld at %ld, back at %ld (munmap %ld..%ld)\n",
           meddled, meddled_at, meddled_back, before, after);
    CHECK_EQ(meddled, 0);
    CHECK_EQ(target[PAGE + 5], 0); /* the new anonymous page */
    CHECK_EQ(munmap(target + PAGE, PAGE), 0);

    /* Hostile: an unmapper killed while its write-backs go on. */
    long baseline = test_free_frames();
    char *child_argv[] = {"disk_munmap_wait", "unmapper", 0};
    long start = disk_requests();
    int child = sys_run("/bin/disk_munmap_wait", child_argv);
    CHECK_GE(child, 1);
    while (disk_requests() < start + 3 * PAGES / 2)
        sys_yield();
    CHECK_EQ(sys_kill(child), E_OK);
    int status = -1;
    CHECK_EQ(sys_wait(&status), child);
    CHECK_EQ(status, NEO_STATUS_KILLED);
    /* Its mapping's dirty pages are the flusher's to write now. */
    test_wait_frames_back(baseline);

    /* Everything still works: the whole file written again, by mapping. */
    fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    m = (unsigned char *)sys_mmap(fd, 0, PAGES * PAGE);
    CHECK(m != NULL);
    for (long p = 0; p < PAGES; p++)
        for (long i = 0; i < PAGE; i++)
            m[p * PAGE + i] = byte_of(p, i, 3);
    CHECK_EQ(sys_munmap(m, PAGES * PAGE), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);
    CHECK_FRAMES_BACK(baseline);
    printf("disk_munmap_wait: done\n");
    return 0;
}
