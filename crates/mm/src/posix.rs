//! The POSIX/BSD personality: `mmap` (shared/private, anonymous/file,
//! MAP_FIXED), `munmap` of any page range (splitting mappings), `msync`,
//! `mprotect`, `madvise`, `mincore` and `getpagesize`.
//!
//! Decisions: `mmap` with a hint uses it when the range is free, else places
//! like no hint. `MAP_FIXED` outside the user range is `Inval` (as
//! FreeBSD's mmap(2) says; Linux answers `ENOMEM`).
//! `mprotect`, `madvise`, `msync` and `mincore` over a range with holes fail
//! with `NoMem` before doing anything. `MS_ASYNC` only records dirty state
//! (writeback happens at `MS_SYNC`, fsync, last close or teardown);
//! `MS_INVALIDATE` has nothing to do since the page cache is the only copy.
//! `MADV_WILLNEED` prefaults file-backed pages (read access) and ignores
//! anonymous memory.

use crate::address_space::AddressSpace;
use crate::errno::Errno;
use crate::hw::{
    is_page_aligned, page_ceil, Access, AsId, FileAccess, FileId, Hw, Prot, PAGE_SIZE,
};
use crate::mapping::{Backing, Mapping, Origin, Sharing};
use crate::object::{ObjectKind, ObjectStore};
use crate::system::MemorySystem;
use crate::unmap::{clear_entries, drop_private_pages, remove_range, restrict_entries, split_at};
use neoos_abi::layout::{USER_BASE, USER_END};
use neoos_abi::mman;

/// The page size (`getpagesize`).
pub fn getpagesize() -> usize {
    neoos_abi::PAGE_SIZE
}

/// `[addr, addr + round_up(len))` if `addr` is aligned, `len` is not zero
/// (nor negative as `i64`) and nothing overflows; else `Inval`.
pub(crate) fn checked_range(addr: u64, len: u64) -> Result<(u64, u64), Errno> {
    if !is_page_aligned(addr) || len == 0 || (len as i64) < 0 {
        return Err(Errno::Inval);
    }
    let len = page_ceil(len).ok_or(Errno::Inval)?;
    let end = addr.checked_add(len).ok_or(Errno::Inval)?;
    Ok((addr, end))
}

/// The range asked of msync/mprotect/madvise/mincore: `None` for an
/// empty request (it succeeds at once); `Inval` for an unaligned `addr`,
/// a negative `len` or overflow.
fn requested_range(addr: u64, len: u64) -> Result<Option<(u64, u64)>, Errno> {
    if !is_page_aligned(addr) || (len as i64) < 0 {
        return Err(Errno::Inval);
    }
    if len == 0 {
        return Ok(None);
    }
    checked_range(addr, len).map(Some)
}

/// The mapping containing `start` if `[start, end)` lies in the user
/// range and is mapped without holes; else `NoMem`.
fn first_of_mapped(space: &AddressSpace, start: u64, end: u64) -> Result<&Mapping, Errno> {
    if start < USER_BASE || end > USER_END {
        return Err(Errno::NoMem);
    }
    space.first_of_fully_mapped(start, end).ok_or(Errno::NoMem)
}

/// msync of `[from, to)`, inside mapping `m`: write-protects our writable
/// entries there (so later stores dirty again), then writes the dirty
/// pages back if `sync`. Notes the file in `files` if it had any.
fn msync_part(
    m: &Mapping,
    from: u64,
    to: u64,
    sync: bool,
    store: &mut ObjectStore,
    hw: &mut Hw,
    files: &mut DirtyFiles,
) -> Result<(), Errno> {
    if m.sharing != Sharing::Shared {
        return Ok(());
    }
    let Some((object, first, last)) = m.object_pages(from, to) else {
        return Ok(());
    };
    // Every page with a writable entry is in the dirty set: with no
    // dirty page in the range there is nothing to protect or write.
    let dirty_file = match store.get(object) {
        Some(o) if o.dirty.range(first..last).next().is_some() => match o.kind {
            ObjectKind::File(f) => Some(f.file),
            _ => None,
        },
        _ => None,
    };
    let Some(file) = dirty_file else {
        return Ok(());
    };
    files.note(file);
    let mut batch = store.begin_batch();
    restrict_entries(
        m,
        from,
        to,
        m.prot.without_write(),
        store,
        hw.pt,
        &mut batch,
    );
    store.finish_batch(batch, hw.pt, hw.frames);
    if !sync {
        return Ok(());
    }
    store.write_back(&mut hw.io(), object, first, last)
}

