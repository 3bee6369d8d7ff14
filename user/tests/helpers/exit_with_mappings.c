/* exit_with_mappings.c - helper: makes mappings of every kind and exits WITHOUT
 * unmapping anything (seed 000: the system must clean up).
 * argv[1]: a file (>= 8 pages) to map with sys_mmap O_RDWR; its pages 0..7 get
 *          byte value argv[2] at offset 0 of each page (dirty pages).
 * Also: 64 touched anonymous pages and 8 touched MAP_SHARED anonymous pages.
 * Exits 0 after setting everything up, 3 on a setup failure. */
#include <syscalls.h>
#include <sys/mman.h>
#include <neo.h>

int main(int argc, char **argv)
{
    if (argc < 3)
        return 3;
    int value = (int)neo_atol(argv[2]);
    int fd = sys_open(argv[1], O_RDWR);
    if (fd < 0)
        return 3;
    unsigned char *m = sys_mmap(fd, 0, 8 * 4096);
    if (!m)
        return 3;
    for (int p = 0; p < 8; p++)
        m[p * 4096] = (unsigned char)value;
    unsigned char *a = mmap(NULL, 64 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    if (a == MAP_FAILED)
        return 3;
    for (int p = 0; p < 64; p++)
        a[p * 4096] = 1;
    unsigned char *s = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANON, -1, 0);
    if (s == MAP_FAILED)
        return 3;
    for (int p = 0; p < 8; p++)
        s[p * 4096] = 1;
    /* no sys_munmap, no munmap, no sys_close: exit does it all */
    return 0;
}
