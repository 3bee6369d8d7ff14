//! Linux signals: each process's actions, blocked and pending sets and
//! alternate stack ([`Signals`]); `rt_sigaction`, `rt_sigprocmask`,
//! `sigaltstack`, `kill`/`tgkill`; and the layout of the frame a handler
//! runs on (`struct rt_sigframe`: return address, `ucontext`, `siginfo`,
//! then the 512-byte `fxsave` area), built and read back here as bytes so
//! that it is tested on the host. The kernel's trap code moves registers
//! between the CPU and [`UserRegs`] and runs [`Kernel::deliver_signal`] /
//! [`Kernel::signal_return`].

use neoos_abi::layout::{USER_BASE, USER_END};
use neoos_mm::Errno;

use crate::kernel::Kernel;
use crate::linux::ThreadPart;
use crate::platform::Platform;
use crate::process::{Pid, Unwaited};
use crate::syscall::UserPtr;

pub use neoos_abi::signal::*;

/// The internal result of a blocked call a signal interrupted that is to
/// be made again after the handler (Linux's `ERESTARTSYS`): the kernel
/// turns it into a restart (the `syscall` instruction runs again) and never
/// returns it to a program.
pub const RESTART_CALL: i64 = -512;

/// `sigaltstack` flags.
pub const SS_ONSTACK: u32 = 1;
pub const SS_DISABLE: u32 = 2;
/// Smallest alternate stack Linux accepts (`MINSIGSTKSZ`).
pub const MINSIGSTKSZ: u64 = 2048;

/// `stack_t`: sp, flags (+ pad), size.
pub const STACK_T_SIZE: usize = 24;
/// `siginfo_t`.
pub const SIGINFO_SIZE: usize = 128;
/// The `fxsave` area.
pub const FPU_STATE_SIZE: usize = 512;
/// `struct ucontext`: flags, link, stack_t, sigcontext (256), 8-byte mask.
const UCONTEXT_SIZE: usize = 8 + 8 + STACK_T_SIZE + SIGCONTEXT_SIZE + 8;
const SIGCONTEXT_SIZE: usize = 256;
/// Offsets in the frame: return address, ucontext, siginfo.
const UC_AT: usize = 8;
const MCONTEXT_AT: usize = UC_AT + 40;
const UC_MASK_AT: usize = MCONTEXT_AT + SIGCONTEXT_SIZE;
const INFO_AT: usize = UC_AT + UCONTEXT_SIZE;
/// Bytes of the frame below the FPU area.
pub const FRAME_SIZE: usize = INFO_AT + SIGINFO_SIZE;
/// In the sigcontext: the 18 registers, then cs/gs/fs/ss, err, trapno,
/// oldmask, cr2, the FPU-state pointer.
const SC_CSGSFS: usize = 18 * 8;
const SC_ERR: usize = SC_CSGSFS + 8;
const SC_TRAPNO: usize = SC_ERR + 8;
const SC_OLDMASK: usize = SC_TRAPNO + 8;
const SC_CR2: usize = SC_OLDMASK + 8;
const SC_FPSTATE: usize = SC_CR2 + 8;
/// `uc_flags`: the frame has an FPU-state record of the `fxsave` kind.
const UC_FP_XSTATE: u64 = 0;
/// Bytes below the interrupted stack pointer a handler must not touch
/// (the x86_64 red zone).
const RED_ZONE: u64 = 128;
/// Where MXCSR sits in the `fxsave` area, and MXCSR_MASK.
const MXCSR_AT: usize = 24;
const MXCSR_MASK_AT: usize = 28;
/// The MXCSR bits every x86_64 CPU has when it reports no mask.
const MXCSR_DEFAULT_MASK: u32 = 0xffbf;

/// The bit of signal `sig` in a set.
pub fn bit(sig: u32) -> u64 {
    1u64 << (sig - 1)
}

/// Signals no program can catch, block or ignore.
const UNCATCHABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

/// What one signal does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

impl SignalAction {
    fn from_bytes(b: &[u8]) -> Self {
        SignalAction {
            handler: word(b, 0),
            flags: word(b, 8),
            restorer: word(b, 16),
            mask: word(b, 24),
        }
    }

    fn to_bytes(self) -> [u8; SIGACTION_SIZE] {
        let mut b = [0u8; SIGACTION_SIZE];
        for (i, v) in [self.handler, self.flags, self.restorer, self.mask]
            .into_iter()
            .enumerate()
        {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        b
    }
}

/// What happens to a signal nobody handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    /// The process ends, killed by the signal.
    Terminate,
    /// The process ends, killed by the signal, and its wait status has the
    /// core flag (Linux's "core" action; NeoOS writes no core file).
    Core,
    Ignore,
}

