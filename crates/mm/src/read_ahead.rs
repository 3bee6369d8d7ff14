//! Reading file pages from a disk in runs. Faults: when a fault misses a
//! page of a file the pager can read again ([`crate::Pager::evictable`])
//! just after the page before it was cached (a sequential reader), that
//! page and the next absent ones, [`READ_AHEAD_PAGES`] in all, come in
//! one pager request, so a mapping read page by page costs one request per
//! 32 pages (128 KiB, Linux's default read-ahead window). Best effort: when
//! that run cannot be read (no heap for the buffer, a failed read), the
//! page asked for is read alone, as any other miss, and gives the fault
//! its own answer. `read`: the absent pages of the range asked for are
//! read in runs of up to [`READ_AHEAD_PAGES`] (`read_range`), nothing
//! beyond it; a failed run fails the call. Pages read in runs start
//! `referenced`, so the reclaim clock passes them once before they may go.

use crate::hw::{Io, ObjectId, PAGE_SIZE};
use crate::object::{CachePage, FileState, ObjectStore};
use alloc::vec::Vec;

/// Pages read in one request on a sequential miss, the missed page first
/// (128 KiB).
pub const READ_AHEAD_PAGES: u64 = 32;

impl ObjectStore {
    /// On a sequential miss of page `index` of file object `id` (`index -
    /// 1` cached, a disk file): reads `index` and the absent pages after it,
    /// up to [`READ_AHEAD_PAGES`] in all, stopping at the first cached page
    /// and at the stored end of file, in one request. `None` when the miss
    /// is not sequential or the run was not read (the caller reads the page
    /// alone); else the page's frame.
    pub(crate) fn read_ahead(
        &mut self,
        io: &mut Io,
        id: ObjectId,
        f: FileState,
        index: u64,
    ) -> Option<crate::hw::Frame> {
        if !io.pager.evictable(f.file) || index == 0 {
            return None;
        }
        let obj = self.objects.get(&id)?;
        if !obj.pages.lock().contains_key(&(index - 1)) {
            return None;
        }
        let stored_pages = f.stored_size.min(f.size).div_ceil(PAGE_SIZE);
        let mut count = 0;
        while count < READ_AHEAD_PAGES
            && index + count < stored_pages
            && !obj.pages.lock().contains_key(&(index + count))
        {
            count += 1;
        }
        if count < 2 {
            return None;
        }
        self.read_run(io, id, f, index, count).ok()?;
        Some(self.objects.get(&id)?.pages.lock().get(&index)?.frame)
    }

    /// Reads the absent pages of `[first, end)` of file object `id` from a
    /// disk file (others are read page by page by the caller), in runs of
    /// up to [`READ_AHEAD_PAGES`]: `Io` when the pager fails.
    pub(crate) fn read_range(
        &mut self,
        io: &mut Io,
        id: ObjectId,
        f: FileState,
        first: u64,
        end: u64,
    ) -> Result<(), crate::Errno> {
        if !io.pager.evictable(f.file) {
            return Ok(());
        }
        let stored_pages = f.stored_size.min(f.size).div_ceil(PAGE_SIZE);
        let end = end.min(stored_pages);
        let mut index = first;
        while index < end {
            let Some(obj) = self.objects.get(&id) else {
                return Ok(());
            };
            if obj.pages.lock().contains_key(&index) {
                index += 1;
                continue;
            }
            let mut count = 1;
            while count < READ_AHEAD_PAGES
                && index + count < end
                && !obj.pages.lock().contains_key(&(index + count))
            {
                count += 1;
            }
            self.read_run(io, id, f, index, count)?;
            index += count;
        }
        Ok(())
    }

    /// Reads `count` absent pages from `first` of file object `id` in one
    /// pager request and caches them (referenced). Without heap for the
    /// buffer or frames, reads nothing (`Ok`: the pages are read one by one
    /// later); `Io` when the pager fails.
    fn read_run(
        &mut self,
        io: &mut Io,
        id: ObjectId,
        f: FileState,
        first: u64,
        count: u64,
    ) -> Result<(), crate::Errno> {
        let mut buf: Vec<u8> = Vec::new();
        let len = (count * PAGE_SIZE) as usize;
        if buf.try_reserve_exact(len).is_err() {
            return Ok(());
        }
        buf.resize(len, 0);
        io.pager
            .read_pages(f.file, first, &mut buf)
            .map_err(|_| crate::Errno::Io)?;
        // Bytes past the end of file read as zero (the last page).
        let valid = (f.size - first * PAGE_SIZE).min(len as u64) as usize;
        buf[valid..].fill(0);
        for (i, page) in buf.chunks_exact(PAGE_SIZE as usize).enumerate() {
            let Ok(frame) = self.alloc_frame(io.frames) else {
                return Ok(());
            };
            io.frames.bytes_mut(frame).copy_from_slice(page);
            let mut cached = CachePage::new(frame);
            cached.referenced = true;
            match self.objects.get_mut(&id) {
                Some(obj) => {
                    obj.pages.get_mut().insert(first + i as u64, cached);
                }
                None => self.free_frame_now(io.frames, frame),
            }
        }
        Ok(())
    }
}
