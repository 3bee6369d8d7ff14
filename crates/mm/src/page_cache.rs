//! The page cache: one file object per open (or mapped) file, the single copy
//! of its data, used both by mappings and by the kernel's `read`/`write`.
//! Writeback sends each contiguous run of dirty pages as one pager request.

use crate::errno::Errno;
use crate::hw::{FileId, Io, ObjectId, PageBytes, PAGE_SIZE};
use crate::object::{FileState, ObjectKind, ObjectStore};
use alloc::vec::Vec;

impl ObjectStore {
    /// The object of an open (or still mapped) file.
    pub fn file_object(&self, file: FileId) -> Result<ObjectId, Errno> {
        self.files.get(&file).copied().ok_or(Errno::NoEnt)
    }

    /// The object of `file` itself, if it has one.
    pub(crate) fn cached_file(&self, file: FileId) -> Option<&crate::object::MemoryObject> {
        self.files.get(&file).and_then(|&id| self.get(id))
    }

    /// A descriptor to `file` was opened: creates the file object with
    /// `size` on first use (a cached object keeps its own, newer size).
    pub fn file_open_ref(&mut self, file: FileId, size: u64) -> ObjectId {
        if let Some(&id) = self.files.get(&file) {
            if let Some(o) = self.objects.get_mut(&id) {
                o.handle_refs += 1;
            }
            return id;
        }
        let state = FileState {
            file,
            size,
            stored_size: size,
            dirty_marks: 0,
            kept: false,
        };
        let id = self.create(ObjectKind::File(state), 1);
        self.files.insert(file, id);
        id
    }

    fn file_state_mut(&mut self, id: ObjectId) -> Option<&mut FileState> {
        match &mut self.objects.get_mut(&id)?.kind {
            ObjectKind::File(f) => Some(f),
            _ => None,
        }
    }

    /// Current size of a cached file.
    pub fn file_size(&self, file: FileId) -> Result<u64, Errno> {
        let id = self.file_object(file)?;
        self.get(id)
            .and_then(|o| o.file())
            .map(|f| f.size)
            .ok_or(Errno::NoEnt)
    }

