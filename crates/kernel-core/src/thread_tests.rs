//! Host tests of threads and futexes over the test machine: Linux thread
//! clone (and every flag combination it refuses), the per-thread part of a
//! process's state, the end of one thread and of all, NeoOS threads and
//! joins, `tkill`/`tgkill`, and `futex` wait, wake, `EAGAIN`, timeouts and
//! bad addresses; after a process with threads ends, every frame, context,
//! table and futex waiter is gone.

use alloc::vec::Vec;

use neoos_abi::layout::{STACK_TOP, USER_END};
use neoos_abi::linux::clone::*;
use neoos_abi::linux::futex::*;
use neoos_abi::linux::nr;
use neoos_abi::{errno, PAGE_SIZE};

use crate::linux::signals::{bit, SIGUSR1};
use crate::process::{Pid, State, StopAsked, ThreadState, Tid};
use crate::syscall::{SchedulerCall, UserPtr};
use crate::test_platform::{kernel, TestFrame, TestPlatform};
use crate::threads::CloneArgs;
use crate::Kernel;

type K = Kernel<TestPlatform>;

const SCRATCH: u64 = STACK_TOP - 64 * 1024;
const PAGE: u64 = PAGE_SIZE as u64;
/// What musl's pthread_create passes.
const MUSL: u64 = CLONE_VM
    | CLONE_FS
    | CLONE_FILES
    | CLONE_SIGHAND
    | CLONE_THREAD
    | CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_DETACHED;
/// What glibc's pthread_create passes.
const GLIBC: u64 = MUSL & !CLONE_DETACHED;

fn spawn_linux(k: &mut K) -> Pid {
    k.spawn("/bin/linux", &[b"/bin/linux".to_vec()], None)
        .unwrap()
}

/// Runs Linux call `number` of the running thread's process.
fn sys(k: &mut K, pid: Pid, number: usize, args: [u64; 6]) -> Result<i64, SchedulerCall> {
    k.system_call(pid, number, args).map_err(|(c, _)| c)
}

fn done(k: &mut K, pid: Pid, number: usize, args: [u64; 6]) -> i64 {
    sys(k, pid, number, args).expect("a call that needs no scheduler")
}

fn args(flags: u64, stack: u64) -> CloneArgs {
    CloneArgs {
        flags,
        stack,
        parent_tid: UserPtr(SCRATCH),
        child_tid: UserPtr(SCRATCH + 8),
        tls: 0x7000_1000,
    }
}

fn frame(stack: u64) -> TestFrame {
    TestFrame {
        entry: 0x40_1000,
        stack,
    }
}

/// Makes `tid` the running thread, as the scheduler does.
fn run(k: &mut K, tid: Tid) {
    if let Some(cur) = k.processes.current_thread() {
        k.processes.yield_current();
        k.processes.take_current();
        k.release_after_switch(cur);
    }
    assert_eq!(
        k.processes.pick_this(tid),
        Some(tid),
        "thread {tid} is ready and may run here"
    );
}

fn u32_at(k: &mut K, pid: Pid, addr: u64) -> u32 {
    let b = k.copy_in(pid, UserPtr(addr), 4).unwrap();
    u32::from_le_bytes(b.try_into().unwrap())
}

fn put_u32(k: &mut K, pid: Pid, addr: u64, v: u32) {
    k.copy_out(pid, UserPtr(addr), &v.to_le_bytes()).unwrap();
}

#[test]
fn a_thread_clone_shares_the_space_and_gets_its_own_id_tls_and_mask() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    run(&mut k, pid);
    let mask = bit(SIGUSR1);
    let first = k.processes.thread_part_mut(pid).unwrap();
    first.blocked = mask;
    first.fs_base = 0x5000;
    let tid = k
        .clone_thread(pid, &frame(SCRATCH - PAGE), args(MUSL, SCRATCH - PAGE))
        .unwrap();
    assert_ne!(tid, pid);
    assert_eq!(k.processes.thread(tid).unwrap().pid, pid);
    assert_eq!(u32_at(&mut k, pid, SCRATCH), tid, "CLONE_PARENT_SETTID");
    assert_eq!(
        k.processes.thread(tid).unwrap().clear_child_tid,
        SCRATCH + 8
    );
    assert_eq!(k.processes.len(), 1, "no new process");
    assert_eq!(k.platform.contexts_live, 2);
    assert_eq!(done(&mut k, pid, nr::GETTID, [0; 6]), i64::from(pid));
    // The new thread runs with its own TLS and the mask it was created with.
    run(&mut k, tid);
    assert_eq!(done(&mut k, pid, nr::GETTID, [0; 6]), i64::from(tid));
    assert_eq!(done(&mut k, pid, nr::GETPID, [0; 6]), i64::from(pid));
    assert_eq!(k.fs_base_of(pid), 0x7000_1000);
    assert_eq!(k.processes.thread_part(tid).unwrap().blocked, mask);
    // Its own mask changes do not reach the first thread.
    k.processes.thread_part_mut(tid).unwrap().blocked = 0;
    run(&mut k, pid);
    assert_eq!(k.fs_base_of(pid), 0x5000);
    assert_eq!(k.processes.thread_part(pid).unwrap().blocked, mask);
    assert_eq!(k.processes.thread_part(tid).unwrap().blocked, 0);
}

#[test]
fn glibc_flags_and_the_clone_call_make_a_thread_too() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    run(&mut k, pid);
    assert!(k
        .clone_thread(pid, &frame(SCRATCH), args(GLIBC, SCRATCH))
        .is_ok());
    let call = sys(
        &mut k,
        pid,
        nr::CLONE,
        [MUSL, SCRATCH, SCRATCH, SCRATCH + 8, 0x1000, 0],
    );
    assert!(matches!(call, Err(SchedulerCall::CloneThread { .. })));
}

