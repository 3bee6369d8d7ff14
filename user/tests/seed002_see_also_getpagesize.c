/* Seed 002, SEE ALSO getpagesize(3): the page size munmap works in is 4096 =
 * NEO_PAGE_SIZE; a mapping is made of whole pages of that size. */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

int main(void)
{
    int ps = getpagesize();
    CHECK_EQ(ps, NEO_PAGE_SIZE);
    CHECK_EQ(ps, 4096);
    unsigned char *m = mmap(NULL, 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(m != MAP_FAILED);
    CHECK_EQ((unsigned long)m % (unsigned long)ps, 0);
    m[ps - 1] = 1; /* the whole page is there */
    errno = 0;
    CHECK_EQ(munmap(m + ps / 2, ps), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(munmap(m, 1), 0);
    return 0;
}
