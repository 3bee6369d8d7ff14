/* Hostile arguments for EVERY system call (docs/abi.md §2): NULL, kernel-half
 * and non-canonical addresses, -1, huge sizes, unaligned values, read-only and
 * PROT_NONE buffers, buffers and strings that run off the end of a mapping,
 * unknown call numbers. Each call must return a clean error code (the exact
 * documented one where the ABI fixes it), nothing may crash, and after the
 * battery (run several times) free frames return to the baseline. */
#include <neo_test.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <errno.h>

#define R(nr, a, b, c, d, e, f) neo_syscall((nr), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

static const unsigned long bad_ptrs[] = {
    0,                          /* NULL */
    1,                          /* NULL page, unaligned */
    0x8000,                     /* below NEO_USER_BASE */
    0xffff800000000000UL,       /* kernel half */
    0xffffffff80000000UL,       /* kernel image */
    0x0000800000000000UL,       /* non-canonical */
    0x00007ffffffff000UL,       /* top user page, unmapped */
    0xffffffffffffffffUL,       /* -1 */
    0xfffffffffffffff0UL,       /* wraps around */
    0x0000100000000000UL,       /* unmapped user memory */
};
#define NBAD (sizeof bad_ptrs / sizeof bad_ptrs[0])

static char *ro;        /* a read-only page ("/tmp/x" string in it) */
static char *none;      /* a PROT_NONE page */
static char *edge_end;  /* end of a mapped page; the next page is unmapped */
static char *text;      /* this program's code: readable, not writable */
static char *big;       /* 16 mapped pages */
static int file_fd;     /* a /tmp file open O_RDWR */

static long check_neo_err(long r, long want, const char *what, int line)
{
    if (r != want) {
        eprintf("FAIL %s:%d: %s (got %ld, want %ld)\n", __FILE__, line, what, r, want);
        sys_exit(1);
    }
    return r;
}
#define NEO_ERR(expr, want) check_neo_err((expr), (want), #expr, __LINE__)

/* any NeoOS error code */
static void check_neo_any(long r, const char *what, int line)
{
    if (!(r < 0 && r >= E_LAST)) {
        eprintf("FAIL %s:%d: %s (got %ld, want a negative E_* code)\n", __FILE__, line, what, r);
        sys_exit(1);
    }
}
#define NEO_ANY(expr) check_neo_any((expr), #expr, __LINE__)

/* raw POSIX result: -errno for one of two allowed errnos */
static void check_posix(long r, long e1, long e2, const char *what, int line)
{
    if (r != -e1 && r != -e2) {
        eprintf("FAIL %s:%d: %s (got %ld, want -%ld or -%ld)\n", __FILE__, line, what, r, e1, e2);
        sys_exit(1);
    }
}
#define POSIX_ERR(expr, e) check_posix((expr), (e), (e), #expr, __LINE__)
#define POSIX_ERR2(expr, e1, e2) check_posix((expr), (e1), (e2), #expr, __LINE__)

/* sys_wait with a bad status pointer while a child exists: E_INVAL, and the
 * child is not lost. */
static void check_wait_bad(long p)
{
    int pid = sys_run("/bin/hello", NULL);
    CHECK_GE(pid, 1);
    NEO_ERR(R(SYS_WAIT, p, 0, 0, 0, 0, 0), E_INVAL);
    int status = -1;
    CHECK_EQ(sys_wait(&status), pid);
    CHECK_EQ(status, 0);
}

