//! The Linux process calls around a program image: `execve` (the arguments
//! copied in, the new image built beside the old one and swapped in only
//! once it is whole, the old address space torn down in steps afterwards),
//! `clone` used as fork (and `vfork`, decoded as fork), and `waitid`.
//!
//! A failed `execve` changes nothing: everything that can fail (copying
//! the vectors, reading and checking the ELF file, building the new space
//! and its stack) happens before the process record is touched.

use alloc::string::String;
use alloc::vec::Vec;

use neoos_abi::linux::{self as abi};
use neoos_mm::{Errno, Hw};

use super::{signals, wait_status, LinuxCall, LinuxError, ProgramAbi};
use crate::fs::Node;
use crate::kernel::{Kernel, EXIT_STEP_MAPPINGS};
use crate::loader::Loaded;
use crate::platform::Platform;
use crate::process::{Parent, Pid, State};
use crate::stack::MAX_ARGUMENT_BYTES;
use crate::syscall::{Completion, SchedulerCall, UserPtr};

/// Bytes of the initial stack block kept for what `execve` adds to the
/// caller's vectors: the auxiliary vector, `AT_RANDOM`'s bytes, argc and
/// alignment (the program's path is counted on top).
const STACK_BLOCK_OVERHEAD: usize = 512;

/// The path that names the running program itself.
pub const PROC_SELF_EXE: &str = "/proc/self/exe";

/// Why an `execve` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecError {
    Errno(Errno),
    Linux(LinuxError),
}

impl ExecError {
    /// The value for `rax`: `-errno`.
    pub fn result(self) -> i64 {
        match self {
            ExecError::Errno(e) => -e.posix_errno(),
            ExecError::Linux(e) => e.result(),
        }
    }
}

impl From<Errno> for ExecError {
    fn from(e: Errno) -> Self {
        ExecError::Errno(e)
    }
}

impl From<super::calls::Fail> for ExecError {
    fn from(e: super::calls::Fail) -> Self {
        match e {
            super::calls::Fail::Errno(e) => ExecError::Errno(e),
            super::calls::Fail::Linux(e) => ExecError::Linux(e),
        }
    }
}

impl From<LinuxError> for ExecError {
    fn from(e: LinuxError) -> Self {
        ExecError::Linux(e)
    }
}

/// The flags a fork-like `clone` may carry: the end signal, the tid stores,
/// the child's TLS, and `CLONE_VFORK` (the parent goes on at once: the
/// child has its own copy-on-write space).
const FORK_LIKE_FLAGS: u64 = abi::CSIGNAL
    | abi::CLONE_VFORK
    | abi::CLONE_SETTLS
    | abi::CLONE_PARENT_SETTID
    | abi::CLONE_CHILD_SETTID
    | abi::CLONE_CHILD_CLEARTID;

/// What a `clone` asks for (a fork-like one here, a thread in
/// [`crate::threads`]).
pub use crate::threads::CloneArgs;

/// Which children a `waitid` waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitTarget {
    /// Any child (`P_ALL`; also `P_PGID`: NeoOS has one process group).
    Any,
    /// Child `pid` (`P_PID`).
    Pid(Pid),
}

/// `waitid` options NeoOS knows (`__WALL`, `__WCLONE`, `__WNOTHREAD`
/// included: one thread per process, so they change nothing).
const WAITID_OPTIONS: u32 = abi::WNOHANG
    | abi::WSTOPPED
    | abi::WEXITED
    | abi::WCONTINUED
    | abi::WNOWAIT
    | 0x2000_0000 /* __WNOTHREAD */
    | 0x4000_0000 /* __WALL */
    | 0x8000_0000 /* __WCLONE */;

/// `si_signo` of a child's end.
const SIGCHLD: u32 = 17;

/// The `siginfo_t` a `waitid` stores for a child `pid` that ended with
/// (kernel) status `status`: `SIGCHLD`, `CLD_EXITED` with the exit code or
/// `CLD_KILLED` with the signal.
pub fn child_siginfo(pid: Pid, status: i64) -> [u8; signals::SIGINFO_SIZE] {
    let encoded = wait_status(status);
    let (code, value) = match encoded & 0x7f {
        0 => (abi::CLD_EXITED, (encoded >> 8) & 0xff),
        sig => (abi::CLD_KILLED, sig),
    };
    let mut b = [0u8; signals::SIGINFO_SIZE];
    b[0..4].copy_from_slice(&SIGCHLD.to_le_bytes());
    b[8..12].copy_from_slice(&code.to_le_bytes());
    b[16..20].copy_from_slice(&pid.to_le_bytes());
    // si_uid (20..24) is root's 0.
    b[24..28].copy_from_slice(&value.to_le_bytes());
    b
}

