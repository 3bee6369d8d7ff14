//! Host tests of timers, sleeps, interruptions and SIGCHLD: the clock's
//! step (expiry order, intervals, waking sleepers), `alarm`/`setitimer`
//! and their hostile arguments, `EINTR` and `SA_RESTART`, `rt_sigsuspend`'s
//! mask, the auto-reaping of children, and the uncatchable signals.

use alloc::vec::Vec;

use neoos_abi::layout::STACK_TOP;
use neoos_abi::linux::nr;
use neoos_abi::{errno, TICKS_PER_SECOND};

use super::signals::*;
use crate::process::{Pid, ThreadState, FOREVER};
use crate::syscall::{SchedulerCall, UserPtr};
use crate::test_platform::{kernel, TestFrame, TestPlatform, PROGRAM_ENTRY};
use crate::Kernel;

type K = Kernel<TestPlatform>;

const SCRATCH: u64 = STACK_TOP - 64 * 1024;
const HANDLER: u64 = PROGRAM_ENTRY + 0x10;
const RESTORER: u64 = PROGRAM_ENTRY + 0x20;
const KERNEL_ADDRESS: u64 = 0xffff_8000_0000_0000;

fn spawn_linux(k: &mut K) -> Pid {
    k.spawn("/bin/linux", &[b"/bin/linux".to_vec()], None)
        .unwrap()
}

fn fork(k: &mut K, parent: Pid) -> Pid {
    let frame = TestFrame {
        entry: PROGRAM_ENTRY,
        stack: SCRATCH,
    };
    k.fork(parent, &frame).unwrap()
}

fn poke(k: &mut K, pid: Pid, addr: u64, bytes: &[u8]) {
    k.copy_out(pid, UserPtr(addr), bytes).unwrap();
}

fn peek(k: &mut K, pid: Pid, addr: u64, len: usize) -> Vec<u8> {
    k.copy_in(pid, UserPtr(addr), len).unwrap()
}

