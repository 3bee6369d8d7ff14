//! The system-call layer: a decode table per numbering turns six raw
//! registers into a typed [`Call`] and the [`Personality`] whose result
//! codes it uses; handlers, one module per family (memory, files,
//! processes, ipc), take typed arguments and return `Result<_, Errno>`;
//! [`Personality::result`] converts to the ABI in one place. Calls that need
//! the scheduler (exit, yield, wait, kill, fork, console input) come back
//! to the kernel as [`SchedulerCall`]s. The Linux numbering and its own
//! calls are in `crate::linux`.

mod decode;
mod files;
mod ipc;
mod memory;
mod processes;

use alloc::string::String;
use alloc::vec::Vec;

use neoos_abi::PAGE_SIZE;
use neoos_mm::Errno;

use crate::kernel::Kernel;
use crate::linux::{LinuxCall, LinuxError};
use crate::platform::Platform;
use crate::process::Pid;

pub use decode::{decode_neo, Decoded, NEO_UNKNOWN_CALL};
pub use memory::{
    may_run_shared, MapsProgress, MincoreProgress, MAPS_BATCH, MAPS_STEP_BATCHES, MINCORE_STEP_WORK,
};
pub use processes::KillOutcome;

/// A user-space address given to a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserPtr(pub u64);

impl UserPtr {
    /// The address.
    pub fn addr(self) -> u64 {
        self.0
    }
    /// Whether it is NULL.
    pub fn is_null(self) -> bool {
        self.0 == 0
    }
    /// The address `bytes` further on (wrapping: the mapping core rejects
    /// ranges that leave user space).
    pub fn offset(self, bytes: u64) -> UserPtr {
        UserPtr(self.0.wrapping_add(bytes))
    }
}

/// Which result convention a call follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Personality {
    /// NeoOS calls: `E_*` codes on failure.
    Neo,
    /// POSIX calls, and every call of a Linux program: `-errno` on failure.
    Posix,
}

impl Personality {
    /// The value returned in `rax` for `result`.
    #[inline]
    pub fn result(self, result: Result<i64, Errno>) -> i64 {
        match (self, result) {
            (_, Ok(v)) => v,
            (Personality::Neo, Err(e)) => e.neo_code(),
            (Personality::Posix, Err(e)) => -e.posix_errno(),
        }
    }
}

/// A decoded memory call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryCall {
    NeoMmap {
        fd: i64,
        offset: i64,
        size: i64,
    },
    NeoMunmap {
        addr: u64,
        size: i64,
    },
    Mmap {
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
        fd: i64,
        offset: i64,
    },
    Munmap {
        addr: u64,
        len: u64,
    },
    Msync {
        addr: u64,
        len: u64,
        flags: u32,
    },
    Mprotect {
        addr: u64,
        len: u64,
        prot: u32,
    },
    Madvise {
        addr: u64,
        len: u64,
        advice: u32,
    },
    Mincore {
        addr: u64,
        len: u64,
        vec: UserPtr,
    },
    GetPageSize,
    MemInfo {
        out: UserPtr,
    },
    Maps {
        buf: UserPtr,
        len: i64,
    },
}

/// A decoded file call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileCall {
    Write {
        fd: i64,
        buf: UserPtr,
        count: i64,
    },
    Read {
        fd: i64,
        buf: UserPtr,
        count: i64,
    },
    Open {
        path: UserPtr,
        mode: i64,
    },
    Close {
        fd: i64,
    },
    Stat {
        path: UserPtr,
        out: UserPtr,
    },
    Fsync {
        fd: i64,
    },
    ReadDir {
        path: UserPtr,
        buf: UserPtr,
        len: i64,
    },
    ReadConsole {
        buf: UserPtr,
        count: i64,
    },
}

/// A decoded process call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessCall {
    Exit {
        status: i64,
    },
    Yield,
    Wait {
        status: UserPtr,
    },
    Kill {
        pid: i64,
    },
    Run {
        path: UserPtr,
        argv: UserPtr,
    },
    Fork,
    GetPid,
    /// The caller's thread id (Linux `gettid`).
    GetTid,
    Ticks,
    /// End the calling thread only (Linux `exit`, `sys_thread_exit`).
    ThreadExit {
        status: i64,
    },
    /// `sys_thread_create(entry, stack, arg)`.
    ThreadCreate {
        entry: u64,
        stack: u64,
        arg: u64,
    },
    /// `sys_thread_join(tid, status)`.
    ThreadJoin {
        tid: i64,
        status: UserPtr,
    },
}

