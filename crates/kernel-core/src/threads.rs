//! Threads and futexes: Linux `clone` of a thread (`CLONE_THREAD`, one
//! address space, descriptor table and signal actions), NeoOS
//! `sys_thread_create`/`sys_thread_exit`/`sys_thread_join`, the end of one
//! thread (clear-child-tid store and futex wake), `gettid`,
//! `set_tid_address`, `tkill`/`tgkill`, and `futex` (wait, wake, their
//! bit-set forms, requeue; timeouts in clock ticks). The process table keeps
//! the threads and schedules them; the kernel's scheduler side completes the
//! calls that create, end or block a thread.

use neoos_abi::layout::{USER_BASE, USER_END};
use neoos_abi::linux::clone::{
    CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_PARENT_SETTID, CLONE_SETTLS, CLONE_THREAD,
    CSIGNAL, THREAD_OPTIONAL, THREAD_REQUIRED,
};
use neoos_abi::linux::futex::{
    FUTEX_BITSET_MATCH_ANY, FUTEX_CLOCK_REALTIME, FUTEX_CMP_REQUEUE, FUTEX_PRIVATE_FLAG,
    FUTEX_REQUEUE, FUTEX_WAIT, FUTEX_WAIT_BITSET, FUTEX_WAKE, FUTEX_WAKE_BITSET,
};
use neoos_abi::TICKS_PER_SECOND;
use neoos_mm::Errno;

use crate::futex::FutexKey;
use crate::kernel::Kernel;
use crate::linux::signals::{bit, AltStack, Disposition, NSIG};
use crate::linux::{killed_by, LinuxCall, LinuxError};
use crate::platform::Platform;
use crate::process::{NewThread, Pid, State, ThreadState, Tid};
use crate::syscall::{Completion, SchedulerCall, UserPtr};

/// Nanoseconds per clock tick.
const NANOS_PER_TICK: u64 = 1_000_000_000 / TICKS_PER_SECOND;

/// The arguments of a Linux `clone` (a thread, or a fork-like one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloneArgs {
    pub flags: u64,
    /// The new thread's stack pointer (a fork-like clone: 0 keeps the
    /// parent's).
    pub stack: u64,
    /// Where the new thread's id is stored (`CLONE_PARENT_SETTID`).
    pub parent_tid: UserPtr,
    /// Where the new thread's id is stored (`CLONE_CHILD_SETTID`) and, at
    /// its end, 0 (`CLONE_CHILD_CLEARTID`).
    pub child_tid: UserPtr,
    /// Its FS base (`CLONE_SETTLS`).
    pub tls: u64,
}

/// Whether `addr` may be a user stack pointer or entry point (a canonical
/// user address, so the return to user mode cannot fault in the kernel).
fn user_address(addr: u64) -> bool {
    (USER_BASE..USER_END).contains(&addr)
}

fn linux(e: LinuxError) -> Completion {
    Completion::LinuxError(e)
}

impl<P: Platform> Kernel<P> {
    /// The calling thread of `pid`: the running thread when it is one of
    /// `pid`'s, else its first thread.
    pub(crate) fn caller_tid(&self, pid: Pid) -> Tid {
        match self.processes.current_thread() {
            Some(tid) if self.processes.thread(tid).is_some_and(|t| t.pid == pid) => tid,
            _ => pid,
        }
    }

    /// Linux `set_tid_address`: the caller's clear-child-tid address; its
    /// thread id.
    pub(crate) fn set_tid_address(&mut self, pid: Pid, tidptr: UserPtr) -> i64 {
        let tid = self.caller_tid(pid);
        if let Some(t) = self.processes.thread_mut(tid) {
            t.clear_child_tid = tidptr.addr();
        }
        i64::from(tid)
    }

