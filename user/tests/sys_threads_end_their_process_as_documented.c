/* How threads end their process (docs/abi.md, "Threads"): sys_exit in any
 * thread ends every thread with that status (also when they are blocked in
 * joins and each holds mappings); a fault in a thread ends the process with
 * NEO_STATUS_SEGFAULT; the last thread's sys_thread_exit is the process's
 * end with its status. After each, every frame is back. */
#include <neo_test.h>

static int run_mode(const char *mode)
{
    char *argv[] = { "/bin/thread_ends", (char *)mode, 0 };
    return test_run_wait("/bin/thread_ends", argv);
}

int main(void)
{
    long free_before = test_free_frames();
    CHECK_EQ(run_mode("exit_in_thread"), 7);
    CHECK_FRAMES_BACK(free_before);
    CHECK_EQ(run_mode("fault_in_thread"), NEO_STATUS_SEGFAULT);
    CHECK_FRAMES_BACK(free_before);
    CHECK_EQ(run_mode("last_thread"), 5);
    CHECK_FRAMES_BACK(free_before);
    CHECK_EQ(run_mode("many_threads"), 9);
    CHECK_FRAMES_BACK(free_before);
    PASS();
}
