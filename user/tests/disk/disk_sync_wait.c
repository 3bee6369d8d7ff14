/* Disk test of the closing sync of a write-back, which waits for the disk
 * without the kernel lock (docs/design.md, "Write-backs without the kernel
 * lock"), run by tests/in_qemu.rs with 2 CPUs and with 1, which then
 * checks the image.
 *
 * An fsync of one page rewritten by sys_write sends three requests: the
 * page's write, the write of the inode's block (its times, deferred to the
 * sync) and the device's flush, each started only once the one before is
 * done. A watcher thread of the process calls sys_meminfo in a loop and
 * records each change of the disk's request and interrupt counts, with
 * whether the fsync had returned (read after the counts). It must see the
 * call's last count (the flush sent) with the interrupt count below the
 * one after the call and the fsync not returned: a system call ran while
 * the flush was on the device. The old flush was sent and waited for
 * under the lock, its completion interrupt taken before the lock was let
 * go. In one of at most WATCH_ROUNDS rounds (the host is loaded: the
 * watcher's CPU may get no turn during a wait). No timing: only the order
 * of counts. Whether it saw the count just before the last (the inode's
 * write in flight, the flush not sent) is reported, not required: that
 * write is a 4 KiB write QEMU completes at once, and in the runs made the
 * watcher never looked in time (the host flush takes long enough).
 *
 * Then the hostile part: a child process (this program with argument
 * "writer") rewrites a page and fsyncs in a loop; once its requests are
 * seen going, it is killed (sys_kill) while it most likely waits for the
 * disk (three waits a loop); its end is status 137, the frames come back,
 * and this process then writes and fsyncs the whole file (E_OK): the disk
 * and the write-back records are left usable. Final bytes: page p byte i =
 * (p * 7 + i + 3) (checked on the image by the harness, with e2fsck).
 *
 * With argument "eio", under a blkdebug rule failing once the first write
 * of the inode-table sector of /home/usuario/datos.bin: 100 bytes written
 * at its start, the fsync's inode write fails: E_IO (no flush sent, the
 * page still dirty, the inode's change still pending); the second fsync
 * writes both and returns E_OK. Bytes 0..99 = (i * 3 + 1) on the image. */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>
#include <sys/mman.h>

#define PAGE 4096
#define PAGES 16
#define PATH "/home/usuario/sync.bin"
#define STACK_SIZE (64 * 1024)
#define WATCH_ROUNDS 10
#define MOST_SAMPLES 4096

static volatile int stop;
static volatile int fsync_returned;
/* Each change of the counts the watcher saw: requests, interrupts, and
 * whether the fsync had returned when it looked. */
static volatile long sample_requests[MOST_SAMPLES];
static volatile long sample_interrupts[MOST_SAMPLES];
static volatile int sample_returned[MOST_SAMPLES];
static volatile int samples;

static void counts(long *requests, long *interrupts)
{
    struct neo_meminfo mi;
    CHECK_EQ(sys_meminfo(&mi), E_OK);
    *requests = (long)mi.disk_requests;
    *interrupts = (long)mi.disk_interrupts;
}

/* The watcher: records each change of the counts. */
static int watcher(void *arg)
{
    (void)arg;
    long last_requests = -2, last_interrupts = -2;
    while (!stop) {
        long requests, interrupts;
        counts(&requests, &interrupts);
        int returned = fsync_returned;
        int changed = requests != last_requests || interrupts != last_interrupts;
        if (changed && samples < MOST_SAMPLES) {
            sample_requests[samples] = requests;
            sample_interrupts[samples] = interrupts;
            sample_returned[samples] = returned;
            samples = samples + 1;
            last_requests = requests;
            last_interrupts = interrupts;
        }
    }
    return 0;
}

static unsigned char page_buf[PAGE];

/* Fills page_buf as page `p` of round `round`. */
static void fill(long p, int round)
{
    for (long i = 0; i < PAGE; i++)
        page_buf[i] = (unsigned char)(p * 7 + i + round);
}

/* The child of the hostile part: rewrites page 0 and fsyncs until killed. */
static void writer_forever(void)
{
    for (int round = 10;; round++) {
        int fd = sys_open(PATH, O_RDWR);
        CHECK_GE(fd, 0);
        fill(0, round);
        CHECK_EQ(sys_write(fd, page_buf, PAGE), PAGE);
        CHECK_EQ(sys_fsync(fd), E_OK);
        CHECK_EQ(sys_close(fd), E_OK);
    }
}

/* What a round saw. */
struct seen {
    int inode_write;
    int flush;
};

