/* writing_munmap_probe.c - for `cargo run -- --icount` (docs/file-costs.md):
 * 64 MiB shared file mapping in /tmp, 64 scattered dirty
 * pages, sys_munmap (writes them), per dirty page; plus msync of the
 * mapping with nothing dirty and with every page dirty. */
#include <neo.h>
#include <sys/mman.h>
#include <syscalls.h>
typedef unsigned long u64;
#define PAGE 4096UL
#define LEN (64UL << 20)
#define PAGES (LEN / PAGE)
static inline u64 ticks(void)
{
    unsigned int lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return ((u64)hi << 32) | lo;
}
__attribute__((noinline)) void marker(void) { __asm__ volatile("" ::: "memory"); }
static char page[PAGE];
int main(void)
{
    int fd = sys_open("/tmp/wm.dat", O_RDWR | O_CREAT | O_TRUNC);
    if (fd < 0) { printf("open failed\n"); return 1; }
    for (u64 i = 0; i < PAGES; i++)
        if (sys_write(fd, page, PAGE) != (long)PAGE) { printf("write failed\n"); return 1; }
    u64 best = ~0UL;
    for (int r = 0; r < 4; r++) {
        sys_fsync(fd);
        volatile char *p = sys_mmap(fd, 0, (int)LEN);
        for (u64 i = 0; i < 64; i++) p[i * (PAGES / 64) * PAGE] = 1;
        if (r == 3) marker();
        u64 t0 = ticks();
        int rc = sys_munmap((void *)p, (int)LEN);
        u64 t = ticks() - t0;
        if (rc != E_OK) { printf("munmap failed\n"); return 1; }
        if (t < best) best = t;
    }
    printf("writing munmap 64 dirty: %lu total, %lu per dirty page\n", best, best / 64);
    best = ~0UL;
    for (int r = 0; r < 8; r++) {
        sys_fsync(fd);
        char *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        u64 t0 = ticks();
        int rc = msync(p, LEN, MS_SYNC);
        u64 t = ticks() - t0;
        munmap(p, LEN);
        if (rc != 0) { printf("msync failed\n"); return 1; }
        if (t < best) best = t;
    }
    printf("msync 0 dirty: %lu\n", best);
    best = ~0UL;
    for (int r = 0; r < 2; r++) {
        sys_fsync(fd);
        char *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        volatile char *v = p;
        for (u64 i = 0; i < PAGES; i++) v[i * PAGE] = 1;
        u64 t0 = ticks();
        int rc = msync(p, LEN, MS_SYNC);
        u64 t = ticks() - t0;
        munmap(p, LEN);
        if (rc != 0) { printf("msync failed\n"); return 1; }
        if (t < best) best = t;
    }
    printf("msync all dirty: %lu\n", best);
    return 0;
}
