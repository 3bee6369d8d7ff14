// expect-output: PASS linux munmap while touching on another cpu
/* The mapping race of issue 13 with the toucher on another CPU: one thread
 * reads and writes a page in a tight loop (no system call) while the main
 * thread, on another CPU, unmaps it. The main thread waits for the
 * toucher's accesses without a system call or a yield, so the toucher
 * provably runs at the same time, on another CPU, with the page's
 * translation in its TLB. Every time the toucher must fault (SIGSEGV,
 * si_addr = the page, SEGV_MAPERR), and no access it began after munmap
 * returned may succeed (it reads the "unmapped" flag before each access:
 * an access that succeeds with the flag set went through a stale
 * translation). 60 rounds: one page, then 8, then 40 (a full flush).
 * Each round's region has a place of its own in a PROT_NONE reservation
 * (never reused), so a toucher still holding the last round's pointer
 * cannot reach the new round's pages and count a late access there. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include "../linux/linux_check.h"
#include "smp_spin.h"

#define ROUNDS 60
/* 20 rounds of 1 page, 20 of 8, 20 of 40. */
#define AREA_PAGES (20 * 1 + 20 * 8 + 20 * 40)

static char *volatile region;
static volatile long region_pages;
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

/* Whether the toucher's fault in region r (of `pages` pages) is in. */
static int faulted_in(char *r, long pages)
{
    uintptr_t a = (uintptr_t)fault_addr;
    return a >= (uintptr_t)r && a < (uintptr_t)r + (uintptr_t)pages * 4096;
}

static void *toucher(void *arg)
{
    (void)arg;
    sigsetjmp(toucher_env, 1);
    while (!stop) {
        char *r = region;
        long pages = region_pages;
        if (r == 0 || pages == 0)
            continue;
        int seen = __atomic_load_n(&unmapped, __ATOMIC_SEQ_CST);
        if (seen && faulted_in(r, pages))
            continue; /* this region's fault is in; wait for the next */
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        volatile char *v = r + (touches % pages) * 4096;
        char got = v[touches % 4096];
        v[(touches + 7) % 4096] = (char)(got + 1);
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        if (seen)
            late_accesses++; /* began after munmap returned, and worked */
        touches++;
    }
    return 0;
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
    char *area = mmap(0, AREA_PAGES * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(area != MAP_FAILED);
    long used = 0;
    int rounds = 0;
    for (int r = 0; r < ROUNDS && failures == 0; r++) {
        long pages = r < 20 ? 1 : r < 40 ? 8 : 40;
        char *p = mmap(area + used * 4096, pages * 4096, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        CHECK(p == area + used * 4096);
        used += pages;
        memset(p, r, pages * 4096);
        fault_addr = 0;
        unmapped = 0;
        region_pages = pages;
        region = p;
        long start = touches;
        /* No system call, no yield: only a toucher on another CPU moves it. */
        CHECK(SPIN_UNTIL(touches - start >= 1000 + pages * 10, 20));
        CHECK(munmap(p, pages * 4096) == 0);
        __atomic_store_n(&unmapped, 1, __ATOMIC_SEQ_CST);
        CHECK(SPIN_UNTIL(faulted_in(p, pages), 5));
        CHECK(fault_code == SEGV_MAPERR);
        region = 0;
        region_pages = 0;
        rounds++;
    }
    stop = 1;
    CHECK(pthread_join(t, 0) == 0);
    CHECK(munmap(area, AREA_PAGES * 4096) == 0);
    CHECK(rounds == ROUNDS);
    CHECK(late_accesses == 0);
    CHECK(faults >= ROUNDS);
    if (failures == 0)
        printf("PASS linux munmap while touching on another cpu\n");
    else
        fprintf(stderr, "rounds %d, faults %ld, late accesses %ld, touches %ld\n", rounds, faults,
                late_accesses, touches);
    return failures != 0;
}
