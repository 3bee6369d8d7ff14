//! Kernel accesses to user memory that wait for the disk without the
//! kernel lock (issue 12 item 1, issue 13 item 2): a call whose buffer or
//! path lies in a mapping of a `/home` file whose page is not cached
//! (`write(fd, buf, n)` from a `MAP_SHARED` or `MAP_PRIVATE` mapping of a
//! volume file, `read` into one) no longer reads the page under the lock.
//!
//! The access is made where the call has changed nothing yet (a `write`'s
//! check of its whole buffer, a `writev`'s of each buffer, the copy of a
//! `read`'s first chunk), with its faults' disk reads deferred
//! ([`neoos_mm::MemorySystem::deferring_user_reads`]): a miss plans the
//! page's read as a user fault's does (or joins one under way), the read
//! is started (`Kernel::begin_read`) and the calling thread joins it
//! (`Kernel::join_read`), and the call gives up with
//! [`Errno::WaitForRead`]: nothing done. The thread then waits for the
//! disk without the lock ([`SchedulerCall::AwaitUserRead`], or the step of
//! a `read` or `write` of a volume file returning `None`), and the call
//! is made again, exactly as it would have been: the page is now cached.
//! A failed read gives the access's error (`Io`), as the read under the
//! lock gave it: [`Kernel::user_page_read_result`].
//!
//! Bounded: a call waits at most [`MOST_USER_PAGE_WAITS`] times (a page
//! evicted again before the retry); then the access is made the old way,
//! reading under the lock. Calls made inside another (each buffer of a
//! `readv` or `writev` once the first is done) never defer: their call
//! has moved bytes already (`Kernel::without_user_read_waits`).

use alloc::collections::BTreeMap;

use neoos_mm::{AsId, Errno, Hw, MemorySystem};

use crate::kernel::Kernel;
use crate::linux::LinuxCall;
use crate::platform::Platform;
use crate::process::{Pid, Tid};
use crate::syscall::{Completion, SchedulerCall, UserPtr};

/// Most times one call waits for the reads of its user pages before its
/// accesses read under the lock.
pub const MOST_USER_PAGE_WAITS: u8 = 8;

/// The calls waiting for (or that waited for) the read of a user page.
#[derive(Debug, Default)]
pub struct UserPageWaits {
    /// Each thread's call: how many times it waited, and whether it waits
    /// now (its read's failure, if any, is then its access's error).
    calls: BTreeMap<Tid, UserPageWait>,
    /// Accesses do not defer (a call made inside another).
    off: bool,
    /// A volume `read`'s window is being copied: a later chunk's copy may
    /// defer too, the window then ending before it ([`Self::stopped`]).
    pub(crate) continuable: bool,
    /// The window's copy stopped at a chunk whose page is being read.
    pub(crate) stopped: bool,
    /// Waits so far (all calls).
    pub(crate) waits: u64,
    /// Each thread's `writev` that waits for the pages it writes in part
    /// (`Kernel::writev_reads_first`): the pages it lacked at its last
    /// round, and its rounds that read no fewer.
    writevs: BTreeMap<Tid, (usize, u8)>,
}

#[derive(Debug, Clone, Copy)]
struct UserPageWait {
    rounds: u8,
    waiting: bool,
}

impl UserPageWaits {
    /// How many times calls waited for a user page's read.
    pub fn waits(&self) -> u64 {
        self.waits
    }

    /// How many threads' calls have a record (waiting, or waited and not
    /// made yet).
    pub fn calls(&self) -> usize {
        self.calls.len()
    }
}

