//! The system-call entry: takes the call number and six argument registers
//! from the trap frame, decodes them with the table of the caller's
//! numbering (NeoOS or Linux) in `neoos-kernel-core`, runs the call there,
//! and completes here the calls that need the scheduler (exit, yield, wait,
//! kill, fork, console input, sleeps, and `mincore` and `sys_maps`, which
//! yield between their steps).
//! The result, converted once by the call's personality, goes to `rax`. A
//! blocked call that a signal stops returns `EINTR`, or is made again after
//! the handler (`rip` back on the `syscall` instruction, `rax` the call
//! number again) as the call's restart rule and the handler's
//! `SA_RESTART` say.

use neoos_abi::neo;
use neoos_kernel_core::linux::exec::{CloneArgs, WaitTarget};
use neoos_kernel_core::linux::signals::{Restart, RESTART_CALL};
use neoos_kernel_core::syscall::{KillOutcome, Personality, SchedulerCall, UserPtr};
use neoos_mm::Errno;

use crate::arch::traps::TrapFrame;
use crate::process::{self, with_kernel};

/// Handles the system call in `frame` and stores its result in `rax`.
pub fn handle(frame: &mut TrapFrame) {
    if process::system_call_shared(frame) {
        return;
    }
    let regs = [
        frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
    ];
    let number = frame.rax as usize;
    // The result is converted inside the lock; a call that needs the
    // scheduler comes back out of it. The value of a call done comes out
    // through `done`, beside the (large) result: carried in it, the
    // compiler took it apart and put it together again on every call.
    let mut done = 0;
    let step = with_kernel(|k| {
        let dispatched = match k.processes().current() {
            Some(pid) => k.system_call(pid, number, regs),
            None => Ok(neo::E_UNKNOWN),
        };
        dispatched.map(|rax| done = rax)
    });
    let result = match step {
        Ok(()) => done,
        Err((SchedulerCall::SigReturn, _)) => crate::signal::sigreturn(frame),
        Err((
            SchedulerCall::LinuxWait {
                pid,
                status,
                options,
            },
            _,
        )) => linux_wait(pid, status, options),
        Err((
            SchedulerCall::PipeIo {
                fd,
                buf,
                count,
                write,
            },
            personality,
        )) => pipe_io(fd, buf, count, write, restart_rule(personality)),
        Err((SchedulerCall::Sleep { until, rem }, _)) => sleep(until, rem),
        Err((SchedulerCall::FutexWait { deadline }, _)) => futex_wait(deadline),
        Err((SchedulerCall::Exec { path, argv, envp }, _)) => exec(frame, path, argv, envp),
        Err((
            SchedulerCall::WaitId {
                target,
                info,
                options,
            },
            _,
        )) => waitid(target, info, options),
        Err((SchedulerCall::SigAltStack { ss, old }, personality)) => {
            let sp = frame.rsp;
            personality.result(for_caller(|k, pid| k.sigaltstack(pid, ss, old, sp)))
        }
        Err((call, personality)) => personality.result(scheduler_call(call, frame, personality)),
    };
    if result == RESTART_CALL {
        // The `syscall` instruction (2 bytes) runs again once the signal
        // is taken, with the same arguments (still in the frame).
        frame.rip = frame.rip.wrapping_sub(2);
        frame.rax = number as u64;
    } else {
        frame.rax = result as u64;
    }
}

/// How a blocked call of `personality` ends when a signal stops it: NeoOS
/// calls have no `EINTR` and are always made again; POSIX ones by
/// `SA_RESTART`.
fn restart_rule(personality: Personality) -> Restart {
    match personality {
        Personality::Neo => Restart::Always,
        Personality::Posix => Restart::WithSaRestart,
    }
}

/// The result of the running process's blocked call if a signal is to be
/// taken ([`RESTART_CALL`] or `-EINTR`, by `restart`), else `None`.
fn interrupted(restart: Restart) -> Option<i64> {
    with_kernel(|k| {
        let pid = k.processes().current()?;
        k.signal_interrupts(pid)
            .then(|| k.interrupted_call(pid, restart))
    })
}

/// A sleep until tick `until` (`nanosleep`, `pause`, `rt_sigsuspend`):
/// the process is off the run queue until the clock's step or a signal
/// wakes it; the result is the raw `rax`.
fn sleep(until: u64, rem: UserPtr) -> i64 {
    loop {
        let step = with_kernel(|k| {
            let pid = k.processes().current()?;
            Some(k.sleep_step(pid, until, rem))
        });
        match step {
            None => return -(neoos_abi::errno::EINVAL),
            Some(Some(rax)) => return rax,
            Some(None) => process::sleep_until(until),
        }
    }
}

