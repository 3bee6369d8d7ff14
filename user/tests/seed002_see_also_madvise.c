/* Seed 002, SEE ALSO madvise(2): hints are accepted; MADV_DONTNEED discards
 * private anonymous pages (frames come back, pages read as zeros) but keeps
 * MAP_SHARED contents. */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

#define PAGES 32

int main(void)
{
    unsigned char *m = mmap(NULL, PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(m != MAP_FAILED);
    for (int p = 0; p < PAGES; p++)
        m[p * 4096] = 0xee;
    CHECK_EQ(madvise(m, PAGES * 4096, MADV_NORMAL), 0);
    CHECK_EQ(madvise(m, PAGES * 4096, MADV_RANDOM), 0);
    CHECK_EQ(madvise(m, PAGES * 4096, MADV_SEQUENTIAL), 0);
    CHECK_EQ(madvise(m, PAGES * 4096, MADV_WILLNEED), 0);
    long free0 = test_free_frames();
    CHECK_EQ(madvise(m, PAGES * 4096, MADV_DONTNEED), 0);
    CHECK_GE(test_free_frames(), free0 + PAGES - NEO_TEST_FRAME_SLACK);
    for (int p = 0; p < PAGES; p++)
        CHECK_EQ(m[p * 4096], 0);
    errno = 0;
    CHECK_EQ(madvise(m + 1, 4096, MADV_NORMAL), -1);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(madvise(m, 4096, 99), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(munmap(m, PAGES * 4096), 0);
    errno = 0;
    CHECK_EQ(madvise(m, 4096, MADV_NORMAL), -1);
    CHECK_EQ(errno, ENOMEM);

    unsigned char *s = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANON, -1, 0);
    CHECK(s != MAP_FAILED);
    s[0] = 0x51;
    CHECK_EQ(madvise(s, 4096, MADV_DONTNEED), 0);
    CHECK_EQ(s[0], 0x51);
    CHECK_EQ(munmap(s, 4096), 0);
    return 0;
}