#[test]
fn refused_clones_change_nothing() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    run(&mut k, pid);
    put_u32(&mut k, pid, SCRATCH, 0xaaaa_aaaa);
    let before = (
        k.platform.contexts_live,
        k.processes.threads_of(pid).count(),
    );
    let inval = -errno::EINVAL;
    let cases: Vec<(u64, u64, u64, u64)> = alloc::vec![
        // flags, stack, parent tid, tls
        (MUSL & !CLONE_VM, SCRATCH, SCRATCH, 0),
        (MUSL & !CLONE_SIGHAND, SCRATCH, SCRATCH, 0),
        (MUSL & !CLONE_FILES, SCRATCH, SCRATCH, 0),
        (MUSL & !CLONE_FS, SCRATCH, SCRATCH, 0),
        (MUSL | CLONE_VFORK, SCRATCH, SCRATCH, 0),
        (
            MUSL | 0x2000_0000, /* CLONE_NEWUTS */
            SCRATCH,
            SCRATCH,
            0
        ),
        (MUSL | (1 << 40), SCRATCH, SCRATCH, 0),
        (MUSL, 0, SCRATCH, 0),
        (MUSL, USER_END, SCRATCH, 0),
        (MUSL, u64::MAX, SCRATCH, 0),
        (MUSL, SCRATCH, SCRATCH, USER_END),
    ];
    for (flags, stack, ptid, tls) in cases {
        let r = sys(
            &mut k,
            pid,
            nr::CLONE,
            [flags, stack, ptid, SCRATCH + 8, tls, 0],
        );
        assert_eq!(
            r,
            Ok(inval),
            "flags {flags:#x} stack {stack:#x} tls {tls:#x}"
        );
        let a = CloneArgs {
            flags,
            stack,
            parent_tid: UserPtr(ptid),
            child_tid: UserPtr(SCRATCH + 8),
            tls,
        };
        assert!(k.clone_thread(pid, &frame(stack), a).is_err());
    }
    // An id pointer that cannot be stored to: EFAULT, nothing made.
    for ptid in [0, 8, USER_END - 2, u64::MAX] {
        let r = sys(&mut k, pid, nr::CLONE, [MUSL, SCRATCH, ptid, 0, 0x1000, 0]);
        assert_eq!(r, Ok(-errno::EFAULT), "parent tid {ptid:#x}");
    }
    let r = sys(
        &mut k,
        pid,
        nr::CLONE,
        [MUSL | CLONE_CHILD_SETTID, SCRATCH, SCRATCH, 8, 0x1000, 0],
    );
    assert_eq!(r, Ok(-errno::EFAULT));
    // No context left over: the platform refuses one.
    k.platform.contexts_max = Some(k.platform.contexts_live);
    assert!(k
        .clone_thread(pid, &frame(SCRATCH), args(MUSL, SCRATCH))
        .is_err());
    k.platform.contexts_max = None;
    assert_eq!(
        (
            k.platform.contexts_live,
            k.processes.threads_of(pid).count()
        ),
        before
    );
    assert_eq!(u32_at(&mut k, pid, SCRATCH), 0xaaaa_aaaa, "no id stored");
}

#[test]
fn a_thread_exit_clears_its_tid_wakes_the_joiner_and_leaves_the_process() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    run(&mut k, pid);
    let ctid = SCRATCH + 8;
    let tid = k
        .clone_thread(pid, &frame(SCRATCH), args(MUSL, SCRATCH))
        .unwrap();
    put_u32(&mut k, pid, ctid, tid);
    // The first thread waits on the child's tid word, as pthread_join does.
    let wait = sys(
        &mut k,
        pid,
        nr::FUTEX,
        [ctid, u64::from(FUTEX_WAIT), u64::from(tid), 0, 0, 0],
    );
    assert_eq!(wait, Err(SchedulerCall::FutexWait { deadline: None }));
    k.processes.block_current(None);
    run(&mut k, tid);
    assert!(k.end_thread(tid, 0), "another thread lives");
    assert_eq!(u32_at(&mut k, pid, ctid), 0, "clear-child-tid stored");
    assert_eq!(
        k.processes.thread(pid).unwrap().state,
        ThreadState::Ready,
        "the futex wake readied the waiter"
    );
    k.processes.take_current();
    k.release_after_switch(tid);
    assert!(
        k.processes.thread(tid).is_none(),
        "a Linux thread leaves at once"
    );
    assert_eq!(k.platform.contexts_live, 1);
    run(&mut k, pid);
    assert_eq!(k.futex_wait_end(pid, None), 0, "woken, not interrupted");
    assert_eq!(k.processes.get(pid).unwrap().state, State::Live);
    assert!(
        !k.end_thread(pid, 3),
        "the last thread's end is the process's"
    );
}

/// The whole exit of a process with several threads, as the kernel runs
/// it for `exit_group` from thread `caller`.
fn exit_group(k: &mut K, pid: Pid, caller: Tid, status: i64) {
    run(k, caller);
    k.end_other_threads(pid, caller);
    while !k.exit_step(pid) {}
    k.end(pid, status);
    k.processes.take_current();
    k.release_after_switch(caller);
}

#[test]
fn exit_group_ends_every_thread_and_gives_everything_back() {
    let mut k = kernel();
    let frames_before = k.platform.frames.live_count();
    let pid = spawn_linux(&mut k);
    run(&mut k, pid);
    let mut tids = Vec::new();
    for i in 0..4 {
        let stack = SCRATCH - i * PAGE;
        tids.push(
            k.clone_thread(pid, &frame(stack), args(MUSL, stack))
                .unwrap(),
        );
    }
    // Each thread maps and touches memory; one sleeps in a futex wait.
    for &tid in &tids {
        run(&mut k, tid);
        let addr = done(&mut k, pid, nr::MMAP, [0, 4 * PAGE, 3, 0x22, u64::MAX, 0]);
        assert!(addr > 0);
        k.copy_out(pid, UserPtr(addr as u64), &[1; 4 * PAGE_SIZE])
            .unwrap();
    }
    run(&mut k, tids[0]);
    put_u32(&mut k, pid, SCRATCH + 64, 5);
    let wait = sys(
        &mut k,
        pid,
        nr::FUTEX,
        [
            SCRATCH + 64,
            u64::from(FUTEX_WAIT | FUTEX_PRIVATE_FLAG),
            5,
            0,
            0,
            0,
        ],
    );
    assert!(matches!(wait, Err(SchedulerCall::FutexWait { .. })));
    k.processes.block_current(None);
    assert_eq!(k.futexes.len(), 1);
    exit_group(&mut k, pid, tids[2], 7);
    assert_eq!(k.platform.contexts_live, 0, "every thread's context freed");
    assert_eq!(k.platform.tables_live, 0, "the space's table freed once");
    assert!(k.futexes.is_empty(), "no waiter left");
    assert_eq!(k.platform.frames.live_count(), frames_before, "frames back");
    for tid in tids.iter().chain([&pid]) {
        assert!(k.processes.thread(*tid).is_none());
    }
    assert!(
        k.processes.is_empty(),
        "the kernel-started program was reported"
    );
    assert!(k
        .platform
        .reports
        .iter()
        .any(|r| r.contains("ended with status 7")));
}