static void neo_calls(void)
{
    char ok[64];
    /* -- unknown numbers -- */
    static const long bad_nrs[] = { 0, -1, SYS_COUNT, SYS_COUNT + 1, 1000, 0x7fffffff, 1L << 40, (long)0x8000000000000001UL };
    for (unsigned i = 0; i < sizeof bad_nrs / sizeof bad_nrs[0]; i++)
        NEO_ERR(R(bad_nrs[i], -1, -1, -1, -1, -1, -1), E_NOT_IMPL);

    for (unsigned i = 0; i < NBAD; i++) {
        long p = (long)bad_ptrs[i];
        /* write / read with bad buffers */
        NEO_ERR(R(SYS_WRITE, STDOUT, p, 16, 0, 0, 0), E_INVAL);
        NEO_ERR(R(SYS_WRITE, file_fd, p, 16, 0, 0, 0), E_INVAL);
        NEO_ERR(R(SYS_READ, file_fd, p, 16, 0, 0, 0), E_INVAL);
        NEO_ERR(R(SYS_READ, STDIN, p, 16, 0, 0, 0), E_INVAL); /* before any wait */
        /* paths */
        NEO_ERR(R(SYS_OPEN, p, O_RDONLY, 0, 0, 0, 0), E_INVAL);
        NEO_ERR(R(SYS_OPEN, p, O_RDWR | O_CREAT, 0, 0, 0, 0), E_INVAL);
        NEO_ERR(R(SYS_STAT, p, ok, 0, 0, 0, 0), E_INVAL);
        NEO_ERR(R(SYS_STAT, "/etc/motd", p, 0, 0, 0, 0), E_INVAL);
        NEO_ERR(R(SYS_READDIR, p, ok, sizeof ok, 0, 0, 0), E_INVAL);
        NEO_ERR(R(SYS_READDIR, "/bin", p, 64, 0, 0, 0), E_INVAL);
        NEO_ERR(R(SYS_RUN, p, 0, 0, 0, 0, 0), E_INVAL);
        if (p != 0) /* argv == NULL is allowed */
            NEO_ERR(R(SYS_RUN, "/bin/hello", p, 0, 0, 0, 0), E_INVAL);
        char *argv_bad[] = { "/bin/hello", (char *)p, NULL };
        if (p != 0) /* a NULL element just ends argv */
            NEO_ERR(R(SYS_RUN, "/bin/hello", argv_bad, 0, 0, 0, 0), E_INVAL);
        /* output structures */
        if (p != 0) /* NULL status is allowed */
            check_wait_bad(p);
        NEO_ERR(R(SYS_MEMINFO, p, 0, 0, 0, 0, 0), E_INVAL);
        NEO_ERR(R(SYS_MAPS, p, 64, 0, 0, 0, 0), E_INVAL);
        NEO_ERR(R(SYS_READ_CONSOLE, p, 16, 0, 0, 0, 0), E_INVAL);
        /* sys_mmap / sys_munmap with garbage */
        NEO_ANY(R(SYS_NEO_MMAP, p, p, p, 0, 0, 0));
        NEO_ERR(R(SYS_NEO_MUNMAP, p, 4096, 0, 0, 0, 0), E_INVAL);
    }

    /* read-only, PROT_NONE and code pages as output buffers */
    NEO_ERR(R(SYS_READ, file_fd, ro, 16, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_READ, file_fd, none, 16, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_READ, file_fd, text, 16, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_WRITE, file_fd, none, 16, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_MEMINFO, ro, 0, 0, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_MEMINFO, text, 0, 0, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_MEMINFO, edge_end - 8, 0, 0, 0, 0, 0), E_INVAL);   /* 80 bytes needed */
    NEO_ERR(R(SYS_STAT, "/etc/motd", ro, 0, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_STAT, "/etc/motd", edge_end - 8, 0, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_MAPS, ro, 64, 0, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_MAPS, edge_end - 8, 4096, 0, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_READDIR, "/bin", ro, 64, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_READ_CONSOLE, ro, 16, 0, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_READ_CONSOLE, none, 16, 0, 0, 0, 0), E_INVAL);

    /* buffers that run off the end of a mapping: nothing is done */
    struct neo_stat st;
    NEO_ERR(sys_stat("/tmp/hostile.dat", &st), E_OK);
    unsigned long size0 = st.size;
    NEO_ERR(R(SYS_WRITE, file_fd, edge_end - 100, 4096, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_WRITE, STDOUT, edge_end - 100, 4096, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_READ, file_fd, edge_end - 100, 4096, 0, 0, 0), E_INVAL);
    NEO_ERR(sys_stat("/tmp/hostile.dat", &st), E_OK);
    NEO_ERR((long)st.size, (long)size0);

    /* unterminated strings at the end of a mapping */
    char *unterminated = edge_end - 32;
    NEO_ERR(R(SYS_OPEN, unterminated, O_RDONLY, 0, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_OPEN, unterminated, O_RDWR | O_CREAT, 0, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_STAT, unterminated, &st, 0, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_READDIR, unterminated, ok, sizeof ok, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_RUN, unterminated, 0, 0, 0, 0, 0), E_INVAL);
    char *argv_unterminated_string[] = { "/bin/hello", unterminated, NULL };
    NEO_ERR(R(SYS_RUN, "/bin/hello", argv_unterminated_string, 0, 0, 0, 0), E_INVAL);
    /* an argv array without its NULL, ending at the end of the mapping */
    char **argv_edge = (char **)(edge_end - 2 * sizeof(char *));
    argv_edge[0] = "/bin/hello";
    argv_edge[1] = "x";
    NEO_ERR(R(SYS_RUN, "/bin/hello", argv_edge, 0, 0, 0, 0), E_INVAL);
    memset(edge_end - 64, 'a', 64); /* restore the unterminated filler */

    /* a path longer than 255 bytes (terminated) */
    static char longpath[600];
    longpath[0] = '/';
    memset(longpath + 1, 'b', sizeof longpath - 2);
    NEO_ERR(sys_open(longpath, O_RDONLY), E_INVAL);
    NEO_ERR(sys_stat(longpath, &st), E_INVAL);
    NEO_ERR(sys_run(longpath, NULL), E_INVAL);

    /* too many arguments */
    static char *many[70];
    for (int i = 0; i < 69; i++)
        many[i] = "arg";
    many[69] = NULL;
    NEO_ERR(sys_run("/bin/hello", many), E_INVAL);

    /* descriptors */
    static const long bad_fds[] = { -1, 3 + 200, 1000000, 0x7fffffff, -0x7fffffff - 1 };
    for (unsigned i = 0; i < sizeof bad_fds / sizeof bad_fds[0]; i++) {
        NEO_ERR(R(SYS_READ, bad_fds[i], ok, 1, 0, 0, 0), E_INVAL);
        NEO_ERR(R(SYS_WRITE, bad_fds[i], ok, 1, 0, 0, 0), E_INVAL);
        NEO_ERR(R(SYS_CLOSE, bad_fds[i], 0, 0, 0, 0, 0), E_INVAL);
        NEO_ERR(R(SYS_FSYNC, bad_fds[i], 0, 0, 0, 0, 0), E_INVAL);
        NEO_ERR(R(SYS_NEO_MMAP, bad_fds[i], 0, 4096, 0, 0, 0), E_INVAL);
    }
    /* counts and modes */
    NEO_ERR(R(SYS_WRITE, file_fd, ok, -1, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_READ, file_fd, ok, -1, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_READ, file_fd, ok, (long)0x80000000UL, 0, 0, 0), E_INVAL); /* int -2^31 */
    NEO_ERR(R(SYS_WRITE, file_fd, 0, 0, 0, 0, 0), 0);                        /* count 0 */
    NEO_ERR(R(SYS_MAPS, ok, -1, 0, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_READDIR, "/bin", ok, -1, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_READ_CONSOLE, ok, 0, 0, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_READ_CONSOLE, ok, -1, 0, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_OPEN, "/etc/motd", -1, 0, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_OPEN, "/etc/motd", 0x7fffffff, 0, 0, 0, 0), E_INVAL);
    NEO_ANY(R(SYS_OPEN, "", O_RDONLY, 0, 0, 0, 0));

    /* processes */
    NEO_ERR(R(SYS_KILL, -1, 0, 0, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_KILL, 0, 0, 0, 0, 0, 0), E_INVAL);
    NEO_ERR(R(SYS_KILL, 0x7fffffff, 0, 0, 0, 0, 0), E_NOENT);
    NEO_ERR(R(SYS_KILL, -0x7fffffff - 1, 0, 0, 0, 0, 0), E_INVAL);

    /* calls without arguments ignore garbage in the argument registers */
    NEO_ERR(R(SYS_YIELD, -1, -1, -1, -1, -1, -1), E_OK);
    CHECK_GE(R(SYS_GETPID, -1, -1, -1, -1, -1, -1), 1);
    CHECK_GE(R(SYS_TICKS, -1, -1, -1, -1, -1, -1), 0);
    CHECK_EQ(R(SYS_GETPAGESIZE, -1, -1, -1, -1, -1, -1), 4096);
}