    /// `clone` and `futex`.
    pub(crate) fn thread_call(&mut self, pid: Pid, call: LinuxCall) -> Completion {
        match call {
            LinuxCall::Clone(args) => {
                if args.flags & CLONE_THREAD == 0 {
                    // A new process (fork-like clone, vfork): not a thread.
                    return Completion::Done(Err(Errno::Inval));
                }
                match self.check_clone(pid, &args) {
                    Ok(()) => Completion::Scheduler(SchedulerCall::CloneThread { args }),
                    Err(e) => Completion::Done(Err(e)),
                }
            }
            LinuxCall::Futex {
                uaddr,
                op,
                val,
                timeout,
                uaddr2,
                val3,
            } => self.futex(pid, uaddr, op, val, timeout, uaddr2, val3),
            _ => Completion::Done(Err(Errno::Inval)),
        }
    }

    /// Checks a thread clone before anything is made: the flags are a
    /// thread's (`EINVAL` for any other combination), the stack and TLS are
    /// user addresses, the id pointers can be stored to, the heap has room.
    fn check_clone(&mut self, pid: Pid, a: &CloneArgs) -> Result<(), Errno> {
        let flags = a.flags & !CSIGNAL;
        if flags & THREAD_REQUIRED != THREAD_REQUIRED
            || flags & !(THREAD_REQUIRED | THREAD_OPTIONAL) != 0
            || !user_address(a.stack)
            || (flags & CLONE_SETTLS != 0 && a.tls >= USER_END)
        {
            return Err(Errno::Inval);
        }
        if flags & CLONE_PARENT_SETTID != 0 {
            self.check_writable(pid, a.parent_tid, 4)?;
        }
        if flags & CLONE_CHILD_SETTID != 0 {
            self.check_writable(pid, a.child_tid, 4)?;
        }
        self.heap_reserve_check()
    }

    /// Creates the thread of a Linux `clone` of the caller of `pid`,
    /// entering user mode with `frame` (the caller's registers, `rax` 0,
    /// `rsp` the new stack): its id. The thread gets the caller's signal
    /// mask, no alternate stack, the FS base `tls` with `CLONE_SETTLS`
    /// (else the caller's). Nothing is changed when it fails.
    pub fn clone_thread(
        &mut self,
        pid: Pid,
        frame: &P::UserFrame,
        args: CloneArgs,
    ) -> Result<Tid, Errno> {
        self.check_clone(pid, &args)?;
        let flags = args.flags;
        let mut part = self.caller_part(pid).ok_or(Errno::Inval)?;
        part.altstack = AltStack::default();
        part.saved_mask = None;
        if flags & CLONE_SETTLS != 0 {
            part.fs_base = args.tls;
        }
        let clear_child_tid = if flags & CLONE_CHILD_CLEARTID != 0 {
            args.child_tid.addr()
        } else {
            0
        };
        let tid = self.add_thread(
            pid,
            frame,
            NewThreadParts {
                part,
                clear_child_tid,
                joinable: false,
            },
        )?;
        let id = tid.to_le_bytes();
        // Both were checked writable, and nothing ran since.
        if flags & CLONE_PARENT_SETTID != 0 {
            let _ = self.copy_out(pid, args.parent_tid, &id);
        }
        if flags & CLONE_CHILD_SETTID != 0 {
            let _ = self.copy_out(pid, args.child_tid, &id);
        }
        Ok(tid)
    }

    /// Checks `sys_thread_create`'s entry and stack (user addresses) and
    /// the heap's room.
    pub(crate) fn check_thread_create(&self, entry: u64, stack: u64) -> Result<(), Errno> {
        if !user_address(entry) || !user_address(stack) {
            return Err(Errno::Inval);
        }
        self.heap_reserve_check()
    }

    /// `sys_thread_create`: a joinable thread of `pid` entering user mode
    /// with `frame` (at the entry, on the stack, with its argument); its id.
    pub fn create_thread(&mut self, pid: Pid, frame: &P::UserFrame) -> Result<Tid, Errno> {
        self.heap_reserve_check()?;
        // The mask is the creator's; no alternate stack (as `clone`).
        let mut part = self.caller_part(pid).ok_or(Errno::Inval)?;
        part.altstack = AltStack::default();
        part.saved_mask = None;
        self.add_thread(
            pid,
            frame,
            NewThreadParts {
                part,
                clear_child_tid: 0,
                joinable: true,
            },
        )
    }