fn words(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn read_words(k: &mut K, pid: Pid, addr: u64, n: usize) -> Vec<u64> {
    peek(k, pid, addr, n * 8)
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Runs call `number` of `pid`; a call the scheduler completes comes back
/// as `Err`.
fn call(k: &mut K, pid: Pid, number: usize, args: [u64; 6]) -> Result<i64, SchedulerCall> {
    k.system_call(pid, number, args).map_err(|(c, _)| c)
}

fn sys(k: &mut K, pid: Pid, number: usize, args: [u64; 6]) -> i64 {
    call(k, pid, number, args).unwrap_or_else(|c| panic!("{number} needs the scheduler: {c:?}"))
}

/// `rt_sigaction(sig, {handler, flags | SA_RESTORER, RESTORER, mask})`.
fn sigaction(k: &mut K, pid: Pid, sig: u32, handler: u64, flags: u64) -> i64 {
    let at = SCRATCH + 0x800;
    poke(
        k,
        pid,
        at,
        &words(&[handler, flags | SA_RESTORER, RESTORER, 0]),
    );
    sys(k, pid, nr::RT_SIGACTION, [sig as u64, at, 0, 8, 0, 0])
}

/// `setitimer(ITIMER_REAL, {interval, value})` in (seconds, microseconds).
fn setitimer(k: &mut K, pid: Pid, interval: (i64, i64), value: (i64, i64)) -> i64 {
    let at = SCRATCH + 0x900;
    let v = [interval.0, interval.1, value.0, value.1].map(|x| x as u64);
    poke(k, pid, at, &words(&v));
    sys(k, pid, nr::SETITIMER, [0, at, 0, 0, 0, 0])
}

fn pending(k: &K, pid: Pid) -> u64 {
    k.signals(pid).unwrap().pending
}

fn at_tick(k: &mut K, now: u64) {
    k.platform.ticks = now;
    k.clock_step();
}

/// Makes `pid` the running process and puts it to sleep until `until`.
fn sleep(k: &mut K, pid: Pid, until: u64) {
    while let Some(next) = k.processes.pick_next() {
        if next == pid {
            break;
        }
        k.processes.yield_current();
        k.processes.take_current();
    }
    k.processes.block_current_sleeping(until);
    k.processes.take_current();
}

/// The state of `pid`'s first thread (its only one here).
fn state(k: &K, pid: Pid) -> ThreadState {
    k.processes.thread(pid).unwrap().state
}

#[test]
fn timers_fire_in_expiry_order_and_an_interval_rearms() {
    let mut k = kernel();
    let (a, b) = (spawn_linux(&mut k), spawn_linux(&mut k));
    // a: once, 50 ms from now; b: every 20 ms from 20 ms.
    assert_eq!(setitimer(&mut k, a, (0, 0), (0, 50_000)), 0);
    assert_eq!(setitimer(&mut k, b, (0, 20_000), (0, 20_000)), 0);
    at_tick(&mut k, 1);
    assert_eq!(pending(&k, a) | pending(&k, b), 0, "nothing is due yet");
    at_tick(&mut k, 2);
    assert_eq!((pending(&k, a), pending(&k, b)), (0, bit(SIGALRM)));
    k.next_pending_signal(b);
    at_tick(&mut k, 4);
    assert_eq!((pending(&k, a), pending(&k, b)), (0, bit(SIGALRM)));
    k.next_pending_signal(b);
    at_tick(&mut k, 5);
    assert_eq!((pending(&k, a), pending(&k, b)), (bit(SIGALRM), 0));
    // a fired once: disarmed; b goes on (a late step fires it once).
    let out = SCRATCH + 0xa00;
    assert_eq!(sys(&mut k, a, nr::GETITIMER, [0, out, 0, 0, 0, 0]), 0);
    assert_eq!(read_words(&mut k, a, out, 4), [0, 0, 0, 0]);
    k.next_pending_signal(a);
    at_tick(&mut k, 50);
    assert_eq!((pending(&k, a), pending(&k, b)), (0, bit(SIGALRM)));
    assert_eq!(sys(&mut k, b, nr::GETITIMER, [0, out, 0, 0, 0, 0]), 0);
    assert_eq!(
        read_words(&mut k, b, out, 4),
        [0, 20_000, 0, 20_000],
        "interval 20 ms, next in 20 ms"
    );
}

#[test]
fn alarm_returns_the_seconds_left_rounded_as_linux_and_zero_disarms() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    assert_eq!(sys(&mut k, pid, nr::ALARM, [5, 0, 0, 0, 0, 0]), 0);
    k.platform.ticks = 250;
    assert_eq!(
        sys(&mut k, pid, nr::ALARM, [1, 0, 0, 0, 0, 0]),
        3,
        "2.5 s left rounds to 3"
    );
    k.platform.ticks = 349;
    assert_eq!(
        sys(&mut k, pid, nr::ALARM, [0, 0, 0, 0, 0, 0]),
        1,
        "10 ms left is at least 1 s"
    );
    at_tick(&mut k, 10_000);
    assert_eq!(pending(&k, pid), 0, "alarm(0) disarmed it");
    assert_eq!(sys(&mut k, pid, nr::ALARM, [1, 0, 0, 0, 0, 0]), 0);
    at_tick(&mut k, 10_000 + TICKS_PER_SECOND - 1);
    assert_eq!(pending(&k, pid), 0);
    at_tick(&mut k, 10_000 + TICKS_PER_SECOND);
    assert_eq!(pending(&k, pid), bit(SIGALRM));
}

#[test]
fn hostile_setitimer_values_are_einval_and_change_nothing() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    assert_eq!(setitimer(&mut k, pid, (1, 0), (2, 0)), 0);
    let out = SCRATCH + 0xa00;
    let armed = |k: &mut K| {
        assert_eq!(sys(k, pid, nr::GETITIMER, [0, out, 0, 0, 0, 0]), 0);
        read_words(k, pid, out, 4)
    };
    let before = armed(&mut k);
    assert_eq!(before, [1, 0, 2, 0]);
    let bad = [
        ((0, 0), (-1, 0)),
        ((0, 0), (0, -1)),
        ((0, 0), (0, 1_000_000)),
        ((-5, 0), (1, 0)),
        ((0, i64::MAX), (1, 0)),
        ((0, 0), (i64::MIN, 0)),
    ];
    for (interval, value) in bad {
        assert_eq!(
            setitimer(&mut k, pid, interval, value),
            -errno::EINVAL,
            "{interval:?} {value:?}"
        );
        assert_eq!(armed(&mut k), before, "{interval:?} {value:?}");
    }
    // Other timers, and unknown ones.
    for which in [1u64, 2, 3, u32::MAX as u64] {
        assert_eq!(
            sys(
                &mut k,
                pid,
                nr::SETITIMER,
                [which, SCRATCH + 0x900, 0, 0, 0, 0]
            ),
            -errno::EINVAL
        );
        assert_eq!(
            sys(&mut k, pid, nr::GETITIMER, [which, out, 0, 0, 0, 0]),
            -errno::EINVAL
        );
    }
    // Bad pointers: the new value, then the old one (checked before).
    assert_eq!(
        sys(&mut k, pid, nr::SETITIMER, [0, KERNEL_ADDRESS, 0, 0, 0, 0]),
        -errno::EFAULT
    );
    poke(&mut k, pid, SCRATCH + 0x900, &words(&[0, 0, 9, 0]));
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::SETITIMER,
            [0, SCRATCH + 0x900, KERNEL_ADDRESS, 0, 0, 0]
        ),
        -errno::EFAULT
    );
    assert_eq!(armed(&mut k), before);
    assert_eq!(
        sys(&mut k, pid, nr::GETITIMER, [0, 8, 0, 0, 0, 0]),
        -errno::EFAULT
    );
    // A time too long for the clock saturates, as on Linux.
    assert_eq!(setitimer(&mut k, pid, (0, 0), (i64::MAX, 999_999)), 0);
    at_tick(&mut k, 1 << 40);
    assert_eq!(pending(&k, pid), 0);
    // A NULL new value disarms, and the old one is stored.
    assert_eq!(sys(&mut k, pid, nr::SETITIMER, [0, 0, out, 0, 0, 0]), 0);
    assert_ne!(read_words(&mut k, pid, out, 4)[2], 0);
    assert_eq!(armed(&mut k), [0, 0, 0, 0]);
}

