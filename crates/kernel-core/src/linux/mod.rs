//! The Linux personality: which programs are Linux programs (no NeoOS ELF
//! note), their per-process state (FS base, program break), the Linux
//! numbering as one more decode table onto the same call families, and the
//! Linux-only calls (`arch_prctl`, `brk`, `writev`, `ioctl`, `fstat`,
//! `uname`, `clock_gettime`, `getrandom`, ...) in [`calls`]. Results are
//! `-errno`.

mod calls;
pub mod exec;
#[cfg(test)]
mod exec_tests;
#[cfg(test)]
mod fs_tests;
#[cfg(test)]
mod kernel_tests;
pub mod locks;
#[cfg(test)]
mod memory_tests;
pub mod meta;
mod more_calls;
pub(crate) use more_calls::{address_space_limit, address_space_room_check};
mod namespace;
mod poll;
#[cfg(test)]
mod poll_tests;
pub mod procfs;
pub mod program;
#[cfg(test)]
mod signal_tests;
pub mod signals;
pub mod stack;

pub(crate) use calls::decode_for;
pub use calls::UnknownCalls;
pub use more_calls::{killed_by, wait_status};

use neoos_abi::errno;
use neoos_abi::linux::nr;

use crate::syscall::{
    Call, Decoded, FileCall, IpcCall, MemoryCall, Personality, ProcessCall, ShmLayout, UserPtr,
};

/// Which system-call interface a process uses, fixed when it is loaded.
// A process record is a heap node either way, and keeping the Linux state
// `Copy` with no allocation of its own means a fork copies it without a
// fallible step. (The signal state, for both personalities, is the
// process's: `Process::signals`.)
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramAbi {
    /// Built with libneo (it carries the NeoOS ELF note): NeoOS numbers.
    Neo,
    /// Any other static x86_64 program: Linux numbers, with its state.
    Linux(LinuxState),
}

/// The part of a process's state each of its threads has its own of:
/// signal mask, alternate signal stack, the mask `rt_sigsuspend` replaced,
/// FS base (`arch_prctl(ARCH_SET_FS)`, `CLONE_SETTLS`: the thread pointer;
/// 0 for NeoOS programs). Kept on the thread (`crate::process::Thread`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadPart {
    pub fs_base: u64,
    pub blocked: u64,
    pub altstack: signals::AltStack,
    pub saved_mask: Option<u64>,
}

/// What the kernel keeps for a Linux process besides its memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinuxState {
    /// The file-creation mask (`umask`).
    pub umask: u32,
    /// User and group ids (every program starts as root).
    pub ids: Credentials,
    /// The memory it locked (`mlock`, `mlockall`).
    pub locks: locks::MemoryLocks,
    /// The limits `setrlimit` may change: address space and locked memory.
    pub limits: Limits,
}

/// The resource limits NeoOS honours per process: `(soft, hard)` each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `RLIMIT_AS`: bytes of mappings (and break) the process may hold.
    pub address_space: (u64, u64),
    /// `RLIMIT_MEMLOCK`: bytes it may lock (root locks beyond it).
    pub memlock: (u64, u64),
}

impl Default for Limits {
    fn default() -> Self {
        let infinity = neoos_abi::linux::RLIM_INFINITY;
        Limits {
            address_space: (infinity, infinity),
            memlock: (0, 0),
        }
    }
}

impl Default for LinuxState {
    /// The state of a freshly loaded program (its program break is its
    /// address space's: `neoos_mm::ProgramBreak`).
    fn default() -> Self {
        LinuxState {
            umask: 0o022,
            ids: Credentials::default(),
            locks: locks::MemoryLocks::default(),
            limits: Limits::default(),
        }
    }
}

/// A Linux error the mapping core's `Errno` has no name for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinuxError {
    /// The call is not implemented (`ENOSYS`).
    NoSys,
    /// The descriptor is not a terminal (`ENOTTY`).
    NotTty,
    /// The descriptor cannot seek (`ESPIPE`).
    IllegalSeek,
    /// A relative path given with a descriptor that is no directory
    /// (`ENOTDIR`: NeoOS has no directory descriptors).
    NotDir,
    /// The caller has no child to wait for (`ECHILD`).
    NoChild,
    /// No such process (`ESRCH`).
    NoProcess,
    /// The path names a directory (`EISDIR`).
    IsDir,
    /// The call was interrupted by a signal (`EINTR`).
    Interrupted,
    /// The caller's descriptor table is full (`EMFILE`).
    TooManyFiles,
    /// The range is locked (`EBUSY`: `msync` with `MS_INVALIDATE`), or
    /// the path is a mount point.
    Busy,
    /// The futex word no longer holds the expected value (`EAGAIN`).
    TryAgain,
    /// A futex wait's time ran out (`ETIMEDOUT`).
    TimedOut,
    /// The directory is not empty (`ENOTEMPTY`).
    NotEmpty,
    /// A path or a name in it is too long (`ENAMETOOLONG`).
    NameTooLong,
    /// A rename between file systems (`EXDEV`).
    CrossDevice,
    /// The buffer is too small for the answer (`ERANGE`).
    Range,
    /// `execve`'s arguments and environment exceed its limit (`E2BIG`).
    TooBig,
    /// `execve` of a file that is no program NeoOS can run (`ENOEXEC`).
    NoExec,
}