#[test]
fn a_process_killed_while_its_threads_wait_gives_everything_back() {
    let mut k = kernel();
    let frames_before = k.platform.frames.live_count();
    let killer = spawn_linux(&mut k);
    let pid = spawn_linux(&mut k);
    run(&mut k, pid);
    let t1 = k
        .clone_thread(pid, &frame(SCRATCH), args(MUSL, SCRATCH))
        .unwrap();
    put_u32(&mut k, pid, SCRATCH + 64, 0);
    assert!(sys(&mut k, pid, nr::FUTEX, [SCRATCH + 64, 0, 0, 0, 0, 0]).is_err());
    k.processes.block_current(None);
    run(&mut k, killer);
    assert_eq!(
        done(&mut k, killer, nr::KILL, [u64::from(pid), 9, 0, 0, 0, 0]),
        0
    );
    // The target takes SIGKILL in its own context: its ready thread runs,
    // finds it, and ends the process (the waiting thread with it).
    run(&mut k, t1);
    assert_eq!(k.next_pending_signal(pid), Some(9));
    exit_group(&mut k, pid, t1, crate::linux::killed_by(9));
    assert!(k.processes.thread(t1).is_none());
    assert!(k.processes.thread(pid).is_none());
    assert!(k.futexes.is_empty());
    exit_group(&mut k, killer, killer, 0);
    assert_eq!(k.platform.contexts_live, 0);
    assert_eq!(k.platform.tables_live, 0);
    assert_eq!(k.platform.frames.live_count(), frames_before);
}

#[test]
fn futex_wait_fails_at_once_on_a_changed_value_or_bad_arguments() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    run(&mut k, pid);
    let word = SCRATCH + 128;
    put_u32(&mut k, pid, word, 1);
    let futex = |k: &mut K, addr: u64, op: u32, val: u64, timeout: u64| {
        sys(k, pid, nr::FUTEX, [addr, u64::from(op), val, timeout, 0, 0])
    };
    assert_eq!(futex(&mut k, word, FUTEX_WAIT, 2, 0), Ok(-errno::EAGAIN));
    assert_eq!(
        futex(&mut k, word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, 0),
        Ok(-errno::EAGAIN)
    );
    assert_eq!(
        futex(&mut k, word + 1, FUTEX_WAIT, 1, 0),
        Ok(-errno::EINVAL)
    );
    for bad in [0, 8, 0x1000, USER_END - 4, USER_END, u64::MAX - 3] {
        assert_eq!(
            futex(&mut k, bad, FUTEX_WAIT, 1, 0),
            Ok(-errno::EFAULT),
            "{bad:#x}"
        );
    }
    // A timeout that cannot be read, or is no time.
    assert_eq!(futex(&mut k, word, FUTEX_WAIT, 1, 8), Ok(-errno::EFAULT));
    k.copy_out(pid, UserPtr(SCRATCH), &[0xff; 16]).unwrap();
    assert_eq!(
        futex(&mut k, word, FUTEX_WAIT, 1, SCRATCH),
        Ok(-errno::EINVAL)
    );
    // A bit set of 0, an unknown operation, the realtime clock on WAIT.
    let r = sys(&mut k, pid, nr::FUTEX, [word, 9, 1, 0, 0, 0]);
    assert_eq!(r, Ok(-errno::EINVAL));
    assert_eq!(futex(&mut k, word, 77, 1, 0), Ok(-errno::ENOSYS));
    assert_eq!(
        futex(&mut k, word, FUTEX_WAIT | FUTEX_CLOCK_REALTIME, 1, 0),
        Ok(-errno::ENOSYS)
    );
    assert!(k.futexes.is_empty(), "no failed wait left a waiter");
    // Wakes with no waiter: 0; a bad address: EFAULT.
    assert_eq!(futex(&mut k, word, FUTEX_WAKE, 1, 0), Ok(0));
    assert_eq!(futex(&mut k, 8, FUTEX_WAKE, 1, 0), Ok(-errno::EFAULT));
}

#[test]
fn futex_wake_takes_waiters_in_order_and_only_as_many_as_asked() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    run(&mut k, pid);
    let word = SCRATCH + 128;
    put_u32(&mut k, pid, word, 0);
    let mut waiters = Vec::new();
    for i in 0..3 {
        let stack = SCRATCH - i * PAGE;
        waiters.push(
            k.clone_thread(pid, &frame(stack), args(MUSL, stack))
                .unwrap(),
        );
    }
    for &t in &waiters {
        run(&mut k, t);
        let op = u64::from(FUTEX_WAIT | FUTEX_PRIVATE_FLAG);
        assert!(sys(&mut k, pid, nr::FUTEX, [word, op, 0, 0, 0, 0]).is_err());
        k.processes.block_current(None);
    }
    run(&mut k, pid);
    let wake = |k: &mut K, n: u64| {
        sys(k, pid, nr::FUTEX, [word, u64::from(FUTEX_WAKE), n, 0, 0, 0]).unwrap()
    };
    assert_eq!(wake(&mut k, 2), 2);
    assert_eq!(
        k.processes.thread(waiters[0]).unwrap().state,
        ThreadState::Ready
    );
    assert_eq!(
        k.processes.thread(waiters[1]).unwrap().state,
        ThreadState::Ready
    );
    assert!(matches!(
        k.processes.thread(waiters[2]).unwrap().state,
        ThreadState::Blocked { .. }
    ));
    assert_eq!(wake(&mut k, i32::MAX as u64), 1);
    assert_eq!(wake(&mut k, 1), 0);
    for &t in &waiters {
        assert_eq!(k.futex_wait_end(t, None), 0);
    }
}

