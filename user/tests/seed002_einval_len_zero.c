/* Seed 002, ERRORS: "[EINVAL] The len parameter was negative or zero." (zero) */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

int main(void)
{
    unsigned char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(m != MAP_FAILED);
    m[0] = 7;
    errno = 0;
    CHECK_EQ(munmap(m, 0), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(m[0], 7);
    /* the raw kernel result is -EINVAL */
    CHECK_EQ(neo_syscall(SYS_MUNMAP, (long)m, 0, 0, 0, 0, 0), -EINVAL);
    CHECK_EQ(munmap(m, 4096), 0);
    return 0;
}
