//! The flusher: dirty pages of files on the disk volume reach it by
//! themselves, without a `munmap`, `msync`, `fsync` or close (seed 002's
//! "eventually"). Each cached file object is written back once it has been
//! seen for [`Flusher::age`] ticks, and again every `age` ticks while it
//! lives: data a program writes reaches the disk within `age` plus one pass
//! interval (25 s + 5 s by default). Objects are told apart by id, and ids
//! are never reused, so a file closed and opened again starts afresh. RAM
//! files are left alone (they have no disk to reach). A write-back that
//! fails keeps its pages dirty and is tried again `age` ticks later.
//!
//! Kept objects (`neoos_mm`'s `kept_files.rs`: a volume file object whose
//! last reference went with dirty pages, at an exit, an exec or a POSIX
//! `munmap`) are written at once instead: a pass for them alone starts at
//! the first scheduler pass that sees one, whatever their age, and each
//! is let go once written (its frames back). A failed write keeps it, its
//! pages dirty, and tries it again [`KEPT_RETRY_TICKS`] later.
//!
//! Pages reclaim left dirty (`reclaim.rs`: their entries gone, to be
//! evicted once written) are written first, at once, in the same unlocked
//! batches, each span alone (a pass under way is finished first, and none
//! starts while a span is written); once a span is written its pages
//! still clean and unused are evicted. A span whose write fails is
//! dropped, its pages dirty: the clock finds them again.

use alloc::collections::BTreeMap;

use alloc::vec::Vec;

use neoos_mm::{FileId, ObjectId, PagesToWrite};

use crate::kernel::Kernel;
use crate::mount::is_volume_file;
use crate::platform::Platform;

/// Ticks (100 a second) a file object lives before its first write-back.
pub const DEFAULT_AGE_TICKS: u64 = 2500;
/// Ticks between two tries at kept objects when a write of one failed.
pub const KEPT_RETRY_TICKS: u64 = 100;

/// When each file object was first seen, and when the next pass is due.
pub struct Flusher {
    seen: BTreeMap<ObjectId, u64>,
    next_pass: u64,
    age: u64,
    /// The pass under way, if one is: the last file it finished (`None`:
    /// none yet). A pass waits between scheduler passes while a file's
    /// writes are in flight (`disk_wait.rs`).
    pass_after: Option<Option<FileId>>,
    /// The pass under way writes the kept objects alone (it was started
    /// for them, the regular pass not being due).
    kept_only: bool,
    /// A kept object's write failed in the pass under way.
    kept_failed: bool,
    /// The tick from which kept objects are tried (again).
    kept_due: u64,
    /// The spans of pages reclaim left dirty, to write and then evict, in
    /// the order handed (at most [`RECLAIM_SPANS`]; one per file but the
    /// first's).
    pub(crate) reclaim_spans: Vec<PagesToWrite>,
    /// While spans wait, `next_pass` is 0 (the flusher due at once, with
    /// no other test where every lock section asks when it is next due)
    /// and the regular pass's tick is kept here.
    next_pass_after_spans: Option<u64>,
    /// Reclaim's dirty pages: handed here, written under the lock.
    pub(crate) reclaim_counts: crate::reclaim::ReclaimCounts,
}

/// Most spans of pages reclaim leaves dirty for the flusher at once (more
/// stay dirty in the cache, for the clock's next lap).
pub const RECLAIM_SPANS: usize = 8;