    fn add_thread(
        &mut self,
        pid: Pid,
        frame: &P::UserFrame,
        parts: NewThreadParts,
    ) -> Result<Tid, Errno> {
        if self.processes.live_threads(pid) >= neoos_abi::limits::THREADS_MAX {
            return Err(Errno::NoMem);
        }
        let context = self.platform.new_context(frame).ok_or(Errno::NoMem)?;
        let new = NewThread {
            context,
            part: parts.part,
            clear_child_tid: parts.clear_child_tid,
            joinable: parts.joinable,
        };
        self.processes.insert_thread(pid, new).map_err(|context| {
            self.platform.free_context(context);
            Errno::Inval
        })
    }

    /// Ends thread `tid` with `status` when other threads of its process
    /// live: stores 0 at its clear-child-tid address and wakes one futex
    /// waiter there. `false` when it is its process's last live thread
    /// (the kernel ends the process instead). Its context goes once the
    /// CPU has left it ([`Self::release_after_switch`]).
    pub fn end_thread(&mut self, tid: Tid, status: i64) -> bool {
        let Some(pid) = self.processes.thread(tid).map(|t| t.pid) else {
            return false;
        };
        if self.processes.live_threads(pid) <= 1 {
            return false;
        }
        let Some(ending) = self.processes.end_thread(tid, status) else {
            return false;
        };
        self.futexes.remove(tid);
        if ending.clear_child_tid != 0 {
            let at = UserPtr(ending.clear_child_tid);
            if self.copy_out(pid, at, &0u32.to_le_bytes()).is_ok() {
                // Not private, as Linux wakes it (a word of a private
                // mapping is keyed by the space either way).
                let word = FutexWord {
                    uaddr: at,
                    private: false,
                };
                let _ = self.futex_wake(pid, word, FUTEX_BITSET_MATCH_ANY, 1);
            }
        }
        true
    }

    /// Before an `exit_group` by thread `keep` of `pid`: every other thread
    /// leaves (contexts freed, futex waits dropped), so none runs while
    /// the address space is taken down.
    pub fn end_other_threads(&mut self, pid: Pid, keep: Tid) {
        let (contexts, tids) = self.processes.end_other_threads(pid, keep);
        for c in contexts {
            self.platform.free_context(c);
        }
        for tid in tids {
            self.futexes.remove(tid);
        }
    }

    /// After the CPU came back from thread `tid`: frees what it held if it
    /// ended (its process's remains if the process ended).
    pub fn release_after_switch(&mut self, tid: Tid) {
        let Some(pid) = self.processes.thread(tid).map(|t| t.pid) else {
            return;
        };
        if matches!(
            self.processes.get(pid).map(|p| p.state),
            Some(State::Ended(_))
        ) {
            self.release_ended(pid);
        } else if let Some(context) = self.processes.release_thread(tid) {
            self.platform.free_context(context);
        }
    }

    /// One step of `sys_thread_join(target, status)` by the caller of
    /// `pid`: `Some(())` once NeoOS thread `target` has ended (its status
    /// stored at `status` unless NULL, its record gone), `None` while it
    /// runs (the kernel blocks the caller until it ends).
    pub fn join_step(
        &mut self,
        pid: Pid,
        target: i64,
        status: UserPtr,
    ) -> Result<Option<()>, Errno> {
        let target = Tid::try_from(target)
            .ok()
            .filter(|&t| t > 0)
            .ok_or(Errno::Inval)?;
        if !status.is_null() {
            self.check_writable(pid, status, 4)?;
        }
        let me = self.caller_tid(pid);
        if self
            .processes
            .thread(target)
            .is_some_and(|t| t.pid == pid && t.state == ThreadState::Joining(me))
        {
            // It waits for the caller: neither would ever end.
            return Err(Errno::Busy);
        }
        match self.processes.join_step(pid, me, target)? {
            Some(code) => {
                if !status.is_null() {
                    self.copy_out(pid, status, &(code as i32).to_le_bytes())?;
                }
                Ok(Some(()))
            }
            None => Ok(None),
        }
    }

