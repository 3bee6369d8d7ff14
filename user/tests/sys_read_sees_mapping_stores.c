/* neoos-api.md, sys_mmap: "The mapping is shared with the file: stores reach
 * the file." sys_read sees stores made through a live mapping (before any
 * sys_munmap), and the mapping sees sys_write at once. sys_read INTO a mapping
 * (including not-yet-touched pages) works too. */
#include <neo_test.h>
#include <sys/mman.h>

#define PATH "/tmp/sys_read_sees.dat"

int main(void)
{
    test_make_file(PATH, 2 * 4096, 0, '.');
    int fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    char *m = sys_mmap(fd, 0, 2 * 4096);
    CHECK(m != NULL);
    memcpy(m + 4096 + 7, "through the mapping", 19);

    int rfd = sys_open(PATH, O_RDONLY);
    CHECK_GE(rfd, 0);
    static char buf[2 * 4096];
    CHECK_EQ(sys_read(rfd, buf, sizeof buf), (int)sizeof buf);
    CHECK_EQ(memcmp(buf + 4096 + 7, "through the mapping", 19), 0);
    CHECK_EQ(buf[0], '.');
    CHECK_EQ(sys_close(rfd), E_OK);

    /* and the other way round */
    int wfd = sys_open(PATH, O_RDWR);
    CHECK_GE(wfd, 0);
    CHECK_EQ(sys_write(wfd, "via sys_write", 13), 13);
    CHECK_EQ(memcmp(m, "via sys_write", 13), 0);
    CHECK_EQ(sys_close(wfd), E_OK);

    /* sys_read into an untouched anonymous mapping and into a file mapping */
    char *anon = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(anon != MAP_FAILED);
    rfd = sys_open(PATH, O_RDONLY);
    CHECK_GE(rfd, 0);
    CHECK_EQ(sys_read(rfd, anon + 100, 2 * 4096 - 100), 2 * 4096 - 100);
    CHECK_EQ(memcmp(anon + 100, "via sys_write", 13), 0);
    CHECK_EQ(sys_close(rfd), E_OK);
    CHECK_EQ(munmap(anon, 2 * 4096), 0);

    CHECK_EQ(sys_munmap(m, 2 * 4096), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