impl Default for Flusher {
    fn default() -> Self {
        Flusher {
            seen: BTreeMap::new(),
            next_pass: 0,
            age: DEFAULT_AGE_TICKS,
            pass_after: None,
            kept_only: false,
            kept_failed: false,
            kept_due: 0,
            reclaim_spans: Vec::new(),
            next_pass_after_spans: None,
            reclaim_counts: crate::reclaim::ReclaimCounts::default(),
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
        let next = self.flusher.next_pass.min(self.processes.next_deadline);
        if self.memory.kept_file_count() > 0 {
            return next.min(self.flusher.kept_due);
        }
        next
    }

    /// Runs a flusher pass when one is due, or goes on with the one under
    /// way: writes back every volume file object that has been seen for
    /// the flusher's age since it was first seen or last written back, and
    /// every kept object (a pass for those alone is due as soon as one is
    /// kept), letting each go once written. The device writes of a file
    /// run without the kernel lock (`disk_wait.rs`): while they are in
    /// flight the pass stops, and the next call (the next scheduler pass)
    /// goes on from that file. Called by the scheduler between threads.
    pub fn flush_if_due(&mut self) {
        if self.flusher.pass_after.is_none() && self.write_reclaim_spans() {
            return;
        }
        let now = self.platform.ticks();
        if self.flusher.pass_after.is_none() {
            let regular = now >= self.flusher.next_pass;
            let kept = self.memory.kept_file_count() > 0 && now >= self.flusher.kept_due;
            if !regular && !kept {
                return;
            }
            if regular {
                self.flusher.next_pass = now + self.flusher.pass_interval();
            }
            self.flusher.kept_only = !regular;
            self.flusher.kept_failed = false;
            self.flusher.pass_after = Some(None);
        }
        let mut after = self.flusher.pass_after.flatten();
        while let Some((file, object)) = self.memory.next_cached_file(after) {
            if is_volume_file(file) {
                let kept = self.memory.file_kept(file);
                let since = *self.flusher.seen.entry(object).or_insert(now);
                let aged = !self.flusher.kept_only && now.saturating_sub(since) >= self.flusher.age;
                if kept || aged {
                    match self.flusher_step(file) {
                        Ok(false) => {
                            self.flusher.pass_after = Some(after);
                            return;
                        }
                        Ok(true) => {
                            self.flusher.seen.insert(object, now);
                            if kept {
                                self.release_kept(file);
                            }
                        }
                        Err(_) => self.flusher.kept_failed |= kept,
                    }
                }
            }
            after = Some(file);
        }
        self.flusher.pass_after = None;
        self.flusher.kept_due = if self.flusher.kept_failed {
            now + KEPT_RETRY_TICKS
        } else {
            now
        };
        let memory = &self.memory;
        self.flusher.seen.retain(|&id, _| memory.object_exists(id));
    }

    /// Writes the spans reclaim left dirty, one after the other, evicting
    /// each one's pages once written: `true` while a span's writes are in
    /// flight (the next scheduler pass goes on).
    fn write_reclaim_spans(&mut self) -> bool {
        if self.flusher.reclaim_spans.is_empty() {
            return false;
        }
        while let Some(&span) = self.flusher.reclaim_spans.first() {
            match self.flusher_step_pages(span.file, span.first, span.end) {
                Ok(false) => return true,
                Ok(true) => {
                    self.flusher.reclaim_spans.remove(0);
                    self.evict_written(span, false);
                }
                // Its pages stay dirty, in the cache: the clock finds them.
                Err(_) => {
                    self.flusher.reclaim_spans.remove(0);
                }
            }
        }
        if let Some(next) = self.flusher.next_pass_after_spans.take() {
            self.flusher.next_pass = next;
        }
        false
    }

    /// Hands the pages reclaim left dirty to the flusher (joined to the
    /// span of the same file already handed, if any); `false` when there
    /// is no room (they stay dirty for the clock's next lap).
    pub(crate) fn hand_to_flusher(&mut self, span: PagesToWrite) -> bool {
        let spans = &mut self.flusher.reclaim_spans;
        // Not into the first, which may be being written (its write-back
        // keeps the span it began with).
        if let Some(s) = spans.iter_mut().skip(1).find(|s| s.file == span.file) {
            s.first = s.first.min(span.first);
            s.end = s.end.max(span.end);
            return true;
        }
        if spans.len() >= RECLAIM_SPANS || spans.try_reserve(1).is_err() {
            return false;
        }
        spans.push(span);
        if self.flusher.next_pass_after_spans.is_none() {
            self.flusher.next_pass_after_spans = Some(self.flusher.next_pass);
            self.flusher.next_pass = 0;
        }
        true
    }

    /// Kept `file` was just written back: the kernel's reference goes
    /// (and the object with it when nothing else holds it), unless it is
    /// still dirty (then it is tried again [`KEPT_RETRY_TICKS`] later).
    fn release_kept(&mut self, file: FileId) {
        let (memory, mut io) = self.memory_io();
        if let Err(_) | Ok(false) = memory.file_release_kept(&mut io, file) {
            self.flusher.kept_failed = true;
        }
        self.reap_released_orphans();
    }

    /// Lets every kept object go now, writing its dirty pages under the
    /// lock (the kernel's last act when every program is done: nothing
    /// waits for it). Keeping stops with it.
    /// Says, when reclaim met dirty pages, how many it handed to the
    /// flusher and how many it wrote under the lock.
    pub fn release_kept_now(&mut self) {
        let (memory, mut io) = self.memory_io();
        // A failed write cannot stop the kernel: the pages go all the same.
        let _ = memory.release_kept_now(&mut io);
        self.reap_released_orphans();
        // Metadata a failed write left dirty, written while the disk is there.
        let _ = self.fs.disk.flush_dirty_metadata();
        let counts = self.flusher.reclaim_counts;
        if counts != crate::reclaim::ReclaimCounts::default() {
            self.platform.report(format_args!(
                "reclaim: {} dirty pages left to the flusher, {} written under the lock, {} waits for them",
                counts.handed, counts.written_locked, counts.waits
            ));
        }
    }
}
