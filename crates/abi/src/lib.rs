//! The NeoOS application binary interface: system-call numbers, result codes,
//! flags and the user address-space layout.
//!
//! This crate is the single source of these numbers. The kernel and the mapping
//! core use the Rust constants; the C headers of libneo (`user/libneo/include`)
//! restate them, and the `headers` test checks every `#define` there against the
//! tables at the bottom of this file.
#![no_std]
#![forbid(unsafe_code)]

/// Size of a page, in bytes.
pub const PAGE_SIZE: usize = 4096;

/// Timer ticks per second (`sys_ticks`, and the clocks of Linux programs).
pub const TICKS_PER_SECOND: u64 = 100;

/// System-call numbers (placed in `rax` for the `syscall` instruction).
pub mod nr {
    // The NeoOS personality.
    pub const EXIT: usize = 1;
    pub const WRITE: usize = 2;
    pub const READ: usize = 3;
    pub const OPEN: usize = 4;
    pub const CLOSE: usize = 5;
    pub const NEO_MMAP: usize = 6;
    pub const NEO_MUNMAP: usize = 7;
    pub const RUN: usize = 8;
    pub const WAIT: usize = 9;
    pub const KILL: usize = 10;
    pub const YIELD: usize = 11;
    pub const STAT: usize = 12;
    pub const MEMINFO: usize = 13;
    pub const MAPS: usize = 14;
    pub const GETPID: usize = 15;
    pub const FSYNC: usize = 16;
    pub const READDIR: usize = 17;
    pub const READ_CONSOLE: usize = 18;
    pub const TICKS: usize = 19;

    // The POSIX / BSD memory personality.
    pub const MMAP: usize = 20;
    pub const MUNMAP: usize = 21;
    pub const MSYNC: usize = 22;
    pub const MPROTECT: usize = 23;
    pub const MADVISE: usize = 24;
    pub const MINCORE: usize = 25;
    pub const GETPAGESIZE: usize = 26;
    pub const SHMGET: usize = 27;
    pub const SHMAT: usize = 28;
    pub const SHMDT: usize = 29;
    pub const SHMCTL: usize = 30;
    pub const FORK: usize = 31;

    // NeoOS threads (NeoOS results, `E_*` codes, despite their numbers).
    pub const THREAD_CREATE: usize = 32;
    pub const THREAD_EXIT: usize = 33;
    pub const THREAD_JOIN: usize = 34;

    /// Signals (POSIX results, the kernel's layouts of `crate::signal`).
    pub const SIGACTION: usize = 35;
    pub const SIGPROCMASK: usize = 36;
    pub const SIGRETURN: usize = 37;
    /// POSIX `kill(pid, sig)` (NeoOS `sys_kill` ends a process outright).
    pub const SIGNAL: usize = 38;

    /// The first call of the POSIX personality (results are `-errno`);
    /// calls below it are NeoOS calls (results are `E_*` codes).
    pub const FIRST_POSIX: usize = MMAP;
    /// One past the highest system-call number.
    pub const COUNT: usize = 39;

    /// Whether call `number` follows the NeoOS result convention (`E_*`
    /// codes): the NeoOS calls below [`FIRST_POSIX`] and the thread calls.
    pub const fn is_neo_convention(number: usize) -> bool {
        number < FIRST_POSIX || matches!(number, THREAD_CREATE | THREAD_EXIT | THREAD_JOIN)
    }
}

/// NeoOS result codes (`error.h`): every NeoOS call returns one of these
/// (negative) on failure.
pub mod neo {
    pub const E_OK: i64 = 0;
    pub const E_UNKNOWN: i64 = -1;
    pub const E_NOMEM: i64 = -2;
    pub const E_INVAL: i64 = -3;
    pub const E_NOENT: i64 = -4;
    pub const E_EXISTS: i64 = -5;
    pub const E_BUSY: i64 = -6;
    pub const E_IO: i64 = -7;
    pub const E_PERM: i64 = -8;
    pub const E_TIMEOUT: i64 = -9;
    pub const E_MODULE_ERR: i64 = -10;
    pub const E_NOT_IMPL: i64 = -11;
    pub const E_NOT_SUPPORTED: i64 = -12;
}

/// POSIX `errno` values (Linux numbering). The POSIX calls return `-errno` from
/// the kernel; libneo turns that into `-1` and `errno`.
pub mod errno {
    pub const EPERM: i64 = 1;
    pub const ENOENT: i64 = 2;
    pub const ESRCH: i64 = 3;
    pub const EIO: i64 = 5;
    pub const E2BIG: i64 = 7;
    pub const ENOEXEC: i64 = 8;
    pub const EBADF: i64 = 9;
    pub const ECHILD: i64 = 10;
    pub const EAGAIN: i64 = 11;
    pub const ENOMEM: i64 = 12;
    pub const EACCES: i64 = 13;
    pub const EFAULT: i64 = 14;
    pub const EBUSY: i64 = 16;
    pub const EEXIST: i64 = 17;
    pub const ENODEV: i64 = 19;
    pub const ENOTDIR: i64 = 20;
    pub const EISDIR: i64 = 21;
    pub const EINTR: i64 = 4;
    pub const EINVAL: i64 = 22;
    pub const EPIPE: i64 = 32;
    pub const EMFILE: i64 = 24;
    pub const ENOSPC: i64 = 28;
    pub const ENOTTY: i64 = 25;
    pub const ESPIPE: i64 = 29;
    pub const ENOSYS: i64 = 38;
    pub const EOVERFLOW: i64 = 75;
    pub const ETIMEDOUT: i64 = 110;
    pub const EXDEV: i64 = 18;
    pub const ERANGE: i64 = 34;
    pub const ENAMETOOLONG: i64 = 36;
    pub const ENOTEMPTY: i64 = 39;
}

