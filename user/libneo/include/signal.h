/* signal.h - signals for NeoOS programs: sigaction, signal, sigprocmask,
 * kill, raise and the sigset_t helpers. Numbers, flags and the layout of
 * struct sigaction are Linux's x86_64 ones, from crates/abi
 * (neoos_abi::signal), checked by crates/abi/tests/headers.rs.
 *
 * A handler runs on the process's stack with the frame described in
 * docs/abi.md ("Signals"): handler(sig) or, with SA_SIGINFO,
 * handler(sig, siginfo_t *, void *ucontext). A fault the kernel cannot
 * resolve sends SIGSEGV (si_code SEGV_MAPERR or SEGV_ACCERR) or SIGBUS
 * (BUS_ADRERR) with si_addr the address; a handler that returns retries the
 * access. Without a handler the process ends as before (status 139, 135).
 * Functions return 0 (or the old handler) or -1 with errno set. */
#ifndef NEO_SIGNAL_H
#define NEO_SIGNAL_H

#include <sys/types.h>

#define SIGHUP     1
#define SIGINT     2
#define SIGQUIT    3
#define SIGILL     4
#define SIGTRAP    5
#define SIGABRT    6
#define SIGBUS     7
#define SIGFPE     8
#define SIGKILL    9
#define SIGUSR1    10
#define SIGSEGV    11
#define SIGUSR2    12
#define SIGPIPE    13
#define SIGALRM    14
#define SIGTERM    15
#define SIGSTKFLT  16
#define SIGCHLD    17
#define SIGCONT    18
#define SIGSTOP    19
#define SIGTSTP    20
#define SIGTTIN    21
#define SIGTTOU    22
#define SIGURG     23
#define SIGXCPU    24
#define SIGXFSZ    25
#define SIGVTALRM  26
#define SIGPROF    27
#define SIGWINCH   28
#define SIGIO      29
#define SIGPWR     30
#define SIGSYS     31
#define NSIG       64

#define SA_NOCLDSTOP  1
#define SA_NOCLDWAIT  2
#define SA_SIGINFO    4
#define SA_ONSTACK    0x08000000
#define SA_RESTART    0x10000000
#define SA_RESTORER   0x04000000
#define SA_NODEFER    0x40000000
#define SA_RESETHAND  0x80000000

#define SIG_BLOCK    0
#define SIG_UNBLOCK  1
#define SIG_SETMASK  2

#define SI_USER      0
#define SI_KERNEL    0x80
#define SEGV_MAPERR  1
#define SEGV_ACCERR  2
#define BUS_ADRERR   2
#define CLD_EXITED   1
#define CLD_KILLED   2
#define CLD_DUMPED   3

typedef void (*sighandler_t)(int);
#define SIG_DFL ((sighandler_t)0)
#define SIG_IGN ((sighandler_t)1)
#define SIG_ERR ((sighandler_t)-1)

/* One bit per signal: bit (sig - 1). */
typedef unsigned long sigset_t;

/* The kernel's siginfo_t (128 bytes): number, errno, code, then the
 * fault address (SIGSEGV, SIGBUS) or the sender's pid. */
typedef struct {
    int si_signo;
    int si_errno;
    int si_code;
    int __pad;
    union {
        void *si_addr;
        pid_t si_pid;
    };
    char __rest[128 - 24];
} siginfo_t;

/* The layout the kernel reads (32 bytes). */
struct sigaction {
    union {
        sighandler_t sa_handler;
        void (*sa_sigaction)(int, siginfo_t *, void *);
    };
    unsigned long sa_flags;
    void (*sa_restorer)(void);
    sigset_t sa_mask;
};

int sigaction(int sig, const struct sigaction *act, struct sigaction *old);
/* Installs `handler` with SA_RESTART (BSD semantics, as glibc's signal). */
sighandler_t signal(int sig, sighandler_t handler);
int sigprocmask(int how, const sigset_t *set, sigset_t *old);
int kill(pid_t pid, int sig);
int raise(int sig);

int sigemptyset(sigset_t *set);
int sigfillset(sigset_t *set);
int sigaddset(sigset_t *set, int sig);
int sigdelset(sigset_t *set, int sig);
int sigismember(const sigset_t *set, int sig);

#endif
