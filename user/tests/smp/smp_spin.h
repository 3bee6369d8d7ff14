/* smp_spin.h - what the multiprocessor tests (user/tests/smp, run on the
 * 4-CPU boot) share: the time in milliseconds, a wait without system calls
 * for a condition (bounded: it looks at the clock only every 2^20 turns),
 * threads started together (smp_run_threads), /proc/meminfo (its
 * text, a row of it, the TLB shootdown counters) and whether a call moves
 * one of its counters (moves_counter). */
#ifndef SMP_SPIN_H
#define SMP_SPIN_H

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../linux/linux_meminfo.h"

static inline long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Spins until cond holds (1) or seconds have passed (0); no system call
 * between two looks at the clock, 2^20 turns apart. */
#define SPIN_UNTIL(cond, seconds)                                          \
    ({                                                                     \
        long deadline_ = now_ms() + (seconds) * 1000L;                     \
        int met_ = 0;                                                      \
        for (unsigned long i_ = 1;; i_++) {                                \
            if (cond) {                                                    \
                met_ = 1;                                                  \
                break;                                                     \
            }                                                              \
            if ((i_ & 0xfffff) == 0 && now_ms() > deadline_)               \
                break;                                                     \
        }                                                                  \
        met_;                                                              \
    })

/* The start line of the threads smp_run_threads runs. */
static volatile int smp_ready, smp_go;

/* Called first by each thread smp_run_threads runs: counts it and waits
 * until every thread has started, so that their work overlaps. */
static inline void smp_wait_for_start(void)
{
    __atomic_add_fetch(&smp_ready, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&smp_go, __ATOMIC_SEQ_CST))
        ;
}

/* Runs work((void *)i) on `count` threads at once (i = 1..count-1 on new
 * threads, 0 on the caller), each of which calls smp_wait_for_start
 * first; joins them. 0 when a thread could not be made or joined or they
 * did not all start within 20 s (they run all the same). */
static inline int smp_run_threads(int count, void *(*work)(void *))
{
    pthread_t t[16];
    if (count > 16)
        return 0;
    int ok = 1, made = 1;
    smp_ready = 0;
    smp_go = 0;
    while (ok && made < count) {
        ok = pthread_create(&t[made], 0, work, (void *)(intptr_t)made) == 0;
        made += ok;
    }
    __atomic_add_fetch(&smp_ready, 1, __ATOMIC_SEQ_CST);
    ok &= SPIN_UNTIL(__atomic_load_n(&smp_ready, __ATOMIC_SEQ_CST) == made, 20);
    __atomic_store_n(&smp_go, 1, __ATOMIC_SEQ_CST);
    /* The caller is thread 0: its work counts itself again. */
    __atomic_sub_fetch(&smp_ready, 1, __ATOMIC_SEQ_CST);
    work((void *)(intptr_t)0);
    for (int i = 1; i < made; i++)
        ok &= pthread_join(t[i], 0) == 0;
    return ok;
}

/* The shootdown counters (/proc/meminfo rows of the kernel's own). */
struct shootdowns {
    long ipis, pages, full;
};

static inline struct shootdowns read_shootdowns(void)
{
    struct shootdowns s = {-1, -1, -1};
    const char *text = read_meminfo();
    if (!text)
        return s;
    s.ipis = meminfo_row(text, "TlbShootdownIpis:");
    s.pages = meminfo_row(text, "TlbRemotePages:");
    s.full = meminfo_row(text, "TlbRemoteFull:");
    return s;
}

/* The "alone" checks: 1 when one of at most `tries` calls of `attempt`
 * (1 when its call gave the right answer) moves /proc/meminfo's counter
 * `row`, i.e. the call can go the shared way; 0 at a wrong answer or when
 * none did. One call alone may still go the writing way: another CPU may
 * hold the kernel lock's write side for a moment (an orphan of an earlier
 * program, the flusher), and the shared way is only tried when it is
 * free at once. */
static inline int moves_counter(const char *row, int tries, int (*attempt)(void))
{
    for (int t = 0; t < tries; t++) {
        long before = meminfo_now(row);
        if (before < 0 || !attempt())
            return 0;
        if (meminfo_now(row) > before)
            return 1;
    }
    return 0;
}

#endif