/// Open modes for `sys_open`.
pub mod open {
    pub const O_RDONLY: u32 = 0;
    pub const O_WRONLY: u32 = 1;
    pub const O_RDWR: u32 = 2;
    /// Mask of the access-mode bits above.
    pub const O_ACCMODE: u32 = 3;
    pub const O_CREAT: u32 = 0x40;
    pub const O_EXCL: u32 = 0x80;
    pub const O_TRUNC: u32 = 0x200;
    pub const O_APPEND: u32 = 0x400;
    /// Every bit a mode may carry.
    pub const VALID: u32 = O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND;
}

/// Standard descriptors.
pub mod fd {
    pub const STDIN: i64 = 0;
    pub const STDOUT: i64 = 1;
    pub const STDERR: i64 = 2;
}

/// `mmap`, `mprotect`, `msync`, `madvise` flags (Linux values).
pub mod mman {
    pub const PROT_NONE: u32 = 0;
    pub const PROT_READ: u32 = 1;
    pub const PROT_WRITE: u32 = 2;
    pub const PROT_EXEC: u32 = 4;
    pub const MAP_SHARED: u32 = 0x01;
    pub const MAP_PRIVATE: u32 = 0x02;
    pub const MAP_FIXED: u32 = 0x10;
    pub const MAP_ANON: u32 = 0x20;
    pub const MS_ASYNC: u32 = 1;
    pub const MS_INVALIDATE: u32 = 2;
    pub const MS_SYNC: u32 = 4;
    pub const MADV_NORMAL: u32 = 0;
    pub const MADV_RANDOM: u32 = 1;
    pub const MADV_SEQUENTIAL: u32 = 2;
    pub const MADV_WILLNEED: u32 = 3;
    pub const MADV_DONTNEED: u32 = 4;
    /// Linux: private anonymous pages may be dropped (NeoOS drops them at
    /// once: they read back as zero, as after `MADV_DONTNEED`).
    pub const MADV_FREE: u32 = 8;
    /// `mremap` flags (Linux).
    pub const MREMAP_MAYMOVE: u32 = 1;
    pub const MREMAP_FIXED: u32 = 2;
    pub const MREMAP_DONTUNMAP: u32 = 4;
    /// `mmap`'s failure value as an address.
    pub const MAP_FAILED: i64 = -1;
}

/// The Linux personality: call numbers, the ELF note that marks a NeoOS
/// program, the auxiliary vector, and the constants of the Linux calls
/// NeoOS implements (x86_64 values). A program without the NeoOS note is
/// a Linux program; its results are `-errno` ([`errno`]).
pub mod linux {
    /// The ELF note libneo's crt0 places in every NeoOS program: owner
    /// name (with its NUL), type and a 4-byte descriptor (the ABI version).
    pub const NOTE_NAME: &[u8] = b"NeoOS\0";
    pub const NOTE_TYPE: u32 = 1;
    pub const NOTE_ABI_VERSION: u32 = 1;

    /// Linux x86_64 system-call numbers.
    pub mod nr {
        pub const READ: usize = 0;
        pub const WRITE: usize = 1;
        pub const OPEN: usize = 2;
        pub const CLOSE: usize = 3;
        pub const STAT: usize = 4;
        pub const FSTAT: usize = 5;
        pub const LSTAT: usize = 6;
        pub const POLL: usize = 7;
        pub const PPOLL: usize = 271;
        pub const LSEEK: usize = 8;
        pub const MMAP: usize = 9;
        pub const MPROTECT: usize = 10;
        pub const MUNMAP: usize = 11;
        pub const BRK: usize = 12;
        pub const RT_SIGACTION: usize = 13;
        pub const RT_SIGPROCMASK: usize = 14;
        pub const RT_SIGRETURN: usize = 15;
        pub const IOCTL: usize = 16;
        pub const PREAD64: usize = 17;
        pub const PWRITE64: usize = 18;
        pub const ACCESS: usize = 21;
        pub const PIPE: usize = 22;
        pub const READV: usize = 19;
        pub const WRITEV: usize = 20;
        pub const SCHED_YIELD: usize = 24;
        pub const MREMAP: usize = 25;
        pub const MSYNC: usize = 26;
        pub const MINCORE: usize = 27;
        pub const MADVISE: usize = 28;
        pub const SHMGET: usize = 29;
        pub const SHMAT: usize = 30;
        pub const SHMCTL: usize = 31;
        pub const DUP: usize = 32;
        pub const DUP2: usize = 33;
        pub const PAUSE: usize = 34;
        pub const NANOSLEEP: usize = 35;
        pub const GETITIMER: usize = 36;
        pub const ALARM: usize = 37;
        pub const SETITIMER: usize = 38;
        pub const GETPID: usize = 39;
        pub const CLONE: usize = 56;
        pub const FORK: usize = 57;
        pub const VFORK: usize = 58;
        pub const EXECVE: usize = 59;
        pub const EXIT: usize = 60;
        pub const WAIT4: usize = 61;
        pub const KILL: usize = 62;
        pub const UNAME: usize = 63;
        pub const SHMDT: usize = 67;
        pub const FCNTL: usize = 72;
        pub const FSYNC: usize = 74;
        pub const FDATASYNC: usize = 75;
        pub const FTRUNCATE: usize = 77;
        pub const GETCWD: usize = 79;
        pub const UNLINK: usize = 87;
        pub const UMASK: usize = 95;
        pub const GETRLIMIT: usize = 97;
        pub const GETUID: usize = 102;
        pub const GETGID: usize = 104;
        pub const SETUID: usize = 105;
        pub const SETGID: usize = 106;
        pub const GETEUID: usize = 107;
        pub const GETEGID: usize = 108;
        pub const GETPPID: usize = 110;
        pub const SETREUID: usize = 113;
        pub const SETREGID: usize = 114;
        pub const SETRESUID: usize = 117;
        pub const GETRESUID: usize = 118;
        pub const SETRESGID: usize = 119;
        pub const GETRESGID: usize = 120;
        pub const RT_SIGSUSPEND: usize = 130;
        pub const SIGALTSTACK: usize = 131;
        pub const STATFS: usize = 137;
        pub const FSTATFS: usize = 138;
        pub const MLOCK: usize = 149;
        pub const MUNLOCK: usize = 150;
        pub const MLOCKALL: usize = 151;
        pub const MUNLOCKALL: usize = 152;
        pub const ARCH_PRCTL: usize = 158;
        pub const SETRLIMIT: usize = 160;
        pub const SYNC: usize = 162;
        pub const GETTID: usize = 186;
        pub const FUTEX: usize = 202;
        pub const SCHED_GETAFFINITY: usize = 204;
        pub const TKILL: usize = 200;
        pub const SET_TID_ADDRESS: usize = 218;
        pub const CLOCK_GETTIME: usize = 228;
        pub const CLOCK_NANOSLEEP: usize = 230;
        pub const EXIT_GROUP: usize = 231;
        pub const TGKILL: usize = 234;
        pub const WAITID: usize = 247;
        pub const OPENAT: usize = 257;
        pub const NEWFSTATAT: usize = 262;
        pub const UNLINKAT: usize = 263;
        pub const PIPE2: usize = 293;
        pub const PRLIMIT64: usize = 302;
        pub const SET_ROBUST_LIST: usize = 273;
        pub const GETRANDOM: usize = 318;
        pub const RSEQ: usize = 334;
        // Files and the namespace (the file-system helper's calls).
        pub const TRUNCATE: usize = 76;
        pub const CHDIR: usize = 80;
        pub const FCHDIR: usize = 81;
        pub const RENAME: usize = 82;
        pub const MKDIR: usize = 83;
        pub const RMDIR: usize = 84;
        pub const READLINK: usize = 89;
        pub const CHMOD: usize = 90;
        pub const FCHMOD: usize = 91;
        pub const GETTIMEOFDAY: usize = 96;
        pub const TIME: usize = 201;
        pub const GETDENTS64: usize = 217;
        pub const MKDIRAT: usize = 258;
        pub const RENAMEAT: usize = 264;
        pub const READLINKAT: usize = 267;
        pub const FCHMODAT: usize = 268;
        pub const FACCESSAT: usize = 269;
        pub const UTIMENSAT: usize = 280;
        pub const DUP3: usize = 292;
        pub const PREADV: usize = 295;
        pub const RENAMEAT2: usize = 316;
        pub const FACCESSAT2: usize = 439;
        pub const CLONE3: usize = 435;
        /// Numbers at or above this are no Linux call NeoOS knows of (the
        /// kernel's once-only log of unknown numbers covers those below).
        pub const LOGGED_BELOW: usize = 512;
    }