    /// `tkill(tid, sig)` and `tgkill(tgid, tid, sig)` from process `me`:
    /// the signal goes to that thread alone (pending on it, interrupting
    /// its futex wait), unless its action ends the whole process.
    pub(crate) fn thread_kill(
        &mut self,
        me: Pid,
        tgid: Option<i64>,
        tid: i64,
        sig: u32,
    ) -> Completion {
        if tid <= 0 || tgid.is_some_and(|g| g <= 0) {
            return Completion::Done(Err(Errno::Inval));
        }
        let found = Tid::try_from(tid)
            .ok()
            .and_then(|t| self.processes.thread(t));
        let Some(t) = found.filter(|t| !matches!(t.state, ThreadState::Ended(_))) else {
            return linux(LinuxError::NoProcess);
        };
        let (target, pid) = (t.tid, t.pid);
        if tgid.is_some_and(|g| g != i64::from(pid)) {
            return linux(LinuxError::NoProcess);
        }
        if sig == 0 {
            return Completion::Done(Ok(0));
        }
        if sig > NSIG {
            return Completion::Done(Err(Errno::Inval));
        }
        let blocked = self
            .processes
            .thread_part(target)
            .is_some_and(|p| p.blocked & bit(sig) != 0);
        let disposition = match self.processes.get(pid) {
            Some(p) => p.signals.disposition(sig),
            None => Disposition::Ignore,
        };
        match disposition {
            Disposition::Ignore => Completion::Done(Ok(0)),
            Disposition::Terminate if !blocked && pid == me => {
                Completion::Scheduler(SchedulerCall::Exit {
                    status: killed_by(sig),
                })
            }
            // Another process's thread takes it in its own context (as
            // `kill`): a terminating signal ends its process there.
            _ => {
                if let Some(t) = self.processes.thread_mut(target) {
                    t.pending |= bit(sig);
                }
                self.platform.signal_pending();
                if !blocked {
                    self.processes.wake_for_signal(target);
                }
                Completion::Done(Ok(0))
            }
        }
    }

    /// After `sig` became pending for process `pid`: when no thread of it
    /// that could take it is ready or running, the first one asleep (a
    /// futex wait, `nanosleep`, `pause`, `sigsuspend`) or waiting for a
    /// child that does not block it is readied (its call ends with `EINTR`
    /// or is restarted, and it takes the signal on its way back to user
    /// mode).
    pub(crate) fn interrupt_a_waiter(&mut self, pid: Pid, sig: u32) {
        let takes = |k: &Self, tid: Tid| {
            k.processes
                .thread_part(tid)
                .is_some_and(|p| p.blocked & bit(sig) == 0)
        };
        let mut sleeper = None;
        for t in self.processes.threads_of(pid) {
            match t.state {
                ThreadState::Ready | ThreadState::Running if takes(self, t.tid) => return,
                state if state.ends_on_signal() && sleeper.is_none() && takes(self, t.tid) => {
                    sleeper = Some(t.tid)
                }
                _ => {}
            }
        }
        if let Some(tid) = sleeper {
            self.processes.wake_for_signal(tid);
        }
    }

    /// Takes the lowest signal sent to the calling thread of `pid` alone
    /// that it does not block.
    pub(crate) fn take_thread_signal(&mut self, pid: Pid) -> Option<u32> {
        let tid = self.caller_tid(pid);
        let blocked = self.processes.thread_part(tid)?.blocked;
        let t = self.processes.thread_mut(tid)?;
        let ready = t.pending & !blocked;
        if ready == 0 {
            return None;
        }
        let sig = ready.trailing_zeros() + 1;
        t.pending &= !bit(sig);
        Some(sig)
    }