/// The default action of `sig`, as Linux's signal(7) table has it; the
/// stop signals are ignored (NeoOS has no job control), and so is
/// SIGCONT. Real-time signals (32-64) terminate.
pub fn default_action(sig: u32) -> DefaultAction {
    match sig {
        SIGCHLD | SIGCONT | SIGURG | SIGWINCH | SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => {
            DefaultAction::Ignore
        }
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ
        | SIGSYS => DefaultAction::Core,
        _ => DefaultAction::Terminate,
    }
}

/// How a process is set up to take a signal now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Run this handler.
    Handle(SignalAction),
    /// Nothing happens.
    Ignore,
    /// The process ends, killed by the signal.
    Terminate,
}

/// The alternate signal stack (`sigaltstack`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AltStack {
    pub sp: u64,
    pub size: u64,
    /// Whether one is set (`SS_DISABLE` clears it).
    pub enabled: bool,
}

impl AltStack {
    fn contains(&self, sp: u64) -> bool {
        self.enabled && sp > self.sp && sp <= self.sp.wrapping_add(self.size)
    }
}

/// A process's signal state: the actions and the signals sent to the
/// process. Each thread's mask, alternate stack and the mask
/// `rt_sigsuspend` replaced are the thread's ([`ThreadPart`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signals {
    actions: [SignalAction; NSIG as usize],
    pub pending: u64,
    /// Who sent each pending signal (the first sender while it is pending,
    /// as Linux keeps for the standard signals): its `siginfo`.
    origins: [SignalOrigin; NSIG as usize],
}

/// Where a pending signal came from: `si_code`, the sender's (or the
/// child's) pid, and SIGCHLD's status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalOrigin {
    pub code: i32,
    pub pid: u32,
    pub status: i32,
}

impl Default for Signals {
    fn default() -> Self {
        Signals {
            actions: [SignalAction::default(); NSIG as usize],
            pending: 0,
            origins: [SignalOrigin::default(); NSIG as usize],
        }
    }
}

impl Signals {
    /// The action of `sig` (1..=64).
    pub fn action(&self, sig: u32) -> SignalAction {
        self.actions[(sig - 1) as usize]
    }

    /// How `sig` would be taken now (ignoring whether it is blocked).
    pub fn disposition(&self, sig: u32) -> Disposition {
        let a = self.action(sig);
        if sig == SIGKILL || sig == SIGSTOP {
            return if sig == SIGKILL {
                Disposition::Terminate
            } else {
                Disposition::Ignore
            };
        }
        match a.handler {
            SIG_DFL => match default_action(sig) {
                DefaultAction::Terminate | DefaultAction::Core => Disposition::Terminate,
                DefaultAction::Ignore => Disposition::Ignore,
            },
            SIG_IGN => Disposition::Ignore,
            _ => Disposition::Handle(a),
        }
    }

    /// The lowest pending signal not in `blocked`, taken out of the
    /// pending set.
    pub fn take_deliverable(&mut self, blocked: u64) -> Option<u32> {
        let ready = self.pending & !blocked;
        if ready == 0 {
            return None;
        }
        let sig = ready.trailing_zeros() + 1;
        self.pending &= !bit(sig);
        Some(sig)
    }

    /// The signal [`Self::take_deliverable`] would take, left pending.
    pub fn peek_deliverable(&self, blocked: u64) -> Option<u32> {
        let ready = self.pending & !blocked;
        (ready != 0).then(|| ready.trailing_zeros() + 1)
    }

    /// Makes `sig` pending unless it is ignored (then it is discarded, as
    /// POSIX says); `true` when it became pending.
    pub fn post(&mut self, sig: u32) -> bool {
        self.post_from(sig, SignalOrigin::default())
    }

    /// [`Self::post`], recording who sent it (unless it was pending
    /// already: the first sender stays).
    pub fn post_from(&mut self, sig: u32, origin: SignalOrigin) -> bool {
        if self.disposition(sig) == Disposition::Ignore {
            return false;
        }
        if self.pending & bit(sig) == 0 {
            self.origins[(sig - 1) as usize] = origin;
        }
        self.pending |= bit(sig);
        true
    }

    /// The `siginfo` of signal `sig` as it was sent.
    pub fn info_of(&self, sig: u32) -> SigInfo {
        let o = self.origins[(sig - 1) as usize];
        SigInfo {
            signo: sig,
            code: o.code,
            addr_or_pid: u64::from(o.pid),
            status: o.status,
        }
    }

    /// Whether a child's end reaps it at once: the parent ignores SIGCHLD
    /// or set `SA_NOCLDWAIT` (its `wait` then finds no child).
    pub fn reaps_children(&self) -> bool {
        let a = self.action(SIGCHLD);
        a.handler == SIG_IGN || a.flags & SA_NOCLDWAIT != 0
    }

