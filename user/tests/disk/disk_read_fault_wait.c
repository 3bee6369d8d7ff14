/* Disk test of read faults and sys_read that wait for the disk without the
 * kernel lock (docs/design.md, "Device interrupts and disk waits"), run by
 * tests/in_qemu.rs with 2 CPUs and with 1 (argument "one-cpu"), which then
 * checks the image. No timing: only the order of what is seen.
 *
 * /home/usuario/faults.bin (PAGES pages, byte i of page p = p * 3 + i + 7)
 * is written, synced and closed (its cached pages go with its object).
 *
 * Faults: the file is mapped again and the main thread loads one byte of
 * every other page (each load a miss: one device read), publishing before
 * each the page and the disk request count before its fault. A second
 * thread of the process calls sys_meminfo and mincore on the published page
 * in a loop. It must once see the request count past the one before the
 * fault (the fault's read was sent) while mincore says the page is not
 * resident (its read not finished): it made two system calls while the
 * fault waited for the disk. Were the read made under the kernel lock (as
 * before), the read was sent and the page installed in one lock section,
 * and no call of another thread could see the one without the other. The
 * window is short (the disk is fast), so the loads go in rounds until the
 * watcher saw one (at most FAULT_ROUNDS; with the old path no round can).
 * With one CPU the loads run and are checked, but the wait is not
 * observable: the disk is done before the scheduler looks again, so the
 * read is installed as the faulting thread leaves its CPU.
 *
 * Reads: the main thread reads the whole file with one sys_read (PAGES /
 * 32 windows of 32 pages, a device read or two each) while the second
 * thread records every disk request count it sees. It must see one
 * strictly between the counts before and after the call (in one of at
 * most READ_ROUNDS rounds, the file closed between): it made a system
 * call between two of the call's reads. Were the reads made under the
 * kernel lock (as before), the call was one lock section.
 *
 * Then the hostile part: a child process (this program with argument
 * "reader") maps the file and loads every other page in a loop, closing
 * it between rounds so every load reads the disk; once its reads are seen
 * going, it is killed (sys_kill) while it most likely waits for one; its
 * end is status 137, the free frames are back to what they were before it
 * ran, and the file still reads back right. */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>
#include <sys/mman.h>

#define PAGE 4096
#define PAGES 128
#define PATH "/home/usuario/faults.bin"
#define STACK_SIZE (64 * 1024)
#define COUNT_BITS 40
#define MOST_SEEN 4096
#define FAULT_ROUNDS 20
#define READ_ROUNDS 10

static volatile int stop;
/* What the watcher does: check faults (mincore), or record counts. */
static volatile int recording;
/* The page being faulted (above COUNT_BITS) and the disk request count
 * before its fault (below); 0: none yet. One store, so read whole. */
static volatile long published;
static volatile int witnessed, samples;
static unsigned char *volatile mapped;
static volatile long seen[MOST_SEEN];
static volatile int seen_count;

static long disk_requests(void)
{
    struct neo_meminfo mi;
    if (sys_meminfo(&mi) != E_OK)
        return -1;
    return (long)mi.disk_requests;
}

static unsigned char byte_of(long p, long i)
{
    return (unsigned char)(p * 3 + i + 7);
}

/* One look at the published fault: whether its read was sent and its
 * page is not resident yet. */
static int fault_waits(void)
{
    long now = published;
    if (now == 0)
        return 0;
    long page = now >> COUNT_BITS;
    long before = now & ((1L << COUNT_BITS) - 1);
    long requests = disk_requests();
    unsigned char resident = 1;
    /* The mapping may be gone already (the loads are over). */
    if (mincore(mapped + page * PAGE, PAGE, &resident) != 0)
        return 0;
    samples = samples + 1;
    return requests > before && !(resident & 1) && published == now;
}

/* The watcher: counts the faults it saw waiting, or records each new
 * disk request count it sees. */
static int watcher(void *arg)
{
    (void)arg;
    long last = -2;
    while (!stop) {
        if (!recording) {
            if (fault_waits())
                witnessed = witnessed + 1;
            continue;
        }
        long now = disk_requests();
        if (now != last && seen_count < MOST_SEEN) {
            seen[seen_count] = now;
            seen_count = seen_count + 1;
            last = now;
        }
    }
    return 0;
}

/* Maps the file, checks it is not cached, and loads one byte of every
 * other page (checked); with `publish`, tells the watcher of each. */
