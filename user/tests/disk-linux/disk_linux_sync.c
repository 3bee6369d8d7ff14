/* Disk test (musl) of Linux sync (docs/design.md, "Kept files"), run by
 * tests/in_qemu.rs, which then checks the image.
 *
 * A forked child maps /home/usuario/datos.bin (256 pages) shared, stores to
 * every other page and exits without munmap or close: its exit writes
 * nothing, the file is kept dirty for the kernel's flusher. The parent
 * waits for it and calls sync(): when sync returns the file has been
 * written and let go, so the free memory (/proc/meminfo's MemFree) is back
 * to what it was before the fork (at most 16 KiB less), whether sync or
 * the flusher (which may have begun) wrote it. The file then reads back with the child's bytes: even page p byte i =
 * (p * 7 + i + 9), odd pages the seeds' bytes; checked on the image too. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../linux/linux_meminfo.h"

#include "../linux/linux_check.h"

#define PAGE 4096
#define SIZE (1024 * 1024)
#define PAGES (SIZE / PAGE)
#define PATH "/home/usuario/datos.bin"

static unsigned char back[SIZE];

static unsigned char byte_of(long p, long i)
{
    return (unsigned char)(p * 7 + i + 9);
}

static unsigned char seed_byte(long o)
{
    return (unsigned char)(o * 7 + 3);
}

int main(void)
{
    memset(back, 1, sizeof back);
    long free_before = meminfo_now("MemFree:");
    CHECK(free_before > 0);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        int fd = open(PATH, O_RDWR);
        CHECK(fd >= 0);
        unsigned char *m = mmap(0, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        CHECK(m != MAP_FAILED);
        for (long p = 0; p < PAGES; p += 2)
            for (long i = 0; i < PAGE; i++)
                m[p * PAGE + i] = byte_of(p, i);
        _exit(0);
    }
    int status = -1;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    long before = meminfo_now("DiskRequests:");
    sync();
    long after = meminfo_now("DiskRequests:");
    long free_after = meminfo_now("MemFree:");
    printf("disk_linux_sync: requests %ld..%ld, MemFree %ld kB before the fork, %ld kB after sync\n",
           before, after, free_before, free_after);
    CHECK(after >= before);
    CHECK(free_after >= free_before - 16);

    int fd = open(PATH, O_RDONLY);
    CHECK(fd >= 0);
    CHECK(read(fd, back, SIZE) == SIZE);
    close(fd);
    for (long o = 0; o < SIZE; o += 11) {
        long p = o / PAGE;
        CHECK(back[o] == (p % 2 ? seed_byte(o) : byte_of(p, o % PAGE)));
    }
    printf("disk_linux_sync: done\n");
    return 0;
}
