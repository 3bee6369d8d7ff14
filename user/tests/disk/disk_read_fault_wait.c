/* Disk test of read faults that wait for the disk without the kernel lock
 * (docs/design.md, "Device interrupts and disk waits"), run by
 * tests/in_qemu.rs with 2 CPUs and with 1, which then checks the image.
 *
 * /home/usuario/faults.bin (PAGES pages, byte i of page p = p * 3 + i + 7)
 * is written, synced and closed (its cached pages go with its object), then
 * mapped again: the main thread loads one byte of every other page (each
 * load a miss: one device read), publishing before each the page and the
 * disk request count before its fault. A second thread of the process
 * calls sys_meminfo and mincore on the published page in a loop. It must
 * once see the request count past the one before the fault (the fault's
 * read was sent) while mincore says the page is not resident (its read not
 * finished): it made two system calls while the fault waited for the disk.
 * Were the read made under the kernel lock (as before), the read was sent
 * and the page installed in one lock section, and no call of another
 * thread could see the one without the other. No timing: only the order.
 *
 * With one CPU (argument "one-cpu") the disk is done before the scheduler
 * looks again (the read is installed as the faulting thread leaves its
 * CPU), so the watcher checks instead that the main thread had not come
 * back from its fault (`returned`, stored right after each load): with
 * the read made under the lock, the fault kept the only CPU until it
 * returned (a timer tick in kernel mode does not preempt), so a call of
 * another thread could not run between the read being sent and the load
 * being done (but for a tick landing on the two instructions between the
 * fault's return and that store).
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
#define PAGES 64
#define PATH "/home/usuario/faults.bin"
#define STACK_SIZE (64 * 1024)
#define COUNT_BITS 40

static volatile int stop;
/* The page being faulted (above COUNT_BITS) and the disk request count
 * before its fault (below); 0: none yet. One store, so read whole. */
static volatile long published;
static volatile long returned;
static volatile int witnessed, samples;
static int one_cpu;
static unsigned char *volatile mapped;

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

/* The watcher: counts the times it saw a fault's read sent and its page
 * not yet resident. */
static int watcher(void *arg)
{
    (void)arg;
    while (!stop) {
        long now = published;
        if (now == 0)
            continue;
        long page = now >> COUNT_BITS;
        long before = now & ((1L << COUNT_BITS) - 1);
        long requests = disk_requests();
        unsigned char resident = 1;
        /* The mapping may be gone already (the loads are over). */
        if (mincore(mapped + page * PAGE, PAGE, &resident) != 0)
            continue;
        samples = samples + 1;
        int waiting = one_cpu ? returned != page + 1 : !(resident & 1);
        if (requests > before && waiting && published == now)
            witnessed = witnessed + 1;
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
        unsigned char loaded = *at;
        returned = p + 1;
        CHECK_EQ(loaded, byte_of(p, p));
    }
    published = 0;
    CHECK_EQ(munmap(m, PAGES * PAGE), 0);
    CHECK_EQ(sys_close(fd), E_OK);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "reader") == 0) {
        for (;;)
            load_every_other(0);
    }
    one_cpu = argc > 1 && strcmp(argv[1], "one-cpu") == 0;
    static unsigned char fill[PAGES * PAGE];
    for (long p = 0; p < PAGES; p++)
        for (long i = 0; i < PAGE; i++)
            fill[p * PAGE + i] = byte_of(p, i);
    int fd = sys_open(PATH, O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_write(fd, fill, PAGES * PAGE), PAGES * PAGE);
    CHECK_EQ(sys_fsync(fd), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);

    /* Read faults while another thread makes system calls. */
    void *stack = mmap(0, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(stack != MAP_FAILED);
    stop = 0;
    int tid = sys_thread_create(watcher, 0, stack, STACK_SIZE);
    CHECK_GE(tid, 1);
    long before = disk_requests();
    load_every_other(1);
    long after = disk_requests();
    stop = 1;
    int status = -1;
    CHECK_EQ(sys_thread_join(tid, &status), E_OK);
    CHECK_EQ(status, 0);
    printf("disk_read_fault_wait: %ld requests, the watcher saw %d of %d samples waiting\n",
           after - before, witnessed, samples);
    CHECK(after - before >= PAGES / 2);
    CHECK(witnessed > 0);

    /* Hostile: a reader killed while its faults wait. */
    long baseline = test_free_frames();
    char *child_argv[] = {"disk_read_fault_wait", "reader", 0};
    long start = disk_requests();
    int child = sys_run("/bin/disk_read_fault_wait", child_argv);
    CHECK_GE(child, 1);
    while (disk_requests() < start + 3 * PAGES)
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
