// expect-output: PASS linux threads of one process run at once
/* Threads of one process run on several CPUs at once (the 4-CPU boot):
 * two threads spin on counters in the process's memory, each counting how
 * often it sees the other's counter move between two of its own
 * consecutive looks, with no system call in the loop. Were the threads of
 * a process kept on one CPU at a time, the other could move only while
 * this one is preempted (at most about 100 times a second); each must see
 * 5,000 moves within 20 seconds. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include "../linux/linux_check.h"
#include "smp_spin.h"

#define MOVES_NEEDED 5000
#define SECONDS_ALLOWED 20

static volatile uint64_t count[2], seen[2];
static volatile int done[2];

static void *spin(void *arg)
{
    int me = (int)(intptr_t)arg, other = 1 - me;
    uint64_t last = count[other], moves = 0;
    long start = now_ms();
    for (uint64_t i = 1;; i++) {
        count[me]++;
        uint64_t v = count[other];
        if (v != last) {
            moves++;
            last = v;
        }
        if (moves >= MOVES_NEEDED && !done[me]) {
            seen[me] = moves;
            done[me] = 1;
        }
        if (done[0] && done[1])
            return 0;
        if ((i & 0xfffff) == 0 && now_ms() - start > SECONDS_ALLOWED * 1000L) {
            seen[me] = moves;
            done[me] = 1;
            return 0;
        }
    }
}

int main(void)
{
    pthread_t t;
    CHECK(pthread_create(&t, 0, spin, (void *)(intptr_t)1) == 0);
    spin((void *)(intptr_t)0);
    CHECK(pthread_join(t, 0) == 0);
    printf("thread 0 saw thread 1 move %llu times, thread 1 saw thread 0 move %llu times\n",
           (unsigned long long)seen[0], (unsigned long long)seen[1]);
    CHECK(seen[0] >= MOVES_NEEDED && seen[1] >= MOVES_NEEDED);
    if (failures == 0)
        printf("PASS linux threads of one process run at once\n");
    return failures != 0;
}
