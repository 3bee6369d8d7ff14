/* mm_bench.c - the memory-mapping benchmark of docs/benchmarks.md.
 *
 * One source for NeoOS (libneo, built by the host tool) and for Linux (static
 * glibc, run as /init of a small initramfs). Each line of the table in
 * performance-targets.md is measured with `rdtsc` deltas: under QEMU's
 * `-icount shift=0,sleep=off` the guest time stamp counter advances one tick
 * per guest instruction, so a delta is a count of guest instructions.
 *
 * With the argument `disk` it measures the disk lines instead: 64 MiB files
 * of an ext2 image on a virtio-blk disk mounted at /home (Linux's /init
 * loads the modules for it first).
 *
 * Every measurement is repeated and the MINIMUM is kept (a timer interrupt may
 * land in some windows). Output, one line per result:
 *     BENCH <name> <value>         (instructions, or a ratio like 3.05)
 *     BENCH error <name> <errno>   (a call the measurement needs failed)
 *     BENCH done
 *
 * The two systems differ only in the shim below (headers, file calls, what
 * the program does around the measurements). libneo programs are built
 * -ffreestanding with the host's Linux gcc, so __linux__ is defined for both:
 * a hosted C environment (__STDC_HOSTED__ == 1) is what marks the Linux build.
 */

#if defined(__linux__) && __STDC_HOSTED__
#define BENCH_LINUX 1
#endif

/* ------------------------------- the shim ------------------------------- */
#ifdef BENCH_LINUX

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

typedef uint64_t u64;

/* tmpfs: the initramfs root is RAM-backed. */
#define FILE_PATH "/tmp/mm_bench.dat"
/* Linux refuses (heuristic overcommit) a 1 GiB private writable mapping on a
 * 1 GiB machine unless it is not accounted. */
#define BIG_MAP_FLAGS MAP_NORESERVE

static int open_rw_create(const char *path)
{
    return open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
}

static long write_bytes(int fd, const void *buf, int count)
{
    return write(fd, buf, count);
}

static void close_fd(int fd) { close(fd); }

static int sync_fd(int fd) { return fsync(fd); }

/* The file lines' "writing munmap": Linux's munmap (a RAM file has nothing
 * to write back); NeoOS's sys_munmap writes the dirty pages (seed 000). */
static void *writing_map(int fd, size_t len)
{
    return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
}

static int writing_unmap(void *p, size_t len) { return munmap(p, len); }

/* The disk lines' writing munmap: Linux's munmap writes nothing, so
 * msync(MS_SYNC) writes the dirty pages first. */
static int disk_writing_unmap(void *p, size_t len)
{
    return msync(p, len, MS_SYNC) == 0 ? munmap(p, len) : -1;
}

static int open_existing(const char *path, int writable)
{
    return open(path, writable ? O_RDWR : O_RDONLY);
}

/* The caller's mappings: the lines of /proc/self/maps (read without stdio,
 * whose buffers would add mappings). -1 without /proc. */
static long mapping_count(void)
{
    static char buf[65536];
    long lines = 0, n;
    int fd = open("/proc/self/maps", O_RDONLY);
    if (fd < 0)
        return -1;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (long i = 0; i < n; i++)
            lines += buf[i] == '\n';
    close(fd);
    return lines;
}

static void write_sysctl(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return;
    if (write(fd, value, __builtin_strlen(value)) < 0)
        printf("BENCH note cannot write %s\n", path);
    close(fd);
}

/* As /init (pid 1): /tmp, /proc (for mapping_count), and room for 100,000
 * mappings (the default vm.max_map_count is 65,530). Run by hand, it
 * changes nothing. */
static void platform_setup(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct utsname system;
    if (uname(&system) == 0) /* which kernel ran, for the report */
        printf("BENCH kernel %s\n", system.release);
    if (getpid() != 1)
        return;
    mkdir("/tmp", 01777);
    mkdir("/proc", 0555);
    if (mount("proc", "/proc", "proc", 0, NULL) == 0)
        write_sysctl("/proc/sys/vm/max_map_count", "1000000\n");
}

/* The disk lines' preparation as /init: loads the modules listed in
 * MODULE_LIST (one path a line, dependencies first: the host tool resolved
 * them from the package's modules.dep), then mounts the virtio disk's ext2
 * at DISK_MOUNT. Returns -1 (after a BENCH error line) when a step fails. */