#[test]
fn a_futex_wait_times_out_at_its_deadline_and_not_before() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    run(&mut k, pid);
    let word = SCRATCH + 128;
    put_u32(&mut k, pid, word, 4);
    k.platform.ticks = 1000;
    // 25 ms relative: 3 ticks rounded up, one more for the tick under way.
    let mut ts = [0u8; 16];
    ts[8..].copy_from_slice(&25_000_000u64.to_le_bytes());
    k.copy_out(pid, UserPtr(SCRATCH), &ts).unwrap();
    let r = sys(&mut k, pid, nr::FUTEX, [word, 0, 4, SCRATCH, 0, 0]);
    assert_eq!(
        r,
        Err(SchedulerCall::FutexWait {
            deadline: Some(1004)
        })
    );
    k.processes.block_current(Some(1004));
    k.processes.wake_expired(1003);
    assert!(matches!(
        k.processes.thread(pid).unwrap().state,
        ThreadState::Blocked { .. }
    ));
    k.processes.wake_expired(1004);
    assert_eq!(k.processes.thread(pid).unwrap().state, ThreadState::Ready);
    k.platform.ticks = 1004;
    assert_eq!(k.futex_wait_end(pid, Some(1004)), -errno::ETIMEDOUT);
    assert!(k.futexes.is_empty());
    // WAIT_BITSET takes an absolute time on the clock of clock_gettime.
    ts = [0u8; 16];
    ts[..8].copy_from_slice(&20u64.to_le_bytes());
    k.copy_out(pid, UserPtr(SCRATCH), &ts).unwrap();
    let op = u64::from(FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    let r = sys(&mut k, pid, nr::FUTEX, [word, op, 4, SCRATCH, 0, u64::MAX]);
    assert_eq!(
        r,
        Err(SchedulerCall::FutexWait {
            deadline: Some(2000)
        })
    );
    // Woken before: not interrupted, not timed out. Interrupted: EINTR.
    assert_eq!(k.futex_wait_end(pid, Some(2000)), -errno::EINTR);
}

#[test]
fn bitset_wakes_and_requeue_reach_only_their_waiters() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    run(&mut k, pid);
    let (a, b) = (SCRATCH + 128, SCRATCH + 132);
    put_u32(&mut k, pid, a, 0);
    let t1 = k
        .clone_thread(pid, &frame(SCRATCH), args(MUSL, SCRATCH))
        .unwrap();
    let t2 = k
        .clone_thread(pid, &frame(SCRATCH - PAGE), args(MUSL, SCRATCH - PAGE))
        .unwrap();
    for (t, bits) in [(t1, 1u64), (t2, 2u64)] {
        run(&mut k, t);
        let op = u64::from(FUTEX_WAIT_BITSET);
        assert!(sys(&mut k, pid, nr::FUTEX, [a, op, 0, 0, 0, bits]).is_err());
        k.processes.block_current(None);
    }
    run(&mut k, pid);
    let op = u64::from(FUTEX_WAKE_BITSET);
    assert_eq!(sys(&mut k, pid, nr::FUTEX, [a, op, 9, 0, 0, 2]), Ok(1));
    assert_eq!(k.processes.thread(t2).unwrap().state, ThreadState::Ready);
    // CMP_REQUEUE: the value must match; then t1 moves to b.
    let op = u64::from(FUTEX_CMP_REQUEUE);
    assert_eq!(
        sys(&mut k, pid, nr::FUTEX, [a, op, 0, 1, b, 5]),
        Ok(-errno::EAGAIN)
    );
    assert_eq!(sys(&mut k, pid, nr::FUTEX, [a, op, 0, 1, b, 0]), Ok(1));
    let wake = u64::from(FUTEX_WAKE);
    assert_eq!(sys(&mut k, pid, nr::FUTEX, [a, wake, 9, 0, 0, 0]), Ok(0));
    assert_eq!(sys(&mut k, pid, nr::FUTEX, [b, wake, 9, 0, 0, 0]), Ok(1));
    assert_eq!(k.processes.thread(t1).unwrap().state, ThreadState::Ready);
}

#[test]
fn tgkill_reaches_one_thread_and_checks_its_group() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let other = spawn_linux(&mut k);
    run(&mut k, pid);
    // A handler for SIGUSR1, so the signal stays pending on the thread.
    let mut act = [0u8; 32];
    act[..8].copy_from_slice(&0x40_2000u64.to_le_bytes());
    k.copy_out(pid, UserPtr(SCRATCH), &act).unwrap();
    let sigusr1 = u64::from(SIGUSR1);
    assert_eq!(
        done(
            &mut k,
            pid,
            nr::RT_SIGACTION,
            [sigusr1, SCRATCH, 0, 8, 0, 0]
        ),
        0
    );
    let tid = k
        .clone_thread(pid, &frame(SCRATCH), args(MUSL, SCRATCH))
        .unwrap();
    let tgkill = |k: &mut K, tgid: u64, tid: u64, sig: u64| {
        sys(k, pid, nr::TGKILL, [tgid, tid, sig, 0, 0, 0]).unwrap()
    };
    let (p, t) = (u64::from(pid), u64::from(tid));
    assert_eq!(tgkill(&mut k, u64::from(other), t, sigusr1), -errno::ESRCH);
    assert_eq!(tgkill(&mut k, p, 999, sigusr1), -errno::ESRCH);
    assert_eq!(tgkill(&mut k, p, t, 65), -errno::EINVAL);
    assert_eq!(tgkill(&mut k, p, 0, sigusr1), -errno::EINVAL);
    assert_eq!(tgkill(&mut k, p, t, 0), 0);
    assert_eq!(tgkill(&mut k, p, t, sigusr1), 0);
    assert_eq!(k.processes.thread(tid).unwrap().pending, bit(SIGUSR1));
    assert_eq!(k.next_pending_signal(pid), None, "not for the first thread");
    run(&mut k, tid);
    assert_eq!(k.next_pending_signal(pid), Some(SIGUSR1));
    assert_eq!(k.next_pending_signal(pid), None);
    // tkill of a thread whose action is the default ends the whole
    // process: the thread takes it in its own context.
    run(&mut k, other);
    let r = sys(&mut k, other, nr::TKILL, [t, 15, 0, 0, 0, 0]);
    assert_eq!(r, Ok(0));
    assert_eq!(k.next_pending_signal(pid), None, "not for the first thread");
    run(&mut k, tid);
    assert_eq!(k.next_pending_signal(pid), Some(15));
    exit_group(&mut k, pid, tid, crate::linux::killed_by(15));
    assert!(matches!(
        k.processes.get(pid).map(|p| p.state),
        Some(State::Ended(_)) | None
    ));
    assert!(k.processes.thread(tid).is_none());
}

