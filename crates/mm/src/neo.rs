//! The NeoOS personality: `sys_mmap(fd, offset, size)` maps a file shared,
//! and `sys_munmap(addr, size)` removes exactly one such mapping in the five
//! steps of its specification.
//!
//! Decisions: `neo_mmap` reads the first page of the range at once, so an
//! unreadable file gives `Io` at mmap time (other pages are read on first
//! touch; a later read failure is a bus error). The mapping covers whole
//! pages: bytes of the last page past `size` show the file (or zeroes past
//! its end) and are accessible; access past the mapped pages faults.

use crate::errno::Errno;
use crate::hw::{
    is_page_aligned, page_ceil, AsId, FileAccess, FileId, Hw, ObjectId, Prot, PAGE_SIZE,
};
use crate::mapping::{Backing, Mapping, Origin, Sharing};
use crate::object::{ObjectKind, ObjectStore};
use crate::system::MemorySystem;
use crate::unmap::{clear_entries, restrict_entries};

/// The pages a `sys_munmap` that waits for the disk is to write first
/// ([`MemorySystem::neo_munmap_begin`]): those of `file` in
/// `[first_page, end_page)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeoUnmapWrite {
    pub file: FileId,
    pub first_page: u64,
    pub end_page: u64,
}

/// The mapping `neo_munmap` step 1 identified.
struct NeoRange {
    start: u64,
    end: u64,
    object: ObjectId,
    first_page: u64,
    end_page: u64,
}

impl MemorySystem {
    /// `sys_mmap(fd, offset, size)`: maps `size` bytes of `file` from
    /// `offset`, shared with the file, at an address chosen by the mm.
    /// `Inval`: size <= 0, negative or unaligned offset, range past the end
    /// of file, file not open. `Perm`: write-only descriptor. `NoMem`: no
    /// room. `Io`: the first page could not be read.
    pub fn neo_mmap(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        file: FileId,
        access: FileAccess,
        offset: i64,
        size: i64,
    ) -> Result<u64, Errno> {
        if size <= 0 || offset < 0 || !is_page_aligned(offset as u64) {
            return Err(Errno::Inval);
        }
        let object = self.store.file_object(file).map_err(|_| Errno::Inval)?;
        let prot = match access {
            FileAccess::WriteOnly => return Err(Errno::Perm),
            FileAccess::ReadOnly => Prot::READ,
            FileAccess::ReadWrite => Prot::READ_WRITE,
        };
        let (offset, size) = (offset as u64, size as u64);
        let end = offset.checked_add(size).ok_or(Errno::Inval)?;
        if end > self.store.file_size(file)? {
            return Err(Errno::Inval);
        }
        let len = page_ceil(size).ok_or(Errno::Inval)?;
        let space = self.spaces.space_mut(&id).ok_or(Errno::Inval)?;
        let start = space.holes.place_with_guard(len).ok_or(Errno::NoMem)?;
        let first_page = offset / PAGE_SIZE;
        self.store
            .page_frame(&mut hw.io(), object, first_page)
            .map_err(Errno::from)?;
        let mapping = Mapping {
            start,
            end: start + len,
            prot,
            max_prot: prot,
            sharing: Sharing::Shared,
            backing: self
                .store
                .map_ref(object)
                .map(|object| Backing { object, first_page }),
            origin: Origin::Neo { size },
        };
        self.insert_mapping(id, hw, mapping)?;
        Ok(start)
    }

    /// `sys_munmap(addr, size)`, in the order of its specification. On `Io`
    /// the mapping is left exactly as it was, its pages still dirty.
    pub fn neo_munmap(&mut self, id: AsId, hw: &mut Hw, addr: u64, size: i64) -> Result<(), Errno> {
        let range = self.neo_step1_find_exact_mapping(id, addr, size)?;
        self.neo_munmap_found(id, hw, range)
    }

    /// `sys_munmap` whose step 2 may wait for the disk: when the mapping
    /// shows a file for which `writes_unlocked` holds and it has dirty
    /// pages in the range, the mapping is marked as being unmapped (no
    /// other call removes, replaces, moves or reprotects it until
    /// [`Self::neo_munmap_finish`] or [`Self::neo_munmap_abandon`]), its
    /// writable entries are write-protected (a store meanwhile marks its
    /// page dirty again, as after `msync`), and the pages to write are
    /// returned: the caller writes them (in batches, without the kernel
    /// lock) and then finishes. Otherwise the whole call is made now, as
    /// [`Self::neo_munmap`] (`None`).
    pub fn neo_munmap_begin(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        addr: u64,
        size: i64,
        writes_unlocked: impl Fn(FileId) -> bool,
    ) -> Result<Option<NeoUnmapWrite>, Errno> {
        let range = self.neo_step1_find_exact_mapping(id, addr, size)?;
        let Some(file) = self.dirty_file_in(&range, writes_unlocked) else {
            self.neo_munmap_found(id, hw, range)?;
            return Ok(None);
        };
        let space = self.spaces.space_mut(&id).ok_or(Errno::Inval)?;
        space.mark_being_unmapped(range.start, range.end)?;
        if let Some(m) = space.mappings.get(&range.start) {
            let mut batch = self.store.begin_batch();
            let read_only = m.prot.without_write();
            restrict_entries(
                m,
                m.start,
                m.end,
                read_only,
                &mut self.store,
                hw.pt,
                &mut batch,
            );
            self.store.finish_batch(batch, hw.pt, hw.frames);
        }
        Ok(Some(NeoUnmapWrite {
            file,
            first_page: range.first_page,
            end_page: range.end_page,
        }))
    }