impl<P: Platform> Kernel<P> {
    /// `execve`, `clone` and `waitid`: checks what can be checked here and
    /// hands the rest to the kernel's scheduler side.
    pub(super) fn exec_family_call(&mut self, _pid: Pid, call: LinuxCall) -> Completion {
        match call {
            LinuxCall::Execve { path, argv, envp } => {
                Completion::Scheduler(SchedulerCall::Exec { path, argv, envp })
            }
            LinuxCall::Clone(args) => {
                let flags = args.flags;
                // A thread is `crate::threads`' (the caller routes it
                // there); sharing memory or signal actions without being a
                // thread (posix_spawn's child) is not provided: ENOSYS, and
                // libc's posix_spawn falls back or fails cleanly.
                if flags & (abi::CLONE_VM | abi::CLONE_THREAD | abi::CLONE_SIGHAND) != 0 {
                    return Completion::LinuxError(LinuxError::NoSys);
                }
                if flags & !FORK_LIKE_FLAGS != 0 || flags & abi::CSIGNAL > 64 {
                    return Completion::Done(Err(Errno::Inval));
                }
                if let Err(e) = self.heap_reserve_check() {
                    return Completion::Done(Err(e));
                }
                Completion::Scheduler(SchedulerCall::Clone(args))
            }
            LinuxCall::Waitid {
                idtype,
                id,
                info,
                options,
            } => {
                let target = match idtype {
                    abi::P_ALL | abi::P_PGID => WaitTarget::Any,
                    abi::P_PID => match Pid::try_from(id) {
                        Ok(p) if p > 0 => WaitTarget::Pid(p),
                        _ => return Completion::Done(Err(Errno::Inval)),
                    },
                    _ => return Completion::Done(Err(Errno::Inval)),
                };
                let kinds = abi::WEXITED | abi::WSTOPPED | abi::WCONTINUED;
                if options & !WAITID_OPTIONS != 0 || options & kinds == 0 {
                    return Completion::Done(Err(Errno::Inval));
                }
                Completion::Scheduler(SchedulerCall::WaitId {
                    target,
                    info,
                    options,
                })
            }
            _ => Completion::LinuxError(LinuxError::NoSys),
        }
    }

    /// `execve(path, argv, envp)` for `pid`: builds the new program's
    /// address space and stack, then (nothing can fail from there on)
    /// swaps it in: the old space waits in [`crate::process::Process::retired`]
    /// for [`Self::exec_retire_step`], close-on-exec descriptors are closed,
    /// caught signals go back to their default action (ignored ones stay
    /// ignored; the mask and pending signals stay), the pid stays. Returns
    /// the registers the new program starts with. On failure nothing of
    /// the process has changed.
    pub fn execve(
        &mut self,
        pid: Pid,
        path: UserPtr,
        argv: UserPtr,
        envp: UserPtr,
    ) -> Result<P::UserFrame, ExecError> {
        self.heap_reserve_check()?;
        let mut path = self.resolve_path(pid, abi::AT_FDCWD, path)?;
        if path == PROC_SELF_EXE {
            path = self.own_program_path(pid)?;
        }
        let mut budget = MAX_ARGUMENT_BYTES
            .checked_sub(STACK_BLOCK_OVERHEAD + path.len() + 1)
            .ok_or(LinuxError::TooBig)?;
        let argv = self.copy_string_vector(pid, argv, &mut budget)?;
        let envp = self.copy_string_vector(pid, envp, &mut budget)?;
        match self.fs.lookup(&path) {
            Some(Node::File(_)) => {}
            Some(Node::Dir) => return Err(Errno::Access.into()),
            None => return Err(Errno::NoEnt.into()),
        }
        let loaded = self
            .load_with_env(&path, &argv, &envp)
            .map_err(|e| match e {
                // A file the loader refuses, or whose segments the mapping
                // core refuses (outside user space, misaligned): no program.
                Errno::Perm | Errno::Inval | Errno::Access => ExecError::Linux(LinuxError::NoExec),
                other => ExecError::Errno(other),
            })?;
        self.install_image(pid, path, loaded)
    }

