/* Disk test, first boot (run by tests/in_qemu.rs, which then checks the
 * image with e2fsck -fn and debugfs): stores through a shared mapping of
 * /home/usuario/datos.bin in two runs of dirty pages (pages 0-1 and 4),
 * sys_munmap == E_OK; creates /home/usuario/nuevo.bin with sys_write
 * (3 pages and 100 bytes) and sys_fsync == E_OK; then sys_close. Bytes:
 * datos page p byte i = (p*13 + i*5 + 1) & 0xff; nuevo byte i = (i*3 + 11) & 0xff. */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>

#define PAGE 4096
#define NUEVO_SIZE (3 * PAGE + 100)

void main()
{
    int fd = sys_open(DATOS_PATH, O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = (unsigned char *)sys_mmap(fd, 0, 6 * PAGE);
    CHECK(m != NULL);
    int pages[] = {0, 1, 4};
    for (int k = 0; k < 3; k++) {
        int p = pages[k];
        for (int i = 0; i < PAGE; i++)
            m[p * PAGE + i] = (unsigned char)(p * 13 + i * 5 + 1);
    }
    struct neo_meminfo before = test_meminfo();
    CHECK_EQ(sys_munmap(m, 6 * PAGE), E_OK);
    struct neo_meminfo after = test_meminfo();
    /* one pager request per contiguous run of dirty pages: 0-1 and 4 */
    CHECK_EQ(after.writeback_requests - before.writeback_requests, 2);
    CHECK_EQ(after.writeback_bytes - before.writeback_bytes, 3 * PAGE);
    CHECK_EQ(sys_close(fd), E_OK);

    static unsigned char buf[NUEVO_SIZE];
    for (int i = 0; i < NUEVO_SIZE; i++)
        buf[i] = (unsigned char)(i * 3 + 11);
    int nf = sys_open("/home/usuario/nuevo.bin", O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(nf, 0);
    CHECK_EQ(sys_write(nf, buf, NUEVO_SIZE), NUEVO_SIZE);
    CHECK_EQ(sys_fsync(nf), E_OK);
    CHECK_EQ(sys_close(nf), E_OK);
    printf("disk_write: done\n");
}
