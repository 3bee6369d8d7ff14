// expect-output: PASS linux hostile signal calls
/* Hostile uses of the signal calls: bad pointers give EFAULT and change
 * nothing; SIGKILL cannot be caught or blocked; a handler at a kernel
 * address, a forged sigreturn frame with a non-canonical rip, an
 * unreadable frame or FPU-state pointer end the process with SIGSEGV
 * (and the kernel goes on); a forged frame with kernel segment selectors
 * and IOPL 3 returns to user mode with the user selectors and IOPL 0 (or
 * ends the process, as on Linux), never with them;
 * one with reserved MXCSR bits is cleaned or refused, never loaded. A signal death reads as one in the
 * wait status (WIFSIGNALED, WTERMSIG). */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "linux_check.h"

#define KERNEL_ADDR 0xffff800000001000ull

/* struct rt_sigframe offsets (x86_64). */
#define UC 8
#define MC (UC + 40)
#define REG(i) (MC + 8 * (i))
#define RSP REG(15)
#define RIP REG(16)
#define EFLAGS REG(17)
#define CSGSFS REG(18)
#define FPSTATE (MC + 184)
#define MASK (MC + 256)

static unsigned char frame_area[4096] __attribute__((aligned(64)));
static unsigned char stack_area[16384] __attribute__((aligned(16)));
static unsigned char fpu_area[512] __attribute__((aligned(64)));

static void put64(unsigned char *f, int at, uint64_t v) { memcpy(f + at, &v, 8); }

/* Where a forged frame returns: checks the state it runs in. */
static void landed(void)
{
    uint16_t cs, ss;
    uint64_t flags;
    uint32_t mxcsr;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    __asm__ volatile("mov %%ss, %0" : "=r"(ss));
    __asm__ volatile("pushfq; popq %0" : "=r"(flags));
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    int ok = (cs & 3) == 3 && (ss & 3) == 3 && (flags & 0x3000) == 0 && (flags & 0x200);
    syscall(SYS_exit_group, ok ? 0 : 1);
}

/* Calls rt_sigreturn with the frame at frame_area (rsp = frame + 8). */
static void forged_sigreturn(void)
{
    __asm__ volatile("lea 8(%0), %%rsp\n\t"
                     "mov $15, %%eax\n\t"
                     "syscall\n\t"
                     "ud2" ::"r"(frame_area)
                     : "memory");
}

static void forge(uint64_t rip, uint64_t rsp, uint64_t eflags, uint64_t csgsfs, uint64_t fpstate)
{
    memset(frame_area, 0, sizeof frame_area);
    put64(frame_area, RIP, rip);
    put64(frame_area, RSP, rsp);
    put64(frame_area, EFLAGS, eflags);
    put64(frame_area, CSGSFS, csgsfs);
    put64(frame_area, FPSTATE, fpstate);
    put64(frame_area, MASK, 0);
}

/* Runs `child` in a child process; returns its wait status. */
static int in_child(void (*child)(void))
{
    pid_t pid = fork();
    if (pid == 0) {
        child();
        _exit(100);
    }
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid);
    return status;
}

static void handler_in_kernel_space(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = (void (*)(int))KERNEL_ADDR;
    sigaction(SIGSEGV, &sa, NULL);
    volatile uintptr_t null_page = 8;
    *(volatile char *)null_page = 1;
}

static void non_canonical_rip(void)
{
    forge(0x8000000000000000ull, (uint64_t)(stack_area + sizeof stack_area - 8), 0x202, 0x2b000000000033ull, 0);
    forged_sigreturn();
}

static void kernel_rip(void)
{
    forge(KERNEL_ADDR, (uint64_t)(stack_area + sizeof stack_area - 8), 0x202, 0x2b000000000033ull, 0);
    forged_sigreturn();
}

