//! The clock: timer ticks since boot, counted by the timer interrupt and
//! read by `sys_ticks` and the SysV segment times.

use core::sync::atomic::{AtomicU64, Ordering};

static TICKS: AtomicU64 = AtomicU64::new(0);

/// Counts one timer tick (the timer interrupt, 100 per second).
pub fn tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// Timer ticks (100 per second) since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}