/// A decoded System V ipc call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpcCall {
    ShmGet {
        key: i64,
        size: u64,
        flags: u64,
    },
    ShmAt {
        id: u64,
        addr: u64,
        flags: u32,
    },
    ShmDt {
        addr: u64,
    },
    ShmCtl {
        id: u64,
        cmd: u32,
        buf: UserPtr,
        layout: ShmLayout,
    },
}

/// Which `struct shmid_ds` a `shmctl` fills (`IPC_STAT`) and reads
/// (`IPC_SET`): NeoOS's (crates/abi `shmid_ds`, times in ticks) or Linux's
/// `shmid64_ds` (crates/abi `linux::shmid64_ds`, times in seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShmLayout {
    Neo,
    Linux,
}

/// A decoded system call, by family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Memory(MemoryCall),
    Files(FileCall),
    Processes(ProcessCall),
    Ipc(IpcCall),
    /// A call of the Linux numbering with no NeoOS equivalent.
    Linux(LinuxCall),
}

/// A call the kernel's scheduler side completes: it may end the caller,
/// switch away, or wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedulerCall {
    /// End the caller with this status (low 8 bits of the argument).
    Exit { status: i64 },
    /// Give up the CPU, then return `E_OK`.
    Yield,
    /// Take an ended child ([`Kernel::wait_step`]), blocking until one ends.
    Wait { status: UserPtr },
    /// Wait for console input ([`Kernel::read_console_step`]); `count` is
    /// at least 1.
    ReadConsole { buf: UserPtr, count: usize },
    /// End another process or the caller ([`Kernel::kill_request`]).
    Kill { pid: i64 },
    /// Copy the caller ([`Kernel::fork`]); the child returns 0.
    Fork,
    /// POSIX `mincore`, which may be long: [`Kernel::mincore_begin`], then
    /// [`Kernel::mincore_step`] until done, yielding between steps.
    Mincore { addr: u64, len: u64, vec: UserPtr },
    /// `sys_maps`, which may be long: [`Kernel::maps_begin`], then
    /// [`Kernel::maps_step`] until done, yielding between steps.
    Maps { buf: UserPtr, len: i64 },
    /// Sleep until the clock reaches `until` ticks (`crate::process::FOREVER`:
    /// until a signal), stepped by [`Kernel::sleep_step`]: `nanosleep`
    /// (`rem` gets the time left when a signal interrupts it), `pause`,
    /// `rt_sigsuspend`.
    Sleep { until: u64, rem: UserPtr },
    /// Linux `poll`/`ppoll` with nothing ready yet: [`Kernel::poll_step`]
    /// until an entry is ready (its count) or the clock reaches `deadline`
    /// (0), giving the CPU away between passes.
    Poll {
        fds: UserPtr,
        nfds: u64,
        deadline: Option<u64>,
    },
    /// Linux `wait4` ([`Kernel::linux_wait_step`]), blocking unless
    /// `WNOHANG`.
    LinuxWait {
        pid: i64,
        status: UserPtr,
        options: u32,
    },
    /// A read or write of a pipe ([`Kernel::pipe_step`]), waiting while the
    /// pipe is empty (read) or full (write).
    PipeIo {
        fd: i64,
        buf: UserPtr,
        count: usize,
        write: bool,
    },
    /// Linux `rt_sigreturn`: restore the registers from the signal frame
    /// ([`Kernel::signal_return`]).
    SigReturn,
    /// Linux `sigaltstack`, which needs the caller's stack pointer
    /// ([`Kernel::sigaltstack`]).
    SigAltStack { ss: UserPtr, old: UserPtr },
    /// End the calling thread only ([`Kernel::end_thread`]); the last
    /// thread's end is its process's.
    ExitThread { status: i64 },
    /// A new thread entering user mode at `entry` with `rsp = stack` and
    /// `rdi = arg` ([`Kernel::create_thread`]); the result is its id.
    ThreadCreate { entry: u64, stack: u64, arg: u64 },
    /// A Linux thread clone: the caller's registers with `rax = 0` and
    /// `rsp = args.stack` ([`Kernel::clone_thread`]).
    CloneThread { args: crate::threads::CloneArgs },
    /// The caller sleeps in a futex wait it has been entered in, until
    /// woken or the clock reaches `deadline`; then
    /// [`Kernel::futex_wait_end`] gives the result.
    FutexWait { deadline: Option<u64> },
    /// `sys_thread_join`: [`Kernel::join_step`] until the thread has ended.
    ThreadJoin { tid: i64, status: UserPtr },
    /// Linux `execve` ([`Kernel::execve`]): on success the kernel enters
    /// the new program with the registers it returns, after tearing the
    /// old address space down in steps ([`Kernel::exec_retire_step`]).
    Exec {
        path: UserPtr,
        argv: UserPtr,
        envp: UserPtr,
    },
    /// Linux `clone` used as fork ([`Kernel::clone_process`]): the child
    /// returns 0, on `stack` when it is not 0.
    Clone(crate::linux::exec::CloneArgs),
    /// Write back the dirty pages of the files the call noted, waiting
    /// for the disk without the kernel lock ([`Kernel::writeback_step`]
    /// until done): `fsync` and `msync(MS_SYNC)` of volume files.
    WriteBack,
    /// A `read` of a volume file ([`Kernel::file_read_step`] until done),
    /// waiting for the disk without the kernel lock while the pages of
    /// its next window are read: from the descriptor's position, which
    /// moves, or for Linux `pread64` from offset `at`, the position kept.
    FileRead {
        fd: i64,
        buf: UserPtr,
        count: usize,
        at: Option<u64>,
    },
    /// Linux `sync` ([`Kernel::sync_step`] until done): every cached file
    /// with dirty pages written back, the volume's files waiting for the
    /// disk without the kernel lock, sixteen files at a time; then the
    /// kept files found clean let go.
    Sync,
    /// A `write` of a volume file (NeoOS `sys_write`, Linux `write`; Linux
    /// `pwrite64` from offset `at`, the position kept)
    /// ([`Kernel::file_write_step`] until done): the pages it writes only
    /// in part and the page cache lacks are read first, waiting for the
    /// disk without the kernel lock; then it writes as before, under it.
    FileWrite {
        fd: i64,
        buf: UserPtr,
        count: i64,
        at: Option<u64>,
    },
    /// Linux `readv` (`preadv` from offset `at`) of a volume file: each
    /// buffer read as [`SchedulerCall::FileRead`] reads, stopping at a
    /// short read.
    FileReadv {
        fd: i64,
        iov: UserPtr,
        count: i64,
        at: Option<u64>,
    },
    /// Linux `waitid` ([`Kernel::waitid_step`]), blocking unless `WNOHANG`.
    WaitId {
        target: crate::linux::exec::WaitTarget,
        info: UserPtr,
        options: u32,
    },
    /// NeoOS `sys_munmap` of a mapping of a volume file with dirty pages
    /// ([`Kernel::unmap_step`] until done): its pages are written, waiting
    /// for the disk without the kernel lock, before the mapping goes.
    NeoMunmap,
    /// The call met a mapping another thread's `sys_munmap` is writing
    /// back (`Errno::BeingUnmapped`, nothing done): the caller waits for
    /// the disk once and makes the call again.
    AwaitUnmap,
    /// The call names volume paths whose metadata is being read
    /// (`crate::metadata_reads`, nothing done): the caller waits for the
    /// disk once, without the kernel lock, and makes the call again.
    AwaitMetadata,
    /// The call's access to its user memory met a page of a volume file
    /// not cached (`Errno::WaitForRead`, nothing done: `crate::user_reads`):
    /// the caller waits for the disk without the kernel lock, then gets
    /// [`Kernel::user_page_read_result`] (the read's failure) as the call's
    /// result, or makes the call again.
    AwaitUserRead,
    /// A Linux call that changed the volume, made under the lock, whose
    /// device flush is waited for without it ([`Kernel::flush_step`]):
    /// then `result`, or `EIO` if the flush failed.
    FlushThen { result: Result<i64, Errno> },
}

