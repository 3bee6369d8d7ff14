/* syscall_fuzzer.c - helper: makes argv[2] system calls (default 1500) with
 * random arguments from seed argv[1]: numbers, pointers (its own mappings,
 * its data and code, NULL, kernel and non-canonical addresses, random
 * values), sizes, descriptors, flags. It may well end itself by a fault (it
 * unmaps or protects its own memory at random); the kernel must stay up.
 * Left out: calls that block forever or reach other processes (sys_kill,
 * sys_read_console with a good buffer, fork), writes to the console, files
 * other tests rely on (/dev/faulty, datos.bin; an open that may write or
 * create names only its files, folders or bad pointers, never a file of
 * the system nor bytes of its memory) and IPC_PRIVATE segments
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
 * /tmp/fuzz0../tmp/fuzz3 and, on the ext2 disk, /home/fuzz0 and
 * /home/fuzz1 (the caller truncates them). Exits 0 after its
 * calls. */
#include <syscalls.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <neo.h>
#include <signal.h>

static unsigned long state;

/* The next xorshift value. Threads share the one generator: each step is a
 * compare-and-swap, so no two threads take the same value and the state
 * never becomes 0. (With threads the sequence of calls also depends on how
 * they interleave; a seed of the one-thread mode is reproducible.) */