#define MODULE_LIST "/modules/load"
#define DISK_DEVICE "/dev/vda"
#define DISK_MOUNT "/home"

static int load_module(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    long rc = syscall(SYS_finit_module, fd, "", 0);
    close(fd);
    if (rc != 0 && errno != EEXIST)
        return -1;
    printf("BENCH note loaded %s\n", path);
    return 0;
}

static int load_modules(void)
{
    static char list[4096];
    int fd = open(MODULE_LIST, O_RDONLY);
    if (fd < 0)
        return -1;
    long n = read(fd, list, sizeof list - 1);
    close(fd);
    if (n <= 0)
        return -1;
    list[n] = 0;
    for (char *path = strtok(list, "\n"); path; path = strtok(NULL, "\n"))
        if (load_module(path) != 0) {
            printf("BENCH error module_%s %d\n", path, errno);
            return -1;
        }
    return 0;
}

static int platform_mount_disk(void)
{
    if (getpid() != 1)
        return 0;
    if (load_modules() != 0)
        return -1;
    if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) != 0) {
        printf("BENCH error mount_devtmpfs %d\n", errno);
        return -1;
    }
    /* The disk's node appears when virtio_blk has probed it, which may
     * finish after its module's init returned. */
    for (int i = 0; i < 1000 && access(DISK_DEVICE, F_OK) != 0; i++)
        usleep(1000);
    mkdir(DISK_MOUNT, 0755);
    if (mount(DISK_DEVICE, DISK_MOUNT, "ext2", 0, NULL) != 0) {
        printf("BENCH error mount_ext2 %d\n", errno);
        return -1;
    }
    return 0;
}

/* As /init, power the machine off (init must not exit). */
static void platform_finish(void)
{
    fflush(stdout);
    if (getpid() != 1)
        return;
    sync();
    reboot(RB_POWER_OFF);
}

#else /* NeoOS */

#include <errno.h>
#include <neo.h>
#include <sys/mman.h>
#include <syscalls.h>

typedef unsigned long u64;

/* /tmp is NeoOS's RAM file system. */
#define FILE_PATH "/tmp/mm_bench.dat"
#define BIG_MAP_FLAGS 0

static int open_rw_create(const char *path)
{
    return sys_open(path, O_RDWR | O_CREAT | O_TRUNC);
}

static long write_bytes(int fd, const void *buf, int count)
{
    return sys_write(fd, buf, count);
}

static void close_fd(int fd) { sys_close(fd); }

static int sync_fd(int fd) { return sys_fsync(fd) == E_OK ? 0 : -1; }

/* The file lines' "writing munmap": NeoOS's own pair (seed 000), whose
 * sys_munmap writes the dirty pages to the file before unmapping. */
static void *writing_map(int fd, size_t len)
{
    void *p = sys_mmap(fd, 0, (int)len);
    return p ? p : MAP_FAILED;
}

static int writing_unmap(void *p, size_t len) { return sys_munmap(p, (int)len) == E_OK ? 0 : -1; }

/* On the disk too, NeoOS's sys_munmap writes the dirty pages (seed 000). */
static int disk_writing_unmap(void *p, size_t len) { return writing_unmap(p, len); }

static int open_existing(const char *path, int writable)
{
    return sys_open(path, writable ? O_RDWR : O_RDONLY);
}

/* The caller's mappings, as sys_meminfo counts them. */
static long mapping_count(void)
{
    struct neo_meminfo info;
    return sys_meminfo(&info) < 0 ? -1 : (long)info.mappings;
}

static void platform_setup(void) {}

/* The kernel mounts the virtio disk's ext2 at /home by itself. */
static int platform_mount_disk(void) { return 0; }

static void platform_finish(void) {}

#endif
/* ---------------------------- end of the shim ---------------------------- */

#define PAGE 4096UL
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)
#define RW (PROT_READ | PROT_WRITE)

/* Repetitions: many for short operations, a few for the long ones. */
#define REPS_SHORT 2000
#define REPS_LONG 5
#define REPS_MEDIUM 200

