//! The Linux calls around signals, waiting, sleeping, and the file and
//! memory calls the POSIX test suites use: `rt_sigaction`,
//! `rt_sigprocmask`, `kill`/`tgkill`, `wait4`, `nanosleep`, `ftruncate`,
//! `unlink`, `fcntl`, `statfs`, `mlock`/`mlockall`, `dup`/`dup2`,
//! resource limits and `umask`. Results are `-errno`.

use neoos_abi::linux::{self as abi};
use neoos_abi::{PAGE_SIZE, TICKS_PER_SECOND};
use neoos_mm::{AsId, Errno, FileAccess, MemorySystem};

use super::signals;
use super::{LinuxCall, LinuxError};
use crate::files::{Descriptor, MAX_DESCRIPTORS};
use crate::fs::{MAX_FILE_LEN, MAX_NODES};
use crate::kernel::Kernel;
use crate::platform::Platform;
use crate::process::{Pid, FOREVER};
use crate::syscall::{Call, Completion, MemoryCall, SchedulerCall, UserPtr};

/// Most pages one `mlock`/`mlockall` brings in (64 MiB).
const POPULATE_MAX_PAGES: u64 = 16 * 1024;
/// Nanoseconds in a second.
const NANOS: u64 = 1_000_000_000;

/// A Linux wait status: exited with `code` (`code << 8`), or killed by a
/// signal (its number, with the core flag 0x80 for a signal whose default
/// action is "core"). A process NeoOS ended for a signal has status 128 +
/// the signal.
pub fn wait_status(status: i64) -> i32 {
    let sig = status - 128;
    if (1..=i64::from(signals::NSIG)).contains(&sig) {
        let core = signals::default_action(sig as u32) == signals::DefaultAction::Core;
        sig as i32 | if core { WAIT_CORE_FLAG } else { 0 }
    } else {
        ((status & 0xff) as i32) << 8
    }
}

/// The wait status bit of a death that dumped core (`WCOREDUMP`).
pub const WAIT_CORE_FLAG: i32 = 0x80;

/// The exit status of a process killed by `sig`.
pub fn killed_by(sig: u32) -> i64 {
    128 + i64::from(sig)
}

fn done(r: Result<i64, Errno>) -> Completion {
    Completion::Done(r)
}

fn linux(e: LinuxError) -> Completion {
    Completion::LinuxError(e)
}

/// The RLIMIT_AS of a Linux process that has one (`None`: no limit, as
/// for every NeoOS process).
pub(crate) fn address_space_limit(program: &super::ProgramAbi) -> Option<u64> {
    match program {
        super::ProgramAbi::Linux(s) if s.limits.address_space.0 != abi::RLIM_INFINITY => {
            Some(s.limits.address_space.0)
        }
        _ => None,
    }
}

/// `ENOMEM` when `space` would hold more than `limit` bytes after mapping
/// `more`.
pub(crate) fn address_space_room_check(
    memory: &MemorySystem,
    space: AsId,
    limit: u64,
    more: u64,
) -> Result<(), Errno> {
    let held: u64 = memory.maps(space).map(|m| m.end - m.start).sum();
    if held.saturating_add(more) > limit {
        return Err(Errno::NoMem);
    }
    Ok(())
}

