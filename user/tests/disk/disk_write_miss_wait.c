/* Disk test of sys_write's partial-page misses reading their page without
 * the kernel lock (docs/design.md, "Device interrupts and disk waits"), run
 * by tests/in_qemu.rs, which then checks the image.
 *
 * Ordering: /home/usuario/misses.bin (PAGES pages, byte i of page p =
 * p * 3 + i + 7) is written once, then opened afresh (not cached) and
 * written from position 0 by one sys_write of 100 bytes and then writes of
 * one page each: every such write ends 100 bytes into a page the cache
 * lacks, which is read from the disk first. A watcher thread checks, for
 * the write under way, whether the disk request count is past the one
 * before the write while the page it reads is not resident yet (mincore
 * through a read-only mapping of the file): impossible when the read and
 * the write were one lock section. The window is short, so the writes go in
 * rounds (the file closed between: its last close writes it) until it is
 * seen, at most 20. Written bytes: offset o gets (o * 5 + 1) & 0xff, up to
 * 100 bytes into the last page; the rest of the last page keeps its bytes.
 *
 * Hostile: a child (this program with argument "writer") writes the file
 * so in a loop; once its reads are seen going it is killed: status 137,
 * the free frames come back (once the flusher has written what its end
 * left dirty), and the file reads back right.
 *
 * Run with argument "eio" under blkdebug rules failing, once each, the
 * first read of blocks 2 and 3 of /home/usuario/datos.bin: a write from 0
 * to 100 bytes into page 2 writes pages 0 and 1 only (2 pages: the short
 * count); the next 100 bytes are written (page 2 read again); a write of
 * 10 bytes at the start of page 3 (after page 2 is filled) gives E_IO
 * with nothing written and the position kept; again, 10. Offsets below
 * 3 pages + 10 get (o * 5 + 1) & 0xff, checked on the image. */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>
#include <sys/mman.h>
#include <string.h>

#define PAGE 4096
#define PAGES 64
#define PATH "/home/usuario/misses.bin"
#define STACK_SIZE (64 * 1024)
#define COUNT_BITS 40
#define ROUNDS 20

static volatile int stop;
/* The page being read by the write under way (above COUNT_BITS) and the
 * disk request count before the write (below); 0: none. */
static volatile long published;
static volatile int witnessed, samples;
static unsigned char *volatile mapped;
static unsigned char buf[PAGE];

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

static unsigned char written(long o)
{
    return (unsigned char)(o * 5 + 1);
}

/* Fills `buf` with the bytes written at offsets [from, from + len). */
static void fill(long from, long len)
{
    for (long j = 0; j < len; j++)
        buf[j] = written(from + j);
}

/* One look at the published write: whether the disk request count moved
 * past the one before it while its page is not resident yet. */
static int write_waits(void)
{
    long now = published;
    if (now == 0)
        return 0;
    long page = now >> COUNT_BITS;
    long before = now & ((1L << COUNT_BITS) - 1);
    long requests = disk_requests();
    unsigned char resident = 1;
    if (mincore(mapped + page * PAGE, PAGE, &resident) != 0)
        return 0;
    samples = samples + 1;
    return requests > before && !(resident & 1) && published == now;
}

static int watcher(void *arg)
{
    (void)arg;
    while (!stop)
        if (write_waits())
            witnessed = witnessed + 1;
    return 0;
}

/* Writes the file from 0 as the header says through `fd` (just opened);
 * with `publish`, tells the watcher of each write. */
static void write_misses(int fd, int publish)
{
    fill(0, 100);
    CHECK_EQ(sys_write(fd, buf, 100), 100);
    for (long p = 0; p + 1 < PAGES; p++) {
        fill(p * PAGE + 100, PAGE);
        if (publish)
            published = ((p + 1) << COUNT_BITS) | disk_requests();
        CHECK_EQ(sys_write(fd, buf, PAGE), PAGE);
        published = 0;
    }
}

/* One round: opens the file (not cached), maps it for mincore, writes it
 * with the watcher looking, closes it (its last close writes it). */