/// The files (at most [`DirtyFiles::CAPACITY`], a file shown twice
/// listed twice) whose shared mappings held dirty pages in an `msync`
/// range; no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirtyFiles {
    files: [FileId; DirtyFiles::CAPACITY],
    len: usize,
}

impl Default for DirtyFiles {
    fn default() -> Self {
        DirtyFiles {
            files: [FileId(0); DirtyFiles::CAPACITY],
            len: 0,
        }
    }
}

impl DirtyFiles {
    /// Files kept; more are not noted.
    pub const CAPACITY: usize = 16;

    /// Notes `file` (not noted once [`Self::CAPACITY`] are).
    pub fn note(&mut self, file: FileId) {
        if let Some(slot) = self.files.get_mut(self.len) {
            *slot = file;
            self.len += 1;
        }
    }

    /// The files noted, in address order of their mappings.
    pub fn as_slice(&self) -> &[FileId] {
        &self.files[..self.len]
    }
}

/// Validated `mmap` request.
pub(crate) struct MmapRequest {
    pub(crate) prot: Prot,
    pub(crate) max_prot: Prot,
    pub(crate) sharing: Sharing,
    fixed: bool,
    pub(crate) len: u64,
    pub(crate) file: Option<(FileId, u64)>,
}

pub(crate) fn parse_mmap(
    len: u64,
    prot: u32,
    flags: u32,
    file: Option<(FileId, FileAccess)>,
    offset: i64,
) -> Result<MmapRequest, Errno> {
    let known = mman::MAP_SHARED | mman::MAP_PRIVATE | mman::MAP_FIXED | mman::MAP_ANON;
    if flags & !known != 0 || len == 0 || (len as i64) < 0 {
        return Err(Errno::Inval);
    }
    let sharing = match (
        flags & mman::MAP_SHARED != 0,
        flags & mman::MAP_PRIVATE != 0,
    ) {
        (true, false) => Sharing::Shared,
        (false, true) => Sharing::Private,
        _ => return Err(Errno::Inval),
    };
    let prot = Prot::from_posix(prot)?;
    let len = page_ceil(len).ok_or(Errno::NoMem)?;
    let fixed = flags & mman::MAP_FIXED != 0;
    if flags & mman::MAP_ANON != 0 {
        return Ok(MmapRequest {
            prot,
            max_prot: Prot::ALL,
            sharing,
            fixed,
            len,
            file: None,
        });
    }
    let (file, access) = file.ok_or(Errno::BadFd)?;
    if offset < 0 || !is_page_aligned(offset as u64) {
        return Err(Errno::Inval);
    }
    (offset as u64).checked_add(len).ok_or(Errno::Inval)?;
    if !access.can_read() {
        return Err(Errno::Access);
    }
    let max_prot = if sharing == Sharing::Shared && !access.can_write() {
        Prot::READ_EXEC
    } else {
        Prot::ALL
    };
    if !max_prot.contains(prot) {
        return Err(Errno::Access);
    }
    Ok(MmapRequest {
        prot,
        max_prot,
        sharing,
        fixed,
        len,
        file: Some((file, offset as u64 / PAGE_SIZE)),
    })
}

