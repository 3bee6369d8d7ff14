/* Seed 002, SEE ALSO mincore(2): residency per page; untouched anonymous pages
 * are not resident, touched ones are; unmapped ranges give ENOMEM; a bad vector
 * gives EFAULT. */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

int main(void)
{
    unsigned char *m = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(m != MAP_FAILED);
    m[0] = 1;
    m[5 * 4096] = 1;
    unsigned char vec[8];
    CHECK_EQ(mincore(m, 8 * 4096, vec), 0);
    for (int p = 0; p < 8; p++)
        CHECK_EQ(vec[p] & 1, (p == 0 || p == 5) ? 1 : 0);
    errno = 0;
    CHECK_EQ(mincore(m + 1, 4096, vec), -1);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(mincore(m, 4096, (unsigned char *)0xffff800000000000UL), -1);
    CHECK_EQ(errno, EFAULT);
    errno = 0;
    CHECK_EQ(mincore(m, 4096, NULL), -1);
    CHECK_EQ(errno, EFAULT);
    CHECK_EQ(munmap(m + 4096, 4096), 0);
    errno = 0;
    CHECK_EQ(mincore(m, 8 * 4096, vec), -1);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(munmap(m, 8 * 4096), 0);
    return 0;
}
