/* Disk test of the interrupt-driven driver and of one device write per
 * contiguous run of dirty pages (run by tests/in_qemu.rs, which then checks
 * the image): makes /home/usuario/runs.bin (128 pages, fsync'd), maps it
 * shared, dirties every other page (64 runs of one page) and unmaps; then
 * dirties pages 12-75 (one run) and unmaps. Bytes: first pass page p byte i
 * = (p*7 + i) & 0xff for even p (odd pages keep the fill 0x5a); the second
 * pass sets pages 12-75 to (p*3 + i*11 + 1) & 0xff. Prints the disk requests
 * and completion interrupts each munmap took (sys_meminfo). */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>

#define PAGE 4096
#define PAGES 128
#define RUN_FIRST 12
#define RUN_PAGES 64
/* What a munmap costs besides its data writes: the file's metadata is
 * cached (the fsync read it), so only the sync's inode write (its times)
 * and the device flush. */
#define SYNC_REQUESTS 2

struct disk_use {
    long requests;
    long interrupts;
};

/* The disk requests and interrupts of sys_munmap(m, len), which must be E_OK. */
static struct disk_use unmap_counting(unsigned char *m, long len)
{
    struct neo_meminfo before = test_meminfo();
    CHECK_EQ(sys_munmap(m, len), E_OK);
    struct neo_meminfo after = test_meminfo();
    struct disk_use use = {
        (long)(after.disk_requests - before.disk_requests),
        (long)(after.disk_interrupts - before.disk_interrupts),
    };
    return use;
}

void main()
{
    static unsigned char fill[PAGES * PAGE];
    for (int i = 0; i < PAGES * PAGE; i++)
        fill[i] = 0x5a;
    int fd = sys_open("/home/usuario/runs.bin", O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_write(fd, fill, PAGES * PAGE), PAGES * PAGE);
    CHECK_EQ(sys_fsync(fd), E_OK);

    unsigned char *m = (unsigned char *)sys_mmap(fd, 0, PAGES * PAGE);
    CHECK(m != NULL);
    for (int p = 0; p < PAGES; p += 2)
        for (int i = 0; i < PAGE; i++)
            m[p * PAGE + i] = (unsigned char)(p * 7 + i);
    struct disk_use scattered = unmap_counting(m, PAGES * PAGE);

    m = (unsigned char *)sys_mmap(fd, 0, PAGES * PAGE);
    CHECK(m != NULL);
    for (int p = RUN_FIRST; p < RUN_FIRST + RUN_PAGES; p++)
        for (int i = 0; i < PAGE; i++)
            m[p * PAGE + i] = (unsigned char)(p * 3 + i * 11 + 1);
    struct disk_use adjacent = unmap_counting(m, PAGES * PAGE);
    CHECK_EQ(sys_close(fd), E_OK);

    printf("disk_interrupts: 64 scattered pages: %ld requests, %ld interrupts\n",
           scattered.requests, scattered.interrupts);
    printf("disk_interrupts: 64 adjacent pages: %ld requests, %ld interrupts\n",
           adjacent.requests, adjacent.interrupts);
    /* The waits slept for completion interrupts (a polled driver takes none);
     * an interrupt acknowledges at least one request. */
    CHECK(scattered.interrupts > 0);
    CHECK(adjacent.interrupts > 0);
    CHECK(scattered.interrupts <= scattered.requests);
    CHECK(adjacent.interrupts <= adjacent.requests);
    /* One request per run, whatever its length, plus the sync: 64 runs of
     * one page cost 64 data writes; pages 12-75 are one run (4 KiB blocks
     * mapped by the one single-indirect block, allocated in order: adjacent
     * on the disk), one data write. */
    CHECK_EQ(scattered.requests, 64 + SYNC_REQUESTS);
    CHECK_EQ(adjacent.requests, 1 + SYNC_REQUESTS);
    printf("disk_interrupts: done\n");
}