    /// `clone` flags (the low byte is the signal sent to the parent at
    /// the child's end; a thread sends none).
    pub mod clone {
        pub const CSIGNAL: u64 = 0xff;
        pub const CLONE_VM: u64 = 0x100;
        pub const CLONE_FS: u64 = 0x200;
        pub const CLONE_FILES: u64 = 0x400;
        pub const CLONE_SIGHAND: u64 = 0x800;
        pub const CLONE_VFORK: u64 = 0x4000;
        pub const CLONE_PARENT: u64 = 0x8000;
        pub const CLONE_THREAD: u64 = 0x1_0000;
        pub const CLONE_SYSVSEM: u64 = 0x4_0000;
        pub const CLONE_SETTLS: u64 = 0x8_0000;
        pub const CLONE_PARENT_SETTID: u64 = 0x10_0000;
        pub const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
        /// Ignored by Linux since 2.6.2; musl still passes it.
        pub const CLONE_DETACHED: u64 = 0x40_0000;
        pub const CLONE_CHILD_SETTID: u64 = 0x100_0000;
        /// What a thread clone must have (musl's and glibc's
        /// `pthread_create` pass these).
        pub const THREAD_REQUIRED: u64 =
            CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;
        /// What a thread clone may have besides.
        pub const THREAD_OPTIONAL: u64 = CLONE_SYSVSEM
            | CLONE_SETTLS
            | CLONE_PARENT_SETTID
            | CLONE_CHILD_CLEARTID
            | CLONE_CHILD_SETTID
            | CLONE_DETACHED;
    }

    pub use clone::*;

    /// `poll` events (`struct pollfd`'s `events` and `revents`).
    pub mod poll {
        pub const POLLIN: u16 = 0x1;
        pub const POLLPRI: u16 = 0x2;
        pub const POLLOUT: u16 = 0x4;
        pub const POLLERR: u16 = 0x8;
        pub const POLLHUP: u16 = 0x10;
        pub const POLLNVAL: u16 = 0x20;
        pub const POLLRDNORM: u16 = 0x40;
        pub const POLLWRNORM: u16 = 0x100;
        /// Most entries one `poll` takes (Linux: `RLIMIT_NOFILE`, 1,024 by
        /// default); more `EINVAL`.
        pub const MAX_POLL_FDS: u64 = 1024;
    }

    /// `futex` operations (the low bits of `op`) and flags.
    pub mod futex {
        pub const FUTEX_WAIT: u32 = 0;
        pub const FUTEX_WAKE: u32 = 1;
        pub const FUTEX_REQUEUE: u32 = 3;
        pub const FUTEX_CMP_REQUEUE: u32 = 4;
        pub const FUTEX_WAIT_BITSET: u32 = 9;
        pub const FUTEX_WAKE_BITSET: u32 = 10;
        pub const FUTEX_PRIVATE_FLAG: u32 = 128;
        pub const FUTEX_CLOCK_REALTIME: u32 = 256;
        /// The bit set that matches every waiter.
        pub const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;
    }

