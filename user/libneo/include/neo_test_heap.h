/* neo_test_heap.h - bringing the kernel heap to its reserve, and leaving it,
 * for the in-QEMU tests (user/tests) that check what the kernel does when
 * its heap is (almost) exhausted.
 *
 * Owns: map_pages_until_enomem (one-page mappings, alternate protections so
 * nothing merges, until mmap says ENOMEM); the HOGS children (start_hogs,
 * reach_heap_reserve, stop_hogs) and made[], this program's mappings.
 *
 * This program maps one page at a time until mmap says ENOMEM. Once a
 * per-process bound exists it stops at the bound instead of the heap
 * reserve, so HOGS children, forked before anything is mapped, then map
 * until ENOMEM one after another until one of them gets (almost) nothing:
 * the heap is at its reserve. A failed check also ends the hogs (they
 * would otherwise wait forever): including this header makes every CHECK
 * after it call hog_test_fail.
 */
#ifndef NEO_TEST_HEAP_H
#define NEO_TEST_HEAP_H

#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

#define MAX_TRIES 2000000L
#define HOGS 8

/* This program's one-page mappings, made by reach_heap_reserve. */
__attribute__((unused)) static char *made[MAX_TRIES];
/* The hogs' process ids; 0 once they end by themselves. */
__attribute__((unused)) static int hog_pids[HOGS];

/* A failed check also ends the hogs: they would otherwise wait forever. */
__attribute__((unused)) static void kill_hogs(void)
{
    for (int i = 0; i < HOGS; i++)
        if (hog_pids[i] > 0)
            sys_kill(hog_pids[i]);
}

__attribute__((noreturn, unused)) static void
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

/* The page the hogs share with this program. */
__attribute__((unused)) static struct hogs *hogs;

/* Maps one page at a time (alternate protections: nothing merges) until
 * mmap says ENOMEM or `max` pages; keeps them in keep[] (may be NULL) and
 * returns how many. */
__attribute__((unused)) static long map_pages_until_enomem(char **keep, long max)
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

/* Forks the HOGS children (before anything is mapped); each waits for its
 * turn, maps until ENOMEM and waits for hogs->stop. */
__attribute__((unused)) static void start_hogs(void)
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
__attribute__((unused)) static long reach_heap_reserve(void)
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

/* Lets the hogs end (their mappings go with them) and reaps them. */
__attribute__((unused)) static void stop_hogs(void)
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

#endif