#[test]
fn a_sleeper_wakes_when_its_time_comes_not_before() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    // nanosleep(30 ms).
    poke(&mut k, pid, SCRATCH, &words(&[0, 30_000_000]));
    let sleep_call = call(&mut k, pid, nr::NANOSLEEP, [SCRATCH, 0, 0, 0, 0, 0]);
    assert_eq!(
        sleep_call,
        Err(SchedulerCall::Sleep {
            until: 3,
            rem: UserPtr(0)
        })
    );
    assert_eq!(k.sleep_step(pid, 3, UserPtr(0)), None);
    sleep(&mut k, pid, 3);
    at_tick(&mut k, 2);
    assert_eq!(state(&k, pid), ThreadState::Blocked { deadline: Some(3) });
    assert_eq!(k.processes.pick_next(), None, "a sleeper is not run");
    at_tick(&mut k, 3);
    assert_eq!(state(&k, pid), ThreadState::Ready);
    assert_eq!(k.sleep_step(pid, 3, UserPtr(0)), Some(0));
}

#[test]
fn a_caught_signal_interrupts_nanosleep_with_the_time_left() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    assert_eq!(sigaction(&mut k, pid, SIGUSR1, HANDLER, SA_RESTART), 0);
    // Blocked: it neither wakes the sleeper nor interrupts it.
    poke(&mut k, pid, SCRATCH + 0x100, &bit(SIGUSR1).to_le_bytes());
    sys(
        &mut k,
        pid,
        nr::RT_SIGPROCMASK,
        [SIG_BLOCK as u64, SCRATCH + 0x100, 0, 8, 0, 0],
    );
    sleep(&mut k, pid, 250);
    assert_eq!(k.send_signal(pid, SIGUSR1), Ok(()));
    assert_eq!(
        state(&k, pid),
        ThreadState::Blocked {
            deadline: Some(250)
        }
    );
    assert_eq!(k.sleep_step(pid, 250, UserPtr(SCRATCH + 0x200)), None);
    // One it does not block wakes it.
    assert_eq!(sigaction(&mut k, pid, SIGUSR2, HANDLER, SA_RESTART), 0);
    k.platform.ticks = 10;
    k.send_signal(pid, SIGUSR2).unwrap();
    assert_eq!(state(&k, pid), ThreadState::Ready);
    assert_eq!(
        k.sleep_step(pid, 250, UserPtr(SCRATCH + 0x200)),
        Some(-errno::EINTR),
        "EINTR even with SA_RESTART"
    );
    assert_eq!(
        read_words(&mut k, pid, SCRATCH + 0x200, 2),
        [2, 400_000_000],
        "2.4 s left"
    );
    // A bad rem pointer: EFAULT.
    assert_eq!(
        k.sleep_step(pid, 250, UserPtr(KERNEL_ADDRESS)),
        Some(-errno::EFAULT)
    );
    assert_eq!(k.interrupted_call(pid, Restart::Never), -errno::EINTR);
}

