/* docs/abi.md, Limits: one process has at most NEO_MAPPINGS_MAX mappings.
 * A child maps one page at a time (alternate protections, so nothing
 * merges) until refused: the refusal is ENOMEM (sys_mmap: E_NOMEM) exactly
 * at the limit. While it holds them all, another process still maps, forks,
 * opens and sys_mmaps: the bound leaves the kernel's memory for others. */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

#define OTHER_MAPPINGS 2000

enum { WAITING, FULL, DONE, FAILED };

static volatile long *state;

/* The child's way out on a failed check: the parent sees it at once. */
__attribute__((noreturn)) static void child_fails(int why)
{
    state[1] = why;
    state[0] = FAILED;
    sys_exit(why);
}

int main(void)
{
    state = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANON, -1, 0);
    CHECK(state != MAP_FAILED);
    int greedy = fork();
    CHECK_GE(greedy, 0);
    if (greedy == 0) {
        long n = 0;
        char *p;
        for (;; n++) {
            p = mmap(NULL, 4096, (n & 1) ? PROT_READ : PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANON, -1, 0);
            if (p == MAP_FAILED)
                break;
            if (n > NEO_MAPPINGS_MAX)
                child_fails(10); /* no limit */
        }
        if (errno != ENOMEM)
            child_fails(11);
        if (test_meminfo().mappings != NEO_MAPPINGS_MAX)
            child_fails(12);
        int fd = sys_open(DATOS_PATH, O_RDONLY);
        if (fd < 0)
            child_fails(13);
        if (sys_mmap(fd, 0, 4096) != NULL || sys_errno() != E_NOMEM)
            child_fails(14);
        state[0] = FULL;
        /* Held until the parent is done; should the parent fail a check
         * and end, the child gives up after a minute (100 ticks a second)
         * rather than spin on. */
        long give_up = sys_ticks() + 6000;
        while (state[0] != DONE)
            if (sys_yield() != E_OK || sys_ticks() > give_up)
                sys_exit(15);
        sys_exit(0);
    }
    while (state[0] == WAITING)
        CHECK_EQ(sys_yield(), E_OK);
    CHECK_EQ(state[1], 0); /* the child's failed check, if any */
    CHECK_EQ(state[0], FULL);

    /* The others: map, fork, open, sys_mmap. */
    for (int i = 0; i < OTHER_MAPPINGS; i++) {
        char *p = mmap(NULL, 4096, (i & 1) ? PROT_READ : PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANON, -1, 0);
        CHECK(p != MAP_FAILED);
        if (!(i & 1))
            p[0] = 1;
    }
    int child = fork();
    CHECK_GE(child, 0);
    if (child == 0) {
        char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
        if (p == MAP_FAILED)
            sys_exit(20);
        p[4096] = 5;
        sys_exit(p[4096] == 5 ? 0 : 21);
    }
    int st = -1;
    CHECK_EQ(sys_wait(&st), child);
    CHECK_EQ(st, 0);
    int fd = sys_open(DATOS_PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    unsigned char *m = sys_mmap(fd, 0, 4096);
    CHECK(m != NULL);
    CHECK_EQ(m[5], DATOS_BYTE(5));
    CHECK_EQ(sys_munmap(m, 4096), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);

    state[0] = DONE;
    CHECK_EQ(sys_wait(&st), greedy);
    CHECK_EQ(st, 0);
    return 0;
}