    /// Reads from the cache at `offset`; returns the byte count (0 at end).
    pub fn file_read(
        &mut self,
        io: &mut Io,
        file: FileId,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, Errno> {
        let id = self.file_object(file)?;
        let size = self.file_size(file)?;
        if offset >= size {
            return Ok(0);
        }
        let count = (size - offset).min(buf.len() as u64) as usize;
        if let Some(f) = self.get(id).and_then(|o| o.file()).copied() {
            let end = (offset + count as u64).div_ceil(PAGE_SIZE);
            self.read_range(io, id, f, offset / PAGE_SIZE, end)?;
        }
        let mut done = 0usize;
        while done < count {
            let pos = offset + done as u64;
            let frame = self
                .page_frame_reading(io, id, pos / PAGE_SIZE, false)
                .map_err(Errno::from)?;
            self.note_use(id, pos / PAGE_SIZE);
            let in_page = (pos % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - in_page).min(count - done);
            buf[done..done + n].copy_from_slice(&io.frames.bytes(frame)[in_page..in_page + n]);
            done += n;
        }
        Ok(count)
    }

    /// Writes into the cache at `offset`, growing the file; pages become dirty.
    pub fn file_write(
        &mut self,
        io: &mut Io,
        file: FileId,
        offset: u64,
        buf: &[u8],
    ) -> Result<usize, Errno> {
        let id = self.file_object(file)?;
        let end = offset.checked_add(buf.len() as u64).ok_or(Errno::Inval)?;
        if end.checked_add(PAGE_SIZE).is_none() {
            return Err(Errno::Inval);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let old_size = self.file_size(file)?;
        if end > old_size {
            self.grow(io, id, end);
        }
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let index = pos / PAGE_SIZE;
            let in_page = (pos % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - in_page).min(buf.len() - done);
            // A page the write covers whole is not read first.
            let got = if n == PAGE_SIZE as usize {
                self.page_frame_overwritten(io, id, index)
            } else {
                self.page_frame_reading(io, id, index, false)
            };
            let frame = match got {
                Ok(f) => f,
                Err(e) => {
                    self.shrink_size_after_failed_write(id, old_size, pos);
                    return if done == 0 { Err(e.into()) } else { Ok(done) };
                }
            };
            io.frames.bytes_mut(frame)[in_page..in_page + n].copy_from_slice(&buf[done..done + n]);
            if let Some(o) = self.objects.get_mut(&id) {
                o.mark_dirty(index, frame);
            }
            self.note_use(id, index);
            done += n;
        }
        Ok(done)
    }

    /// The frame of page `index` of file object `id` for a write that
    /// covers it whole: the cached one, else a new frame (its bytes are
    /// the caller's to fill, all of them), cached without reading the
    /// page. A read of the page under way then leaves it alone.
    fn page_frame_overwritten(
        &mut self,
        io: &mut Io,
        id: ObjectId,
        index: u64,
    ) -> Result<crate::hw::Frame, crate::errno::PageError> {
        let obj = self
            .objects
            .get_mut(&id)
            .ok_or(crate::errno::PageError::BeyondEndOfFile)?;
        if let Some(p) = obj.pages.get_mut().get(&index) {
            return Ok(p.frame);
        }
        let frame = self.alloc_frame(io.frames)?;
        if let Some(obj) = self.objects.get_mut(&id) {
            obj.pages
                .get_mut()
                .insert(index, crate::object::CachePage::new(frame));
        }
        Ok(frame)
    }

    /// Page `index` of `id` was used through the cache: the reclaim clock
    /// passes it once more before it may go.
    fn note_use(&mut self, id: ObjectId, index: u64) {
        if let Some(page) = self
            .objects
            .get_mut(&id)
            .and_then(|o| o.pages.get_mut().get_mut(&index))
        {
            page.referenced = true;
        }
    }

    fn shrink_size_after_failed_write(&mut self, id: ObjectId, old_size: u64, reached: u64) {
        if let Some(f) = self.file_state_mut(id) {
            f.size = old_size.max(reached);
        }
    }

    /// Raises the size to `new_size`, zeroing the cached tail past the old end.
    fn grow(&mut self, io: &mut Io, id: ObjectId, new_size: u64) {
        let Some(f) = self.file_state_mut(id) else {
            return;
        };
        let old = f.size;
        f.size = new_size;
        self.zero_tail_from(io, id, old);
    }

    /// Zeroes the cached bytes of the page containing `from`, from there on.
    fn zero_tail_from(&mut self, io: &mut Io, id: ObjectId, from: u64) {
        let in_page = (from % PAGE_SIZE) as usize;
        if in_page == 0 {
            return;
        }
        if let Some(p) = self
            .objects
            .get(&id)
            .and_then(|o| o.pages.lock().get(&(from / PAGE_SIZE)).copied())
        {
            io.frames.bytes_mut(p.frame)[in_page..].fill(0);
        }
    }

    /// Sets the file's size. Shrinking a file that is mapped is refused with
    /// `Busy`; growing is always allowed. The new length reaches the pager
    /// at once.
    pub fn file_truncate(&mut self, io: &mut Io, file: FileId, size: u64) -> Result<(), Errno> {
        let id = self.file_object(file)?;
        let old = self.file_size(file)?;
        if size.checked_add(PAGE_SIZE).is_none() {
            return Err(Errno::Inval);
        }
        let mapped = self.get(id).is_some_and(|o| o.map_refs() > 0);
        if size < old && mapped {
            return Err(Errno::Busy);
        }
        io.pager.set_len(file, size).map_err(|_| Errno::Io)?;
        if size >= old {
            self.grow(io, id, size);
        } else {
            self.drop_pages_from(io, id, size.div_ceil(PAGE_SIZE));
            self.zero_tail_from(io, id, size);
            if let Some(f) = self.file_state_mut(id) {
                f.size = size;
            }
        }
        if let Some(f) = self.file_state_mut(id) {
            f.stored_size = size;
        }
        Ok(())
    }

    /// Frees cached pages `first..` of an unmapped object.
    fn drop_pages_from(&mut self, io: &mut Io, id: ObjectId, first: u64) {
        let Some(o) = self.objects.get_mut(&id) else {
            return;
        };
        let gone = o.pages.get_mut().split_off(&first);
        drop(o.dirty.split_off(&first));
        // Reads under way there install nothing when they finish.
        drop(o.reading.split_off(&first));
        for p in gone.values() {
            self.free_frame_now(io.frames, p.frame);
        }
    }

    /// Writes every dirty page of `file` back.
    pub fn file_sync(&mut self, io: &mut Io, file: FileId) -> Result<(), Errno> {
        let id = self.file_object(file)?;
        self.write_back(io, id, 0, u64::MAX)
    }

    /// Writes the dirty pages of object `id` with index in `[first, end)`,
    /// one pager request per contiguous run, then one [`crate::hw::Pager::sync`]
    /// (nothing is reported written before it succeeds). The pages are found in the
    /// object's dirty set: work follows the dirty pages, not the cached ones. The list of a run's pages grows
    /// with `try_reserve`: when the heap refuses, the run goes as several
    /// requests (down to one page each), so writeback needs no allocation to
    /// succeed. On success the written pages
    /// become clean, except those still mapped writable somewhere (they may
    /// change again without a fault). On failure nothing is marked clean.
    pub fn write_back(
        &mut self,
        io: &mut Io,
        id: ObjectId,
        first: u64,
        end: u64,
    ) -> Result<(), Errno> {
        let Some(obj) = self.objects.get_mut(&id) else {
            return Ok(());
        };
        let ObjectKind::File(state) = &mut obj.kind else {
            return Ok(());
        };
        let file = state.file;
        let last_index = state.size.div_ceil(PAGE_SIZE);
        let end = end.min(last_index);
        if first >= end {
            return Ok(());
        }
        if obj.dirty.range(first..end).next().is_none() {
            return Ok(());
        }
        if state.stored_size != state.size {
            io.pager.set_len(file, state.size).map_err(|_| Errno::Io)?;
            state.stored_size = state.size;
        }
        let frames = &*io.frames;
        let mut run: Vec<&PageBytes> = Vec::new();
        let mut run_first = 0u64;
        // Dirty pages of the range seen, and those of them no entry maps
        // writable (clean once written).
        let (mut seen, mut unwritable) = (0usize, 0usize);
        for (&index, page) in obj.dirty.range(first..end) {
            seen += 1;
            if page.writers == 0 {
                unwritable += 1;
            }
            let bytes = frames.bytes(page.frame);
            if !run.is_empty() && run_first + run.len() as u64 != index {
                send_run(io.pager, &mut self.stats, file, run_first, &run)?;
                run.clear();
            }
            if run.try_reserve(1).is_err() {
                // No heap for a longer list: what is gathered goes now, and
                // a page that cannot even start a list goes on its own.
                if !run.is_empty() {
                    send_run(io.pager, &mut self.stats, file, run_first, &run)?;
                    run.clear();
                }
                if run.try_reserve(1).is_err() {
                    send_run(io.pager, &mut self.stats, file, index, &[bytes])?;
                    continue;
                }
            }
            if run.is_empty() {
                run_first = index;
            }
            run.push(bytes);
        }
        if !run.is_empty() {
            send_run(io.pager, &mut self.stats, file, run_first, &run)?;
        }
        io.pager.sync(file).map_err(|_| Errno::Io)?;
        if unwritable == seen {
            obj.clean_range(first, end, seen);
        } else if unwritable > 0 {
            obj.clean_unwritable(first, end);
        }
        Ok(())
    }
}

/// Dirty pages of one file object copied out under the kernel lock, for a
/// write-back whose device writes run without it ([`ObjectStore::gather_dirty`]).
#[derive(Debug)]
pub struct GatheredRuns {
    /// The object the pages were copied from.
    pub object: ObjectId,
    /// Each run: its first page index and its pages' bytes, one after
    /// the other.
    pub runs: Vec<(u64, Vec<u8>)>,
    /// Each copied page that no entry mapped writable, with its dirty
    /// mark: clean after the write if still so ([`ObjectStore::clean_written`]).
    pub pages: Vec<(u64, u64)>,
    /// The page index after the last one copied (where the next gather
    /// of the range starts).
    pub next: u64,
}

impl ObjectStore {
    /// Copies the dirty pages of object `id` with index in `[first, end)`
    /// into runs of contiguous pages, at most `most_runs` runs and
    /// `most_pages` pages (`most_runs` and `most_pages` at least 1), for
    /// the caller to write without the kernel lock; the stored length is
    /// set first when it changed (as [`Self::write_back`] does), and the
    /// runs count as write-back requests and bytes (the counters). `None`
    /// when the range has no dirty page. Nothing is marked: the pages stay
    /// dirty until [`Self::clean_written`]. `NoMem` when the heap refuses a
    /// buffer (then [`Self::write_back`], which needs none, can do it).
    pub fn gather_dirty(
        &mut self,
        io: &mut Io,
        id: ObjectId,
        first: u64,
        end: u64,
        most_runs: usize,
        most_pages: usize,
    ) -> Result<Option<GatheredRuns>, Errno> {
        let Some(obj) = self.objects.get_mut(&id) else {
            return Ok(None);
        };
        let ObjectKind::File(state) = &mut obj.kind else {
            return Ok(None);
        };
        let end = end.min(state.size.div_ceil(PAGE_SIZE));
        if first >= end || obj.dirty.range(first..end).next().is_none() {
            return Ok(None);
        }
        if state.stored_size != state.size {
            io.pager
                .set_len(state.file, state.size)
                .map_err(|_| Errno::Io)?;
            state.stored_size = state.size;
        }
        let mut gathered = GatheredRuns {
            object: id,
            runs: Vec::new(),
            pages: Vec::new(),
            next: first,
        };
        let mut dirty = obj.dirty.range(first..end);
        let mut copied = 0;
        while let Some((&index, page)) = dirty.next() {
            let extends = gathered
                .runs
                .last()
                .is_some_and(|(at, bytes)| at + (bytes.len() as u64 / PAGE_SIZE) == index);
            if copied == most_pages || (!extends && gathered.runs.len() == most_runs) {
                break;
            }
            if !extends {
                // The run's buffer at its full length at once: grown page by
                // page, it was copied again at each doubling.
                let length = 1 + run_length(dirty.clone(), index + 1, most_pages - copied - 1);
                let mut bytes = Vec::new();
                bytes
                    .try_reserve_exact(length * PAGE_SIZE as usize)
                    .map_err(|_| Errno::NoMem)?;
                gathered.runs.try_reserve(1).map_err(|_| Errno::NoMem)?;
                gathered.runs.push((index, bytes));
            }
            let Some((_, bytes)) = gathered.runs.last_mut() else {
                break;
            };
            bytes
                .try_reserve(PAGE_SIZE as usize)
                .map_err(|_| Errno::NoMem)?;
            bytes.extend_from_slice(io.frames.bytes(page.frame));
            if page.writers == 0 {
                gathered.pages.try_reserve(1).map_err(|_| Errno::NoMem)?;
                gathered.pages.push((index, page.mark));
            }
            gathered.next = index + 1;
            copied += 1;
        }
        // Counted as the synchronous write-back counts its requests.
        self.stats.writeback_requests += gathered.runs.len() as u64;
        self.stats.writeback_bytes += gathered
            .runs
            .iter()
            .map(|(_, bytes)| bytes.len() as u64)
            .sum::<u64>();
        Ok(Some(gathered))
    }