    /// `arch_prctl` codes.
    pub const ARCH_SET_FS: u64 = 0x1002;
    pub const ARCH_GET_FS: u64 = 0x1003;

    /// `ioctl` requests answered on the console.
    pub const TCGETS: u64 = 0x5401;
    pub const TIOCGWINSZ: u64 = 0x5413;
    /// `struct termios` (kernel layout): four flag words, line, 19 cc.
    pub const TERMIOS_SIZE: usize = 36;
    /// `struct winsize`: rows, columns, x and y pixels (u16 each).
    pub const WINSIZE_SIZE: usize = 8;

    /// `openat`'s "relative to the working directory" descriptor.
    pub const AT_FDCWD: i64 = -100;
    /// `newfstatat` flag: operate on the descriptor itself.
    pub const AT_EMPTY_PATH: u32 = 0x1000;
    /// Open flags NeoOS accepts and ignores (no terminals to acquire, no
    /// exec, every file is large-file capable).
    pub const O_NOCTTY: u32 = 0o400;
    pub const O_LARGEFILE: u32 = 0o100000;
    pub const O_CLOEXEC: u32 = 0o2000000;
    /// Open flags NeoOS accepts and honours as far as they apply: no
    /// symbolic links exist (`O_NOFOLLOW` has nothing to refuse), no call
    /// on a file blocks (`O_NONBLOCK`), `O_DIRECTORY` refuses a file.
    pub const O_NONBLOCK: u32 = 0o4000;
    pub const O_DIRECTORY: u32 = 0o200000;
    pub const O_NOFOLLOW: u32 = 0o400000;
    /// `unlinkat` flag: remove a directory.
    pub const AT_REMOVEDIR: u32 = 0x200;
    /// `*at` flag: do not follow a final symbolic link (NeoOS has none).
    pub const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
    /// `faccessat` flag: check with the effective ids.
    pub const AT_EACCESS: u32 = 0x200;
    /// `access` modes.
    pub const F_OK: u32 = 0;
    pub const X_OK: u32 = 1;
    pub const W_OK: u32 = 2;
    pub const R_OK: u32 = 4;
    /// `utimensat`'s special nanosecond values.
    pub const UTIME_NOW: i64 = (1 << 30) - 1;
    pub const UTIME_OMIT: i64 = (1 << 30) - 2;
    /// `getdents64` entry types.
    pub const DT_CHR: u8 = 2;
    pub const DT_DIR: u8 = 4;
    pub const DT_REG: u8 = 8;

    /// `fcntl` commands.
    pub const F_DUPFD: u32 = 0;
    pub const F_GETFD: u32 = 1;
    pub const F_SETFD: u32 = 2;
    pub const F_GETFL: u32 = 3;
    pub const F_SETFL: u32 = 4;
    pub const F_DUPFD_CLOEXEC: u32 = 1030;

    /// `struct statfs` (x86_64): 120 bytes; type, block size, blocks,
    /// free, available, files, free files (8 bytes each), fsid (8),
    /// name length, fragment size, flags (8 each), spare.
    pub const STATFS_SIZE: usize = 120;
    /// `f_type` NeoOS's file system reports: its own ("NEOS"; it is not
    /// Linux's tmpfs, whose known faults programs test for).
    pub const NEOOS_FS_MAGIC: u64 = 0x4e45_4f53;
    /// `fcntl` descriptor flag: close on `exec`.
    pub const FD_CLOEXEC: u64 = 1;

    /// `getrlimit`/`prlimit64` resources NeoOS answers.
    pub const RLIMIT_AS: u32 = 9;
    pub const RLIMIT_MEMLOCK: u32 = 8;
    pub const RLIMIT_NLIMITS: u32 = 16;
    pub const RLIM_INFINITY: u64 = u64::MAX;

    /// `wait4` options NeoOS knows.
    pub const WNOHANG: u32 = 1;
    pub const WUNTRACED: u32 = 2;

    /// `waitid` id types and options (`WNOHANG` as above).
    pub const P_ALL: u32 = 0;
    pub const P_PID: u32 = 1;
    pub const P_PGID: u32 = 2;
    pub const WSTOPPED: u32 = 2;
    pub const WEXITED: u32 = 4;
    pub const WCONTINUED: u32 = 8;
    pub const WNOWAIT: u32 = 0x0100_0000;
    /// `si_code` of a `SIGCHLD` siginfo (`waitid`): exited, killed.
    pub const CLD_EXITED: i32 = 1;
    pub const CLD_KILLED: i32 = 2;

    /// `mlockall` flags.
    pub const MCL_CURRENT: u32 = 1;
    pub const MCL_FUTURE: u32 = 2;
    pub const MCL_ONFAULT: u32 = 4;

    /// `lseek` origins.
    pub const SEEK_SET: u32 = 0;
    pub const SEEK_CUR: u32 = 1;
    pub const SEEK_END: u32 = 2;

    /// `clock_gettime` clocks NeoOS has (all count from boot).
    pub const CLOCK_REALTIME: u32 = 0;
    pub const CLOCK_MONOTONIC: u32 = 1;
    pub const CLOCK_PROCESS_CPUTIME_ID: u32 = 2;
    pub const CLOCK_THREAD_CPUTIME_ID: u32 = 3;
    pub const CLOCK_MONOTONIC_RAW: u32 = 4;
    pub const CLOCK_REALTIME_COARSE: u32 = 5;
    pub const CLOCK_MONOTONIC_COARSE: u32 = 6;
    pub const CLOCK_BOOTTIME: u32 = 7;

    /// `getrandom` flags.
    pub const GRND_NONBLOCK: u32 = 1;
    pub const GRND_RANDOM: u32 = 2;

