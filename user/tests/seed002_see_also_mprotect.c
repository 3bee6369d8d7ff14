/* Seed 002, SEE ALSO mprotect(2): protection changes per page (the mapping is
 * split); a store to a read-only page ends the process with SEGFAULT (helper);
 * munmap over pages of different protections removes them all. */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

int main(void)
{
    char *argv[] = { "/bin/fault_probe", "mprotect_ro", NULL };
    CHECK_EQ(test_run_wait("/bin/fault_probe", argv), NEO_STATUS_SEGFAULT);

    long maps0 = (long)test_meminfo().mappings;
    unsigned char *m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(m != MAP_FAILED);
    m[4096] = 3;
    CHECK_EQ(mprotect(m + 4096, 4096, PROT_READ), 0);
    CHECK_EQ((long)test_meminfo().mappings, maps0 + 3);
    CHECK_EQ(m[4096], 3);
    errno = 0;
    CHECK_EQ(mprotect(m + 1, 4096, PROT_READ), -1);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(mprotect(m, 4096, 0x100), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(mprotect(m + 4096, 4096, PROT_READ | PROT_WRITE), 0);
    m[4096] = 4;
    CHECK_EQ(munmap(m, 3 * 4096), 0);
    CHECK_EQ((long)test_meminfo().mappings, maps0);
    errno = 0;
    CHECK_EQ(mprotect(m, 4096, PROT_READ), -1);
    CHECK_EQ(errno, ENOMEM);
    return 0;
}
