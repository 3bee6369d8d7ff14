/* smp_spin.h - what the multiprocessor tests (user/tests/smp, run on the
 * 4-CPU boot) share: the time in milliseconds, a wait without system calls
 * for a condition (bounded: it looks at the clock only every 2^20 turns),
 * and /proc/meminfo (its text, a row of it, the TLB shootdown counters). */
#ifndef SMP_SPIN_H
#define SMP_SPIN_H

#include <fcntl.h>
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

#endif
