//! Linux `poll` and `ppoll`: which descriptors can be read or written
//! without waiting. This module owns the readiness rule of each kind of
//! descriptor and one pass over a caller's `pollfd` array
//! ([`Kernel::poll_step`]); the kernel repeats the pass, giving the CPU away
//! between passes, until a descriptor is ready or the time is up.

use neoos_abi::linux::poll::*;
use neoos_abi::TICKS_PER_SECOND;
use neoos_mm::Errno;

use super::LinuxCall;
use crate::files::Descriptor;
use crate::kernel::Kernel;
use crate::platform::Platform;
use crate::process::Pid;
use crate::syscall::{Completion, SchedulerCall, UserPtr};

/// Bytes of one `struct pollfd` (`int fd; short events; short revents;`).
const POLLFD_SIZE: usize = 8;
/// What every readable and writable descriptor reports.
const ALWAYS_READY: u16 = POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM;

/// Ticks from now until `ms` milliseconds have passed (rounded up).
fn ticks_for_ms(ms: u64) -> u64 {
    ms.saturating_mul(TICKS_PER_SECOND).div_ceil(1000)
}

impl<P: Platform> Kernel<P> {
    /// `poll(fds, nfds, timeout_ms)` and `ppoll(fds, nfds, tmo, sigmask)`
    /// (a signal mask is not supported: `ENOSYS`): checks the arguments,
    /// takes one pass, and hands a wait to the kernel when nothing is
    /// ready and the time allows one.
    pub(super) fn poll_call(&mut self, pid: Pid, call: LinuxCall) -> Completion {
        let (fds, nfds, wait) = match call {
            LinuxCall::Poll {
                fds,
                nfds,
                timeout_ms,
            } => {
                let wait = (timeout_ms >= 0).then(|| ticks_for_ms(timeout_ms as u64));
                (fds, nfds, wait)
            }
            LinuxCall::Ppoll {
                fds,
                nfds,
                timeout,
                sigmask,
            } => {
                if sigmask.0 != 0 {
                    return Completion::LinuxError(super::LinuxError::NoSys);
                }
                match self.ppoll_wait(pid, timeout) {
                    Ok(wait) => (fds, nfds, wait),
                    Err(e) => return Completion::Done(Err(e)),
                }
            }
            _ => return Completion::Done(Err(Errno::Inval)),
        };
        if nfds > MAX_POLL_FDS {
            return Completion::Done(Err(Errno::Inval));
        }
        let bytes = nfds as usize * POLLFD_SIZE;
        if let Err(e) = self.check_writable(pid, fds, bytes) {
            return Completion::Done(Err(e));
        }
        match self.poll_step(pid, fds, nfds) {
            Ok(0) if wait != Some(0) => Completion::Scheduler(SchedulerCall::Poll {
                fds,
                nfds,
                deadline: wait.map(|t| self.platform.ticks().saturating_add(t)),
            }),
            result => Completion::Done(result.map(|n| n as i64)),
        }
    }

    /// `ppoll`'s time: `None` (no limit) for a null pointer, else its
    /// `timespec` in ticks (negative or a bad `tv_nsec`: `EINVAL`).
    fn ppoll_wait(&mut self, pid: Pid, timeout: UserPtr) -> Result<Option<u64>, Errno> {
        if timeout.0 == 0 {
            return Ok(None);
        }
        let raw = self.copy_in(pid, timeout, 16)?;
        let word = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[at..at + 8]);
            i64::from_le_bytes(b)
        };
        let (seconds, nanos) = (word(0), word(8));
        if seconds < 0 || !(0..1_000_000_000).contains(&nanos) {
            return Err(Errno::Inval);
        }
        let ms = (seconds as u64)
            .saturating_mul(1000)
            .saturating_add((nanos as u64).div_ceil(1_000_000));
        Ok(Some(ticks_for_ms(ms)))
    }

    /// One pass over the `nfds` entries at `fds`: stores each entry's
    /// `revents` (what is ready of what it asked, plus `POLLERR`,
    /// `POLLHUP`, `POLLNVAL` always; 0 for a negative fd) and returns how
    /// many entries have any.
    pub fn poll_step(&mut self, pid: Pid, fds: UserPtr, nfds: u64) -> Result<usize, Errno> {
        let mut entries = self.copy_in(pid, fds, nfds as usize * POLLFD_SIZE)?;
        let mut ready = 0;
        for entry in entries.chunks_exact_mut(POLLFD_SIZE) {
            let fd = i32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
            let events = u16::from_le_bytes([entry[4], entry[5]]);
            let revents = if fd < 0 {
                0
            } else {
                self.readiness(pid, i64::from(fd)) & (events | POLLERR | POLLHUP | POLLNVAL)
            };
            entry[6..8].copy_from_slice(&revents.to_le_bytes());
            if revents != 0 {
                ready += 1;
            }
        }
        self.copy_out(pid, fds, &entries)?;
        Ok(ready)
    }

    /// What descriptor `fd` of `pid` can do now, as `poll` bits.
    fn readiness(&mut self, pid: Pid, fd: i64) -> u16 {
        match self.descriptor(pid, fd) {
            Err(_) => POLLNVAL,
            Ok(Descriptor::Console) => {
                let input = self.console_input_waiting();
                POLLOUT | POLLWRNORM | if input { POLLIN | POLLRDNORM } else { 0 }
            }
            Ok(Descriptor::Pipe { id, write }) => self.pipes.poll_events(id, write),
            Ok(
                Descriptor::File(_) | Descriptor::Zero | Descriptor::Null | Descriptor::Dir { .. },
            ) => ALWAYS_READY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_round_up_to_whole_ticks() {
        let tick_ms = 1000 / TICKS_PER_SECOND;
        assert_eq!(ticks_for_ms(0), 0);
        assert_eq!(ticks_for_ms(1), 1);
        assert_eq!(ticks_for_ms(tick_ms), 1);
        assert_eq!(ticks_for_ms(tick_ms + 1), 2);
        assert_eq!(ticks_for_ms(u64::MAX), u64::MAX / 1000 + 1);
    }
}
