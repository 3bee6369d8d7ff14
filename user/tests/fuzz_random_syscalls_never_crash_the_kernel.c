/* Bad input never crashes the kernel: children make thousands of system calls
 * with random arguments (helpers/syscall_fuzzer.c, one seed each). A child
 * may end by its own fault; the kernel stays up, every frame comes back once
 * the children and their SysV segments are gone, and programs still run. */
#include <neo_test.h>
#include <sys/shm.h>

#define CHILDREN 24

static void remove_fuzzer_segments(void)
{
    for (int k = 0; k < 4; k++) {
        int id = shmget(0x46550 + k, 0, 0);
        if (id >= 0)
            CHECK_EQ(shmctl(id, IPC_RMID, NULL), 0);
    }
}

int main(void)
{
    remove_fuzzer_segments();
    long free0 = test_free_frames();
    int clean_ends = 0;
    for (int seed = 1; seed <= CHILDREN; seed++) {
        char number[16];
        snprintf(number, sizeof number, "%d", seed);
        char *argv[] = { "/bin/syscall_fuzzer", number, "1500", NULL };
        int status = test_run_wait("/bin/syscall_fuzzer", argv);
        if (status != 0 && status != NEO_STATUS_SEGFAULT && status != NEO_STATUS_BUSERROR &&
            status != NEO_STATUS_CRASHED) {
            eprintf("FAIL: fuzzer seed %d ended with status %d\n", seed, status);
            return 1;
        }
        clean_ends += status == 0;
        int reaped;
        while ((reaped = sys_wait(NULL)) > 0) /* its own children, if orphans were adopted */
            ;
        remove_fuzzer_segments();
    }
    /* The fuzzer must mostly get through its calls, or it tests little. */
    CHECK_GE(clean_ends, CHILDREN / 2);
    CHECK_FRAMES_BACK(free0);
    CHECK_EQ(test_run_wait("/bin/hello", NULL), 0);
    return 0;
}
