/* syscall_fuzzer.c - helper: makes argv[2] system calls (default 1500) with
 * random arguments from seed argv[1]: numbers, pointers (its own mappings,
 * its data and code, NULL, kernel and non-canonical addresses, random
 * values), sizes, descriptors, flags. It may well end itself by a fault (it
 * unmaps or protects its own memory at random); the kernel must stay up.
 * Left out: calls that block forever or reach other processes (sys_kill,
 * sys_read_console with a good buffer, fork), writes to the console, files
 * other tests rely on (/dev/faulty, datos.bin) and IPC_PRIVATE segments
 * (they would outlive it), and PROT_EXEC on what it maps or protects: a
 * fixed mapping over its own code would otherwise run pages of zeros
 * (`add %al,(%rax)` stores into what it runs, which QEMU's TCG emulates
 * about a thousand times slower than plain code), a legitimate program that
 * takes hours under emulation. Without PROT_EXEC it faults at once.
 *
 * Besides plain random calls it mixes in the families of issue 9:
 *  - hostile flags: some calls are made with NT, AC, ID and DF set in RFLAGS
 *    (popf), rarely TF (the program then ends by its own debug trap);
 *  - page-table churn: one page mapped MAP_FIXED far from everything else
 *    (new page tables at every level), touched, mostly unmapped again;
 *  - long ranges: mincore, msync, munmap and mprotect over ranges of up to
 *    tens of TiB in the part of the address space the churn uses
 *    (LONG_BASE..LONG_END: no code, stack or pool mapping lives there), and
 *    for seeds divisible by 32 once mincore over a mapped 64 GiB;
 *  - disk-full writes: large sys_write calls (up to 33 MiB, more than the
 *    RAM disk holds) to /tmp/fuzz0../tmp/fuzz3;
 *  - heap pressure (seeds divisible by 100 only: it takes a few hundred
 *    thousand calls): one-page mappings until mmap says ENOMEM, at a random
 *    point, then the remaining calls run with the kernel heap at its reserve.
 *
 * SysV keys it uses: 0x46550 + (0..3); the caller removes them. Files:
 * /tmp/fuzz0../tmp/fuzz3 (the caller truncates them). Exits 0 after its
 * calls. */
#include <syscalls.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <neo.h>

static unsigned long state;

static unsigned long next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static unsigned long pick(unsigned long n) { return next() % n; }

#define POOL 16
static unsigned long pool[POOL]; /* addresses of mappings this process made */
static char data_buf[4096];

static const char *const paths[] = {
    "/tmp/fuzz0", "/tmp/fuzz1", "/tmp/fuzz2", "/tmp/fuzz3", "/etc/motd", "/bin/hello",
    "/tmp", "/", "", "/no/such/file", "/home/usuario",
};

static unsigned long address(void)
{
    switch (pick(12)) {
    case 0: return 0;
    case 1: return 0xffff800000000000UL + pick(1UL << 30);
    case 2: return 0x0000800000000000UL;
    case 3: return 0xffffffffffffffffUL - pick(8192);
    case 4: return (unsigned long)data_buf + pick(4096); /* its data */
    case 5: return (unsigned long)&address;             /* code */
    case 6: return next() & 0x00007ffffffff000UL;      /* anywhere, page aligned */
    case 7: return (unsigned long)paths[pick(sizeof paths / sizeof paths[0])];
    default: {
        unsigned long a = pool[pick(POOL)];
        return pick(4) ? a : a + pick(3 * 4096);
    }
    }
}

/* One of its own mappings, page aligned, or a page just past one. */
static unsigned long own_mapping(void)
{
    return pool[pick(POOL)] + (pick(4) ? 0 : 4096 * pick(4));
}

static long size(void)
{
    static const long sizes[] = { 0, 1, 7, 100, 4095, 4096, 4097, 8192, 3 * 4096, 65536, 1 << 20,
                                  -1, -4096, 0x7fffffff, 1L << 40, 1L << 47 };
    return pick(4) ? sizes[pick(sizeof sizes / sizeof sizes[0])] : (long)next();
}

