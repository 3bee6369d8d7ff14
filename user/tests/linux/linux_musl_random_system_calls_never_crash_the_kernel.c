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

#include "random_calls.h"

int main(void)
{
    close(0);
    close(1);
    close(2);
    for (int i = 0; i < 3000; i++) {
        long n = (long)(next() % 460);
        if (excluded_in_one_thread(n))
            continue;
        syscall(n, argument(), argument(), argument(), argument(), argument(),
                argument());
    }
    return 0;
}
