/* libneo's signal.h on a NeoOS program: an SA_SIGINFO handler for SIGSEGV
 * gets si_addr and SEGV_MAPERR for a touch of an unmapped page, maps it
 * back and returns, and the load is retried; a write to a read-only page is
 * SEGV_ACCERR (the handler makes it writable); a touch past the end of a
 * mapped file is SIGBUS BUS_ADRERR (the handler lengthens the file).
 * signal() installs a handler that kill() runs before it returns; a blocked
 * signal waits until sigprocmask unblocks it; SIG_IGN drops it; SIGKILL
 * cannot be caught (EINVAL). A child killed by SIGTERM ends with status
 * 128 + 15 as sys_wait reports it, and one without a SIGSEGV handler still
 * ends with NEO_STATUS_SEGFAULT. */
#include <neo_test.h>
#include <signal.h>
#include <sys/mman.h>
#include <errno.h>

static volatile void *fault_addr;
static volatile int fault_code, fault_signo, segv_calls, usr1_calls;
static char *page;
static int file_fd = -1;
static char zeros[2 * 4096];

static void on_fault(int sig, siginfo_t *info, void *uc)
{
    (void)uc;
    segv_calls++;
    fault_signo = sig;
    fault_addr = info->si_addr;
    fault_code = info->si_code;
    char *at = (char *)((unsigned long)info->si_addr & ~4095UL);
    /* Make the access possible: it is retried when the handler returns. */
    if (sig == SIGBUS) {
        /* Lengthen the file past the page touched. */
        if (sys_write(file_fd, zeros, sizeof zeros) != (int)sizeof zeros)
            sys_exit(4);
        return;
    }
    if (info->si_code == SEGV_ACCERR) {
        if (mprotect(at, 4096, PROT_READ | PROT_WRITE) != 0)
            sys_exit(3);
        return;
    }
    char *back = mmap(at, 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0);
    if (back != at)
        sys_exit(5);
    back[5] = 42;
}

static void on_usr1(int sig) { usr1_calls += sig == SIGUSR1; }

int main(void)
{
    struct sigaction act;
    act.sa_sigaction = on_fault;
    act.sa_flags = SA_SIGINFO;
    sigemptyset(&act.sa_mask);
    CHECK_EQ(sigaction(SIGSEGV, &act, NULL), 0);
    CHECK_EQ(sigaction(SIGBUS, &act, NULL), 0);

    /* SEGV_MAPERR: an unmapped page. */
    page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(page != MAP_FAILED);
    CHECK_EQ(munmap(page, 4096), 0);
    volatile char *p = page + 5;
    CHECK_EQ(*p, 42);
    CHECK_EQ(segv_calls, 1);
    CHECK_EQ(fault_signo, SIGSEGV);
    CHECK_EQ((long)fault_addr, (long)(page + 5));
    CHECK_EQ(fault_code, SEGV_MAPERR);

    /* SEGV_ACCERR: a read-only page written. */
    CHECK_EQ(mprotect(page, 4096, PROT_READ), 0);
    volatile char *w = page + 100;
    *w = 7;
    CHECK_EQ(*w, 7);
    CHECK_EQ(segv_calls, 2);
    CHECK_EQ(fault_code, SEGV_ACCERR);
    CHECK_EQ((long)fault_addr, (long)(page + 100));

    /* SIGBUS: the second page of a one-page file mapping. */
    int fd = sys_open("/tmp/sigbus_file", O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(fd, 0);
    file_fd = fd;
    CHECK_EQ(sys_write(fd, "x", 1), 1);
    char *f = mmap(NULL, 2 * 4096, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(f != MAP_FAILED);
    volatile char *past = f + 4096 + 9;
    CHECK_EQ(*past, 0); /* the file's new bytes */
    CHECK_EQ(segv_calls, 3);
    CHECK_EQ(fault_signo, SIGBUS);
    CHECK_EQ(fault_code, BUS_ADRERR);
    CHECK_EQ((long)fault_addr, (long)(f + 4096 + 9));
    sys_close(fd);

    /* signal() and kill(): the handler runs before kill returns. */
    CHECK(signal(SIGUSR1, on_usr1) == SIG_DFL);
    CHECK_EQ(kill(sys_getpid(), SIGUSR1), 0);
    CHECK_EQ(usr1_calls, 1);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK_EQ(sigprocmask(SIG_BLOCK, &set, &old), 0);
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(usr1_calls, 1);
    CHECK_EQ(sigprocmask(SIG_SETMASK, &old, NULL), 0);
    CHECK_EQ(usr1_calls, 2);
    CHECK(signal(SIGUSR1, SIG_IGN) == on_usr1);
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(usr1_calls, 2);

    /* Hostile arguments. */
    errno = 0;
    CHECK_EQ(sigaction(SIGKILL, &act, NULL), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(sigaction(0, &act, NULL), -1);
    CHECK_EQ(sigaction(65, &act, NULL), -1);
    CHECK_EQ(kill(sys_getpid(), 65), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(kill(99999, SIGUSR1), -1);
    CHECK_EQ(errno, ESRCH);
    /* (sigaction copies the action in the library, as C libraries do: a
     * bad pointer faults there; the call itself refuses it.) */
    CHECK_EQ(neo_syscall(SYS_SIGACTION, SIGUSR2, 8, 0, 8, 0, 0), -EFAULT);
    CHECK_EQ(neo_syscall(SYS_SIGACTION, SIGUSR2, 0, 8, 8, 0, 0), -EFAULT);
    CHECK_EQ(neo_syscall(SYS_SIGACTION, SIGUSR2, 0, 0, 4, 0, 0), -EINVAL);
    CHECK_EQ(sigprocmask(SIG_BLOCK, (sigset_t *)8, NULL), -1);
    CHECK_EQ(errno, EFAULT);

    /* A child ended by SIGTERM; one faulting without a handler. */
    int child = fork();
    if (child == 0) {
        for (;;)
            sys_yield();
    }
    CHECK_GE(child, 1);
    CHECK_EQ(kill(child, SIGTERM), 0);
    int status = -1;
    CHECK_EQ(sys_wait(&status), child);
    CHECK_EQ(status, 128 + SIGTERM);
    child = fork();
    if (child == 0) {
        signal(SIGSEGV, SIG_DFL);
        munmap(page, 4096);
        *(volatile char *)page = 1;
        sys_exit(0);
    }
    CHECK_EQ(sys_wait(&status), child);
    CHECK_EQ(status, NEO_STATUS_SEGFAULT);
    PASS();
}
