/* Issue 9 item 2: a process with a few hundred thousand one-page mappings
 * (as many as the heap takes: about 382,000) gives back a few, so the
 * kernel heap is just above its reserve, then calls fork. The copy of its
 * mapping records needs far more than the reserve; fork used to clone them
 * infallibly and panic the kernel. It must fail with ENOMEM, changing
 * nothing (or succeed, and then the child runs and ends normally). Then,
 * with the mappings gone, fork works. */
#include <neo_test_heap.h> /* reach_heap_reserve, stop_hogs, made[] */
#include <sys/mman.h>
#include <errno.h>

#define GIVEN_BACK 256

/* fork, then wait for the child (which exits 7 at once); returns fork's
 * result in the parent. */
static int fork_and_reap(void)
{
    int pid = fork();
    if (pid == 0)
        sys_exit(7);
    if (pid > 0) {
        int status = -1;
        CHECK_EQ(sys_wait(&status), pid);
        CHECK_EQ(status, 7);
    }
    return pid;
}

int main(void)
{
    start_hogs();
    long n = reach_heap_reserve();
    /* just above the reserve: a few records' worth of heap is free again */
    for (long i = n - GIVEN_BACK; i < n; i++)
        CHECK_EQ(munmap(made[i], 4096), 0);
    n -= GIVEN_BACK;
    long mappings = (long)test_meminfo().mappings;

    int pid = fork_and_reap();
    if (pid < 0) {
        CHECK_EQ(errno, ENOMEM);
        CHECK_EQ((long)test_meminfo().mappings, mappings); /* nothing changed */
    }
    made[0][0] = 3; /* the parent's memory still works */
    CHECK_EQ(made[0][0], 3);

    for (long i = 0; i < n; i++)
        CHECK_EQ(munmap(made[i], 4096), 0);
    stop_hogs(); /* the heap is above its reserve again */
    CHECK_GE(fork_and_reap(), 1);
    PASS();
}
