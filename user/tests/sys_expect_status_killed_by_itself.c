// expect-status: 137
/* docs/abi.md sys_kill: killing oneself does not return and the status is
 * NEO_STATUS_KILLED (137). */
#include <neo_test.h>

int main(void)
{
    sys_kill(sys_getpid());
    eprintf("FAIL: sys_kill(self) returned\n");
    return 0;
}