    /// `futex(uaddr, op, val, timeout/val2, uaddr2, val3)`; a call without
    /// `FUTEX_PRIVATE_FLAG` on a word of a shared mapping reaches the
    /// waiters of every process that maps that word.
    #[allow(clippy::too_many_arguments)]
    fn futex(
        &mut self,
        pid: Pid,
        uaddr: UserPtr,
        op: u32,
        val: u32,
        timeout: u64,
        uaddr2: UserPtr,
        val3: u32,
    ) -> Completion {
        let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
        let private = op & FUTEX_PRIVATE_FLAG != 0;
        let (uaddr, uaddr2) = (
            FutexWord { uaddr, private },
            FutexWord {
                uaddr: uaddr2,
                private,
            },
        );
        if op & FUTEX_CLOCK_REALTIME != 0 && cmd != FUTEX_WAIT_BITSET {
            return linux(LinuxError::NoSys);
        }
        let result = match cmd {
            FUTEX_WAIT => {
                return self.futex_wait(pid, uaddr, val, timeout, false, FUTEX_BITSET_MATCH_ANY)
            }
            FUTEX_WAIT_BITSET => return self.futex_wait(pid, uaddr, val, timeout, true, val3),
            FUTEX_WAKE => self.futex_wake(pid, uaddr, FUTEX_BITSET_MATCH_ANY, wake_count(val)),
            FUTEX_WAKE_BITSET if val3 == 0 => Err(Errno::Inval),
            FUTEX_WAKE_BITSET => self.futex_wake(pid, uaddr, val3, wake_count(val)),
            FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
                let expected = (cmd == FUTEX_CMP_REQUEUE).then_some(val3);
                match self.futex_requeue(pid, uaddr, uaddr2, val, timeout as u32, expected) {
                    Err(FutexError::Again) => return linux(LinuxError::TryAgain),
                    Err(FutexError::Errno(e)) => Err(e),
                    Ok(n) => Ok(n),
                }
            }
            _ => return linux(LinuxError::NoSys),
        };
        Completion::Done(result.map(|n| n as i64))
    }

    /// The waiters' key of futex word `word` of `pid`: the word of a
    /// shared mapping's object for a futex that is not private, else the
    /// word of `pid`'s address space; `EINVAL` when it is not 4-byte
    /// aligned, `EFAULT` outside user space.
    fn futex_key(&self, pid: Pid, word: FutexWord) -> Result<FutexKey, Errno> {
        let addr = word.uaddr.addr();
        if !addr.is_multiple_of(4) {
            return Err(Errno::Inval);
        }
        if !(USER_BASE..USER_END - 3).contains(&addr) {
            return Err(Errno::Fault);
        }
        let space = self.processes.get(pid).ok_or(Errno::Inval)?.space;
        let shared = (!word.private)
            .then(|| self.memory.shared_word(space, addr))
            .flatten();
        Ok(match shared {
            Some((object, offset)) => FutexKey::Shared { object, offset },
            None => FutexKey::Private { space, addr },
        })
    }

    fn read_futex_word(&mut self, pid: Pid, uaddr: UserPtr) -> Result<u32, Errno> {
        let b = self.copy_in(pid, uaddr, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// `FUTEX_WAIT` (relative timeout) and `FUTEX_WAIT_BITSET` (absolute,
    /// on the clock of `clock_gettime`): the caller is entered as a waiter
    /// and blocked when the word still holds `val` (else `EAGAIN`); the
    /// kernel then switches away from it.
    fn futex_wait(
        &mut self,
        pid: Pid,
        uaddr: FutexWord,
        val: u32,
        timeout: u64,
        absolute: bool,
        bitset: u32,
    ) -> Completion {
        let prepared = (|| {
            if bitset == 0 {
                return Err(Errno::Inval);
            }
            let key = self.futex_key(pid, uaddr)?;
            let deadline = match timeout {
                0 => None,
                at => Some(self.futex_deadline(pid, UserPtr(at), absolute)?),
            };
            Ok((key, deadline, self.read_futex_word(pid, uaddr.uaddr)?))
        })();
        let (key, deadline, word) = match prepared {
            Ok(p) => p,
            Err(e) => return Completion::Done(Err(e)),
        };
        if word != val {
            return linux(LinuxError::TryAgain);
        }
        let tid = self.caller_tid(pid);
        if let Err(e) = self.futexes.add(tid, key, bitset) {
            return Completion::Done(Err(e));
        }
        // Entered and blocked in one step (one lock section of the
        // kernel): a wake from another CPU finds it either not yet a
        // waiter or blocked, never between (a lost wake-up). A signal to
        // take keeps it running: the kernel then finds it still entered
        // (`EINTR`).
        self.processes.forget_wake_up();
        self.processes.block_current(deadline);
        Completion::Scheduler(SchedulerCall::FutexWait { deadline })
    }

    /// The tick at which a wait with the `struct timespec` at `at` ends:
    /// rounded up, and for a relative time one tick more (the current tick
    /// has partly gone), so a wait is never shorter than asked.
    fn futex_deadline(&mut self, pid: Pid, at: UserPtr, absolute: bool) -> Result<u64, Errno> {
        let b = self.copy_in(pid, at, 16)?;
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            i64::from_le_bytes(w)
        };
        let (sec, nsec) = (word(0), word(8));
        if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
            return Err(Errno::Inval);
        }
        let ticks = (sec as u64)
            .saturating_mul(TICKS_PER_SECOND)
            .saturating_add((nsec as u64).div_ceil(NANOS_PER_TICK));
        Ok(if absolute {
            ticks
        } else {
            self.platform
                .ticks()
                .saturating_add(ticks)
                .saturating_add(1)
        })
    }

    /// After a futex wait of thread `tid` (deadline `deadline`): 0 when a
    /// wake took it, `ETIMEDOUT` when its time ran out, `EINTR` when a
    /// signal readied it; the raw `rax`.
    pub fn futex_wait_end(&mut self, tid: Tid, deadline: Option<u64>) -> i64 {
        if !self.futexes.remove(tid) {
            return 0;
        }
        if deadline.is_some_and(|d| self.platform.ticks() >= d) {
            LinuxError::TimedOut.result()
        } else {
            LinuxError::Interrupted.result()
        }
    }

    /// Wakes up to `count` waiters on `uaddr` of `pid` whose bit set meets
    /// `bitset`: how many.
    fn futex_wake(
        &mut self,
        pid: Pid,
        uaddr: FutexWord,
        bitset: u32,
        count: usize,
    ) -> Result<usize, Errno> {
        let key = self.futex_key(pid, uaddr)?;
        let processes = &mut self.processes;
        Ok(self.futexes.wake(key, bitset, count, |tid| {
            processes.wake(tid);
        }))
    }

    /// `FUTEX_REQUEUE`/`FUTEX_CMP_REQUEUE`: wakes up to `wake` waiters on
    /// `uaddr` and moves up to `requeue` others to `uaddr2` (after checking
    /// that `uaddr` holds `expected`, when given).
    fn futex_requeue(
        &mut self,
        pid: Pid,
        uaddr: FutexWord,
        uaddr2: FutexWord,
        wake: u32,
        requeue: u32,
        expected: Option<u32>,
    ) -> Result<usize, FutexError> {
        let from = self.futex_key(pid, uaddr)?;
        let to = self.futex_key(pid, uaddr2)?;
        if let Some(expected) = expected {
            if self.read_futex_word(pid, uaddr.uaddr)? != expected {
                return Err(FutexError::Again);
            }
        }
        let processes = &mut self.processes;
        let woken = self
            .futexes
            .wake(from, FUTEX_BITSET_MATCH_ANY, non_negative(wake), |tid| {
                processes.wake(tid);
            });
        let moved = self
            .futexes
            .requeue(from, to, (requeue as i32).max(0) as usize);
        Ok(woken + moved)
    }
}

/// What a new thread gets besides its context.
struct NewThreadParts {
    part: crate::linux::ThreadPart,
    clear_child_tid: u64,
    joinable: bool,
}

/// A futex failure: a code both numberings have, or `EAGAIN`.
enum FutexError {
    Errno(Errno),
    Again,
}

impl From<Errno> for FutexError {
    fn from(e: Errno) -> Self {
        FutexError::Errno(e)
    }
}

/// How many waiters `FUTEX_WAKE` with `val` takes: Linux wakes at least one.
fn wake_count(val: u32) -> usize {
    (val as i32).max(1) as usize
}

/// A count of the requeue calls (a C `int`; a negative one is none).
fn non_negative(val: u32) -> usize {
    (val as i32).max(0) as usize
}

/// A futex word as a call names it: its address, and whether the call is
/// private (`FUTEX_PRIVATE_FLAG`: keyed by the caller's address space
/// alone).
#[derive(Clone, Copy)]
struct FutexWord {
    uaddr: UserPtr,
    private: bool,
}
