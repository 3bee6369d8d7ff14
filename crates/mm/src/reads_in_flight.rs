//! Reads of file pages that run without the kernel lock: a page fault that
//! misses a page of a disk file ([`crate::Pager::evictable`]) does not read
//! it there and then; it *plans* a read of the page (and, after a
//! sequential miss, of the absent pages after it, [`READ_AHEAD_PAGES`] in
//! all), marks those pages "being read" in their object
//! ([`crate::object::MemoryObject::reading`]) and fails with
//! [`FaultError::WaitForRead`]. The caller takes the plan
//! ([`MemorySystem::take_planned_read`]), reads the pages without the lock,
//! and hands the bytes back ([`MemorySystem::finish_read`]) under it; the
//! faulting thread then faults again from scratch (the mapping may have
//! changed meanwhile). A fault on a page being read fails with the same
//! read's number: its thread waits for that read too.
//!
//! Nothing is held for the reader: the frames are taken when the read is
//! finished, so a reader that goes away (killed, its process ended) leaves
//! nothing behind. A page whose mark is gone when the read finishes (the
//! file truncated there meanwhile, the object gone) is not installed, nor
//! one cached meanwhile by another way (a `write`, which reads the page
//! under the lock as before): the cached page wins.

use crate::errno::FaultError;
use crate::hw::{AsId, FileId, Hw, Io, ObjectId, PAGE_SIZE};
use crate::object::{CachePage, FileState, ObjectStore};
use crate::read_ahead::READ_AHEAD_PAGES;
use crate::system::MemorySystem;
use crate::Access;

/// A read of a run of pages of one file, planned by a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedRead {
    /// The read's number (never reused).
    pub read: u64,
    /// The file object the pages go to.
    pub object: ObjectId,
    pub file: FileId,
    /// The run: pages `first..first + count` of the file.
    pub first: u64,
    pub count: u64,
}

/// The store's part: whether faults defer their reads now, the read the
/// last one planned, and the last read number given.
#[derive(Debug, Default)]
pub(crate) struct DeferredReads {
    pub(crate) defer: bool,
    planned: Option<PlannedRead>,
    last: u64,
    /// The read the last `WaitForRead` was for.
    pub(crate) waited: u64,
}

impl ObjectStore {
    /// On a miss of page `index` of file object `id` while faults defer
    /// their reads: the number of the read the page waits for (one under
    /// way, or one planned now), or `None` when the page is not read from
    /// a disk (a RAM file, a page past the stored end: the caller goes on
    /// as before).
    pub(crate) fn defer_read(
        &mut self,
        io: &mut Io,
        id: ObjectId,
        f: FileState,
        index: u64,
    ) -> Option<u64> {
        if !io.pager.evictable(f.file) {
            return None;
        }
        let obj = self.objects.get_mut(&id)?;
        if let Some(&read) = obj.reading.get(&index) {
            return Some(read);
        }
        let stored_pages = f.stored_size.min(f.size).div_ceil(PAGE_SIZE);
        if index >= stored_pages || self.reads.planned.is_some() {
            return None;
        }
        let sequential = index > 0 && obj.pages.get_mut().contains_key(&(index - 1));
        let most = if sequential { READ_AHEAD_PAGES } else { 1 };
        let mut count = 1;
        while count < most
            && index + count < stored_pages
            && !obj.pages.get_mut().contains_key(&(index + count))
            && !obj.reading.contains_key(&(index + count))
        {
            count += 1;
        }
        self.plan_run(id, f.file, index, count)
    }

    /// Plans a read of pages `first..first + count` of file object `id`
    /// (absent, not being read), marking them: its number.
    fn plan_run(&mut self, id: ObjectId, file: FileId, first: u64, count: u64) -> Option<u64> {
        let obj = self.objects.get_mut(&id)?;
        self.reads.last += 1;
        let read = self.reads.last;
        for page in first..first + count {
            obj.reading.insert(page, read);
        }
        self.reads.planned = Some(PlannedRead {
            read,
            object: id,
            file,
            first,
            count,
        });
        Some(read)
    }

    /// For a `read` of pages `first..end` of `file`: plans a read of the
    /// first run of absent pages not being read (up to
    /// [`READ_AHEAD_PAGES`], within the range and the stored end), and
    /// gives the number of a read a page of the range waits for; `None`
    /// when every page of the range that comes from a disk is cached (the
    /// `read` then copies without reading). Called again after the plan is
    /// taken, it plans the next run.
    pub(crate) fn plan_range_read(
        &mut self,
        io: &mut Io,
        file: FileId,
        first: u64,
        end: u64,
    ) -> Result<Option<u64>, crate::Errno> {
        let id = self.file_object(file)?;
        let Some(obj) = self.objects.get(&id) else {
            return Ok(None);
        };
        let Some(f) = obj.file().copied() else {
            return Ok(None);
        };
        if !io.pager.evictable(f.file) {
            return Ok(None);
        }
        let end = end.min(f.stored_size.min(f.size).div_ceil(PAGE_SIZE));
        let mut waits = None;
        let mut run: Option<(u64, u64)> = None;
        for index in first..end {
            if obj.pages.lock().contains_key(&index) {
                if run.is_some() {
                    break;
                }
                continue;
            }
            if let Some(&read) = obj.reading.get(&index) {
                waits.get_or_insert(read);
                if run.is_some() {
                    break;
                }
                continue;
            }
            match &mut run {
                Some((_, count)) if *count < READ_AHEAD_PAGES => *count += 1,
                Some(_) => break,
                None if self.reads.planned.is_none() => run = Some((index, 1)),
                None => {}
            }
        }
        if let Some((at, count)) = run {
            let planned = self.plan_run(id, f.file, at, count);
            waits = waits.or(planned);
        }
        Ok(waits)
    }