    /// After the pages of `written` (from [`Self::gather_dirty`] of object
    /// `id`) reached the file: each becomes clean unless it was marked
    /// dirty again or mapped writable since it was copied.
    pub fn clean_written(&mut self, id: ObjectId, written: &[(u64, u64)]) {
        let Some(obj) = self.objects.get_mut(&id) else {
            return;
        };
        for &(index, mark) in written {
            // One descent of the map per page (a look, then a removal, took two).
            if let alloc::collections::btree_map::Entry::Occupied(page) = obj.dirty.entry(index) {
                if page.get().mark == mark && page.get().writers == 0 {
                    page.remove();
                }
            }
        }
    }
}

/// How many of the next pages of `dirty` follow one another from page
/// `first` on, at most `most` (a look ahead of the gather's own walk).
fn run_length<'a>(
    dirty: impl Iterator<Item = (&'a u64, &'a crate::object::DirtyPage)>,
    first: u64,
    most: usize,
) -> usize {
    dirty
        .take(most)
        .zip(first..)
        .take_while(|((&index, _), expected)| index == *expected)
        .count()
}

fn send_run(
    pager: &mut dyn crate::hw::Pager,
    stats: &mut crate::stats::MemStats,
    file: FileId,
    first: u64,
    pages: &[&PageBytes],
) -> Result<(), Errno> {
    pager.write_run(file, first, pages).map_err(|_| Errno::Io)?;
    stats.writeback_requests += 1;
    stats.writeback_bytes += pages.len() as u64 * PAGE_SIZE;
    Ok(())
}
