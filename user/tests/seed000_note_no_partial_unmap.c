/* Seed 000, Notas: "La dirección y el tamaño deben coincidir exactamente con los
 * usados en sys_mmap; no es posible desactivar parcialmente un mapeo." Every
 * partial range of a 4-page mapping is refused with E_INVAL and the whole
 * mapping stays usable. */
#include <neo_test.h>
#include <sys/mman.h>

#define PATH "/tmp/seed000_partial.dat"

int main(void)
{
    test_make_file(PATH, 4 * 4096, 1, 7);
    int fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = sys_mmap(fd, 0, 4 * 4096);
    CHECK(m != NULL);
    long maps0 = (long)test_meminfo().mappings;
    for (int first = 0; first < 4; first++)
        for (int count = 1; first + count <= 4; count++)
            if (!(first == 0 && count == 4))
                CHECK_EQ(sys_munmap(m + first * 4096, count * 4096), E_INVAL);
    CHECK_EQ((long)test_meminfo().mappings, maps0);
    unsigned char vec[4];
    CHECK_EQ(mincore(m, 4 * 4096, vec), 0); /* the whole range is still mapped */
    for (int p = 0; p < 4; p++) {
        CHECK_EQ(m[p * 4096 + 1], (unsigned char)(p * 4096 + 1 + 7));
        m[p * 4096 + 1] = 0xaa;
    }
    CHECK_EQ(sys_munmap(m, 4 * 4096), E_OK);
    CHECK_EQ((long)test_meminfo().mappings, maps0 - 1);
    for (int p = 0; p < 4; p++) {
        unsigned char b;
        test_read_file(PATH, p * 4096 + 1, &b, 1);
        CHECK_EQ(b, 0xaa);
    }
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
