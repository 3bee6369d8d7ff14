/* Seed 000, Comportamiento 2: "Si hay cambios pendientes en la memoria mapeada
 * (escrituras no sincronizadas), los escribe al archivo subyacente."
 * Stores to 2 of 4 pages, then sys_munmap: exactly those 2 pages are written
 * back (meminfo writeback counters) and the file holds the stores. */
#include <neo_test.h>

#define PATH "/tmp/seed000_b2.dat"

int main(void)
{
    test_make_file(PATH, 4 * 4096, 1, 0);
    int fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = sys_mmap(fd, 0, 4 * 4096);
    CHECK(m != NULL);
    for (int i = 0; i < 4096; i++) {
        m[i] = (unsigned char)(0xa0 ^ i);
        m[2 * 4096 + i] = (unsigned char)(0x5c ^ i);
    }
    struct neo_meminfo before = test_meminfo();
    CHECK_EQ(sys_munmap(m, 4 * 4096), E_OK);
    struct neo_meminfo after = test_meminfo();
    CHECK_EQ(after.writeback_bytes - before.writeback_bytes, 2 * 4096);
    CHECK_GE((long)(after.writeback_requests - before.writeback_requests), 1);

    static unsigned char back[4 * 4096];
    test_read_file(PATH, 0, back, sizeof back);
    for (int i = 0; i < 4096; i++) {
        CHECK_EQ(back[i], (unsigned char)(0xa0 ^ i));
        CHECK_EQ(back[4096 + i], (unsigned char)(4096 + i));         /* untouched */
        CHECK_EQ(back[2 * 4096 + i], (unsigned char)(0x5c ^ i));
        CHECK_EQ(back[3 * 4096 + i], (unsigned char)(3 * 4096 + i)); /* untouched */
    }
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