/// Linux `wait4`: steps until a child is taken, blocking between steps
/// (or once with `WNOHANG`); the result is the raw `rax`.
fn linux_wait(target: i64, status: UserPtr, options: u32) -> i64 {
    loop {
        let step = with_kernel(|k| {
            let pid = k.processes().current()?;
            Some(k.linux_wait_step(pid, target, status, options))
        });
        match step {
            None => return -(neoos_abi::errno::ECHILD),
            Some(Ok(Some(child))) => return child,
            Some(Ok(None)) => {
                if let Some(rax) = interrupted(Restart::WithSaRestart) {
                    return rax;
                }
                process::block_for_child()
            }
            Some(Err(e)) => return e.result(),
        }
    }
}

/// Linux `execve`: the new image is built and swapped in under the lock
/// (a failure changes nothing and is the call's result); then the new
/// table is loaded, the trap frame becomes the new program's first
/// registers (SSE state reset), and the old address space is torn down in
/// steps, other processes running between them. The result is the raw
/// `rax` (0, the new program's first `rax`).
fn exec(frame: &mut TrapFrame, path: UserPtr, argv: UserPtr, envp: UserPtr) -> i64 {
    // The other threads leave their CPUs first: they end if it succeeds.
    process::stop_other_threads();
    let started = with_kernel(|k| {
        let pid = k.processes().current().ok_or(-neoos_abi::errno::EINVAL)?;
        let built = k.execve(pid, path, argv, envp);
        k.processes_mut().end_stop(pid);
        let new_frame = built.map_err(|e| e.result())?;
        if let Some(table) = k.processes().get(pid).and_then(|p| p.table.as_ref()) {
            table.activate();
        }
        crate::arch::cpu::set_fs_base(k.fs_base_of(pid));
        Ok(new_frame)
    });
    let new_frame = match started {
        Ok(f) => f,
        Err(rax) => return rax,
    };
    *frame = new_frame;
    *crate::arch::traps::saved_fpu_state(frame) = *crate::arch::traps::initial_fpu_state();
    while !with_kernel(|k| {
        k.processes()
            .current()
            .is_none_or(|pid| k.exec_retire_step(pid))
    }) {
        process::yield_now();
    }
    0
}

/// Linux `waitid`: steps until a child is taken, blocking between steps
/// (or once with `WNOHANG`); the result is the raw `rax`.
fn waitid(target: WaitTarget, info: UserPtr, options: u32) -> i64 {
    loop {
        let step = with_kernel(|k| {
            let pid = k.processes().current()?;
            Some(k.waitid_step(pid, target, info, options))
        });
        match step {
            None => return -(neoos_abi::errno::ECHILD),
            Some(Ok(Some(rax))) => return rax,
            Some(Ok(None)) => {
                if let Some(rax) = interrupted(Restart::WithSaRestart) {
                    return rax;
                }
                process::block_for_child()
            }
            Some(Err(e)) => return e.result(),
        }
    }
}

/// A pipe read or write: steps until done, giving the CPU away while the
/// pipe is empty (read) or full (write); the result is the raw `rax`.
fn pipe_io(fd: i64, buf: UserPtr, count: usize, write: bool, restart: Restart) -> i64 {
    loop {
        let step = with_kernel(|k| match k.processes().current() {
            Some(pid) => k.pipe_step(pid, fd, buf, count, write),
            None => Some(-neoos_abi::errno::EBADF),
        });
        match step {
            Some(rax) => return rax,
            None => {
                if let Some(rax) = interrupted(restart) {
                    return rax;
                }
                process::yield_now();
                crate::arch::cpu::wait_for_interrupt();
            }
        }
    }
}

/// Linux `poll`/`ppoll` with nothing ready at first: passes over the
/// entries, giving the CPU away between them, until one is ready (their
/// count), the clock reaches `deadline` (0) or a signal comes (`EINTR`,
/// never restarted, as on Linux).
fn poll(fds: UserPtr, nfds: u64, deadline: Option<u64>) -> Result<i64, Errno> {
    loop {
        match for_caller(|k, pid| k.poll_step(pid, fds, nfds))? {
            0 if deadline.is_some_and(|d| crate::clock::ticks() >= d) => return Ok(0),
            0 => {
                if let Some(rax) = interrupted(Restart::Never) {
                    return Ok(rax);
                }
                process::yield_now();
                crate::arch::cpu::wait_for_interrupt();
            }
            ready => return Ok(ready as i64),
        }
    }
}

