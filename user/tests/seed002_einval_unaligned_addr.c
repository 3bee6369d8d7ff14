/* Seed 002, ERRORS: "[EINVAL] The addr parameter was not page aligned."
 * -1/EINVAL, and the mapping is left whole. */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

int main(void)
{
    unsigned char *m = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(m != MAP_FAILED);
    m[0] = 1;
    m[4096] = 2;
    static const int offs[] = { 1, 2, 8, 100, 2048, 4095, 4097 };
    for (unsigned i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        errno = 0;
        CHECK_EQ(munmap(m + offs[i], 4096), -1);
        CHECK_EQ(errno, EINVAL);
    }
    CHECK_EQ(m[0], 1);
    CHECK_EQ(m[4096], 2);
    CHECK_EQ(munmap(m, 2 * 4096), 0);
    return 0;
}