impl<P: Platform> Kernel<P> {
    pub(super) fn more_linux_call(&mut self, pid: Pid, call: LinuxCall) -> Completion {
        match call {
            LinuxCall::SigAction {
                sig,
                act,
                old,
                setsize,
            } => done(self.rt_sigaction(pid, sig, act, old, setsize)),
            LinuxCall::SigProcMask {
                how,
                set,
                old,
                setsize,
            } => done(self.rt_sigprocmask(pid, how, set, old, setsize)),
            LinuxCall::SigAltStack { ss, old } => {
                Completion::Scheduler(SchedulerCall::SigAltStack { ss, old })
            }
            LinuxCall::SigReturn => Completion::Scheduler(SchedulerCall::SigReturn),
            LinuxCall::Kill { pid: target, sig } => self.linux_kill(pid, target, sig),
            LinuxCall::TgKill { tgid, tid, sig } => self.thread_kill(pid, tgid, tid, sig),
            // A clone without CLONE_THREAD makes a process (fork-like).
            LinuxCall::Clone(a) if a.flags & neoos_abi::linux::CLONE_THREAD == 0 => {
                self.exec_family_call(pid, call)
            }
            LinuxCall::Clone(_) | LinuxCall::Futex { .. } => self.thread_call(pid, call),
            LinuxCall::Wait4 {
                pid: target,
                status,
                options,
                ..
            } => {
                if options & !(abi::WNOHANG | abi::WUNTRACED) != 0 {
                    return done(Err(Errno::Inval));
                }
                Completion::Scheduler(SchedulerCall::LinuxWait {
                    pid: target,
                    status,
                    options,
                })
            }
            LinuxCall::Nanosleep { req, rem } => self.sleep(pid, req, false, rem),
            LinuxCall::ClockNanosleep {
                clock,
                flags,
                req,
                rem,
            } => {
                const TIMER_ABSTIME: u32 = 1;
                if clock > abi::CLOCK_BOOTTIME || flags & !TIMER_ABSTIME != 0 {
                    return done(Err(Errno::Inval));
                }
                self.sleep(pid, req, flags & TIMER_ABSTIME != 0, rem)
            }
            LinuxCall::Pause => Completion::Scheduler(SchedulerCall::Sleep {
                until: FOREVER,
                rem: UserPtr(0),
            }),
            LinuxCall::SigSuspend { mask, setsize } => {
                match self.sigsuspend_begin(pid, mask, setsize) {
                    Ok(()) => Completion::Scheduler(SchedulerCall::Sleep {
                        until: FOREVER,
                        rem: UserPtr(0),
                    }),
                    Err(e) => done(Err(e)),
                }
            }
            LinuxCall::Alarm { seconds } => done(self.alarm(pid, seconds)),
            LinuxCall::SetItimer { which, new, old } => done(self.setitimer(pid, which, new, old)),
            LinuxCall::GetItimer { which, out } => done(self.getitimer(pid, which, out)),
            LinuxCall::Ftruncate { fd, len } => done(self.ftruncate(pid, fd, len)),
            LinuxCall::Dup { .. }
            | LinuxCall::Fcntl {
                cmd: abi::F_DUPFD | abi::F_DUPFD_CLOEXEC,
                ..
            } if !self.has_descriptor_room(pid) => linux(LinuxError::TooManyFiles),
            LinuxCall::Fcntl { fd, cmd, arg } => done(self.fcntl(pid, fd, cmd, arg)),
            LinuxCall::Statfs { path, out } => {
                let found = match self.resolve_path(pid, abi::AT_FDCWD, path) {
                    Ok(p) => self.fs.lookup(&p).is_some() || self.special_of(pid, &p).is_some(),
                    Err(super::calls::Fail::Errno(e)) => return done(Err(e)),
                    Err(super::calls::Fail::Linux(e)) => return linux(e),
                };
                if !found {
                    return done(Err(Errno::NoEnt));
                }
                done(self.statfs(pid, out))
            }
            LinuxCall::Fstatfs { fd, out } => {
                done(self.descriptor(pid, fd).and_then(|_| self.statfs(pid, out)))
            }
            LinuxCall::Mlock { lock: true, .. } | LinuxCall::Mlockall { .. }
                if !self.may_lock(pid) =>
            {
                done(Err(Errno::Perm))
            }
            LinuxCall::Mlock { addr, len, lock } => done(self.mlock(pid, addr, len, lock)),
            LinuxCall::Mlockall { flags } => {
                let known = abi::MCL_CURRENT | abi::MCL_FUTURE | abi::MCL_ONFAULT;
                let valid =
                    flags & !known == 0 && flags & (abi::MCL_CURRENT | abi::MCL_FUTURE) != 0;
                if !valid {
                    return done(Err(Errno::Inval));
                }
                if flags & abi::MCL_CURRENT != 0 {
                    if let Err(e) = self.lock_all_current(pid) {
                        return done(Err(e));
                    }
                    if flags & abi::MCL_ONFAULT == 0 {
                        self.populate(pid, crate::syscall::USER_RANGE);
                    }
                }
                done(Ok(0))
            }
            LinuxCall::Munlockall => done(self.linux_state(pid).map(|s| {
                s.locks.clear();
                0
            })),
            LinuxCall::Msync { addr, len, flags } => {
                let end = addr.saturating_add(len).next_multiple_of(PAGE_SIZE as u64);
                let locked = self
                    .linux_state(pid)
                    .is_ok_and(|s| s.locks.overlaps(addr, end));
                if flags & neoos_abi::mman::MS_INVALIDATE != 0 && locked {
                    // Checked after the arguments the memory family checks
                    // first would fail (alignment, flags, unmapped pages).
                    let mut rest = flags & !neoos_abi::mman::MS_INVALIDATE;
                    if rest == 0 {
                        rest = neoos_abi::mman::MS_ASYNC;
                    }
                    let probe = MemoryCall::Msync {
                        addr,
                        len,
                        flags: rest,
                    };
                    if let Completion::Done(Err(e)) = self.call(pid, Call::Memory(probe)) {
                        return done(Err(e));
                    }
                    return linux(LinuxError::Busy);
                }
                self.call(pid, Call::Memory(MemoryCall::Msync { addr, len, flags }))
            }
            LinuxCall::Munmap { addr, len } => {
                let result = self.call(pid, Call::Memory(MemoryCall::Munmap { addr, len }));
                if let Completion::Done(Ok(_)) = result {
                    let end = addr.saturating_add(len).next_multiple_of(PAGE_SIZE as u64);
                    if let Ok(s) = self.linux_state(pid) {
                        if !s.locks.unlock(addr, end) {
                            // No room to cut a range: the ranges the unmap
                            // touched go whole (nothing there is mapped).
                            s.locks.clear();
                        }
                    }
                }
                result
            }
            LinuxCall::Mremap {
                old,
                old_len,
                new_len,
                flags,
                new,
            } => done(self.mremap(pid, old, old_len, new_len, flags, new)),
            LinuxCall::Dup { fd } => done(self.dup(pid, fd, None)),
            LinuxCall::Dup2 { old, new, flags } if flags & super::DUP3_MARK != 0 => {
                let flags = flags & !super::DUP3_MARK;
                if flags & !abi::O_CLOEXEC != 0 || old == new {
                    return done(Err(Errno::Inval));
                }
                let duped = self.dup(pid, old, Some(new));
                if let (Ok(fd), Some(p)) = (duped, self.processes.get_mut(pid)) {
                    let _ = p.files.set_close_on_exec(fd, flags & abi::O_CLOEXEC != 0);
                }
                done(duped)
            }
            LinuxCall::Dup2 { old, new, .. } => done(self.dup(pid, old, Some(new))),
            LinuxCall::GetRlimit { resource, out } => done(self.get_rlimit(pid, resource, out)),
            LinuxCall::Prlimit {
                pid: target,
                resource,
                new,
                old,
            } => {
                if target != 0 && target != i64::from(pid) {
                    return linux(LinuxError::NoProcess);
                }
                done(self.prlimit(pid, resource, new, old))
            }
            LinuxCall::SetIds {
                group,
                single,
                real,
                effective,
                saved,
            } => done(self.set_ids(pid, group, single, [real, effective, saved])),
            LinuxCall::GetResIds { group, out } => done(self.get_res_ids(pid, group, out)),
            LinuxCall::Pipe { fds, flags } => self.pipe2(pid, fds, flags),
            LinuxCall::Umask { mask } => done(self.linux_state(pid).map(|s| {
                let old = s.umask;
                s.umask = mask & 0o777;
                i64::from(old)
            })),
            call @ (LinuxCall::Poll { .. } | LinuxCall::Ppoll { .. }) => self.poll_call(pid, call),
            call @ (LinuxCall::Execve { .. } | LinuxCall::Waitid { .. }) => {
                self.exec_family_call(pid, call)
            }
            _ => linux(LinuxError::NoSys),
        }
    }