static void kernel_selectors_and_iopl(void)
{
    forge((uint64_t)landed, (uint64_t)(stack_area + sizeof stack_area - 8),
          0x3202 | (1u << 17), (0x10ull << 48) | 0x8, 0);
    forged_sigreturn();
}

static void reserved_mxcsr_bits(void)
{
    memset(fpu_area, 0, sizeof fpu_area);
    uint32_t all = 0xffffffffu;
    memcpy(fpu_area + 24, &all, 4); /* MXCSR: every bit, reserved ones too */
    forge((uint64_t)landed, (uint64_t)(stack_area + sizeof stack_area - 8), 0x202,
          0x2b000000000033ull, (uint64_t)fpu_area);
    forged_sigreturn();
}

static void unreadable_frame(void)
{
    __asm__ volatile("mov $0x18, %%rsp\n\t"
                     "mov $15, %%eax\n\t"
                     "syscall\n\t"
                     "ud2" ::
                         : "memory");
}

static void fpstate_in_kernel(void)
{
    forge((uint64_t)landed, (uint64_t)(stack_area + sizeof stack_area - 8), 0x202, 0x2b000000000033ull,
          KERNEL_ADDR);
    forged_sigreturn();
}

static void kill_self_blocked_sigkill(void)
{
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    kill(getpid(), SIGKILL);
}

static int killed_by(int status, int sig)
{
    return WIFSIGNALED(status) && WTERMSIG(status) == sig;
}

int main(void)
{
    /* Bad pointers: EFAULT, nothing changed. */
    errno = 0;
    CHECK(syscall(SYS_rt_sigaction, SIGUSR1, (void *)KERNEL_ADDR, NULL, 8) == -1 && errno == EFAULT);
    errno = 0;
    CHECK(syscall(SYS_rt_sigaction, SIGUSR1, (void *)1, NULL, 8) == -1 && errno == EFAULT);
    struct sigaction old;
    errno = 0;
    CHECK(syscall(SYS_rt_sigaction, SIGUSR1, NULL, (void *)KERNEL_ADDR, 8) == -1 && errno == EFAULT);
    CHECK(sigaction(SIGUSR1, NULL, &old) == 0 && old.sa_handler == SIG_DFL);
    errno = 0;
    CHECK(syscall(SYS_rt_sigprocmask, SIG_BLOCK, (void *)KERNEL_ADDR, NULL, 8) == -1 && errno == EFAULT);
    errno = 0;
    CHECK(syscall(SYS_rt_sigaction, SIGUSR1, NULL, NULL, 4) == -1 && errno == EINVAL);

    /* SIGKILL: no handler, no blocking. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    errno = 0;
    CHECK(sigaction(SIGKILL, &sa, NULL) == -1 && errno == EINVAL);
    CHECK(killed_by(in_child(kill_self_blocked_sigkill), SIGKILL));

    /* Deaths the kernel causes, as wait statuses. */
    CHECK(killed_by(in_child(handler_in_kernel_space), SIGSEGV));
    CHECK(killed_by(in_child(non_canonical_rip), SIGSEGV));
    CHECK(killed_by(in_child(kernel_rip), SIGSEGV));
    CHECK(killed_by(in_child(unreadable_frame), SIGSEGV));
    CHECK(killed_by(in_child(fpstate_in_kernel), SIGSEGV));

    /* Kernel selectors, IOPL 3, all MXCSR bits: user mode all the same. */
    /* (Linux ends the process instead: either way, never ring 0 or IOPL 3;
       `landed` exits 1 if it runs with them.) */
    int status = in_child(kernel_selectors_and_iopl);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0) || killed_by(status, SIGSEGV));
    /* Reserved MXCSR bits: the state is refused or cleaned (Linux ends
       the process, NeoOS drops the bits); never loaded as it is. */
    status = in_child(reserved_mxcsr_bits);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0) || killed_by(status, SIGSEGV));

    if (failures == 0)
        printf("PASS linux hostile signal calls\n");
    return failures != 0;
}
