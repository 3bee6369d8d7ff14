/* Seed 002, ERRORS: "[EINVAL] Some part of the region being unmapped is not part
 * of the currently valid address space." The valid space is
 * [NEO_USER_BASE, NEO_USER_END); ranges reaching outside it, wholly or partly,
 * fail and change nothing (a mapping at the top of the space survives). */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

static void expect_einval(unsigned long addr, unsigned long len)
{
    errno = 0;
    int r = munmap((void *)addr, len);
    if (r != -1 || errno != EINVAL)
        eprintf("munmap(0x%lx, 0x%lx) -> %d errno %d\n", addr, len, r, errno);
    CHECK_EQ(r, -1);
    CHECK_EQ(errno, EINVAL);
}

int main(void)
{
    /* a mapping at the very top of the user space */
    unsigned long top = NEO_USER_END - 4096;
    unsigned char *t = mmap((void *)top, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0);
    CHECK_EQ((long)t, (long)top);
    t[0] = 0x42;

    expect_einval(0xffff800000000000UL, 4096);          /* kernel half */
    expect_einval(0xffffffff80000000UL, 4096);
    expect_einval(0xfffffffffffff000UL, 4096);          /* end wraps around */
    expect_einval(NEO_USER_END, 4096);                  /* first non-user page */
    expect_einval(0x0000800000001000UL, 4096);          /* non-canonical */
    expect_einval(top, 2 * 4096);                       /* straddles the end */
    expect_einval(top - 4096, 3 * 4096);
    expect_einval(0x400000, 0x0000800000000000UL);      /* runs past the end */
    expect_einval(0, 4096);                             /* the NULL guard */
    expect_einval(0, NEO_USER_BASE + 4096);             /* starts in the guard */
    expect_einval(4096, 4096);

    CHECK_EQ(t[0], 0x42);                               /* nothing was removed */
    CHECK_EQ(munmap(t, 4096), 0);
    return 0;
}
