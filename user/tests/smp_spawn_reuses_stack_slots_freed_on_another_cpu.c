/* A kernel stack slot freed on one CPU and taken again on another starts
 * clean. The parent spawns children and keeps its CPU (it spins in user
 * mode, never blocking, so its CPU keeps its translations of the children's
 * stacks, made while it spawned them); the children run and end on the
 * other CPU, which frees their stacks; the parent then spawns again into
 * the slots just freed. Every child must start and end with status 0 (a
 * new stack written through a stale translation started from garbage and
 * crashed the kernel). With one CPU the children run only when the parent
 * blocks, and the test still passes. */
#include <neo_test.h>

#define ROUNDS 24
#define PER_ROUND 3
/* Spin this many clock ticks (10 ms each) while the children end elsewhere. */
#define SPIN_TICKS 5

static void spawn(int count)
{
    for (int i = 0; i < count; i++)
        CHECK_GE(sys_run("/bin/hello", NULL), 1);
}

static void spin(void)
{
    long until = sys_ticks() + SPIN_TICKS;
    while (sys_ticks() < until) {
    }
}

static void reap(int count)
{
    for (int i = 0; i < count; i++) {
        int status = -1;
        CHECK_GE(sys_wait(&status), 1);
        CHECK_EQ(status, 0);
    }
}

int main(void)
{
    for (int round = 0; round < ROUNDS; round++) {
        spawn(PER_ROUND);
        spin();
        spawn(PER_ROUND);
        spin();
        reap(2 * PER_ROUND);
    }
    PASS();
}