impl MemorySystem {
    /// POSIX `mmap`. `file` is the descriptor's file and access mode
    /// (ignored with `MAP_ANON`). Returns the mapping's address.
    #[allow(clippy::too_many_arguments)]
    pub fn mmap(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        hint: u64,
        len: u64,
        prot: u32,
        flags: u32,
        file: Option<(FileId, FileAccess)>,
        offset: i64,
    ) -> Result<u64, Errno> {
        let req = parse_mmap(len, prot, flags, file, offset)?;
        let file_object = match req.file {
            Some((f, _)) => Some(self.store.file_object(f).map_err(|_| Errno::BadFd)?),
            None => None,
        };
        // One search of the spaces for the whole call.
        let space = self.spaces.space_mut(&id).ok_or(Errno::Inval)?;
        let start = choose_address(space, hint, &req)?;
        if req.fixed {
            space.check_not_being_unmapped(start, start + req.len)?;
            remove_range(space, &mut self.store, hw, start, start + req.len);
        }
        let object = match (file_object, req.sharing) {
            (Some(file), Sharing::Shared) => Some(file),
            (Some(file), Sharing::Private) => self.store.shadow_of(file),
            (None, Sharing::Shared) => Some(self.store.create(ObjectKind::Anonymous, 0)),
            (None, Sharing::Private) => None,
        };
        let backing = object
            .and_then(|id| self.store.map_ref(id))
            .map(|object| Backing {
                object,
                first_page: req.file.map_or(0, |(_, p)| p),
            });
        let mapping = Mapping {
            start,
            end: start + req.len,
            prot: req.prot,
            max_prot: req.max_prot,
            sharing: req.sharing,
            backing,
            origin: Origin::Posix,
        };
        if let Err(refused) = space.insert(mapping) {
            self.store.give_back_refused(hw, refused);
            return Err(Errno::NoMem);
        }
        Ok(start)
    }
}

/// Where `req` goes in `space`: the hint when fixed or free, else placement.
pub(crate) fn choose_address(
    space: &AddressSpace,
    hint: u64,
    req: &MmapRequest,
) -> Result<u64, Errno> {
    if req.fixed {
        if !is_page_aligned(hint) {
            return Err(Errno::Inval);
        }
        let end = hint.checked_add(req.len).ok_or(Errno::Inval)?;
        if hint < USER_BASE || end > USER_END {
            return Err(Errno::Inval);
        }
        return Ok(hint);
    }
    if hint != 0 && is_page_aligned(hint) {
        if let Some(end) = hint.checked_add(req.len) {
            if space.holes.is_free(hint, end) {
                return Ok(hint);
            }
        }
    }
    space.holes.place(req.len).ok_or(Errno::NoMem)
}

impl MemorySystem {
    /// POSIX `munmap`: removes every mapping part in the range (holes are
    /// fine, mappings are split). `Inval` for an unaligned `addr`, `len` zero
    /// or negative, overflow, or a range leaving the user address space.
    /// Memory still referenced elsewhere is left alone; anonymous memory
    /// goes with its last reference; shared file pages keep their dirty
    /// state in the page cache.
    pub fn munmap(&mut self, id: AsId, hw: &mut Hw, addr: u64, len: u64) -> Result<(), Errno> {
        let (start, end) = checked_range(addr, len)?;
        if start < USER_BASE || end > USER_END {
            return Err(Errno::Inval);
        }
        let space = self.spaces.space_mut(&id).ok_or(Errno::Inval)?;
        space.check_not_being_unmapped(start, end)?;
        remove_range(space, &mut self.store, hw, start, end);
        Ok(())
    }

    /// Range check shared by mprotect/madvise/mincore (msync runs its two
    /// parts itself, keeping the first mapping): `None` for an
    /// empty request that succeeds at once.
    fn mapped_range(&self, id: AsId, addr: u64, len: u64) -> Result<Option<(u64, u64)>, Errno> {
        let Some((start, end)) = requested_range(addr, len)? else {
            return Ok(None);
        };
        let space = self.spaces.space(&id).ok_or(Errno::Inval)?;
        first_of_mapped(&space, start, end)?;
        Ok(Some((start, end)))
    }

    /// Starts of the mappings meeting `[start, end)`.
    fn starts_in(&self, id: AsId, start: u64, end: u64) -> alloc::vec::Vec<u64> {
        let Some(space) = self.spaces.space(&id) else {
            return alloc::vec::Vec::new();
        };
        let first = space.mapping_start_at(start).unwrap_or(start);
        space.mappings.range(first..end).map(|(&s, _)| s).collect()
    }

