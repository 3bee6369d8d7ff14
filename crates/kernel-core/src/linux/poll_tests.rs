//! Host tests of Linux `poll`/`ppoll` (`poll.rs`): readiness of pipes,
//! the console and files, `POLLNVAL` and negative descriptors, timeouts,
//! and the hostile cases (too many entries, unwritable arrays, bad
//! `timespec`), each failing with nothing changed.

use alloc::vec::Vec;

use neoos_abi::errno;
use neoos_abi::layout::STACK_TOP;
use neoos_abi::linux::nr;
use neoos_abi::linux::poll::*;

use crate::process::Pid;
use crate::syscall::{Completion, SchedulerCall, UserPtr};
use crate::test_platform::{kernel, TestPlatform};
use crate::Kernel;

type K = Kernel<TestPlatform>;

const SCRATCH: u64 = STACK_TOP - 64 * 1024;
const FDS: u64 = SCRATCH + 0x1000;
const PIPE_FDS: u64 = SCRATCH + 0x2000;
const DATA: u64 = SCRATCH + 0x3000;
const UNMAPPED: u64 = 0x10;

fn spawn_linux(k: &mut K) -> Pid {
    k.spawn("/bin/linux", &[b"/bin/linux".to_vec()], None)
        .unwrap()
}

fn call(k: &mut K, pid: Pid, number: usize, args: [u64; 6]) -> Completion {
    let d = k.decode(pid, number, args).expect("a call");
    k.call(pid, d.call)
}

fn sys(k: &mut K, pid: Pid, number: usize, args: [u64; 6]) -> i64 {
    match k.system_call(pid, number, args) {
        Ok(rax) => rax,
        Err((c, _)) => panic!("call {number} needs the scheduler: {c:?}"),
    }
}

/// Stores `(fd, events)` entries as `struct pollfd`s at [`FDS`], with
/// `revents` set to a value a pass must overwrite.
fn put_fds(k: &mut K, pid: Pid, entries: &[(i32, u16)]) {
    let mut b = Vec::new();
    for &(fd, events) in entries {
        b.extend_from_slice(&fd.to_le_bytes());
        b.extend_from_slice(&events.to_le_bytes());
        b.extend_from_slice(&0xffffu16.to_le_bytes());
    }
    k.copy_out(pid, UserPtr(FDS), &b).unwrap();
}

fn revents(k: &mut K, pid: Pid, n: usize) -> Vec<u16> {
    let b = k.copy_in(pid, UserPtr(FDS), n * 8).unwrap();
    b.chunks_exact(8)
        .map(|e| u16::from_le_bytes([e[6], e[7]]))
        .collect()
}

/// A pipe: (read end, write end).
fn pipe(k: &mut K, pid: Pid) -> (i32, i32) {
    assert_eq!(sys(k, pid, nr::PIPE, [PIPE_FDS, 0, 0, 0, 0, 0]), 0);
    let b = k.copy_in(pid, UserPtr(PIPE_FDS), 8).unwrap();
    (
        i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
    )
}

fn poll(k: &mut K, pid: Pid, nfds: u64, timeout_ms: i64) -> i64 {
    sys(k, pid, nr::POLL, [FDS, nfds, timeout_ms as u64, 0, 0, 0])
}

#[test]
fn a_pipe_is_writable_then_readable_then_hung_up() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let (r, w) = pipe(&mut k, pid);
    put_fds(&mut k, pid, &[(r, POLLIN), (w, POLLOUT)]);
    assert_eq!(poll(&mut k, pid, 2, 0), 1);
    assert_eq!(revents(&mut k, pid, 2), [0, POLLOUT]);
    k.copy_out(pid, UserPtr(DATA), b"x").unwrap();
    assert_eq!(k.pipe_step(pid, w.into(), UserPtr(DATA), 1, true), Some(1));
    put_fds(&mut k, pid, &[(r, POLLIN), (w, POLLOUT)]);
    assert_eq!(poll(&mut k, pid, 2, 0), 2);
    assert_eq!(revents(&mut k, pid, 2), [POLLIN, POLLOUT]);
    assert_eq!(sys(&mut k, pid, nr::CLOSE, [w as u64, 0, 0, 0, 0, 0]), 0);
    put_fds(&mut k, pid, &[(r, POLLIN)]);
    assert_eq!(poll(&mut k, pid, 1, 0), 1);
    assert_eq!(revents(&mut k, pid, 1), [POLLIN | POLLHUP]);
}

