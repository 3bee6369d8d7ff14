// expect-output: PASS linux two processes spin at once
/* Processes run on several CPUs at once (the suite's machine has 2): two
 * children spin on counters in shared memory, each counting how often it
 * sees the other's counter move between two of its own consecutive looks,
 * with no system call in the loop. On one CPU the other can only move while
 * this one is preempted, about 100 times a second; on two at once it moves
 * between almost every pair of looks. Each must see 5,000 moves within
 * 20 seconds (one CPU: about 2,000), then both stop. On Linux with two or
 * more CPUs it passes as well. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "../linux/linux_check.h"

#define MOVES_NEEDED 5000
#define SECONDS_ALLOWED 20

struct shared {
    volatile uint64_t count[2];
    volatile uint64_t seen[2];
    volatile int done[2];
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int spin(struct shared *s, int me) {
    int other = 1 - me;
    uint64_t last = s->count[other], moves = 0;
    double start = now();
    for (uint64_t i = 1;; i++) {
        s->count[me]++;
        uint64_t v = s->count[other];
        if (v != last) {
            moves++;
            last = v;
        }
        if (moves >= MOVES_NEEDED && !s->done[me]) {
            s->seen[me] = moves;
            s->done[me] = 1;
        }
        if (s->done[0] && s->done[1])
            return 0;
        if ((i & 0xfffff) == 0 && now() - start > SECONDS_ALLOWED) {
            s->seen[me] = moves;
            s->done[me] = 1;
            return moves >= MOVES_NEEDED ? 0 : 1;
        }
    }
}

int main(void) {
    struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(s != MAP_FAILED);
    if (s == MAP_FAILED)
        return 1;
    pid_t pids[2];
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        CHECK(pids[i] >= 0);
        if (pids[i] == 0)
            _exit(spin(s, i));
    }
    for (int i = 0; i < 2; i++) {
        int status = -1;
        CHECK(waitpid(pids[i], &status, 0) == pids[i]);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    printf("child 0 saw child 1 move %llu times, child 1 saw child 0 move %llu times\n",
           (unsigned long long)s->seen[0], (unsigned long long)s->seen[1]);
    CHECK(s->seen[0] >= MOVES_NEEDED && s->seen[1] >= MOVES_NEEDED);
    if (failures == 0)
        printf("PASS linux two processes spin at once\n");
    return failures != 0;
}