#[test]
fn a_kill_wakes_a_thread_that_joins_so_the_process_takes_it() {
    let mut k = kernel();
    let killer = spawn_linux(&mut k);
    let pid = k
        .spawn("/bin/prog", &[b"/bin/prog".to_vec()], None)
        .unwrap();
    run(&mut k, pid);
    let tid = k.create_thread(pid, &frame(SCRATCH)).unwrap();
    // Each thread waits for the other to end: no thread of it runs.
    k.processes.block_current_for_join(tid);
    k.processes.take_current();
    run(&mut k, tid);
    k.processes.block_current_for_join(pid);
    k.processes.take_current();
    run(&mut k, killer);
    assert_eq!(
        done(&mut k, killer, nr::KILL, [u64::from(pid), 9, 0, 0, 0, 0]),
        0
    );
    let ready: Vec<Tid> = [pid, tid]
        .into_iter()
        .filter(|&t| k.processes.thread(t).unwrap().state == ThreadState::Ready)
        .collect();
    assert_eq!(
        ready.len(),
        1,
        "one joining thread is woken to take SIGKILL"
    );
    // It runs, its join is interrupted, and it takes SIGKILL.
    run(&mut k, ready[0]);
    assert!(k.signal_interrupts(pid));
    assert_eq!(k.next_pending_signal(pid), Some(9));
}

#[test]
fn neo_threads_are_joined_once_with_their_status() {
    let mut k = kernel();
    let pid = k
        .spawn("/bin/prog", &[b"/bin/prog".to_vec()], None)
        .unwrap();
    run(&mut k, pid);
    assert_eq!(
        k.check_thread_create(0, SCRATCH),
        Err(neoos_mm::Errno::Inval)
    );
    assert_eq!(
        k.check_thread_create(0x40_1000, USER_END),
        Err(neoos_mm::Errno::Inval)
    );
    let tid = k.create_thread(pid, &frame(SCRATCH)).unwrap();
    assert_eq!(k.join_step(pid, i64::from(tid), UserPtr(0)), Ok(None));
    assert_eq!(
        k.join_step(pid, i64::from(pid), UserPtr(0)),
        Err(neoos_mm::Errno::Inval)
    );
    assert_eq!(
        k.join_step(pid, 999, UserPtr(0)),
        Err(neoos_mm::Errno::NoEnt)
    );
    assert_eq!(
        k.join_step(pid, -1, UserPtr(0)),
        Err(neoos_mm::Errno::Inval)
    );
    k.processes.block_current_for_join(tid);
    run(&mut k, tid);
    assert!(k.end_thread(tid, 42));
    k.processes.take_current();
    k.release_after_switch(tid);
    assert_eq!(
        k.processes.thread(pid).unwrap().state,
        ThreadState::Ready,
        "joiner woken"
    );
    assert_eq!(
        k.platform.contexts_live, 1,
        "its context is freed before the join"
    );
    run(&mut k, pid);
    assert_eq!(
        k.join_step(pid, i64::from(tid), UserPtr(8)),
        Err(neoos_mm::Errno::Fault),
        "a bad status pointer keeps the status"
    );
    assert_eq!(
        k.join_step(pid, i64::from(tid), UserPtr(SCRATCH)),
        Ok(Some(()))
    );
    assert_eq!(u32_at(&mut k, pid, SCRATCH), 42);
    assert_eq!(
        k.join_step(pid, i64::from(tid), UserPtr(0)),
        Err(neoos_mm::Errno::NoEnt)
    );
}

#[test]
fn a_thread_released_between_a_joins_step_and_its_block_wakes_the_joiner() {
    let mut k = kernel();
    let pid = k
        .spawn("/bin/prog", &[b"/bin/prog".to_vec()], None)
        .unwrap();
    run(&mut k, pid);
    let tid = k.create_thread(pid, &frame(SCRATCH)).unwrap();
    // CPU 0: the join's step finds the thread running.
    assert_eq!(k.join_step(pid, i64::from(tid), UserPtr(0)), Ok(None));
    // CPU 1, between CPU 0's two lock sections: the thread runs, ends,
    // and its CPU leaves it.
    k.processes.set_cpu(1);
    assert_eq!(k.processes.pick_this(tid), Some(tid));
    assert!(k.end_thread(tid, 7));
    k.processes.take_current();
    k.release_after_switch(tid);
    // CPU 0: the join blocks, but must not sleep (nothing would wake it).
    k.processes.set_cpu(0);
    k.processes.block_current_for_join(tid);
    assert_eq!(
        k.processes.thread(pid).unwrap().state,
        ThreadState::Running,
        "the joiner goes on to its next step"
    );
    assert_eq!(
        k.join_step(pid, i64::from(tid), UserPtr(SCRATCH)),
        Ok(Some(()))
    );
    assert_eq!(u32_at(&mut k, pid, SCRATCH), 7);
}

#[test]
fn fork_by_a_thread_copies_the_caller_only() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    run(&mut k, pid);
    let tid = k
        .clone_thread(pid, &frame(SCRATCH), args(MUSL, SCRATCH))
        .unwrap();
    run(&mut k, tid);
    let child = k.fork(pid, &frame(SCRATCH)).unwrap();
    assert_eq!(k.processes.threads_of(child).count(), 1);
    assert_eq!(k.processes.thread(child).unwrap().pid, child);
    assert_eq!(k.fs_base_of(child), 0x7000_1000, "the caller's TLS");
}

