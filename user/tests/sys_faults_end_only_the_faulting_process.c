/* docs/abi.md §3: a fault ends only the faulting process, with the documented
 * status: NULL and kernel-address accesses, a store to a read-only shm
 * attachment; a system call whose return address is not canonical (fork
 * there makes no child); and the
 * segv demo program. This process goes on afterwards. */
#include <neo_test.h>

int main(void)
{
    static const char *const modes[] = { "null", "kernel", "kernel_store", "shm_rdonly" };
    for (unsigned i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char *argv[] = { "/bin/fault_probe", (char *)modes[i], NULL };
        CHECK_EQ(test_run_wait("/bin/fault_probe", argv), NEO_STATUS_SEGFAULT);
    }
    CHECK_EQ(test_run_wait("/bin/segv", NULL), NEO_STATUS_SEGFAULT);
    /* returning from a syscall to a non-canonical address: a CPU exception */
    char *top[] = { "/bin/fault_probe", "syscall_at_top", NULL };
    CHECK_EQ(test_run_wait("/bin/fault_probe", top), NEO_STATUS_CRASHED);
    /* fork there: the caller ends the same way, and no child is made that
     * would return to that address (its iretq would fault in the kernel) */
    long free_before = test_free_frames();
    char *fork_top[] = { "/bin/fault_probe", "fork_at_top", NULL };
    CHECK_EQ(test_run_wait("/bin/fault_probe", fork_top), NEO_STATUS_CRASHED);
    CHECK_FRAMES_BACK(free_before);
    CHECK_EQ(test_run_wait("/bin/hello", NULL), 0);
    return 0;
}
