/* Disk test of write-backs that wait for the disk without the kernel lock
 * (docs/design.md, "Device interrupts and disk waits"), run by
 * tests/in_qemu.rs with 2 CPUs and with 1, which then checks the image.
 *
 * The writer thread dirties every other page of /home/usuario/spread.bin
 * (512 pages: 256 runs of one page, many batches of device writes) and
 * calls msync(MS_SYNC), then dirties the other pages, msync(MS_ASYNC)
 * (which writes nothing) and calls sys_fsync. Meanwhile a second thread of the process calls sys_meminfo in
 * a loop and records every disk request count it sees. It must see one
 * strictly between the counts before and after each call (in one of at
 * most WATCH_ROUNDS rounds): it made a system call while the write-back
 * was under way. Were the write-back
 * done under the kernel lock (as before), no call of another thread could
 * run in between, and every count seen would be at most the one before or
 * at least the one after. No timing: only the order of the counts.
 *
 * Then the hostile part: a child process (this program with argument
 * "writer") rewrites and msyncs the file in a loop; once its writes are
 * seen going, it is killed (sys_kill) while it most likely waits for the
 * disk; its end is status 137, and the file is then written whole again
 * by this process (msync and munmap E_OK): the disk and the write-back
 * records are left usable. Final bytes: page p byte i = (p * 5 + i + 1)
 * for every page (checked on the image by the harness). */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>
#include <sys/mman.h>
#include <neo_test_disk_watch.h>

#define PAGE 4096
#define PAGES 512
#define PATH "/home/usuario/spread.bin"
#define STACK_SIZE (64 * 1024)
/* The watcher sees a write-back's counts only if its CPU gets turns from
 * the host meanwhile; on a loaded host one write-back can pass without, so
 * each watch is made again until seen, at most this often. The old path
 * (one lock section) fails every round. */
#define WATCH_ROUNDS 10

static volatile int stop;

/* The watcher: records each new disk request count it sees. */
static int watcher(void *arg)
{
    (void)arg;
    long last = -2;
    while (!stop)
        note_disk_requests(&last);
    return 0;
}

static unsigned char byte_of(long p, long i, int round)
{
    return (unsigned char)(p * 5 + i + round);
}

/* Dirties every other page of the mapping (round `round`). */
static void dirty_every_other(unsigned char *m, int round)
{
    for (long p = 0; p < PAGES; p += 2)
        for (long i = 0; i < PAGE; i++)
            m[p * PAGE + i] = byte_of(p, i, round);
}

/* The child of the hostile part: rewrites and msyncs until killed. */
static void writer_forever(void)
{
    int fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = (unsigned char *)sys_mmap(fd, 0, PAGES * PAGE);
    CHECK(m != NULL);
    for (int round = 10;; round++) {
        dirty_every_other(m, round);
        CHECK_EQ(msync(m, PAGES * PAGE, MS_SYNC), 0);
    }
}

/* Starts the watcher thread on its own stack; its id. */
static int start_watcher(void)
{
    stop = 0;
    seen_count = 0;
    void *stack = mmap(0, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(stack != MAP_FAILED);
    int tid = sys_thread_create(watcher, 0, stack, STACK_SIZE);
    CHECK_GE(tid, 1);
    /* Running before the write-back starts: it has seen a count. */
    while (seen_count == 0)
        sys_yield();
    return tid;
}

static void stop_watcher(int tid)
{
    stop = 1;
    int status = -1;
    CHECK_EQ(sys_thread_join(tid, &status), E_OK);
    CHECK_EQ(status, 0);
}

/* msync(MS_SYNC) of 256 scattered dirty pages, watched: whether the
 * watcher saw a count strictly between the call's before and after. */
static int msync_round(int fd)
{
    unsigned char *m = (unsigned char *)sys_mmap(fd, 0, PAGES * PAGE);
    CHECK(m != NULL);
    dirty_every_other(m, 1);
    int tid = start_watcher();
    long before = disk_requests();
    CHECK_EQ(msync(m, PAGES * PAGE, MS_SYNC), 0);
    long after = disk_requests();
    stop_watcher(tid);
    printf("disk_wait_others_run: msync: requests %ld..%ld, watcher saw %d counts\n", before,
           after, seen_count);
    CHECK(after - before >= PAGES / 2);
    CHECK_EQ(sys_munmap(m, PAGES * PAGE), E_OK);
    return seen_between("disk_wait_others_run: the watcher", before, after);
}

/* fsync of 256 scattered dirty pages, watched: the odd ones, stored
 * through a mapping that msync(MS_ASYNC) leaves dirty (write-protected). */
static int fsync_round(int fd)
{
    unsigned char *m = (unsigned char *)sys_mmap(fd, 0, PAGES * PAGE);
    CHECK(m != NULL);
    for (long p = 1; p < PAGES; p += 2)
        for (long i = 0; i < PAGE; i++)
            m[p * PAGE + i] = byte_of(p, i, 1);
    CHECK_EQ(msync(m, PAGES * PAGE, MS_ASYNC), 0);
    int tid = start_watcher();
    long before = disk_requests();
    CHECK_EQ(sys_fsync(fd), E_OK);
    long after = disk_requests();
    stop_watcher(tid);
    printf("disk_wait_others_run: fsync: requests %ld..%ld, watcher saw %d counts\n", before,
           after, seen_count);
    CHECK(after - before >= PAGES / 2);
    int seen = seen_between("disk_wait_others_run: the watcher", before, after);
    before = disk_requests();
    CHECK_EQ(sys_munmap(m, PAGES * PAGE), E_OK);
    CHECK_EQ(disk_requests(), before); /* fsync left nothing dirty */
    return seen;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "writer") == 0) {
        writer_forever();
        return 1;
    }
    static unsigned char fill[PAGES * PAGE];
    for (long i = 0; i < PAGES * PAGE; i++)
        fill[i] = 0x5a;
    int fd = sys_open(PATH, O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_write(fd, fill, PAGES * PAGE), PAGES * PAGE);
    CHECK_EQ(sys_fsync(fd), E_OK);

    int seen = 0;
    for (int round = 1; round <= WATCH_ROUNDS && !seen; round++)
        seen = msync_round(fd);
    CHECK(seen);
    seen = 0;
    for (int round = 1; round <= WATCH_ROUNDS && !seen; round++)
        seen = fsync_round(fd);
    CHECK(seen);

    /* Hostile: a writer killed while its write-backs go on. */
    char *child_argv[] = {"disk_wait_others_run", "writer", 0};
    long start = disk_requests();
    int child = sys_run("/bin/disk_wait_others_run", child_argv);
    CHECK_GE(child, 1);
    while (disk_requests() < start + 3 * PAGES / 2)
        sys_yield();
    CHECK_EQ(sys_kill(child), E_OK);
    int status = -1;
    CHECK_EQ(sys_wait(&status), child);
    CHECK_EQ(status, NEO_STATUS_KILLED);

    /* Everything still works: the whole file written again, by mapping. */
    unsigned char *m = (unsigned char *)sys_mmap(fd, 0, PAGES * PAGE);
    CHECK(m != NULL);
    for (long p = 0; p < PAGES; p++)
        for (long i = 0; i < PAGE; i++)
            m[p * PAGE + i] = byte_of(p, i, 1);
    CHECK_EQ(msync(m, PAGES * PAGE, MS_SYNC), 0);
    CHECK_EQ(sys_munmap(m, PAGES * PAGE), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);
    printf("disk_wait_others_run: done\n");
    return 0;
}
