/* syscalls.h - the NeoOS system calls.
 *
 * Calling convention (see docs/abi.md): `syscall` instruction, rax = number,
 * arguments in rdi, rsi, rdx, r10, r8, r9, result in rax; rcx and r11 are
 * clobbered, every other register is preserved.
 *
 * NeoOS calls return a value >= 0 on success or a negative E_* code from
 * <error.h>. Exception: sys_mmap returns NULL on failure; its code is then
 * available from sys_errno().
 *
 * Every number below comes from crates/abi (the single source); the test
 * crates/abi/tests/headers.rs checks each one.
 */
#ifndef NEO_SYSCALLS_H
#define NEO_SYSCALLS_H

#include <sys/types.h>
#include <error.h>

#ifndef NULL
#define NULL ((void *)0)
#endif

/* ---- System-call numbers (rax) ---- */
/* NeoOS personality */
#define SYS_EXIT          1
#define SYS_WRITE         2
#define SYS_READ          3
#define SYS_OPEN          4
#define SYS_CLOSE         5
#define SYS_NEO_MMAP      6
#define SYS_NEO_MUNMAP    7
#define SYS_RUN           8
#define SYS_WAIT          9
#define SYS_KILL          10
#define SYS_YIELD         11
#define SYS_STAT          12
#define SYS_MEMINFO       13
#define SYS_MAPS          14
#define SYS_GETPID        15
#define SYS_FSYNC         16
#define SYS_READDIR       17
#define SYS_READ_CONSOLE  18
#define SYS_TICKS         19
/* POSIX / BSD memory personality (see <sys/mman.h>, <sys/shm.h>) */
#define SYS_MMAP          20
#define SYS_MUNMAP        21
#define SYS_MSYNC         22
#define SYS_MPROTECT      23
#define SYS_MADVISE       24
#define SYS_MINCORE       25
#define SYS_GETPAGESIZE   26
#define SYS_SHMGET        27
#define SYS_SHMAT         28
#define SYS_SHMDT         29
#define SYS_SHMCTL        30
#define SYS_FORK          31
/* NeoOS threads (NeoOS results: E_* codes) */
#define SYS_THREAD_CREATE 32
#define SYS_THREAD_EXIT   33
#define SYS_THREAD_JOIN   34
/* Signals (POSIX results; declared in signal.h). */
#define SYS_SIGACTION     35
#define SYS_SIGPROCMASK   36
#define SYS_SIGRETURN     37
#define SYS_SIGNAL        38   /* kill(pid, sig) */
/* One past the highest number (not checked by the header test). */
#define SYS_COUNT         39

/* ---- sys_open modes (combine with |) ---- */
#define O_RDONLY   0
#define O_WRONLY   1
#define O_RDWR     2
#define O_ACCMODE  3
#define O_CREAT    0x40
#define O_EXCL     0x80
#define O_TRUNC    0x200
#define O_APPEND   0x400

/* ---- standard descriptors ---- */
#define STDIN      0
#define STDOUT     1
#define STDERR     2

/* ---- memory ---- */
#define NEO_PAGE_SIZE   4096
/* The user address range: [NEO_USER_BASE, NEO_USER_END). Below NEO_USER_BASE
 * lies the NULL guard; NEO_USER_END is the end of the canonical lower half. */
#define NEO_USER_BASE   0x10000
#define NEO_USER_END    0x800000000000
/* Most mappings one process may have (docs/abi.md, Limits): past it, calls
 * that would add one fail with E_NOMEM / ENOMEM. */
#define NEO_MAPPINGS_MAX 131072

/* ---- sys_stat ---- */
#define NEO_STAT_FILE   1
#define NEO_STAT_DIR    2

struct neo_stat {
    unsigned long kind;   /* NEO_STAT_FILE or NEO_STAT_DIR */
    unsigned long size;   /* bytes (files); directories: number of entries */
};

