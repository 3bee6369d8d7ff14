// expect-output: PASS linux sched_getaffinity counts the online cpus
/* sched_getaffinity(2): every thread may run on every online CPU, so the
 * mask has one bit per CPU and musl's sysconf(_SC_NPROCESSORS_ONLN) (which
 * counts those bits: BusyBox nproc does the same) gives the number of
 * CPUs; the result is the kernel's mask size (8 bytes for up to 64 CPUs).
 * Errors as on Linux: EINVAL for a size shorter than the kernel's mask or
 * not a whole number of words, ESRCH for no such thread, EFAULT for a bad
 * mask. Runs unchanged on Linux. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "linux_check.h"

int main(void)
{
    unsigned char mask[128];
    for (unsigned i = 0; i < sizeof mask; i++)
        mask[i] = 0xee;
    long size = syscall(SYS_sched_getaffinity, 0, sizeof mask, mask);
    CHECK(size >= 8 && size % 8 == 0);
    int bits = 0;
    for (long i = 0; i < size; i++)
        bits += __builtin_popcount(mask[i]);
    CHECK(mask[0] & 1);
    CHECK(size < 0 || mask[size] == 0xee); /* nothing past the kernel's mask */
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    printf("cpus online: %ld (mask of %ld bytes, %d bits)\n", online, size, bits);
    CHECK(online >= 1 && online == bits);
    cpu_set_t set;
    CHECK(sched_getaffinity(getpid(), sizeof set, &set) == 0);
    CHECK(CPU_COUNT(&set) == bits);
    CHECK_ERR(syscall(SYS_sched_getaffinity, 0, 4, mask), EINVAL);
    CHECK_ERR(syscall(SYS_sched_getaffinity, 0, size + 4, mask), EINVAL);
    CHECK_ERR(syscall(SYS_sched_getaffinity, 999999, sizeof mask, mask), ESRCH);
    CHECK_ERR(syscall(SYS_sched_getaffinity, 0, sizeof mask, (void *)8), EFAULT);
    if (failures == 0)
        printf("PASS linux sched_getaffinity counts the online cpus\n");
    return failures != 0;
}