    /// After exec: handlers go back to their defaults (ignored stay
    /// ignored), the pending set stays (POSIX).
    pub fn reset_handlers(&mut self) {
        for a in &mut self.actions {
            if a.handler != SIG_IGN {
                *a = SignalAction::default();
            }
        }
    }
}

impl ThreadPart {
    /// Sets the thread's blocked set (SIGKILL and SIGSTOP stay unblocked).
    pub fn set_blocked(&mut self, set: u64) {
        self.blocked = set & !UNCATCHABLE;
    }
}

/// Why a signal is sent: what the handler's `siginfo` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: u32,
    pub code: i32,
    /// The faulting address (SIGSEGV, SIGBUS), or the sender's pid in the
    /// low 32 bits (`kill`; SIGCHLD: the child's), its uid (0) above.
    pub addr_or_pid: u64,
    /// SIGCHLD: the child's exit code, or the signal that killed it.
    pub status: i32,
}

impl SigInfo {
    /// The 128-byte `siginfo_t`.
    pub fn to_bytes(self) -> [u8; SIGINFO_SIZE] {
        let mut b = [0u8; SIGINFO_SIZE];
        b[0..4].copy_from_slice(&self.signo.to_le_bytes());
        b[8..12].copy_from_slice(&self.code.to_le_bytes());
        b[16..24].copy_from_slice(&self.addr_or_pid.to_le_bytes());
        b[24..28].copy_from_slice(&self.status.to_le_bytes());
        b
    }
}

/// The user registers a handler is entered with and a `sigreturn`
/// restores, in `struct sigcontext` order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserRegs {
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub rdx: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rsp: u64,
    pub rip: u64,
    pub rflags: u64,
}

impl UserRegs {
    fn as_array(&self) -> [u64; 18] {
        [
            self.r8,
            self.r9,
            self.r10,
            self.r11,
            self.r12,
            self.r13,
            self.r14,
            self.r15,
            self.rdi,
            self.rsi,
            self.rbp,
            self.rbx,
            self.rdx,
            self.rax,
            self.rcx,
            self.rsp,
            self.rip,
            self.rflags,
        ]
    }

    fn from_array(a: [u64; 18]) -> Self {
        UserRegs {
            r8: a[0],
            r9: a[1],
            r10: a[2],
            r11: a[3],
            r12: a[4],
            r13: a[5],
            r14: a[6],
            r15: a[7],
            rdi: a[8],
            rsi: a[9],
            rbp: a[10],
            rbx: a[11],
            rdx: a[12],
            rax: a[13],
            rcx: a[14],
            rsp: a[15],
            rip: a[16],
            rflags: a[17],
        }
    }
}

/// The FPU/SSE state of a program: an `fxsave` area.
pub type FpuState = [u8; FPU_STATE_SIZE];

/// What a fault tells the handler: its trap number and error code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapInfo {
    pub trapno: u64,
    pub error: u64,
    pub cr2: u64,
}

/// The handler frame for one delivery, laid out in memory.
struct Frame {
    /// Where the frame (its return address) starts.
    at: u64,
    /// Where the `fxsave` area starts (64-byte aligned, above the frame).
    fpu_at: u64,
    bytes: [u8; FRAME_SIZE],
}

/// Builds the frame of a delivery on the stack below `sp`.
fn build_frame(
    sp: u64,
    regs: &UserRegs,
    trap: &TrapInfo,
    action: &SignalAction,
    old_mask: u64,
    altstack: &AltStack,
    info: &SigInfo,
) -> Option<Frame> {
    let fpu_at = sp.checked_sub(FPU_STATE_SIZE as u64)? & !63;
    let at = (fpu_at.checked_sub(FRAME_SIZE as u64)? & !15).checked_sub(8)?;
    let mut b = [0u8; FRAME_SIZE];
    b[0..8].copy_from_slice(&action.restorer.to_le_bytes());
    // ucontext: flags, link (0), stack_t.
    b[UC_AT..UC_AT + 8].copy_from_slice(&UC_FP_XSTATE.to_le_bytes());
    let ss_flags: u32 = if !altstack.enabled {
        SS_DISABLE
    } else if altstack.contains(regs.rsp) {
        SS_ONSTACK
    } else {
        0
    };
    b[UC_AT + 16..UC_AT + 24].copy_from_slice(&altstack.sp.to_le_bytes());
    b[UC_AT + 24..UC_AT + 28].copy_from_slice(&ss_flags.to_le_bytes());
    b[UC_AT + 32..UC_AT + 40].copy_from_slice(&altstack.size.to_le_bytes());
    for (i, v) in regs.as_array().into_iter().enumerate() {
        let o = MCONTEXT_AT + i * 8;
        b[o..o + 8].copy_from_slice(&v.to_le_bytes());
    }
    // cs = 0x33 (user code), gs = fs = 0, ss = 0x2b (user data).
    let csgsfs: u64 = 0x33 | (0x2b << 48);
    put(&mut b, MCONTEXT_AT + SC_CSGSFS, csgsfs);
    put(&mut b, MCONTEXT_AT + SC_ERR, trap.error);
    put(&mut b, MCONTEXT_AT + SC_TRAPNO, trap.trapno);
    put(&mut b, MCONTEXT_AT + SC_OLDMASK, old_mask);
    put(&mut b, MCONTEXT_AT + SC_CR2, trap.cr2);
    put(&mut b, MCONTEXT_AT + SC_FPSTATE, fpu_at);
    put(&mut b, UC_MASK_AT, old_mask);
    b[INFO_AT..INFO_AT + SIGINFO_SIZE].copy_from_slice(&info.to_bytes());
    Some(Frame {
        at,
        fpu_at,
        bytes: b,
    })
}

