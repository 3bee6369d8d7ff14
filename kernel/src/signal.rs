//! Signals on the machine: moves the user registers between the trap frame
//! and the kernel logic's [`UserRegs`], and the saved `fxsave` area in and
//! out, to deliver a signal to a handler (a fault's SIGSEGV/SIGBUS, or a
//! pending one on the way back to user mode) and to return from it
//! (`rt_sigreturn`). The frame layout and every check live in
//! `neoos_kernel_core::linux::signals`; a signal that ends its process
//! ends it here with the status of a death by that signal.

use core::sync::atomic::{AtomicBool, Ordering};

use neoos_kernel_core::linux::signals::{SigInfo, SignalOutcome, TrapInfo, UserRegs};

use crate::arch::traps::{self, TrapFrame};
use crate::process::{self, with_kernel};

/// Set when a signal is made pending, cleared at the end of a lock section
/// that finds no signal work left: meanwhile, returns to user mode skip
/// the pending check (the kernel lock and a table lookup).
static MAYBE_PENDING: AtomicBool = AtomicBool::new(false);

/// Notes that a signal may now be pending for some process.
pub fn note_pending() {
    MAYBE_PENDING.store(true, Ordering::Relaxed);
}

/// At the end of a kernel lock section: while a signal may be pending,
/// asks `still` whether one is (or other signal work waits); once none
/// is, returns to user mode skip the check again (on several CPUs the
/// check would make a thread spinning in user mode wait for the lock at
/// every tick).
pub fn recheck_pending(still: impl FnOnce() -> bool) {
    if MAYBE_PENDING.load(Ordering::Relaxed) && !still() {
        MAYBE_PENDING.store(false, Ordering::Relaxed);
    }
}

fn regs_of(f: &TrapFrame) -> UserRegs {
    UserRegs {
        r8: f.r8,
        r9: f.r9,
        r10: f.r10,
        r11: f.r11,
        r12: f.r12,
        r13: f.r13,
        r14: f.r14,
        r15: f.r15,
        rdi: f.rdi,
        rsi: f.rsi,
        rbp: f.rbp,
        rbx: f.rbx,
        rdx: f.rdx,
        rax: f.rax,
        rcx: f.rcx,
        rsp: f.rsp,
        rip: f.rip,
        rflags: f.rflags,
    }
}

/// Puts `r` in the frame. The selectors stay the user ones and
/// `trap_dispatch` keeps only the flags a program owns.
fn apply(f: &mut TrapFrame, r: &UserRegs) {
    f.r8 = r.r8;
    f.r9 = r.r9;
    f.r10 = r.r10;
    f.r11 = r.r11;
    f.r12 = r.r12;
    f.r13 = r.r13;
    f.r14 = r.r14;
    f.r15 = r.r15;
    f.rdi = r.rdi;
    f.rsi = r.rsi;
    f.rbp = r.rbp;
    f.rbx = r.rbx;
    f.rdx = r.rdx;
    f.rax = r.rax;
    f.rcx = r.rcx;
    f.rsp = r.rsp;
    f.rip = r.rip;
    f.rflags = r.rflags;
    f.make_user();
}

/// Delivers `info` to the running process, whose user state is `frame`;
/// `forced` for a fault's signal (which ends the process when blocked or
/// ignored). The outcome says whether the program goes on in a handler.
pub fn deliver(
    frame: &mut TrapFrame,
    info: SigInfo,
    trap: TrapInfo,
    forced: bool,
) -> SignalOutcome {
    let mut regs = regs_of(frame);
    let fpu = traps::saved_fpu_state(frame);
    let outcome = with_kernel(|k| {
        let Some(pid) = k.processes().current() else {
            return SignalOutcome::Nothing;
        };
        k.deliver_signal(
            pid,
            info,
            trap,
            forced,
            &mut regs,
            fpu,
            traps::initial_fpu_state(),
        )
    });
    if outcome == SignalOutcome::Continue {
        apply(frame, &regs);
    }
    outcome
}

/// On the way back to user mode: runs the handler of each pending,
/// unblocked signal of the running process (or ends it). Inlined: every
/// return to user mode makes the check, and nearly all find nothing.
#[inline]
pub fn deliver_pending(frame: &mut TrapFrame) {
    if !MAYBE_PENDING.load(Ordering::Relaxed) {
        return;
    }
    deliver_next(frame);
}

/// Takes the pending signals of the running process until one runs a
/// handler or none is left (one handler frame per return to user mode).
#[inline(never)]
fn deliver_next(frame: &mut TrapFrame) {
    loop {
        let next = with_kernel(|k| {
            let pid = k.processes().current()?;
            let sig = k.next_pending_signal(pid);
            if sig.is_none() {
                // None left: a mask `rt_sigsuspend` replaced comes back
                // now unless a handler's frame took it.
                k.restore_saved_mask(pid);
            }
            Some(k.pending_signal_info(pid, sig?))
        });
        let Some(info) = next else {
            return;
        };
        match deliver(frame, info, TrapInfo::default(), false) {
            SignalOutcome::Kill(sig) => end_by_signal(sig),
            // One handler frame per return; the next signal waits for
            // the next return to user mode.
            SignalOutcome::Continue => return,
            SignalOutcome::Nothing => {}
        }
    }
}

/// `rt_sigreturn` of the running process: `frame` gets the registers and
/// FPU state saved in its signal frame; the result is the restored `rax`.
pub fn sigreturn(frame: &mut TrapFrame) -> i64 {
    let mut regs = regs_of(frame);
    let fpu = traps::saved_fpu_state(frame);
    let cpu_area = *fpu;
    let outcome = with_kernel(|k| {
        let Some(pid) = k.processes().current() else {
            return SignalOutcome::Nothing;
        };
        k.signal_return(pid, &mut regs, fpu, &cpu_area, traps::initial_fpu_state())
    });
    match outcome {
        SignalOutcome::Continue => {
            apply(frame, &regs);
            frame.rax as i64
        }
        SignalOutcome::Kill(sig) => {
            let (pid, path) = with_kernel(|k| {
                let pid = k.processes().current().unwrap_or(0);
                (pid, k.path_of(pid))
            });
            kprintln!(
                "{} (pid {}): bad signal frame at {:#x}: killed by signal {}",
                path,
                pid,
                frame.rsp.wrapping_sub(8),
                sig
            );
            end_by_signal(sig)
        }
        SignalOutcome::Nothing => frame.rax as i64,
    }
}

/// Ends the running process, killed by `sig`.
pub fn end_by_signal(sig: u32) -> ! {
    process::exit_current(neoos_kernel_core::linux::killed_by(sig))
}