#[test]
fn sa_restart_decides_whether_a_blocked_call_is_made_again() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    assert_eq!(sigaction(&mut k, pid, SIGUSR1, HANDLER, SA_RESTART), 0);
    assert_eq!(sigaction(&mut k, pid, SIGUSR2, HANDLER, 0), 0);
    assert!(!k.signal_interrupts(pid));
    k.send_signal(pid, SIGUSR1).unwrap();
    assert!(k.signal_interrupts(pid));
    assert_eq!(
        k.interrupted_call(pid, Restart::WithSaRestart),
        RESTART_CALL
    );
    assert_eq!(k.interrupted_call(pid, Restart::Never), -errno::EINTR);
    k.next_pending_signal(pid);
    k.send_signal(pid, SIGUSR2).unwrap();
    assert_eq!(
        k.interrupted_call(pid, Restart::WithSaRestart),
        -errno::EINTR
    );
    assert_eq!(k.interrupted_call(pid, Restart::Always), RESTART_CALL);
    // A signal that ends the process: the call is made again (it never
    // returns; the process dies on its way out).
    k.next_pending_signal(pid);
    k.send_signal(pid, SIGTERM).unwrap();
    assert_eq!(
        k.interrupted_call(pid, Restart::WithSaRestart),
        RESTART_CALL
    );
}

#[test]
fn pause_sleeps_until_a_signal_and_an_ignored_one_does_not_wake_it() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    assert_eq!(
        call(&mut k, pid, nr::PAUSE, [0; 6]),
        Err(SchedulerCall::Sleep {
            until: FOREVER,
            rem: UserPtr(0)
        })
    );
    sleep(&mut k, pid, FOREVER);
    at_tick(&mut k, 1 << 50);
    assert_eq!(state(&k, pid), ThreadState::Blocked { deadline: None });
    // SIGCHLD and SIGWINCH are ignored by default: discarded.
    k.send_signal(pid, SIGCHLD).unwrap();
    k.send_signal(pid, SIGWINCH).unwrap();
    assert_eq!(pending(&k, pid), 0);
    assert_eq!(state(&k, pid), ThreadState::Blocked { deadline: None });
    assert_eq!(sigaction(&mut k, pid, SIGALRM, HANDLER, 0), 0);
    k.send_signal(pid, SIGALRM).unwrap();
    assert_eq!(state(&k, pid), ThreadState::Ready);
    assert_eq!(k.sleep_step(pid, FOREVER, UserPtr(0)), Some(-errno::EINTR));
}