/// What `rt_sigreturn` reads back from a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restored {
    pub regs: UserRegs,
    pub mask: u64,
    /// The FPU state to load from (0: the initial state).
    pub fpu_at: u64,
}

/// Reads the registers, mask and FPU-state pointer of a frame.
fn read_frame(b: &[u8]) -> Restored {
    let mut a = [0u64; 18];
    for (i, slot) in a.iter_mut().enumerate() {
        *slot = word(b, MCONTEXT_AT + i * 8);
    }
    Restored {
        regs: UserRegs::from_array(a),
        mask: word(b, UC_MASK_AT),
        fpu_at: word(b, MCONTEXT_AT + SC_FPSTATE),
    }
}

/// Keeps only MXCSR bits the CPU has (a reserved bit set makes `fxrstor`
/// fault in the kernel), using the mask of the CPU's own `fxsave` area.
pub fn sanitize_fpu(fpu: &mut FpuState, cpu_area: &FpuState) {
    let mask = match word32(cpu_area, MXCSR_MASK_AT) {
        0 => MXCSR_DEFAULT_MASK,
        m => m,
    };
    let mxcsr = word32(fpu, MXCSR_AT) & mask;
    fpu[MXCSR_AT..MXCSR_AT + 4].copy_from_slice(&mxcsr.to_le_bytes());
    fpu[MXCSR_MASK_AT..MXCSR_MASK_AT + 4].copy_from_slice(&mask.to_le_bytes());
}

/// Whether a blocked call that a signal stopped is made again after the
/// handler (Linux's rules for each call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// Never: `EINTR` whenever a handler runs (`nanosleep`, `pause`,
    /// `rt_sigsuspend`).
    Never,
    /// When the handler's action has `SA_RESTART` (`wait4`, pipe and
    /// console reads and writes).
    WithSaRestart,
    /// Always (NeoOS calls, which have no `EINTR`).
    Always,
}

/// How a delivery or a return from a handler went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalOutcome {
    /// The registers were changed: the program goes on there.
    Continue,
    /// The signal is ignored (or none was deliverable).
    Nothing,
    /// The process must end, killed by this signal.
    Kill(u32),
}