impl LinuxError {
    /// The value returned in `rax`: `-errno`.
    pub fn result(self) -> i64 {
        -match self {
            LinuxError::NoSys => errno::ENOSYS,
            LinuxError::NotTty => errno::ENOTTY,
            LinuxError::IllegalSeek => errno::ESPIPE,
            LinuxError::NotDir => errno::ENOTDIR,
            LinuxError::NoChild => errno::ECHILD,
            LinuxError::NoProcess => errno::ESRCH,
            LinuxError::IsDir => errno::EISDIR,
            LinuxError::Interrupted => errno::EINTR,
            LinuxError::TooManyFiles => errno::EMFILE,
            LinuxError::Busy => errno::EBUSY,
            LinuxError::TryAgain => errno::EAGAIN,
            LinuxError::TimedOut => errno::ETIMEDOUT,
            LinuxError::NotEmpty => errno::ENOTEMPTY,
            LinuxError::NameTooLong => errno::ENAMETOOLONG,
            LinuxError::CrossDevice => errno::EXDEV,
            LinuxError::Range => errno::ERANGE,
            LinuxError::TooBig => errno::E2BIG,
            LinuxError::NoExec => errno::ENOEXEC,
        }
    }
}

/// A Linux call with no NeoOS equivalent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinuxCall {
    ArchPrctl {
        code: u64,
        addr: u64,
    },
    SetTidAddress {
        tidptr: UserPtr,
    },
    Brk {
        addr: u64,
    },
    Open {
        dirfd: i64,
        path: UserPtr,
        flags: u32,
        /// The permission bits of a file it creates.
        perm: u32,
    },
    Writev {
        fd: i64,
        iov: UserPtr,
        count: i64,
    },
    /// `readv`, or `preadv` from offset `at` (the position kept).
    Readv {
        fd: i64,
        iov: UserPtr,
        count: i64,
        at: Option<i64>,
    },
    Lseek {
        fd: i64,
        offset: i64,
        whence: u32,
    },
    Ioctl {
        fd: i64,
        request: u64,
        arg: UserPtr,
    },
    Fstat {
        fd: i64,
        out: UserPtr,
    },
    Stat {
        path: UserPtr,
        out: UserPtr,
    },
    FstatAt {
        dirfd: i64,
        path: UserPtr,
        out: UserPtr,
        flags: u32,
    },
    /// `getuid`, `geteuid`, `getgid`, `getegid`.
    Identity {
        which: IdWhich,
    },
    /// `setresuid`/`setresgid` (and `setuid`, `setreuid`, ... through
    /// them); `u32::MAX` leaves an id as it is.
    SetIds {
        group: bool,
        /// `setuid`/`setgid`: root sets all three, others the effective one.
        single: bool,
        real: u32,
        effective: u32,
        saved: u32,
    },
    GetResIds {
        group: bool,
        out: [UserPtr; 3],
    },
    GetPpid,
    /// `sync`: every file's dirty pages written.
    Sync,
    Uname {
        buf: UserPtr,
    },
    /// `sched_getaffinity`: the CPUs thread `pid` (0: the caller) may run
    /// on, as a mask of `len` bytes at most.
    SchedGetAffinity {
        pid: i64,
        len: u64,
        mask: UserPtr,
    },
    ClockGetTime {
        clock: u32,
        out: UserPtr,
    },
    GetRandom {
        buf: UserPtr,
        len: u64,
        flags: u32,
    },
    SigAction {
        sig: u32,
        act: UserPtr,
        old: UserPtr,
        setsize: u64,
    },
    SigProcMask {
        how: u32,
        set: UserPtr,
        old: UserPtr,
        setsize: u64,
    },
    SigAltStack {
        ss: UserPtr,
        old: UserPtr,
    },
    SigReturn,
    Kill {
        pid: i64,
        sig: u32,
    },
    /// `tkill` (`tgid` `None`) and `tgkill`: a signal to one thread.
    TgKill {
        tgid: Option<i64>,
        tid: i64,
        sig: u32,
    },
    /// `clone`; with `CLONE_THREAD`, a thread (`crate::threads`).
    Clone(crate::threads::CloneArgs),
    /// `futex(uaddr, op, val, timeout or val2, uaddr2, val3)`.
    Futex {
        uaddr: UserPtr,
        op: u32,
        val: u32,
        timeout: u64,
        uaddr2: UserPtr,
        val3: u32,
    },
    Wait4 {
        pid: i64,
        status: UserPtr,
        options: u32,
        rusage: UserPtr,
    },
    Nanosleep {
        req: UserPtr,
        rem: UserPtr,
    },
    /// `pause`: sleeps until a signal is taken (`EINTR`).
    Pause,
    /// `rt_sigsuspend`: sleeps with this mask until a signal is taken.
    SigSuspend {
        mask: UserPtr,
        setsize: u64,
    },
    Alarm {
        seconds: u32,
    },
    SetItimer {
        which: u32,
        new: UserPtr,
        old: UserPtr,
    },
    GetItimer {
        which: u32,
        out: UserPtr,
    },
    ClockNanosleep {
        clock: u32,
        flags: u32,
        req: UserPtr,
        rem: UserPtr,
    },
    Ftruncate {
        fd: i64,
        len: i64,
    },
    Unlink {
        dirfd: i64,
        path: UserPtr,
        flags: u32,
    },
    Fcntl {
        fd: i64,
        cmd: u32,
        arg: u64,
    },
    Statfs {
        path: UserPtr,
        out: UserPtr,
    },
    Fstatfs {
        fd: i64,
        out: UserPtr,
    },
    /// `mlock`/`munlock`: every page of NeoOS stays in memory (there is no
    /// swap), so locking checks the range and counts against
    /// RLIMIT_MEMLOCK only.
    Mlock {
        addr: u64,
        len: u64,
        lock: bool,
    },
    Mlockall {
        flags: u32,
    },
    Munlockall,
    Dup {
        fd: i64,
    },
    Dup2 {
        old: i64,
        new: i64,
        flags: u32,
    },
    GetRlimit {
        resource: u32,
        out: UserPtr,
    },
    Prlimit {
        pid: i64,
        resource: u32,
        new: UserPtr,
        old: UserPtr,
    },
    Umask {
        mask: u32,
    },
    Pipe {
        fds: UserPtr,
        flags: u32,
    },
    /// `msync`: `EBUSY` for a locked range with `MS_INVALIDATE`, else the
    /// memory family's.
    Msync {
        addr: u64,
        len: u64,
        flags: u32,
    },
    /// `munmap`: the range is no longer locked; then the memory family's.
    Munmap {
        addr: u64,
        len: u64,
    },
    /// `mremap(old, old_len, new_len, flags, new)`: the mapping core's
    /// `mremap`; a locked old range leaves its lock on the new one.
    Mremap {
        old: u64,
        old_len: u64,
        new_len: u64,
        flags: u32,
        new: u64,
    },
    /// `pread64`/`pwrite64`: at `offset`, the descriptor's position kept.
    PreadWrite {
        fd: i64,
        buf: UserPtr,
        count: i64,
        offset: i64,
        write: bool,
    },
    Getdents {
        fd: i64,
        buf: UserPtr,
        count: u64,
    },
    Getcwd {
        buf: UserPtr,
        size: u64,
    },
    Chdir {
        path: UserPtr,
    },
    Fchdir {
        fd: i64,
    },
    Mkdir {
        dirfd: i64,
        path: UserPtr,
        mode: u32,
    },
    /// `rename`, `renameat`, `renameat2`.
    Rename {
        old_dirfd: i64,
        old: UserPtr,
        new_dirfd: i64,
        new: UserPtr,
        flags: u32,
    },
    /// `access`, `faccessat`, `faccessat2`.
    Access {
        dirfd: i64,
        path: UserPtr,
        mode: u32,
        flags: u32,
    },
    /// `chmod`, `fchmodat`.
    Chmod {
        dirfd: i64,
        path: UserPtr,
        mode: u32,
    },
    Fchmod {
        fd: i64,
        mode: u32,
    },
    Truncate {
        path: UserPtr,
        len: i64,
    },
    /// `readlink`, `readlinkat`.
    Readlink {
        dirfd: i64,
        path: UserPtr,
        buf: UserPtr,
        size: i64,
    },
    Time {
        out: UserPtr,
    },
    GetTimeOfDay {
        tv: UserPtr,
        tz: UserPtr,
    },
    Utimensat {
        dirfd: i64,
        path: UserPtr,
        times: UserPtr,
        flags: u32,
    },
    /// `execve`: `path`, the NULL-ended `argv` and `envp` vectors.
    Execve {
        path: UserPtr,
        argv: UserPtr,
        envp: UserPtr,
    },
    /// `waitid(idtype, id, infop, options)` (the `rusage` pointer is
    /// ignored: NeoOS keeps no usage figures).
    Waitid {
        idtype: u32,
        id: i64,
        info: UserPtr,
        options: u32,
    },
    /// `poll(fds, nfds, timeout)`: `timeout_ms` negative waits for ever.
    Poll {
        fds: UserPtr,
        nfds: u64,
        timeout_ms: i64,
    },
    /// `ppoll(fds, nfds, timeout, sigmask)` (the set size is not read).
    Ppoll {
        fds: UserPtr,
        nfds: u64,
        timeout: UserPtr,
        sigmask: UserPtr,
    },
    /// A call NeoOS knows and does not provide (`set_robust_list`, `rseq`,
    /// signals): `ENOSYS`, without a log line.
    NotProvided,
    /// A number NeoOS does not know: `ENOSYS`, logged once per number.
    Unknown {
        number: usize,
    },
}

