/* Disk test of reclaim's writing of dirty pages without the kernel lock
 * (docs/design.md, "Device interrupts and disk waits"), booted by
 * tests/in_qemu.rs with --memory 64M on an image whose
 * /home/usuario/presion.bin is 160 MiB (every byte 0x11), which then
 * checks the image (e2fsck -fn, the bytes).
 *
 * Ordering: the main thread overwrites the file from its start with
 * sys_write of whole pages (no page is read), in rounds of 16 MiB: more
 * than the machine's RAM holds, so reclaim meets the dirty pages and the
 * flusher writes them. A second thread calls sys_meminfo in a loop and
 * records the most requests it saw sent and not yet answered by a
 * completion interrupt (the disk's request count less its interrupt
 * count, less that difference when the disk was idle): at least one, in
 * one of at most WATCH_ROUNDS rounds, means a write was on the device
 * while it ran. Every request this scenario makes is a write or a flush
 * (no page is read), and a request made under the kernel lock has its
 * interrupt taken before the lock is let go: when reclaim wrote under the
 * lock, the second thread never saw one in flight. The rounds go on to 96
 * MiB at least (for the hostile part), and the count of MiB written is
 * printed for the host.
 *
 * Hostile: a child process (this program with argument "writer")
 * overwrites the first 96 MiB with the same bytes in a loop; once its
 * writes are seen going, it is killed (sys_kill); its end is status 137
 * and the free frames come back to what they were (once the flusher has
 * written what it left dirty).
 *
 * Run with argument "eio" under a blkdebug rule failing, once, the first
 * write of page 100's block: the same rounds (96 MiB, not watched); the
 * failed write keeps its pages dirty, written again later: nothing lost.
 *
 * Page p of what is written: every byte (p * 13 + 7) & 0xff, but its
 * first 8 bytes, which hold p. */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>
#include <sys/mman.h>

#define PAGE 4096
#define ROUND (16L << 20)
#define CHUNK (256 * 1024)
/* Rounds always written: the child's range and the eio run's. */
#define LEAST_ROUNDS 6
/* The watched rounds: the second thread sees a write in flight only if its
 * CPU gets turns from the host meanwhile; at most this many (10 x 16 MiB
 * is the whole file). */
#define WATCH_ROUNDS 10
#define PATH "/home/usuario/presion.bin"
#define STACK_SIZE (64 * 1024)

static volatile int stop;
static volatile long idle_difference;
static volatile long most_in_flight;
static volatile long looks;

/* Requests sent less interrupts taken. */
static long requests_less_interrupts(void)
{
    struct neo_meminfo mi;
    CHECK_EQ(sys_meminfo(&mi), E_OK);
    return (long)mi.disk_requests - (long)mi.disk_interrupts;
}

static int second(void *arg)
{
    (void)arg;
    while (!stop) {
        long in_flight = requests_less_interrupts() - idle_difference;
        if (in_flight > most_in_flight)
            most_in_flight = in_flight;
        looks = looks + 1;
    }
    return 0;
}

static unsigned char chunk[CHUNK];

/* The chunk of the file at byte `at`. */
static void fill(long at)
{
    for (long off = 0; off < CHUNK; off += PAGE) {
        long p = (at + off) / PAGE;
        memset(chunk + off, (int)((p * 13 + 7) & 0xff), PAGE);
        memcpy(chunk + off, &p, sizeof p);
    }
}

/* Writes round `round` (16 MiB from its start) through `fd`, whose
 * position is there. */
static void write_round(int fd, int round)
{
    for (long at = round * ROUND; at < (round + 1) * ROUND; at += CHUNK) {
        fill(at);
        CHECK_EQ(sys_write(fd, chunk, CHUNK), CHUNK);
    }
}

/* The child of the hostile part: overwrites the first LEAST_ROUNDS rounds
 * with the same bytes until killed. */
static void writer_forever(void)
{
    for (;;) {
        int fd = sys_open(PATH, O_RDWR);
        CHECK_GE(fd, 0);
        for (int round = 0; round < LEAST_ROUNDS; round++)
            write_round(fd, round);
        CHECK_EQ(sys_close(fd), E_OK);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "writer") == 0) {
        writer_forever();
        return 1;
    }
    int eio = argc > 1 && strcmp(argv[1], "eio") == 0;
    int fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    int tid = 0;
    if (!eio) {
        sys_yield();
        idle_difference = requests_less_interrupts();
        void *stack = mmap(0, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
        CHECK(stack != MAP_FAILED);
        tid = sys_thread_create(second, 0, stack, STACK_SIZE);
        CHECK_GE(tid, 1);
        while (looks == 0)
            sys_yield();
    }
    int rounds = 0;
    while (rounds < LEAST_ROUNDS || (!eio && most_in_flight < 1 && rounds < WATCH_ROUNDS)) {
        write_round(fd, rounds);
        rounds++;
        if (!eio)
            printf("disk_reclaim_wait: round %d: most in flight %ld, %ld looks\n", rounds,
                   most_in_flight, looks);
    }
    if (!eio) {
        stop = 1;
        int status = -1;
        CHECK_EQ(sys_thread_join(tid, &status), E_OK);
        CHECK_EQ(status, 0);
        CHECK(most_in_flight >= 1);
    }
    CHECK_EQ(sys_fsync(fd), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);
    printf("disk_reclaim_wait: wrote %d MiB\n", rounds * 16);
    if (eio)
        return 0;

    /* Hostile: a writer killed while reclaim and the flusher write its pages. */
    long baseline = test_free_frames();
    char *child_argv[] = {"disk_reclaim_wait", "writer", 0};
    struct neo_meminfo mi;
    CHECK_EQ(sys_meminfo(&mi), E_OK);
    long start = (long)mi.disk_requests;
    int child = sys_run("/bin/disk_reclaim_wait", child_argv);
    CHECK_GE(child, 1);
    for (;;) {
        CHECK_EQ(sys_meminfo(&mi), E_OK);
        if ((long)mi.disk_requests >= start + 64)
            break;
        sys_yield();
    }
    CHECK_EQ(sys_kill(child), E_OK);
    int status = -1;
    CHECK_EQ(sys_wait(&status), child);
    CHECK_EQ(status, NEO_STATUS_KILLED);
    test_wait_frames_back(baseline);
    printf("disk_reclaim_wait: done\n");
    return 0;
}
