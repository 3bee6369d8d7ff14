//! TLB shootdown batching: each operation collects the virtual pages whose
//! entries it changed and the frames it released, then flushes once (single
//! pages up to [`TLB_BATCH_LIMIT`], a full flush above) and only afterwards
//! returns the frames to the frame source.

use crate::hw::{Frame, FrameSource, PageTable};
use crate::stats::MemStats;
use alloc::vec::Vec;

/// Most single-page invalidations one batch issues; more pages mean one full
/// flush instead.
pub const TLB_BATCH_LIMIT: usize = 32;

/// Pending invalidations and frame releases of one operation.
pub struct TlbBatch {
    pages: [u64; TLB_BATCH_LIMIT],
    len: usize,
    full: bool,
    frees: Vec<Frame>,
}

impl TlbBatch {
    /// An empty batch using `scratch` (emptied) as its free list.
    pub fn new(mut scratch: Vec<Frame>) -> Self {
        scratch.clear();
        TlbBatch {
            pages: [0; TLB_BATCH_LIMIT],
            len: 0,
            full: false,
            frees: scratch,
        }
    }

    /// Records that the entry for `va` changed.
    pub fn invalidate(&mut self, va: u64) {
        if self.full {
            return;
        }
        if self.len < TLB_BATCH_LIMIT {
            self.pages[self.len] = va;
            self.len += 1;
        } else {
            self.full = true;
        }
    }

    /// Queues `frame` to be freed after the flush.
    pub fn free_after_flush(&mut self, frame: Frame) {
        self.frees.push(frame);
    }

    /// The queue of frames to free (for helpers that release objects).
    pub fn frees_mut(&mut self) -> &mut Vec<Frame> {
        &mut self.frees
    }

    /// Flushes, then frees the queued frames; returns the scratch list.
    pub fn finish(
        mut self,
        pt: &mut dyn PageTable,
        frames: &mut dyn FrameSource,
        stats: &mut MemStats,
    ) -> Vec<Frame> {
        if self.full {
            pt.flush_all();
            stats.tlb_full_flushes += 1;
        } else {
            for &va in &self.pages[..self.len] {
                pt.flush_page(va);
            }
            stats.tlb_single_flushes += self.len as u64;
        }
        free_frames(&mut self.frees, frames, stats);
        self.frees
    }
}

/// Returns every frame of `list` to `frames` (no page table maps them).
pub fn free_frames(list: &mut Vec<Frame>, frames: &mut dyn FrameSource, stats: &mut MemStats) {
    for frame in list.drain(..) {
        frames.free(frame);
        stats.frames_in_use = stats.frames_in_use.saturating_sub(1);
    }
}