    /// Ends a [`Self::neo_munmap_begin`] whose pages were written: the
    /// mapping is no longer marked and the call is made whole, under the
    /// lock (step 2 writes only the pages stored to since they were
    /// copied, normally none). `Io` leaves the mapping as it was.
    pub fn neo_munmap_finish(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        addr: u64,
        size: i64,
    ) -> Result<(), Errno> {
        self.neo_munmap_abandon(id, addr);
        self.neo_munmap(id, hw, addr, size)
    }

    /// Ends a [`Self::neo_munmap_begin`] that failed (or whose thread is
    /// gone): the mapping stays, no longer marked, its unwritten pages
    /// dirty (its entries read-only: a store makes its page writable
    /// again, as after `msync`).
    pub fn neo_munmap_abandon(&mut self, id: AsId, addr: u64) {
        if let Some(space) = self.spaces.space_mut(&id) {
            space.unmark_being_unmapped(addr);
        }
    }

    /// The file the mapping of `range` shows, if `writes_unlocked` holds
    /// for it and its object has dirty pages in the range (looked for
    /// only then: a RAM file's munmap pays no search).
    fn dirty_file_in(
        &self,
        range: &NeoRange,
        writes_unlocked: impl Fn(FileId) -> bool,
    ) -> Option<FileId> {
        let o = self.store.get(range.object)?;
        let ObjectKind::File(f) = &o.kind else {
            return None;
        };
        if !writes_unlocked(f.file) {
            return None;
        }
        o.dirty.range(range.first_page..range.end_page).next()?;
        Some(f.file)
    }

    /// Steps 2 to 5 of [`Self::neo_munmap`] for the mapping step 1 found.
    fn neo_munmap_found(&mut self, id: AsId, hw: &mut Hw, range: NeoRange) -> Result<(), Errno> {
        neo_step2_write_dirty_pages(&mut self.store, hw, &range)?;
        neo_step3_remove_page_table_entries(self, id, hw, &range);
        let removed = self.neo_step4_free_virtual_range(id, &range);
        self.neo_step5_drop_file_reference(hw, removed);
        Ok(())
    }

    /// Step 1: `addr` and `size` must be exactly those of one earlier
    /// `neo_mmap` (the very size it was given); no partial unmapping.
    fn neo_step1_find_exact_mapping(
        &self,
        id: AsId,
        addr: u64,
        size: i64,
    ) -> Result<NeoRange, Errno> {
        if size <= 0 || !is_page_aligned(addr) {
            return Err(Errno::Inval);
        }
        let len = page_ceil(size as u64).ok_or(Errno::Inval)?;
        let space = self.spaces.space(&id).ok_or(Errno::Inval)?;
        let m = space.mappings.get(&addr).ok_or(Errno::Inval)?;
        // A POSIX call may have split the mapping: then it is no longer whole.
        if m.origin != (Origin::Neo { size: size as u64 }) || m.len() != len {
            return Err(Errno::Inval);
        }
        space.check_not_being_unmapped(m.start, m.end)?;
        let (object, first_page, end_page) = m.object_pages(m.start, m.end).ok_or(Errno::Inval)?;
        Ok(NeoRange {
            start: m.start,
            end: m.end,
            object,
            first_page,
            end_page,
        })
    }

    /// Step 4: the virtual range returns to the hole index.
    fn neo_step4_free_virtual_range(&mut self, id: AsId, range: &NeoRange) -> Option<Mapping> {
        self.spaces.space_mut(&id)?.remove(range.start)
    }

    /// Step 5: the mapping's reference to the file object goes (the
    /// descriptor's own reference is untouched).
    fn neo_step5_drop_file_reference(&mut self, hw: &mut Hw, removed: Option<Mapping>) {
        let Some(backing) = removed.and_then(|m| m.backing) else {
            return;
        };
        let mut frees = alloc::vec::Vec::new();
        self.store
            .drop_map_ref(&mut hw.io(), backing.object, &mut frees);
        crate::tlb::free_frames(&mut frees, hw.frames, self.store.frames_in_use.get_mut());
    }
}

/// Step 2: pending changes (the dirty pages of the range: every page with
/// a writable entry is among them since its write fault) go to the file
/// synchronously, one pager request per contiguous run of dirty pages.
fn neo_step2_write_dirty_pages(
    store: &mut ObjectStore,
    hw: &mut Hw,
    range: &NeoRange,
) -> Result<(), Errno> {
    store.write_back(&mut hw.io(), range.object, range.first_page, range.end_page)
}

/// Step 3: the range's page-table entries go, with one batched flush.
fn neo_step3_remove_page_table_entries(
    sys: &mut MemorySystem,
    id: AsId,
    hw: &mut Hw,
    range: &NeoRange,
) {
    let Some(space) = sys.spaces.space(&id) else {
        return;
    };
    let Some(m) = space.mappings.get(&range.start) else {
        return;
    };
    let mut batch = sys.store.begin_batch();
    clear_entries(m, range.start, range.end, &mut sys.store, hw.pt, &mut batch);
    sys.store.finish_batch(batch, hw.pt, hw.frames);
    let Some(obj) = sys.store.get_mut(range.object) else {
        return;
    };
    if obj.map_refs() == 1 {
        // This mapping is the object's only one: with its entries gone no
        // entry maps a page of the range writable, so every page step 2
        // wrote is clean, without looking each one up.
        let count = obj.dirty.range(range.first_page..range.end_page).count();
        obj.clean_range(range.first_page, range.end_page, count);
    } else {
        obj.clean_unwritable(range.first_page, range.end_page);
    }
}
