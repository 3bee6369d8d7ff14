/* A static musl program makes thousands of Linux system calls with random
 * numbers and hostile arguments (NULL, unaligned, kernel and unmapped
 * addresses, huge sizes, random words). The kernel must answer each one
 * (a result or -errno) and stay up; the program ends with status 0.
 *
 * Left out: calls that end or copy the program (exit, exit_group, fork,
 * clone, vfork) and those that rightly destroy its own memory or thread
 * pointer with random arguments (mmap, mprotect, munmap, brk, mremap,
 * madvise, arch_prctl), and those that rightly wait for a signal nothing
 * sends (pause, rt_sigsuspend) or arm a timer whose SIGALRM ends it
 * (alarm, setitimer). Descriptors 0-2 are closed first, so no call
 * waits for console input or floods the console. */
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

static unsigned char scratch[65536];
static uint64_t state = 0x2545f4914f6cdd1dULL;

static uint64_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static long argument(void)
{
    switch (next() % 10) {
    case 0: return 0;
    case 1: return (long)next() % 8;
    case 2: return -1;
    case 3: return (long)scratch;
    case 4: return (long)scratch + 1 + (long)(next() % 4096);
    case 5: return (long)0xffff800000000000ULL;
    case 6: return 0x7ffffffff000L;
    case 7: return 1L << (next() % 63);
    case 8: return 4096;
    default: return (long)next();
    }
}

static int excluded(long n)
{
    switch (n) {
    case SYS_mmap: case SYS_mprotect: case SYS_munmap: case SYS_brk:
    case SYS_mremap: case SYS_madvise: case SYS_arch_prctl:
    case SYS_exit: case SYS_exit_group: case SYS_fork: case SYS_vfork:
    case SYS_clone: case SYS_clone3: case SYS_rt_sigreturn:
    case SYS_pause: case SYS_rt_sigsuspend: case SYS_alarm: case SYS_setitimer:
        return 1;
    default:
        return 0;
    }
}

int main(void)
{
    close(0);
    close(1);
    close(2);
    for (int i = 0; i < 3000; i++) {
        long n = (long)(next() % 460);
        if (excluded(n))
            continue;
        syscall(n, argument(), argument(), argument(), argument(), argument(),
                argument());
    }
    return 0;
}