/// Which identity `getuid` and its kin return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdWhich {
    Uid,
    Euid,
    Gid,
    Egid,
}

/// A process's user and group ids: real, effective, saved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub uid: [u32; 3],
    pub gid: [u32; 3],
}

impl Credentials {
    /// The effective user id.
    pub fn euid(&self) -> u32 {
        self.uid[1]
    }
    /// The effective group id.
    pub fn egid(&self) -> u32 {
        self.gid[1]
    }
}

/// Linux `mmap` flags NeoOS accepts and ignores: hints about reservation,
/// stack use and pre-faulting that change no result.
const MMAP_IGNORED_FLAGS: u32 = 0x4000 /* NORESERVE */ | 0x8000 /* POPULATE */ | 0x20000 /* STACK */;

/// Marks a [`LinuxCall::Dup2`] that came from `dup3` (whose flags are
/// checked, and which refuses equal descriptors): a bit no open flag uses.
pub const DUP3_MARK: u32 = 1 << 31;

/// Argument `i` as a C `int` (low 32 bits, sign-extended).
fn int(regs: &[u64; 6], i: usize) -> i64 {
    regs[i] as u32 as i32 as i64
}

/// Argument `i` as a `size_t` count, capped to `i64::MAX`.
fn size(regs: &[u64; 6], i: usize) -> i64 {
    regs[i].min(i64::MAX as u64) as i64
}

