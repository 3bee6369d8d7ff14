/* neo_test_freeze.h - measuring whether a call stops the other programs,
 * for the in-QEMU tests (user/tests) that check long kernel work is
 * preemptible or cheap.
 *
 * Owns: struct watch (a shared page), tsc, tsc_per_tick, start_watcher and
 * stop_watcher. A forked child spins, reading the time stamp counter and
 * keeping the longest gap between two of its loop turns in the shared page,
 * while the parent makes the call. Timer ticks cannot measure this (the
 * tick count itself stops while interrupts are off), so the TSC is
 * calibrated against ticks first (tsc_per_tick).
 */
#ifndef NEO_TEST_FREEZE_H
#define NEO_TEST_FREEZE_H

#include <neo_test.h>
#include <sys/mman.h> /* fork */

/* The page the watcher shares with the test (map it MAP_SHARED). */
struct watch {
    volatile long started;
    volatile long stop;
    volatile unsigned long longest_gap;
};

__attribute__((unused)) static unsigned long tsc(void)
{
    unsigned lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((unsigned long)hi << 32) | lo;
}

/* TSC counts per timer tick, measured over 5 ticks. */
__attribute__((unused)) static unsigned long tsc_per_tick(void)
{
    long t = sys_ticks();
    while (sys_ticks() == t)
        ;
    unsigned long t0 = tsc();
    long start = sys_ticks();
    while (sys_ticks() < start + 5)
        ;
    return (tsc() - t0) / 5;
}

/* Starts the spinning child; returns once it runs. */
__attribute__((unused)) static int start_watcher(struct watch *w)
{
    int pid = fork();
    CHECK_GE(pid, 0);
    if (pid == 0) {
        unsigned long last = tsc();
        while (!w->stop) {
            unsigned long now = tsc();
            if (now - last > w->longest_gap)
                w->longest_gap = now - last;
            last = now;
            w->started = 1;
        }
        sys_exit(0);
    }
    while (!w->started)
        sys_yield();
    w->longest_gap = 0;
    return pid;
}

/* Ends the watcher, reaps it and returns the longest gap it saw (TSC counts). */
__attribute__((unused)) static unsigned long stop_watcher(struct watch *w, int pid)
{
    w->stop = 1;
    int status = -1;
    CHECK_EQ(sys_wait(&status), pid);
    CHECK_EQ(status, 0);
    return w->longest_gap;
}

#endif
