/* neoos-api.md, sys_mmap errors: E_INVAL for a bad descriptor, offset or size
 * (size <= 0, unaligned or negative offset, beyond the file). The C wrapper
 * returns NULL and sys_errno() gives the code. */
#include <neo_test.h>

#define EXPECT_MMAP_FAILS(fd, off, size, code) do { \
        CHECK(sys_mmap((fd), (off), (size)) == NULL); \
        CHECK_EQ(sys_errno(), (code)); \
    } while (0)

int main(void)
{
    int fd = sys_open(DATOS_PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    long maps0 = (long)test_meminfo().mappings;
    EXPECT_MMAP_FAILS(-1, 0, 4096, E_INVAL);
    EXPECT_MMAP_FAILS(99, 0, 4096, E_INVAL);
    EXPECT_MMAP_FAILS(1000000, 0, 4096, E_INVAL);
    EXPECT_MMAP_FAILS(STDIN, 0, 4096, E_INVAL);
    EXPECT_MMAP_FAILS(STDOUT, 0, 4096, E_INVAL);
    EXPECT_MMAP_FAILS(fd, 0, 0, E_INVAL);
    EXPECT_MMAP_FAILS(fd, 0, -4096, E_INVAL);
    EXPECT_MMAP_FAILS(fd, 1, 4096, E_INVAL);
    EXPECT_MMAP_FAILS(fd, 2048, 4096, E_INVAL);
    EXPECT_MMAP_FAILS(fd, -4096, 4096, E_INVAL);
    EXPECT_MMAP_FAILS(fd, 0, DATOS_SIZE + 1, E_INVAL);
    EXPECT_MMAP_FAILS(fd, DATOS_SIZE, 4096, E_INVAL);
    EXPECT_MMAP_FAILS(fd, DATOS_SIZE - 4096, 4097, E_INVAL);
    EXPECT_MMAP_FAILS(fd, 0, 0x7fffffff, E_INVAL);
    CHECK_EQ((long)test_meminfo().mappings, maps0);

    /* a closed descriptor */
    int fd2 = sys_open(DATOS_PATH, O_RDONLY);
    CHECK_GE(fd2, 0);
    CHECK_EQ(sys_close(fd2), E_OK);
    EXPECT_MMAP_FAILS(fd2, 0, 4096, E_INVAL);

    /* the last whole page and the whole file are fine */
    unsigned char *m = sys_mmap(fd, DATOS_SIZE - 4096, 4096);
    CHECK(m != NULL);
    CHECK_EQ(sys_errno(), E_OK);
    CHECK_EQ(m[4095], DATOS_BYTE(DATOS_SIZE - 1));
    CHECK_EQ(sys_munmap(m, 4096), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
