/* sys/mman.h - the POSIX / BSD memory calls of NeoOS.
 *
 * The kernel returns -errno (-4095..-1) on failure; these libneo functions
 * return -1 (mmap: MAP_FAILED) and set errno (see <errno.h>).
 * Values are those of crates/abi (neoos_abi::mman), checked by
 * crates/abi/tests/headers.rs.
 */
#ifndef NEO_SYS_MMAN_H
#define NEO_SYS_MMAN_H

#include <sys/types.h>

#define PROT_NONE        0
#define PROT_READ        1
#define PROT_WRITE       2
#define PROT_EXEC        4

#define MAP_SHARED       0x01
#define MAP_PRIVATE      0x02
#define MAP_FIXED        0x10
#define MAP_ANON         0x20
#define MAP_ANONYMOUS    0x20

#define MAP_FAILED       ((void *)-1)

#define MS_ASYNC         1
#define MS_INVALIDATE    2
#define MS_SYNC          4

#define MADV_NORMAL      0
#define MADV_RANDOM      1
#define MADV_SEQUENTIAL  2
#define MADV_WILLNEED    3
#define MADV_DONTNEED    4

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset);
int   munmap(void *addr, size_t len);
int   msync(void *addr, size_t len, int flags);
int   mprotect(void *addr, size_t len, int prot);
int   madvise(void *addr, size_t len, int advice);
int   mincore(void *addr, size_t len, unsigned char *vec);
int   getpagesize(void);

/* fork lives here for want of <unistd.h>: 0 in the child, the child's pid in
 * the parent, -1 with errno on failure. */
int   fork(void);

#endif
