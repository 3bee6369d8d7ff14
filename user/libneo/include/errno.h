/* errno.h - POSIX error numbers (Linux numbering) for the POSIX personality
 * (mmap, munmap, msync, mprotect, madvise, mincore, shm*, fork).
 *
 * The kernel returns -errno; the libneo wrapper returns -1 (or MAP_FAILED /
 * (void *)-1) and stores the number in `errno`. Values are those of crates/abi
 * (neoos_abi::errno), checked by crates/abi/tests/headers.rs.
 */
#ifndef NEO_ERRNO_H
#define NEO_ERRNO_H

extern int errno;

#define EPERM       1
#define ENOENT      2
#define ESRCH       3
#define EINTR       4
#define EIO         5
#define EBADF       9
#define ECHILD      10
#define EAGAIN      11
#define ENOMEM      12
#define EACCES      13
#define EFAULT      14
#define EEXIST      17
#define ENODEV      19
#define EINVAL      22
#define ENOSPC      28
#define ENOSYS      38
#define EOVERFLOW   75

/* A raw POSIX result r (as a 64-bit value) is an error iff -4095 <= r <= -1. */
#define NEO_MAX_ERRNO 4095

#endif
