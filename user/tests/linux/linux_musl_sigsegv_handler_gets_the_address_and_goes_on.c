// expect-output: PASS linux SIGSEGV handler
/* A static musl program unmaps a page and touches it: its SA_SIGINFO
 * handler gets SIGSEGV with si_addr = the address touched and si_code
 * SEGV_MAPERR, runs with SIGSEGV blocked, maps the page back and returns;
 * the load is retried and succeeds, with the SSE register the program had
 * loaded before the fault intact (the handler used SSE itself) and the
 * signal mask as before. A write to a read-only page gives SEGV_ACCERR;
 * an access past the end of a mapped file gives SIGBUS (BUS_ADRERR). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "linux_check.h"

static volatile void *fault_addr;
static volatile int fault_code, fault_signo, calls, blocked_inside;
static char *page;
static long page_size;

static void handler(int sig, siginfo_t *info, void *uc)
{
    (void)uc;
    sigset_t now;
    calls++;
    fault_signo = sig;
    fault_addr = info->si_addr;
    fault_code = info->si_code;
    sigprocmask(SIG_BLOCK, NULL, &now);
    blocked_inside = sigismember(&now, SIGSEGV);
    /* Use SSE here: the interrupted code's xmm registers must survive. */
    __asm__ volatile("pcmpeqd %%xmm0, %%xmm0" ::: "xmm0");
    char *back = mmap(page, page_size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (back != page)
        _exit(3);
    back[7] = 42;
}

static void fix_protection(int sig, siginfo_t *info, void *uc)
{
    (void)uc;
    calls++;
    fault_signo = sig;
    fault_addr = info->si_addr;
    fault_code = info->si_code;
    mprotect(page, page_size, PROT_READ | PROT_WRITE);
}

static void bus_handler(int sig, siginfo_t *info, void *uc)
{
    (void)uc;
    calls++;
    fault_signo = sig;
    fault_addr = info->si_addr;
    fault_code = info->si_code;
    /* Replace the page past the file's end with anonymous memory. */
    mmap((void *)((uintptr_t)info->si_addr & ~(uintptr_t)(page_size - 1)), page_size,
         PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

int main(void)
{
    page_size = sysconf(_SC_PAGESIZE);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);

    page = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(page != MAP_FAILED);
    CHECK(munmap(page, page_size) == 0);

    /* Load a pattern into xmm0, fault, read xmm0 back. */
    uint64_t pattern[2] = {0x1122334455667788ull, 0x99aabbccddeeff00ull};
    uint64_t after[2] = {0, 0};
    char loaded;
    __asm__ volatile("movdqu (%2), %%xmm0\n\t"
                     "movb 7(%3), %0\n\t"
                     "movdqu %%xmm0, (%1)"
                     : "=&r"(loaded)
                     : "r"(after), "r"(pattern), "r"(page)
                     : "xmm0", "memory");
    CHECK(calls == 1);
    CHECK(fault_signo == SIGSEGV);
    CHECK(fault_addr == page + 7);
    CHECK(fault_code == SEGV_MAPERR);
    CHECK(blocked_inside == 1);
    CHECK(loaded == 42);
    CHECK(after[0] == pattern[0] && after[1] == pattern[1]);
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    CHECK(!sigismember(&now, SIGSEGV));

    /* A write to a read-only page: SEGV_ACCERR. */
    sa.sa_sigaction = fix_protection;
    CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
    CHECK(mprotect(page, page_size, PROT_READ) == 0);
    calls = 0;
    ((volatile char *)page)[100] = 5;
    CHECK(calls == 1);
    CHECK(fault_addr == page + 100);
    CHECK(fault_code == SEGV_ACCERR);
    CHECK(page[100] == 5);

    /* Past the end of a mapped file: SIGBUS, BUS_ADRERR. */
    int fd = open("/tmp/sigbus_file", O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, "x", 1) == 1);
    char *file = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(file != MAP_FAILED);
    sa.sa_sigaction = bus_handler;
    CHECK(sigaction(SIGBUS, &sa, NULL) == 0);
    calls = 0;
    char past = ((volatile char *)file)[page_size + 3];
    CHECK(calls == 1);
    CHECK(fault_signo == SIGBUS);
    CHECK(fault_addr == file + page_size + 3);
    CHECK(fault_code == BUS_ADRERR);
    CHECK(past == 0);
    munmap(file, 2 * page_size);
    close(fd);
    unlink("/tmp/sigbus_file");

    if (failures == 0)
        printf("PASS linux SIGSEGV handler\n");
    return failures != 0;
}
