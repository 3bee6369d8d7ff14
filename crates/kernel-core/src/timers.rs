//! Time in the process table: each process's real-time interval timer
//! (`ITIMER_REAL`, set by `alarm` and `setitimer`), counted in clock ticks,
//! and the clock's step, which the kernel runs between threads: it fires
//! the timers whose time has come (SIGALRM, re-armed by the interval) and
//! wakes the sleeping threads whose time is over or that have a signal to
//! take. Sleeping threads are off the run queue: they cost nothing until
//! then.

use neoos_abi::signal::ITIMER_REAL;
use neoos_abi::TICKS_PER_SECOND;
use neoos_mm::Errno;

use crate::kernel::Kernel;
use crate::platform::Platform;
use crate::process::{Pid, FOREVER};
use crate::syscall::UserPtr;

/// Microseconds in a second, and in a tick.
const MICROS: u64 = 1_000_000;
const TICK_MICROS: u64 = MICROS / TICKS_PER_SECOND;
/// `struct itimerval`: interval then value, each a `timeval` (seconds,
/// microseconds; 8 bytes each).
pub const ITIMERVAL_SIZE: usize = 32;

/// A process's real-time timer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RealTimer {
    /// The tick at which it fires; 0 when disarmed.
    pub expires: u64,
    /// Ticks between firings after the first (0: fires once).
    pub interval: u64,
}

impl RealTimer {
    /// Whether it is armed.
    pub fn armed(&self) -> bool {
        self.expires != 0
    }

    /// Fires it if its time has come at `now`: re-armed by its interval
    /// (a step late by several intervals fires once, as an overrun), or
    /// disarmed. `true` when it fired.
    pub(crate) fn fire_if_due(&mut self, now: u64) -> bool {
        if !self.armed() || self.expires > now {
            return false;
        }
        self.expires = if self.interval == 0 {
            0
        } else {
            let next = self.expires.saturating_add(self.interval);
            if next > now {
                next
            } else {
                now.saturating_add(self.interval)
            }
        };
        true
    }

    /// Ticks left before it fires at `now` (0: disarmed).
    fn remaining(&self, now: u64) -> u64 {
        if self.armed() {
            self.expires.saturating_sub(now).max(1)
        } else {
            0
        }
    }
}

/// A `timeval` as read from a program: seconds and microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeVal {
    pub seconds: i64,
    pub micros: i64,
}

impl TimeVal {
    fn from_bytes(b: &[u8]) -> Self {
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[at..at + 8]);
            i64::from_le_bytes(w)
        };
        TimeVal {
            seconds: word(0),
            micros: word(8),
        }
    }

    /// Ticks, rounded up (a time shorter than a tick is a tick); `Inval`
    /// for negative seconds or microseconds outside `0..1_000_000`, as
    /// Linux. A time too long for the clock saturates (as Linux's).
    pub fn ticks(self) -> Result<u64, Errno> {
        if self.seconds < 0 || !(0..MICROS as i64).contains(&self.micros) {
            return Err(Errno::Inval);
        }
        Ok((self.seconds as u64)
            .saturating_mul(TICKS_PER_SECOND)
            .saturating_add((self.micros as u64).div_ceil(TICK_MICROS)))
    }

    /// The `timeval` of `ticks`.
    pub fn of_ticks(ticks: u64) -> [u8; 16] {
        let seconds = (ticks / TICKS_PER_SECOND).min(i64::MAX as u64);
        let micros = (ticks % TICKS_PER_SECOND) * TICK_MICROS;
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&seconds.to_le_bytes());
        b[8..].copy_from_slice(&micros.to_le_bytes());
        b
    }
}

impl<P: Platform> Kernel<P> {
    /// Runs the clock's step at the platform's time (the kernel calls it
    /// between processes, at least once a tick while any runs or sleeps).
    pub fn clock_step(&mut self) {
        let now = self.platform.ticks();
        if self.processes.clock_step(now) {
            self.platform.signal_pending();
        }
    }

    /// `setitimer(which, new, old)`: `ITIMER_REAL` only (the CPU-time
    /// timers `ITIMER_VIRTUAL`/`ITIMER_PROF` are `EINVAL`, as an unknown
    /// one). A NULL `new` disarms (as Linux). Every argument is checked
    /// (and `old` found writable) before the timer changes.
    pub(crate) fn setitimer(
        &mut self,
        pid: Pid,
        which: u32,
        new: UserPtr,
        old: UserPtr,
    ) -> Result<i64, Errno> {
        check_which(which)?;
        let (interval, value) = if new.is_null() {
            (0, 0)
        } else {
            let b = self.copy_in(pid, new, ITIMERVAL_SIZE)?;
            let interval = TimeVal::from_bytes(&b[0..16]).ticks()?;
            let value = TimeVal::from_bytes(&b[16..32]).ticks()?;
            (interval, value)
        };
        if !old.is_null() {
            self.check_writable(pid, old, ITIMERVAL_SIZE)?;
        }
        let previous = self.set_real_timer(pid, value, interval)?;
        if !old.is_null() {
            self.copy_out(pid, old, &previous)?;
        }
        Ok(0)
    }