#[test]
fn sigsuspend_sleeps_with_its_mask_and_the_handler_returns_to_the_old_one() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    assert_eq!(sigaction(&mut k, pid, SIGUSR1, HANDLER, 0), 0);
    // Block SIGUSR1 and SIGUSR2; suspend with only SIGUSR2 blocked.
    let old = bit(SIGUSR1) | bit(SIGUSR2);
    poke(&mut k, pid, SCRATCH + 0x100, &old.to_le_bytes());
    poke(&mut k, pid, SCRATCH + 0x108, &bit(SIGUSR2).to_le_bytes());
    sys(
        &mut k,
        pid,
        nr::RT_SIGPROCMASK,
        [SIG_SETMASK as u64, SCRATCH + 0x100, 0, 8, 0, 0],
    );
    // Hostile first: bad size, bad pointer: nothing changes.
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::RT_SIGSUSPEND,
            [SCRATCH + 0x108, 4, 0, 0, 0, 0]
        ),
        -errno::EINVAL
    );
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::RT_SIGSUSPEND,
            [KERNEL_ADDRESS, 8, 0, 0, 0, 0]
        ),
        -errno::EFAULT
    );
    assert_eq!(k.blocked_of(pid), old);
    assert_eq!(
        call(
            &mut k,
            pid,
            nr::RT_SIGSUSPEND,
            [SCRATCH + 0x108, 8, 0, 0, 0, 0]
        ),
        Err(SchedulerCall::Sleep {
            until: FOREVER,
            rem: UserPtr(0)
        })
    );
    assert_eq!(k.blocked_of(pid), bit(SIGUSR2));
    sleep(&mut k, pid, FOREVER);
    k.send_signal(pid, SIGUSR2).unwrap();
    assert_eq!(state(&k, pid), ThreadState::Blocked { deadline: None });
    k.send_signal(pid, SIGUSR1).unwrap();
    assert_eq!(state(&k, pid), ThreadState::Ready);
    assert_eq!(k.sleep_step(pid, FOREVER, UserPtr(0)), Some(-errno::EINTR));
    // The handler runs with the suspend mask plus the signal; its frame
    // holds the old mask, which sigreturn puts back.
    assert_eq!(k.next_pending_signal(pid), Some(SIGUSR1));
    let mut regs = UserRegs {
        rip: PROGRAM_ENTRY,
        rsp: SCRATCH + 0x8000,
        ..Default::default()
    };
    let mut fpu = [0u8; FPU_STATE_SIZE];
    let initial = fpu;
    let info = SigInfo {
        signo: SIGUSR1,
        code: SI_USER,
        addr_or_pid: 0,
        status: 0,
    };
    let outcome = k.deliver_signal(
        pid,
        info,
        TrapInfo::default(),
        false,
        &mut regs,
        &mut fpu,
        &initial,
    );
    assert_eq!(outcome, SignalOutcome::Continue);
    k.restore_saved_mask(pid);
    assert_eq!(
        k.blocked_of(pid),
        bit(SIGUSR2) | bit(SIGUSR1),
        "the handler's mask"
    );
    regs.rsp += 8;
    let out = k.signal_return(pid, &mut regs, &mut fpu, &initial, &initial);
    assert_eq!(out, SignalOutcome::Continue);
    assert_eq!(k.blocked_of(pid), old, "back to the old mask");
    assert_eq!(
        pending(&k, pid),
        bit(SIGUSR2),
        "still blocked, still pending"
    );
}

#[test]
fn a_childs_end_sends_sigchld_to_a_parent_that_handles_it() {
    let mut k = kernel();
    let parent = spawn_linux(&mut k);
    let quiet = fork(&mut k, parent);
    // Default action (ignore): nothing pending, the child waits to be reaped.
    end(&mut k, quiet, 3);
    assert_eq!(pending(&k, parent), 0);
    assert_eq!(
        k.linux_wait_step(parent, -1, UserPtr(0), 0),
        Ok(Some(i64::from(quiet)))
    );
    assert_eq!(sigaction(&mut k, parent, SIGCHLD, HANDLER, 0), 0);
    let child = fork(&mut k, parent);
    end(&mut k, child, 5);
    assert_eq!(pending(&k, parent), bit(SIGCHLD));
    let info = k.pending_signal_info(parent, SIGCHLD);
    assert_eq!(
        (info.code, info.addr_or_pid, info.status),
        (CLD_EXITED, u64::from(child), 5),
        "si_code, si_pid, si_status"
    );
    k.next_pending_signal(parent);
    let killed = fork(&mut k, parent);
    end(&mut k, killed, crate::linux::killed_by(SIGSEGV));
    let info = k.pending_signal_info(parent, SIGCHLD);
    assert_eq!(
        (info.code, info.addr_or_pid, info.status),
        (CLD_DUMPED, u64::from(killed), SIGSEGV as i32)
    );
    k.linux_wait_step(parent, killed as i64, UserPtr(0), 0)
        .unwrap();
    assert_eq!(
        k.linux_wait_step(parent, -1, UserPtr(SCRATCH), 0),
        Ok(Some(i64::from(child))),
        "it is still there to wait for"
    );
}

