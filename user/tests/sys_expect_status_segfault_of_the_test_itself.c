// expect-status: 139
/* docs/abi.md §3 and the test convention: a test whose first line is
 * "// expect-status: N" passes when it ends with status N. This one reads
 * NULL after a bit of work, so the kernel must end it with
 * NEO_STATUS_SEGFAULT (139), not hang, not crash the system. */
#include <neo_test.h>

int main(void)
{
    CHECK_EQ(NEO_STATUS_SEGFAULT, 139);
    volatile unsigned char *p = NULL;
    unsigned char v = *p;
    eprintf("FAIL: read %u from NULL without a fault\n", v);
    return 0;
}
