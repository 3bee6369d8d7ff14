/* disk_linux_queue_wait.c - a musl (Linux) program whose write-back and
 * read of a file in more pieces than the virtio queue takes at once (5
 * requests) make no device request under the kernel lock (docs/design.md,
 * "Requests": the volume's device keeps what the queue has no room for and
 * sends it as room frees), run by tests/in_qemu.rs over two boots. No
 * timing: only what is seen.
 *
 * "write" (first boot): /home/usuario/rayas.bin made, PAGES pages long,
 * mapped shared, a store in every other page (PAGES / 2 runs of one page),
 * then msync(MS_SYNC): /proc/meminfo's DiskSyncWrites (writes sent with the
 * caller waiting, under the lock) does not move, and at least one request
 * a run was sent. Before, every run past the 5th was written at once.
 *
 * "read" (second boot, nothing of the file cached): one pread of the whole
 * file, its reads in PAGES / 2 pieces among the holes: DiskSyncReads does
 * not move and the bytes are the stores and zeros. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "../linux/linux_meminfo.h"

#include "../linux/linux_check.h"

#define PAGE 4096
#define PAGES 64
#define PATH "/home/usuario/rayas.bin"

/* The byte at `i` of page `page` (a stored page: even ones). */
static unsigned char stored(long page, long i)
{
    return (unsigned char)(page * 13 + i * 3 + 1);
}

static void write_pieces(void)
{
    int fd = open(PATH, O_RDWR | O_CREAT | O_EXCL, 0644);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, PAGES * PAGE) == 0);
    unsigned char *map = mmap(0, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(map != MAP_FAILED);
    for (long page = 0; page < PAGES; page += 2)
        for (long i = 0; i < PAGE; i++)
            map[page * PAGE + i] = stored(page, i);
    long writes = meminfo_now("DiskSyncWrites:");
    long before = meminfo_now("DiskRequests:");
    CHECK(msync(map, PAGES * PAGE, MS_SYNC) == 0);
    long sent = meminfo_now("DiskRequests:") - before;
    long sync_writes = meminfo_now("DiskSyncWrites:") - writes;
    printf("disk_linux_queue_wait: msync of %d runs: %ld requests, %ld written under the lock\n",
           PAGES / 2, sent, sync_writes);
    CHECK(writes >= 0 && sync_writes == 0);
    CHECK(sent >= PAGES / 2);
    CHECK(munmap(map, PAGES * PAGE) == 0);
    CHECK(close(fd) == 0);
}

static void read_pieces(void)
{
    static unsigned char bytes[PAGES * PAGE];
    int fd = open(PATH, O_RDONLY);
    CHECK(fd >= 0);
    long reads = meminfo_now("DiskSyncReads:");
    CHECK(pread(fd, bytes, sizeof bytes, 0) == (long)sizeof bytes);
    long sync_reads = meminfo_now("DiskSyncReads:") - reads;
    int right = 1;
    for (long page = 0; page < PAGES; page++)
        for (long i = 0; i < PAGE; i++)
            right &= bytes[page * PAGE + i] == (page % 2 ? 0 : stored(page, i));
    printf("disk_linux_queue_wait: pread of %d pieces: %ld read under the lock, bytes %s\n",
           PAGES / 2, sync_reads, right ? "right" : "wrong");
    CHECK(reads >= 0 && sync_reads == 0);
    CHECK(right);
    CHECK(close(fd) == 0);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "write") == 0)
        write_pieces();
    else if (argc > 1 && strcmp(argv[1], "read") == 0)
        read_pieces();
    else
        CHECK(!"an argument: write or read");
    if (failures == 0)
        printf("disk_linux_queue_wait: done\n");
    return failures != 0;
}
