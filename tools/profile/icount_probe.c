/* icount_probe.c - counts guest instructions of a few memory calls with
 * rdtsc, for `cargo run -- --icount tools/profile/icount_probe.c` (QEMU
 * -icount shift=0,sleep=off: one tick per guest instruction). Also the
 * marker program of tools/profile/README.md: `marker_fault()` is called
 * just before the 3,000th first-touch fault of a 16 MiB region,
 * `marker_pair()` before the 100th mmap+munmap pair of the few-mappings
 * loop (the steady state the benchmark's lowest count sees). */
#include <neo.h>
#include <sys/mman.h>
#include <syscalls.h>

typedef unsigned long u64;
#define PAGE 4096UL
#define RW (PROT_READ | PROT_WRITE)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)

static inline u64 ticks(void)
{
    unsigned int lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return ((u64)hi << 32) | lo;
}

/* Markers for tools/profile/step.py (MARK=address of one of them). */
__attribute__((noinline)) void marker_fault(void) { __asm__ volatile("" ::: "memory"); }
__attribute__((noinline)) void marker_pair(void) { __asm__ volatile("" ::: "memory"); }

static int marked;

static u64 pair(void)
{
    u64 best = ~0UL;
    for (int r = 0; r < 200; r++) {
        /* The 100th pair of the first run: the steady state. */
        if (r == 100 && !marked++)
            marker_pair();
        u64 t0 = ticks();
        char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
        munmap(p, PAGE);
        u64 t = ticks() - t0;
        if (t < best)
            best = t;
    }
    return best;
}

/* Fills the address space with `count` one-page mappings; `gap` leaves a
 * free page beside each (the mapping core's worst case). */
static int populate(long count, int gap)
{
    char *base = mmap(NULL, (u64)count * PAGE * (gap ? 2 : 1), PROT_NONE, ANON, -1, 0);
    if (base == MAP_FAILED)
        return -1;
    if (munmap(base, (u64)count * PAGE * (gap ? 2 : 1)) != 0)
        return -1;
    for (long i = 0; i < count; i++) {
        char *at = base + (u64)i * PAGE * (gap ? 2 : 1);
        int prot = (i & 1) ? PROT_READ : PROT_NONE;
        if (mmap(at, PAGE, prot, ANON | MAP_FIXED, -1, 0) == MAP_FAILED)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    const u64 pages = 4096;
    u64 best_fault = ~0UL;
    for (int r = 0; r < 3; r++) {
        char *p = mmap(NULL, pages * PAGE, RW, ANON, -1, 0);
        p[0] = 1;
        p[PAGE] = 1;
        u64 t0 = ticks();
        for (u64 i = 2; i < pages; i++) {
            if (r == 0 && i == 3000)
                marker_fault(); /* a fault deep in a big private object */
            ((volatile char *)p)[i * PAGE] = 1;
        }
        u64 t = (ticks() - t0) / (pages - 2);
        if (t < best_fault)
            best_fault = t;
        munmap(p, pages * PAGE);
    }
    printf("PROBE first_touch_per_page %lu\n", best_fault);
    u64 few = pair();
    printf("PROBE map_unmap_page %lu\n", few);
    int gap = 1;
    if (populate(100000, gap) != 0) {
        printf("PROBE error populate\n");
        return 1;
    }
    u64 many = pair();
    printf("PROBE pair_100000_gaps %lu (%lu.%02lu x)\n", many, many / few,
           (many * 100 / few) % 100);
    return 0;
}
