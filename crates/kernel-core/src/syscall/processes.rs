//! The process family: `sys_run`, `sys_getpid`, `sys_ticks`, and the
//! hardware-free steps of `sys_wait` and `sys_kill` (the kernel blocks,
//! switches and ends processes around them).

use alloc::vec::Vec;

use neoos_abi::limits::{ARGS_MAX, ARG_MAX, PATH_MAX};
use neoos_mm::Errno;

use super::{Completion, ProcessCall, SchedulerCall, UserPtr};
use crate::kernel::Kernel;
use crate::platform::Platform;
use crate::process::Pid;

/// What a `sys_kill` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillOutcome {
    /// Another process was ended.
    Killed,
    /// The caller named itself: the kernel ends it.
    KillSelf,
}

impl<P: Platform> Kernel<P> {
    pub(super) fn process_call(&mut self, pid: Pid, call: ProcessCall) -> Completion {
        let scheduler = |c| Completion::Scheduler(c);
        match call {
            ProcessCall::Exit { status } => scheduler(SchedulerCall::Exit { status }),
            ProcessCall::Yield => scheduler(SchedulerCall::Yield),
            ProcessCall::Wait { status } => scheduler(SchedulerCall::Wait { status }),
            ProcessCall::Kill { pid } => scheduler(SchedulerCall::Kill { pid }),
            ProcessCall::Fork => match self.heap_reserve_check() {
                Ok(()) => scheduler(SchedulerCall::Fork),
                Err(e) => Completion::Done(Err(e)),
            },
            ProcessCall::Run { path, argv } => Completion::Done(
                self.heap_reserve_check()
                    .and_then(|_| self.run(pid, path, argv)),
            ),
            ProcessCall::GetPid => Completion::Done(Ok(pid as i64)),
            ProcessCall::GetTid => Completion::Done(Ok(self.caller_tid(pid) as i64)),
            ProcessCall::ThreadExit { status } => scheduler(SchedulerCall::ExitThread { status }),
            ProcessCall::ThreadCreate { entry, stack, arg } => {
                match self.check_thread_create(entry, stack) {
                    Ok(()) => scheduler(SchedulerCall::ThreadCreate { entry, stack, arg }),
                    Err(e) => Completion::Done(Err(e)),
                }
            }
            ProcessCall::ThreadJoin { tid, status } => {
                scheduler(SchedulerCall::ThreadJoin { tid, status })
            }
            ProcessCall::Ticks => Completion::Done(Ok(self.platform.ticks() as i64)),
        }
    }

    fn run(&mut self, pid: Pid, path: UserPtr, argv: UserPtr) -> Result<i64, Errno> {
        let path = self.copy_string(pid, path, PATH_MAX)?;
        let mut args = Vec::new();
        if !argv.is_null() {
            loop {
                if args.len() == ARGS_MAX {
                    return Err(Errno::Inval);
                }
                let raw = self.copy_in(pid, argv.offset(args.len() as u64 * 8), 8)?;
                let pointer = u64::from_le_bytes(raw.try_into().map_err(|_| Errno::Inval)?);
                if pointer == 0 {
                    break;
                }
                args.try_reserve(1).map_err(|_| Errno::NoMem)?;
                args.push(
                    self.copy_string(pid, UserPtr(pointer), ARG_MAX)?
                        .into_bytes(),
                );
            }
        }
        if args.is_empty() {
            args.push(path.clone().into_bytes());
        }
        self.spawn(&path, &args, Some(pid))
            .map(|child| child as i64)
    }

    /// One step of `sys_wait` for `pid`: the pid of an ended child it took
    /// (its status stored at `status` unless NULL), `None` when children
    /// live but none has ended (the kernel blocks, then steps again), `NoEnt`
    /// without children. The status pointer is checked before a child is
    /// taken, so no status is lost.
    pub fn wait_step(&mut self, pid: Pid, status: UserPtr) -> Result<Option<Pid>, Errno> {
        if !status.is_null() {
            self.copy_out(pid, status, &[0; 4])?;
        }
        if let Some((child, code)) = self.processes.reap_child(pid) {
            if !status.is_null() {
                self.copy_out(pid, status, &(code as i32).to_le_bytes())?;
            }
            return Ok(Some(child));
        }
        if !self.processes.has_children(pid) {
            return Err(Errno::NoEnt);
        }
        Ok(None)
    }

    /// `sys_kill(target)` from `me`: ends another process at once.
    pub fn kill_request(&mut self, me: Pid, target: i64) -> Result<KillOutcome, Errno> {
        let target = Pid::try_from(target)
            .ok()
            .filter(|&t| t > 0)
            .ok_or(Errno::Inval)?;
        if target == me {
            return Ok(KillOutcome::KillSelf);
        }
        if self.kill(target) {
            Ok(KillOutcome::Killed)
        } else {
            Err(Errno::NoEnt)
        }
    }
}
