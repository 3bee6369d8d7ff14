//! TLB shootdown batching: each operation collects the virtual pages whose
//! entries it changed and the frames it released, then flushes once (one
//! request: single pages up to [`TLB_BATCH_LIMIT`], a full flush above) and
//! only afterwards returns the frames to the frame source.

use crate::hw::{Frame, FrameSource, PageTable};
use crate::stats::MemStats;
use alloc::vec::Vec;

/// Most single-page invalidations one batch issues; more pages mean one full
/// flush instead (Linux's ceiling: beyond it, refilling the TLB costs less
/// than the invalidations).
pub const TLB_BATCH_LIMIT: usize = 33;

/// The two lists a batch fills, kept between operations so that a batch
/// costs no allocation and no copying of a fixed array.
#[derive(Default)]
pub struct BatchLists {
    pages: Vec<u64>,
    frees: Vec<Frame>,
}

/// Pending invalidations and frame releases of one operation.
pub struct TlbBatch {
    lists: BatchLists,
    full: bool,
}

impl TlbBatch {
    /// An empty batch using `lists` (emptied) for its pages and frames.
    pub fn new(mut lists: BatchLists) -> Self {
        lists.pages.clear();
        lists.frees.clear();
        TlbBatch { lists, full: false }
    }

    /// Records that the entry for `va` changed.
    pub fn invalidate(&mut self, va: u64) {
        if self.full {
            return;
        }
        if self.lists.pages.len() < TLB_BATCH_LIMIT {
            self.lists.pages.push(va);
        } else {
            self.full = true;
        }
    }

    /// Queues `frame` to be freed after the flush.
    pub fn free_after_flush(&mut self, frame: Frame) {
        self.lists.frees.push(frame);
    }

    /// The queue of frames to free (for helpers that release objects).
    pub fn frees_mut(&mut self) -> &mut Vec<Frame> {
        &mut self.lists.frees
    }

    /// Flushes, then frees the queued frames; returns the lists for reuse.
    pub fn finish(
        mut self,
        pt: &mut dyn PageTable,
        frames: &mut dyn FrameSource,
        stats: &mut MemStats,
        frames_in_use: &mut u64,
    ) -> BatchLists {
        if !self.full && self.lists.pages.is_empty() && self.lists.frees.is_empty() {
            // Nothing changed (most page faults): nothing to flush or free.
            return self.lists;
        }
        if self.full {
            pt.flush_all();
            stats.tlb_full_flushes += 1;
        } else {
            pt.flush_pages(&self.lists.pages);
            stats.tlb_single_flushes += self.lists.pages.len() as u64;
        }
        free_frames(&mut self.lists.frees, frames, frames_in_use);
        self.lists
    }
}

/// Returns every frame of `list` to `frames` (no page table maps them).
pub fn free_frames(list: &mut Vec<Frame>, frames: &mut dyn FrameSource, frames_in_use: &mut u64) {
    for frame in list.drain(..) {
        frames.free(frame);
        crate::object::count_down64(frames_in_use, "frames in use");
    }
}