    /// `struct stat` (x86_64): size and field offsets.
    pub mod stat {
        pub const SIZE: usize = 144;
        pub const DEV: usize = 0;
        pub const INO: usize = 8;
        pub const NLINK: usize = 16;
        pub const MODE: usize = 24;
        pub const UID: usize = 28;
        pub const GID: usize = 32;
        pub const RDEV: usize = 40;
        pub const SIZE_FIELD: usize = 48;
        pub const BLKSIZE: usize = 56;
        pub const BLOCKS: usize = 64;
        /// `st_atim`; `st_mtim` and `st_ctim` follow, 16 bytes each.
        pub const ATIME: usize = 72;
        pub const S_IFCHR: u32 = 0o020000;
        pub const S_IFDIR: u32 = 0o040000;
        pub const S_IFREG: u32 = 0o100000;
    }

    /// `struct shmid64_ds` (x86_64, what `shmctl(IPC_STAT)` fills for a
    /// Linux program): byte offsets. `ipc64_perm` first: key (i32), uid,
    /// gid, cuid, cgid (u32 each), mode (u16 and padding), seq (u16 and
    /// padding), two unused words; then the segment's fields.
    pub mod shmid64_ds {
        pub const KEY: usize = 0;
        pub const UID: usize = 4;
        pub const GID: usize = 8;
        pub const CUID: usize = 12;
        pub const CGID: usize = 16;
        pub const MODE: usize = 20;
        pub const SEQ: usize = 24;
        pub const SEGSZ: usize = 48;
        pub const ATIME: usize = 56;
        pub const DTIME: usize = 64;
        pub const CTIME: usize = 72;
        pub const CPID: usize = 80;
        pub const LPID: usize = 84;
        pub const NATTCH: usize = 88;
        /// Size of the structure in bytes (two unused words end it).
        pub const SIZE: usize = 112;
    }

    /// `struct utsname`: six fields of this many bytes.
    pub const UTSNAME_FIELD: usize = 65;

    /// Auxiliary-vector keys.
    pub mod auxv {
        pub const AT_NULL: u64 = 0;
        pub const AT_PHDR: u64 = 3;
        pub const AT_PHENT: u64 = 4;
        pub const AT_PHNUM: u64 = 5;
        pub const AT_PAGESZ: u64 = 6;
        pub const AT_ENTRY: u64 = 9;
        pub const AT_UID: u64 = 11;
        pub const AT_EUID: u64 = 12;
        pub const AT_GID: u64 = 13;
        pub const AT_EGID: u64 = 14;
        pub const AT_HWCAP: u64 = 16;
        pub const AT_CLKTCK: u64 = 17;
        pub const AT_SECURE: u64 = 23;
        pub const AT_RANDOM: u64 = 25;
        pub const AT_EXECFN: u64 = 31;
    }
}

/// System V shared memory flags and commands.
pub mod shm {
    pub const IPC_PRIVATE: i64 = 0;
    pub const IPC_CREAT: u32 = 0o1000;
    pub const IPC_EXCL: u32 = 0o2000;
    pub const IPC_RMID: u32 = 0;
    pub const IPC_SET: u32 = 1;
    pub const IPC_STAT: u32 = 2;
    pub const SHM_RDONLY: u32 = 0o10000;
}

/// `struct shmid_ds` (`sys/shm.h`, docs/abi.md): eleven 64-bit little-endian
/// fields, filled by `shmctl(IPC_STAT)`; `IPC_SET` reads `shm_perm.mode`.
/// Each constant is a field's index; its byte offset is `8 * index`.
pub mod shmid_ds {
    pub const KEY: usize = 0;
    pub const UID: usize = 1;
    pub const GID: usize = 2;
    pub const MODE: usize = 3;
    pub const SEGSZ: usize = 4;
    pub const ATIME: usize = 5;
    pub const DTIME: usize = 6;
    pub const CTIME: usize = 7;
    pub const CPID: usize = 8;
    pub const LPID: usize = 9;
    pub const NATTCH: usize = 10;
    /// Number of fields.
    pub const FIELDS: usize = 11;
    /// Size of the structure in bytes.
    pub const SIZE: usize = FIELDS * 8;
}

/// The user half of every address space.
pub mod layout {
    /// Lowest address a mapping may use (everything below faults: NULL guard).
    pub const USER_BASE: u64 = 0x0001_0000;
    /// One past the highest user address (the canonical lower half).
    pub const USER_END: u64 = 0x0000_8000_0000_0000;
    /// Where `mmap` places mappings without a hint (growing down from here).
    pub const MMAP_TOP: u64 = 0x0000_7000_0000_0000;
    /// Top of the initial user stack.
    pub const STACK_TOP: u64 = 0x0000_7fff_fff0_0000;
    /// Size of the initial user stack.
    pub const STACK_SIZE: u64 = 256 * 1024;
}

/// Limits on what a system call accepts.
pub mod limits {
    /// Longest path, in bytes before its NUL.
    pub const PATH_MAX: usize = 255;
    /// Longest argument string `sys_run` accepts, in bytes before its NUL.
    pub const ARG_MAX: usize = 4095;
    /// Most arguments `sys_run` passes on.
    pub const ARGS_MAX: usize = 64;
    /// Largest System V shared memory segment, in bytes (`shmget` gives
    /// `EINVAL` above it, as POSIX says for the system-imposed maximum).
    pub const SHM_MAX: u64 = 1 << 32;
    /// Most System V segments alive at once (`shmget` gives `ENOSPC` then).
    pub const SHM_SEGMENTS_MAX: usize = 4096;
    /// Most live threads of one process (a thread `clone` gives `ENOMEM`,
    /// `sys_thread_create` `E_NOMEM` then): half the kernel's 128 contexts,
    /// so one process cannot take them all.
    pub const THREADS_MAX: usize = 64;
    /// Page-table pages left empty by an unmap are freed in batches: once
    /// this many unmaps are waiting, or [`PAGE_TABLE_RELEASE_ENTRIES`]
    /// entries were removed since the last batch (and at exit).
    pub const PAGE_TABLE_RELEASE_BATCH: usize = 16;
    /// Removed page-table entries that start a release batch at once: a
    /// table only becomes empty through removed entries, so a process keeps
    /// at most three emptied table pages per entry below this count.
    pub const PAGE_TABLE_RELEASE_ENTRIES: usize = 64;
    /// Most mappings one process may have: a call that would take it
    /// beyond fails with `E_NOMEM` / `ENOMEM` (as Linux's `max_map_count`).
    /// Each costs kernel heap; this keeps one process within about a third
    /// of it, and fits the benchmark's 100,000.
    pub const MAPPINGS_MAX: usize = 131_072;
}

