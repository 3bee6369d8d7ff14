/* Disk test of the flusher: writes /home/usuario/later.bin (3 pages + 10
 * bytes, byte i = (i * 17 + 5) & 0xff) with sys_write and neither syncs nor
 * closes it; waits until the flusher has written it (the test boots with
 * flush-age=1: the flusher writes an object back once it has lived 1 s):
 * the disk's request count rose and then stayed put for 1 s, at most 30 s;
 * says so and waits forever: tests/in_qemu.rs cuts the power at that line
 * and finds the bytes on the image. */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>
#include <neo_test_disk_watch.h>

#define SIZE (3 * 4096 + 10)

void main()
{
    static unsigned char buf[SIZE];
    for (int i = 0; i < SIZE; i++)
        buf[i] = (unsigned char)(i * 17 + 5);
    int fd = sys_open("/home/usuario/later.bin", O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_write(fd, buf, SIZE), SIZE);
    long written = disk_requests();
    long start = sys_ticks();
    long last = written, last_change = start;
    while (sys_ticks() - start < 3000) {
        long now = disk_requests();
        if (now != last) {
            last = now;
            last_change = sys_ticks();
        }
        if (last > written && sys_ticks() - last_change >= 100)
            break;
        sys_yield();
    }
    printf("disk_flusher: disk requests %ld -> %ld in %ld ticks\n", written, last,
           sys_ticks() - start);
    printf("disk_flusher: waited\n");
    for (;;)
        sys_yield();
}