    /// POSIX `msync`. `MS_SYNC` writes the dirty pages of shared file
    /// mappings in the range (only the range asked), one request per run.
    pub fn msync(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        addr: u64,
        len: u64,
        flags: u32,
    ) -> Result<(), Errno> {
        self.msync_noting(id, hw, addr, len, flags, &mut DirtyFiles::default())
    }

    /// [`Self::msync`], noting in `files` each file whose shared mapping
    /// held dirty pages in the range (what
    /// [`Self::dirty_shared_files`] would have listed before the call,
    /// found by the same dirty-set search msync makes anyway: POSIX has
    /// msync after stores update the file's times).
    pub fn msync_noting(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        addr: u64,
        len: u64,
        flags: u32,
        files: &mut DirtyFiles,
    ) -> Result<(), Errno> {
        let known = mman::MS_ASYNC | mman::MS_SYNC | mman::MS_INVALIDATE;
        if flags & !known != 0 || (flags & mman::MS_ASYNC != 0 && flags & mman::MS_SYNC != 0) {
            return Err(Errno::Inval);
        }
        let Some((start, end)) = requested_range(addr, len)? else {
            return Ok(());
        };
        let space = self.spaces.space(&id).ok_or(Errno::Inval)?;
        // The range is fully mapped: each mapping ends where the next
        // starts, so the first one (found by the check) is looked up once.
        let mut m = first_of_mapped(&space, start, end)?;
        let sync = flags & mman::MS_SYNC != 0;
        let mut result = Ok(());
        loop {
            let (from, to) = (start.max(m.start), end.min(m.end));
            if let Err(e) = msync_part(m, from, to, sync, &mut self.store, hw, files) {
                result = Err(e);
            }
            if m.end >= end {
                break;
            }
            match space.mapping_at(m.end) {
                Some(next) => m = next,
                None => break,
            }
        }
        result
    }

    /// POSIX `mprotect`: sets the protection of every page in the range,
    /// splitting mappings. `Access` if it exceeds what a mapping's
    /// descriptor allows; `NoMem` for holes.
    pub fn mprotect(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        addr: u64,
        len: u64,
        prot: u32,
    ) -> Result<(), Errno> {
        let prot = Prot::from_posix(prot)?;
        let Some((start, end)) = self.mapped_range(id, addr, len)? else {
            return Ok(());
        };
        let space = self.spaces.space_mut(&id).ok_or(Errno::Inval)?;
        space.check_not_being_unmapped(start, end)?;
        let first = space.mapping_start_at(start).unwrap_or(start);
        if space
            .mappings
            .range(first..end)
            .any(|(_, m)| !m.max_prot.contains(prot))
        {
            return Err(Errno::Access);
        }
        split_at(space, &mut self.store, start);
        split_at(space, &mut self.store, end);
        let mut batch = self.store.begin_batch();
        for (_, m) in space.mappings.range_mut(start..end) {
            m.prot = prot;
            restrict_entries(m, m.start, m.end, prot, &mut self.store, hw.pt, &mut batch);
        }
        self.store.finish_batch(batch, hw.pt, hw.frames);
        Ok(())
    }

    /// POSIX `madvise`. `MADV_DONTNEED` drops the range's pages from this
    /// address space: private pages are freed (anonymous memory reads back
    /// zero, private file views read the file again), shared pages stay in
    /// their object with their dirty state. `MADV_WILLNEED` prefaults
    /// file-backed pages. `MADV_FREE` (Linux) applies to private anonymous
    /// memory only (`Inval` for any other mapping in the range, nothing
    /// changed) and frees its pages at once, as `MADV_DONTNEED`: they read
    /// back as zero. The other advice is accepted and ignored.
    pub fn madvise(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        addr: u64,
        len: u64,
        advice: u32,
    ) -> Result<(), Errno> {
        if advice > mman::MADV_DONTNEED && advice != mman::MADV_FREE {
            return Err(Errno::Inval);
        }
        let Some((start, end)) = self.mapped_range(id, addr, len)? else {
            return Ok(());
        };
        match advice {
            mman::MADV_DONTNEED => self.dont_need(id, hw, start, end),
            mman::MADV_FREE if !self.all_private_anonymous(id, start, end) => Err(Errno::Inval),
            mman::MADV_FREE => self.dont_need(id, hw, start, end),
            mman::MADV_WILLNEED => self.will_need(id, hw, start, end),
            _ => Ok(()),
        }
    }