#[test]
fn a_parent_ignoring_sigchld_has_its_children_reaped_and_wait_finds_none() {
    for (handler, flags, signalled) in [(SIG_IGN, 0, false), (HANDLER, SA_NOCLDWAIT, true)] {
        let mut k = kernel();
        let parent = spawn_linux(&mut k);
        assert_eq!(sigaction(&mut k, parent, SIGCHLD, handler, flags), 0);
        let (a, b) = (fork(&mut k, parent), fork(&mut k, parent));
        end(&mut k, a, 1);
        assert!(k.processes.get(a).is_none(), "reaped at once");
        assert_eq!(
            k.linux_wait_step(parent, -1, UserPtr(0), 0),
            Ok(None),
            "b still runs: wait blocks"
        );
        end(&mut k, b, 2);
        assert_eq!(
            k.linux_wait_step(parent, -1, UserPtr(0), 0),
            Err(super::LinuxError::NoChild)
        );
        assert_eq!(pending(&k, parent) == bit(SIGCHLD), signalled);
        assert!(k
            .platform
            .reports
            .iter()
            .any(|r| r.contains("ended with status 2")));
    }
}

/// Ends `pid` as the kernel does once the CPU has left it.
fn end(k: &mut K, pid: Pid, status: i64) {
    k.end(pid, status);
    k.release_ended(pid);
}

#[test]
fn sigkill_and_sigstop_cannot_be_caught_blocked_or_ignored() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    for sig in [SIGKILL, SIGSTOP] {
        assert_eq!(sigaction(&mut k, pid, sig, HANDLER, 0), -errno::EINVAL);
        assert_eq!(sigaction(&mut k, pid, sig, SIG_IGN, 0), -errno::EINVAL);
        // Reading their action is allowed.
        assert_eq!(
            sys(
                &mut k,
                pid,
                nr::RT_SIGACTION,
                [sig as u64, 0, SCRATCH, 8, 0, 0]
            ),
            0
        );
    }
    // (Linux reads an `int`: only the low 32 bits count.)
    for sig in [0u64, 65, 1 << 32, u64::MAX] {
        assert_eq!(
            sys(&mut k, pid, nr::RT_SIGACTION, [sig, 0, SCRATCH, 8, 0, 0]),
            -errno::EINVAL,
            "signal {sig:#x}"
        );
    }
    // A bad new action or old-action pointer: EFAULT, nothing changed.
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::RT_SIGACTION,
            [SIGUSR1 as u64, 8, 0, 8, 0, 0]
        ),
        -errno::EFAULT
    );
    poke(
        &mut k,
        pid,
        SCRATCH,
        &words(&[HANDLER, SA_RESTORER, RESTORER, 0]),
    );
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::RT_SIGACTION,
            [SIGUSR1 as u64, SCRATCH, KERNEL_ADDRESS, 8, 0, 0]
        ),
        -errno::EFAULT
    );
    assert_eq!(
        k.signals(pid).unwrap().action(SIGUSR1),
        SignalAction::default()
    );
    // Blocking everything leaves SIGKILL deliverable.
    poke(&mut k, pid, SCRATCH, &u64::MAX.to_le_bytes());
    sys(
        &mut k,
        pid,
        nr::RT_SIGPROCMASK,
        [SIG_SETMASK as u64, SCRATCH, 0, 8, 0, 0],
    );
    sleep(&mut k, pid, FOREVER);
    k.send_signal(pid, SIGTERM).unwrap();
    assert_eq!(state(&k, pid), ThreadState::Blocked { deadline: None });
    k.send_signal(pid, SIGKILL).unwrap();
    assert_eq!(state(&k, pid), ThreadState::Ready);
    assert_eq!(k.next_pending_signal(pid), Some(SIGKILL));
    let mut regs = UserRegs::default();
    let mut fpu = [0u8; FPU_STATE_SIZE];
    let initial = fpu;
    let info = SigInfo {
        signo: SIGKILL,
        code: SI_USER,
        addr_or_pid: 0,
        status: 0,
    };
    assert_eq!(
        k.deliver_signal(
            pid,
            info,
            TrapInfo::default(),
            false,
            &mut regs,
            &mut fpu,
            &initial
        ),
        SignalOutcome::Kill(SIGKILL)
    );
}