/// How the kernel logic completed a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// The call's result, to convert with the call's personality.
    Done(Result<i64, Errno>),
    /// The scheduler side completes it.
    Scheduler(SchedulerCall),
    /// A Linux call failed with an error only Linux names; its `rax` is
    /// [`LinuxError::result`].
    LinuxError(LinuxError),
}

impl Completion {
    /// The value for `rax` of a call that is done (its result converted by
    /// `personality`), or the call the scheduler side completes.
    #[inline]
    pub fn rax(self, personality: Personality) -> Result<i64, SchedulerCall> {
        match self {
            Completion::Done(r) => Ok(personality.result(r)),
            Completion::LinuxError(e) => Ok(e.result()),
            Completion::Scheduler(c) => Err(c),
        }
    }
}

/// `NoMem` when the kernel heap has `heap_room` bytes above its reserve
/// and that is none ([`Kernel::heap_reserve_check`]).
#[inline]
pub(crate) fn heap_room_check(heap_room: usize) -> Result<(), Errno> {
    if heap_room == 0 {
        Err(Errno::NoMem)
    } else {
        Ok(())
    }
}

/// The whole user range, `[USER_BASE, USER_END)`.
pub(crate) const USER_RANGE: (u64, u64) =
    (neoos_abi::layout::USER_BASE, neoos_abi::layout::USER_END);

