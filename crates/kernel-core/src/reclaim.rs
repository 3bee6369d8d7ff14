//! When free frames run low, file pages go back to the disk: before each
//! system call, each page fault and each chunk a `read` or `write` moves,
//! the kernel checks the free frames and, below [`low_water`], asks the
//! mapping core's clock for [`RECLAIM_BATCH`] frames in at most
//! [`RECLAIM_STEPS`] steps (see `neoos_mm`'s `reclaim.rs`). The work per
//! check is bounded whatever the page cache holds. This module owns the
//! watermark and the bridge from the process table to the mapping core's
//! [`SpaceTables`]: each address space's page table and the ranges its
//! process locked.
//!
//! Dirty pages are not written here, under the kernel lock: the clock
//! leaves them dirty with their entries gone
//! ([`neoos_mm::MemorySystem::reclaim_leaving_dirty`]) and hands their span
//! to the flusher, which writes it at its next pass in its unlocked
//! batches (`disk_wait.rs`) and then evicts the pages still clean and
//! unused ([`Kernel::evict_written`]). Below [`critical_water`] with spans
//! still unwritten, a caller that can wait for the disk without the lock
//! does so and tries again (a fault's retry, a volume file's `write`:
//! `Kernel::reclaim_or_wait`); one that cannot (a fault's first attempt,
//! the chunks of a call under way) writes them itself, under the lock, as
//! before, so memory never runs out while the disk could give it back.

use neoos_mm::{AsId, PageTable, PagesToWrite, Reclaimed, SpaceTables, PAGE_SIZE};

use crate::kernel::Kernel;
use crate::linux::ProgramAbi;
use crate::platform::Platform;
use crate::process::ProcessTable;

/// Frames one reclaim call tries to free (1 MiB).
pub const RECLAIM_BATCH: usize = 256;
/// Steps of the clock one call may take (pages looked at, files passed).
pub const RECLAIM_STEPS: usize = 8 * RECLAIM_BATCH;

/// Free frames below which the kernel reclaims: 1/32 of RAM, at least 256
/// (1 MiB): enough for a call's chunk, a fault's page and its tables.
#[inline]
pub fn low_water(total_frames: u64) -> u64 {
    (total_frames / 32).max(RECLAIM_BATCH as u64)
}

/// Free frames below which reclaim writes the dirty pages it handed to the
/// flusher at once, under the lock: a quarter of [`low_water`].
#[inline]
pub fn critical_water(total_frames: u64) -> u64 {
    low_water(total_frames) / 4
}

/// Whether `platform`'s free frames are below [`low_water`].
#[inline]
pub(crate) fn frames_low<P: Platform>(platform: &P) -> bool {
    let (total, free) = platform.frame_counts();
    free < low_water(total)
}

/// The process table as the mapping core's reclaim reaches it.
pub(crate) struct ProcessTables<'a, T, C>(pub(crate) &'a mut ProcessTable<T, C>);

impl<T: PageTable, C> SpaceTables for ProcessTables<'_, T, C> {
    fn table(&mut self, space: AsId) -> Option<&mut dyn PageTable> {
        let table = self.0.table_of_space(space)?;
        Some(table as &mut dyn PageTable)
    }

    fn locked(&self, space: AsId, va: u64) -> bool {
        match self.0.of_space(space).map(|p| &p.abi) {
            Some(ProgramAbi::Linux(s)) => s.locks.overlaps(va, va + PAGE_SIZE),
            _ => false,
        }
    }
}

impl<P: Platform> Kernel<P> {
    /// Reclaims file pages when free frames are below [`low_water`]; what
    /// it did (nothing when frames were not low).
    #[inline]
    pub fn reclaim_if_low(&mut self) -> Reclaimed {
        if !frames_low(&self.platform) {
            return Reclaimed::default();
        }
        self.reclaim_writing_if_critical()
    }

    /// One bounded reclaim pass that writes nothing: the dirty pages it
    /// meets are handed to the flusher (the system-call entry's: a `write`
    /// of a volume file then waits for the flusher if it must,
    /// `Kernel::file_write_step`). Out of line, so that the system-call
    /// dispatch that checks frames keeps a small frame.
    #[inline(never)]
    pub(crate) fn reclaim_now(&mut self) -> Reclaimed {
        self.reclaim_handing_dirty()
    }