#define REGION_16M (16UL << 20)
#define REGION_1G (1UL << 30)
#define TOUCHED 10
#define FILE_PAGES 64
#define SPLIT_PAGES 16
#define FEW_MAPPINGS 10
#define MANY_MAPPINGS 100000
#define COUNT_SPAN 16
#define REPS_PER_COUNT 200

static inline u64 ticks(void)
{
    unsigned int lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return ((u64)hi << 32) | lo;
}

static u64 min_u64(u64 a, u64 b) { return a < b ? a : b; }

static void report(const char *name, u64 value)
{
    printf("BENCH %s %lu\n", name, (unsigned long)value);
}

/* A ratio with two decimals, from integers (libneo's printf has no %f). */
static void report_ratio(const char *name, u64 num, u64 den)
{
    u64 hundredths = den ? (num * 100 + den / 2) / den : 0;
    printf("BENCH %s %lu.%02lu\n", name, (unsigned long)(hundredths / 100),
           (unsigned long)(hundredths % 100));
}

/* Reports that a call of measurement `name` failed; returns -1. */
static int fail(const char *name)
{
    printf("BENCH error %s %d\n", name, errno);
    return -1;
}

static void *map_anon(size_t len, int prot, int extra_flags)
{
    return mmap(NULL, len, prot, ANON | extra_flags, -1, 0);
}

/* One store to each of the first `pages` pages at p. */
static void touch(char *p, size_t pages)
{
    for (size_t i = 0; i < pages; i++)
        ((volatile char *)p)[i * PAGE] = 1;
}

/* 1. mmap + munmap of one untouched anonymous page, into *best. */
static int map_unmap(const char *name, u64 *best)
{
    *best = ~0UL;
    for (int r = 0; r < REPS_SHORT; r++) {
        u64 t0 = ticks();
        char *p = map_anon(PAGE, RW, 0);
        if (p == MAP_FAILED || munmap(p, PAGE) != 0)
            return fail(name);
        *best = min_u64(*best, ticks() - t0);
    }
    report(name, *best);
    return 0;
}

/* 2. mmap + write one byte + munmap of one page. */
static int bench_map_touch_unmap(void)
{
    const char *name = "map_touch_unmap_page";
    u64 best = ~0UL;
    for (int r = 0; r < REPS_SHORT; r++) {
        u64 t0 = ticks();
        char *p = map_anon(PAGE, RW, 0);
        if (p == MAP_FAILED)
            return fail(name);
        *(volatile char *)p = 1;
        if (munmap(p, PAGE) != 0)
            return fail(name);
        best = min_u64(best, ticks() - t0);
    }
    report(name, best);
    return 0;
}

/* 3 and 4. First touch of every page of 16 MiB, then munmap of it, per page. */
static int bench_fault_and_munmap_16m(void)
{
    const size_t pages = REGION_16M / PAGE;
    u64 best_fault = ~0UL, best_unmap = ~0UL;
    for (int r = 0; r < REPS_LONG; r++) {
        char *p = map_anon(REGION_16M, RW, 0);
        if (p == MAP_FAILED)
            return fail("first_touch_per_page");
        u64 t0 = ticks();
        touch(p, pages);
        u64 t1 = ticks();
        int rc = munmap(p, REGION_16M);
        u64 t2 = ticks();
        if (rc != 0)
            return fail("munmap_16m_per_page");
        best_fault = min_u64(best_fault, t1 - t0);
        best_unmap = min_u64(best_unmap, t2 - t1);
    }
    report("first_touch_per_page", best_fault / pages);
    report("munmap_16m_per_page", best_unmap / pages);
    return 0;
}

/* munmap of a `len` mapping of which only the first TOUCHED pages were
 * touched. */
static int munmap_sparse(const char *name, size_t len, u64 *best)
{
    *best = ~0UL;
    for (int r = 0; r < REPS_MEDIUM; r++) {
        char *p = map_anon(len, RW, BIG_MAP_FLAGS);
        if (p == MAP_FAILED)
            return fail(name);
        touch(p, TOUCHED);
        u64 t0 = ticks();
        int rc = munmap(p, len);
        u64 t1 = ticks();
        if (rc != 0)
            return fail(name);
        *best = min_u64(*best, t1 - t0);
    }
    report(name, *best);
    return 0;
}

