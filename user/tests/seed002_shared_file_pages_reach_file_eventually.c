/* Seed 002, DIRTY PAGE HANDLING [File mapping]: "If the mapping maps data from a
 * file (MAP_SHARED), then the memory will eventually be written back to disk if
 * it's dirty." Without msync: after munmap (last reference) the file holds the
 * stores; and a child that exits with a dirty MAP_SHARED mapping leaves them too. */
#include <neo_test.h>
#include <sys/mman.h>

#define PATH "/tmp/seed002_eventually.dat"

int main(void)
{
    test_make_file(PATH, 4 * 4096, 0, 0);
    int fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    memcpy(m + 4096 + 100, "eventually", 10);
    CHECK_EQ(munmap(m, 4 * 4096), 0);
    CHECK_EQ(sys_close(fd), E_OK);
    char buf[10];
    test_read_file(PATH, 4096 + 100, buf, 10);
    CHECK_EQ(memcmp(buf, "eventually", 10), 0);

    /* MAP_PRIVATE stores never reach the file */
    fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    m = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(m != MAP_FAILED);
    CHECK_EQ(m[4096 + 100], 'e');
    m[4096 + 100] = 'E';
    CHECK_EQ(munmap(m, 4 * 4096), 0);
    CHECK_EQ(sys_close(fd), E_OK);
    test_read_file(PATH, 4096 + 100, buf, 1);
    CHECK_EQ(buf[0], 'e');
    return 0;
}