static long descriptor(void)
{
    static const long fds[] = { 0, 3, 4, 5, 6, 7, -1, 1000, 0x7fffffff };
    return fds[pick(sizeof fds / sizeof fds[0])];
}

static long small(void) { return pick(3) ? (long)pick(8) : (long)next(); }

/* ---- hostile flags ---- */

#define FLAG_TF (1UL << 8)
#define FLAG_DF (1UL << 10)
#define FLAG_NT (1UL << 14)
#define FLAG_AC (1UL << 18)
#define FLAG_ID (1UL << 21)

/* System call `nr` made with `set` added to RFLAGS (pushf / or / popf just
 * before `syscall`), cleared again right after it. The red zone below rsp
 * is stepped over before pushing. */
static long syscall_with_flags(long nr, long a, long b, long c, long d, long e, long f,
                               unsigned long set)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("lea -128(%%rsp), %%rsp\n\t"
                     "pushfq\n\t"
                     "orq %[set], (%%rsp)\n\t"
                     "popfq\n\t"
                     "syscall\n\t"
                     "pushfq\n\t"
                     "andq %[clear], (%%rsp)\n\t"
                     "popfq\n\t"
                     "lea 128(%%rsp), %%rsp"
                     : "=a"(ret), "+r"(r10), "+r"(r8), "+r"(r9)
                     : "0"(nr), "D"(a), "S"(b), "d"(c), [set] "r"(set), [clear] "r"(~set)
                     : "rcx", "r11", "memory", "cc");
    return ret;
}

/* Flags for one call: mostly none; else a mix of NT, AC, ID and DF; very
 * rarely TF, which ends this program by its own debug trap. */
static unsigned long hostile_flags(void)
{
    static const unsigned long mixes[] = {
        FLAG_NT, FLAG_AC, FLAG_ID, FLAG_DF, FLAG_NT | FLAG_AC | FLAG_ID | FLAG_DF,
    };
    if (pick(8))
        return 0;
    if (pick(3000) == 0)
        return FLAG_TF;
    return mixes[pick(sizeof mixes / sizeof mixes[0])];
}

/* ---- the families of issue 9 ---- */

/* The part of the address space the churn and the long ranges use: far
 * below MMAP_TOP (where mmap places the pool) and far above the program. */
#define LONG_BASE 0x0000010000000000UL /* 1 TiB */
#define LONG_END  0x0000600000000000UL /* 96 TiB */
#define GIB (1UL << 30)

/* One page MAP_FIXED at a random GiB of [LONG_BASE, LONG_END) (so it needs
 * page tables of its own at every level), touched, mostly unmapped. */
static void page_table_churn(void)
{
    unsigned long gib = (LONG_END - LONG_BASE) / GIB;
    char *at = (char *)(LONG_BASE + pick(gib) * GIB + pick(GIB / 4096) * 4096);
    char *p = mmap(at, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED)
        return;
    p[pick(4096)] = (char)next();
    if (pick(8))
        munmap(p, 4096);
}

/* mincore, msync, munmap or mprotect over a long range in
 * [LONG_BASE, LONG_END), answer vector one of its own mappings. */
static void long_range(void)
{
    static const unsigned long lengths[] = {
        64 * GIB, 1UL << 40, 1UL << 44, LONG_END - LONG_BASE, 512 * GIB, 4 * GIB,
    };
    unsigned long len = lengths[pick(sizeof lengths / sizeof lengths[0])];
    unsigned long start = LONG_BASE + pick((LONG_END - LONG_BASE - len) / GIB + 1) * GIB;
    switch (pick(4)) {
    case 0: mincore((void *)start, len, (unsigned char *)own_mapping()); break;
    case 1: msync((void *)start, len, pick(2) ? MS_SYNC : MS_ASYNC); break;
    case 2: munmap((void *)start, len); break;
    default: mprotect((void *)start, len, (int)(pick(8) & ~PROT_EXEC)); break;
    }
}