#[test]
fn closed_and_negative_descriptors_and_files() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    put_fds(&mut k, pid, &[(-1, POLLIN), (40, POLLIN), (1, POLLOUT)]);
    // stdout is the console: always writable.
    assert_eq!(poll(&mut k, pid, 3, 0), 2);
    assert_eq!(revents(&mut k, pid, 3), [0, POLLNVAL, POLLOUT]);
}

#[test]
fn console_input_is_seen_and_kept_for_the_read() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    put_fds(&mut k, pid, &[(0, POLLIN)]);
    assert_eq!(poll(&mut k, pid, 1, 0), 0);
    k.platform.console_in.push_back(b'q');
    assert_eq!(poll(&mut k, pid, 1, 0), 1);
    assert_eq!(revents(&mut k, pid, 1), [POLLIN]);
    // Polling again does not lose or repeat the byte.
    assert_eq!(poll(&mut k, pid, 1, 0), 1);
    assert_eq!(k.read_console_step(pid, UserPtr(DATA), 8), Ok(1));
    assert_eq!(k.copy_in(pid, UserPtr(DATA), 1).unwrap(), b"q");
    assert_eq!(poll(&mut k, pid, 1, 0), 0);
}

#[test]
fn nothing_ready_with_time_left_waits_until_a_deadline() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let (r, _w) = pipe(&mut k, pid);
    put_fds(&mut k, pid, &[(r, POLLIN)]);
    let now = k.platform.ticks;
    match call(&mut k, pid, nr::POLL, [FDS, 1, 25, 0, 0, 0]) {
        Completion::Scheduler(SchedulerCall::Poll { nfds, deadline, .. }) => {
            assert_eq!(nfds, 1);
            assert_eq!(deadline, Some(now + 3));
        }
        other => panic!("not a wait: {other:?}"),
    }
    match call(&mut k, pid, nr::POLL, [FDS, 1, u64::MAX, 0, 0, 0]) {
        Completion::Scheduler(SchedulerCall::Poll { deadline, .. }) => assert_eq!(deadline, None),
        other => panic!("not a wait: {other:?}"),
    }
    // ppoll: a timespec of 0 answers at once, a null one waits for ever.
    k.copy_out(pid, UserPtr(DATA), &[0u8; 16]).unwrap();
    assert_eq!(sys(&mut k, pid, nr::PPOLL, [FDS, 1, DATA, 0, 8, 0]), 0);
    assert!(matches!(
        call(&mut k, pid, nr::PPOLL, [FDS, 1, 0, 0, 8, 0]),
        Completion::Scheduler(SchedulerCall::Poll { deadline: None, .. })
    ));
}

#[test]
fn hostile_arguments_fail_and_change_nothing() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    put_fds(&mut k, pid, &[(1, POLLOUT)]);
    let before = k.copy_in(pid, UserPtr(FDS), 8).unwrap();
    assert_eq!(poll(&mut k, pid, MAX_POLL_FDS + 1, 0), -errno::EINVAL);
    assert_eq!(poll(&mut k, pid, u64::MAX, 0), -errno::EINVAL);
    assert_eq!(
        sys(&mut k, pid, nr::POLL, [UNMAPPED, 1, 0, 0, 0, 0]),
        -errno::EFAULT
    );
    // A bad timespec, an unreadable one, a signal mask.
    let bad = [1i64.to_le_bytes(), 1_000_000_000i64.to_le_bytes()].concat();
    k.copy_out(pid, UserPtr(DATA), &bad).unwrap();
    assert_eq!(
        sys(&mut k, pid, nr::PPOLL, [FDS, 1, DATA, 0, 8, 0]),
        -errno::EINVAL
    );
    let negative = [(-1i64).to_le_bytes(), 0i64.to_le_bytes()].concat();
    k.copy_out(pid, UserPtr(DATA), &negative).unwrap();
    assert_eq!(
        sys(&mut k, pid, nr::PPOLL, [FDS, 1, DATA, 0, 8, 0]),
        -errno::EINVAL
    );
    assert_eq!(
        sys(&mut k, pid, nr::PPOLL, [FDS, 1, UNMAPPED, 0, 8, 0]),
        -errno::EFAULT
    );
    assert_eq!(
        sys(&mut k, pid, nr::PPOLL, [FDS, 1, 0, DATA, 8, 0]),
        -errno::ENOSYS
    );
    assert_eq!(k.copy_in(pid, UserPtr(FDS), 8).unwrap(), before);
    // Zero entries: nothing to wait for but the time.
    assert_eq!(poll(&mut k, pid, 0, 0), 0);
}
