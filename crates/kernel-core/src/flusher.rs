//! The flusher: dirty pages of files on the disk volume reach it by
//! themselves, without a `munmap`, `msync`, `fsync` or close (seed 002's
//! "eventually"). Each cached file object is written back once it has been
//! seen for [`Flusher::age`] ticks, and again every `age` ticks while it
//! lives: data a program writes reaches the disk within `age` plus one pass
//! interval (25 s + 5 s by default). Objects are told apart by id, and ids
//! are never reused, so a file closed and opened again starts afresh. RAM
//! files are left alone (they have no disk to reach). A write-back that
//! fails keeps its pages dirty and is tried again `age` ticks later.

use alloc::collections::BTreeMap;

use neoos_mm::{FileId, ObjectId};

use crate::kernel::Kernel;
use crate::mount::is_volume_file;
use crate::platform::Platform;

/// Ticks (100 a second) a file object lives before its first write-back.
pub const DEFAULT_AGE_TICKS: u64 = 2500;

/// When each file object was first seen, and when the next pass is due.
pub struct Flusher {
    seen: BTreeMap<ObjectId, u64>,
    next_pass: u64,
    age: u64,
    /// The pass under way, if one is: the last file it finished (`None`:
    /// none yet). A pass waits between scheduler passes while a file's
    /// writes are in flight (`disk_wait.rs`).
    pass_after: Option<Option<FileId>>,
}

impl Default for Flusher {
    fn default() -> Self {
        Flusher {
            seen: BTreeMap::new(),
            next_pass: 0,
            age: DEFAULT_AGE_TICKS,
            pass_after: None,
        }
    }
}

impl Flusher {
    /// Ticks an object lives before it is written back, and between its
    /// write-backs.
    pub fn age(&self) -> u64 {
        self.age
    }

    /// Ticks between two passes: a fifth of the age (at least one).
    fn pass_interval(&self) -> u64 {
        (self.age / 5).max(1)
    }
}

impl<P: Platform> Kernel<P> {
    /// Sets the flusher's age in ticks (at least one).
    pub fn set_flush_age(&mut self, ticks: u64) {
        self.flusher.age = ticks.max(1);
    }

    /// The tick at which the clock's work is next due: a writeback pass
    /// ([`Self::flush_if_due`]), a timer or the end of a sleep (the
    /// clock's step). Before it, both do nothing.
    pub fn next_time_work(&self) -> u64 {
        if self.flusher.pass_after.is_some() {
            return 0;
        }
        self.flusher.next_pass.min(self.processes.next_deadline)
    }

    /// Runs a flusher pass when one is due, or goes on with the one under
    /// way: writes back every volume file object that has been seen for
    /// the flusher's age since it was first seen or last written back. The
    /// device writes of a file run without the kernel lock
    /// (`disk_wait.rs`): while they are in flight the pass stops, and the
    /// next call (the next scheduler pass) goes on from that file. Called
    /// by the scheduler between threads.
    pub fn flush_if_due(&mut self) {
        let now = self.platform.ticks();
        if self.flusher.pass_after.is_none() {
            if now < self.flusher.next_pass {
                return;
            }
            self.flusher.next_pass = now + self.flusher.pass_interval();
            self.flusher.pass_after = Some(None);
        }
        let mut after = self.flusher.pass_after.flatten();
        while let Some((file, object)) = self.memory.next_cached_file(after) {
            if is_volume_file(file) {
                let since = *self.flusher.seen.entry(object).or_insert(now);
                if now.saturating_sub(since) >= self.flusher.age {
                    match self.flusher_step(file) {
                        Ok(false) => {
                            self.flusher.pass_after = Some(after);
                            return;
                        }
                        Ok(true) => {
                            self.flusher.seen.insert(object, now);
                        }
                        Err(_) => {}
                    }
                }
            }
            after = Some(file);
        }
        self.flusher.pass_after = None;
        let memory = &self.memory;
        self.flusher.seen.retain(|&id, _| memory.object_exists(id));
    }
}