fn put(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn word(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

fn word32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

/// Whether `sig` is a signal number.
fn valid(sig: u32) -> bool {
    (1..=NSIG).contains(&sig)
}

impl<P: Platform> Kernel<P> {
    /// The signal state of process `pid`.
    pub fn signals(&self, pid: Pid) -> Option<&Signals> {
        Some(&self.processes.get(pid)?.signals)
    }

    fn signals_mut(&mut self, pid: Pid) -> Result<&mut Signals, Errno> {
        self.processes
            .get_mut(pid)
            .map(|p| &mut p.signals)
            .ok_or(Errno::Inval)
    }

    /// The calling thread of `pid`'s mask, alternate stack, saved mask and
    /// FS base.
    pub fn caller_part(&self, pid: Pid) -> Option<ThreadPart> {
        self.processes.thread_part(self.caller_tid(pid))
    }

    /// [`Self::caller_part`], to change.
    pub(crate) fn caller_part_mut(&mut self, pid: Pid) -> Result<&mut ThreadPart, Errno> {
        let tid = self.caller_tid(pid);
        self.processes.thread_part_mut(tid).ok_or(Errno::Inval)
    }

    /// The calling thread of `pid`'s signal mask (0 without one).
    pub fn blocked_of(&self, pid: Pid) -> u64 {
        self.caller_part(pid).map_or(0, |t| t.blocked)
    }

    /// `rt_sigaction(sig, act, oldact, sigsetsize)`: the old action is
    /// stored (if asked) before the new one is read, both checked first.
    pub(crate) fn rt_sigaction(
        &mut self,
        pid: Pid,
        sig: u32,
        act: UserPtr,
        old: UserPtr,
        setsize: u64,
    ) -> Result<i64, Errno> {
        if setsize != 8 || !valid(sig) {
            return Err(Errno::Inval);
        }
        let new = if act.is_null() {
            None
        } else {
            if sig == SIGKILL || sig == SIGSTOP {
                return Err(Errno::Inval);
            }
            let bytes = self.copy_in(pid, act, SIGACTION_SIZE)?;
            Some(SignalAction::from_bytes(&bytes))
        };
        let current = self.signals_mut(pid)?.action(sig);
        if !old.is_null() {
            self.copy_out(pid, old, &current.to_bytes())?;
        }
        if let Some(mut a) = new {
            a.mask &= !UNCATCHABLE;
            let s = self.signals_mut(pid)?;
            s.actions[(sig - 1) as usize] = a;
            // Ignoring a signal discards it if pending.
            if s.disposition(sig) == Disposition::Ignore {
                s.pending &= !bit(sig);
            }
        }
        Ok(0)
    }

    /// `rt_sigprocmask(how, set, oldset, sigsetsize)`.
    pub(crate) fn rt_sigprocmask(
        &mut self,
        pid: Pid,
        how: u32,
        set: UserPtr,
        old: UserPtr,
        setsize: u64,
    ) -> Result<i64, Errno> {
        if setsize != 8 {
            return Err(Errno::Inval);
        }
        let new = if set.is_null() {
            None
        } else {
            if how > SIG_SETMASK {
                return Err(Errno::Inval);
            }
            Some(word(&self.copy_in(pid, set, 8)?, 0))
        };
        let blocked = self.caller_part_mut(pid)?.blocked;
        if !old.is_null() {
            self.copy_out(pid, old, &blocked.to_le_bytes())?;
        }
        if let Some(set) = new {
            let s = self.caller_part_mut(pid)?;
            let next = match how {
                SIG_BLOCK => blocked | set,
                SIG_UNBLOCK => blocked & !set,
                _ => set,
            };
            s.set_blocked(next);
        }
        Ok(0)
    }

    /// `sigaltstack(ss, old_ss)`; `sp` is the caller's stack pointer (the
    /// stack cannot change while the caller runs on it).
    pub fn sigaltstack(
        &mut self,
        pid: Pid,
        ss: UserPtr,
        old: UserPtr,
        sp: u64,
    ) -> Result<i64, Errno> {
        let current = self.caller_part_mut(pid)?.altstack;
        let on_it = current.contains(sp);
        let new = if ss.is_null() {
            None
        } else {
            let b = self.copy_in(pid, ss, STACK_T_SIZE)?;
            let (base, flags, size) = (word(&b, 0), word32(&b, 8), word(&b, 16));
            if on_it {
                return Err(Errno::Perm);
            }
            if flags & !(SS_DISABLE | SS_ONSTACK) != 0 {
                return Err(Errno::Inval);
            }
            if flags & SS_DISABLE != 0 {
                Some(AltStack::default())
            } else if size < MINSIGSTKSZ {
                return Err(Errno::NoMem);
            } else {
                Some(AltStack {
                    sp: base,
                    size,
                    enabled: true,
                })
            }
        };
        if !old.is_null() {
            let mut b = [0u8; STACK_T_SIZE];
            let flags = if !current.enabled {
                SS_DISABLE
            } else if on_it {
                SS_ONSTACK
            } else {
                0
            };
            b[0..8].copy_from_slice(&current.sp.to_le_bytes());
            b[8..12].copy_from_slice(&flags.to_le_bytes());
            b[16..24].copy_from_slice(&current.size.to_le_bytes());
            self.copy_out(pid, old, &b)?;
        }
        if let Some(a) = new {
            self.caller_part_mut(pid)?.altstack = a;
        }
        Ok(0)
    }

    /// Sends `sig` to process `target` (either personality): it becomes
    /// pending unless ignored, and a deliverable one wakes the target from
    /// a sleep or a wait, so that it takes the signal (its handler, or its
    /// default action: a terminating signal ends it in its own context, on
    /// its way back to user mode). Signal 0 only checks the target.
    pub fn send_signal(&mut self, target: Pid, sig: u32) -> Result<(), Errno> {
        let origin = SignalOrigin {
            code: SI_KERNEL,
            ..Default::default()
        };
        self.send_signal_from(target, sig, origin)
    }

    /// [`Self::send_signal`] with the `siginfo` the handler gets.
    pub fn send_signal_from(
        &mut self,
        target: Pid,
        sig: u32,
        origin: SignalOrigin,
    ) -> Result<(), Errno> {
        let p = self.processes.get_mut(target).ok_or(Errno::NoEnt)?;
        if matches!(p.state, crate::process::State::Ended(_)) {
            return Err(Errno::NoEnt);
        }
        if sig == 0 {
            return Ok(());
        }
        if !valid(sig) {
            return Err(Errno::Inval);
        }
        if p.signals.post_from(sig, origin) {
            self.platform.signal_pending();
            self.interrupt_a_waiter(target, sig);
        }
        Ok(())
    }

    /// Whether the calling thread of `pid` has a signal to take (sent to
    /// the process or to it, not blocked by its mask): a blocked call of
    /// it stops ([`Self::interrupted_call`] says how it ends).
    pub fn signal_interrupts(&self, pid: Pid) -> bool {
        self.processes.deliverable_to(self.caller_tid(pid)) != 0
    }

    /// The result of a blocked call of `pid` that a signal stopped:
    /// [`RESTART_CALL`] (made again after the handler) or `-EINTR`, by
    /// `restart` and the action of the signal to be taken next.
    pub fn interrupted_call(&self, pid: Pid, restart: Restart) -> i64 {
        let eintr = -neoos_abi::errno::EINTR;
        let Some(s) = self.signals(pid) else {
            return eintr;
        };
        // The one taken next: sent to the process first, then the thread's.
        let ready = self.processes.deliverable_to(self.caller_tid(pid));
        let next = s
            .peek_deliverable(self.blocked_of(pid))
            .or((ready != 0).then(|| ready.trailing_zeros() + 1));
        let handled = next.map(|sig| s.disposition(sig));
        match (restart, handled) {
            (Restart::Always, _) => RESTART_CALL,
            (Restart::Never, _) => eintr,
            (Restart::WithSaRestart, Some(Disposition::Handle(a))) if a.flags & SA_RESTART == 0 => {
                eintr
            }
            // SA_RESTART, or no handler runs (the process ends, or nothing
            // happens): the call is made again.
            (Restart::WithSaRestart, _) => RESTART_CALL,
        }
    }

    /// After the signals of a return to user mode were taken: a mask
    /// `rt_sigsuspend` replaced and no handler's frame took back is put
    /// back.
    pub fn restore_saved_mask(&mut self, pid: Pid) {
        if let Ok(s) = self.caller_part_mut(pid) {
            if let Some(mask) = s.saved_mask.take() {
                s.set_blocked(mask);
            }
        }
    }

    /// `rt_sigsuspend(mask, sigsetsize)`, its first half: the mask is read
    /// and put in place of the blocked set (the old one saved); the caller
    /// then sleeps until a signal comes (then `EINTR`).
    pub(crate) fn sigsuspend_begin(
        &mut self,
        pid: Pid,
        mask: UserPtr,
        setsize: u64,
    ) -> Result<(), Errno> {
        if setsize != 8 {
            return Err(Errno::Inval);
        }
        let mask = word(&self.copy_in(pid, mask, 8)?, 0);
        let s = self.caller_part_mut(pid)?;
        let old = s.saved_mask.unwrap_or(s.blocked);
        s.saved_mask = Some(old);
        s.set_blocked(mask);
        Ok(())
    }

    /// A child's end, told to its parent: SIGCHLD (discarded unless the
    /// parent handles it); a parent that ignores SIGCHLD or set
    /// `SA_NOCLDWAIT` has the child reaped at once (returned, to report).
    pub(crate) fn notify_parent(
        &mut self,
        parent: Pid,
        child: Pid,
        status: i64,
    ) -> Option<Unwaited> {
        let reaps = self.signals(parent)?.reaps_children();
        let unwaited = if reaps {
            self.processes.auto_reap(child)
        } else {
            None
        };
        let wait = super::wait_status(status);
        let origin = match wait & 0x7f {
            0 => SignalOrigin {
                code: CLD_EXITED,
                pid: child,
                status: (wait >> 8) & 0xff,
            },
            sig => SignalOrigin {
                code: if wait & 0x80 != 0 {
                    CLD_DUMPED
                } else {
                    CLD_KILLED
                },
                pid: child,
                status: sig,
            },
        };
        let _ = self.send_signal_from(parent, SIGCHLD, origin);
        unwaited
    }

    /// The `siginfo` of pending signal `sig` of `pid` (taken by
    /// [`Self::next_pending_signal`]).
    pub fn pending_signal_info(&self, pid: Pid, sig: u32) -> SigInfo {
        match self.signals(pid) {
            Some(s) => s.info_of(sig),
            None => SigInfo {
                signo: sig,
                code: SI_KERNEL,
                addr_or_pid: 0,
                status: 0,
            },
        }
    }

    /// Delivers `info`'s signal to process `pid`, whose user registers are
    /// `regs` and FPU state `fpu` (`cpu_area`: the CPU's own `fxsave`
    /// image, for its MXCSR mask). A fault signal (`forced`) that is
    /// blocked or ignored ends the process, as on Linux.
    #[allow(clippy::too_many_arguments)]
    pub fn deliver_signal(
        &mut self,
        pid: Pid,
        info: SigInfo,
        trap: TrapInfo,
        forced: bool,
        regs: &mut UserRegs,
        fpu: &mut FpuState,
        initial_fpu: &FpuState,
    ) -> SignalOutcome {
        let sig = info.signo;
        let (Some(s), Some(t)) = (self.signals(pid), self.caller_part(pid)) else {
            return SignalOutcome::Kill(sig);
        };
        let blocked = t.blocked & bit(sig) != 0;
        let action = match s.disposition(sig) {
            Disposition::Handle(a) if !(forced && blocked) => a,
            Disposition::Ignore if !forced => return SignalOutcome::Nothing,
            _ => return SignalOutcome::Kill(sig),
        };
        // The mask the handler's return restores: the one `rt_sigsuspend`
        // replaced, if it did.
        let (old_mask, altstack) = (t.saved_mask.unwrap_or(t.blocked), t.altstack);
        let running_mask = t.blocked;
        let use_alt =
            action.flags & SA_ONSTACK != 0 && altstack.enabled && !altstack.contains(regs.rsp);
        let sp = if use_alt {
            altstack.sp.wrapping_add(altstack.size)
        } else if altstack.contains(regs.rsp) {
            regs.rsp
        } else {
            regs.rsp.wrapping_sub(RED_ZONE)
        };
        let handler_ok = (USER_BASE..USER_END).contains(&action.handler)
            && (USER_BASE..USER_END).contains(&action.restorer);
        let Some(frame) = build_frame(sp, regs, &trap, &action, old_mask, &altstack, &info) else {
            return SignalOutcome::Kill(SIGSEGV);
        };
        if !handler_ok || frame.at < USER_BASE {
            return SignalOutcome::Kill(SIGSEGV);
        }
        // Both pieces are checked writable before either is stored.
        let stored = self
            .check_writable(pid, UserPtr(frame.fpu_at), FPU_STATE_SIZE)
            .and_then(|_| self.check_writable(pid, UserPtr(frame.at), FRAME_SIZE))
            .and_then(|_| self.copy_out(pid, UserPtr(frame.fpu_at), fpu))
            .and_then(|_| self.copy_out(pid, UserPtr(frame.at), &frame.bytes));
        if stored.is_err() {
            return SignalOutcome::Kill(SIGSEGV);
        }
        let mut mask = running_mask | action.mask;
        if action.flags & SA_NODEFER == 0 {
            mask |= bit(sig);
        }
        let Ok(t) = self.caller_part_mut(pid) else {
            return SignalOutcome::Kill(sig);
        };
        t.set_blocked(mask);
        t.saved_mask = None;
        if action.flags & SA_RESETHAND != 0 {
            if let Ok(s) = self.signals_mut(pid) {
                s.actions[(sig - 1) as usize] = SignalAction::default();
            }
        }
        regs.rip = action.handler;
        regs.rsp = frame.at;
        regs.rdi = u64::from(sig);
        regs.rsi = frame.at + INFO_AT as u64;
        regs.rdx = frame.at + UC_AT as u64;
        regs.rax = 0;
        // The handler starts with DF and TF clear, and a fresh FPU state.
        regs.rflags &= !((1 << 10) | (1 << 8));
        *fpu = *initial_fpu;
        SignalOutcome::Continue
    }

    /// `rt_sigreturn`: the frame is at `regs.rsp - 8` (the handler's `ret`
    /// took the return address). Restores the registers, the mask and the
    /// FPU state; a frame that cannot be read, or registers that would
    /// return outside user space, end the process with SIGSEGV (as Linux).
    pub fn signal_return(
        &mut self,
        pid: Pid,
        regs: &mut UserRegs,
        fpu: &mut FpuState,
        cpu_area: &FpuState,
        initial_fpu: &FpuState,
    ) -> SignalOutcome {
        let at = regs.rsp.wrapping_sub(8);
        let Ok(bytes) = self.copy_in(pid, UserPtr(at), FRAME_SIZE) else {
            return SignalOutcome::Kill(SIGSEGV);
        };
        let restored = read_frame(&bytes);
        let user = USER_BASE..USER_END;
        if !user.contains(&restored.regs.rip) || restored.regs.rsp >= USER_END {
            return SignalOutcome::Kill(SIGSEGV);
        }
        let new_fpu = if restored.fpu_at == 0 {
            *initial_fpu
        } else {
            let Ok(raw) = self.copy_in(pid, UserPtr(restored.fpu_at), FPU_STATE_SIZE) else {
                return SignalOutcome::Kill(SIGSEGV);
            };
            let mut f = [0u8; FPU_STATE_SIZE];
            f.copy_from_slice(&raw);
            sanitize_fpu(&mut f, cpu_area);
            f
        };
        let Ok(t) = self.caller_part_mut(pid) else {
            return SignalOutcome::Kill(SIGSEGV);
        };
        t.set_blocked(restored.mask);
        *regs = restored.regs;
        *fpu = new_fpu;
        SignalOutcome::Continue
    }

    /// Makes `sig` pending for `pid` itself (a signal its own call
    /// caused, like SIGPIPE): it is taken on the way back to user mode,
    /// by its handler or its default action. An ignored signal is dropped.
    pub fn raise(&mut self, pid: Pid, sig: u32) {
        let Ok(s) = self.signals_mut(pid) else {
            return;
        };
        if s.post(sig) {
            self.platform.signal_pending();
        }
    }

    /// Takes the next pending, unblocked signal of `pid`, if any.
    /// Signals sent to the process come first, then those sent to the
    /// running thread alone.
    pub fn next_pending_signal(&mut self, pid: Pid) -> Option<u32> {
        let blocked = self.blocked_of(pid);
        match self.signals_mut(pid).ok()?.take_deliverable(blocked) {
            Some(sig) => Some(sig),
            None => self.take_thread_signal(pid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_follows_linux_layout() {
        assert_eq!(UCONTEXT_SIZE, 304);
        assert_eq!(INFO_AT, 312);
        assert_eq!(FRAME_SIZE, 440);
        assert_eq!(SC_FPSTATE, 184);
    }

    #[test]
    fn a_frame_round_trips_registers_and_mask() {
        let regs = UserRegs {
            rip: 0x40_1000,
            rsp: 0x7fff_0000,
            rax: 7,
            r15: 15,
            rflags: 0x246,
            ..Default::default()
        };
        let action = SignalAction {
            handler: 0x40_2000,
            flags: SA_SIGINFO,
            restorer: 0x40_3000,
            mask: 0,
        };
        let info = SigInfo {
            signo: SIGSEGV,
            code: SEGV_MAPERR,
            addr_or_pid: 0xdead_0000,
            status: 0,
        };
        let f = build_frame(
            regs.rsp - RED_ZONE,
            &regs,
            &TrapInfo::default(),
            &action,
            0b101,
            &AltStack::default(),
            &info,
        )
        .unwrap();
        assert_eq!((f.at + 8) % 16, 0, "the handler starts as after a call");
        assert_eq!(f.fpu_at % 64, 0);
        assert!(f.at + FRAME_SIZE as u64 <= f.fpu_at);
        assert_eq!(word(&f.bytes, 0), action.restorer);
        let r = read_frame(&f.bytes);
        assert_eq!(r.regs, regs);
        assert_eq!(r.mask, 0b101);
        assert_eq!(r.fpu_at, f.fpu_at);
        assert_eq!(word(&f.bytes, INFO_AT + 16), 0xdead_0000);
        assert_eq!(word32(&f.bytes, INFO_AT), SIGSEGV);
        assert_eq!(word32(&f.bytes, INFO_AT + 8), SEGV_MAPERR as u32);
    }

    #[test]
    fn sigkill_cannot_be_blocked_or_handled() {
        let mut t = ThreadPart::default();
        t.set_blocked(u64::MAX);
        assert_eq!(t.blocked & bit(SIGKILL), 0);
        assert_eq!(t.blocked & bit(SIGSTOP), 0);
        let mut s = Signals::default();
        s.actions[(SIGKILL - 1) as usize].handler = 0x40_1000;
        assert_eq!(s.disposition(SIGKILL), Disposition::Terminate);
    }

    #[test]
    fn reserved_mxcsr_bits_are_dropped() {
        let mut f = [0u8; FPU_STATE_SIZE];
        f[MXCSR_AT..MXCSR_AT + 4].copy_from_slice(&0xffff_ffffu32.to_le_bytes());
        let cpu = [0u8; FPU_STATE_SIZE];
        sanitize_fpu(&mut f, &cpu);
        assert_eq!(word32(&f, MXCSR_AT), MXCSR_DEFAULT_MASK);
    }

    #[test]
    fn pending_signals_come_lowest_first_unless_blocked() {
        let mut s = Signals {
            pending: bit(SIGUSR1) | bit(SIGSEGV),
            ..Default::default()
        };
        assert_eq!(s.take_deliverable(bit(SIGUSR1)), Some(SIGSEGV));
        assert_eq!(s.take_deliverable(bit(SIGUSR1)), None);
        assert_eq!(s.take_deliverable(0), Some(SIGUSR1));
    }
}
