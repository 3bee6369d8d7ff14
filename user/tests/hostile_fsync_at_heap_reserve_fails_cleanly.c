/* Issue 9 item 2: a file with about 25 MiB of dirty data in the page cache,
 * then the kernel heap brought to its reserve (one-page mappings until mmap
 * says ENOMEM), then sys_fsync. Writeback stores the data on the RAM disk,
 * whose pages live in the kernel heap: it used to allocate them infallibly
 * and panic the kernel. sys_fsync must either succeed or fail cleanly
 * (E_NOMEM or E_IO, the data still cached); once the mappings are gone,
 * sys_fsync and close succeed and every byte reads back. */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

#define PATH "/tmp/hostile_fsync_reserve.dat"
#define FILE_SIZE (25L * 1024 * 1024)

/* ---- bringing the kernel heap to its reserve ----
 * This program maps one page at a time (alternate protections: nothing
 * merges) until mmap says ENOMEM. Today that is the heap reserve. Once a
 * per-process bound exists it stops at the bound instead, so HOGS children,
 * forked before anything is mapped, then map until ENOMEM one after another
 * until one of them gets (almost) nothing: the heap is at its reserve. */

#define MAX_TRIES 2000000L
#define HOGS 8

static char *made[MAX_TRIES];
static int hog_pids[HOGS];

/* A failed check also ends the hogs: they would otherwise wait forever. */
static void kill_hogs(void)
{
    for (int i = 0; i < HOGS; i++)
        if (hog_pids[i] > 0)
            sys_kill(hog_pids[i]);
}

__attribute__((noreturn)) static void
hog_test_fail(const char *file, int line, const char *expr, long got, long want, int has_values)
{
    kill_hogs();
    neo_test_fail(file, line, expr, got, want, has_values);
}
#define neo_test_fail hog_test_fail

struct hogs {
    volatile long turn;      /* the hog whose turn it is to map, 1-based */
    volatile long done;      /* hogs that finished mapping */
    volatile long last_made; /* mappings the last hog made */
    volatile long stop;      /* hogs exit (their mappings go with them) */
};

static struct hogs *hogs;

static long map_pages_until_enomem(char **keep, long max)
{
    long n = 0;
    for (; n < max; n++) {
        char *p = mmap(NULL, 4096, (n & 1) ? PROT_READ : PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANON, -1, 0);
        if (p == MAP_FAILED) {
            CHECK_EQ(errno, ENOMEM);
            break;
        }
        if (keep)
            keep[n] = p;
    }
    return n;
}

static void start_hogs(void)
{
    hogs = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANON, -1, 0);
    CHECK(hogs != MAP_FAILED);
    for (int i = 0; i < HOGS; i++) {
        int pid = fork();
        CHECK_GE(pid, 0);
        if (pid == 0) {
            while (hogs->turn != i + 1 && !hogs->stop)
                sys_yield();
            if (!hogs->stop) {
                long n = 0;
                while (n < MAX_TRIES &&
                       mmap(NULL, 4096, (n & 1) ? PROT_READ : PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANON, -1, 0) != MAP_FAILED)
                    n++;
                hogs->last_made = n;
                hogs->done = i + 1;
            }
            while (!hogs->stop)
                sys_yield();
            sys_exit(0);
        }
        hog_pids[i] = pid;
    }
}

/* Maps until ENOMEM here, then lets hogs map until the heap is at its
 * reserve; returns this program's mappings (in made[]). */
static long reach_heap_reserve(void)
{
    long n = map_pages_until_enomem(made, MAX_TRIES);
    CHECK_GE(n, 1000);
    for (int i = 0; i < HOGS; i++) {
        hogs->turn = i + 1;
        while (hogs->done != i + 1)
            sys_yield();
        if (hogs->last_made < 16)
            return n; /* a fresh process gets nothing: the heap is at its reserve */
    }
    CHECK(0 && "the heap did not reach its reserve");
    return n;
}

static void stop_hogs(void)
{
    hogs->stop = 1;
    for (int i = 0; i < HOGS; i++)
        hog_pids[i] = 0; /* they end by themselves now */
    for (int i = 0; i < HOGS; i++) {
        int status = -1;
        CHECK_GE(sys_wait(&status), 1);
        CHECK_EQ(status, 0);
    }
}

static unsigned char chunk[64 * 1024];

static unsigned char pattern(long i) { return (unsigned char)((i * 11 + 5) & 0xff); }

int main(void)
{
    start_hogs();
    int fd = sys_open(PATH, O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(fd, 0);
    for (long off = 0; off < FILE_SIZE; off += (long)sizeof chunk) {
        for (long i = 0; i < (long)sizeof chunk; i++)
            chunk[i] = pattern(off + i);
        CHECK_EQ(sys_write(fd, chunk, sizeof chunk), (int)sizeof chunk);
    }

    long n = reach_heap_reserve();
    int r = sys_fsync(fd);
    CHECK(r == E_OK || r == E_NOMEM || r == E_IO);

    for (long i = 0; i < n; i++)
        CHECK_EQ(munmap(made[i], 4096), 0);
    stop_hogs(); /* the heap is above its reserve again */
    CHECK_EQ(sys_fsync(fd), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);

    /* every byte is there (sampled: one 2-byte read per 64 KiB) */
    struct neo_stat st;
    CHECK_EQ(sys_stat(PATH, &st), E_OK);
    CHECK_EQ((long)st.size, FILE_SIZE);
    fd = sys_open(PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    for (long off = 0; off < FILE_SIZE; off += (long)sizeof chunk) {
        CHECK_EQ(sys_read(fd, chunk, sizeof chunk), (int)sizeof chunk);
        CHECK_EQ(chunk[0], pattern(off));
        CHECK_EQ(chunk[sizeof chunk - 1], pattern(off + (long)sizeof chunk - 1));
    }
    CHECK_EQ(sys_close(fd), E_OK);
    /* give the disk back to the tests after this one */
    fd = sys_open(PATH, O_RDWR | O_TRUNC);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_close(fd), E_OK);
    PASS();
}