static void posix_calls(void)
{
    for (unsigned i = 0; i < NBAD; i++) {
        long p = (long)bad_ptrs[i];
        POSIX_ERR(R(SYS_MINCORE, edge_end - 4096, 4096, p, 0, 0, 0), EFAULT);
        POSIX_ERR2(R(SYS_SHMCTL, 0x7fff0000, IPC_STAT, p, 0, 0, 0), EINVAL, EFAULT);
        POSIX_ERR(R(SYS_SHMDT, p, 0, 0, 0, 0, 0), EINVAL);
    }
    /* mmap */
    POSIX_ERR(R(SYS_MMAP, 0, 0, PROT_READ, MAP_PRIVATE | MAP_ANON, -1, 0), EINVAL);
    POSIX_ERR2(R(SYS_MMAP, 0, -1L, PROT_READ, MAP_PRIVATE | MAP_ANON, -1, 0), ENOMEM, EINVAL);
    POSIX_ERR2(R(SYS_MMAP, 0, 1L << 47, PROT_READ, MAP_PRIVATE | MAP_ANON, -1, 0), ENOMEM, EINVAL);
    POSIX_ERR(R(SYS_MMAP, 0, 4096, 0x80, MAP_PRIVATE | MAP_ANON, -1, 0), EINVAL);
    POSIX_ERR(R(SYS_MMAP, 0, 4096, PROT_READ, MAP_PRIVATE | MAP_SHARED | MAP_ANON, -1, 0), EINVAL);
    POSIX_ERR(R(SYS_MMAP, 0, 4096, PROT_READ, MAP_ANON, -1, 0), EINVAL);
    POSIX_ERR(R(SYS_MMAP, 0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANON | 0x1000000, -1, 0), EINVAL);
    POSIX_ERR(R(SYS_MMAP, 0xffff800000000000UL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0), EINVAL);
    POSIX_ERR(R(SYS_MMAP, 0x0000800000000000UL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0), EINVAL);
    POSIX_ERR(R(SYS_MMAP, 0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0), EINVAL);
    POSIX_ERR(R(SYS_MMAP, 0x10000001, 4096, PROT_READ, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0), EINVAL);
    POSIX_ERR(R(SYS_MMAP, NEO_USER_END - 4096, 8192, PROT_READ, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0), EINVAL);
    POSIX_ERR(R(SYS_MMAP, 0, 4096, PROT_READ, MAP_SHARED, -1, 0), EBADF);
    POSIX_ERR(R(SYS_MMAP, 0, 4096, PROT_READ, MAP_SHARED, 1000000, 0), EBADF);
    POSIX_ERR(R(SYS_MMAP, 0, 4096, PROT_READ, MAP_SHARED, file_fd, 1), EINVAL);
    POSIX_ERR(R(SYS_MMAP, 0, 4096, PROT_READ, MAP_SHARED, file_fd, -4096), EINVAL);
    POSIX_ERR(R(SYS_MMAP, 0, 4096, PROT_READ, MAP_SHARED, STDOUT, 0), ENODEV);
    /* munmap */
    POSIX_ERR(R(SYS_MUNMAP, 0xffff800000000000UL, 4096, 0, 0, 0, 0), EINVAL);
    POSIX_ERR(R(SYS_MUNMAP, 0xfffffffffffff000UL, 0x2000, 0, 0, 0, 0), EINVAL);
    POSIX_ERR(R(SYS_MUNMAP, 0x400000, -1L, 0, 0, 0, 0), EINVAL);
    POSIX_ERR(R(SYS_MUNMAP, 0x400001, 4096, 0, 0, 0, 0), EINVAL);
    /* msync, mprotect, madvise, mincore */
    POSIX_ERR(R(SYS_MSYNC, 0x400001, 4096, MS_SYNC, 0, 0, 0), EINVAL);
    POSIX_ERR(R(SYS_MSYNC, edge_end - 4096, 4096, 0xff, 0, 0, 0), EINVAL);
    POSIX_ERR2(R(SYS_MSYNC, 0xffff800000000000UL, 4096, MS_SYNC, 0, 0, 0), ENOMEM, EINVAL);
    POSIX_ERR(R(SYS_MSYNC, edge_end, 4096, MS_SYNC, 0, 0, 0), ENOMEM);
    POSIX_ERR(R(SYS_MPROTECT, 0x400001, 4096, PROT_READ, 0, 0, 0), EINVAL);
    POSIX_ERR(R(SYS_MPROTECT, edge_end - 4096, 4096, -1, 0, 0, 0), EINVAL);
    POSIX_ERR2(R(SYS_MPROTECT, 0xffff800000000000UL, 4096, PROT_READ | PROT_WRITE, 0, 0, 0), ENOMEM, EINVAL);
    POSIX_ERR2(R(SYS_MPROTECT, 0xfffffffffffff000UL, 0x2000, PROT_READ, 0, 0, 0), ENOMEM, EINVAL);
    POSIX_ERR(R(SYS_MPROTECT, edge_end, 4096, PROT_READ, 0, 0, 0), ENOMEM);
    POSIX_ERR(R(SYS_MADVISE, 0x400001, 4096, MADV_NORMAL, 0, 0, 0), EINVAL);
    POSIX_ERR(R(SYS_MADVISE, edge_end - 4096, 4096, 12345, 0, 0, 0), EINVAL);
    POSIX_ERR2(R(SYS_MADVISE, 0xffff800000000000UL, 4096, MADV_DONTNEED, 0, 0, 0), ENOMEM, EINVAL);
    POSIX_ERR(R(SYS_MINCORE, 0x400001, 4096, edge_end - 64, 0, 0, 0), EINVAL);
    POSIX_ERR2(R(SYS_MINCORE, 0xffff800000000000UL, 4096, edge_end - 64, 0, 0, 0), ENOMEM, EINVAL);
    POSIX_ERR(R(SYS_MINCORE, edge_end - 4096, 4096, ro, 0, 0, 0), EFAULT);
    POSIX_ERR(R(SYS_MINCORE, big, 16 * 4096, edge_end - 8, 0, 0, 0), EFAULT); /* vec runs off */
    /* shm */
    POSIX_ERR(R(SYS_SHMGET, 0x7eadbeef, 4096, 0, 0, 0, 0), ENOENT);
    POSIX_ERR(R(SYS_SHMGET, IPC_PRIVATE, 0, IPC_CREAT, 0, 0, 0), EINVAL);
    POSIX_ERR2(R(SYS_SHMGET, IPC_PRIVATE, -1L, IPC_CREAT, 0, 0, 0), EINVAL, ENOMEM);
    POSIX_ERR2(R(SYS_SHMGET, IPC_PRIVATE, 1L << 46, IPC_CREAT, 0, 0, 0), EINVAL, ENOMEM); /* above SHM_MAX */
    POSIX_ERR(R(SYS_SHMAT, -1, 0, 0, 0, 0, 0), EINVAL);
    POSIX_ERR(R(SYS_SHMAT, 0x7fff0000, 0, 0, 0, 0, 0), EINVAL);
    POSIX_ERR(R(SYS_SHMCTL, -1, IPC_RMID, 0, 0, 0, 0), EINVAL);
    int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    CHECK_GE(id, 0);
    POSIX_ERR(R(SYS_SHMAT, id, 0xffff800000000000UL, 0, 0, 0, 0), EINVAL);
    POSIX_ERR(R(SYS_SHMAT, id, 0x10000001, 0, 0, 0, 0), EINVAL);
    POSIX_ERR(R(SYS_SHMCTL, id, 77, 0, 0, 0, 0), EINVAL);
    POSIX_ERR(R(SYS_SHMCTL, id, IPC_STAT, 0xffff800000000000UL, 0, 0, 0), EFAULT);
    POSIX_ERR(R(SYS_SHMCTL, id, IPC_STAT, ro, 0, 0, 0), EFAULT);
    POSIX_ERR(R(SYS_SHMCTL, id, IPC_STAT, edge_end - 8, 0, 0, 0), EFAULT);
    POSIX_ERR(R(SYS_SHMCTL, id, IPC_SET, 0, 0, 0, 0), EFAULT);
    POSIX_ERR(R(SYS_SHMDT, edge_end - 4096, 0, 0, 0, 0, 0), EINVAL); /* not an attachment */
    CHECK_EQ(shmctl(id, IPC_RMID, NULL), 0);
    POSIX_ERR(R(SYS_SHMCTL, id, IPC_RMID, 0, 0, 0, 0), EINVAL);      /* twice */
}