/// `struct neo_stat` filled by `sys_stat` (all fields 64-bit).
pub mod stat {
    pub const KIND_FILE: u64 = 1;
    pub const KIND_DIR: u64 = 2;
}

/// `struct neo_meminfo` filled by `sys_meminfo` (all fields 64-bit, in this order):
/// total frames, free frames, mappings of the caller, resident pages of the caller,
/// writeback requests, writeback bytes, single-page TLB flushes, full TLB flushes,
/// disk device requests, disk completion interrupts, TLB shootdown IPIs,
/// single-page invalidations asked of other CPUs, full flushes asked of other
/// CPUs, wake-up IPIs.
pub const MEMINFO_FIELDS: usize = 14;

/// Exit status the kernel reports for a process ended by a fault it caused.
pub mod status {
    /// Killed by a segmentation fault (bad access to memory).
    pub const SEGFAULT: i64 = 139;
    /// Killed by a bus error (access past the end of a mapped file).
    pub const BUSERROR: i64 = 135;
    /// Killed by `sys_kill`.
    pub const KILLED: i64 = 137;
    /// Killed for another CPU exception (invalid opcode, divide error, ...).
    pub const CRASHED: i64 = 134;
}

/// Signals, for both personalities: numbers (x86_64 Linux), `sigaction`
/// flags and handler values, `sigprocmask` hows, `si_code`s, and the
/// layout the kernel reads (`struct sigaction`: handler, flags, restorer,
/// mask; 8 bytes each). NeoOS programs use the same values through
/// libneo's `signal.h`.
pub mod signal {
    pub const SIGHUP: u32 = 1;
    pub const SIGINT: u32 = 2;
    pub const SIGQUIT: u32 = 3;
    pub const SIGILL: u32 = 4;
    pub const SIGTRAP: u32 = 5;
    pub const SIGABRT: u32 = 6;
    pub const SIGBUS: u32 = 7;
    pub const SIGFPE: u32 = 8;
    pub const SIGKILL: u32 = 9;
    pub const SIGUSR1: u32 = 10;
    pub const SIGSEGV: u32 = 11;
    pub const SIGUSR2: u32 = 12;
    pub const SIGPIPE: u32 = 13;
    pub const SIGALRM: u32 = 14;
    pub const SIGTERM: u32 = 15;
    pub const SIGSTKFLT: u32 = 16;
    pub const SIGCHLD: u32 = 17;
    pub const SIGCONT: u32 = 18;
    pub const SIGSTOP: u32 = 19;
    pub const SIGTSTP: u32 = 20;
    pub const SIGTTIN: u32 = 21;
    pub const SIGTTOU: u32 = 22;
    pub const SIGURG: u32 = 23;
    pub const SIGXCPU: u32 = 24;
    pub const SIGXFSZ: u32 = 25;
    pub const SIGVTALRM: u32 = 26;
    pub const SIGPROF: u32 = 27;
    pub const SIGWINCH: u32 = 28;
    pub const SIGIO: u32 = 29;
    pub const SIGPWR: u32 = 30;
    pub const SIGSYS: u32 = 31;
    /// Signals are numbered 1..=64.
    pub const NSIG: u32 = 64;

    /// `sa_flags` bits NeoOS honours.
    pub const SA_NOCLDSTOP: u64 = 1;
    pub const SA_NOCLDWAIT: u64 = 2;
    pub const SA_SIGINFO: u64 = 4;
    pub const SA_ONSTACK: u64 = 0x0800_0000;
    pub const SA_RESTART: u64 = 0x1000_0000;
    pub const SA_RESTORER: u64 = 0x0400_0000;
    pub const SA_NODEFER: u64 = 0x4000_0000;
    pub const SA_RESETHAND: u64 = 0x8000_0000;
    /// `sa_handler` values.
    pub const SIG_DFL: u64 = 0;
    pub const SIG_IGN: u64 = 1;
    /// `sigprocmask` hows.
    pub const SIG_BLOCK: u32 = 0;
    pub const SIG_UNBLOCK: u32 = 1;
    pub const SIG_SETMASK: u32 = 2;

    /// `si_code` values.
    pub const SI_USER: i32 = 0;
    pub const SI_KERNEL: i32 = 0x80;
    pub const SI_TKILL: i32 = -6;
    pub const SEGV_MAPERR: i32 = 1;
    pub const SEGV_ACCERR: i32 = 2;
    pub const BUS_ADRERR: i32 = 2;
    /// SIGCHLD's: the child exited, was killed, or was killed and dumped.
    pub const CLD_EXITED: i32 = 1;
    pub const CLD_KILLED: i32 = 2;
    pub const CLD_DUMPED: i32 = 3;

    /// `struct sigaction` as the kernel reads it.
    pub const SIGACTION_SIZE: usize = 32;

    /// `setitimer`/`getitimer` timers.
    pub const ITIMER_REAL: u32 = 0;
    pub const ITIMER_VIRTUAL: u32 = 1;
    pub const ITIMER_PROF: u32 = 2;
}