/// Bytes moved per step between user memory and a kernel buffer.
pub(crate) const CHUNK: usize = 16 * 1024;

/// `completion`, or for a call that met a mapping being unmapped
/// (`Errno::BeingUnmapped`: nothing done), the wait after which it is made
/// again. Only memory calls (NeoOS, POSIX and Linux) can meet one.
fn awaiting_unmap(completion: Completion) -> Completion {
    match completion {
        Completion::Done(Err(Errno::BeingUnmapped)) => {
            Completion::Scheduler(SchedulerCall::AwaitUnmap)
        }
        completion => completion,
    }
}

/// What the system-call entry does with a call: the value for `rax`, or
/// the call the scheduler side completes and the personality that
/// converts its result.
pub type Dispatched = Result<i64, (SchedulerCall, Personality)>;

impl<P: Platform> Kernel<P> {
    /// The system-call entry of process `pid` (the running one): decodes
    /// call `number` with argument registers `regs` by its program's
    /// numbering and carries it out. A number that is no call, or no such
    /// process, gives [`NEO_UNKNOWN_CALL`]. The process is looked up once
    /// for the numbering, and a memory call runs on that lookup (its
    /// address space, page table, descriptors and limits).
    #[inline]
    pub fn system_call(&mut self, pid: Pid, number: usize, regs: [u64; 6]) -> Dispatched {
        let Ok(mut caller) = self.memory_caller(pid) else {
            return Ok(NEO_UNKNOWN_CALL);
        };
        let Some(Decoded { call, personality }) =
            crate::linux::decode_for(&caller.process.abi, number, regs)
        else {
            return Ok(NEO_UNKNOWN_CALL);
        };
        // As [`Self::call`]: reclaim first when frames are low (then the
        // process is looked up again: rare).
        if caller.frames_low() {
            self.reclaim_now();
            let Ok(again) = self.memory_caller(pid) else {
                return Ok(NEO_UNKNOWN_CALL);
            };
            caller = again;
        }
        if let Call::Memory(c) = &call {
            if memory::runs_on_caller(c) {
                let (result, mapped) = caller.run(c);
                self.touch_mapped(mapped);
                self.reap_released_orphans();
                if result == Err(Errno::BeingUnmapped) {
                    return Err((SchedulerCall::AwaitUnmap, personality));
                }
                return Ok(personality.result(result));
            }
        }
        if let Some(io) = self.volume_file_io(pid, &call) {
            return Err((io, personality));
        }
        let completion = self.carry_out(pid, call);
        self.reap_after_call(pid, completion)
            .rax(personality)
            .map_err(|c| (c, personality))
    }

