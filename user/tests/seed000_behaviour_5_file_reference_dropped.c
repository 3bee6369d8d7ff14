/* Seed 000, Comportamiento 5: "Decrementa el contador de referencias del archivo
 * si estaba asociado a un mapeo de archivo." The mapping holds a reference of its
 * own (it survives sys_close of the descriptor); sys_munmap drops it: repeated
 * open/map/close/unmap cycles leak neither frames nor mappings, and the file
 * itself stays intact and usable. */
#include <neo_test.h>

#define PATH "/tmp/seed000_b5.dat"
#define CYCLES 200

int main(void)
{
    test_make_file(PATH, 2 * 4096, 3, 1);

    /* The mapping keeps the file alive after the descriptor is closed. */
    int fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = sys_mmap(fd, 0, 2 * 4096);
    CHECK(m != NULL);
    CHECK_EQ(sys_close(fd), E_OK);
    CHECK_EQ(m[4097], (unsigned char)(4097 * 3 + 1));
    m[4097] = 0xee;
    CHECK_EQ(sys_munmap(m, 2 * 4096), E_OK);
    unsigned char b;
    test_read_file(PATH, 4097, &b, 1);
    CHECK_EQ(b, 0xee);

    /* Warm-up, then cycles: the reference taken by each sys_mmap is dropped. */
    long maps0 = (long)test_meminfo().mappings;
    long free0 = 0;
    for (int c = 0; c < CYCLES + 1; c++) {
        if (c == 1)
            free0 = test_free_frames();
        fd = sys_open(PATH, O_RDWR);
        CHECK_GE(fd, 0);
        m = sys_mmap(fd, 0, 2 * 4096);
        CHECK(m != NULL);
        CHECK_EQ(sys_close(fd), E_OK);
        m[0] = (unsigned char)c;
        CHECK_EQ(sys_munmap(m, 2 * 4096), E_OK);
    }
    CHECK_EQ((long)test_meminfo().mappings, maps0);
    CHECK_FRAMES_BACK(free0);
    test_read_file(PATH, 0, &b, 1);
    CHECK_EQ(b, (unsigned char)CYCLES);
    return 0;
}
