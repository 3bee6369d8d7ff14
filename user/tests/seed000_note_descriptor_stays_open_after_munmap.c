/* Seed 000, Notas: "Desactivar un mapeo no cierra el descriptor de archivo
 * asociado; esto debe hacerse separadamente con sys_close." After sys_munmap
 * the descriptor still reads, writes and maps; sys_close then succeeds once. */
#include <neo_test.h>

#define PATH "/tmp/seed000_fd_open.dat"

int main(void)
{
    test_make_file(PATH, 2 * 4096, 0, 'a');
    int fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = sys_mmap(fd, 0, 2 * 4096);
    CHECK(m != NULL);
    m[0] = 'Z';
    CHECK_EQ(sys_munmap(m, 2 * 4096), E_OK);

    char c = 0;
    CHECK_EQ(sys_read(fd, &c, 1), 1);     /* position 0: the stored byte */
    CHECK_EQ(c, 'Z');
    CHECK_EQ(sys_write(fd, "Y", 1), 1);   /* position 1 */
    unsigned char *again = sys_mmap(fd, 0, 4096);
    CHECK(again != NULL);
    CHECK_EQ(again[0], 'Z');
    CHECK_EQ(again[1], 'Y');
    CHECK_EQ(sys_munmap(again, 4096), E_OK);
    CHECK_EQ(sys_fsync(fd), E_OK);

    CHECK_EQ(sys_close(fd), E_OK);
    CHECK_EQ(sys_close(fd), E_INVAL);     /* now it is closed */
    return 0;
}