    /// Whether `pid` may lock memory at all: root always (Linux lets it
    /// lock beyond its limit, `CAP_IPC_LOCK`), others when their
    /// RLIMIT_MEMLOCK is not 0 (what they lock is checked against it).
    fn may_lock(&mut self, pid: Pid) -> bool {
        self.linux_state(pid)
            .is_ok_and(|s| s.ids.euid() == 0 || s.limits.memlock.0 != 0)
    }

    /// `ENOMEM` when `locks` holds more than `pid`'s RLIMIT_MEMLOCK (root
    /// is not held to it).
    fn memlock_check(&mut self, pid: Pid, locks: &super::locks::MemoryLocks) -> Result<(), Errno> {
        let state = self.linux_state(pid)?;
        if state.ids.euid() != 0 && locks.bytes() > state.limits.memlock.0 {
            return Err(Errno::NoMem);
        }
        Ok(())
    }

    /// `prlimit64`/`setrlimit`: the old limit (when `old` is given) and
    /// the new one (when `new` is): RLIMIT_AS and RLIMIT_MEMLOCK are kept
    /// and enforced (`mmap` and `brk` against the first, `mlock` the
    /// second); NeoOS has no other per-process limit to change (`EPERM`).
    /// A soft limit above the hard one is `EINVAL`; only root raises a
    /// hard limit. Both pointers are checked before anything changes.
    fn prlimit(
        &mut self,
        pid: Pid,
        resource: u32,
        new: UserPtr,
        old: UserPtr,
    ) -> Result<i64, Errno> {
        if resource >= abi::RLIMIT_NLIMITS {
            return Err(Errno::Inval);
        }
        let wanted = if new.is_null() {
            None
        } else {
            let raw = self.copy_in(pid, new, 16)?;
            let soft = u64::from_le_bytes(raw[..8].try_into().unwrap_or([0; 8]));
            let hard = u64::from_le_bytes(raw[8..].try_into().unwrap_or([0; 8]));
            Some((soft, hard))
        };
        if !old.is_null() {
            self.check_writable(pid, old, 16)?;
        }
        if let Some((soft, hard)) = wanted {
            if soft > hard {
                return Err(Errno::Inval);
            }
            let state = self.linux_state(pid)?;
            let root = state.ids.euid() == 0;
            let current = match resource {
                abi::RLIMIT_AS => state.limits.address_space,
                abi::RLIMIT_MEMLOCK => state.limits.memlock,
                _ => return Err(Errno::Perm),
            };
            if hard > current.1 && !root {
                return Err(Errno::Perm);
            }
        }
        if !old.is_null() {
            self.get_rlimit(pid, resource, old)?;
        }
        if let Some(limit) = wanted {
            let limits = &mut self.linux_state(pid)?.limits;
            match resource {
                abi::RLIMIT_AS => limits.address_space = limit,
                _ => limits.memlock = limit,
            }
        }
        Ok(0)
    }

