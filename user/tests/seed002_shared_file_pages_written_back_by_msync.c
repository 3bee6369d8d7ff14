/* Seed 002, DIRTY PAGE HANDLING [File mapping]: "to force the memory to be
 * written back to the disk, use msync(2)." msync(MS_SYNC) writes exactly the
 * dirty pages (meminfo counters), they are then clean (a second msync writes
 * nothing), the file holds the data, and msync on /dev/faulty reports EIO. */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

#define PATH "/tmp/seed002_msync.dat"

int main(void)
{
    test_make_file(PATH, 8 * 4096, 0, 0);
    int fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    m[1 * 4096 + 3] = 0x31;
    m[4 * 4096 + 5] = 0x34;
    m[7 * 4096 + 7] = 0x37;

    struct neo_meminfo a = test_meminfo();
    CHECK_EQ(msync(m, 8 * 4096, MS_SYNC), 0);
    struct neo_meminfo b = test_meminfo();
    CHECK_EQ(b.writeback_bytes - a.writeback_bytes, 3 * 4096);
    CHECK_GE((long)(b.writeback_requests - a.writeback_requests), 1);
    CHECK_EQ(msync(m, 8 * 4096, MS_SYNC), 0);      /* clean now */
    struct neo_meminfo c = test_meminfo();
    CHECK_EQ(c.writeback_bytes, b.writeback_bytes);

    unsigned char x;
    test_read_file(PATH, 4 * 4096 + 5, &x, 1);
    CHECK_EQ(x, 0x34);

    /* part of a range; MS_ASYNC also accepted */
    m[2 * 4096] = 1;
    CHECK_EQ(msync(m + 2 * 4096, 4096, MS_ASYNC), 0);
    CHECK_EQ(msync(m + 2 * 4096, 4096, MS_SYNC | MS_INVALIDATE), 0);
    errno = 0;
    CHECK_EQ(msync(m + 1, 4096, MS_SYNC), -1);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(msync(m, 4096, MS_SYNC | MS_ASYNC), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(munmap(m, 8 * 4096), 0);
    CHECK_EQ(sys_close(fd), E_OK);

    /* the write-back error is reported */
    int ffd = sys_open("/dev/faulty", O_RDWR);
    CHECK_GE(ffd, 0);
    unsigned char *f = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ffd, 0);
    CHECK(f != MAP_FAILED);
    f[0] = 1;
    errno = 0;
    CHECK_EQ(msync(f, 4096, MS_SYNC), -1);
    CHECK_EQ(errno, EIO);
    return 0; /* exit drops the failed writeback */
}