impl<P: Platform> Kernel<P> {
    /// Runs `access` on process `pid`'s memory with its faults' disk reads
    /// deferred: `Err(WaitForRead)` when the calling thread is to wait
    /// for a page's read (started, joined) and then make the call again;
    /// nothing changed by the call may precede it. After the most waits
    /// (or inside another call) the access is made the old way.
    pub(crate) fn user_access_deferring<R>(
        &mut self,
        pid: Pid,
        mut access: impl FnMut(&mut MemorySystem, AsId, &mut Hw<'_>) -> Result<R, Errno>,
    ) -> Result<R, Errno> {
        let off = self.writebacks.user_pages.off;
        let (memory, space, mut hw) = self.hw_for(pid).ok_or(Errno::Inval)?;
        let result = match off {
            true => access(memory, space, &mut hw),
            false => memory.deferring_user_reads(|m| access(m, space, &mut hw)),
        };
        if !matches!(result, Err(Errno::WaitForRead)) {
            if !self.writebacks.user_pages.calls.is_empty() {
                let tid = self.caller_tid(pid);
                self.writebacks.user_pages.calls.remove(&tid);
            }
            return result;
        }
        if self.wait_for_user_page(pid) {
            return Err(Errno::WaitForRead);
        }
        let (memory, space, mut hw) = self.hw_for(pid).ok_or(Errno::Inval)?;
        access(memory, space, &mut hw)
    }

    /// After a deferred access met a page to read: its read started and
    /// the caller's thread joined to it (`true`: the thread is to wait);
    /// `false` when the call waited [`MOST_USER_PAGE_WAITS`] times already
    /// or the heap refuses to note it (the read planned now is dropped:
    /// the access reads under the lock).
    fn wait_for_user_page(&mut self, pid: Pid) -> bool {
        let tid = self.caller_tid(pid);
        let read = self.memory.read_waited_for();
        let planned = self.memory.take_planned_read();
        let waits = &mut self.writebacks.user_pages;
        let rounds = waits.calls.get(&tid).map_or(0, |w| w.rounds);
        if rounds >= MOST_USER_PAGE_WAITS {
            waits.calls.remove(&tid);
            if let Some(planned) = planned {
                let (memory, mut io) = self.memory_io();
                let _ = memory.finish_read(&mut io, &planned, None);
            }
            return false;
        }
        if let Some(planned) = planned {
            self.begin_read(planned);
        }
        if self.join_read(read, tid).is_err() {
            self.writebacks.user_pages.calls.remove(&tid);
            return false;
        }
        let waits = &mut self.writebacks.user_pages;
        waits.calls.insert(
            tid,
            UserPageWait {
                rounds: rounds + 1,
                waiting: true,
            },
        );
        waits.waits += 1;
        true
    }

    /// After thread `tid` waited for its call's user page: the error its
    /// access gets (the read failed: `Io`, as the read under the lock gave
    /// it), or `None` (make the call again).
    pub fn user_page_read_result(&mut self, tid: Tid) -> Option<Errno> {
        let wait = self.writebacks.user_pages.calls.get_mut(&tid)?;
        if !core::mem::replace(&mut wait.waiting, false) {
            return None;
        }
        let failed = self.writebacks.reads.failed_waiters.remove(&tid)?;
        self.writebacks.user_pages.calls.remove(&tid);
        Some(failed.to_errno())
    }

    /// Runs `f` with user accesses that do not defer (each buffer of a
    /// `readv` or `writev`: its call may have moved bytes already).
    pub(crate) fn without_user_read_waits<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        let before = core::mem::replace(&mut self.writebacks.user_pages.off, true);
        let result = f(self);
        self.writebacks.user_pages.off = before;
        result
    }

    /// Drops the records of threads gone (killed while they waited).
    pub(crate) fn drop_gone_user_page_waits(&mut self) {
        let waits = &mut self.writebacks.user_pages;
        if waits.calls.is_empty() && waits.writevs.is_empty() {
            return;
        }
        let processes = &self.processes;
        waits
            .calls
            .retain(|&tid, _| processes.thread(tid).is_some());
        waits
            .writevs
            .retain(|&tid, _| processes.thread(tid).is_some());
    }

    /// Thread `tid`'s `writev`, which started (or found) reads of the pages
    /// it writes in part when `reads`, `missing` such pages in all: the
    /// wait after which it is made again ([`SchedulerCall::AwaitMetadata`]),
    /// unless [`MOST_USER_PAGE_WAITS`] of its rounds lacked no fewer pages
    /// than the one before (reads that fail, pages evicted again): then
    /// `None`, make it now (what it lacks read under the lock, as before).
    /// Bounded: every other round lacks fewer pages.
    pub(crate) fn writev_wait(
        &mut self,
        tid: Tid,
        reads: bool,
        missing: usize,
    ) -> Option<SchedulerCall> {
        let writevs = &mut self.writebacks.user_pages.writevs;
        let (before, stalled) = writevs.get(&tid).copied().unwrap_or((usize::MAX, 0));
        let stalled = stalled + u8::from(missing >= before);
        if !reads || stalled >= MOST_USER_PAGE_WAITS {
            writevs.remove(&tid);
            return None;
        }
        writevs.insert(tid, (missing, stalled));
        Some(SchedulerCall::AwaitMetadata)
    }