    /// `mremap`: the mapping core's, after the checks of a new mapping
    /// (kernel heap, mapping count: a move out of the middle of a mapping
    /// and a fixed destination inside another add up to three records;
    /// RLIMIT_AS for the growth). A locked old range is unlocked and its
    /// new range locked.
    fn mremap(
        &mut self,
        pid: Pid,
        old: u64,
        old_len: u64,
        new_len: u64,
        flags: u32,
        new: u64,
    ) -> Result<i64, Errno> {
        self.heap_reserve_check()?;
        self.mapping_room_check(pid, 3)?;
        self.address_space_check(pid, new_len.saturating_sub(old_len))?;
        let moved = self.with_space(pid, |m, s, hw| {
            m.mremap(s, hw, old, old_len, new_len, flags, new)
        })?;
        let round = |len: u64| len.checked_next_multiple_of(PAGE_SIZE as u64);
        if let (Some(old_end), Some(new_len)) =
            (old.checked_add(old_len).and_then(round), round(new_len))
        {
            if let Ok(s) = self.linux_state(pid) {
                if s.locks.overlaps(old, old_end) {
                    if !s.locks.unlock(old, old_end) {
                        s.locks.clear();
                    }
                    let _ = s.locks.lock(moved, moved + new_len);
                }
            }
        }
        Ok(moved as i64)
    }

    /// `ENOMEM` when `pid` (a Linux process with an RLIMIT_AS) would hold
    /// more than its limit after mapping `more` bytes.
    pub(crate) fn address_space_check(&mut self, pid: Pid, more: u64) -> Result<(), Errno> {
        let Some(limit) = self
            .processes
            .get(pid)
            .and_then(|p| address_space_limit(&p.abi))
        else {
            return Ok(());
        };
        let space = self.space_of(pid)?;
        address_space_room_check(&self.memory, space, limit, more)
    }

    /// `setresuid`/`setresgid` and their kin: root sets any id; another
    /// user only ids among its real, effective and saved ones.
    fn set_ids(
        &mut self,
        pid: Pid,
        group: bool,
        single: bool,
        new: [u32; 3],
    ) -> Result<i64, Errno> {
        let state = self.linux_state(pid)?;
        let root = state.ids.euid() == 0;
        let ids = if group {
            &mut state.ids.gid
        } else {
            &mut state.ids.uid
        };
        let current = *ids;
        if single && !root {
            // setuid/setgid of a non-root process: the effective id only.
            if !current.contains(&new[0]) || new[0] == u32::MAX {
                return Err(Errno::Perm);
            }
            ids[1] = new[0];
            return Ok(0);
        }
        for &id in &new {
            if id != u32::MAX && !root && !current.contains(&id) {
                return Err(Errno::Perm);
            }
        }
        for (slot, id) in ids.iter_mut().zip(new) {
            if id != u32::MAX {
                *slot = id;
            }
        }
        Ok(0)
    }

