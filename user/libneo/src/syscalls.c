/* syscalls.c - libneo's system-call stubs.
 *
 * syscall: rax = number, args rdi, rsi, rdx, r10, r8, r9; result rax;
 * rcx and r11 clobbered; all other registers preserved by the kernel.
 * int arguments are passed sign-extended to 64 bits (the kernel uses their
 * low 32 bits); pointers and sizes are passed whole.
 */
#include <syscalls.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/shm.h>

int errno;

/* Code of the last sys_mmap (E_OK after a success). */
static int neo_last_mmap_code;

long neo_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    register long r9 __asm__("r9") = a6;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

#define NEO_STR2(x) #x
#define NEO_STR(x) NEO_STR2(x)
#define SC0(n)                   neo_syscall((n), 0, 0, 0, 0, 0, 0)
#define SC1(n, a)                neo_syscall((n), (long)(a), 0, 0, 0, 0, 0)
#define SC2(n, a, b)             neo_syscall((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define SC3(n, a, b, c)          neo_syscall((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define SC6(n, a, b, c, d, e, f) neo_syscall((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

/* ---------------- NeoOS personality: results are values or E_* ---------------- */

int sys_open(const char *path, int mode) { return (int)SC2(SYS_OPEN, path, mode); }
int sys_read(int fd, void *buf, int count) { return (int)SC3(SYS_READ, fd, buf, count); }
int sys_write(int fd, const void *buf, int count) { return (int)SC3(SYS_WRITE, fd, buf, count); }
int sys_close(int fd) { return (int)SC1(SYS_CLOSE, fd); }

void sys_exit(int status)
{
    for (;;)
        SC1(SYS_EXIT, status);
}

void *sys_mmap(int fd, int offset, int size)
{
    long r = SC3(SYS_NEO_MMAP, fd, offset, size);
    if (r < 0 && r >= -4095) {
        neo_last_mmap_code = (int)r;
        return NULL;
    }
    neo_last_mmap_code = E_OK;
    return (void *)r;
}

int sys_errno(void) { return neo_last_mmap_code; }

int sys_munmap(void *addr, int size) { return (int)SC2(SYS_NEO_MUNMAP, addr, size); }
int sys_run(const char *path, char *const argv[]) { return (int)SC2(SYS_RUN, path, argv); }
int sys_wait(int *status) { return (int)SC1(SYS_WAIT, status); }
int sys_kill(int pid) { return (int)SC1(SYS_KILL, pid); }
int sys_yield(void) { return (int)SC0(SYS_YIELD); }
int sys_stat(const char *path, struct neo_stat *st) { return (int)SC2(SYS_STAT, path, st); }
int sys_meminfo(struct neo_meminfo *info) { return (int)SC1(SYS_MEMINFO, info); }
int sys_maps(char *buf, int len) { return (int)SC2(SYS_MAPS, buf, len); }
int sys_getpid(void) { return (int)SC0(SYS_GETPID); }
int sys_fsync(int fd) { return (int)SC1(SYS_FSYNC, fd); }
int sys_readdir(const char *path, char *buf, int len) { return (int)SC3(SYS_READDIR, path, buf, len); }
int sys_read_console(char *buf, int len) { return (int)SC2(SYS_READ_CONSOLE, buf, len); }
long sys_ticks(void) { return SC0(SYS_TICKS); }

/* Where a thread's function returns to: its result (eax) becomes the
 * status of sys_thread_exit. */
void neo_thread_return(void);
__asm__(".text\n"
        ".globl neo_thread_return\n"
        "neo_thread_return:\n"
        "    movl %eax, %edi\n"
        "    movl $" NEO_STR(SYS_THREAD_EXIT) ", %eax\n"
        "    syscall\n"
        "    ud2\n");

int sys_thread_create(int (*fn)(void *), void *arg, void *stack, unsigned long size)
{
    if (stack == 0 || size < 64)
        return E_INVAL;
    /* The kernel enters fn with rsp = top: as after a call, (top + 8) is
     * 16-byte aligned and [top] is the return address. */
    unsigned long top = ((unsigned long)stack + size) & ~15UL;
    top -= 8;
    *(void **)top = (void *)neo_thread_return;
    return (int)SC3(SYS_THREAD_CREATE, fn, top, arg);
}

void sys_thread_exit(int status)
{
    for (;;)
        SC1(SYS_THREAD_EXIT, status);
}

int sys_thread_join(int tid, int *status) { return (int)SC2(SYS_THREAD_JOIN, tid, status); }