#[test]
fn a_futex_without_the_private_flag_on_a_shared_mapping_reaches_another_process() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    run(&mut k, pid);
    // MAP_SHARED | MAP_ANONYMOUS, one page, read and write.
    let area = done(&mut k, pid, nr::MMAP, [0, PAGE, 3, 0x21, u64::MAX, 0]) as u64;
    let word = area + 8;
    put_u32(&mut k, pid, word, 0);
    let child = k.fork(pid, &frame(SCRATCH)).unwrap();
    let wait = |k: &mut K, who: Pid, op: u32| {
        run(k, who);
        let call = sys(k, who, nr::FUTEX, [word, u64::from(op), 0, 0, 0, 0]);
        assert!(matches!(call, Err(SchedulerCall::FutexWait { .. })));
        k.processes.block_current(None);
    };
    let wake = |k: &mut K, op: u32| {
        run(k, pid);
        done(k, pid, nr::FUTEX, [word, u64::from(op), 1, 0, 0, 0])
    };
    // Shared: keyed by the object's word, the same in both processes.
    wait(&mut k, child, FUTEX_WAIT);
    assert_eq!(wake(&mut k, FUTEX_WAKE), 1);
    assert_eq!(k.processes.thread(child).unwrap().state, ThreadState::Ready);
    assert_eq!(k.futex_wait_end(child, None), 0);
    // Private: keyed by each space, the parent's wake misses the child.
    wait(&mut k, child, FUTEX_WAIT | FUTEX_PRIVATE_FLAG);
    assert_eq!(wake(&mut k, FUTEX_WAKE | FUTEX_PRIVATE_FLAG), 0);
    assert!(matches!(
        k.processes.thread(child).unwrap().state,
        ThreadState::Blocked { .. }
    ));
}

#[test]
fn a_process_signal_ends_the_futex_wait_of_a_thread_that_can_take_it() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let sender = spawn_linux(&mut k);
    run(&mut k, pid);
    let mut act = [0u8; 32];
    act[..8].copy_from_slice(&0x40_2000u64.to_le_bytes());
    k.copy_out(pid, UserPtr(SCRATCH), &act).unwrap();
    let sigusr1 = u64::from(SIGUSR1);
    assert_eq!(
        done(
            &mut k,
            pid,
            nr::RT_SIGACTION,
            [sigusr1, SCRATCH, 0, 8, 0, 0]
        ),
        0
    );
    let tid = k
        .clone_thread(pid, &frame(SCRATCH), args(MUSL, SCRATCH))
        .unwrap();
    put_u32(&mut k, pid, SCRATCH + 64, 0);
    // The first thread blocks SIGUSR1 and waits; so does the second, unblocked.
    k.processes.thread_part_mut(pid).unwrap().blocked = bit(SIGUSR1);
    for t in [pid, tid] {
        run(&mut k, t);
        assert!(sys(&mut k, pid, nr::FUTEX, [SCRATCH + 64, 0, 0, 0, 0, 0]).is_err());
        k.processes.block_current(None);
    }
    run(&mut k, sender);
    assert_eq!(
        done(
            &mut k,
            sender,
            nr::KILL,
            [u64::from(pid), sigusr1, 0, 0, 0, 0]
        ),
        0
    );
    assert!(matches!(
        k.processes.thread(pid).unwrap().state,
        ThreadState::Blocked { .. }
    ));
    assert_eq!(k.processes.thread(tid).unwrap().state, ThreadState::Ready);
    run(&mut k, tid);
    assert_eq!(k.futex_wait_end(tid, None), -errno::EINTR);
    assert_eq!(k.next_pending_signal(pid), Some(SIGUSR1));
}

#[test]
fn a_process_has_at_most_threads_max_live_threads() {
    use neoos_abi::limits::THREADS_MAX;
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    run(&mut k, pid);
    for _ in 1..THREADS_MAX {
        k.clone_thread(pid, &frame(SCRATCH), args(MUSL, SCRATCH))
            .unwrap();
    }
    assert_eq!(k.processes.live_threads(pid), THREADS_MAX);
    let before = k.platform.contexts_live;
    let r = sys(
        &mut k,
        pid,
        nr::CLONE,
        [MUSL, SCRATCH, SCRATCH, 0, 0x1000, 0],
    );
    assert!(matches!(r, Err(SchedulerCall::CloneThread { .. })));
    assert_eq!(
        k.clone_thread(pid, &frame(SCRATCH), args(MUSL, SCRATCH)),
        Err(neoos_mm::Errno::NoMem)
    );
    assert_eq!(k.platform.contexts_live, before, "nothing taken");
    // Another process still gets threads.
    let other = spawn_linux(&mut k);
    run(&mut k, other);
    assert!(k
        .clone_thread(other, &frame(SCRATCH), args(MUSL, SCRATCH))
        .is_ok());
}

/// Makes `tid` CPU `cpu`'s running thread, as [`run`] on that CPU.
fn run_on(k: &mut K, cpu: usize, tid: Tid) {
    k.processes.set_cpu(cpu);
    run(k, tid);
}

/// A Linux process whose first thread runs on CPU 0 and second on CPU 1,
/// both at once:
/// (pid, second thread).
fn two_threads_on_two_cpus(k: &mut K) -> (Pid, Tid) {
    let pid = spawn_linux(k);
    run(k, pid);
    let tid = k
        .clone_thread(pid, &frame(SCRATCH - PAGE), args(MUSL, SCRATCH - PAGE))
        .unwrap();
    run_on(k, 1, tid);
    (pid, tid)
}

