/* Seed 000, Notas: "Los cambios realizados en la memoria mapeada se escriben al
 * archivo durante sys_munmap, pero esto no garantiza que se hayan escrito
 * físicamente al disco." After sys_munmap returns, the changes are in the file
 * for every later reader: sys_read through a new descriptor and a new mapping. */
#include <neo_test.h>

#define PATH "/tmp/seed000_note_changes.dat"

int main(void)
{
    test_make_file(PATH, 3 * 4096, 0, 0x11);
    int fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = sys_mmap(fd, 4096, 2 * 4096);
    CHECK(m != NULL);
    memcpy(m + 10, "written by a store", 18);
    m[2 * 4096 - 1] = 0xfe;
    CHECK_EQ(sys_munmap(m, 2 * 4096), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);

    char buf[18];
    test_read_file(PATH, 4096 + 10, buf, 18);
    CHECK_EQ(memcmp(buf, "written by a store", 18), 0);
    unsigned char last;
    test_read_file(PATH, 3 * 4096 - 1, &last, 1);
    CHECK_EQ(last, 0xfe);
    unsigned char first;
    test_read_file(PATH, 0, &first, 1);
    CHECK_EQ(first, 0x11);

    fd = sys_open(PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    m = sys_mmap(fd, 0, 3 * 4096);
    CHECK(m != NULL);
    CHECK_EQ(memcmp(m + 4096 + 10, "written by a store", 18), 0);
    CHECK_EQ(m[3 * 4096 - 1], 0xfe);
    CHECK_EQ(sys_munmap(m, 3 * 4096), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
