//! Read-ahead of file pages from a disk: when a page of a file the pager
//! can read again ([`crate::Pager::evictable`]) is read just after the
//! page before it (a sequential reader, through `read` or faults), the
//! next [`READ_AHEAD_PAGES`] absent pages come in the same pager request,
//! so a file read page by page costs a device request per run, not per
//! page. Best effort: without heap for the buffer, frames, or when the
//! read fails, nothing more is read (the page asked for is already in).
//! Pages read ahead start `referenced`, so the reclaim clock passes them
//! once before they may go.

use crate::hw::{Io, ObjectId, PAGE_SIZE};
use crate::object::{CachePage, FileState, ObjectStore};
use alloc::vec::Vec;

/// Pages read after a sequential miss (60 KiB: with the page itself, 64).
pub const READ_AHEAD_PAGES: u64 = 15;

impl ObjectStore {
    /// Reads the absent pages after `index` of file object `id` when
    /// `index - 1` is cached (or `index` is 0): up to [`READ_AHEAD_PAGES`],
    /// stopping at the first cached page and at the stored end of file.
    pub(crate) fn read_ahead(&mut self, io: &mut Io, id: ObjectId, f: FileState, index: u64) {
        if !io.pager.evictable(f.file) {
            return;
        }
        let Some(obj) = self.objects.get(&id) else {
            return;
        };
        let sequential = index == 0 || obj.pages.contains_key(&(index - 1));
        if !sequential {
            return;
        }
        let stored_pages = f.stored_size.min(f.size).div_ceil(PAGE_SIZE);
        let first = index + 1;
        let mut count = 0;
        while count < READ_AHEAD_PAGES
            && first + count < stored_pages
            && !obj.pages.contains_key(&(first + count))
        {
            count += 1;
        }
        if count == 0 {
            return;
        }
        let mut buf: Vec<u8> = Vec::new();
        let len = (count * PAGE_SIZE) as usize;
        if buf.try_reserve_exact(len).is_err() {
            return;
        }
        buf.resize(len, 0);
        if io.pager.read_pages(f.file, first, &mut buf).is_err() {
            return;
        }
        // Bytes past the end of file read as zero (the last page).
        let valid = (f.size - first * PAGE_SIZE).min(len as u64) as usize;
        buf[valid..].fill(0);
        for (i, page) in buf.chunks_exact(PAGE_SIZE as usize).enumerate() {
            let Ok(frame) = self.alloc_frame(io.frames) else {
                return;
            };
            io.frames.bytes_mut(frame).copy_from_slice(page);
            let mut cached = CachePage::new(frame);
            cached.referenced = true;
            match self.objects.get_mut(&id) {
                Some(obj) => {
                    obj.pages.insert(first + i as u64, cached);
                }
                None => self.free_frame_now(io.frames, frame),
            }
        }
    }
}