/// Every value that the C header `name` must define, by name.
pub fn c_header_table(name: &str) -> &'static [(&'static str, i64)] {
    match name {
        "error.h" => ERROR_H,
        "syscalls.h" => SYSCALLS_H,
        "sys/mman.h" => MMAN_H,
        "sys/shm.h" => SHM_H,
        "errno.h" => ERRNO_H,
        "signal.h" => SIGNAL_H,
        _ => &[],
    }
}

/// The headers checked by [`c_header_table`].
pub const C_HEADERS: &[&str] = &[
    "error.h",
    "syscalls.h",
    "sys/mman.h",
    "sys/shm.h",
    "errno.h",
    "signal.h",
];

const ERROR_H: &[(&str, i64)] = &[
    ("E_OK", neo::E_OK),
    ("E_UNKNOWN", neo::E_UNKNOWN),
    ("E_NOMEM", neo::E_NOMEM),
    ("E_INVAL", neo::E_INVAL),
    ("E_NOENT", neo::E_NOENT),
    ("E_EXISTS", neo::E_EXISTS),
    ("E_BUSY", neo::E_BUSY),
    ("E_IO", neo::E_IO),
    ("E_PERM", neo::E_PERM),
    ("E_TIMEOUT", neo::E_TIMEOUT),
    ("E_MODULE_ERR", neo::E_MODULE_ERR),
    ("E_NOT_IMPL", neo::E_NOT_IMPL),
    ("E_NOT_SUPPORTED", neo::E_NOT_SUPPORTED),
];

const SYSCALLS_H: &[(&str, i64)] = &[
    ("SYS_EXIT", nr::EXIT as i64),
    ("SYS_WRITE", nr::WRITE as i64),
    ("SYS_READ", nr::READ as i64),
    ("SYS_OPEN", nr::OPEN as i64),
    ("SYS_CLOSE", nr::CLOSE as i64),
    ("SYS_NEO_MMAP", nr::NEO_MMAP as i64),
    ("SYS_NEO_MUNMAP", nr::NEO_MUNMAP as i64),
    ("SYS_RUN", nr::RUN as i64),
    ("SYS_WAIT", nr::WAIT as i64),
    ("SYS_KILL", nr::KILL as i64),
    ("SYS_YIELD", nr::YIELD as i64),
    ("SYS_STAT", nr::STAT as i64),
    ("SYS_MEMINFO", nr::MEMINFO as i64),
    ("SYS_MAPS", nr::MAPS as i64),
    ("SYS_GETPID", nr::GETPID as i64),
    ("SYS_FSYNC", nr::FSYNC as i64),
    ("SYS_READDIR", nr::READDIR as i64),
    ("SYS_READ_CONSOLE", nr::READ_CONSOLE as i64),
    ("SYS_TICKS", nr::TICKS as i64),
    ("SYS_MMAP", nr::MMAP as i64),
    ("SYS_MUNMAP", nr::MUNMAP as i64),
    ("SYS_MSYNC", nr::MSYNC as i64),
    ("SYS_MPROTECT", nr::MPROTECT as i64),
    ("SYS_MADVISE", nr::MADVISE as i64),
    ("SYS_MINCORE", nr::MINCORE as i64),
    ("SYS_GETPAGESIZE", nr::GETPAGESIZE as i64),
    ("SYS_SHMGET", nr::SHMGET as i64),
    ("SYS_SHMAT", nr::SHMAT as i64),
    ("SYS_SHMDT", nr::SHMDT as i64),
    ("SYS_SHMCTL", nr::SHMCTL as i64),
    ("SYS_FORK", nr::FORK as i64),
    ("SYS_THREAD_CREATE", nr::THREAD_CREATE as i64),
    ("SYS_THREAD_EXIT", nr::THREAD_EXIT as i64),
    ("SYS_THREAD_JOIN", nr::THREAD_JOIN as i64),
    ("SYS_SIGACTION", nr::SIGACTION as i64),
    ("SYS_SIGPROCMASK", nr::SIGPROCMASK as i64),
    ("SYS_SIGRETURN", nr::SIGRETURN as i64),
    ("SYS_SIGNAL", nr::SIGNAL as i64),
    ("O_RDONLY", open::O_RDONLY as i64),
    ("O_WRONLY", open::O_WRONLY as i64),
    ("O_RDWR", open::O_RDWR as i64),
    ("O_CREAT", open::O_CREAT as i64),
    ("O_EXCL", open::O_EXCL as i64),
    ("O_TRUNC", open::O_TRUNC as i64),
    ("O_APPEND", open::O_APPEND as i64),
    ("STDIN", fd::STDIN),
    ("STDOUT", fd::STDOUT),
    ("STDERR", fd::STDERR),
    ("NEO_PAGE_SIZE", PAGE_SIZE as i64),
    ("NEO_USER_BASE", layout::USER_BASE as i64),
    ("NEO_USER_END", layout::USER_END as i64),
    ("NEO_MAPPINGS_MAX", limits::MAPPINGS_MAX as i64),
    ("NEO_STAT_FILE", stat::KIND_FILE as i64),
    ("NEO_STAT_DIR", stat::KIND_DIR as i64),
    ("NEO_STATUS_SEGFAULT", status::SEGFAULT),
    ("NEO_STATUS_BUSERROR", status::BUSERROR),
    ("NEO_STATUS_KILLED", status::KILLED),
    ("NEO_STATUS_CRASHED", status::CRASHED),
];

