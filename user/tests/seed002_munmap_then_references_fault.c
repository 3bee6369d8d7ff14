/* Seed 002, DESCRIPTION: munmap "deletes the mappings for the specified address
 * range, causing further references to addresses within the range to generate
 * invalid memory references." A helper touching anonymous memory after munmap
 * is ended with NEO_STATUS_SEGFAULT; here, mincore sees the range unmapped. */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

int main(void)
{
    char *argv[] = { "/bin/fault_probe", "anon_after_munmap", NULL };
    CHECK_EQ(test_run_wait("/bin/fault_probe", argv), NEO_STATUS_SEGFAULT);

    unsigned char *m = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(m != MAP_FAILED);
    for (int p = 0; p < 4; p++)
        m[p * 4096] = 1;
    CHECK_EQ(munmap(m, 4 * 4096), 0);
    unsigned char vec[4];
    errno = 0;
    CHECK_EQ(mincore(m, 4 * 4096, vec), -1);
    CHECK_EQ(errno, ENOMEM);
    return 0;
}