static unsigned long next(void)
{
    unsigned long old = __atomic_load_n(&state, __ATOMIC_RELAXED), new;
    do {
        new = old;
        new ^= new << 13;
        new ^= new >> 7;
        new ^= new << 17;
    } while (!__atomic_compare_exchange_n(&state, &old, new, 0, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return new;
}

static unsigned long pick(unsigned long n) { return next() % n; }

#define POOL 16
static unsigned long pool[POOL]; /* addresses of mappings this process made */
static char data_buf[4096];

static const char *const paths[] = {
    "/tmp/fuzz0", "/tmp/fuzz1", "/tmp/fuzz2", "/tmp/fuzz3", "/etc/motd", "/bin/hello",
    "/tmp", "/", "", "/no/such/file", "/home/usuario", "/home/fuzz0", "/home/fuzz1",
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

/* A path for an open that may create, truncate or write: its own files,
 * folders, nothing, or a bad pointer. Never a file of the system (other
 * programs run /bin/hello, read /etc/motd) nor bytes of its memory (they
 * could name a new file anywhere, whose frames the caller would miss). */
static unsigned long writable_path(void)
{
    static const unsigned long bad[] = { 0, 0xffff800000000000UL, 0x0000800000000000UL };
    switch (pick(8)) {
    case 0: return (unsigned long)paths[6 + pick(4)]; /* /tmp, /, "", /no/such/file */
    case 1: return bad[pick(3)];
    case 2: return (unsigned long)paths[11 + pick(2)]; /* /home/fuzz0..1: the disk */
    default: return (unsigned long)paths[pick(4)];   /* /tmp/fuzz0..3 */
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
        if (b != O_RDONLY)
            a = writable_path();
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

/* ---- threaded mode (issue 13: the soak with threaded children) ----
 *
 * With a third argument N > 0 the program starts N threads besides its
 * first (sys_thread_create), and all of them take their calls from the one
 * budget of argv[2] calls, at once, in the one address space. Besides the
 * plain calls and families above (which unmap, protect and map over what
 * the other threads use: the pool holds every thread's mappings, and now
 * and then a thread's stack or its own region), a thread:
 *  - starts threads (at most THREADS_LIVE live, SLOTS in all), with a stack
 *    of its own; rarely with a hostile entry or stack (raw call);
 *  - joins the threads it started (so joins form a tree and never wait in
 *    a circle), freeing their stacks; or makes hostile joins (itself, the
 *    first thread, unknown ids, bad status pointers), which fail at once;
 *  - ends itself (sys_thread_exit), or the process (sys_exit or sys_kill
 *    of itself, at one random point of the budget, from whichever thread
 *    takes it);
 *  - forks (the child, a copy of the caller alone, checks its copies, makes
 *    a few plain calls and exits; the parent may kill it while it runs);
 *  - sends itself SIGUSR1/SIGUSR2 (handled) and changes its signal mask,
 *    at random, SIGSEGV included;
 *  - maps, writes, checks and unmaps regions: its own, and SHARED ones
 *    that every thread writes, checks and unmaps. Each region lies in a
 *    window of addresses used once (no other mapping ever had them) and
 *    each 8-byte word is written only with a tag of its own address, so a
 *    word that is neither 0 nor its tag is memory the kernel gave from
 *    somewhere else: a frame reused while a translation to it lived on (a
 *    missed shootdown), a new page not zeroed, a fork's copy torn. A forked
 *    child checks its copies of the regions the same way. The process then
 *    ends with status BAD_CONTENTS, which the soak reports as a failure;
 *    a region handed to the pool is forgotten.
 * A thread that touches memory another thread took away ends the process
 * by its fault: allowed. Exit status 0, a fault's, or BAD_CONTENTS. */

#define THREADS_LIVE 8            /* threads live at once besides the first */
#define SLOTS 256                 /* threads started in all */
#define STACK_BYTES (32 * 1024)
#define REGION_PAGES_MAX 16
#define TAG_MAGIC 0x7a6e000000000000UL
#define TAG_MASK 0xffff000000000000UL
/* Regions live in windows of their own, each used once, above MMAP_TOP
 * (where mmap without an address never places anything) and below the
 * stack: no other mapping of the process ever had their addresses, so no
 * call of another thread writes there through an address it kept. */
#define WINDOW_BASE 0x0000780000000000UL
#define WINDOW_BYTES (64UL << 20)
#define WINDOWS 16384
#define BAD_CONTENTS 77
#define SHARED 6                  /* regions all threads touch */           /* exit status: memory from elsewhere */
#define FORK_CHILD_CALLS 5

struct thread_slot {
    int tid;                      /* > 0 once started */
    int creator;                  /* slot of the thread that started it; -1: the first */
    int joined;
    unsigned long stack;          /* its stack mapping, 0 when handed to the pool */
};

/* What the threads share to steer the run. It lives in a mapping of its
 * own at CONTROL_AT, away from everything the plain calls reach: a read
 * into data_buf or into a pool mapping with a large count, or a MAP_FIXED
 * just past a pool mapping, overwrites what lies there, and a budget
 * overwritten with file bytes would run for ever (slots overwritten once
 * made threads join in a circle, which never ends: a hang of the fuzzer,
 * not of the kernel). */
#define CONTROL_AT (WINDOW_BASE - (1UL << 30))
struct control {
    long calls;                   /* the budget's size */
    long calls_left;              /* the shared budget (atomic) */
    long exit_at;                 /* budget index at which sys_exit(0) is called, or -1 */
    long pressure_index;          /* budget index at which heap_pressure runs, or -1 */
    long kill_at;                 /* budget index at which it kills itself, or -1 */
    int slots_used;               /* slots taken (atomic) */
    int live_threads;             /* started and not yet returned (atomic) */
    long signals_taken;
    long windows;                 /* region windows taken (atomic) */
    unsigned long shared[SHARED]; /* shared regions: address | (pages - 1), or 0 */
    struct thread_slot slots[SLOTS];
};

static struct control *ctl;

/* One thread's own state: its slot (-1: the first thread) and region. */
struct me {
    int slot;
    int tid;                      /* its thread id once known, else 0 */
    unsigned long region;         /* 0: none */
    int region_pages;
};

static unsigned long tag_of(unsigned long address) { return TAG_MAGIC | (address >> 3); }

/* Takes one call from the budget: its index, or -1 when none is left. */
static long take_call(void)
{
    long left = __atomic_sub_fetch(&ctl->calls_left, 1, __ATOMIC_RELAXED);
    return left < 0 ? -1 : ctl->calls - left - 1;
}

/* Ends the process with BAD_CONTENTS: the word at `at` holds `v`, which
 * is neither 0 nor its tag. */
static void bad_word(unsigned long at, unsigned long v)
{
    if ((v & TAG_MASK) == TAG_MAGIC)
        eprintf("syscall_fuzzer: %lx holds %lx, the tag of %lx\n", at, v, (v & ~TAG_MASK) << 3);
    else
        eprintf("syscall_fuzzer: %lx holds %lx, neither 0 nor its tag\n", at, v);
    sys_exit(BAD_CONTENTS);
}

/* Checks a page of a region: only the threads of this process write there,
 * and only each word's tag, so every word is 0 or its tag. */
static void check_page(unsigned long page)
{
    volatile unsigned long *w = (volatile unsigned long *)page;
    for (int k = 0; k < 512; k++) {
        unsigned long v = w[k];
        if (v != 0 && v != tag_of(page + 8UL * (unsigned long)k))
            bad_word(page + 8UL * (unsigned long)k, v);
    }
}

static void write_page(unsigned long page)
{
    volatile unsigned long *w = (volatile unsigned long *)page;
    for (int k = 0; k < 512; k++)
        w[k] = tag_of(page + 8UL * (unsigned long)k);
}

/* Maps a region of 1..REGION_PAGES_MAX pages in a window of its own and
 * checks that a page of it reads as zeros: its address, or 0. */
static unsigned long map_region(int *pages_out)
{
    long window = __atomic_fetch_add(&ctl->windows, 1, __ATOMIC_RELAXED);
    if (window >= WINDOWS)
        return 0;
    int pages = 1 + (int)pick(REGION_PAGES_MAX);
    unsigned long at = WINDOW_BASE + (unsigned long)window * WINDOW_BYTES +
                       pick(WINDOW_BYTES / 4096 - REGION_PAGES_MAX) * 4096;
    void *r = mmap((void *)at, (unsigned long)pages * 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0);
    if (r == MAP_FAILED)
        return 0;
    unsigned long page = at + pick((unsigned long)pages) * 4096;
    volatile unsigned long *w = (volatile unsigned long *)page;
    for (int k = 0; k < 512; k++)
        if (w[k] != 0)
            bad_word(page + 8UL * (unsigned long)k, w[k]);
    *pages_out = pages;
    return at;
}

/* Maps, writes or checks the calling thread's own region. */
static void touch_region(struct me *t)
{
    if (!t->region) {
        t->region = map_region(&t->region_pages);
        return;
    }
    unsigned long page = t->region + pick((unsigned long)t->region_pages) * 4096;
    switch (pick(8)) {
    case 0:
        /* unmapped (its frames go back) and mapped anew, elsewhere */
        munmap((void *)t->region, (unsigned long)t->region_pages * 4096);
        t->region = 0;
        break;
    case 1:
        /* handed to the pool: the others unmap, protect, map over it while
         * this thread is gone from it */
        pool[pick(POOL)] = t->region;
        t->region = 0;
        break;
    case 2: case 3: case 4:
        write_page(page);
        break;
    default:
        check_page(page);
        break;
    }
}

/* The shared regions: every thread maps, writes, checks and unmaps them
 * (ctl->shared[i] is the address | (pages - 1), 0 when none). A thread
 * that touches one another thread has just unmapped ends the process by
 * its fault; one that touched it before must not reach its frames after
 * munmap returns (a frame then reused for a new region would show the
 * tags of the old address). */
static void touch_shared(void)
{
    unsigned long *entry = &ctl->shared[pick(SHARED)];
    unsigned long e = __atomic_load_n(entry, __ATOMIC_ACQUIRE);
    if (!e) {
        int pages;
        unsigned long at = map_region(&pages);
        if (!at)
            return;
        unsigned long none = 0;
        if (!__atomic_compare_exchange_n(entry, &none, at | (unsigned long)(pages - 1), 0,
                                         __ATOMIC_RELEASE, __ATOMIC_RELAXED))
            munmap((void *)at, (unsigned long)pages * 4096);
        return;
    }
    unsigned long at = e & ~4095UL;
    int pages = (int)(e & 4095) + 1;
    unsigned long page = at + pick((unsigned long)pages) * 4096;
    switch (pick(32)) {
    case 0:
        if (__atomic_compare_exchange_n(entry, &e, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            munmap((void *)at, (unsigned long)pages * 4096);
        break;
    case 1: case 2: case 3: case 4: case 5: case 6:
        write_page(page);
        break;
    default:
        check_page(page);
        break;
    }
}

/* In a forked child: the copies of the caller's region and of the shared
 * regions (other threads may have been writing them during the fork) hold
 * only zeros and tags. */
static void check_copies(struct me *t)
{
    if (t->region)
        for (int p = 0; p < t->region_pages; p++)
            check_page(t->region + (unsigned long)p * 4096);
    for (int i = 0; i < SHARED; i++) {
        unsigned long e = ctl->shared[i];
        if (e)
            for (unsigned long p = 0; p <= (e & 4095); p++)
                check_page((e & ~4095UL) + p * 4096);
    }
}

static int worker(void *arg);

/* Starts a thread (if fewer than THREADS_LIVE live) on a stack of its own,
 * which now and then goes to the pool too (the others may unmap it). */
static void start_thread(struct me *t, long calls)
{
    if (__atomic_load_n(&ctl->live_threads, __ATOMIC_RELAXED) >= THREADS_LIVE)
        return;
    int slot = __atomic_fetch_add(&ctl->slots_used, 1, __ATOMIC_RELAXED);
    if (slot >= SLOTS)
        return;
    void *stack = mmap(NULL, STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    if (stack == MAP_FAILED)
        return;
    ctl->slots[slot].creator = t->slot;
    ctl->slots[slot].stack = (unsigned long)stack;
    __atomic_add_fetch(&ctl->live_threads, 1, __ATOMIC_RELAXED);
    /* the argument: its slot, and whether it stops after a few calls */
    long arg = slot | (calls ? 0x10000L : 0);
    int tid = sys_thread_create(worker, (void *)arg, stack, STACK_BYTES);
    if (tid < 0) {
        __atomic_sub_fetch(&ctl->live_threads, 1, __ATOMIC_RELAXED);
        munmap(stack, STACK_BYTES);
        ctl->slots[slot].stack = 0;
        return;
    }
    __atomic_store_n(&ctl->slots[slot].tid, tid, __ATOMIC_RELEASE);
    if (pick(128) == 0) { /* rarely: it ends the process soon after, mostly */
        pool[pick(POOL)] = (unsigned long)stack;
        ctl->slots[slot].stack = 0;
    }
}

/* Joins one of the threads the caller started (the joins form a tree, so
 * none waits in a circle; and each joins only threads of higher ids, made
 * after it, which holds even if the slots were overwritten) and frees its
 * stack. */
static void join_own_thread(struct me *t)
{
    if (t->tid <= 0 && t->slot >= 0)
        t->tid = __atomic_load_n(&ctl->slots[t->slot].tid, __ATOMIC_ACQUIRE);
    if (t->tid <= 0)
        return; /* its creator has not stored its id yet */
    int used = __atomic_load_n(&ctl->slots_used, __ATOMIC_RELAXED);
    if (used > SLOTS)
        used = SLOTS;
    if (used == 0)
        return;
    int first = (int)pick((unsigned long)used);
    for (int k = 0; k < used; k++) {
        struct thread_slot *s = &ctl->slots[(first + k) % used];
        int tid = __atomic_load_n(&s->tid, __ATOMIC_ACQUIRE);
        if (s->creator != t->slot || tid <= t->tid || s->joined)
            continue;
        int status = -1;
        int r = sys_thread_join(tid, pick(8) ? &status : (int *)address());
        if (r == E_OK) {
            s->joined = 1;
            if (s->stack)
                munmap((void *)s->stack, STACK_BYTES);
            s->stack = 0;
        }
        return;
    }
}

/* A raw thread: a few plain calls, then sys_thread_exit (its stack has no
 * return address). */
static int raw_worker(void *arg)
{
    (void)arg;
    for (int k = 0; k < 8; k++)
        one_call();
    sys_thread_exit(0);
}

/* Thread calls with hostile arguments: creates with bad entries or stacks,
 * joins of itself, of the first thread, of unknown ids. None may block. */
static void hostile_thread_call(void)
{
    static const long entries[] = { 0, 0xffff800000001000L, 0x0000800000000000L, -1 };
    switch (pick(4)) {
    case 0: {
        /* a bad entry, a good stack: refused, or the thread faults at once
         * (ending the process): only rarely */
        long entry = pick(64) ? entries[pick(4)] : (long)data_buf;
        neo_syscall(SYS_THREAD_CREATE, entry, (long)own_mapping() + 4096, 0, 0, 0, 0);
        break;
    }
    case 1:
        /* the right entry on a stack that is anything at all: its pages
         * may be another thread's or nothing */
        if (__atomic_load_n(&ctl->live_threads, __ATOMIC_RELAXED) < THREADS_LIVE && pick(8) == 0) {
            /* never data_buf: a stack there would grow over the data
             * segment */
            static const unsigned long stacks[] = { 0, 0xffff800000010000UL,
                                                    0x0000800000000000UL, 0x10000UL };
            unsigned long stack = pick(4) == 0 ? own_mapping() + 8 * 4096 - 64
                                          : pick(2) ? stacks[pick(4)] : next() & 0x00007ffffffff000UL;
            neo_syscall(SYS_THREAD_CREATE, (long)raw_worker, (long)stack, 0, small(), 0, 0);
        }
        break;
    case 2: {
        static const long tids[] = { 0, -1, 999999, 0x7fffffff };
        long tid = pick(2) ? tids[pick(4)] : sys_getpid(); /* the first thread: not joinable */
        neo_syscall(SYS_THREAD_JOIN, tid, pick(2) ? 0 : (long)address(), 0, 0, 0, 0);
        break;
    }
    default: {
        /* any thread of the process, a status pointer it cannot write:
         * refused before any wait */
        int used = __atomic_load_n(&ctl->slots_used, __ATOMIC_RELAXED);
        long tid = used > 0 ? ctl->slots[pick(used < SLOTS ? (unsigned long)used : SLOTS)].tid : 1;
        neo_syscall(SYS_THREAD_JOIN, tid, pick(2) ? 8 : (long)(0xffff800000000000UL + pick(4096)),
                    0, 0, 0, 0);
        break;
    }
    }
}

/* A fork by one thread: the child (a copy of the caller alone) makes a few
 * plain calls and exits; the parent now and then waits for a child. */
static void fork_now(struct me *t)
{
    int pid = fork();
    if (pid == 0) {
        check_copies(t);
        for (int k = 0; k < FORK_CHILD_CALLS; k++)
            one_call();
        sys_exit(0);
    }
    int status = 0;
    if (pid > 0 && pick(4) == 0)
        sys_kill(pid); /* while it runs, maybe on another CPU */
    if (pid > 0 && pick(2) && sys_wait(&status) > 0 && status == BAD_CONTENTS)
        sys_exit(BAD_CONTENTS); /* a child saw memory of another address */
}

static void count_signal(int sig)
{
    (void)sig;
    __atomic_add_fetch(&ctl->signals_taken, 1, __ATOMIC_RELAXED);
}

/* Signals to the process itself (SIGUSR1/SIGUSR2, handled) and the
 * thread's mask, SIGSEGV and everything else included now and then. */
static void signal_call(void)
{
    sigset_t set = 0;
    switch (pick(3)) {
    case 0:
        kill(sys_getpid(), pick(2) ? SIGUSR1 : SIGUSR2);
        break;
    case 1:
        set = pick(4) ? (sigset_t)(pick(4) << (SIGUSR1 - 1)) | (pick(2) << (SIGUSR2 - 1))
                      : (sigset_t)next();
        sigprocmask((int)pick(3), &set, NULL);
        break;
    default:
        neo_syscall(SYS_SIGPROCMASK, small(), (long)address(), pick(2) ? 0 : (long)address(), 0,
                    0, 0);
        break;
    }
}

/* One call of a thread in threaded mode. */
static void threaded_call(struct me *t, long index)
{
    if (index == ctl->exit_at)
        sys_exit(0); /* the process, from whichever thread is here */
    if (index == ctl->pressure_index)
        heap_pressure();
    if (index == ctl->kill_at)
        sys_kill(sys_getpid()); /* the process, while its other threads run */
    switch (pick(64)) {
    case 0: case 1: start_thread(t, pick(2)); return;
    case 2: join_own_thread(t); return;
    case 3: hostile_thread_call(); return;
    case 4: if (pick(2) == 0) fork_now(t); return;
    case 5: signal_call(); return;
    case 6:
        if (t->slot >= 0 && pick(8) == 0) {
            __atomic_sub_fetch(&ctl->live_threads, 1, __ATOMIC_RELAXED);
            sys_thread_exit(0);
        }
        return;
    case 7: case 8: case 9: case 10: case 11: case 12:
        touch_region(t);
        return;
    case 13: case 14: case 15: case 16: case 17: case 18:
        touch_shared();
        return;
    default:
        one_call();
        return;
    }
}

/* A thread started by start_thread: calls from the budget until it is
 * spent (or, for a short-lived one, a few dozen of them). */
static int worker(void *arg)
{
    long a = (long)arg;
    struct me t = { .slot = (int)(a & 0xffff), .tid = 0, .region = 0, .region_pages = 0 };
    long limit = (a & 0x10000L) ? 1 + (long)pick(64) : -1;
    long index;
    while (limit != 0 && (index = take_call()) >= 0) {
        threaded_call(&t, index);
        if (limit > 0)
            limit--;
    }
    __atomic_sub_fetch(&ctl->live_threads, 1, __ATOMIC_RELAXED);
    return 0;
}

/* The first thread in threaded mode: starts `threads` threads, calls from
 * the budget with them, then (mostly) joins the ones it started before it
 * returns, which ends the process and any thread still running. Rarely it
 * ends itself alone (sys_thread_exit) and the last thread ends the process. */
static int run_threaded(long seed, long calls, long threads)
{
    ctl = mmap((void *)CONTROL_AT, sizeof *ctl, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0);
    if (ctl == MAP_FAILED)
        return 3;
    struct sigaction act = { 0 };
    act.sa_handler = count_signal;
    sigaction(SIGUSR1, &act, NULL);
    sigaction(SIGUSR2, &act, NULL);
    ctl->calls = calls;
    ctl->calls_left = calls;
    ctl->exit_at = pick(5) == 0 ? (long)pick((unsigned long)calls) : -1;
    ctl->kill_at = pick(16) == 0 ? (long)pick((unsigned long)calls) : -1;
    ctl->pressure_index = seed % 100 == 0 && seed > 0 ? (long)pick((unsigned long)calls + 1) : -1;
    struct me t = { .slot = -1, .tid = sys_getpid(), .region = 0, .region_pages = 0 };
    for (long k = 0; k < threads; k++)
        start_thread(&t, 0);
    if (seed % 32 == 0 && seed > 0)
        mincore_mapped_64gib();
    long index;
    while ((index = take_call()) >= 0) {
        threaded_call(&t, index);
        if (pick(20000) == 0)
            sys_thread_exit(0);
    }
    if (pick(4))
        for (int k = 0; k < SLOTS; k++)
            join_own_thread(&t);
    return 0;
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
    long threads = argc > 3 ? neo_atol(argv[3]) : 0;
    if (threads > 0)
        return run_threaded(seed, calls, threads > THREADS_LIVE ? THREADS_LIVE : threads);
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
