/* Seed 002 (and neoos-api.md "Partial ranges are allowed (a mapping is split)"):
 * munmap of the middle page of a 3-page anonymous mapping leaves two mappings
 * with their data; the middle faults (helper), the outer parts stay usable and
 * can be unmapped separately. Also the head and tail of a file mapping. */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

int main(void)
{
    char *argv[] = { "/bin/fault_probe", "partial_middle", NULL };
    CHECK_EQ(test_run_wait("/bin/fault_probe", argv), NEO_STATUS_SEGFAULT);

    long maps0 = (long)test_meminfo().mappings;
    unsigned char *m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(m != MAP_FAILED);
    CHECK_EQ((long)test_meminfo().mappings, maps0 + 1);
    for (int p = 0; p < 3; p++)
        memset(m + p * 4096, 'a' + p, 4096);
    CHECK_EQ(munmap(m + 4096, 4096), 0);
    CHECK_EQ((long)test_meminfo().mappings, maps0 + 2); /* split in two */
    unsigned char vec[3];
    CHECK_EQ(mincore(m, 4096, vec), 0);
    CHECK_EQ(mincore(m + 2 * 4096, 4096, vec), 0);
    CHECK_EQ(mincore(m + 4096, 4096, vec), -1);
    CHECK_EQ(errno, ENOMEM);
    for (int i = 0; i < 4096; i++) {
        CHECK_EQ(m[i], 'a');
        CHECK_EQ(m[2 * 4096 + i], 'c');
    }
    m[0] = 'x';
    m[2 * 4096] = 'y';
    CHECK_EQ(munmap(m + 2 * 4096, 4096), 0);
    CHECK_EQ(m[0], 'x');
    CHECK_EQ(munmap(m, 4096), 0);
    CHECK_EQ((long)test_meminfo().mappings, maps0);

    /* file mapping: cut head and tail, the middle keeps showing the file */
    int fd = sys_open(DATOS_PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    unsigned char *f = mmap(NULL, 4 * 4096, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(f != MAP_FAILED);
    CHECK_EQ(munmap(f, 4096), 0);
    CHECK_EQ(munmap(f + 3 * 4096, 4096), 0);
    CHECK_EQ(f[4096 + 9], DATOS_BYTE(4096 + 9));
    CHECK_EQ(f[3 * 4096 - 1], DATOS_BYTE(3 * 4096 - 1));
    CHECK_EQ(munmap(f + 4096, 2 * 4096), 0);
    CHECK_EQ((long)test_meminfo().mappings, maps0);
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
