/* Disk test, booted with --memory 64M: /home/usuario/dirty160.bin is a
 * 160 MiB file made on the host (every byte 0x11), two and a half times
 * the machine's RAM. One sys_mmap mapping (read-write, shared) of all of
 * it; 16 bytes stored at the start of each page (byte i of page p:
 * (p * 7 + i) & 0xff, never 0x11); sys_munmap == E_OK. Reclaim must write
 * dirty pages to make room (they cannot all stay in RAM), then evict them.
 * tests/in_qemu.rs checks the image (e2fsck -fn, debugfs cat). */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>

#define SIZE (160L * 1024 * 1024)
#define PAGE 4096
#define STORED 16

static unsigned char stored_byte(long p, int i)
{
    unsigned char b = (unsigned char)(p * 7 + i);
    return b == 0x11 ? 0x12 : b;
}

void main()
{
    int fd = sys_open("/home/usuario/dirty160.bin", O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = (unsigned char *)sys_mmap(fd, 0, (int)SIZE);
    CHECK(m != NULL);
    for (long p = 0; p < SIZE / PAGE; p++)
        for (int i = 0; i < STORED; i++)
            m[p * PAGE + i] = stored_byte(p, i);
    printf("disk_big_dirty: stored\n");
    CHECK_EQ(sys_munmap(m, (int)SIZE), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);
    printf("disk_big_dirty: unmapped\n");
}
