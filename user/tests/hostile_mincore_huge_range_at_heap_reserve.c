/* Issue 9 item 2: with the kernel heap at its reserve (one-page mappings
 * until mmap says ENOMEM), mincore over a huge range. The kernel used to
 * allocate one byte per page of the range in its heap (16 MiB for 64 GiB)
 * and panic when that failed. mincore must answer without such an
 * allocation, or fail with ENOMEM: here the range holds one mapping of the
 * program's plus unmapped space, so ENOMEM is the answer either way, and a
 * mapped 64 GiB range gives the right residency bytes. */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

#define HUGE (64UL << 30)
/* A 64 GiB range this program never maps whole (it maps 66 GiB at most). */
#define FAR ((char *)0x600000000000UL)

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

int main(void)
{
    start_hogs();
    /* Made before the heap is low: a 64 GiB mapping (nothing touched but
     * two pages) and the 16 MiB answer vector, touched so it is resident. */
    char *big = mmap(NULL, HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(big != MAP_FAILED);
    big[0] = 1;
    big[HUGE - 4096] = 1;
    unsigned long pages = HUGE / 4096;
    unsigned char *vec = mmap(NULL, pages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(vec != MAP_FAILED);
    for (unsigned long i = 0; i < pages; i += 4096)
        vec[i] = 0xee;

    long n = reach_heap_reserve();

    /* unmapped space in the range: ENOMEM, and no kernel panic */
    CHECK(big + HUGE <= FAR || big >= FAR + HUGE);
    CHECK_EQ(mincore(FAR, HUGE, vec), -1);
    CHECK_EQ(errno, ENOMEM);

    /* the mapped 64 GiB: either the answer, or ENOMEM */
    int r = mincore(big, HUGE, vec);
    if (r == 0) {
        CHECK_EQ(vec[0], 1);
        CHECK_EQ(vec[1], 0);
        CHECK_EQ(vec[pages / 2], 0);
        CHECK_EQ(vec[pages - 2], 0);
        CHECK_EQ(vec[pages - 1], 1);
    } else {
        CHECK_EQ(r, -1);
        CHECK_EQ(errno, ENOMEM);
    }

    for (long i = 0; i < n; i++)
        CHECK_EQ(munmap(made[i], 4096), 0);
    stop_hogs(); /* the heap is above its reserve again */
    CHECK_EQ(mincore(big, HUGE, vec), 0);
    CHECK_EQ(vec[0], 1);
    CHECK_EQ(vec[pages - 1], 1);
    CHECK_EQ(munmap(big, HUGE), 0);
    CHECK_EQ(munmap(vec, pages), 0);
    PASS();
}