    /// [`Self::reap_released_orphans`] after call `completion` of `pid`
    /// (O(1) unless a file object went): an orphan on the volume freed by
    /// it (the last close of a file unlinked while open) has its inode and
    /// blocks written without the lock, the call's result waiting for them
    /// ([`Self::call_flushing_after`]).
    #[inline]
    fn reap_after_call(&mut self, pid: Pid, completion: Completion) -> Completion {
        if !self.fs.orphans_may_be_free(self.memory.files_released()) {
            return completion;
        }
        self.reap_orphans_flushing_after(pid, completion)
    }

    #[inline(never)]
    fn reap_orphans_flushing_after(&mut self, pid: Pid, completion: Completion) -> Completion {
        if !matches!(completion, Completion::Done(_)) || !self.fs.disk.home_mounted() {
            self.reap_orphans();
            return completion;
        }
        // The call is made: no wait that would make it again.
        self.made_flushing_after(pid, false, |k| {
            k.reap_orphans();
            completion
        })
    }

    /// `call` as a [`SchedulerCall::FileRead`] or
    /// [`SchedulerCall::FileReadv`] when it reads a file on the disk volume
    /// (`read`, Linux `pread64`, `readv`, `preadv`, at an offset they
    /// accept), as a [`SchedulerCall::FileWrite`] when it writes one
    /// (`write`, Linux `pwrite64`): its misses wait for the disk without
    /// the kernel lock. One match for both: every call that is not a
    /// memory call on the caller's fast path goes through it.
    fn volume_file_io(&self, pid: Pid, call: &Call) -> Option<SchedulerCall> {
        let offset = |at: i64| u64::try_from(at).ok();
        let (fd, read) = match *call {
            Call::Files(FileCall::Write { fd, buf, count }) => (
                fd,
                SchedulerCall::FileWrite {
                    fd,
                    buf,
                    count,
                    at: None,
                },
            ),
            Call::Linux(LinuxCall::PreadWrite {
                fd,
                buf,
                count,
                offset: at,
                write: true,
            }) => (
                fd,
                SchedulerCall::FileWrite {
                    fd,
                    buf,
                    count,
                    at: Some(offset(at)?),
                },
            ),
            Call::Files(FileCall::Read { fd, buf, count }) => {
                let count = usize::try_from(count).ok()?;
                (
                    fd,
                    SchedulerCall::FileRead {
                        fd,
                        buf,
                        count,
                        at: None,
                    },
                )
            }
            Call::Linux(LinuxCall::PreadWrite {
                fd,
                buf,
                count,
                offset: at,
                write: false,
            }) => {
                let (count, at) = (usize::try_from(count).ok()?, Some(offset(at)?));
                (fd, SchedulerCall::FileRead { fd, buf, count, at })
            }
            Call::Linux(LinuxCall::Readv { fd, iov, count, at }) => {
                let at = match at {
                    Some(at) => Some(offset(at)?),
                    None => None,
                };
                (fd, SchedulerCall::FileReadv { fd, iov, count, at })
            }
            _ => return None,
        };
        self.reads_volume_file(pid, fd).then_some(read)
    }

    /// Whether `fd` of `pid` is a file on the disk volume (its `read` and
    /// `write` wait for the disk without the kernel lock).
    fn reads_volume_file(&self, pid: Pid, fd: i64) -> bool {
        matches!(self.descriptor(pid, fd), Ok(crate::files::Descriptor::File(f)) if crate::mount::is_volume_file(f.file))
    }

    /// Carries out `call` for process `pid`.
    #[inline]
    pub fn call(&mut self, pid: Pid, call: Call) -> Completion {
        self.reclaim_if_low();
        let completion = self.carry_out(pid, call);
        // Unlinked files whose last descriptor or mapping this call let go
        // (O(1) unless a file object went).
        self.reap_released_orphans();
        completion
    }