    /// The part of `execve` after the new image is built: the process
    /// takes it (the old space retires), keeping what Linux keeps. Not
    /// inlined, and the ABI state merged in place: copies of it in
    /// `execve`'s frame added up to 8 KiB of kernel stack.
    #[inline(never)]
    fn install_image(
        &mut self,
        pid: Pid,
        path: String,
        loaded: Loaded<P>,
    ) -> Result<P::UserFrame, ExecError> {
        // Nothing fails from here on. Every other thread ends (Linux: the
        // exec'ing thread is the one that goes on, in the new program).
        let me = self.caller_tid(pid);
        self.end_other_threads(pid, me);
        // The clear-child-tid address named the old image's memory
        // (Linux forgets it at exec too).
        if let Some(t) = self.processes.thread_mut(me) {
            t.clear_child_tid = 0;
        }
        self.finish_retired(pid);
        let Some(p) = self.processes.get_mut(pid) else {
            self.discard_loaded(loaded.space, loaded.table);
            return Err(Errno::Inval.into());
        };
        let old_space = core::mem::replace(&mut p.space, loaded.space);
        if let Some(old_table) = p.table.replace(loaded.table) {
            p.retired = Some((old_space, old_table));
        }
        let old_abi = core::mem::replace(&mut p.abi, loaded.abi);
        if let (ProgramAbi::Linux(old), ProgramAbi::Linux(new)) = (&old_abi, &mut p.abi) {
            new.ids = old.ids;
            new.umask = old.umask;
            new.limits = old.limits;
        }
        // Handlers go back to their defaults; the mask, the pending
        // signals and the real timer stay (POSIX). The thread has no
        // alternate stack and no thread pointer in the new program.
        p.signals.reset_handlers();
        let old_path = core::mem::replace(&mut p.path, path);
        if p.parent == Parent::Kernel && p.started_as.is_none() {
            p.started_as = Some(old_path);
        }
        if let Some(t) = self.processes.thread_part_mut(me) {
            t.altstack = Default::default();
            t.fs_base = 0;
        }
        while let Some(d) = self
            .processes
            .get_mut(pid)
            .and_then(|p| p.files.take_next_close_on_exec())
        {
            // As at exit, a failed writeback cannot stop the exec.
            let _ = self.file_io().close(d);
        }
        self.reap_released_orphans();
        Ok(loaded.frame)
    }

    /// One step of tearing down the address space an `execve` of `pid`
    /// replaced: up to [`EXIT_STEP_MAPPINGS`] of its lowest mappings, then,
    /// once none is left, the space and its page table. `true` when nothing
    /// is left. The kernel runs it after switching to the new table, other
    /// processes running between steps.
    pub fn exec_retire_step(&mut self, pid: Pid) -> bool {
        let Some(p) = self.processes.get_mut(pid) else {
            return true;
        };
        let Some((space, table)) = p.retired.as_mut() else {
            return true;
        };
        let mut hw = Hw::new(table, self.platform.frames(), &mut self.fs.disk);
        let done = self
            .memory
            .unmap_lowest(*space, &mut hw, EXIT_STEP_MAPPINGS)
            .unwrap_or(true);
        if done {
            self.finish_retired(pid);
        }
        done
    }

    /// Tears down at once whatever an `execve` of `pid` left to retire
    /// (its end, or a second exec on the host).
    pub(crate) fn finish_retired(&mut self, pid: Pid) {
        let Some((space, table)) = self.processes.get_mut(pid).and_then(|p| p.retired.take())
        else {
            return;
        };
        self.discard_loaded(space, table);
    }

    /// Tears down a space and frees its table (not the active one).
    fn discard_loaded(&mut self, space: neoos_mm::AsId, mut table: P::PageTable) {
        let mut hw = Hw::new(&mut table, self.platform.frames(), &mut self.fs.disk);
        let _ = self.memory.destroy_address_space(space, &mut hw);
        self.platform.free_page_table(table);
        // Outside any call: the old program's mappings held files.
        self.reap_released_orphans();
    }

    /// The program `pid` runs (`/proc/self/exe`).
    fn own_program_path(&self, pid: Pid) -> Result<String, Errno> {
        let p = self.processes.get(pid).ok_or(Errno::Inval)?;
        let mut path = String::new();
        path.try_reserve_exact(p.path.len())
            .map_err(|_| Errno::NoMem)?;
        path.push_str(&p.path);
        Ok(path)
    }

    /// Copies a NULL-ended vector of strings (`argv`, `envp`) from `pid`'s
    /// memory, each pointer and string (with its NUL) charged to `budget`:
    /// `E2BIG` when they do not fit, `EFAULT` for a pointer into unmapped
    /// memory or a string that runs into it. A NULL vector is empty.
    fn copy_string_vector(
        &mut self,
        pid: Pid,
        vector: UserPtr,
        budget: &mut usize,
    ) -> Result<Vec<Vec<u8>>, ExecError> {
        let mut strings = Vec::new();
        if vector.is_null() {
            return Ok(strings);
        }
        loop {
            let at = vector.offset(strings.len() as u64 * 8);
            let mut word = [0u8; 8];
            let (memory, space, mut hw) = self.hw_for(pid).ok_or(Errno::Inval)?;
            memory.copy_from_user(space, &mut hw, at.addr(), &mut word)?;
            let pointer = u64::from_le_bytes(word);
            if pointer == 0 {
                return Ok(strings);
            }
            *budget = budget.checked_sub(8 + 1).ok_or(LinuxError::TooBig)?;
            let string = memory
                .read_user_cstr(space, &mut hw, pointer, *budget)
                .map_err(|e| match e {
                    Errno::Inval => ExecError::Linux(LinuxError::TooBig),
                    other => ExecError::Errno(other),
                })?;
            *budget -= string.len();
            strings.try_reserve(1).map_err(|_| Errno::NoMem)?;
            strings.push(string);
        }
    }