    /// Whether every mapping meeting `[start, end)` is private anonymous
    /// memory (what `MADV_FREE` applies to: no file below, not shared).
    fn all_private_anonymous(&self, id: AsId, start: u64, end: u64) -> bool {
        let Some(space) = self.spaces.space(&id) else {
            return false;
        };
        let first = space.mapping_start_at(start).unwrap_or(start);
        let all = space.mappings.range(first..end).all(|(_, m)| {
            m.sharing == Sharing::Private
                && m.object_id().and_then(|t| self.store.root_of(t)).is_none()
        });
        all
    }

    fn dont_need(&mut self, id: AsId, hw: &mut Hw, start: u64, end: u64) -> Result<(), Errno> {
        let space = self.spaces.space_mut(&id).ok_or(Errno::Inval)?;
        let first = space.mapping_start_at(start).unwrap_or(start);
        let mut batch = self.store.begin_batch();
        for (_, m) in space.mappings.range_mut(first..end) {
            let (from, to) = (start.max(m.start), end.min(m.end));
            clear_entries(m, from, to, &mut self.store, hw.pt, &mut batch);
            drop_private_pages(m, from, to, true, &mut self.store, &mut batch);
        }
        self.store.finish_batch(batch, hw.pt, hw.frames);
        Ok(())
    }

    fn will_need(&mut self, id: AsId, hw: &mut Hw, start: u64, end: u64) -> Result<(), Errno> {
        for s in self.starts_in(id, start, end) {
            let Some(space) = self.spaces.space_mut(&id) else {
                continue;
            };
            let Some(m) = space.mapping_at(s) else {
                continue;
            };
            let shows_file = match m.sharing {
                Sharing::Shared => m.backing.is_some(),
                Sharing::Private => m.object_id().and_then(|t| self.store.root_of(t)).is_some(),
            };
            if !shows_file || !m.prot.read {
                continue;
            }
            let (from, to) = (start.max(m.start), end.min(m.end));
            let mut va = from;
            while va < to {
                if self.fault_in(id, hw, va, Access::Read, false).is_err() {
                    break;
                }
                va += PAGE_SIZE;
            }
        }
        Ok(())
    }

    /// POSIX `mincore`: one byte per page of the range, 1 if resident.
    /// `Fault` if `vec` is too short; `NoMem` for holes. Beyond clearing
    /// `vec`, the work follows the mappings and resident pages of the range,
    /// not its length.
    pub fn mincore(&self, id: AsId, addr: u64, len: u64, vec: &mut [u8]) -> Result<(), Errno> {
        let Some((start, end)) = self.mapped_range(id, addr, len)? else {
            return Ok(());
        };
        let pages = (end - start) / PAGE_SIZE;
        if (vec.len() as u64) < pages {
            return Err(Errno::Fault);
        }
        let out = &mut vec[..pages as usize];
        out.fill(0);
        let space = self.spaces.space(&id).ok_or(Errno::Inval)?;
        let first = space.mapping_start_at(start).unwrap_or(start);
        for (_, m) in space.mappings.range(first..end) {
            let (from, to) = (start.max(m.start), end.min(m.end));
            self.for_each_resident(m, from, to, |va| {
                out[((va - start) / PAGE_SIZE) as usize] = 1;
            });
        }
        Ok(())
    }

    /// Calls `f` with the address of every resident page of `m` in
    /// `[from, to)`: pages its objects hold that the mapping shows.
    fn for_each_resident(&self, m: &Mapping, from: u64, to: u64, mut f: impl FnMut(u64)) {
        self.for_each_shown_page(m, from, to, |index, _, _| f(m.va_of_object_page(index)));
    }
}