/// Decodes Linux call `number` with argument registers `regs`. Every
/// number decodes (unknown ones to [`LinuxCall::Unknown`]); results are
/// `-errno`.
pub fn decode_linux(number: usize, regs: [u64; 6]) -> Decoded {
    let r = &regs;
    let ptr = |i: usize| UserPtr(regs[i]);
    use Call::{Files as F, Linux as L, Memory as M, Processes as P};
    let call = match number {
        nr::READ => F(FileCall::Read {
            fd: int(r, 0),
            buf: ptr(1),
            count: size(r, 2),
        }),
        nr::WRITE => F(FileCall::Write {
            fd: int(r, 0),
            buf: ptr(1),
            count: size(r, 2),
        }),
        nr::OPEN => L(LinuxCall::Open {
            dirfd: neoos_abi::linux::AT_FDCWD,
            path: ptr(0),
            flags: r[1] as u32,
            perm: r[2] as u32,
        }),
        nr::OPENAT => L(LinuxCall::Open {
            dirfd: int(r, 0),
            path: ptr(1),
            flags: r[2] as u32,
            perm: r[3] as u32,
        }),
        nr::CLOSE => F(FileCall::Close { fd: int(r, 0) }),
        nr::STAT | nr::LSTAT => L(LinuxCall::Stat {
            path: ptr(0),
            out: ptr(1),
        }),
        nr::FSTAT => L(LinuxCall::Fstat {
            fd: int(r, 0),
            out: ptr(1),
        }),
        nr::NEWFSTATAT => L(LinuxCall::FstatAt {
            dirfd: int(r, 0),
            path: ptr(1),
            out: ptr(2),
            flags: r[3] as u32,
        }),
        nr::LSEEK => L(LinuxCall::Lseek {
            fd: int(r, 0),
            offset: r[1] as i64,
            whence: r[2] as u32,
        }),
        nr::MMAP => M(MemoryCall::Mmap {
            addr: r[0],
            len: r[1],
            prot: r[2] as u32,
            flags: r[3] as u32 & !MMAP_IGNORED_FLAGS,
            fd: int(r, 4),
            offset: r[5] as i64,
        }),
        nr::MPROTECT => M(MemoryCall::Mprotect {
            addr: r[0],
            len: r[1],
            prot: r[2] as u32,
        }),
        nr::MUNMAP => L(LinuxCall::Munmap {
            addr: r[0],
            len: r[1],
        }),
        nr::MSYNC => L(LinuxCall::Msync {
            addr: r[0],
            len: r[1],
            flags: r[2] as u32,
        }),
        nr::MINCORE => M(MemoryCall::Mincore {
            addr: r[0],
            len: r[1],
            vec: ptr(2),
        }),
        nr::MADVISE => M(MemoryCall::Madvise {
            addr: r[0],
            len: r[1],
            advice: r[2] as u32,
        }),
        nr::MREMAP => L(LinuxCall::Mremap {
            old: r[0],
            old_len: r[1],
            new_len: r[2],
            flags: r[3] as u32,
            new: r[4],
        }),
        // System V shared memory: the NeoOS handlers, ids and keys as C
        // `int`s, `shmctl` with Linux's `struct shmid64_ds`.
        nr::SHMGET => Call::Ipc(IpcCall::ShmGet {
            key: int(r, 0),
            size: r[1],
            flags: r[2] as u32 as u64,
        }),
        nr::SHMAT => Call::Ipc(IpcCall::ShmAt {
            id: r[0] as u32 as u64,
            addr: r[1],
            flags: r[2] as u32,
        }),
        nr::SHMDT => Call::Ipc(IpcCall::ShmDt { addr: r[0] }),
        nr::SHMCTL => Call::Ipc(IpcCall::ShmCtl {
            id: r[0] as u32 as u64,
            cmd: r[1] as u32,
            buf: ptr(2),
            layout: ShmLayout::Linux,
        }),
        nr::BRK => L(LinuxCall::Brk { addr: r[0] }),
        nr::IOCTL => L(LinuxCall::Ioctl {
            fd: int(r, 0),
            request: r[1] as u32 as u64,
            arg: ptr(2),
        }),
        nr::READV | nr::PREADV => L(LinuxCall::Readv {
            fd: int(r, 0),
            iov: ptr(1),
            count: int(r, 2),
            // A 64-bit offset is the low word alone (`pos_l`).
            at: (number == nr::PREADV).then_some(r[3] as i64),
        }),
        nr::WRITEV => L(LinuxCall::Writev {
            fd: int(r, 0),
            iov: ptr(1),
            count: int(r, 2),
        }),
        nr::SCHED_YIELD => P(ProcessCall::Yield),
        nr::GETPID => P(ProcessCall::GetPid),
        nr::GETTID => P(ProcessCall::GetTid),
        nr::CLONE => L(LinuxCall::Clone(crate::threads::CloneArgs {
            flags: r[0],
            stack: r[1],
            parent_tid: ptr(2),
            child_tid: ptr(3),
            tls: r[4],
        })),
        nr::FUTEX => L(LinuxCall::Futex {
            uaddr: ptr(0),
            op: r[1] as u32,
            val: r[2] as u32,
            timeout: r[3],
            uaddr2: ptr(4),
            val3: r[5] as u32,
        }),
        nr::GETPPID => L(LinuxCall::GetPpid),
        // vfork is fork: the child gets its own copy-on-write space, so
        // the parent need not wait for the child's exec or exit.
        nr::FORK | nr::VFORK => P(ProcessCall::Fork),
        nr::EXECVE => L(LinuxCall::Execve {
            path: ptr(0),
            argv: ptr(1),
            envp: ptr(2),
        }),
        nr::WAITID => L(LinuxCall::Waitid {
            idtype: r[0] as u32,
            id: int(r, 1),
            info: ptr(2),
            options: r[3] as u32,
        }),
        nr::EXIT => P(ProcessCall::ThreadExit {
            status: int(r, 0) & 0xff,
        }),
        nr::EXIT_GROUP => P(ProcessCall::Exit {
            status: int(r, 0) & 0xff,
        }),
        nr::UNAME => L(LinuxCall::Uname { buf: ptr(0) }),
        nr::SCHED_GETAFFINITY => L(LinuxCall::SchedGetAffinity {
            pid: int(r, 0),
            len: r[1],
            mask: ptr(2),
        }),
        nr::SYNC => L(LinuxCall::Sync),
        nr::FSYNC => F(FileCall::Fsync { fd: int(r, 0) }),
        nr::GETUID => L(LinuxCall::Identity {
            which: IdWhich::Uid,
        }),
        nr::GETEUID => L(LinuxCall::Identity {
            which: IdWhich::Euid,
        }),
        nr::GETGID => L(LinuxCall::Identity {
            which: IdWhich::Gid,
        }),
        nr::GETEGID => L(LinuxCall::Identity {
            which: IdWhich::Egid,
        }),
        nr::SETUID | nr::SETGID => L(LinuxCall::SetIds {
            group: number == nr::SETGID,
            single: true,
            real: r[0] as u32,
            effective: r[0] as u32,
            saved: r[0] as u32,
        }),
        nr::SETREUID | nr::SETREGID => L(LinuxCall::SetIds {
            group: number == nr::SETREGID,
            single: false,
            real: r[0] as u32,
            effective: r[1] as u32,
            saved: u32::MAX,
        }),
        nr::SETRESUID | nr::SETRESGID => L(LinuxCall::SetIds {
            group: number == nr::SETRESGID,
            single: false,
            real: r[0] as u32,
            effective: r[1] as u32,
            saved: r[2] as u32,
        }),
        nr::GETRESUID | nr::GETRESGID => L(LinuxCall::GetResIds {
            group: number == nr::GETRESGID,
            out: [ptr(0), ptr(1), ptr(2)],
        }),
        nr::ARCH_PRCTL => L(LinuxCall::ArchPrctl {
            code: r[0],
            addr: r[1],
        }),
        nr::SET_TID_ADDRESS => L(LinuxCall::SetTidAddress { tidptr: ptr(0) }),
        nr::CLOCK_GETTIME => L(LinuxCall::ClockGetTime {
            clock: r[0] as u32,
            out: ptr(1),
        }),
        nr::GETRANDOM => L(LinuxCall::GetRandom {
            buf: ptr(0),
            len: r[1],
            flags: r[2] as u32,
        }),
        nr::RT_SIGACTION => L(LinuxCall::SigAction {
            sig: r[0] as u32,
            act: ptr(1),
            old: ptr(2),
            setsize: r[3],
        }),
        nr::RT_SIGPROCMASK => L(LinuxCall::SigProcMask {
            how: r[0] as u32,
            set: ptr(1),
            old: ptr(2),
            setsize: r[3],
        }),
        nr::SIGALTSTACK => L(LinuxCall::SigAltStack {
            ss: ptr(0),
            old: ptr(1),
        }),
        nr::RT_SIGRETURN => L(LinuxCall::SigReturn),
        nr::KILL => L(LinuxCall::Kill {
            pid: int(r, 0),
            sig: r[1] as u32,
        }),
        nr::TKILL => L(LinuxCall::TgKill {
            tgid: None,
            tid: int(r, 0),
            sig: r[1] as u32,
        }),
        nr::TGKILL => L(LinuxCall::TgKill {
            tgid: Some(int(r, 0)),
            tid: int(r, 1),
            sig: r[2] as u32,
        }),
        nr::WAIT4 => L(LinuxCall::Wait4 {
            pid: int(r, 0),
            status: ptr(1),
            options: r[2] as u32,
            rusage: ptr(3),
        }),
        nr::NANOSLEEP => L(LinuxCall::Nanosleep {
            req: ptr(0),
            rem: ptr(1),
        }),
        nr::PAUSE => L(LinuxCall::Pause),
        nr::RT_SIGSUSPEND => L(LinuxCall::SigSuspend {
            mask: ptr(0),
            setsize: r[1],
        }),
        nr::ALARM => L(LinuxCall::Alarm {
            seconds: r[0] as u32,
        }),
        nr::SETITIMER => L(LinuxCall::SetItimer {
            which: r[0] as u32,
            new: ptr(1),
            old: ptr(2),
        }),
        nr::GETITIMER => L(LinuxCall::GetItimer {
            which: r[0] as u32,
            out: ptr(1),
        }),
        nr::CLOCK_NANOSLEEP => L(LinuxCall::ClockNanosleep {
            clock: r[0] as u32,
            flags: r[1] as u32,
            req: ptr(2),
            rem: ptr(3),
        }),
        nr::FTRUNCATE => L(LinuxCall::Ftruncate {
            fd: int(r, 0),
            len: r[1] as i64,
        }),
        nr::UNLINK => L(LinuxCall::Unlink {
            dirfd: neoos_abi::linux::AT_FDCWD,
            path: ptr(0),
            flags: 0,
        }),
        nr::UNLINKAT => L(LinuxCall::Unlink {
            dirfd: int(r, 0),
            path: ptr(1),
            flags: r[2] as u32,
        }),
        nr::FCNTL => L(LinuxCall::Fcntl {
            fd: int(r, 0),
            cmd: r[1] as u32,
            arg: r[2],
        }),
        nr::STATFS => L(LinuxCall::Statfs {
            path: ptr(0),
            out: ptr(1),
        }),
        nr::FSTATFS => L(LinuxCall::Fstatfs {
            fd: int(r, 0),
            out: ptr(1),
        }),
        nr::MLOCK => L(LinuxCall::Mlock {
            addr: r[0],
            len: r[1],
            lock: true,
        }),
        nr::MUNLOCK => L(LinuxCall::Mlock {
            addr: r[0],
            len: r[1],
            lock: false,
        }),
        nr::MLOCKALL => L(LinuxCall::Mlockall { flags: r[0] as u32 }),
        nr::MUNLOCKALL => L(LinuxCall::Munlockall),
        nr::DUP => L(LinuxCall::Dup { fd: int(r, 0) }),
        nr::DUP2 => L(LinuxCall::Dup2 {
            old: int(r, 0),
            new: int(r, 1),
            flags: 0,
        }),
        nr::GETRLIMIT => L(LinuxCall::GetRlimit {
            resource: r[0] as u32,
            out: ptr(1),
        }),
        nr::PRLIMIT64 => L(LinuxCall::Prlimit {
            pid: int(r, 0),
            resource: r[1] as u32,
            new: ptr(2),
            old: ptr(3),
        }),
        nr::UMASK => L(LinuxCall::Umask { mask: r[0] as u32 }),
        nr::PIPE => L(LinuxCall::Pipe {
            fds: ptr(0),
            flags: 0,
        }),
        nr::PIPE2 => L(LinuxCall::Pipe {
            fds: ptr(0),
            flags: r[1] as u32,
        }),
        nr::FDATASYNC => F(FileCall::Fsync { fd: int(r, 0) }),
        // Files and the namespace.
        nr::PREAD64 | nr::PWRITE64 => L(LinuxCall::PreadWrite {
            fd: int(r, 0),
            buf: ptr(1),
            count: size(r, 2),
            offset: r[3] as i64,
            write: number == nr::PWRITE64,
        }),
        nr::DUP3 => L(LinuxCall::Dup2 {
            old: int(r, 0),
            new: int(r, 1),
            flags: r[2] as u32 | DUP3_MARK,
        }),
        nr::GETDENTS64 => L(LinuxCall::Getdents {
            fd: int(r, 0),
            buf: ptr(1),
            count: r[2] as u32 as u64,
        }),
        nr::GETCWD => L(LinuxCall::Getcwd {
            buf: ptr(0),
            size: r[1],
        }),
        nr::CHDIR => L(LinuxCall::Chdir { path: ptr(0) }),
        nr::FCHDIR => L(LinuxCall::Fchdir { fd: int(r, 0) }),
        nr::MKDIR => L(LinuxCall::Mkdir {
            dirfd: neoos_abi::linux::AT_FDCWD,
            path: ptr(0),
            mode: r[1] as u32,
        }),
        nr::MKDIRAT => L(LinuxCall::Mkdir {
            dirfd: int(r, 0),
            path: ptr(1),
            mode: r[2] as u32,
        }),
        nr::RMDIR => L(LinuxCall::Unlink {
            dirfd: neoos_abi::linux::AT_FDCWD,
            path: ptr(0),
            flags: neoos_abi::linux::AT_REMOVEDIR,
        }),
        nr::RENAME => L(LinuxCall::Rename {
            old_dirfd: neoos_abi::linux::AT_FDCWD,
            old: ptr(0),
            new_dirfd: neoos_abi::linux::AT_FDCWD,
            new: ptr(1),
            flags: 0,
        }),
        nr::RENAMEAT | nr::RENAMEAT2 => L(LinuxCall::Rename {
            old_dirfd: int(r, 0),
            old: ptr(1),
            new_dirfd: int(r, 2),
            new: ptr(3),
            flags: if number == nr::RENAMEAT2 {
                r[4] as u32
            } else {
                0
            },
        }),
        nr::ACCESS => L(LinuxCall::Access {
            dirfd: neoos_abi::linux::AT_FDCWD,
            path: ptr(0),
            mode: r[1] as u32,
            flags: 0,
        }),
        nr::FACCESSAT | nr::FACCESSAT2 => L(LinuxCall::Access {
            dirfd: int(r, 0),
            path: ptr(1),
            mode: r[2] as u32,
            flags: if number == nr::FACCESSAT2 {
                r[3] as u32
            } else {
                0
            },
        }),
        nr::CHMOD => L(LinuxCall::Chmod {
            dirfd: neoos_abi::linux::AT_FDCWD,
            path: ptr(0),
            mode: r[1] as u32,
        }),
        nr::FCHMODAT => L(LinuxCall::Chmod {
            dirfd: int(r, 0),
            path: ptr(1),
            mode: r[2] as u32,
        }),
        nr::FCHMOD => L(LinuxCall::Fchmod {
            fd: int(r, 0),
            mode: r[1] as u32,
        }),
        nr::TRUNCATE => L(LinuxCall::Truncate {
            path: ptr(0),
            len: r[1] as i64,
        }),
        nr::READLINK => L(LinuxCall::Readlink {
            dirfd: neoos_abi::linux::AT_FDCWD,
            path: ptr(0),
            buf: ptr(1),
            size: int(r, 2),
        }),
        nr::READLINKAT => L(LinuxCall::Readlink {
            dirfd: int(r, 0),
            path: ptr(1),
            buf: ptr(2),
            size: int(r, 3),
        }),
        nr::TIME => L(LinuxCall::Time { out: ptr(0) }),
        nr::GETTIMEOFDAY => L(LinuxCall::GetTimeOfDay {
            tv: ptr(0),
            tz: ptr(1),
        }),
        nr::SETRLIMIT => L(LinuxCall::Prlimit {
            pid: 0,
            resource: r[0] as u32,
            new: ptr(1),
            old: UserPtr(0),
        }),
        nr::UTIMENSAT => L(LinuxCall::Utimensat {
            dirfd: int(r, 0),
            path: ptr(1),
            times: ptr(2),
            flags: r[3] as u32,
        }),
        // clone3: ENOSYS, and libc falls back to clone.
        nr::POLL => L(LinuxCall::Poll {
            fds: ptr(0),
            nfds: r[1],
            timeout_ms: i64::from(r[2] as i32),
        }),
        nr::PPOLL => L(LinuxCall::Ppoll {
            fds: ptr(0),
            nfds: r[1],
            timeout: ptr(2),
            sigmask: ptr(3),
        }),
        nr::SET_ROBUST_LIST | nr::RSEQ | nr::CLONE3 => L(LinuxCall::NotProvided),
        number => L(LinuxCall::Unknown { number }),
    };
    Decoded {
        call,
        personality: Personality::Posix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_write_is_a_write_not_neo_exit() {
        let d = decode_linux(nr::WRITE, [1, 0x1000, 5, 0, 0, 0]);
        assert_eq!(d.personality, Personality::Posix);
        assert_eq!(
            d.call,
            Call::Files(FileCall::Write {
                fd: 1,
                buf: UserPtr(0x1000),
                count: 5
            })
        );
    }

    #[test]
    fn exit_group_ends_with_the_low_eight_bits() {
        let d = decode_linux(nr::EXIT_GROUP, [0x1_0203, 0, 0, 0, 0, 0]);
        assert_eq!(d.call, Call::Processes(ProcessCall::Exit { status: 3 }));
    }

    #[test]
    fn mmap_drops_only_hint_flags_and_keeps_six_registers() {
        let flags = 0x02 | 0x20 | 0x4000 | 0x20000;
        let d = decode_linux(nr::MMAP, [0, 8192, 3, flags, u64::MAX, 1 << 40]);
        assert_eq!(
            d.call,
            Call::Memory(MemoryCall::Mmap {
                addr: 0,
                len: 8192,
                prot: 3,
                flags: 0x22,
                fd: -1,
                offset: 1 << 40
            })
        );
        let fixed_noreplace: u64 = 0x100000;
        let d = decode_linux(nr::MMAP, [0, 4096, 3, 0x22 | fixed_noreplace, 0, 0]);
        let Call::Memory(MemoryCall::Mmap { flags, .. }) = d.call else {
            panic!("mmap decodes to mmap");
        };
        assert_eq!(
            flags,
            0x22 | fixed_noreplace as u32,
            "unknown flags reach mmap"
        );
    }

    #[test]
    fn a_huge_size_t_count_is_capped_not_negative() {
        let d = decode_linux(nr::READ, [0, 0x1000, u64::MAX, 0, 0, 0]);
        let Call::Files(FileCall::Read { count, .. }) = d.call else {
            panic!("read decodes to read");
        };
        assert_eq!(count, i64::MAX);
    }

    #[test]
    fn open_is_openat_from_the_working_directory() {
        let d = decode_linux(nr::OPEN, [0x2000, 0o101, 0o644, 0, 0, 0]);
        assert_eq!(
            d.call,
            Call::Linux(LinuxCall::Open {
                dirfd: neoos_abi::linux::AT_FDCWD,
                path: UserPtr(0x2000),
                flags: 0o101,
                perm: 0o644
            })
        );
        let d = decode_linux(nr::OPENAT, [(-100i64) as u64, 0x2000, 0o101, 0, 0, 0]);
        assert!(matches!(
            d.call,
            Call::Linux(LinuxCall::Open { dirfd: -100, .. })
        ));
    }

    #[test]
    fn unknown_numbers_decode_to_unknown_with_their_number() {
        for number in [
            nr::LOGGED_BELOW,
            999,
            usize::MAX,
            135, /* personality */
        ] {
            assert_eq!(
                decode_linux(number, [0; 6]).call,
                Call::Linux(LinuxCall::Unknown { number })
            );
        }
    }

    #[test]
    fn shm_numbers_reach_the_ipc_family_with_the_linux_layout() {
        let d = decode_linux(nr::SHMCTL, [0xffff_ffff_0000_0007, 2, 0x5000, 0, 0, 0]);
        assert_eq!(
            d.call,
            Call::Ipc(IpcCall::ShmCtl {
                id: 7,
                cmd: 2,
                buf: UserPtr(0x5000),
                layout: ShmLayout::Linux
            })
        );
        let d = decode_linux(nr::SHMGET, [(-1i64) as u64, 4096, 0o1600, 0, 0, 0]);
        assert_eq!(
            d.call,
            Call::Ipc(IpcCall::ShmGet {
                key: -1,
                size: 4096,
                flags: 0o1600
            })
        );
        assert_eq!(
            decode_linux(nr::SHMDT, [0x7000, 0, 0, 0, 0, 0]).call,
            Call::Ipc(IpcCall::ShmDt { addr: 0x7000 })
        );
        assert!(matches!(
            decode_linux(nr::SHMAT, [3, 0, 0o10000, 0, 0, 0]).call,
            Call::Ipc(IpcCall::ShmAt {
                id: 3,
                addr: 0,
                flags: 0o10000
            })
        ));
        assert_eq!(
            decode_linux(nr::MREMAP, [0x1000, 2, 3, 1, 0x9000, 0]).call,
            Call::Linux(LinuxCall::Mremap {
                old: 0x1000,
                old_len: 2,
                new_len: 3,
                flags: 1,
                new: 0x9000
            })
        );
    }

    #[test]
    fn linux_errors_are_negative_errno() {
        assert_eq!(LinuxError::NoSys.result(), -38);
        assert_eq!(LinuxError::NotTty.result(), -25);
        assert_eq!(LinuxError::IllegalSeek.result(), -29);
    }
}
