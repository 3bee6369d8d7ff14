/* Disk test: stores through a mapping of /home/usuario/datos.bin (page 1:
 * byte i = (i * 11 + 7) & 0xff), sys_munmap == E_OK, says so, then waits
 * forever: tests/in_qemu.rs kills QEMU at that line (a power cut) and
 * finds the bytes on the image with debugfs. */
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
        m[PAGE + i] = (unsigned char)(i * 11 + 7);
    CHECK_EQ(sys_munmap(m, 2 * PAGE), E_OK);
    printf("disk_power_cut: unmapped\n");
    for (;;)
        sys_yield();
}