/// Completes a call that may switch away from the caller.
fn scheduler_call(
    call: SchedulerCall,
    frame: &TrapFrame,
    personality: Personality,
) -> Result<i64, Errno> {
    let restart = restart_rule(personality);
    match call {
        SchedulerCall::Exit { status } => process::exit_current(status),
        SchedulerCall::Yield => {
            process::yield_now();
            Ok(neo::E_OK)
        }
        SchedulerCall::Wait { status } => wait(status, restart),
        SchedulerCall::ReadConsole { buf, count } => read_console(buf, count, restart),
        SchedulerCall::Kill { pid } => kill(pid),
        SchedulerCall::Fork => fork(frame),
        SchedulerCall::WriteBack => write_back(),
        SchedulerCall::NeoMunmap => neo_munmap(),
        SchedulerCall::AwaitUnmap | SchedulerCall::AwaitMetadata => Ok(await_disk_and_restart()),
        SchedulerCall::AwaitUserRead => await_user_read(),
        SchedulerCall::FlushThen { result } => flush_then(result),
        SchedulerCall::FileRead { fd, buf, count, at } => file_read(fd, buf, count, at),
        SchedulerCall::FileWrite { fd, buf, count, at } => file_write(fd, buf, count, at),
        SchedulerCall::Sync => sync_all(),
        SchedulerCall::FileReadv { fd, iov, count, at } => file_readv(fd, iov, count, at),
        SchedulerCall::Clone(args) => clone(frame, args),
        SchedulerCall::Mincore { addr, len, vec } => mincore(addr, len, vec),
        SchedulerCall::Maps { buf, len } => maps(buf, len),
        SchedulerCall::Poll {
            fds,
            nfds,
            deadline,
        } => poll(fds, nfds, deadline),
        SchedulerCall::ExitThread { status } => process::exit_thread(status),
        SchedulerCall::ThreadCreate { entry, stack, arg } => {
            let mut child = TrapFrame::new_user(entry, stack);
            child.rdi = arg;
            for_caller(|k, pid| k.create_thread(pid, &child)).map(i64::from)
        }
        SchedulerCall::CloneThread { args } => clone_thread(frame, args),
        SchedulerCall::ThreadJoin { tid, status } => join(tid, status),
        // Completed in `handle`.
        SchedulerCall::Sleep { .. }
        | SchedulerCall::LinuxWait { .. }
        | SchedulerCall::PipeIo { .. }
        | SchedulerCall::FutexWait { .. }
        | SchedulerCall::SigReturn
        | SchedulerCall::Exec { .. }
        | SchedulerCall::WaitId { .. }
        | SchedulerCall::SigAltStack { .. } => Err(Errno::Inval),
    }
}

/// `sys_maps` in bounded steps, other processes running between them: a
/// listing of many mappings does not stop the others.
fn maps(buf: UserPtr, len: i64) -> Result<i64, Errno> {
    let mut progress = for_caller(|k, pid| k.maps_begin(pid, buf, len))?;
    loop {
        match for_caller(|k, pid| k.maps_step(pid, &mut progress))? {
            Some(total) => return Ok(total),
            None => process::yield_now(),
        }
    }
}

/// `mincore` in bounded steps, other processes running between them: a
/// call over a huge range does not stop the others.
fn mincore(addr: u64, len: u64, vec: UserPtr) -> Result<i64, Errno> {
    let mut progress = for_caller(|k, pid| k.mincore_begin(pid, addr, len, vec))?;
    while !for_caller(|k, pid| k.mincore_step(pid, &mut progress))? {
        process::yield_now();
    }
    Ok(0)
}

/// `fsync` and `msync(MS_SYNC)` of volume files: the files' write-back
/// in batches, the caller asleep without the kernel lock while a batch's
/// writes are in flight (`neoos_kernel_core::disk_wait`).
fn write_back() -> Result<i64, Errno> {
    process::step_waiting_for_disk(|k| {
        let Some(tid) = k.processes().current_thread() else {
            return Some(Err(Errno::Inval));
        };
        k.writeback_step(tid)
    })
    .map(|()| 0)
}

/// NeoOS `sys_munmap` of a volume file's mapping with dirty pages: its
/// pages written in batches, the caller asleep without the kernel lock
/// while a batch's writes are in flight, then the mapping removed
/// (`neoos_kernel_core::disk_wait`).
fn neo_munmap() -> Result<i64, Errno> {
    process::step_waiting_for_disk(|k| {
        let Some(tid) = k.processes().current_thread() else {
            return Some(Err(Errno::Inval));
        };
        k.unmap_step(tid)
    })
    .map(|()| neo::E_OK)
}