    /// `getitimer(which, out)`.
    pub(crate) fn getitimer(&mut self, pid: Pid, which: u32, out: UserPtr) -> Result<i64, Errno> {
        check_which(which)?;
        let bytes = self.itimerval_of(pid)?;
        self.copy_out(pid, out, &bytes)?;
        Ok(0)
    }

    /// `alarm(seconds)`: arms the real-time timer once (0 disarms); the
    /// seconds the previous one had left, rounded as Linux does (to the
    /// nearest second, and at least 1 if it was armed).
    pub(crate) fn alarm(&mut self, pid: Pid, seconds: u32) -> Result<i64, Errno> {
        let now = self.platform.ticks();
        let left = self
            .processes
            .get(pid)
            .ok_or(Errno::Inval)?
            .timer
            .remaining(now);
        self.set_real_timer(pid, u64::from(seconds) * TICKS_PER_SECOND, 0)?;
        let whole = left / TICKS_PER_SECOND;
        let rest = left % TICKS_PER_SECOND;
        let rounded = if rest * 2 >= TICKS_PER_SECOND || (whole == 0 && rest > 0) {
            whole + 1
        } else {
            whole
        };
        Ok(rounded as i64)
    }

    /// Arms `pid`'s real-time timer `value` ticks from now (0 disarms),
    /// then every `interval` ticks; returns the previous one as an
    /// `itimerval`.
    fn set_real_timer(
        &mut self,
        pid: Pid,
        value: u64,
        interval: u64,
    ) -> Result<[u8; ITIMERVAL_SIZE], Errno> {
        let previous = self.itimerval_of(pid)?;
        let now = self.platform.ticks();
        let p = self.processes.get_mut(pid).ok_or(Errno::Inval)?;
        p.timer = if value == 0 {
            RealTimer::default()
        } else {
            RealTimer {
                expires: now.saturating_add(value).max(1),
                interval,
            }
        };
        let expires = p.timer.expires;
        if expires != 0 {
            self.processes.note_deadline(expires);
        }
        Ok(previous)
    }

    /// `pid`'s real-time timer as an `itimerval` (time left, interval).
    fn itimerval_of(&self, pid: Pid) -> Result<[u8; ITIMERVAL_SIZE], Errno> {
        let now = self.platform.ticks();
        let timer = self.processes.get(pid).ok_or(Errno::Inval)?.timer;
        let mut b = [0u8; ITIMERVAL_SIZE];
        b[..16].copy_from_slice(&TimeVal::of_ticks(timer.interval));
        b[16..].copy_from_slice(&TimeVal::of_ticks(timer.remaining(now)));
        Ok(b)
    }

    /// One step of a sleep of `pid` until tick `until` (`nanosleep`,
    /// `clock_nanosleep`, and `pause`/`rt_sigsuspend` with [`FOREVER`]):
    /// `Some(0)` when the time is over, `Some(-EINTR)` when a signal is
    /// to be taken (the time left stored at `rem` unless NULL; `-EFAULT`
    /// if it cannot be), `None` when the caller must sleep and step again.
    pub fn sleep_step(&mut self, pid: Pid, until: u64, rem: UserPtr) -> Option<i64> {
        let now = self.platform.ticks();
        if now >= until {
            return Some(0);
        }
        if !self.signal_interrupts(pid) {
            return None;
        }
        if !rem.is_null() && until != FOREVER {
            let left = until - now;
            let seconds = (left / TICKS_PER_SECOND).min(i64::MAX as u64);
            let nanos = (left % TICKS_PER_SECOND) * (1_000_000_000 / TICKS_PER_SECOND);
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&seconds.to_le_bytes());
            b[8..].copy_from_slice(&nanos.to_le_bytes());
            if let Err(e) = self.copy_out(pid, rem, &b) {
                return Some(-e.posix_errno());
            }
        }
        Some(-neoos_abi::errno::EINTR)
    }
}

/// `Inval` for any timer but `ITIMER_REAL` (NeoOS counts no per-process
/// CPU time, so `ITIMER_VIRTUAL` and `ITIMER_PROF` are refused too).
fn check_which(which: u32) -> Result<(), Errno> {
    if which == ITIMER_REAL {
        Ok(())
    } else {
        Err(Errno::Inval)
    }
}