static void round_of_writes(void)
{
    int fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = (unsigned char *)mmap(0, PAGES * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    mapped = m;
    write_misses(fd, 1);
    CHECK_EQ(munmap(m, PAGES * PAGE), 0);
    CHECK_EQ(sys_close(fd), E_OK);
}

/* The file reads back as written. */
static void check_file(void)
{
    static unsigned char back[PAGES * PAGE];
    int fd = sys_open(PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_read(fd, back, PAGES * PAGE), PAGES * PAGE);
    CHECK_EQ(sys_close(fd), E_OK);
    long end = (PAGES - 1) * PAGE + 100;
    for (long o = 0; o < PAGES * PAGE; o += 13)
        CHECK_EQ(back[o], o < end ? written(o) : byte_of(o / PAGE, o % PAGE));
}

static void eio_run(void)
{
    int fd = sys_open(DATOS_PATH, O_RDWR);
    CHECK_GE(fd, 0);
    static unsigned char big[2 * PAGE + 100];
    for (long o = 0; o < 2 * PAGE + 100; o++)
        big[o] = written(o);
    /* Page 2's read fails: pages 0 and 1 only. */
    CHECK_EQ(sys_write(fd, big, 2 * PAGE + 100), 2 * PAGE);
    fill(2 * PAGE, 100);
    CHECK_EQ(sys_write(fd, buf, 100), 100);
    fill(2 * PAGE + 100, PAGE - 100);
    CHECK_EQ(sys_write(fd, buf, PAGE - 100), PAGE - 100);
    /* Page 3's read fails: nothing written, the position kept. */
    fill(3 * PAGE, 10);
    CHECK_EQ(sys_write(fd, buf, 10), E_IO);
    CHECK_EQ(sys_write(fd, buf, 10), 10);
    CHECK_EQ(sys_close(fd), E_OK);
    printf("disk_write_miss_wait: eio: short count, then E_IO, then written\n");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "eio") == 0) {
        eio_run();
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "writer") == 0) {
        for (;;) {
            int fd = sys_open(PATH, O_RDWR);
            CHECK_GE(fd, 0);
            write_misses(fd, 0);
            CHECK_EQ(sys_close(fd), E_OK);
        }
    }
    static unsigned char page[PAGE];
    int fd = sys_open(PATH, O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(fd, 0);
    for (long p = 0; p < PAGES; p++) {
        for (long i = 0; i < PAGE; i++)
            page[i] = byte_of(p, i);
        CHECK_EQ(sys_write(fd, page, PAGE), PAGE);
    }
    CHECK_EQ(sys_fsync(fd), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);

    void *stack = mmap(0, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(stack != MAP_FAILED);
    int tid = sys_thread_create(watcher, 0, stack, STACK_SIZE);
    CHECK_GE(tid, 1);
    int rounds = 0;
    while (witnessed == 0 && rounds < ROUNDS) {
        long before = disk_requests();
        round_of_writes();
        rounds++;
        printf("disk_write_miss_wait: round %d: %ld requests, %d looks, %d seen waiting\n",
               rounds, disk_requests() - before, samples, witnessed);
    }
    stop = 1;
    int status = -1;
    CHECK_EQ(sys_thread_join(tid, &status), E_OK);
    CHECK(witnessed > 0);
    check_file();

    /* Hostile: a writer killed while its reads go on. */
    long baseline = test_free_frames();
    char *child_argv[] = {"disk_write_miss_wait", "writer", 0};
    long start = disk_requests();
    int child = sys_run("/bin/disk_write_miss_wait", child_argv);
    CHECK_GE(child, 1);
    while (disk_requests() < start + PAGES / 2)
        sys_yield();
    CHECK_EQ(sys_kill(child), E_OK);
    CHECK_EQ(sys_wait(&status), child);
    CHECK_EQ(status, NEO_STATUS_KILLED);
    test_wait_frames_back(baseline);
    check_file();
    printf("disk_write_miss_wait: done\n");
    return 0;
}
