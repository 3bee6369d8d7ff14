/* random_calls.h - what the musl random-call tests share
 * (linux_musl_random_system_calls_never_crash_the_kernel.c and its
 * threaded variant): the xorshift generator, the hostile argument mix and
 * the calls a one-thread caller leaves out (those that would destroy its
 * own memory or thread, or wait for ever). The including program defines,
 * before it includes this, `state` (the generator's word: static, or
 * __thread for a generator per thread) and `scratch` (an array the
 * arguments point into). */
#ifndef RANDOM_CALLS_H
#define RANDOM_CALLS_H

#include <stdint.h>
#include <sys/syscall.h>

static uint64_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

/* A hostile argument: small numbers, -1, pointers into and just past the
 * start of `scratch`, kernel and top-of-user addresses, powers of two. */
static long argument(void)
{
    switch (next() % 10) {
    case 0: return 0;
    case 1: return (long)(next() % 8);
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

/* Calls left out of every random run: they unmap or remap the caller's
 * memory, end or clone it, or wait for a signal that never comes. */
static int excluded_in_one_thread(long n)
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

#endif