/* mincore over a 64 GiB mapping with two pages touched, with a whole
 * answer vector (16 MiB): the kernel's longest honest mincore. */
static void mincore_mapped_64gib(void)
{
    unsigned long len = 64 * GIB;
    char *big = mmap((void *)(LONG_END - len), len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0);
    unsigned char *vec = mmap(NULL, len / 4096, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANON, -1, 0);
    if (big != MAP_FAILED && vec != MAP_FAILED) {
        big[0] = 1;
        big[len - 4096] = 1;
        mincore(big, len, vec);
    }
    if (big != MAP_FAILED)
        munmap(big, len);
    if (vec != MAP_FAILED)
        munmap(vec, len / 4096);
}

/* One large sys_write to /tmp/fuzzN: up to 33 MiB, more than the RAM disk
 * holds; the source is a lazily mapped anonymous buffer. */
static void disk_full_write(void)
{
    static const long sizes[] = { 256 * 1024, 1 << 20, 4 << 20, 18 << 20, 33 << 20 };
    static char *source;
    if (!source) {
        source = mmap(NULL, 33 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
        if (source == MAP_FAILED) {
            source = NULL;
            return;
        }
    }
    int fd = sys_open(paths[pick(4)], O_RDWR | O_CREAT | (pick(3) ? 0 : O_TRUNC) |
                                          (pick(2) ? O_APPEND : 0));
    if (fd < 0)
        return;
    source[pick(33 << 20)] = (char)next();
    sys_write(fd, source, (int)sizes[pick(sizeof sizes / sizeof sizes[0])]);
    if (pick(4))
        sys_close(fd); /* else it stays open until the program ends */
}

/* One-page mappings until mmap says ENOMEM (alternate protections, so
 * nothing merges): the kernel heap is then at its reserve. */
static void heap_pressure(void)
{
    for (long n = 0; n < 4000000; n++)
        if (mmap(NULL, 4096, (n & 1) ? PROT_READ : PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANON, -1, 0) == MAP_FAILED)
            return;
}

/* One call of a family instead of a plain random call, now and then. */
static int family_call(void)
{
    switch (pick(1500)) {
    case 0: disk_full_write(); return 1;
    case 1: case 2: case 3: long_range(); return 1;
    default: break;
    }
    if (pick(40) == 0) {
        page_table_churn();
        return 1;
    }
    return 0;
}

static void remember(long r)
{
    if (r > 0x10000 && r < 0x0000800000000000L)
        pool[pick(POOL)] = (unsigned long)r;
}

static void one_call(void)
{
    if (family_call())
        return;
    static const long calls[] = {
        SYS_WRITE, SYS_READ, SYS_OPEN, SYS_CLOSE, SYS_NEO_MMAP, SYS_NEO_MUNMAP, SYS_WAIT,
        SYS_YIELD, SYS_STAT, SYS_MEMINFO, SYS_MAPS, SYS_GETPID, SYS_FSYNC, SYS_READDIR,
        SYS_READ_CONSOLE, SYS_TICKS, SYS_MMAP, SYS_MUNMAP, SYS_MSYNC, SYS_MPROTECT,
        SYS_MADVISE, SYS_MINCORE, SYS_GETPAGESIZE, SYS_SHMGET, SYS_SHMAT, SYS_SHMDT,
        SYS_SHMCTL, SYS_RUN, 0, SYS_COUNT, 1000,
    };
    long nr = calls[pick(sizeof calls / sizeof calls[0])];
    long a = (long)address(), b = size(), c = small(), d = small(), e = descriptor(), f = size();
    switch (nr) {
    case SYS_WRITE:
    case SYS_READ:
        a = descriptor();
        if (a >= 0 && a <= 2)
            a = 3;                 /* no garbage on the console */
        b = (long)address();
        c = size();
        break;
    case SYS_OPEN:
        b = pick(4) ? (long)(pick(4) | (pick(2) ? O_CREAT : 0) | (pick(4) ? 0 : O_TRUNC)) : small();
        break;
    case SYS_CLOSE:
    case SYS_FSYNC:
        a = descriptor();
        break;
    case SYS_NEO_MMAP:
        a = descriptor();
        b = pick(3) ? (long)(pick(4) * 4096) : size();
        c = size();
        break;
    case SYS_NEO_MUNMAP:
        b = size();
        break;
    case SYS_READ_CONSOLE:
        a = (long)(0xffff800000000000UL + pick(4096)); /* bad buffers only: a good one waits */
        b = size();
        break;
    case SYS_MMAP:
        c = (long)pick(8) & ~PROT_EXEC;
        d = pick(4) ? (long)((pick(2) ? MAP_SHARED : MAP_PRIVATE) | (pick(2) ? MAP_ANON : 0) |
                             (pick(5) ? 0 : MAP_FIXED))
                    : small();
        f = pick(3) ? (long)(pick(4) * 4096) : size();
        b = pick(3) ? (long)((1 + pick(16)) * 4096) : size();
        if (d & MAP_FIXED) {
            a = pick(50) ? (long)own_mapping() : (long)address();
            if (pick(50))
                b = (long)((1 + pick(8)) * 4096);
        } else if (pick(2)) {
            a = 0;
        }
        break;
    case SYS_MUNMAP:
    case SYS_MPROTECT:
    case SYS_MSYNC:
    case SYS_MADVISE:
        /* Its own mappings with their sizes, rarely anything at all (which
         * may take its own code and data away: that is allowed too). */
        if (pick(50)) {
            a = (long)own_mapping();
            b = (long)((1 + pick(8)) * 4096);
        } else {
            a = (long)address();
            b = size();
        }
        if (nr == SYS_MPROTECT)
            c &= ~PROT_EXEC;
        break;
    case SYS_MINCORE:
        b = pick(3) ? (long)((1 + pick(8)) * 4096) : size();
        c = (long)address();
        break;
    case SYS_SHMGET:
        a = 0x46550 + (long)pick(4); /* keyed: the caller can remove them */
        b = pick(3) ? (long)((1 + pick(4)) * 4096) : size();
        c = pick(2) ? (IPC_CREAT | 0600) : small();
        break;
    case SYS_SHMAT:
    case SYS_SHMCTL:
        a = pick(4) ? shmget(0x46550 + (long)pick(4), 0, 0) : small();
        if (nr == SYS_SHMAT)
            b = pick(2) ? 0 : (long)address();
        else
            c = (long)address();
        break;
    case SYS_RUN:
        if (pick(4))
            return;                /* fewer children */
        a = pick(4) ? (long)"/bin/hello" : (long)address();
        b = pick(2) ? 0 : (long)address();
        break;
    }
    unsigned long flags = hostile_flags();
    long r = flags ? syscall_with_flags(nr, a, b, c, d, e, f, flags)
                   : neo_syscall(nr, a, b, c, d, e, f);
    if (nr == SYS_MMAP || nr == SYS_NEO_MMAP || nr == SYS_SHMAT)
        remember(r);
}

int main(int argc, char **argv)
{
    state = argc > 1 ? (unsigned long)neo_atol(argv[1]) * 2654435761UL + 1 : 1;
    long calls = argc > 2 ? neo_atol(argv[2]) : 1500;
    for (int i = 0; i < POOL; i++) {
        void *m = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
        if (m == MAP_FAILED)
            return 3;
        pool[i] = (unsigned long)m;
    }
    long seed = argc > 1 ? neo_atol(argv[1]) : 0;
    long pressure_at = seed % 100 == 0 && seed > 0 ? (long)pick((unsigned long)calls + 1) : -1;
    if (seed % 32 == 0 && seed > 0)
        mincore_mapped_64gib();
    for (long i = 0; i < calls; i++) {
        if (i == pressure_at)
            heap_pressure();
        one_call();
    }
    return 0;
}
