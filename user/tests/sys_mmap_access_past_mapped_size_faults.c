/* neoos-api.md, sys_mmap: "Access past the mapped size faults." A helper whose
 * only mapping is sys_mmap(fd, 0, 8192) (and one of size 100) touches the page
 * after it: NEO_STATUS_SEGFAULT. Also POSIX mmap: a page wholly beyond the end
 * of the file is a bus error. */
#include <neo_test.h>

int main(void)
{
    char *a1[] = { "/bin/fault_probe", "neo_past_size", NULL };
    CHECK_EQ(test_run_wait("/bin/fault_probe", a1), NEO_STATUS_SEGFAULT);
    char *a2[] = { "/bin/fault_probe", "neo_past_size_unaligned", NULL };
    CHECK_EQ(test_run_wait("/bin/fault_probe", a2), NEO_STATUS_SEGFAULT);
    char *a3[] = { "/bin/fault_probe", "beyond_eof", NULL };
    CHECK_EQ(test_run_wait("/bin/fault_probe", a3), NEO_STATUS_BUSERROR);
    return 0;
}