#[test]
fn two_threads_running_at_once_each_have_their_own_mask_fs_base_and_signals() {
    let mut k = kernel();
    let (pid, tid) = two_threads_on_two_cpus(&mut k);
    assert_eq!(k.processes.current_thread(), Some(tid));
    k.processes.set_cpu(0);
    assert_eq!(k.processes.current_thread(), Some(pid), "both run");
    // CPU 0's thread blocks SIGUSR1 and sets its thread pointer.
    put_u32(&mut k, pid, SCRATCH + 64, 1 << (SIGUSR1 - 1));
    let block = [0, SCRATCH + 64, 0, 8, 0, 0];
    assert_eq!(done(&mut k, pid, nr::RT_SIGPROCMASK, block), 0);
    let set_fs = [neoos_abi::linux::ARCH_SET_FS, 0x6000_0000, 0, 0, 0, 0];
    assert_eq!(done(&mut k, pid, nr::ARCH_PRCTL, set_fs), 0);
    // CPU 1's thread sees neither.
    k.processes.set_cpu(1);
    let get = [0, 0, SCRATCH + 72, 8, 0, 0];
    assert_eq!(done(&mut k, pid, nr::RT_SIGPROCMASK, get), 0);
    assert_eq!(u32_at(&mut k, pid, SCRATCH + 72), 0, "its own mask");
    assert_eq!(k.fs_base_of(pid), 0x7000_1000, "its own TLS");
    // A signal to the process is taken by the thread that does not block it.
    let kill = [u64::from(pid), u64::from(SIGUSR1), 0, 0, 0, 0];
    assert_eq!(done(&mut k, pid, nr::KILL, kill), 0);
    k.processes.set_cpu(0);
    assert_eq!(k.fs_base_of(pid), 0x6000_0000);
    assert_eq!(k.next_pending_signal(pid), None, "blocked on CPU 0");
    assert!(!k.signal_interrupts(pid));
    k.processes.set_cpu(1);
    assert!(k.signal_interrupts(pid));
    assert_eq!(k.next_pending_signal(pid), Some(SIGUSR1));
}

/// Two Linux processes: `a`, running on CPU 0, with a second thread
/// `a2` ready, and `b` ready: (a, a2, b).
fn two_processes_one_running(k: &mut K) -> (Pid, Tid, Pid) {
    let a = spawn_linux(k);
    let b = spawn_linux(k);
    run_on(k, 0, a);
    let a2 = k
        .clone_thread(a, &frame(SCRATCH - PAGE), args(MUSL, SCRATCH - PAGE))
        .unwrap();
    (a, a2, b)
}

#[test]
fn a_thread_runs_on_one_cpu_at_a_time_and_its_siblings_on_others() {
    let mut k = kernel();
    let (a, a2, b) = two_processes_one_running(&mut k);
    // CPU 1 takes b (first in the queue); CPU 2 takes a's second thread
    // while a runs on CPU 0.
    k.processes.set_cpu(1);
    assert_eq!(k.processes.pick_next(), Some(b));
    k.processes.set_cpu(2);
    assert_eq!(k.processes.pick_next(), Some(a2));
    assert_eq!(k.processes.current(), Some(a));
    k.processes.set_cpu(0);
    assert_eq!(
        k.processes.current_thread(),
        Some(a),
        "each CPU has its own"
    );
    // a yields on CPU 0: until CPU 0 has left it, no CPU takes it.
    k.processes.yield_current();
    k.processes.set_cpu(3);
    assert_eq!(
        k.processes.pick_next(),
        None,
        "a is passed over while CPU 0 is on it"
    );
    k.processes.set_cpu(0);
    assert_eq!(
        k.processes.pick_next(),
        None,
        "CPU 0 must leave its thread first"
    );
    k.processes.take_current();
    k.processes.set_cpu(3);
    assert_eq!(
        k.processes.pick_next(),
        Some(a),
        "left: any CPU may take it"
    );
}

/// Process `a` of [`two_processes_one_running`] with its threads on CPUs 0
/// (a) and 1 (a2), and b on CPU 2.
fn siblings_on_two_cpus(k: &mut K) -> (Pid, Tid, Pid) {
    let (a, a2, b) = two_processes_one_running(k);
    run_on(k, 1, a2);
    run_on(k, 2, b);
    (a, a2, b)
}

#[test]
fn a_stopper_learns_which_cpus_run_its_siblings_and_they_are_held_off_the_cpus() {
    let mut k = kernel();
    let (a, a2, _) = siblings_on_two_cpus(&mut k);
    k.processes.set_cpu(0);
    assert_eq!(
        k.processes.stop_others(a, a),
        StopAsked::Cpus(1 << 1),
        "only CPU 1"
    );
    assert!(k.processes.others_on_cpus(a, a));
    // CPU 1's thread finds itself held on its way back to user mode and
    // yields; no CPU takes it again.
    k.processes.set_cpu(1);
    assert!(k.processes.current_held());
    k.processes.yield_current();
    k.processes.take_current();
    assert_eq!(k.processes.pick_next(), None, "held");
    k.processes.set_cpu(0);
    assert!(!k.processes.current_held(), "the stopper is not held");
    assert!(!k.processes.others_on_cpus(a, a), "no sibling on a CPU now");
    // A second stopper (a2 taking a fatal signal meanwhile) is held too.
    k.processes.set_cpu(1);
    assert_eq!(k.processes.stop_others(a, a2), StopAsked::Held);
    // The stop ends (a failed execve): a2 runs again.
    k.processes.set_cpu(0);
    k.processes.end_stop(a);
    k.processes.set_cpu(1);
    assert_eq!(k.processes.pick_next(), Some(a2));
}

#[test]
fn an_exit_group_removes_siblings_only_once_they_are_off_their_cpus() {
    let mut k = kernel();
    let (a, a2, b) = siblings_on_two_cpus(&mut k);
    k.processes.set_cpu(0);
    assert_eq!(k.processes.stop_others(a, a), StopAsked::Cpus(1 << 1));
    let live = k.platform.contexts_live;
    k.end_other_threads(a, a);
    assert!(k.processes.thread(a2).is_some(), "its CPU is still on it");
    assert_eq!(k.platform.contexts_live, live, "its stack is not freed");
    k.processes.set_cpu(1);
    k.processes.yield_current();
    k.processes.take_current();
    k.processes.set_cpu(0);
    k.end_other_threads(a, a);
    assert!(k.processes.thread(a2).is_none(), "off its CPU: gone");
    assert_eq!(k.platform.contexts_live, live - 1);
    k.processes.set_cpu(2);
    assert_eq!(k.processes.current(), Some(b), "b still runs on CPU 2");
}