    /// [`Self::check_readable`] with the disk reads of its faults deferred
    /// ([`Self::user_access_deferring`]).
    pub(crate) fn check_readable_deferring(
        &mut self,
        pid: Pid,
        addr: UserPtr,
        len: usize,
    ) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let end = addr.0.checked_add(len as u64).ok_or(Errno::Fault)?;
        let page = neoos_mm::PAGE_SIZE;
        self.user_access_deferring(pid, |memory, space, hw| {
            let mut at = addr.0;
            let mut byte = [0u8; 1];
            while at < end {
                memory.copy_from_user(space, hw, at, &mut byte)?;
                at = (at | (page - 1)).saturating_add(1);
            }
            Ok(())
        })
    }

    /// [`Self::copy_out`] with the disk reads of its faults deferred
    /// ([`Self::user_access_deferring`]).
    pub(crate) fn copy_out_deferring(
        &mut self,
        pid: Pid,
        addr: UserPtr,
        bytes: &[u8],
    ) -> Result<(), Errno> {
        self.user_access_deferring(pid, |memory, space, hw| {
            memory.copy_to_user(space, hw, addr.0, bytes, false)
        })
    }
}

impl<P: Platform> Kernel<P> {
    /// For a call naming the user strings at `paths` (each of at most
    /// `max` bytes), copied first thing by the call: when one lies on a
    /// page of a volume file to read, the wait (its read started and
    /// joined) after which the call is made again. `None`: make it now (a
    /// bad string is the call's own error to give).
    pub(crate) fn path_pages_first(
        &mut self,
        pid: Pid,
        paths: [Option<UserPtr>; 2],
        max: usize,
    ) -> Option<SchedulerCall> {
        if !self.fs.disk.home_mounted() {
            return None;
        }
        for path in paths.into_iter().flatten() {
            let copied = self.user_access_deferring(pid, |memory, space, hw| {
                memory.read_user_cstr(space, hw, path.0, max).map(|_| ())
            });
            if copied == Err(Errno::WaitForRead) {
                return Some(SchedulerCall::AwaitUserRead);
            }
        }
        None
    }
}

/// The path arguments of Linux call `call` (those whose metadata
/// `crate::metadata_reads` reads first), for [`Kernel::path_pages_first`].
pub(crate) fn linux_path_args(call: &LinuxCall) -> [Option<UserPtr>; 2] {
    match *call {
        LinuxCall::Open { path, .. }
        | LinuxCall::FstatAt { path, .. }
        | LinuxCall::Mkdir { path, .. }
        | LinuxCall::Unlink { path, .. }
        | LinuxCall::Access { path, .. }
        | LinuxCall::Chmod { path, .. }
        | LinuxCall::Readlink { path, .. }
        | LinuxCall::Utimensat { path, .. }
        | LinuxCall::Stat { path, .. }
        | LinuxCall::Chdir { path }
        | LinuxCall::Truncate { path, .. }
        | LinuxCall::Statfs { path, .. } => [Some(path), None],
        LinuxCall::Rename { old, new, .. } => [Some(old), Some(new)],
        _ => [None, None],
    }
}

/// `completion`, or for a call whose user access waits for a page's read
/// (`Errno::WaitForRead`: nothing done), the wait after which it is made
/// again.
pub(crate) fn awaiting_user_read(completion: Completion) -> Completion {
    match completion {
        Completion::Done(Err(Errno::WaitForRead)) => {
            Completion::Scheduler(SchedulerCall::AwaitUserRead)
        }
        completion => completion,
    }
}

/// The result of a call made inside another (`pwrite64`'s write through
/// [`Kernel::call`]): a wait for a user page's read comes back as
/// `Err(WaitForRead)`, for the outer call to pass up (it changed nothing
/// before); a call the scheduler side would complete is refused.
pub(crate) fn nested_result(completion: Completion) -> Result<i64, Errno> {
    match completion {
        Completion::Done(result) => result,
        Completion::Scheduler(SchedulerCall::AwaitUserRead) => Err(Errno::WaitForRead),
        _ => Err(Errno::Inval),
    }
}