    /// [`Self::call`] once the reclaim check is made, without the reaping
    /// of orphans after it (each caller's).
    #[inline]
    fn carry_out(&mut self, pid: Pid, call: Call) -> Completion {
        match call {
            Call::Memory(MemoryCall::Mincore { addr, len, vec }) => {
                Completion::Scheduler(SchedulerCall::Mincore { addr, len, vec })
            }
            Call::Memory(MemoryCall::Maps { buf, len }) => {
                Completion::Scheduler(SchedulerCall::Maps { buf, len })
            }
            Call::Memory(MemoryCall::Msync { addr, len, flags })
                if flags & neoos_abi::mman::MS_SYNC != 0
                    && flags & neoos_abi::mman::MS_ASYNC == 0 =>
            {
                self.msync_sync(pid, addr, len, flags)
            }
            Call::Memory(MemoryCall::NeoMunmap { addr, size }) => {
                self.neo_munmap_call(pid, addr, size)
            }
            Call::Memory(c) => awaiting_unmap(Completion::Done(self.memory_call(pid, c))),
            // A wait for a user page's read (`crate::user_reads`): the
            // scheduler side's; a call inside another (`pwrite64`'s write)
            // takes it back as an error (`user_reads::nested_result`).
            Call::Files(c) => crate::user_reads::awaiting_user_read(self.file_call(pid, c)),
            Call::Processes(c) => self.process_call(pid, c),
            Call::Ipc(c) => Completion::Done(self.ipc_call(pid, c)),
            Call::Linux(c) => {
                crate::user_reads::awaiting_user_read(awaiting_unmap(self.linux_call(pid, c)))
            }
        }
    }

    /// `NoMem` when the kernel heap has no room above its reserve and the
    /// RAM disk's promised pages. Calls that may allocate kernel data that
    /// outlives them (mappings, holes, descriptors, files, processes,
    /// segments) check it first. File data is bounded by the disk's
    /// reservations instead, so `sys_write` (and console output) always runs.
    #[inline]
    pub(crate) fn heap_reserve_check(&self) -> Result<(), Errno> {
        heap_room_check(self.heap_room())
    }

    /// Copies `len` bytes from user address `addr`.
    pub(crate) fn copy_in(
        &mut self,
        pid: Pid,
        addr: UserPtr,
        len: usize,
    ) -> Result<Vec<u8>, Errno> {
        let mut buf = crate::buffer::zeroed(len)?;
        let (memory, space, mut hw) = self.hw_for(pid).ok_or(Errno::Inval)?;
        memory.copy_from_user(space, &mut hw, addr.0, &mut buf)?;
        Ok(buf)
    }

    /// Copies `bytes` to user address `addr`.
    pub(crate) fn copy_out(&mut self, pid: Pid, addr: UserPtr, bytes: &[u8]) -> Result<(), Errno> {
        let (memory, space, mut hw) = self.hw_for(pid).ok_or(Errno::Inval)?;
        memory.copy_to_user(space, &mut hw, addr.0, bytes, false)
    }

    /// Checks that `len` bytes at `addr` can be stored to.
    pub(crate) fn check_writable(
        &mut self,
        pid: Pid,
        addr: UserPtr,
        len: usize,
    ) -> Result<(), Errno> {
        let (memory, space, mut hw) = self.hw_for(pid).ok_or(Errno::Inval)?;
        memory.check_user_writable(space, &mut hw, addr.0, len)
    }

    /// Checks that every byte of `[addr, addr + len)` can be read, faulting
    /// the pages in, without copying: a call checks its whole buffer this
    /// way before it changes anything.
    pub(crate) fn check_readable(
        &mut self,
        pid: Pid,
        addr: UserPtr,
        len: usize,
    ) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let end = addr.0.checked_add(len as u64).ok_or(Errno::Fault)?;
        let (memory, space, mut hw) = self.hw_for(pid).ok_or(Errno::Inval)?;
        let mut at = addr.0;
        let mut byte = [0u8; 1];
        while at < end {
            memory.copy_from_user(space, &mut hw, at, &mut byte)?;
            at = (at | (PAGE_SIZE as u64 - 1)).saturating_add(1);
        }
        Ok(())
    }

    /// Reads a NUL-terminated string of at most `max` bytes from user memory.
    pub(crate) fn copy_string(
        &mut self,
        pid: Pid,
        addr: UserPtr,
        max: usize,
    ) -> Result<String, Errno> {
        let (memory, space, mut hw) = self.hw_for(pid).ok_or(Errno::Inval)?;
        let bytes = memory.read_user_cstr(space, &mut hw, addr.0, max)?;
        String::from_utf8(bytes).map_err(|_| Errno::Inval)
    }
}
