// expect-output: PASS linux munmap while touching
/* The mapping race of issue 13, on the threads of one process: one thread
 * reads and writes a page in a tight loop while another unmaps it. Every
 * time, the toucher faults (SIGSEGV, si_addr = the page, SEGV_MAPERR) and
 * never completes an access it began after munmap returned: it reads the
 * "unmapped" flag before each access, and an access that succeeds with the
 * flag set is a stale translation. 40 rounds, each after the toucher has
 * touched the page many times (so its translation is cached). Each round's
 * page has a place of its own in a PROT_NONE reservation (never reused), so
 * a toucher still holding the last round's pointer cannot reach the new
 * round's page and count a late access there. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>
#include "linux_check.h"

#define ROUNDS 40

static char *volatile page;
static volatile int unmapped, stop;
static volatile long touches, late_accesses, faults;
static void *volatile fault_addr;
static volatile int fault_code;
static sigjmp_buf toucher_env;

static void on_segv(int sig, siginfo_t *info, void *uc)
{
    (void)sig;
    (void)uc;
    fault_code = info->si_code;
    fault_addr = info->si_addr;
    faults++;
    siglongjmp(toucher_env, 1);
}

/* Whether the toucher's fault on page p is in. */
static int faulted_on(char *p)
{
    return ((uintptr_t)fault_addr & ~(uintptr_t)4095) == (uintptr_t)p;
}

static void *toucher(void *arg)
{
    (void)arg;
    sigsetjmp(toucher_env, 1);
    while (!stop) {
        char *p = page;
        if (p == 0) {
            sched_yield();
            continue;
        }
        int seen = __atomic_load_n(&unmapped, __ATOMIC_SEQ_CST);
        if (seen && faulted_on(p)) {
            sched_yield(); /* this page's fault is in; wait for the next */
            continue;
        }
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        volatile char *v = p;
        char got = v[touches % 4096];
        v[(touches + 7) % 4096] = (char)(got + 1);
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        if (seen)
            late_accesses++; /* began after munmap returned, and worked */
        touches++;
    }
    return 0;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    CHECK(sigaction(SIGSEGV, &sa, 0) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, 0, toucher, 0) == 0);
    char *area = mmap(0, ROUNDS * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(area != MAP_FAILED);
    int rounds = 0;
    for (int r = 0; r < ROUNDS && failures == 0; r++) {
        char *p = mmap(area + r * 4096, 4096, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        CHECK(p == area + r * 4096);
        memset(p, r, 4096);
        fault_addr = 0;
        unmapped = 0;
        page = p;
        long start = touches;
        while (touches - start < 1000)
            sched_yield();
        CHECK(munmap(p, 4096) == 0);
        __atomic_store_n(&unmapped, 1, __ATOMIC_SEQ_CST);
        long deadline = now_ms() + 5000;
        while (!faulted_on(p) && now_ms() < deadline)
            sched_yield();
        CHECK(faulted_on(p));
        CHECK(fault_code == SEGV_MAPERR);
        page = 0;
        rounds++;
    }
    stop = 1;
    CHECK(pthread_join(t, 0) == 0);
    CHECK(munmap(area, ROUNDS * 4096) == 0);
    CHECK(rounds == ROUNDS);
    CHECK(late_accesses == 0);
    CHECK(faults >= ROUNDS);
    if (failures == 0)
        printf("PASS linux munmap while touching\n");
    else
        fprintf(stderr, "faults %ld, late accesses %ld, touches %ld\n", faults, late_accesses,
                touches);
    return failures != 0;
}
