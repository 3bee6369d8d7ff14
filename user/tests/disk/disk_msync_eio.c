/* Disk test of the E_IO path of write-backs that wait for the disk without
 * the kernel lock (msync(MS_SYNC), fsync), under blkdebug rules failing
 * once the first write of the first block of /home/usuario/datos.bin, or
 * the first device flush (tests/in_qemu.rs): the first msync fails with
 * EIO and changes nothing (the mapping still holds the stores, its page
 * still dirty), the second returns 0 and writes it; then a page dirtied
 * the same way goes through fsync (E_OK). Page 0 byte i = (i ^ 0x33),
 * page 1 byte i = (i ^ 0x44) on the image. */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>
#include <errno.h>
#include <sys/mman.h>

#define PAGE 4096

void main()
{
    int fd = sys_open(DATOS_PATH, O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    for (int i = 0; i < PAGE; i++)
        m[i] = (unsigned char)(i ^ 0x33);
    errno = 0;
    CHECK_EQ(msync(m, 2 * PAGE, MS_SYNC), -1);
    CHECK_EQ(errno, EIO);
    /* nothing lost: still mapped, the stores there, the page still dirty */
    static char maps[4096];
    int n = sys_maps(maps, sizeof maps - 1);
    CHECK_GE(n, 0);
    maps[n] = 0;
    CHECK(strstr(maps, "datos.bin resident=1 dirty=1") != NULL);
    for (int i = 0; i < PAGE; i++)
        CHECK_EQ(m[i], (unsigned char)(i ^ 0x33));
    CHECK_EQ(msync(m, 2 * PAGE, MS_SYNC), 0);
    n = sys_maps(maps, sizeof maps - 1);
    CHECK_GE(n, 0);
    maps[n] = 0;
    CHECK(strstr(maps, "datos.bin resident=1 dirty=0") != NULL);
    for (int i = 0; i < PAGE; i++)
        m[PAGE + i] = (unsigned char)(i ^ 0x44);
    CHECK_EQ(msync(m, 2 * PAGE, MS_ASYNC), 0);
    CHECK_EQ(sys_fsync(fd), E_OK);
    CHECK_EQ(munmap(m, 2 * PAGE), 0);
    CHECK_EQ(sys_close(fd), E_OK);
    printf("disk_msync_eio: EIO then 0\n");
}
