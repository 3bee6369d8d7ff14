/* thread_ends MODE - a process whose threads end it in different ways, for
 * sys_threads_end_their_process_as_documented:
 *   exit_in_thread  a second thread calls sys_exit(7) while the first
 *                   waits in sys_thread_join: the process ends with 7
 *   fault_in_thread a second thread stores to NULL while the first waits:
 *                   the process ends with NEO_STATUS_SEGFAULT
 *   last_thread     the first thread calls sys_thread_exit(3), a second one
 *                   then (200 ms later) returns 5: the process ends with 5
 *                   (the last thread's end is the process's)
 *   many_threads    16 threads, each with its own 1 MiB mapping, 15 of them
 *                   blocked in a chain of joins, when the last calls
 *                   sys_exit(9)
 */
#include <neo_test.h>
#include <sys/mman.h>

#define STACK_SIZE (64 * 1024)

static void *new_stack(void)
{
    void *s = mmap(0, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(s != MAP_FAILED);
    return s;
}

static int exit_seven(void *arg)
{
    (void)arg;
    sys_exit(7);
}

static int store_null(void *arg)
{
    (void)arg;
    *(volatile int *)0 = 1;
    return 0;
}

static volatile int first_gone;

/* Waits until the first thread is about to call sys_thread_exit(3), then
 * 20 ticks (200 ms) more for that call to end it: with several CPUs this
 * thread runs beside it, and one yield (enough with one CPU) does not wait
 * for it. The first thread cannot be joined (docs/abi.md), so a time is
 * the only wait; its call takes microseconds. */
static int return_five(void *arg)
{
    (void)arg;
    while (!first_gone)
        sys_yield();
    long gone_at = sys_ticks();
    while (sys_ticks() < gone_at + 20)
        sys_yield();
    return 5;
}

static volatile int chain[16];

static int join_next(void *arg)
{
    long i = (long)arg;
    char *mine = mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(mine != MAP_FAILED);
    for (long off = 0; off < (1 << 20); off += 4096)
        mine[off] = (char)i;
    if (i == 15)
        sys_exit(9);
    while (chain[i + 1] == 0)
        sys_yield();
    sys_thread_join(chain[i + 1], 0);
    return 1;
}

int main(int argc, char **argv)
{
    CHECK_EQ(argc, 2);
    const char *mode = argv[1];
    if (!strcmp(mode, "exit_in_thread")) {
        int tid = sys_thread_create(exit_seven, 0, new_stack(), STACK_SIZE);
        CHECK_GE(tid, 1);
        sys_thread_join(tid, 0);
        return 1; /* not reached: the other thread ended the process */
    }
    if (!strcmp(mode, "fault_in_thread")) {
        int tid = sys_thread_create(store_null, 0, new_stack(), STACK_SIZE);
        CHECK_GE(tid, 1);
        sys_thread_join(tid, 0);
        return 1;
    }
    if (!strcmp(mode, "last_thread")) {
        int tid = sys_thread_create(return_five, 0, new_stack(), STACK_SIZE);
        CHECK_GE(tid, 1);
        first_gone = 1;
        sys_thread_exit(3);
    }
    if (!strcmp(mode, "many_threads")) {
        for (long i = 15; i >= 0; i--) {
            chain[i] = sys_thread_create(join_next, (void *)i, new_stack(), STACK_SIZE);
            CHECK_GE(chain[i], 1);
        }
        sys_thread_join(chain[0], 0);
        return 1;
    }
    return 2;
}