static void load_every_other(int publish)
{
    int fd = sys_open(PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    unsigned char *m = (unsigned char *)mmap(0, PAGES * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    mapped = m;
    for (long p = 0; p < PAGES; p += 2) {
        if (publish)
            published = (p << COUNT_BITS) | disk_requests();
        volatile unsigned char *at = m + p * PAGE + p;
        CHECK_EQ(*at, byte_of(p, p));
    }
    published = 0;
    CHECK_EQ(munmap(m, PAGES * PAGE), 0);
    CHECK_EQ(sys_close(fd), E_OK);
}

/* Starts the watcher thread on its own stack; its id. */
static int start_watcher(int record)
{
    static void *stack;
    if (!stack)
        stack = mmap(0, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(stack != MAP_FAILED);
    stop = 0;
    recording = record;
    witnessed = samples = seen_count = 0;
    int tid = sys_thread_create(watcher, 0, stack, STACK_SIZE);
    CHECK_GE(tid, 1);
    return tid;
}

static void stop_watcher(int tid)
{
    stop = 1;
    int status = -1;
    CHECK_EQ(sys_thread_join(tid, &status), E_OK);
    CHECK_EQ(status, 0);
}

/* Whether the watcher saw a count strictly between `before` and `after`
 * (the counts it saw are printed when not). */
static int seen_between(long before, long after)
{
    for (int i = 0; i < seen_count; i++)
        if (seen[i] > before && seen[i] < after)
            return 1;
    for (int i = 0; i < seen_count; i++)
        printf("disk_read_fault_wait: the watcher saw %ld\n", seen[i]);
    return 0;
}

/* Read faults, watched: rounds of loads until the watcher saw a fault
 * waiting (at most FAULT_ROUNDS; each round reads the disk again). */
static void faults_watched(int one_cpu)
{
    int tid = start_watcher(0);
    int round = 0;
    long before = disk_requests();
    while (round < (one_cpu ? 1 : FAULT_ROUNDS) && witnessed == 0) {
        load_every_other(1);
        round++;
    }
    long after = disk_requests();
    stop_watcher(tid);
    printf("disk_read_fault_wait: faults: %d rounds, %ld requests, the watcher saw %d of %d "
           "looks waiting\n",
           round, after - before, witnessed, samples);
    CHECK(after - before >= round * PAGES / 2);
    if (!one_cpu)
        CHECK(witnessed > 0);
}

/* One sys_read of the whole file, watched: whether the watcher saw a
 * count strictly between the call's before and after. */
static int read_round(void)
{
    static unsigned char all[PAGES * PAGE];
    int fd = sys_open(PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    int tid = start_watcher(1);
    /* Running before the call: it has seen a count. */
    while (seen_count == 0)
        sys_yield();
    long before = disk_requests();
    CHECK_EQ(sys_read(fd, all, PAGES * PAGE), PAGES * PAGE);
    long after = disk_requests();
    stop_watcher(tid);
    printf("disk_read_fault_wait: read: requests %ld..%ld, the watcher saw %d counts\n", before,
           after, seen_count);
    for (long p = 0; p < PAGES; p++)
        for (long i = 0; i < PAGE; i += 511)
            CHECK_EQ(all[p * PAGE + i], byte_of(p, i));
    CHECK(after - before >= PAGES / 32);
    CHECK_EQ(sys_close(fd), E_OK); /* its pages go: the next round reads the disk */
    return seen_between(before, after);
}

/* The read watched in rounds until the watcher saw it wait (at most
 * READ_ROUNDS): on a loaded host the watcher's CPU may get no turn from
 * the host during one call (seen twice in whole-suite runs); the old path,
 * one lock section, fails every round. */
static void read_watched(void)
{
    int seen = 0;
    for (int round = 0; round < READ_ROUNDS && !seen; round++)
        seen = read_round();
    CHECK(seen);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "reader") == 0) {
        for (;;)
            load_every_other(0);
    }
    int one_cpu = argc > 1 && strcmp(argv[1], "one-cpu") == 0;
    static unsigned char fill[PAGES * PAGE];
    for (long p = 0; p < PAGES; p++)
        for (long i = 0; i < PAGE; i++)
            fill[p * PAGE + i] = byte_of(p, i);
    int fd = sys_open(PATH, O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_write(fd, fill, PAGES * PAGE), PAGES * PAGE);
    CHECK_EQ(sys_fsync(fd), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);

    faults_watched(one_cpu);
    read_watched();
    int status = -1;

    /* Hostile: a reader killed while its faults wait. */
    long baseline = test_free_frames();
    char *child_argv[] = {"disk_read_fault_wait", "reader", 0};
    long start = disk_requests();
    int child = sys_run("/bin/disk_read_fault_wait", child_argv);
    CHECK_GE(child, 1);
    while (disk_requests() < start + PAGES)
        sys_yield();
    CHECK_EQ(sys_kill(child), E_OK);
    CHECK_EQ(sys_wait(&status), child);
    CHECK_EQ(status, NEO_STATUS_KILLED);
    CHECK_FRAMES_BACK(baseline);

    /* Everything still works: the file reads back. */
    load_every_other(0);
    CHECK_FRAMES_BACK(baseline);
    printf("disk_read_fault_wait: done\n");
    return 0;
}
