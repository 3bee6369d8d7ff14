/* Seed 002, ERRORS: "[EINVAL] The len parameter was negative or zero."
 * (negative: len is a size_t, so a negative value is huge and the range runs
 * out of the address space). The mapping is left whole. */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

int main(void)
{
    unsigned char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(m != MAP_FAILED);
    m[0] = 7;
    static const long lens[] = { -1, -4096, -8192, (long)0x8000000000000000UL };
    for (unsigned i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        errno = 0;
        CHECK_EQ(munmap(m, (size_t)lens[i]), -1);
        CHECK_EQ(errno, EINVAL);
    }
    CHECK_EQ(m[0], 7);
    CHECK_EQ(munmap(m, 4096), 0);
    return 0;
}