    /// A fork-like `clone` of `parent` resuming with `frame` (the kernel
    /// has set the child's stack pointer): the parent-side tid store is
    /// checked first (`EFAULT`, no child), then the child is made with its
    /// TLS and the tid stores done. `CLONE_CHILD_CLEARTID`'s address goes
    /// on the child's thread, as for a thread: when that thread ends while
    /// another of the child lives, 0 is stored there (in the child's
    /// memory) and a futex waiter woken; the child's end as a whole stores
    /// nothing (as Linux, which stores only while the memory has other
    /// users).
    pub fn clone_process(
        &mut self,
        parent: Pid,
        frame: &P::UserFrame,
        args: CloneArgs,
    ) -> Result<Pid, Errno> {
        if args.flags & abi::CLONE_PARENT_SETTID != 0 {
            self.check_writable(parent, args.parent_tid, 4)?;
        }
        let child = self.fork(parent, frame)?;
        if args.flags & abi::CLONE_SETTLS != 0 {
            if let Some(first) = self.processes.thread_part_mut(child) {
                first.fs_base = args.tls;
            }
        }
        let tid = child.to_le_bytes();
        if args.flags & abi::CLONE_PARENT_SETTID != 0 {
            // Checked writable above; a store cannot undo the fork.
            let _ = self.copy_out(parent, args.parent_tid, &tid);
        }
        if args.flags & abi::CLONE_CHILD_SETTID != 0 {
            // Linux ignores a failed store here too (the child's page).
            let _ = self.copy_out(child, args.child_tid, &tid);
        }
        if args.flags & abi::CLONE_CHILD_CLEARTID != 0 {
            // The child's one thread has the child's id.
            if let Some(t) = self.processes.thread_mut(child) {
                t.clear_child_tid = args.child_tid.addr();
            }
        }
        Ok(child)
    }

    /// One step of `waitid` for `me`: `Some(0)` when a child was taken (its
    /// siginfo stored; with `WNOWAIT` it stays waitable) or, with `WNOHANG`,
    /// when none has ended (the siginfo zeroed); `None` when the caller must
    /// block and step again. `ECHILD` without a matching child.
    pub fn waitid_step(
        &mut self,
        me: Pid,
        target: WaitTarget,
        info: UserPtr,
        options: u32,
    ) -> Result<Option<i64>, ExecError> {
        if !info.is_null() {
            self.check_writable(me, info, signals::SIGINFO_SIZE)?;
        }
        let wanted = |child: Pid| match target {
            WaitTarget::Any => true,
            WaitTarget::Pid(p) => p == child,
        };
        if !self.processes.children_of(me).any(|(c, _)| wanted(c)) {
            return Err(LinuxError::NoChild.into());
        }
        let ended = if options & abi::WEXITED != 0 {
            self.processes
                .children_of(me)
                .find(|&(c, ended)| wanted(c) && ended)
                .map(|(c, _)| c)
        } else {
            None
        };
        let taken = ended.and_then(|child| {
            if options & abi::WNOWAIT != 0 {
                match self.processes.get(child)?.state {
                    State::Ended(status) => Some((child, status)),
                    _ => None,
                }
            } else {
                self.processes.reap(me, child)
            }
        });
        let bytes = match taken {
            Some((child, status)) => child_siginfo(child, status),
            None if options & abi::WNOHANG != 0 => [0; signals::SIGINFO_SIZE],
            None => return Ok(None),
        };
        if !info.is_null() {
            self.copy_out(me, info, &bytes)?;
        }
        Ok(Some(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(b: &[u8], at: usize) -> i32 {
        i32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn child_siginfo_says_exited_with_the_code_or_killed_by_the_signal() {
        let exited = child_siginfo(7, 3);
        assert_eq!(word(&exited, 0), 17, "SIGCHLD");
        assert_eq!(word(&exited, 8), abi::CLD_EXITED);
        assert_eq!(word(&exited, 16), 7, "si_pid");
        assert_eq!(word(&exited, 24), 3, "si_status: the exit code");
        let killed = child_siginfo(8, super::super::killed_by(signals::SIGSEGV));
        assert_eq!(word(&killed, 8), abi::CLD_KILLED);
        assert_eq!(word(&killed, 24), signals::SIGSEGV as i32);
        assert_eq!(word(&killed, 16), 8);
    }
}
