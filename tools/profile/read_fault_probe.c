/* read_fault_probe.c - guest instructions per read fault on cached file
 * pages, for `cargo run -- --icount tools/profile/read_fault_probe.c`: a
 * 16 MiB file in /tmp (written whole, so every page is cached), mapped
 * read-only shared and private, one load from each page, timed together
 * and divided by the pages; lowest of 3. */
#include <neo.h>
#include <sys/mman.h>
#include <syscalls.h>

typedef unsigned long u64;
#define PAGE 4096UL
#define PAGES 4096UL

static inline u64 ticks(void)
{
    unsigned int lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return ((u64)hi << 32) | lo;
}

static char page[PAGE];

static u64 per_page(int fd, int flags)
{
    u64 best = ~0UL;
    for (int r = 0; r < 3; r++) {
        volatile char *p = mmap(NULL, PAGES * PAGE, PROT_READ, flags, fd, 0);
        if (p == MAP_FAILED)
            return 0;
        u64 sum = 0;
        u64 t0 = ticks();
        for (u64 i = 0; i < PAGES; i++)
            sum += p[i * PAGE];
        u64 t = (ticks() - t0) / PAGES;
        if (sum != PAGES * 7)
            return 0;
        if (t < best)
            best = t;
        munmap((void *)p, PAGES * PAGE);
    }
    return best;
}

int main(void)
{
    int fd = sys_open("/tmp/read_fault_probe.dat", O_RDWR | O_CREAT);
    if (fd < 0)
        return 1;
    page[0] = 7;
    for (u64 i = 0; i < PAGES; i++)
        if (sys_write(fd, page, (int)PAGE) != (int)PAGE)
            return 1;
    printf("PROBE shared_read_fault_per_page %lu\n", per_page(fd, MAP_SHARED));
    printf("PROBE private_read_fault_per_page %lu\n", per_page(fd, MAP_PRIVATE));
    return 0;
}