/// A call that met a mapping being unmapped by another thread, or that
/// names volume paths whose metadata is being read (nothing done): the
/// caller sleeps until the disk is next idle, then the call is made again
/// from its registers ([`RESTART_CALL`]); the munmap it waits for ends in
/// a step after its writes, and the metadata read is cached by then, so
/// the retry finds it over or waits again.
fn await_disk_and_restart() -> i64 {
    let mut waited = false;
    process::step_waiting_for_disk(|_| core::mem::replace(&mut waited, true).then_some(()));
    RESTART_CALL
}

/// A call whose access to user memory met a page of a volume file to
/// read (nothing done): the caller sleeps until the disk is next idle (the
/// read installed by then), then the call fails with the read's error
/// (`EIO`, as the read under the lock gave) or is made again from its
/// registers ([`RESTART_CALL`]).
fn await_user_read() -> Result<i64, Errno> {
    let mut waited = false;
    let failed = process::step_waiting_for_disk(|k| {
        if !core::mem::replace(&mut waited, true) {
            return None;
        }
        Some(
            k.processes()
                .current_thread()
                .and_then(|tid| k.user_page_read_result(tid)),
        )
    });
    match failed {
        Some(error) => Err(error),
        None => Ok(RESTART_CALL),
    }
}

/// A Linux call that changed the volume, made: its device flush waited
/// for without the kernel lock, then its `result` (`EIO` for a failed
/// flush of a call that succeeded).
fn flush_then(result: Result<i64, Errno>) -> Result<i64, Errno> {
    let flushed = process::step_waiting_for_disk(|k| {
        let Some(tid) = k.processes().current_thread() else {
            return Some(Err(Errno::Inval));
        };
        k.flush_step(tid)
    });
    result.and_then(|value| flushed.map(|()| value))
}