    /// One bounded reclaim pass for a caller that cannot wait (a page
    /// fault's first attempt, the chunks of a call under way): below
    /// [`critical_water`] it writes the pages handed to the flusher itself,
    /// under the lock, and evicts them. Out of line.
    #[inline(never)]
    fn reclaim_writing_if_critical(&mut self) -> Reclaimed {
        let mut done = self.reclaim_handing_dirty();
        if self.must_wait_for_reclaims_writes() {
            // The flusher's spans stay: written again, they are clean.
            let mut index = 0;
            while let Some(&span) = self.flusher.reclaim_spans.get(index) {
                let now = self.evict_written(span, true);
                self.flusher.reclaim_counts.written_locked += now.written as u64;
                done.freed += now.freed;
                done.written += now.written;
                done.write_errors += now.write_errors;
                index += 1;
            }
        }
        done
    }

    /// [`Self::reclaim_now`] for a caller that can wait for the disk
    /// without the lock and try again (a page fault's retry, a volume
    /// file's `write` before it is made): `true` when
    /// it is to wait, free frames being below [`critical_water`] plus the
    /// `frames` it is about to take, with dirty pages handed to the flusher
    /// unwritten (their writes give frames back); nothing is written under
    /// the lock.
    #[inline(never)]
    pub(crate) fn reclaim_or_wait(&mut self, frames: u64) -> bool {
        self.reclaim_handing_dirty();
        let (total, free) = self.platform.frame_counts();
        let wait = free < critical_water(total).saturating_add(frames)
            && !self.flusher.reclaim_spans.is_empty();
        if wait {
            self.flusher.reclaim_counts.waits += 1;
        }
        wait
    }

    /// Free frames are below [`critical_water`] and the flusher has dirty
    /// pages of reclaim's to write.
    fn must_wait_for_reclaims_writes(&self) -> bool {
        let (total, free) = self.platform.frame_counts();
        free < critical_water(total) && !self.flusher.reclaim_spans.is_empty()
    }

    /// One bounded pass of the clock that writes nothing: the dirty pages
    /// it met are handed to the flusher.
    fn reclaim_handing_dirty(&mut self) -> Reclaimed {
        let mut io = neoos_mm::Io {
            frames: self.platform.frames(),
            pager: &mut self.fs.disk,
        };
        let mut tables = ProcessTables(&mut self.processes);
        let done =
            self.memory
                .reclaim_leaving_dirty(&mut io, &mut tables, RECLAIM_BATCH, RECLAIM_STEPS);
        if let Some(span) = done.to_write {
            if self.hand_to_flusher(span) {
                self.flusher.reclaim_counts.handed += done.left_dirty as u64;
            }
        }
        done
    }

    /// Looks again at the pages of `span` reclaim left dirty: evicts those
    /// clean and unused; with `write`, writes the dirty ones first, under
    /// the lock (the old way).
    pub(crate) fn evict_written(&mut self, span: PagesToWrite, write: bool) -> Reclaimed {
        let mut io = neoos_mm::Io {
            frames: self.platform.frames(),
            pager: &mut self.fs.disk,
        };
        let mut tables = ProcessTables(&mut self.processes);
        self.memory.evict_written(&mut io, &mut tables, span, write)
    }

    /// How many dirty pages reclaim handed to the flusher, and how many it
    /// wrote itself under the lock (free frames below [`critical_water`]).
    pub fn reclaim_counts(&self) -> ReclaimCounts {
        self.flusher.reclaim_counts
    }
}

/// Counts of reclaim's dirty pages since boot ([`Kernel::reclaim_counts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReclaimCounts {
    /// Left dirty and handed to the flusher (written without the lock).
    pub handed: u64,
    /// Written by reclaim itself, under the lock.
    pub written_locked: u64,
    /// Times a system call or a page fault waited for the disk (without
    /// the lock) for the flusher to write them.
    pub waits: u64,
}
