/* Disk test of NeoOS sys_open calls that change the volume (O_CREAT of a
 * new file, O_TRUNC of one with data), whose metadata writes (directory
 * block, inode, bitmaps) and device flush are made without the kernel
 * lock (docs/design.md, "Their metadata writes too"), run by
 * tests/in_qemu.rs.
 *
 * Each open is made under the lock with no write there; the blocks it
 * changed are then written, all started at once, then the device is
 * flushed, the caller asleep meanwhile. A watcher thread calling
 * sys_meminfo in a loop (noting with each change of the disk's request
 * and interrupt counts whether the open had returned) must see, while the
 * open had not returned, a request count strictly between the counts
 * before and after it (its writes sent, its flush not: the paths are
 * looked up first, so the open reads nothing before), or its last count
 * with the interrupt count below the one after it (its flush on the
 * device): a call of another thread ran while the open's requests were
 * on the device. Written and flushed under the lock, as before, every
 * request's interrupt was taken before the lock was let go. In rounds (a
 * new file each), at most WATCH_ROUNDS, for each kind of open.
 *
 * Hostile: a child process (this program with argument "truncer") opens
 * a file with O_TRUNC, writes a byte and closes it in a loop; once its
 * requests are seen going it is killed (sys_kill): status 137, the
 * frames back, the file there.
 *
 * With argument "eio", under a blkdebug rule failing once the first write
 * of /usuario's directory block: an open creating /home/usuario/nuevo-eio
 * gives E_IO (the file is made, its descriptor taken back), an open
 * without O_CREAT then finds it. */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>
#include <sys/mman.h>
#include <neo_test_disk_watch.h>

#define STACK_SIZE (64 * 1024)
#define WATCH_ROUNDS 10

static volatile int stop;
/* Whether the watched open had returned, noted with each change seen. */
static volatile int returned;
static volatile long seen_interrupts[MOST_SEEN];
static volatile int seen_returned[MOST_SEEN];

/* The watcher: records each change of the disk's request and interrupt
 * counts, with whether the open had returned. */
static int watcher(void *arg)
{
    (void)arg;
    long last_r = -2, last_i = -2;
    while (!stop) {
        int done = returned;
        struct neo_meminfo mi;
        if (sys_meminfo(&mi) != E_OK)
            continue;
        long r = (long)mi.disk_requests, i = (long)mi.disk_interrupts;
        if ((r != last_r || i != last_i) && seen_count < MOST_SEEN) {
            seen[seen_count] = r;
            seen_interrupts[seen_count] = i;
            seen_returned[seen_count] = done;
            seen_count = seen_count + 1;
            last_r = r;
            last_i = i;
        }
    }
    return 0;
}

static long disk_interrupts(void)
{
    struct neo_meminfo mi = test_meminfo();
    return (long)mi.disk_interrupts;
}

/* Whether the watcher saw, while the open had not returned, a request
 * count strictly between `before` and `after` (its writes sent, its flush
 * not) or the count `after` with fewer interrupts than `interrupts_after`
 * (its flush sent and not done). */
static int seen_while_open(long before, long after, long interrupts_after)
{
    for (int i = 0; i < seen_count; i++) {
        if (seen_returned[i])
            continue;
        if (seen[i] > before && seen[i] < after)
            return 1;
        if (seen[i] == after && seen_interrupts[i] < interrupts_after)
            return 1;
    }
    for (int i = 0; i < seen_count; i++)
        printf("disk_neo_open_wait: the watcher saw requests %ld interrupts %ld (%s)\n", seen[i],
               seen_interrupts[i], seen_returned[i] ? "returned" : "not returned");
    return 0;
}

