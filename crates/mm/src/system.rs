//! The one object the kernel holds (behind its lock): every address space by
//! id and the object store. Address-space life cycle (create, fork,
//! teardown), page faults and the file calls live here; the personalities
//! add their calls in their own modules.

use crate::address_space::AddressSpace;
use crate::errno::{Errno, FaultError};
use crate::fault::{fault_page, zero_fill_hinted, zero_fill_private};
use crate::hw::{page_floor, Access, AsId, FileId, Hw, Io, ObjectId};
use crate::mapping::{Backing, Mapping, MappingSummary, Sharing};
use crate::object::{ObjectKind, ObjectStore};
use crate::stats::MemStats;
use crate::tlb::TlbBatch;
use crate::unmap::remove_range;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use neoos_abi::layout::{USER_BASE, USER_END};

/// All address spaces and memory objects of the system.
#[derive(Default)]
pub struct MemorySystem {
    /// Every address space by id (a lookup is an index: every fault and
    /// mapping call looks its space up).
    pub(crate) spaces: crate::slots::SpaceTable,
    pub(crate) store: ObjectStore,
}

impl MemorySystem {
    /// An empty system.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new, empty address space.
    pub fn create_address_space(&mut self) -> AsId {
        self.spaces.insert(spin::RwLock::new(AddressSpace::new()))
    }