    /// Ends read `r`: with `data` (its pages' bytes, whole pages) the
    /// pages still marked for it and not cached meanwhile are cached
    /// (referenced, as read-ahead's); without (the read failed) only the
    /// marks go. `NoMem` when a page found no frame (the others are
    /// cached; it is read again by its next fault).
    fn finish_read(&mut self, io: &mut Io, r: &PlannedRead, data: Option<&[u8]>) -> bool {
        let mut all = true;
        for i in 0..r.count {
            let index = r.first + i;
            let Some(obj) = self.objects.get_mut(&r.object) else {
                return all;
            };
            if obj.reading.get(&index) != Some(&r.read) {
                continue;
            }
            obj.reading.remove(&index);
            let (Some(data), Some(f)) = (data, obj.file().copied()) else {
                continue;
            };
            let at = (i * PAGE_SIZE) as usize;
            let offset = index * PAGE_SIZE;
            if obj.pages.get_mut().contains_key(&index) || offset >= f.size {
                continue;
            }
            let Some(bytes) = data.get(at..at + PAGE_SIZE as usize) else {
                continue;
            };
            let Ok(frame) = self.alloc_frame(io.frames) else {
                all = false;
                continue;
            };
            let page = io.frames.bytes_mut(frame);
            page.copy_from_slice(bytes);
            // Bytes past the end of the file read as zero.
            let valid = f.size - offset;
            if valid < PAGE_SIZE {
                page[valid as usize..].fill(0);
            }
            let mut cached = CachePage::new(frame);
            cached.referenced = true;
            match self.objects.get_mut(&r.object) {
                Some(obj) => {
                    obj.pages.get_mut().insert(index, cached);
                }
                None => self.free_frame_now(io.frames, frame),
            }
        }
        all
    }
}

impl MemorySystem {
    /// [`MemorySystem::handle_fault`], except that a miss of a page of a
    /// disk file is not read here: `WaitForRead` (see the module comment);
    /// and, when copies are deferred ([`Self::set_copies_deferred`]), a
    /// copy-on-write copy is not made here: `WaitForCopy`
    /// (`deferred_copies.rs`).
    #[inline]
    pub fn handle_fault_deferring_reads(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        addr: u64,
        access: Access,
    ) -> Result<(), FaultError> {
        self.store.reads.defer = true;
        let result = self.handle_fault(id, hw, addr, access);
        self.store.reads.defer = false;
        result
    }

    /// [`Self::handle_fault_deferring_reads`] out of line and with copies
    /// made at once, for the fault again after a wait for its read or its
    /// copy (off the hot path): the first attempt's caller, the kernel's
    /// fault entry, stays the only one that inlines the fault path (with
    /// two, the compiler inlines it into neither). Never `WaitForCopy`, so
    /// a fault waits for one copy at most.
    #[inline(never)]
    pub fn handle_fault_deferring_reads_again(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        addr: u64,
        access: Access,
    ) -> Result<(), FaultError> {
        self.store.reads.defer = true;
        self.store.copies.again = true;
        let result = self.handle_fault(id, hw, addr, access);
        self.store.reads.defer = false;
        self.store.copies.again = false;
        result
    }

    /// For a `read` of `len` bytes of `file` from `offset` (a range of at
    /// most [`READ_AHEAD_PAGES`] pages is meant): a read to wait for
    /// before copying, planned now ([`Self::take_planned_read`]) or under
    /// way; `None` when the range's disk pages are cached.
    pub fn file_plan_read(
        &mut self,
        io: &mut Io,
        file: FileId,
        offset: u64,
        len: u64,
    ) -> Result<Option<u64>, crate::Errno> {
        let first = offset / PAGE_SIZE;
        let end = offset.saturating_add(len).div_ceil(PAGE_SIZE);
        self.store.plan_range_read(io, file, first, end)
    }

    /// The number of the read the last fault that ended in `WaitForRead`
    /// waits for.
    pub fn read_waited_for(&self) -> u64 {
        self.store.reads.waited
    }

    /// The read the last fault or `read` planned, if it planned one (once).
    pub fn take_planned_read(&mut self) -> Option<PlannedRead> {
        self.store.reads.planned.take()
    }

    /// Ends the planned read `read` with its pages' bytes (`Some`, whole
    /// pages from `read.first`) or its failure (`None`): the first caches
    /// its pages, the second only drops their marks. `Err(NoMem)` when a
    /// page found no frame.
    pub fn finish_read(
        &mut self,
        io: &mut Io,
        read: &PlannedRead,
        data: Option<&[u8]>,
    ) -> Result<(), FaultError> {
        match self.store.finish_read(io, read, data) {
            true => Ok(()),
            false => Err(FaultError::NoMem),
        }
    }
}
