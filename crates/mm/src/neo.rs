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
use crate::object::ObjectStore;
use crate::system::MemorySystem;
use crate::unmap::clear_entries;

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
        let space = self.spaces.get_mut(&id).ok_or(Errno::Inval)?;
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
        let space = self.spaces.get(&id).ok_or(Errno::Inval)?;
        let m = space.mappings.get(&addr).ok_or(Errno::Inval)?;
        // A POSIX call may have split the mapping: then it is no longer whole.
        if m.origin != (Origin::Neo { size: size as u64 }) || m.len() != len {
            return Err(Errno::Inval);
        }
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
        self.spaces.get_mut(&id)?.remove(range.start)
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
        crate::tlb::free_frames(&mut frees, hw.frames, &mut self.store.stats);
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
    let Some(space) = sys.spaces.get(&id) else {
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
    if obj.map_refs == 1 {
        // This mapping is the object's only one: with its entries gone no
        // entry maps a page of the range writable, so every page step 2
        // wrote is clean, without looking each one up.
        let count = obj.dirty.range(range.first_page..range.end_page).count();
        obj.clean_range(range.first_page, range.end_page, count);
    } else {
        obj.clean_unwritable(range.first_page, range.end_page);
    }
}
