/* Disk test under blkdebug rules that fail, once, the first device write to
 * the first block of /home/usuario/datos.bin: the first sys_munmap returns
 * E_IO and changes nothing (the mapping still holds the stores, its pages
 * still dirty); the second returns E_OK and writes them (tests/in_qemu.rs
 * then reads the image with debugfs). Page 0 byte i = (i ^ 0x5a). */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>

#define PAGE 4096

void main()
{
    int fd = sys_open(DATOS_PATH, O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = (unsigned char *)sys_mmap(fd, 0, 2 * PAGE);
    CHECK(m != NULL);
    for (int i = 0; i < PAGE; i++)
        m[i] = (unsigned char)(i ^ 0x5a);
    CHECK_EQ(sys_munmap(m, 2 * PAGE), E_IO);
    /* nothing changed: still mapped, the stores still there, still dirty */
    static char maps[4096];
    int n = sys_maps(maps, sizeof maps - 1);
    CHECK_GE(n, 0);
    maps[n] = 0;
    CHECK(strstr(maps, "datos.bin resident=1 dirty=1") != NULL);
    for (int i = 0; i < PAGE; i++)
        CHECK_EQ(m[i], (unsigned char)(i ^ 0x5a));
    CHECK_EQ(m[PAGE + 7], DATOS_BYTE(PAGE + 7));
    CHECK_EQ(sys_munmap(m, 2 * PAGE), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);
    printf("disk_eio: E_IO then E_OK\n");
}