/* ---------------- POSIX personality: results are values or -errno ---------------- */

static int posix_is_error(long r) { return r < 0 && r >= -NEO_MAX_ERRNO; }

static long posix_int(long r)
{
    if (posix_is_error(r)) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

static void *posix_ptr(long r)
{
    if (posix_is_error(r)) {
        errno = (int)-r;
        return (void *)-1;
    }
    return (void *)r;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset)
{
    return posix_ptr(SC6(SYS_MMAP, addr, len, prot, flags, fd, offset));
}

int munmap(void *addr, size_t len) { return (int)posix_int(SC2(SYS_MUNMAP, addr, len)); }
int msync(void *addr, size_t len, int flags) { return (int)posix_int(SC3(SYS_MSYNC, addr, len, flags)); }
int mprotect(void *addr, size_t len, int prot) { return (int)posix_int(SC3(SYS_MPROTECT, addr, len, prot)); }
int madvise(void *addr, size_t len, int advice) { return (int)posix_int(SC3(SYS_MADVISE, addr, len, advice)); }
int mincore(void *addr, size_t len, unsigned char *vec) { return (int)posix_int(SC3(SYS_MINCORE, addr, len, vec)); }
int getpagesize(void) { return (int)posix_int(SC0(SYS_GETPAGESIZE)); }

int shmget(key_t key, size_t size, int shmflg) { return (int)posix_int(SC3(SYS_SHMGET, key, size, shmflg)); }
void *shmat(int shmid, const void *shmaddr, int shmflg) { return posix_ptr(SC3(SYS_SHMAT, shmid, shmaddr, shmflg)); }
int shmdt(const void *shmaddr) { return (int)posix_int(SC1(SYS_SHMDT, shmaddr)); }
int shmctl(int shmid, int cmd, struct shmid_ds *buf) { return (int)posix_int(SC3(SYS_SHMCTL, shmid, cmd, buf)); }

int fork(void) { return (int)posix_int(SC0(SYS_FORK)); }

/* ---------------- Signals (signal.h): POSIX results ---------------- */

#include <signal.h>

#define NEO_STR2(x) #x
#define NEO_STR(x) NEO_STR2(x)

/* Where a handler returns: the restorer calls SYS_SIGRETURN, which puts
 * back the registers, mask and SSE state the kernel saved in the frame. */
void __neo_sigreturn(void);
__asm__(".text\n"
        ".global __neo_sigreturn\n"
        ".type __neo_sigreturn, @function\n"
        "__neo_sigreturn:\n"
        "    mov $" NEO_STR(SYS_SIGRETURN) ", %eax\n"
        "    syscall\n"
        "    hlt\n");

int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    struct sigaction k;
    const struct sigaction *given = act;
    if (act) {
        k = *act;
        k.sa_flags |= SA_RESTORER;
        k.sa_restorer = __neo_sigreturn;
        given = &k;
    }
    return (int)posix_int(neo_syscall(SYS_SIGACTION, sig, (long)given, (long)old,
                                      sizeof(sigset_t), 0, 0));
}

sighandler_t signal(int sig, sighandler_t handler)
{
    struct sigaction act, old;
    act.sa_handler = handler;
    act.sa_flags = SA_RESTART;
    act.sa_mask = 0;
    act.sa_restorer = 0;
    if (sigaction(sig, &act, &old) < 0)
        return SIG_ERR;
    return old.sa_handler;
}

int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    return (int)posix_int(neo_syscall(SYS_SIGPROCMASK, how, (long)set, (long)old,
                                      sizeof(sigset_t), 0, 0));
}

int kill(pid_t pid, int sig) { return (int)posix_int(SC2(SYS_SIGNAL, pid, sig)); }
int raise(int sig) { return kill(sys_getpid(), sig); }

static int sig_ok(int sig)
{
    if (sig < 1 || sig > NSIG) {
        errno = EINVAL;
        return 0;
    }
    return 1;
}

int sigemptyset(sigset_t *set) { *set = 0; return 0; }
int sigfillset(sigset_t *set) { *set = ~0UL; return 0; }

int sigaddset(sigset_t *set, int sig)
{
    if (!sig_ok(sig))
        return -1;
    *set |= 1UL << (sig - 1);
    return 0;
}

int sigdelset(sigset_t *set, int sig)
{
    if (!sig_ok(sig))
        return -1;
    *set &= ~(1UL << (sig - 1));
    return 0;
}

int sigismember(const sigset_t *set, int sig)
{
    if (!sig_ok(sig))
        return -1;
    return (*set >> (sig - 1)) & 1;
}