/* ---- sys_meminfo: 14 unsigned 64-bit fields, in this order ---- */
struct neo_meminfo {
    unsigned long total_frames;      /* physical frames managed by the kernel */
    unsigned long free_frames;       /* frames currently free */
    unsigned long mappings;          /* mappings (VMAs) of the caller */
    unsigned long resident_pages;    /* resident (present) user pages of the caller */
    unsigned long writeback_requests;/* file writebacks performed (system-wide) */
    unsigned long writeback_bytes;   /* bytes written back to files (system-wide) */
    unsigned long tlb_flush_page;    /* single-page TLB flushes (system-wide) */
    unsigned long tlb_flush_all;     /* full TLB flushes (system-wide) */
    unsigned long disk_requests;     /* requests sent to the /home disk (reads, writes, flushes) */
    unsigned long disk_interrupts;   /* completion interrupts the disk driver took */
    unsigned long tlb_shootdown_ipis;/* IPIs sent to make other CPUs flush TLB entries */
    unsigned long tlb_remote_pages;  /* single-page invalidations asked of other CPUs */
    unsigned long tlb_remote_full;   /* full TLB flushes asked of other CPUs */
    unsigned long wakeup_ipis;       /* IPIs that woke an idle CPU for a ready thread */
};

/* ---- exit statuses reported by sys_wait for a child ended by the kernel ---- */
#define NEO_STATUS_SEGFAULT  139   /* bad memory access */
#define NEO_STATUS_BUSERROR  135   /* access past the end of a mapped file */
#define NEO_STATUS_KILLED    137   /* ended by sys_kill */
#define NEO_STATUS_CRASHED   134   /* other CPU exception */

/* ---- raw entry point: any number, six arguments, raw result ---- */
long neo_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6);

/* ---- the NeoOS calls ---- */
int   sys_open(const char *path, int mode);
int   sys_read(int fd, void *buf, int count);
int   sys_write(int fd, const void *buf, int count);
int   sys_close(int fd);
void  sys_exit(int status) __attribute__((noreturn));

/* Maps `size` bytes of the file open as `fd`, from `offset` (a multiple of
 * NEO_PAGE_SIZE), shared with the file. Returns the address, or NULL on
 * failure: the NeoOS code (E_INVAL, E_NOMEM, E_PERM, E_IO) is then returned by
 * sys_errno(). */
void *sys_mmap(int fd, int offset, int size);
/* Code of the last sys_mmap of this process: E_OK after a success, the
 * failure's E_* code after a failure. */
int   sys_errno(void);
int   sys_munmap(void *addr, int size);

/* Starts `path` as a new, independent child process with argv (NULL
 * terminated; argv == NULL means { path, NULL }); returns its pid. */
int   sys_run(const char *path, char *const argv[]);
/* Waits for a child to end; stores its exit status in *status (if not NULL)
 * and returns its pid. E_NOENT if the caller has no children. */
int   sys_wait(int *status);
int   sys_kill(int pid);
int   sys_yield(void);
int   sys_stat(const char *path, struct neo_stat *st);
int   sys_meminfo(struct neo_meminfo *info);
int   sys_maps(char *buf, int len);
int   sys_getpid(void);
int   sys_fsync(int fd);
int   sys_readdir(const char *path, char *buf, int len);
int   sys_read_console(char *buf, int len);
long  sys_ticks(void);

/* ---- threads (docs/abi.md, "Threads") ----
 * Starts a thread of the calling process running fn(arg) on the stack
 * [stack, stack + size) (the caller's memory, which it frees after the join);
 * returns its thread id, or E_INVAL (bad entry or stack), E_NOMEM. When fn
 * returns, the thread ends as by sys_thread_exit(its result). The thread
 * shares the address space and descriptors; errno and sys_errno() are
 * per process, not per thread. */
int   sys_thread_create(int (*fn)(void *), void *arg, void *stack, unsigned long size);
/* Ends the calling thread with `status` (the last thread's end is the
 * process's, with that status). */
void  sys_thread_exit(int status) __attribute__((noreturn));
/* Waits for thread `tid` of this process (made by sys_thread_create) to end
 * and stores its status in *status (if not NULL); E_OK. E_NOENT: no such
 * thread (or already joined); E_INVAL: the caller itself or a thread not
 * made by sys_thread_create; E_BUSY: that thread is joining the caller. */
int   sys_thread_join(int tid, int *status);

#endif
