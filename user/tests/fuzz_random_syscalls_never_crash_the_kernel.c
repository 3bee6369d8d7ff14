/* Bad input never crashes the kernel: /bin/soak runs 24 children that each
 * make 1500 system calls with random arguments (programs/syscall_fuzzer.c);
 * the 12 of even seeds are threaded (2 to 6 threads besides the first make
 * the calls at once, start, join and end threads, fork, unmap each other's
 * memory and check their regions' contents). A child may end by its own
 * fault; the kernel stays up, soak finds every frame back, and programs
 * still run afterwards. */
#include <neo_test.h>

int main(void)
{
    char *argv[] = { "/bin/soak", "24", "1500", NULL };
    CHECK_EQ(test_run_wait("/bin/soak", argv), 0);
    CHECK_EQ(test_run_wait("/bin/hello", NULL), 0);
    return 0;
}