static int start_watcher(void)
{
    stop = 0;
    seen_count = 0;
    static void *stack;
    if (!stack)
        stack = mmap(0, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(stack != MAP_FAILED);
    int tid = sys_thread_create(watcher, 0, stack, STACK_SIZE);
    CHECK_GE(tid, 1);
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

/* Writes /home/usuario/KIND-NN into `out`. */
static void file_path(char *out, const char *kind, int n)
{
    char *p = out;
    const char *head = "/home/usuario/";
    while (*head)
        *p++ = *head++;
    while (*kind)
        *p++ = *kind++;
    *p++ = '-';
    *p++ = (char)('0' + n / 10);
    *p++ = (char)('0' + n % 10);
    *p = 0;
}

/* A file of two pages, on the disk. */
static void make_file(const char *path)
{
    static char page[4096];
    for (int i = 0; i < 4096; i++)
        page[i] = 'n';
    int fd = sys_open(path, O_RDWR | O_CREAT);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_write(fd, page, 4096), 4096);
    CHECK_EQ(sys_write(fd, page, 4096), 4096);
    CHECK_EQ(sys_fsync(fd), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);
}

/* A watched open of round `n` (`truncating`: O_TRUNC of a file with data;
 * else O_CREAT of a new file): whether the watcher saw a count strictly
 * between. */
static int open_round(int truncating, int n)
{
    char path[64];
    file_path(path, truncating ? "neo-trunc" : "neo-creat", n);
    struct neo_stat st;
    if (truncating) {
        make_file(path);
        CHECK_EQ(sys_stat(path, &st), E_OK);
    } else {
        /* The walk of the parent cached; the name not there. */
        CHECK_EQ(sys_stat(path, &st), E_NOENT);
    }
    returned = 0;
    int tid = start_watcher();
    long before = disk_requests();
    int fd = sys_open(path, truncating ? O_WRONLY | O_TRUNC : O_RDWR | O_CREAT);
    returned = 1;
    long after = disk_requests();
    long interrupts_after = disk_interrupts();
    stop_watcher(tid);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_close(fd), E_OK);
    CHECK_EQ(sys_stat(path, &st), E_OK);
    CHECK_EQ(st.size, 0);
    printf("disk_neo_open_wait: %s %s: requests %ld..%ld, watcher saw %d counts\n",
           truncating ? "open O_TRUNC" : "open O_CREAT", path, before, after, seen_count);
    CHECK(after - before >= 2);
    return seen_while_open(before, after, interrupts_after);
}

static void truncer_forever(void)
{
    char path[64];
    file_path(path, "neo-kill", 0);
    for (;;) {
        int fd = sys_open(path, O_WRONLY | O_TRUNC);
        if (fd >= 0) {
            sys_write(fd, "k", 1);
            sys_close(fd);
        }
    }
}

/* The "eio" run: the creating open's failed write gives E_IO, the file
 * made. */
static int eio_run(void)
{
    const char *path = "/home/usuario/nuevo-eio";
    CHECK_EQ(sys_open(path, O_RDWR | O_CREAT), E_IO);
    int fd = sys_open(path, O_RDWR);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_write(fd, "eio!", 4), 4);
    CHECK_EQ(sys_close(fd), E_OK);
    printf("disk_neo_open_wait: eio: E_IO then the file is there\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "truncer") == 0) {
        truncer_forever();
        return 1;
    }
    if (argc > 1 && strcmp(argv[1], "eio") == 0)
        return eio_run();

    for (int truncating = 0; truncating < 2; truncating++) {
        int seen = 0;
        for (int n = 0; n < WATCH_ROUNDS && !seen; n++)
            seen = open_round(truncating, n);
        CHECK(seen);
    }

    /* Hostile: a truncer killed while its opens wait for the disk. */
    char path[64];
    file_path(path, "neo-kill", 0);
    make_file(path);
    long baseline = test_free_frames();
    char *child_argv[] = {"disk_neo_open_wait", "truncer", 0};
    long start = disk_requests();
    int child = sys_run("/bin/disk_neo_open_wait", child_argv);
    CHECK_GE(child, 1);
    while (disk_requests() < start + 20)
        sys_yield();
    CHECK_EQ(sys_kill(child), E_OK);
    int status = -1;
    CHECK_EQ(sys_wait(&status), child);
    CHECK_EQ(status, NEO_STATUS_KILLED);
    test_wait_frames_back(baseline);
    struct neo_stat st;
    CHECK_EQ(sys_stat(path, &st), E_OK);
    CHECK(st.size <= 1);
    printf("disk_neo_open_wait: done\n");
    return 0;
}
