/* A program that raises the NMI's vector itself (int $2) must not reach
 * the kernel's NMI state report (which prints every thread's state and is
 * meant for the test harness's look at a silent machine): the gate is the
 * kernel's only, so the program ends with a CPU exception (#GP), each time,
 * and the kernel goes on. */
#include <neo_test.h>

int main(void)
{
    for (int i = 0; i < 3; i++) {
        char *argv[] = { "/bin/eflags_probe", "int_nmi_vector", NULL };
        CHECK_EQ(test_run_wait("/bin/eflags_probe", argv), NEO_STATUS_CRASHED);
    }
    CHECK_EQ(test_run_wait("/bin/hello", NULL), 0);
    PASS();
}