/// `read` of a volume file (from offset `at` for `pread64`), window by
/// window: each window's absent pages are read with the caller asleep
/// without the kernel lock, then copied (`neoos_kernel_core::disk_wait`).
/// An error after some bytes ends the call with those bytes, as a bad
/// buffer does.
fn file_read(fd: i64, buf: UserPtr, count: usize, at: Option<u64>) -> Result<i64, Errno> {
    let mut done = 0;
    while done < count {
        let step = process::step_waiting_for_disk(|k| {
            let (Some(pid), Some(tid)) = (k.processes().current(), k.processes().current_thread())
            else {
                return Some(Err(Errno::Inval));
            };
            let from = at.map(|at| at.saturating_add(done as u64));
            k.file_read_step(pid, tid, fd, buf.offset(done as u64), count - done, from)
        });
        match step {
            Ok((n, asked)) => {
                done += n;
                if n < asked || n == 0 {
                    break;
                }
            }
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(done as i64)
}

/// Linux `sync`: every dirty file written back (its errors, as Linux's,
/// reported to no one), waiting for the disk without the kernel lock.
fn sync_all() -> Result<i64, Errno> {
    process::step_waiting_for_disk(|k| {
        let (Some(pid), Some(tid)) = (k.processes().current(), k.processes().current_thread())
        else {
            return Some(Err(Errno::Inval));
        };
        k.sync_step(pid, tid)
    })
    .map(|()| 0)
}

/// A `write` of a volume file (Linux `pwrite64` from offset `at`): the
/// pages it writes in part are read first, waiting for the disk without
/// the kernel lock, then it is made under the lock.
fn file_write(fd: i64, buf: UserPtr, count: i64, at: Option<u64>) -> Result<i64, Errno> {
    process::step_waiting_for_disk(|k| {
        let (Some(pid), Some(tid)) = (k.processes().current(), k.processes().current_thread())
        else {
            return Some(Err(Errno::Inval));
        };
        k.file_write_step(pid, tid, fd, buf, count, at)
    })
}

/// Linux `readv` (`preadv` from offset `at`) of a volume file: each
/// buffer in turn read as [`file_read`] reads, stopping at a short read;
/// an error after some bytes ends the call with those bytes.
fn file_readv(fd: i64, iov: UserPtr, count: i64, at: Option<u64>) -> Result<i64, Errno> {
    let buffers = for_caller(|k, pid| k.read_buffers(pid, iov, count))?;
    let mut done = 0;
    for (buf, len) in buffers {
        let from = at.map(|at| at.saturating_add(done as u64));
        match file_read(fd, buf, len, from) {
            Ok(n) => {
                done += n as usize;
                if (n as usize) < len {
                    break;
                }
            }
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(done as i64)
}

/// Runs `f` on the kernel state for the running process.
fn for_caller<R>(
    f: impl FnOnce(&mut neoos_kernel_core::Kernel<process::KernelPlatform>, u32) -> Result<R, Errno>,
) -> Result<R, Errno> {
    with_kernel(|k| {
        let pid = k.processes().current().ok_or(Errno::Inval)?;
        f(k, pid)
    })
}

fn wait(status: UserPtr, restart: Restart) -> Result<i64, Errno> {
    loop {
        match for_caller(|k, pid| k.wait_step(pid, status))? {
            Some(child) => return Ok(child as i64),
            None => {
                if let Some(rax) = interrupted(restart) {
                    return Ok(rax);
                }
                process::block_for_child()
            }
        }
    }
}

fn read_console(buf: UserPtr, count: usize, restart: Restart) -> Result<i64, Errno> {
    // The buffer is checked before the wait: a bad one fails at once.
    for_caller(|k, pid| k.check_console_buffer(pid, buf, count))?;
    loop {
        match for_caller(|k, pid| k.read_console_step(pid, buf, count))? {
            0 => {
                if let Some(rax) = interrupted(restart) {
                    return Ok(rax);
                }
                // Input raises COM1's interrupt (on the boot CPU; another
                // CPU looks again at its next tick).
                process::yield_now();
                crate::arch::cpu::wait_for_interrupt();
            }
            n => return Ok(n),
        }
    }
}

fn kill(target: i64) -> Result<i64, Errno> {
    match for_caller(|k, pid| k.kill_request(pid, target))? {
        KillOutcome::KillSelf => process::exit_current(neoos_abi::status::KILLED),
        KillOutcome::Killed => Ok(neo::E_OK),
    }
}

/// Linux `clone` used as fork: as [`fork`], the child on its own stack
/// when one is given, with its TLS and tid stores.
fn clone(frame: &TrapFrame, args: CloneArgs) -> Result<i64, Errno> {
    if frame.rip >= neoos_abi::layout::USER_END {
        return Err(Errno::Inval);
    }
    let mut child_frame = *frame;
    child_frame.rax = 0;
    if args.stack != 0 {
        child_frame.rsp = args.stack;
    }
    for_caller(|k, pid| k.clone_process(pid, &child_frame, args)).map(|child| child as i64)
}

fn fork(frame: &TrapFrame) -> Result<i64, Errno> {
    // A child returning past the user half would fault in the kernel's
    // iretq: no child (the caller itself is ended on its way back).
    if frame.rip >= neoos_abi::layout::USER_END {
        return Err(Errno::Inval);
    }
    let mut child_frame = *frame;
    child_frame.rax = 0;
    for_caller(|k, pid| k.fork(pid, &child_frame)).map(|child| child as i64)
}

/// A thread `clone`: the new thread resumes where the caller does, with
/// `rax` 0 on its new stack.
fn clone_thread(
    frame: &TrapFrame,
    args: neoos_kernel_core::threads::CloneArgs,
) -> Result<i64, Errno> {
    if frame.rip >= neoos_abi::layout::USER_END {
        return Err(Errno::Inval);
    }
    let mut child = *frame;
    child.rax = 0;
    child.rsp = args.stack;
    for_caller(|k, pid| k.clone_thread(pid, &child, args)).map(i64::from)
}

/// A futex wait the caller has been entered in and blocked by (in the
/// call's own lock section): sleeps until a wake, a signal or the
/// deadline; the result is the raw `rax`.
fn futex_wait(deadline: Option<u64>) -> i64 {
    process::switch_if_blocked();
    with_kernel(|k| match k.processes().current_thread() {
        Some(tid) => k.futex_wait_end(tid, deadline),
        None => 0,
    })
}

/// `sys_thread_join`: steps until the thread has ended, waiting between
/// steps.
fn join(tid: i64, status: UserPtr) -> Result<i64, Errno> {
    loop {
        match for_caller(|k, pid| k.join_step(pid, tid, status))? {
            Some(()) => return Ok(neo::E_OK),
            None => {
                // A signal to take (a kill among them): the join is made
                // again after it, as every NeoOS call.
                if let Some(rax) = interrupted(Restart::Always) {
                    return Ok(rax);
                }
                process::block_for_join(tid as neoos_kernel_core::Tid)
            }
        }
    }
}