    /// `getresuid`/`getresgid`: every pointer is checked before any id is
    /// stored.
    fn get_res_ids(&mut self, pid: Pid, group: bool, out: [UserPtr; 3]) -> Result<i64, Errno> {
        let ids = self.linux_state(pid)?.ids;
        let ids = if group { ids.gid } else { ids.uid };
        for p in out {
            self.check_writable(pid, p, 4)?;
        }
        for (p, id) in out.into_iter().zip(ids) {
            self.copy_out(pid, p, &id.to_le_bytes())?;
        }
        Ok(0)
    }

    /// `pipe2(fds, flags)`: both descriptors fit and `fds` is writable
    /// before the pipe is made. `O_NONBLOCK` is refused (every pipe call
    /// waits).
    fn pipe2(&mut self, pid: Pid, fds: UserPtr, flags: u32) -> Completion {
        if flags & !abi::O_CLOEXEC != 0 {
            return done(Err(Errno::Inval));
        }
        if let Err(e) = self
            .heap_reserve_check()
            .and_then(|_| self.check_writable(pid, fds, 8))
        {
            return done(Err(e));
        }
        let Some(p) = self.processes.get(pid) else {
            return done(Err(Errno::Inval));
        };
        let mut probe = p.files.clone();
        let room =
            probe.install(Descriptor::Zero).is_ok() && probe.install(Descriptor::Zero).is_ok();
        if !room {
            return linux(LinuxError::TooManyFiles);
        }
        let id = match self.pipes.create() {
            Ok(id) => id,
            Err(_) => return linux(LinuxError::TooManyFiles),
        };
        let p = match self.processes.get_mut(pid) {
            Some(p) => p,
            None => return done(Err(Errno::Inval)),
        };
        let read = p.files.install(Descriptor::Pipe { id, write: false });
        let write = p.files.install(Descriptor::Pipe { id, write: true });
        let (Ok(r), Ok(w)) = (read, write) else {
            return done(Err(Errno::NoMem));
        };
        let cloexec = flags & abi::O_CLOEXEC != 0;
        let _ = p.files.set_close_on_exec(r, cloexec);
        let _ = p.files.set_close_on_exec(w, cloexec);
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&(r as i32).to_le_bytes());
        out[4..].copy_from_slice(&(w as i32).to_le_bytes());
        done(self.copy_out(pid, fds, &out).map(|_| 0))
    }

    /// One step of a pipe read or write of `count` bytes at `buf`:
    /// `Some(rax)` when done (bytes moved, 0 at end of file, or `-errno`),
    /// `None` when it must wait (empty to read, full to write). Writing to
    /// a pipe without readers makes SIGPIPE pending and fails with EPIPE.
    pub fn pipe_step(
        &mut self,
        pid: Pid,
        fd: i64,
        buf: UserPtr,
        count: usize,
        write: bool,
    ) -> Option<i64> {
        let errno = |e: Errno| Some(-e.posix_errno());
        let id = match self.descriptor(pid, fd) {
            Ok(Descriptor::Pipe { id, write: w }) if w == write => id,
            Ok(_) => return errno(Errno::BadFd),
            Err(e) => return errno(e),
        };
        if count == 0 {
            return Some(0);
        }
        let chunk = count.min(crate::pipes::PIPE_CAPACITY);
        if write {
            if let Err(e) = self.check_readable(pid, buf, chunk) {
                return errno(e);
            }
            let n = chunk.min(self.pipes.room(id));
            let bytes = if n == 0 {
                alloc::vec::Vec::new()
            } else {
                match self.copy_in(pid, buf, n) {
                    Ok(b) => b,
                    Err(e) => return errno(e),
                }
            };
            match self.pipes.write(id, &bytes) {
                Ok(crate::pipes::PipeWrite::Wrote(0) | crate::pipes::PipeWrite::Full) => None,
                Ok(crate::pipes::PipeWrite::Wrote(n)) => Some(n as i64),
                Ok(crate::pipes::PipeWrite::Broken) => {
                    self.raise(pid, signals::SIGPIPE);
                    Some(-neoos_abi::errno::EPIPE)
                }
                Err(e) => errno(e),
            }
        } else {
            if let Err(e) = self.check_writable(pid, buf, chunk) {
                return errno(e);
            }
            match self.pipes.read(id, chunk) {
                Ok(crate::pipes::PipeRead::Data(bytes)) => match self.copy_out(pid, buf, &bytes) {
                    Ok(()) => Some(bytes.len() as i64),
                    Err(e) => errno(e),
                },
                Ok(crate::pipes::PipeRead::EndOfFile) => Some(0),
                Ok(crate::pipes::PipeRead::Empty) => None,
                Err(e) => errno(e),
            }
        }
    }

    /// Whether one more descriptor fits in `pid`'s table.
    pub(crate) fn has_descriptor_room(&self, pid: Pid) -> bool {
        self.processes.get(pid).is_some_and(|p| p.files.has_room())
    }

    /// `kill(target, sig)`: a positive pid names one process; 0 and -1 name
    /// the caller (NeoOS has no process groups). The signal becomes
    /// pending and the target takes it (its handler or its default action,
    /// which may end it) when it next returns to user mode, woken if it
    /// sleeps; a signal to the caller itself is taken before `kill`
    /// returns to it.
    pub(crate) fn linux_kill(&mut self, me: Pid, target: i64, sig: u32) -> Completion {
        let target = match target {
            0 | -1 => me,
            t => match Pid::try_from(t) {
                Ok(t) if t > 0 => t,
                _ => return linux(LinuxError::NoProcess),
            },
        };
        let origin = signals::SignalOrigin {
            code: signals::SI_USER,
            pid: me,
            status: 0,
        };
        match self.send_signal_from(target, sig, origin) {
            Err(Errno::NoEnt) => linux(LinuxError::NoProcess),
            Err(e) => done(Err(e)),
            Ok(()) => done(Ok(0)),
        }
    }

    /// One step of Linux `wait4` for `me`: `Some(pid)` of a child it took
    /// (its wait status stored), `Some(0)` with `WNOHANG` when none has
    /// ended, `None` when the caller must block and step again.
    pub fn linux_wait_step(
        &mut self,
        me: Pid,
        target: i64,
        status: UserPtr,
        options: u32,
    ) -> Result<Option<i64>, LinuxError> {
        let fault = |_| LinuxError::Interrupted;
        if !status.is_null() {
            self.check_writable(me, status, 4)
                .map_err(|_| LinuxError::Interrupted)?;
        }
        let wanted = |child: Pid| target <= 0 || i64::from(child) == target;
        let has_child = self
            .processes
            .children_of(me)
            .any(|(child, _)| wanted(child));
        if !has_child {
            return Err(LinuxError::NoChild);
        }
        let ended = self
            .processes
            .children_of(me)
            .find(|&(child, ended)| wanted(child) && ended)
            .map(|(child, _)| child);
        let Some(child) = ended else {
            return Ok((options & abi::WNOHANG != 0).then_some(0));
        };
        let Some((child, code)) = self.processes.reap(me, child) else {
            return Ok(None);
        };
        if !status.is_null() {
            self.copy_out(me, status, &wait_status(code).to_le_bytes())
                .map_err(fault)?;
        }
        Ok(Some(i64::from(child)))
    }

    /// `nanosleep`/`clock_nanosleep`: the timespec is checked, then the
    /// caller sleeps until the clock has passed the time (rounded up to
    /// the next tick) or a signal is to be taken (`EINTR`, the time left
    /// stored at `rem` for a relative sleep).
    fn sleep(&mut self, pid: Pid, req: UserPtr, absolute: bool, rem: UserPtr) -> Completion {
        let raw = match self.copy_in(pid, req, 16) {
            Ok(r) => r,
            Err(e) => return done(Err(e)),
        };
        let seconds = i64::from_le_bytes(raw[0..8].try_into().unwrap_or([0; 8]));
        let nanos = i64::from_le_bytes(raw[8..16].try_into().unwrap_or([0; 8]));
        if seconds < 0 || !(0..NANOS as i64).contains(&nanos) {
            return done(Err(Errno::Inval));
        }
        let tick_ns = NANOS / TICKS_PER_SECOND;
        let ticks = (seconds as u64)
            .saturating_mul(TICKS_PER_SECOND)
            .saturating_add((nanos as u64).div_ceil(tick_ns));
        let now = self.platform.ticks();
        let (until, rem) = if absolute {
            (ticks, UserPtr(0))
        } else {
            (now.saturating_add(ticks), rem)
        };
        // FOREVER means "until a signal": a finite sleep stops short of it.
        let until = until.min(FOREVER - 1);
        Completion::Scheduler(SchedulerCall::Sleep { until, rem })
    }

    /// `ftruncate`: the descriptor must be a file open for writing.
    fn ftruncate(&mut self, pid: Pid, fd: i64, len: i64) -> Result<i64, Errno> {
        let Descriptor::File(f) = self.descriptor(pid, fd)? else {
            return Err(Errno::Inval);
        };
        if len < 0 || !f.access.can_write() {
            return Err(Errno::Inval);
        }
        if len as u64 > MAX_FILE_LEN {
            return Err(Errno::NoMem);
        }
        let (memory, mut io) = self.memory_io();
        memory.file_truncate(&mut io, f.file, len as u64)?;
        self.touch_file(f.file, super::meta::Touch::Modify);
        Ok(0)
    }

    /// `fcntl`: descriptor flags (`FD_CLOEXEC`, kept per descriptor),
    /// status flags (the access mode and
    /// `O_APPEND`; setting them changes nothing NeoOS keeps), and
    /// `F_DUPFD`/`F_DUPFD_CLOEXEC` at the lowest free number from `arg` on.
    fn fcntl(&mut self, pid: Pid, fd: i64, cmd: u32, arg: u64) -> Result<i64, Errno> {
        let d = self.descriptor(pid, fd)?;
        let files = &mut self.processes.get_mut(pid).ok_or(Errno::Inval)?.files;
        match cmd {
            abi::F_GETFD => Ok(i64::from(files.close_on_exec(fd))),
            abi::F_SETFD => files
                .set_close_on_exec(fd, arg & abi::FD_CLOEXEC != 0)
                .map(|_| 0),
            abi::F_SETFL => Ok(0),
            abi::F_GETFL => Ok(match d {
                Descriptor::Console | Descriptor::Zero | Descriptor::Null => 2,
                Descriptor::Dir { .. } => 0o200000,
                Descriptor::Pipe { write, .. } => i64::from(write),
                Descriptor::File(f) => {
                    let mode = match f.access {
                        FileAccess::ReadOnly => 0,
                        FileAccess::WriteOnly => 1,
                        FileAccess::ReadWrite => 2,
                    };
                    mode | if f.append { 0o2000 } else { 0 }
                }
            }),
            abi::F_DUPFD | abi::F_DUPFD_CLOEXEC => {
                // The lowest free number at or above `arg` (a shell saves
                // a descriptor it redirects at 10 and above).
                let min = usize::try_from(arg)
                    .ok()
                    .filter(|&m| m < MAX_DESCRIPTORS)
                    .ok_or(Errno::Inval)?;
                let free = files.lowest_free_from(min).ok_or(Errno::NoMem)?;
                let new = self.dup(pid, fd, Some(free))?;
                if cmd == abi::F_DUPFD {
                    return Ok(new);
                }
                let p = self.processes.get_mut(pid).ok_or(Errno::Inval)?;
                p.files.set_close_on_exec(new, true)?;
                Ok(new)
            }
            _ => Err(Errno::Inval),
        }
    }

    /// `statfs`/`fstatfs`: one RAM file system for every path, its room
    /// the frames the RAM disk can still take.
    fn statfs(&mut self, pid: Pid, out: UserPtr) -> Result<i64, Errno> {
        let page = PAGE_SIZE as u64;
        let free = self.fs.disk.ram.available_blocks() as u64;
        let blocks = free + self.fs.disk.reserved_pages() as u64;
        let files = MAX_NODES as u64;
        let fields = [
            abi::NEOOS_FS_MAGIC,
            page,
            blocks,
            free,
            free,
            files,
            files / 2,
            0,
            255,
            page,
            0,
        ];
        let mut b = [0u8; abi::STATFS_SIZE];
        for (slot, v) in b.chunks_exact_mut(8).zip(fields) {
            slot.copy_from_slice(&v.to_le_bytes());
        }
        self.copy_out(pid, out, &b)?;
        Ok(0)
    }

    /// `mlock`/`munlock`: NeoOS never pages memory out, so every mapped
    /// page is as good as locked; the range (whole pages) must be mapped.
    fn mlock(&mut self, pid: Pid, addr: u64, len: u64, lock: bool) -> Result<i64, Errno> {
        if len == 0 {
            return Ok(0);
        }
        let page = PAGE_SIZE as u64;
        let start = addr & !(page - 1);
        let end = addr
            .checked_add(len)
            .and_then(|e| e.checked_next_multiple_of(page))
            .ok_or(Errno::NoMem)?;
        let space = self.space_of(pid)?;
        self.check_fully_mapped(space, start, end)?;
        let mut locks = self.linux_state(pid)?.locks;
        let kept = if lock {
            locks.lock(start, end)
        } else {
            locks.unlock(start, end)
        };
        if !kept {
            return Err(Errno::NoMem);
        }
        if lock {
            self.memlock_check(pid, &locks)?;
        }
        self.linux_state(pid)?.locks = locks;
        if lock {
            self.populate(pid, (start, end));
        }
        Ok(0)
    }

    /// `mlockall(MCL_CURRENT)`: every mapping of `pid` is locked; `NoMem`,
    /// with nothing changed, when that needs too many ranges.
    fn lock_all_current(&mut self, pid: Pid) -> Result<(), Errno> {
        let space = self.space_of(pid)?;
        let mut locks = self.linux_state(pid)?.locks;
        for info in self.memory.maps(space) {
            if !locks.lock(info.start, info.end) {
                return Err(Errno::NoMem);
            }
        }
        self.memlock_check(pid, &locks)?;
        self.linux_state(pid)?.locks = locks;
        Ok(())
    }

    /// Brings the pages of the readable mappings in `[range.0, range.1)`
    /// into memory, as a locked page is, up to [`POPULATE_MAX_PAGES`] per
    /// call (a call stays short and cannot take all memory). Pages that do
    /// not come in (past that bound, no memory, a file that cannot be
    /// read) come in at their first touch, as any page does.
    fn populate(&mut self, pid: Pid, range: (u64, u64)) {
        let Ok(space) = self.space_of(pid) else {
            return;
        };
        let mut budget = POPULATE_MAX_PAGES * PAGE_SIZE as u64;
        let mut at = range.0;
        while at < range.1 && budget > 0 {
            let Some(info) = self.memory.maps_from(space, at).next() else {
                return;
            };
            if info.start >= range.1 {
                return;
            }
            let start = info.start.max(at);
            let end = info.end.min(range.1).min(start.saturating_add(budget));
            budget -= end - start;
            if info.read {
                let _ = self.check_readable(pid, UserPtr(start), (end - start) as usize);
            }
            at = end;
        }
    }

    /// `dup` (lowest free number) and `dup2` (number `new`, closing what
    /// it held; the same number is left as it is).
    fn dup(&mut self, pid: Pid, fd: i64, new: Option<i64>) -> Result<i64, Errno> {
        self.heap_reserve_check()?;
        let d = self.descriptor(pid, fd)?;
        if new == Some(fd) {
            return Ok(fd);
        }
        let p = self.processes.get_mut(pid).ok_or(Errno::Inval)?;
        let (number, replaced) = match new {
            None => (p.files.install(d)?, None),
            Some(n) => (n, p.files.install_at(n, d)?),
        };
        match d {
            Descriptor::File(f) => self.file_io().open_ref(f.file),
            Descriptor::Pipe { id, write } => self.pipes.add_ref(id, write),
            Descriptor::Dir { id } => self.fs.open_dirs.add_ref(id),
            _ => {}
        }
        if let Some(old) = replaced {
            let _ = self.file_io().close(old);
        }
        Ok(number)
    }

    /// A limit of `resource`: RLIMIT_AS and RLIMIT_MEMLOCK as the process
    /// keeps them (memlock 0 unless raised: only root locks memory then);
    /// NeoOS sets no other per process (its bounds are system-wide), so
    /// they read as unlimited.
    fn get_rlimit(&mut self, pid: Pid, resource: u32, out: UserPtr) -> Result<i64, Errno> {
        if resource >= abi::RLIMIT_NLIMITS {
            return Err(Errno::Inval);
        }
        let limits = self.linux_state(pid).map(|s| s.limits).unwrap_or_default();
        let (soft, hard) = match resource {
            abi::RLIMIT_AS => limits.address_space,
            abi::RLIMIT_MEMLOCK => limits.memlock,
            _ => (abi::RLIM_INFINITY, abi::RLIM_INFINITY),
        };
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&soft.to_le_bytes());
        b[8..].copy_from_slice(&hard.to_le_bytes());
        self.copy_out(pid, out, &b)?;
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_status_encodes_exits_and_signals_as_linux() {
        assert_eq!(wait_status(0), 0);
        assert_eq!(wait_status(3), 3 << 8);
        assert_eq!(wait_status(killed_by(signals::SIGSEGV)), 11 | 0x80);
        assert_eq!(wait_status(neoos_abi::status::BUSERROR), 7 | 0x80);
        assert_eq!(wait_status(neoos_abi::status::KILLED), 9);
        assert_eq!(wait_status(killed_by(signals::SIGTERM)), 15);
        assert_eq!(wait_status(killed_by(signals::SIGALRM)), 14);
        assert_eq!(wait_status(killed_by(signals::SIGABRT)), 6 | 0x80);
    }
}