    /// An address space, for inspection.
    pub fn address_space(
        &self,
        id: AsId,
    ) -> Option<impl core::ops::Deref<Target = AddressSpace> + '_> {
        self.spaces.space(&id)
    }

    /// Removes every mapping of `id` and the address space itself (process
    /// exit). Dirty pages of shared file mappings are written back first
    /// (failures leave them dirty in the cache); every frame and reference
    /// the space held is released. `hw.pt` may be discarded afterwards.
    pub fn destroy_address_space(&mut self, id: AsId, hw: &mut Hw) -> Result<(), Errno> {
        let result = self.remove_writing_back(id, hw, USER_END)?;
        self.spaces.remove(&id);
        result
    }

    /// Removes the lowest `count` mappings of space `id` as
    /// [`Self::destroy_address_space`] removes them all: process exit in
    /// bounded steps, other processes running between them. `true` once no
    /// mapping is left. A failed write-back leaves the pages dirty in the
    /// cache; an exit has no one to report it to.
    pub fn unmap_lowest(&mut self, id: AsId, hw: &mut Hw, count: usize) -> Result<bool, Errno> {
        let space = self.spaces.space_mut(&id).ok_or(Errno::Inval)?;
        // Walked from the front: `next_back` on `take` would walk from the
        // far end of the whole map.
        let lowest = space.mappings.values().take(count);
        let Some(end) = lowest.fold(None, |_, m| Some(m.end)) else {
            return Ok(true);
        };
        let _ = self.remove_writing_back(id, hw, end)?;
        Ok(self.spaces.space(&id).is_none_or(|s| s.mappings.is_empty()))
    }

    /// Removes the mappings of space `id` below `end` (each wholly: `end`
    /// is a mapping's end or the end of user space); the outer result is
    /// whether the space exists, the inner one the write-back of its shared
    /// file mappings' dirty pages.
    fn remove_writing_back(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        end: u64,
    ) -> Result<Result<(), Errno>, Errno> {
        let space = self.spaces.space_mut(&id).ok_or(Errno::Inval)?;
        let shared_file_ranges: Vec<_> = space
            .mappings
            .range(..end)
            .map(|(_, m)| m)
            .filter(|m| m.sharing == Sharing::Shared)
            .filter_map(|m| m.object_pages(m.start, m.end))
            .collect();
        // Removing the entries collects their hardware dirty bits; an object
        // whose last reference goes is written back as it is released.
        remove_range(space, &mut self.store, hw, USER_BASE, end);
        // Objects still referenced elsewhere (an open descriptor, another
        // process) get this space's dirty pages written now, once; those of
        // a disk file only when keeping is off (else they stay dirty in the
        // living object, for its holder or the kernel's flusher to write:
        // `kept_files.rs`).
        let mut result = Ok(());
        for (object, first, end) in shared_file_ranges {
            if self.store.writes_later(&hw.io(), object) {
                continue;
            }
            let written = self.store.write_back(&mut hw.io(), object, first, end);
            result = result.and(written);
        }
        Ok(result)
    }

    /// A copy of `parent` for a child process: shared mappings stay shared,
    /// private ones become copy-on-write: each private object's pages move
    /// into a hidden object below it, under the parent's object and a new
    /// one for the child (see `shadow.rs`); the parent's entries lose write
    /// permission. The child's page table starts empty; its pages fault in.
    pub fn fork(&mut self, parent: AsId, hw: &mut Hw) -> Result<AsId, Errno> {
        let space = self.spaces.space_mut(&parent).ok_or(Errno::Inval)?;
        let mut child = AddressSpace::new();
        child.holes = space.holes.clone();
        child.program_break = space.program_break;
        // Each private object forks once, however many mappings show it.
        let mut forked: BTreeMap<ObjectId, Option<ObjectId>> = BTreeMap::new();
        let mut batch = self.store.begin_batch();
        for m in space.mappings.values() {
            let object = match (&m.backing, m.sharing) {
                (None, _) => None,
                (Some(b), Sharing::Shared) => Some(self.store.share(&b.object)),
                (Some(b), Sharing::Private) => {
                    let top = b.object.id();
                    let theirs = *forked
                        .entry(top)
                        .or_insert_with(|| self.store.fork_private(top));
                    write_protect_shown(m, &self.store, hw, &mut batch);
                    theirs.and_then(|c| self.store.map_ref(c))
                }
            };
            let backing = m.backing.as_ref().zip(object).map(|(b, object)| Backing {
                object,
                first_page: b.first_page,
            });
            child.mappings.insert(Mapping { backing, ..*m });
        }
        self.store.finish_batch(batch, hw.pt, hw.frames);
        if let Some(space) = self.spaces.space_mut(&parent) {
            space.mappings.forget_fault_hint();
        }
        Ok(self.spaces.insert(spin::RwLock::new(child)))
    }

    /// Adds `mapping` to space `id`; when the range is not free (`NoMem`),
    /// its object reference is given back.
    pub(crate) fn insert_mapping(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        mapping: Mapping,
    ) -> Result<(), Errno> {
        let refused = match self.spaces.space_mut(&id) {
            Some(space) => space.insert(mapping),
            None => Err(mapping),
        };
        let Err(refused) = refused else {
            return Ok(());
        };
        self.store.give_back_refused(hw, refused);
        Err(if self.spaces.contains_key(&id) {
            Errno::NoMem
        } else {
            Errno::Inval
        })
    }

    /// Resolves a page fault at `addr` for `access` (inlined into the
    /// kernel's fault glue: the first touch inside the fault hint runs with
    /// no call of its own).
    #[inline]
    pub fn handle_fault(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        addr: u64,
        access: Access,
    ) -> Result<(), FaultError> {
        self.fault_in(id, hw, addr, access, false).map(|_| ())
    }

    /// Faults in the page at `addr` and returns its frame; `force` ignores
    /// the mapping's protection (kernel writes).
    #[inline]
    pub(crate) fn fault_in(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        addr: u64,
        access: Access,
        force: bool,
    ) -> Result<crate::hw::Frame, FaultError> {
        let space = self.spaces.space_mut(&id).ok_or(FaultError::NotMapped)?;
        let va = page_floor(addr);
        if let Some(hint) = space.mappings.fault_hint().filter(|_| !force) {
            if let Some(frame) = zero_fill_hinted(hint, &mut self.store, hw, va, access)? {
                *self.store.faults.get_mut() += 1;
                return Ok(frame);
            }
        }
        self.fault_in_searched(id, hw, addr, access, force)
    }

    /// [`Self::fault_in`] past the fault hint: the mapping is searched.
    /// Out of line, so the hinted path carries none of its code.
    #[inline(never)]
    fn fault_in_searched(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        addr: u64,
        access: Access,
        force: bool,
    ) -> Result<crate::hw::Frame, FaultError> {
        let space = self.spaces.space_mut(&id).ok_or(FaultError::NotMapped)?;
        let va = page_floor(addr);
        // Writable access to the mapping drops the hint; a fault resolved
        // in it sets it again.
        let m = space.mapping_at_mut(addr).ok_or(FaultError::NotMapped)?;
        let start = m.start;
        let zero_filled = match force {
            true => None,
            false => zero_fill_private(m, &mut self.store, hw, va, access)?,
        };
        let result = match zero_filled {
            Some(frame) => Ok(frame),
            None => {
                let mut batch = self.store.begin_batch();
                let result = fault_page(m, &mut self.store, hw, &mut batch, va, access, force);
                self.store.finish_batch(batch, hw.pt, hw.frames);
                result
            }
        };
        if result.is_ok() {
            *self.store.faults.get_mut() += 1;
            space.mappings.set_fault_hint(start);
        }
        result
    }

    /// The object and byte offset of the word at `addr` of space `id` when
    /// a shared mapping shows it (a process-shared futex's key: the same
    /// word for every process that maps it, wherever); `None` elsewhere.
    pub fn shared_word(&self, id: AsId, addr: u64) -> Option<(ObjectId, u64)> {
        let space = self.spaces.space(&id)?;
        let m = space.mapping_at(addr)?;
        if m.sharing != Sharing::Shared {
            return None;
        }
        let (object, index) = m.object_page(addr)?;
        Some((
            object,
            index * crate::hw::PAGE_SIZE + addr % crate::hw::PAGE_SIZE,
        ))
    }

    /// The counters.
    pub fn stats(&self) -> MemStats {
        self.store.stats()
    }

    /// How many file objects have gone so far ([`MemStats::files_released`]):
    /// unchanged, no file lost its last reference.
    pub fn files_released(&self) -> u64 {
        self.store.stats.files_released
    }

    /// Number of address spaces.
    pub fn address_space_count(&self) -> usize {
        self.spaces.len()
    }

    /// Number of live memory objects (files, anonymous, segments), the
    /// spare ones made ahead for shared `mmap`s aside.
    pub fn object_count(&self) -> usize {
        self.store.objects.len() - self.store.spare_objects.lock().len()
    }

    /// The mapping of `id` containing `addr`.
    pub fn mapping_at(&self, id: AsId, addr: u64) -> Option<MappingSummary> {
        let space = self.spaces.space(&id)?;
        let m = space.mapping_at(addr)?;
        Some(MappingSummary {
            start: m.start,
            end: m.end,
            prot: m.prot,
            sharing: m.sharing,
        })
    }

    /// Whether a change to `[start, start + len)` (munmap, mprotect) would cut
    /// a mapping in two places or one, i.e. add mapping records. `len` is
    /// rounded up to whole pages as those calls do, so a whole mapping given
    /// with a shorter length is not cut.
    pub fn would_split(&self, id: AsId, start: u64, len: u64) -> bool {
        let end = start.saturating_add(crate::hw::page_ceil(len).unwrap_or(u64::MAX));
        let cuts = |addr: u64| {
            self.mapping_at(id, addr)
                .is_some_and(|m| m.start < addr && addr < m.end)
        };
        cuts(start) || cuts(end)
    }

    /// An upper bound of the heap bytes [`MemorySystem::fork`] of `id`
    /// allocates (the child's mapping and hole records, the hidden and child
    /// objects of each private mapping, node overhead included). The
    /// kernel refuses a fork whose bound it cannot afford: those records go
    /// into ordered maps, whose inserts cannot report a failed allocation.
    pub fn fork_metadata_bytes(&self, id: AsId) -> usize {
        use core::mem::size_of;
        let Some(space) = self.spaces.space(&id) else {
            return 0;
        };
        let u64s = size_of::<u64>();
        let private = space
            .mappings
            .values()
            .filter(|m| m.sharing == Sharing::Private)
            .count();
        btree_bytes_bound(space.mappings.len(), u64s, size_of::<Mapping>())
            + btree_bytes_bound(space.holes.len(), u64s, u64s)
            + btree_bytes_bound(space.holes.len(), 2 * u64s, 0)
            // Two objects (hidden and child) per private object, and the
            // list of private objects already forked.
            + self.store.objects.growth_bytes_bound(2 * private)
            + btree_bytes_bound(private, u64s, 2 * u64s)
    }

    // ---- files (the kernel's descriptors and read/write/fsync) ----

    /// A descriptor to `file` (of `size` bytes on disk) was opened.
    pub fn file_open_ref(&mut self, file: FileId, size: u64) {
        self.store.file_open_ref(file, size);
    }

    /// A descriptor to `file` was closed. The cache persists while mapped;
    /// with the last reference it writes its dirty pages and goes (`Io` if
    /// that writeback fails: the pages are freed all the same, since nothing
    /// could write them later either).
    pub fn file_close_ref(&mut self, io: &mut Io, file: FileId) -> Result<(), Errno> {
        let id = self.store.file_object(file).map_err(|_| Errno::Inval)?;
        if self.store.get(id).is_some_and(|o| o.handle_refs == 0) {
            return Err(Errno::Inval);
        }
        self.store.drop_handle_ref(io, id)
    }

    /// Whether closing one descriptor of `file` would drop the last
    /// reference to its object while it has dirty pages: that close
    /// writes them back ([`Self::file_close_ref`]).
    pub fn file_close_writes(&self, file: FileId) -> bool {
        let Some(o) = self.store.cached_file(file) else {
            return false;
        };
        let kept = o.file().is_some_and(|f| f.kept);
        o.handle_refs == 1 + u32::from(kept)
            && o.map_refs() == 0
            && o.children.iter().all(Option::is_none)
            && !o.dirty.is_empty()
    }

    /// Reads from the page cache.
    pub fn file_read(
        &mut self,
        io: &mut Io,
        file: FileId,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, Errno> {
        self.store.file_read(io, file, offset, buf)
    }

    /// Writes into the page cache (grows the file, marks pages dirty).
    pub fn file_write(
        &mut self,
        io: &mut Io,
        file: FileId,
        offset: u64,
        buf: &[u8],
    ) -> Result<usize, Errno> {
        self.store.file_write(io, file, offset, buf)
    }

    /// Current size of a cached file.
    pub fn file_size(&self, file: FileId) -> Result<u64, Errno> {
        self.store.file_size(file)
    }

    /// Truncates or extends; `Busy` when shrinking a mapped file.
    pub fn file_truncate(&mut self, io: &mut Io, file: FileId, size: u64) -> Result<(), Errno> {
        self.store.file_truncate(io, file, size)
    }

    /// Writes back every dirty page of the file.
    pub fn file_sync(&mut self, io: &mut Io, file: FileId) -> Result<(), Errno> {
        self.store.file_sync(io, file)
    }

    /// [`ObjectStore::gather_dirty`] of the file's object, its pages
    /// `[first, end)` (`None` as well when the file has no object).
    pub fn file_gather_dirty(
        &mut self,
        io: &mut Io,
        file: FileId,
        (first, end): (u64, u64),
        most_runs: usize,
        most_pages: usize,
    ) -> Result<Option<crate::page_cache::GatheredRuns>, Errno> {
        let Ok(id) = self.store.file_object(file) else {
            return Ok(None);
        };
        self.store
            .gather_dirty(io, id, first, end, most_runs, most_pages)
    }

    /// [`ObjectStore::clean_written`].
    pub fn clean_written(&mut self, gathered: &crate::page_cache::GatheredRuns) {
        self.store.clean_written(gathered.object, &gathered.pages);
    }

    /// The first file in id order after `after` (from the start for
    /// `None`) that has an object in the page cache, with its object: a
    /// walk over the cached files that needs no allocation (the flusher's).
    pub fn next_cached_file(&self, after: Option<FileId>) -> Option<(FileId, ObjectId)> {
        use core::ops::Bound;
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let (&file, &object) = self.store.files.range((from, Bound::Unbounded)).next()?;
        Some((file, object))
    }

    /// Whether object `id` still exists (ids are never reused: a slot's
    /// generation is part of its id).
    pub fn object_exists(&self, id: ObjectId) -> bool {
        self.store.get(id).is_some()
    }

    /// Whether `file` is cached with dirty pages.
    pub fn file_has_dirty(&self, file: FileId) -> bool {
        self.store
            .cached_file(file)
            .is_some_and(|o| !o.dirty.is_empty())
    }

    /// Whether page `index` of `file` would be read from the pager by a
    /// `write` into part of it: the file is cached, the page is not, and
    /// it lies below the stored end (pages past it read as zeros).
    pub fn file_page_to_read(&self, file: FileId, index: u64) -> bool {
        let Some(o) = self.store.cached_file(file) else {
            return false;
        };
        let Some(f) = o.file() else {
            return false;
        };
        !o.pages.lock().contains_key(&index)
            && index < f.stored_size.min(f.size).div_ceil(crate::hw::PAGE_SIZE)
    }

    /// Whether a page of the file is resident and dirty (introspection).
    pub fn file_page_dirty(&self, file: FileId, index: u64) -> Option<bool> {
        let id = self.store.file_object(file).ok()?;
        let obj = self.store.get(id)?;
        debug_assert!(matches!(obj.kind, ObjectKind::File(_)));
        obj.pages.lock().get(&index).map(|_| obj.is_dirty(index))
    }
}