#[test]
fn kill_to_self_with_a_terminating_signal_is_taken_on_the_way_out() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::KILL,
            [pid as u64, SIGTERM as u64, 0, 0, 0, 0]
        ),
        0
    );
    assert_eq!(k.next_pending_signal(pid), Some(SIGTERM));
    assert_eq!(
        sys(&mut k, pid, nr::KILL, [9999, SIGTERM as u64, 0, 0, 0, 0]),
        -errno::ESRCH
    );
    assert_eq!(
        sys(&mut k, pid, nr::KILL, [pid as u64, 65, 0, 0, 0, 0]),
        -errno::EINVAL
    );
}

#[test]
fn a_forked_child_has_no_timer_and_nothing_pending() {
    let mut k = kernel();
    let parent = spawn_linux(&mut k);
    assert_eq!(sigaction(&mut k, parent, SIGUSR1, HANDLER, 0), 0);
    assert_eq!(sys(&mut k, parent, nr::ALARM, [1, 0, 0, 0, 0, 0]), 0);
    k.send_signal(parent, SIGUSR1).unwrap();
    let child = fork(&mut k, parent);
    assert_eq!(pending(&k, child), 0);
    assert_eq!(k.signals(child).unwrap().action(SIGUSR1).handler, HANDLER);
    at_tick(&mut k, TICKS_PER_SECOND);
    assert_eq!(pending(&k, child), 0);
    assert_eq!(pending(&k, parent), bit(SIGUSR1) | bit(SIGALRM));
}

#[test]
fn a_neoos_program_catches_sigsegv_through_its_own_calls() {
    use neoos_abi::nr as neo_nr;
    let mut k = kernel();
    let pid = k
        .spawn("/bin/prog", &[b"/bin/prog".to_vec()], None)
        .unwrap();
    poke(
        &mut k,
        pid,
        SCRATCH,
        &words(&[HANDLER, SA_SIGINFO | SA_RESTORER, RESTORER, 0]),
    );
    assert_eq!(
        sys(
            &mut k,
            pid,
            neo_nr::SIGACTION,
            [SIGSEGV as u64, SCRATCH, 0, 8, 0, 0]
        ),
        0
    );
    assert_eq!(
        sys(
            &mut k,
            pid,
            neo_nr::SIGACTION,
            [SIGKILL as u64, SCRATCH, 0, 8, 0, 0]
        ),
        -errno::EINVAL
    );
    let mut regs = UserRegs {
        rip: PROGRAM_ENTRY,
        rsp: SCRATCH + 0x8000,
        ..Default::default()
    };
    let mut fpu = [0u8; FPU_STATE_SIZE];
    let initial = fpu;
    let info = SigInfo {
        signo: SIGSEGV,
        code: SEGV_MAPERR,
        addr_or_pid: 0x1000,
        status: 0,
    };
    let outcome = k.deliver_signal(
        pid,
        info,
        TrapInfo::default(),
        true,
        &mut regs,
        &mut fpu,
        &initial,
    );
    assert_eq!(outcome, SignalOutcome::Continue);
    assert_eq!(regs.rip, HANDLER);
    assert_eq!(
        read_words(&mut k, pid, regs.rsi + 16, 1),
        [0x1000],
        "si_addr"
    );
    // kill(pid, sig) of the NeoOS numbering, and sigprocmask.
    poke(&mut k, pid, SCRATCH, &bit(SIGUSR1).to_le_bytes());
    assert_eq!(
        sys(
            &mut k,
            pid,
            neo_nr::SIGPROCMASK,
            [SIG_BLOCK as u64, SCRATCH, 0, 8, 0, 0]
        ),
        0
    );
    assert_eq!(
        sys(
            &mut k,
            pid,
            neo_nr::SIGNAL,
            [pid as u64, SIGUSR1 as u64, 0, 0, 0, 0]
        ),
        0
    );
    assert!(!k.signal_interrupts(pid), "blocked");
    assert_eq!(
        sys(
            &mut k,
            pid,
            neo_nr::SIGNAL,
            [4242, SIGUSR1 as u64, 0, 0, 0, 0]
        ),
        -errno::ESRCH
    );
    // Without a handler, SIGSEGV ends it (status 139, as before).
    assert_eq!(
        crate::linux::killed_by(SIGSEGV),
        neoos_abi::status::SEGFAULT
    );
}