const MMAN_H: &[(&str, i64)] = &[
    ("PROT_NONE", mman::PROT_NONE as i64),
    ("PROT_READ", mman::PROT_READ as i64),
    ("PROT_WRITE", mman::PROT_WRITE as i64),
    ("PROT_EXEC", mman::PROT_EXEC as i64),
    ("MAP_SHARED", mman::MAP_SHARED as i64),
    ("MAP_PRIVATE", mman::MAP_PRIVATE as i64),
    ("MAP_FIXED", mman::MAP_FIXED as i64),
    ("MAP_ANON", mman::MAP_ANON as i64),
    ("MAP_ANONYMOUS", mman::MAP_ANON as i64),
    ("MS_ASYNC", mman::MS_ASYNC as i64),
    ("MS_INVALIDATE", mman::MS_INVALIDATE as i64),
    ("MS_SYNC", mman::MS_SYNC as i64),
    ("MADV_NORMAL", mman::MADV_NORMAL as i64),
    ("MADV_RANDOM", mman::MADV_RANDOM as i64),
    ("MADV_SEQUENTIAL", mman::MADV_SEQUENTIAL as i64),
    ("MADV_WILLNEED", mman::MADV_WILLNEED as i64),
    ("MADV_DONTNEED", mman::MADV_DONTNEED as i64),
];

const SHM_H: &[(&str, i64)] = &[
    ("IPC_PRIVATE", shm::IPC_PRIVATE),
    ("IPC_CREAT", shm::IPC_CREAT as i64),
    ("IPC_EXCL", shm::IPC_EXCL as i64),
    ("IPC_RMID", shm::IPC_RMID as i64),
    ("IPC_SET", shm::IPC_SET as i64),
    ("IPC_STAT", shm::IPC_STAT as i64),
    ("SHM_RDONLY", shm::SHM_RDONLY as i64),
];

const ERRNO_H: &[(&str, i64)] = &[
    ("EPERM", errno::EPERM),
    ("ENOENT", errno::ENOENT),
    ("ESRCH", errno::ESRCH),
    ("EIO", errno::EIO),
    ("EBADF", errno::EBADF),
    ("ECHILD", errno::ECHILD),
    ("EAGAIN", errno::EAGAIN),
    ("ENOMEM", errno::ENOMEM),
    ("EACCES", errno::EACCES),
    ("EFAULT", errno::EFAULT),
    ("EEXIST", errno::EEXIST),
    ("ENODEV", errno::ENODEV),
    ("EINVAL", errno::EINVAL),
    ("ENOSPC", errno::ENOSPC),
    ("ENOSYS", errno::ENOSYS),
    ("EOVERFLOW", errno::EOVERFLOW),
    ("EINTR", errno::EINTR),
];

const SIGNAL_H: &[(&str, i64)] = &[
    ("SIGHUP", signal::SIGHUP as i64),
    ("SIGINT", signal::SIGINT as i64),
    ("SIGQUIT", signal::SIGQUIT as i64),
    ("SIGILL", signal::SIGILL as i64),
    ("SIGTRAP", signal::SIGTRAP as i64),
    ("SIGABRT", signal::SIGABRT as i64),
    ("SIGBUS", signal::SIGBUS as i64),
    ("SIGFPE", signal::SIGFPE as i64),
    ("SIGKILL", signal::SIGKILL as i64),
    ("SIGUSR1", signal::SIGUSR1 as i64),
    ("SIGSEGV", signal::SIGSEGV as i64),
    ("SIGUSR2", signal::SIGUSR2 as i64),
    ("SIGPIPE", signal::SIGPIPE as i64),
    ("SIGALRM", signal::SIGALRM as i64),
    ("SIGTERM", signal::SIGTERM as i64),
    ("SIGSTKFLT", signal::SIGSTKFLT as i64),
    ("SIGCHLD", signal::SIGCHLD as i64),
    ("SIGCONT", signal::SIGCONT as i64),
    ("SIGSTOP", signal::SIGSTOP as i64),
    ("SIGTSTP", signal::SIGTSTP as i64),
    ("SIGTTIN", signal::SIGTTIN as i64),
    ("SIGTTOU", signal::SIGTTOU as i64),
    ("SIGURG", signal::SIGURG as i64),
    ("SIGXCPU", signal::SIGXCPU as i64),
    ("SIGXFSZ", signal::SIGXFSZ as i64),
    ("SIGVTALRM", signal::SIGVTALRM as i64),
    ("SIGPROF", signal::SIGPROF as i64),
    ("SIGWINCH", signal::SIGWINCH as i64),
    ("SIGIO", signal::SIGIO as i64),
    ("SIGPWR", signal::SIGPWR as i64),
    ("SIGSYS", signal::SIGSYS as i64),
    ("NSIG", signal::NSIG as i64),
    ("SA_NOCLDSTOP", signal::SA_NOCLDSTOP as i64),
    ("SA_NOCLDWAIT", signal::SA_NOCLDWAIT as i64),
    ("SA_SIGINFO", signal::SA_SIGINFO as i64),
    ("SA_ONSTACK", signal::SA_ONSTACK as i64),
    ("SA_RESTART", signal::SA_RESTART as i64),
    ("SA_RESTORER", signal::SA_RESTORER as i64),
    ("SA_NODEFER", signal::SA_NODEFER as i64),
    ("SA_RESETHAND", signal::SA_RESETHAND as i64),
    ("SIG_BLOCK", signal::SIG_BLOCK as i64),
    ("SIG_UNBLOCK", signal::SIG_UNBLOCK as i64),
    ("SIG_SETMASK", signal::SIG_SETMASK as i64),
    ("SI_USER", signal::SI_USER as i64),
    ("SI_KERNEL", signal::SI_KERNEL as i64),
    ("SEGV_MAPERR", signal::SEGV_MAPERR as i64),
    ("SEGV_ACCERR", signal::SEGV_ACCERR as i64),
    ("BUS_ADRERR", signal::BUS_ADRERR as i64),
    ("CLD_EXITED", signal::CLD_EXITED as i64),
    ("CLD_KILLED", signal::CLD_KILLED as i64),
    ("CLD_DUMPED", signal::CLD_DUMPED as i64),
];
