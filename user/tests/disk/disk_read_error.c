/* Disk test under blkdebug rules that fail, once, device reads of block 2
 * and of block 5 of /home/usuario/datos.bin: sys_read of page 2 returns
 * E_IO; then a load from page 5 of a mapping cannot be paged in, and the
 * kernel ends the program with a bus error (status 135, tests/in_qemu.rs
 * checks it). */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>

#define PAGE 4096

void main()
{
    int fd = sys_open(DATOS_PATH, O_RDWR);
    CHECK_GE(fd, 0);
    static unsigned char skip[2 * PAGE];
    CHECK_EQ(sys_read(fd, skip, 2 * PAGE), 2 * PAGE);
    unsigned char page[PAGE];
    CHECK_EQ(sys_read(fd, page, PAGE), E_IO);
    printf("disk_read_error: sys_read -> E_IO\n");
    volatile unsigned char *m = (volatile unsigned char *)sys_mmap(fd, 0, 8 * PAGE);
    CHECK(m != NULL);
    unsigned char b = m[5 * PAGE];
    printf("disk_read_error: read %d from a page that could not be read\n", b);
}