/// An upper bound of the heap bytes an ordered map of `n` entries holds
/// (keys of `key` bytes, values of `value` bytes): the standard library's
/// B-tree nodes hold up to 11 entries and, but for the root, at least 5;
/// inner nodes add 12 child pointers; every node has a parent pointer and
/// two counters.
pub(crate) fn btree_bytes_bound(n: usize, key: usize, value: usize) -> usize {
    const CAPACITY: usize = 11;
    const MIN_FILL: usize = 5;
    if n == 0 {
        return 0;
    }
    let leaf = CAPACITY * (key + value) + 2 * core::mem::size_of::<usize>();
    let inner = leaf + (CAPACITY + 1) * core::mem::size_of::<usize>();
    let leaves = n / MIN_FILL + 1;
    // Each inner level has at most a sixth of the nodes below it, plus one.
    let inners = leaves / 4 + 8;
    leaves * leaf + if n > CAPACITY { inners * inner } else { 0 }
}

/// Takes write permission from the entries of `m` (a private mapping just
/// forked) showing pages its hidden object now holds.
fn write_protect_shown(m: &Mapping, store: &ObjectStore, hw: &mut Hw, batch: &mut TlbBatch) {
    let Some((top, first, end)) = m.object_pages(m.start, m.end) else {
        return;
    };
    let Some(hidden) = store.below_of(top).map(|(h, _)| h) else {
        return;
    };
    let Some(obj) = store.get(hidden) else {
        return;
    };
    for (index, _) in obj.pages.lock().range(first..end) {
        let va = m.va_of_object_page(index);
        if hw.pt.query(va).is_some_and(|p| p.prot.write) {
            hw.pt.protect(va, m.prot.without_write());
            batch.invalidate(va);
        }
    }
}