/* 5. munmap of 1 GiB with 10 touched pages over munmap of 40 KiB with 10. */
static int bench_munmap_sparse_ratio(void)
{
    u64 big, small;
    if (munmap_sparse("munmap_1g_10_touched", REGION_1G, &big) != 0 ||
        munmap_sparse("munmap_40k_10_touched", TOUCHED * PAGE, &small) != 0)
        return -1;
    report_ratio("munmap_1g_over_40k", big, small);
    return 0;
}

/* A file of `pages` pages at `path`, open for reading and writing. */
static int make_file(const char *path, size_t pages)
{
    static char page[PAGE];
    int fd = open_rw_create(path);
    if (fd < 0)
        return -1;
    for (size_t i = 0; i < pages; i++) {
        page[0] = (char)i;
        if (write_bytes(fd, page, PAGE) != (long)PAGE) {
            close_fd(fd);
            return -1;
        }
    }
    return fd;
}

/* munmap of a shared mapping of `fd` with FILE_PAGES dirty pages, into *best. */
static int munmap_dirty_file(const char *name, int fd, u64 *best)
{
    const size_t len = FILE_PAGES * PAGE;
    *best = ~0UL;
    for (int r = 0; r < REPS_MEDIUM; r++) {
        char *p = mmap(NULL, len, RW, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
            return fail(name);
        touch(p, FILE_PAGES);
        u64 t0 = ticks();
        int rc = munmap(p, len);
        u64 t1 = ticks();
        if (rc != 0)
            return fail(name);
        *best = min_u64(*best, t1 - t0);
    }
    return 0;
}

/* 6. munmap of a shared file mapping with 64 dirty pages, per page. */
static int bench_munmap_file(void)
{
    const char *name = "munmap_file_64_dirty_per_page";
    u64 best;
    int fd = make_file(FILE_PATH, FILE_PAGES);
    if (fd < 0)
        return fail(name);
    int rc = munmap_dirty_file(name, fd, &best);
    close_fd(fd);
    if (rc == 0)
        report(name, best / FILE_PAGES);
    return rc;
}

/* 7. mprotect of one page in the middle of a fresh (untouched) 16-page
 * mapping: the mapping is split in three. */
static int bench_mprotect_split(void)
{
    const char *name = "mprotect_split";
    const size_t len = SPLIT_PAGES * PAGE;
    u64 best = ~0UL;
    for (int r = 0; r < REPS_SHORT; r++) {
        char *p = map_anon(len, RW, 0);
        if (p == MAP_FAILED)
            return fail(name);
        u64 t0 = ticks();
        int rc = mprotect(p + SPLIT_PAGES / 2 * PAGE, PAGE, PROT_READ);
        u64 t1 = ticks();
        if (rc != 0 || munmap(p, len) != 0)
            return fail(name);
        best = min_u64(best, t1 - t0);
    }
    report(name, best);
    return 0;
}

/* Adds `n` one-page mappings. Alternate protections (across calls) keep
 * neighbours from merging into one mapping, and neither is the measured
 * page's (RW), so that page never merges with one either. */
static int add_mappings(long n)
{
    static long added;
    for (long i = 0; i < n; i++, added++) {
        int prot = (added & 1) ? PROT_NONE : PROT_READ;
        if (map_anon(PAGE, prot, 0) == MAP_FAILED)
            return -1;
    }
    return 0;
}

/* The lowest cost of the mmap + munmap pair of one page, into *best. */
static int pair_lowest(u64 *best)
{
    *best = ~0UL;
    for (int r = 0; r < REPS_PER_COUNT; r++) {
        u64 t0 = ticks();
        char *p = map_anon(PAGE, RW, 0);
        if (p == MAP_FAILED || munmap(p, PAGE) != 0)
            return -1;
        *best = min_u64(*best, ticks() - t0);
    }
    return 0;
}

/* The pair's cost with `target` mappings in the process (its own included).
 * How full the mapping index's nodes are next to the new mapping changes the
 * cost (Linux's maple tree: by a factor of 1.6 from one count to the next),
 * so this is the mean of the lowest cost at COUNT_SPAN consecutive counts,
 * target .. target + COUNT_SPAN - 1; their lowest and highest are reported
 * too. Prints the count at the start (more than `target` if the process
 * began with more) as `<name>_mappings`. */
static int pair_at(const char *name, long target, u64 *mean)
{
    char label[64];
    long have = mapping_count();
    if (have < 0 || (target > have && add_mappings(target - have) != 0))
        return fail(name);
    snprintf(label, sizeof label, "%s_mappings", name);
    report(label, (u64)mapping_count());
    u64 sum = 0, low = ~0UL, high = 0, best;
    for (int c = 0; c < COUNT_SPAN; c++) {
        if (pair_lowest(&best) != 0 || add_mappings(1) != 0)
            return fail(name);
        sum += best;
        low = min_u64(low, best);
        high = best > high ? best : high;
    }
    *mean = sum / COUNT_SPAN;
    report(name, *mean);
    snprintf(label, sizeof label, "%s_lowest", name);
    report(label, low);
    snprintf(label, sizeof label, "%s_highest", name);
    report(label, high);
    return 0;
}

/* 8. The mmap + munmap pair of one page in a process with 100,000 mappings
 * over the pair with 10. Runs last: the mappings stay until the end. */
static int bench_pair_ratio(void)
{
    u64 few, many;
    if (pair_at("pair_with_10", FEW_MAPPINGS, &few) != 0 ||
        pair_at("pair_with_100000", MANY_MAPPINGS, &many) != 0)
        return -1;
    report_ratio("pair_100000_over_10", many, few);
    return 0;
}

/* ---- the hard file lines: a 64 MiB file in /tmp, fully cached ---------- */

#define BIG_FILE_PATH "/tmp/mm_bench_64m.dat"
#define BIG_FILE_LEN (64UL << 20)
#define BIG_FILE_PAGES (BIG_FILE_LEN / PAGE)
#define SCATTERED 64
#define REPS_FILE 20
#define REPS_ALL_DIRTY 3
#define READ_FAULT_PAGES 4096

/* How many pages each case dirties through the mapping. */
enum dirt { DIRTY_0, DIRTY_1, DIRTY_64, DIRTY_ALL };
static const char *const dirt_name[] = { "0", "1", "64", "all" };

/* Stores one byte in the pages case `d` dirties: none, the middle one, 64
 * spread evenly (every 256th), or every page. */
static void dirty_pages(char *p, enum dirt d)
{
    volatile char *v = p;
    switch (d) {
    case DIRTY_0:
        break;
    case DIRTY_1:
        v[BIG_FILE_LEN / 2] = 1;
        break;
    case DIRTY_64:
        for (u64 i = 0; i < SCATTERED; i++)
            v[i * (BIG_FILE_PAGES / SCATTERED) * PAGE] = 1;
        break;
    case DIRTY_ALL:
        for (u64 i = 0; i < BIG_FILE_PAGES; i++)
            v[i * PAGE] = 1;
        break;
    }
}

/* What one file line times. */
enum file_op { OP_MUNMAP, OP_MSYNC, OP_MSYNC_MUNMAP };

/* Lowest cost of `op` on a fresh shared mapping of the fully cached file
 * `fd` with the pages of `d` dirty; the file is clean again (fsync) before
 * each repetition, outside the timing. */
static int file_case(const char *name, int fd, enum file_op op, enum dirt d, u64 *best)
{
    int reps = d == DIRTY_ALL ? REPS_ALL_DIRTY : REPS_FILE;
    *best = ~0UL;
    for (int r = 0; r < reps; r++) {
        if (sync_fd(fd) != 0)
            return fail(name);
        char *p = mmap(NULL, BIG_FILE_LEN, RW, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
            return fail(name);
        dirty_pages(p, d);
        u64 t0 = ticks();
        int rc = 0;
        if (op != OP_MUNMAP)
            rc = msync(p, BIG_FILE_LEN, MS_SYNC);
        if (rc == 0 && op != OP_MSYNC)
            rc = munmap(p, BIG_FILE_LEN);
        u64 t1 = ticks();
        if (op == OP_MSYNC && munmap(p, BIG_FILE_LEN) != 0)
            rc = -1;
        if (rc != 0)
            return fail(name);
        *best = min_u64(*best, t1 - t0);
    }
    return 0;
}

/* The 64 scattered dirty pages unmapped by the writing munmap (see the
 * shim), per dirty page. */
static int file_writing_munmap(int fd)
{
    const char *name = "file64_writing_munmap_64_per_dirty";
    u64 best = ~0UL;
    for (int r = 0; r < REPS_FILE; r++) {
        if (sync_fd(fd) != 0)
            return fail(name);
        char *p = writing_map(fd, BIG_FILE_LEN);
        if (p == MAP_FAILED)
            return fail(name);
        dirty_pages(p, DIRTY_64);
        u64 t0 = ticks();
        int rc = writing_unmap(p, BIG_FILE_LEN);
        u64 t1 = ticks();
        if (rc != 0)
            return fail(name);
        best = min_u64(best, t1 - t0);
    }
    report(name, best / SCATTERED);
    return 0;
}

/* The cost of one load from each of the first `pages` pages at p, in order. */
static u64 timed_loads(const char *p, u64 pages)
{
    const volatile char *v = p;
    char sum = 0;
    u64 t0 = ticks();
    for (u64 i = 0; i < pages; i++)
        sum += v[i * PAGE];
    u64 t1 = ticks();
    (void)sum;
    return t1 - t0;
}

/* Read faults on cached file pages: one load from each of the first 4,096
 * pages of a fresh shared mapping, timed together, per page. */
static int file_read_fault(int fd)
{
    const char *name = "file_read_fault_per_page";
    u64 best = ~0UL;
    for (int r = 0; r < REPS_LONG; r++) {
        char *p = mmap(NULL, BIG_FILE_LEN, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
            return fail(name);
        u64 cost = timed_loads(p, READ_FAULT_PAGES);
        if (munmap(p, BIG_FILE_LEN) != 0)
            return fail(name);
        best = min_u64(best, cost);
    }
    report(name, best / READ_FAULT_PAGES);
    return 0;
}

/* The 64 MiB file lines (before the 100,000 mappings of the pair ratio): munmap alone, msync alone, msync then
 * munmap, each with 0 / 1 / 64 scattered / all pages dirty; the writing
 * munmap; the read fault. The file is written whole with write (so every
 * page is in the page cache) and stays open. */
static int bench_big_file(void)
{
    static const char *const op_name[] = { "munmap", "msync", "msync_munmap" };
    int fd = make_file(BIG_FILE_PATH, BIG_FILE_PAGES);
    if (fd < 0)
        return fail("file64");
    for (int op = OP_MUNMAP; op <= OP_MSYNC_MUNMAP; op++)
        for (int d = DIRTY_0; d <= DIRTY_ALL; d++) {
            char name[64];
            snprintf(name, sizeof name, "file64_%s_%s_dirty", op_name[op], dirt_name[d]);
            u64 best;
            if (file_case(name, fd, (enum file_op)op, (enum dirt)d, &best) == 0)
                report(name, best);
        }
    file_writing_munmap(fd);
    file_read_fault(fd);
    close_fd(fd);
    return 0;
}

/* ---- the disk lines: 64 MiB files on ext2 over virtio-blk ------------- */

/* The files, made on the host (mke2fs -d) with every page non-zero (so none
 * is a hole), one per case: the host counts the device requests that touch
 * each file's blocks (QEMU's trace), so each case has its own. */
#define DISK_FILE(name) "/home/bench/" name
#define REPS_DISK 20
#define CONTIGUOUS 64

/* The first of the contiguous case's pages: the first page an indirect
 * block maps (12 direct, 1,024 under the single indirect, then 1,024 per
 * indirect under the double indirect: 12 + 1,024 + 7 x 1,024), so that
 * with the file as mke2fs -d lays it out (each indirect block just before
 * the data blocks it maps) the 64 pages are contiguous on the disk too. */
#define CONTIGUOUS_FIRST 8204

/* What a writing disk case dirties: 64 pages every 256th, or the 64
 * consecutive pages from CONTIGUOUS_FIRST. */
enum disk_dirt { DISK_SCATTERED, DISK_CONTIGUOUS };
/* How it unmaps: the writing munmap (see the shim), or msync(MS_SYNC) then
 * munmap on both systems. */
enum disk_unmap { DISK_WRITING_MUNMAP, DISK_MSYNC_MUNMAP };

static void dirty_disk_pages(char *p, enum disk_dirt d)
{
    volatile char *v = p;
    if (d == DISK_SCATTERED) {
        dirty_pages(p, DIRTY_64);
        return;
    }
    for (u64 i = 0; i < CONTIGUOUS; i++)
        v[(CONTIGUOUS_FIRST + i) * PAGE] = 1;
}

/* Unmaps a 64 MiB mapping `p` as `how` says: 0 on success. */
static int disk_unmap(char *p, enum disk_unmap how)
{
    if (how == DISK_WRITING_MUNMAP)
        return disk_writing_unmap(p, BIG_FILE_LEN);
    return msync(p, BIG_FILE_LEN, MS_SYNC) == 0 ? munmap(p, BIG_FILE_LEN) : -1;
}

/* Lowest cost of unmapping a 64 MiB shared mapping of `path` with the pages
 * of `d` dirty, over REPS_DISK fresh mappings (each unmap leaves the file
 * clean on the disk). Prints the cost and `<name>_calls` (how many unmaps
 * ran: the host divides the requests it counted by it). */
static int disk_write_case(const char *name, const char *path, enum disk_unmap how, enum disk_dirt d)
{
    char label[64];
    int fd = open_existing(path, 1);
    if (fd < 0)
        return fail(name);
    u64 best = ~0UL;
    int calls = 0;
    for (int r = 0; r < REPS_DISK; r++) {
        char *p = how == DISK_WRITING_MUNMAP ? writing_map(fd, BIG_FILE_LEN)
                                             : mmap(NULL, BIG_FILE_LEN, RW, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
            break;
        dirty_disk_pages(p, d);
        u64 t0 = ticks();
        int rc = disk_unmap(p, how);
        u64 t1 = ticks();
        calls++;
        if (rc != 0)
            break;
        best = min_u64(best, t1 - t0);
    }
    snprintf(label, sizeof label, "%s_calls", name);
    report(label, (u64)calls);
    close_fd(fd);
    if (calls < REPS_DISK)
        return fail(name);
    report(name, best);
    if (how == DISK_WRITING_MUNMAP && d == DISK_SCATTERED) {
        snprintf(label, sizeof label, "%s_per_dirty", name);
        report(label, best / SCATTERED);
    }
    return 0;
}

/* Sequential read faults on a file no one has read since the boot (cold
 * cache): one load from each page of a fresh 64 MiB shared read-only
 * mapping, in order, timed together, per page; once. */
static int disk_read_faults(const char *name, const char *path)
{
    int fd = open_existing(path, 0);
    if (fd < 0)
        return fail(name);
    char *p = mmap(NULL, BIG_FILE_LEN, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        close_fd(fd);
        return fail(name);
    }
    u64 cost = timed_loads(p, BIG_FILE_PAGES);
    int rc = munmap(p, BIG_FILE_LEN);
    close_fd(fd);
    if (rc != 0)
        return fail(name);
    report(name, cost / BIG_FILE_PAGES);
    return 0;
}

/* The disk boot (argument "disk"): the disk lines only. */
static void bench_disk(void)
{
    if (platform_mount_disk() != 0)
        return;
    disk_read_faults("disk_read_fault_per_page", DISK_FILE("read.dat"));
    disk_write_case("disk_munmap_64_scattered", DISK_FILE("munmap_scattered.dat"),
                    DISK_WRITING_MUNMAP, DISK_SCATTERED);
    disk_write_case("disk_msync_munmap_64_scattered", DISK_FILE("msync_munmap_scattered.dat"),
                    DISK_MSYNC_MUNMAP, DISK_SCATTERED);
    disk_write_case("disk_munmap_64_contiguous", DISK_FILE("munmap_contiguous.dat"),
                    DISK_WRITING_MUNMAP, DISK_CONTIGUOUS);
}

/* Whether an argument says "disk" (Linux also hands /init the command
 * line's words it does not know, such as nokaslr). */
static int disk_mode(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "disk") == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    u64 unused;
    platform_setup();
    if (disk_mode(argc, argv)) {
        bench_disk();
        printf("BENCH done\n");
        platform_finish();
        return 0;
    }
    map_unmap("map_unmap_page", &unused);
    bench_map_touch_unmap();
    bench_fault_and_munmap_16m();
    bench_munmap_sparse_ratio();
    bench_munmap_file();
    bench_mprotect_split();
    bench_big_file();
    bench_pair_ratio();
    printf("BENCH done\n");
    platform_finish();
    return 0;
}
