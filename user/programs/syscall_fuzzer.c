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
 * SysV keys it uses: 0x46550 + (0..3); the caller removes them. Files:
 * /tmp/fuzz0../tmp/fuzz3. Exits 0 after its calls. */
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

static void remember(long r)
{
    if (r > 0x10000 && r < 0x0000800000000000L)
        pool[pick(POOL)] = (unsigned long)r;
}

static void one_call(void)
{
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
    long r = neo_syscall(nr, a, b, c, d, e, f);
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
    for (long i = 0; i < calls; i++)
        one_call();
    return 0;
}