#[test]
fn an_exit_group_on_one_cpu_leaves_the_threads_other_processes_run() {
    let mut k = kernel();
    let (a, a2, b) = two_processes_one_running(&mut k);
    run_on(&mut k, 1, b);
    k.processes.set_cpu(0);
    k.end_other_threads(a, a);
    assert!(k.processes.thread(a2).is_none());
    k.end(a, 0);
    k.processes.take_current();
    k.release_after_switch(a);
    assert!(k.processes.get(a).is_none(), "reported and gone");
    k.processes.set_cpu(1);
    assert_eq!(k.processes.current(), Some(b), "b still runs on CPU 1");
    assert_eq!(k.processes.thread(b).unwrap().state, ThreadState::Running);
}

#[test]
fn a_futex_waiter_is_blocked_as_it_is_entered_and_a_wake_from_another_cpu_readies_it() {
    let mut k = kernel();
    let (pid, _) = two_threads_on_two_cpus(&mut k);
    put_u32(&mut k, pid, SCRATCH + 64, 7);
    k.processes.set_cpu(0);
    let wait = [SCRATCH + 64, u64::from(FUTEX_WAIT), 7, 0, 0, 0];
    assert!(sys(&mut k, pid, nr::FUTEX, wait).is_err());
    assert_eq!(
        k.processes.thread(pid).unwrap().state,
        ThreadState::Blocked { deadline: None },
        "blocked in the same step it was entered"
    );
    // CPU 1 wakes it before CPU 0 has switched away: it is ready, and no
    // CPU takes it until CPU 0 has left it.
    k.processes.set_cpu(1);
    let wake = [SCRATCH + 64, u64::from(FUTEX_WAKE), 1, 0, 0, 0];
    assert_eq!(done(&mut k, pid, nr::FUTEX, wake), 1);
    assert_eq!(k.processes.thread(pid).unwrap().state, ThreadState::Ready);
    k.processes.set_cpu(2);
    assert_eq!(k.processes.pick_next(), None);
    k.processes.set_cpu(0);
    k.processes.take_current();
    k.processes.set_cpu(2);
    assert_eq!(k.processes.pick_next(), Some(pid));
    assert_eq!(k.futex_wait_end(pid, None), 0, "woken");
}

#[test]
fn a_childs_end_on_another_cpu_between_the_parents_look_and_its_block_is_not_lost() {
    let mut k = kernel();
    let parent = spawn_linux(&mut k);
    run_on(&mut k, 0, parent);
    let child = k.fork(parent, &frame(SCRATCH)).unwrap();
    run_on(&mut k, 1, child);
    k.processes.set_cpu(0);
    assert_eq!(k.wait_step(parent, UserPtr(0)), Ok(None), "still runs");
    // Before the parent blocks (its next lock section), the child ends.
    k.processes.set_cpu(1);
    k.end(child, 3);
    k.processes.take_current();
    k.release_after_switch(child);
    k.processes.set_cpu(0);
    k.processes.block_current_for_child();
    assert!(k.processes.current_runs(), "the wake-up came: no sleep");
    assert_eq!(k.wait_step(parent, UserPtr(0)), Ok(Some(child)));
}

#[test]
fn a_parent_that_looked_before_its_ended_child_was_left_is_woken_when_it_is() {
    let mut k = kernel();
    let parent = spawn_linux(&mut k);
    run_on(&mut k, 0, parent);
    let child = k.fork(parent, &frame(SCRATCH)).unwrap();
    run_on(&mut k, 1, child);
    k.end(child, 3);
    // CPU 0: the parent looks before CPU 1 has left the child, and waits.
    k.processes.set_cpu(0);
    assert_eq!(k.wait_step(parent, UserPtr(0)), Ok(None));
    k.processes.block_current_for_child();
    k.processes.block_current_for_child();
    assert_eq!(
        k.processes.thread(parent).unwrap().state,
        ThreadState::WaitingForChild
    );
    k.processes.take_current();
    k.processes.set_cpu(1);
    k.processes.take_current();
    k.release_after_switch(child);
    assert_eq!(
        k.processes.thread(parent).unwrap().state,
        ThreadState::Ready,
        "woken once the child can be reaped"
    );
    k.processes.set_cpu(0);
    assert_eq!(k.processes.pick_next(), Some(parent));
    assert_eq!(k.wait_step(parent, UserPtr(0)), Ok(Some(child)));
}

#[test]
fn a_thread_readied_while_another_of_its_process_runs_is_seen_by_the_preemption_hint() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    run_on(&mut k, 0, pid);
    let _tid = k
        .clone_thread(pid, &frame(SCRATCH - PAGE), args(MUSL, SCRATCH - PAGE))
        .unwrap();
    // The new thread waits: any CPU could switch to it, CPU 1 (another
    // process's) too.
    assert!(k.processes.others_wait_anywhere());
    assert!(k.processes.others_wait_here());
    let other = spawn_linux(&mut k);
    run_on(&mut k, 1, other);
    assert!(k.processes.others_wait_here());
    // A thread that yielded is not waiting until its CPU has left it.
    k.processes.yield_current();
    k.processes.set_cpu(0);
    assert!(
        k.processes.others_wait_anywhere(),
        "the new thread still waits"
    );
}

#[test]
fn signal_work_is_seen_until_the_signal_is_taken() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    run(&mut k, pid);
    assert!(!k.processes.signal_work_anywhere());
    let kill = [u64::from(pid), u64::from(SIGUSR1), 0, 0, 0, 0];
    assert_eq!(done(&mut k, pid, nr::KILL, kill), 0);
    assert!(k.processes.signal_work_anywhere(), "pending on the process");
    assert_eq!(k.next_pending_signal(pid), Some(SIGUSR1));
    assert!(!k.processes.signal_work_anywhere(), "taken");
    k.processes.thread_part_mut(pid).unwrap().saved_mask = Some(0);
    assert!(k.processes.signal_work_anywhere(), "a mask to put back");
    k.restore_saved_mask(pid);
    assert!(!k.processes.signal_work_anywhere());
}