static void battery(void)
{
    neo_calls();
    posix_calls();
}

int main(void)
{
    test_make_file("/tmp/hostile.dat", 3 * 4096, 1, 0);
    file_fd = sys_open("/tmp/hostile.dat", O_RDWR);
    CHECK_GE(file_fd, 0);
    ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(ro != MAP_FAILED);
    strcpy(ro, "/tmp/hostile.dat");
    CHECK_EQ(mprotect(ro, 4096, PROT_READ), 0);
    none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(none != MAP_FAILED);
    char *edge = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(edge != MAP_FAILED);
    CHECK_EQ(munmap(edge + 4096, 4096), 0);
    edge_end = edge + 4096;
    memset(edge, 'a', 4096); /* no NUL anywhere */
    text = (char *)&main;
    big = mmap(NULL, 16 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(big != MAP_FAILED);

    battery(); /* warm-up */
    long free0 = test_free_frames();
    long maps0 = (long)test_meminfo().mappings;
    for (int i = 0; i < 3; i++)
        battery();
    CHECK_EQ((long)test_meminfo().mappings, maps0);
    CHECK_FRAMES_BACK(free0);

    /* the system still works */
    CHECK_EQ(test_run_wait("/bin/hello", NULL), 0);
    unsigned char b[3];
    test_read_file("/tmp/hostile.dat", 4096, b, 3);
    CHECK_EQ(b[0], (unsigned char)4096);
    CHECK_EQ(b[2], (unsigned char)4098);
    CHECK_EQ(sys_close(file_fd), E_OK);
    return 0;
}