/* One watched fsync of page 0 rewritten (round `round`). */
static struct seen sync_round(int round)
{
    int fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    fill(0, round);
    CHECK_EQ(sys_write(fd, page_buf, PAGE), PAGE);
    stop = 0;
    fsync_returned = 0;
    samples = 0;
    void *stack = mmap(0, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(stack != MAP_FAILED);
    int tid = sys_thread_create(watcher, 0, stack, STACK_SIZE);
    CHECK_GE(tid, 1);
    while (samples == 0)
        sys_yield();
    long before, before_interrupts, after, after_interrupts;
    counts(&before, &before_interrupts);
    CHECK_EQ(sys_fsync(fd), E_OK);
    fsync_returned = 1;
    counts(&after, &after_interrupts);
    stop = 1;
    int status = -1;
    CHECK_EQ(sys_thread_join(tid, &status), E_OK);
    CHECK_EQ(status, 0);
    CHECK_EQ(munmap(stack, STACK_SIZE), 0);
    CHECK_EQ(sys_close(fd), E_OK);
    /* The page's write, the inode's, the flush. */
    CHECK(after - before >= 3);
    struct seen seen = {0, 0};
    for (int s = 0; s < samples; s++) {
        long r = sample_requests[s];
        if (r == after - 1)
            seen.inode_write = 1;
        if (r == after && sample_interrupts[s] < after_interrupts && !sample_returned[s])
            seen.flush = 1;
    }
    printf("disk_sync_wait: round %d: requests %ld..%ld, interrupts %ld..%ld, %d changes seen, "
           "inode write %s, flush %s\n",
           round, before, after, before_interrupts, after_interrupts, samples,
           seen.inode_write ? "seen" : "not seen", seen.flush ? "seen" : "not seen");
    if (!seen.flush)
        for (int s = 0; s < samples; s++)
            printf("disk_sync_wait: saw requests %ld interrupts %ld%s\n", sample_requests[s],
                   sample_interrupts[s], sample_returned[s] ? " after the return" : "");
    return seen;
}

/* The "eio" run: the sync's inode write fails once. */
static int eio_run(void)
{
    int fd = sys_open(DATOS_PATH, O_RDWR);
    CHECK_GE(fd, 0);
    for (int i = 0; i < 100; i++)
        page_buf[i] = (unsigned char)(i * 3 + 1);
    CHECK_EQ(sys_write(fd, page_buf, 100), 100);
    long before, ignored;
    counts(&before, &ignored);
    CHECK_EQ(sys_fsync(fd), E_IO);
    long after;
    counts(&after, &ignored);
    /* The page's write and the inode's, no flush after the failure. */
    printf("disk_sync_wait: eio: failed fsync sent %ld requests\n", after - before);
    CHECK_EQ(after - before, 2);
    CHECK_EQ(sys_fsync(fd), E_OK);
    long last;
    counts(&last, &ignored);
    /* The page again (still dirty), the inode again (still pending), the flush. */
    CHECK_EQ(last - after, 3);
    CHECK_EQ(sys_close(fd), E_OK);
    printf("disk_sync_wait: eio: E_IO then E_OK\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "writer") == 0) {
        writer_forever();
        return 1;
    }
    if (argc > 1 && strcmp(argv[1], "eio") == 0)
        return eio_run();
    int fd = sys_open(PATH, O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(fd, 0);
    for (long p = 0; p < PAGES; p++) {
        fill(p, 1);
        CHECK_EQ(sys_write(fd, page_buf, PAGE), PAGE);
    }
    CHECK_EQ(sys_fsync(fd), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);

    int inode_write = 0, flush = 0;
    for (int round = 1; round <= WATCH_ROUNDS && !flush; round++) {
        struct seen seen = sync_round(round);
        inode_write |= seen.inode_write;
        flush |= seen.flush;
    }
    printf("disk_sync_wait: the inode's write in flight %s\n", inode_write ? "seen" : "not seen");
    CHECK(flush);

    /* Hostile: a writer killed while its fsyncs go on. */
    long baseline = test_free_frames();
    char *child_argv[] = {"disk_sync_wait", "writer", 0};
    long start, ignored;
    counts(&start, &ignored);
    int child = sys_run("/bin/disk_sync_wait", child_argv);
    CHECK_GE(child, 1);
    long now = start;
    while (now < start + 30) {
        sys_yield();
        counts(&now, &ignored);
    }
    CHECK_EQ(sys_kill(child), E_OK);
    int status = -1;
    CHECK_EQ(sys_wait(&status), child);
    CHECK_EQ(status, NEO_STATUS_KILLED);
    test_wait_frames_back(baseline);

    /* Everything still works: the whole file written again. */
    fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    for (long p = 0; p < PAGES; p++) {
        fill(p, 3);
        CHECK_EQ(sys_write(fd, page_buf, PAGE), PAGE);
    }
    CHECK_EQ(sys_fsync(fd), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);
    printf("disk_sync_wait: done\n");
    return 0;
}
