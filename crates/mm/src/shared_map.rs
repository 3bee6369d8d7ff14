//! `mmap`, `munmap` and `mprotect` of private anonymous memory (and the
//! `munmap` and `mprotect` of some file mappings and of shared anonymous
//! memory) made with shared access
//! to the system (`&MemorySystem`, the kernel's lock held for reading), so
//! that they serialise only with what uses the same address space: each
//! space is behind its own reader-writer lock ([`crate::slots::SpaceTable`]),
//! which these calls take for writing and the faults of `shared_fault.rs`
//! for reading, each only if it is free at once. Calls of other processes,
//! and faults anywhere else, go on meanwhile.
//!
//! The cases taken here change nothing but the space's mapping index, its
//! free ranges and its page table's entries:
//! - `mmap` of private anonymous memory where the placement finds room (or
//!   with `MAP_FIXED`, below): a mapping without an object; its first
//!   shared fault gives it one of the anonymous objects the exclusive
//!   sections make ahead ([`ObjectStore::spare_objects`]), so a mapping
//!   never touched costs no object (a fork of many such is cheap);
//! - `mmap` of shared anonymous memory (exactly `MAP_SHARED | MAP_ANON`):
//!   a mapping with a spare object at once, as the exclusive way gives it
//!   its object at once (a fork shares it);
//! - `mmap` of a file, shared (exactly `MAP_SHARED`): a mapping with one
//!   more reference to the file's object, which its descriptor keeps; or
//!   private (exactly `MAP_PRIVATE`): a mapping whose top object, a spare
//!   one, is linked over the file's object (the only link made with
//!   shared access: on an object nothing else reaches yet);
//! - `munmap` of a range whose mappings are private anonymous memory whose
//!   object (if it has one yet) only that mapping (and the pieces of its
//!   cuts) references and shadows nothing, private file mappings whose top
//!   object is such over the file itself, shared file mappings (the
//!   writers a file's dirty pages count are settled later: below), or
//!   shared anonymous memory (`MAP_SHARED |
//!   MAP_ANON`: its object counts no entries; its pages live as long as
//!   it); those backed by an object only while their objects
//!   hold at most [`MOST_FILE_PAGES`] pages in the mapping, through which
//!   their entries are found (the mappings reaching past the range are cut
//!   at its ends, below): the mappings leave the index,
//!   their entries are removed (one per page the objects hold: entries
//!   only show the chain's pages) and flushed from every TLB before the
//!   call returns. Their object references (a private object then
//!   referenced by nothing the other paths can reach; a file's, whose
//!   pages stay cached, dirty ones included; shared memory's, whose pages
//!   stay with it) and the range go to a list ([`ObjectStore::unmapped`]) that the
//!   next exclusive section empties ([`MemorySystem::finish_shared_work`]):
//!   the private objects' frames are freed there, the objects without a
//!   reference left leave the store there, the page tables the range
//!   emptied are freed there;
//! - `mprotect` of a range such mappings cover whole, without a hole: their
//!   protection changes, their entries lose what it lacks (or go, for
//!   `PROT_NONE`; the pages stay) and are flushed before the call returns.
//!
//! A writable entry of a shared file page counts as a writer of its dirty
//! page (`unmap.rs`), a count only the exclusive way changes: each such
//! entry a call here removes or write-protects is noted on the same list
//! ([`Unmapped::writers`], room reserved first) and the exclusive section
//! takes its writer away before anything else.
//!
//! Anything else (System V memory, a forked mapping, a mapping of `sys_mmap`, a range
//! being unmapped by `sys_munmap`, a space whose lock stays taken, no
//! room for the list) is `None` with nothing changed: the kernel makes the
//! call again the exclusive way, which handles every case and every error.

use crate::address_space::AddressSpace;
use crate::hw::{AsId, EntryChange, FileAccess, FileId, Io, ObjectId, PageTable, Prot};
use crate::mapping::{Backing, Mapping, Origin, Sharing};
use crate::object::{Below, MemoryObject, ObjectKind, ObjectRef, ObjectStore};
use crate::page_map::PageMap;
use crate::posix::{checked_range, choose_address, parse_mmap, MmapRequest};
use crate::reclaim::SpaceTables;
use crate::system::MemorySystem;
use crate::tlb::{free_frames, TLB_BATCH_LIMIT};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use neoos_abi::layout::{USER_BASE, USER_END};
use neoos_abi::mman;

/// Most mappings one shared `munmap` removes (more go the exclusive way).
const MOST_MAPPINGS: usize = 8;

/// What a shared `munmap` took out of a mapping for the exclusive section
/// to give back: its object reference, the object pages it showed and
/// whether it was private (its pages of the object are its own).
type TakenRef = (ObjectRef, (u64, u64), bool);

/// The object references of the mappings a shared `munmap` removed.
type Taken = [Option<TakenRef>; MOST_MAPPINGS];

/// A writable entry of a shared file page that a shared call took away:
/// the file's object, the page's index and its frame.
type LostWriter = (ObjectId, u64, crate::hw::Frame);

/// Most pages a file-backed mapping's objects may hold for a shared call
/// to change it: its entries are found through those pages (a page table
/// walk needs the exclusive way), so the work stays bounded; a mapping
/// of more cached pages goes the exclusive way, which follows the
/// present entries.
const MOST_FILE_PAGES: usize = 256;

/// Spare objects the exclusive sections keep ready for the first shared
/// faults of mappings without one (`make_spare_objects`): as many
/// mappings as that can be touched with shared access between two
/// exclusive sections.
pub(crate) const SPARE_OBJECTS: usize = 16;

/// What the shared `munmap`s left for [`MemorySystem::finish_shared_work`]:
/// the unmapped mappings' object references with the object pages each
/// showed, and the ranges unmapped (whose emptied page tables are freed).
/// Room is reserved first (`reserved` counts the entries promised to calls
/// under way, which the lists' capacity always covers), the entries added
/// after the flush: the list's lock is never held across it.
#[derive(Default)]
pub(crate) struct Unmapped {
    objects: Vec<TakenRef>,
    ranges: Vec<(AsId, u64, u64)>,
    reserved: usize,
    /// The writable entries of shared file pages the shared calls removed
    /// or write-protected: one writer less each for its dirty page
    /// (object, page index, frame), settled by the exclusive section
    /// before anything reads the counts (`unmap.rs`). Room reserved as for
    /// the objects (`writers_reserved`), [`MOST_FILE_PAGES`] a mapping.
    writers: Vec<LostWriter>,
    writers_reserved: usize,
    /// The release's list of frames to free (kept for its room).
    frees: Vec<crate::hw::Frame>,
}

impl Unmapped {
    /// Reserves room for `count` objects and a range; `false` when the
    /// heap refuses it.
    fn reserve(&mut self, count: usize) -> bool {
        let room = self.reserved + count;
        if self.objects.try_reserve(room).is_err() || self.ranges.try_reserve(room).is_err() {
            return false;
        }
        self.reserved = room;
        true
    }

    /// Reserves room for the writers [`MOST_FILE_PAGES`] pages of each of
    /// `mappings` shared file mappings may lose: the count reserved (0
    /// for none), or `None` when the heap refuses it.
    fn reserve_writers(&mut self, mappings: usize) -> Option<usize> {
        let count = mappings * MOST_FILE_PAGES;
        if count > 0 {
            let room = self.writers_reserved + count;
            self.writers.try_reserve(room).ok()?;
            self.writers_reserved = room;
        }
        Some(count)
    }
}

impl MemorySystem {
    /// POSIX `mmap` of private anonymous memory (`flags` exactly
    /// `MAP_PRIVATE | MAP_ANON`, or with `MAP_FIXED`: see
    /// [`Self::mmap_fixed_shared`]) or of shared anonymous memory (exactly
    /// `MAP_SHARED | MAP_ANON`: see [`Self::mmap_shared_memory`]) with
    /// shared access to the system, when
    /// the space's lock is had within a few looks and holds fewer than
    /// `most_mappings` mappings: the mapping's address, or `None` with
    /// nothing changed (any error included: the exclusive way reports it).
    #[allow(clippy::too_many_arguments)]
    pub fn mmap_shared(
        &self,
        id: AsId,
        pt: &dyn PageTable,
        hint: u64,
        len: u64,
        prot: u32,
        flags: u32,
        most_mappings: usize,
    ) -> Option<u64> {
        const ANON: u32 = mman::MAP_PRIVATE | mman::MAP_ANON;
        if flags == ANON | mman::MAP_FIXED {
            return self.mmap_fixed_shared(id, pt, hint, len, prot, most_mappings);
        }
        if flags == mman::MAP_SHARED | mman::MAP_ANON {
            return self.mmap_shared_memory(id, hint, len, prot, most_mappings);
        }
        if flags != ANON {
            return None;
        }
        let req = parse_mmap(len, prot, flags, None, 0).ok()?;
        let (mut space, start) = self.place(id, hint, &req, most_mappings)?;
        self.insert_posix(&mut space, start, &req, None).ok()?;
        Some(start)
    }

    /// `mmap` with `MAP_PRIVATE | MAP_ANON | MAP_FIXED` at `addr` with
    /// shared access, when what the range replaces is what
    /// [`Self::munmap_shared`] could unmap: that is unmapped (cutting the
    /// mappings reaching past the range, entries removed and flushed before
    /// the new mapping is made), all under the space's lock, so no other
    /// call or fault of the space sees the range between. `None` with
    /// nothing changed otherwise (and should the space refuse the mapping
    /// after the unmap).
    #[inline(never)]
    fn mmap_fixed_shared(
        &self,
        id: AsId,
        pt: &dyn PageTable,
        addr: u64,
        len: u64,
        prot: u32,
        most_mappings: usize,
    ) -> Option<u64> {
        let flags = mman::MAP_PRIVATE | mman::MAP_ANON | mman::MAP_FIXED;
        let req = parse_mmap(len, prot, flags, None, 0).ok()?;
        let (mut meeting, objects) =
            self.meeting_to_unmap(id, pt, (addr, req.len), most_mappings, FIXED_CHARGE)?;
        // Nothing changed before this point.
        let mut taken = Taken::default();
        self.unmap_meeting(&mut meeting, pt, &mut taken);
        // The range is free now: the space takes the mapping (a refusal,
        // which a free range never meets, leaves it unmapped, as the
        // exclusive way's refusal does, and that way makes the call again).
        let made = self.insert_posix(&mut meeting.space, addr, &req, None).ok();
        let (start, end) = (meeting.start, meeting.end);
        drop(meeting);
        self.leave_unmapped(id, (start, end), objects, &mut taken);
        made.map(|()| addr)
    }

    /// POSIX `mmap` of `file` (its descriptor's access `access`), shared
    /// or private (`flags` exactly `MAP_SHARED` or `MAP_PRIVATE`), with
    /// shared access to the system: a shared mapping takes a reference to
    /// the file's object, which its open descriptor keeps (so the store's
    /// table does not change); a private one shows a spare object over it
    /// ([`Self::private_view`]). `None` with nothing changed when the file
    /// has no object, the space's lock stays taken, the space holds
    /// `most_mappings` mappings, no spare object is left, or the call is
    /// one the exclusive way reports. The exclusive section is asked to
    /// run (the kernel marks the file accessed there: POSIX lets that
    /// happen any time before the `munmap`).
    #[allow(clippy::too_many_arguments)]
    pub fn mmap_shared_file(
        &self,
        id: AsId,
        hint: u64,
        len: u64,
        prot: u32,
        flags: u32,
        (file, access): (FileId, FileAccess),
        offset: i64,
        most_mappings: usize,
    ) -> Option<u64> {
        if flags != mman::MAP_SHARED && flags != mman::MAP_PRIVATE {
            return None;
        }
        let req = parse_mmap(len, prot, flags, Some((file, access)), offset).ok()?;
        let object = self.store.file_object(file).ok()?;
        let (mut space, start) = self.place(id, hint, &req, most_mappings)?;
        let made = match req.sharing {
            Sharing::Shared => {
                let object = self.store.map_ref_shared(object)?;
                let first_page = req.file.map_or(0, |(_, page)| page);
                let backing = Backing { object, first_page };
                self.insert_posix(&mut space, start, &req, Some(backing))
                    .map_err(|refused| self.give_back_file_ref(refused))
                    .ok()
            }
            Sharing::Private => self.private_view(&mut space, start, &req, object),
        };
        made?;
        self.store
            .shared_work_waiting
            .store(true, Ordering::Release);
        Some(start)
    }

    /// Puts a private mapping of file object `file` (`req`, at `start`,
    /// free) into `space`: its top object is a spare one, linked over the
    /// file (as the exclusive way's new top object is) once the mapping is
    /// in, before any fault can find it (the space's lock is held).
    /// `None` with nothing changed when no spare is left or the space
    /// refuses the mapping.
    #[cold]
    #[inline(never)]
    fn private_view(
        &self,
        space: &mut AddressSpace,
        start: u64,
        req: &MmapRequest,
        file: ObjectId,
    ) -> Option<()> {
        let root = self.store.map_ref_shared(file)?;
        let Some(object) = self.take_spare_object() else {
            self.store.give_back_unused(root);
            return None;
        };
        let top = object.id();
        let first_page = req.file.map_or(0, |(_, page)| page);
        if let Err(refused) =
            self.insert_posix(space, start, req, Some(Backing { object, first_page }))
        {
            self.give_back_spare(refused);
            self.store.give_back_unused(root);
            return None;
        }
        let linked = match self.store.get(top) {
            Some(t) => t.below.link_root(root),
            None => Err(root),
        };
        if let Err(root) = linked {
            // Never (a spare object has nothing below): the mapping goes
            // again, as it came.
            self.store.give_back_unused(root);
            if let Some(m) = space.remove(start) {
                self.give_back_spare(m);
            }
            return None;
        }
        Some(())
    }

    /// Gives back the file reference of a shared file mapping the space
    /// refused.
    fn give_back_file_ref(&self, refused: Mapping) {
        if let Some(b) = refused.backing {
            self.store.give_back_unused(b.object);
        }
    }

    /// Puts the spare object of a mapping the space refused back among
    /// the spares (its pop left the room).
    fn give_back_spare(&self, refused: Mapping) {
        if let Some(b) = refused.backing {
            self.store.spare_objects.lock().push(b.object);
        }
    }

    /// The space `id` for writing and where `req` goes in it (at `hint` if
    /// free), when the space's lock is had and it holds fewer than
    /// `most_mappings` mappings.
    #[inline(always)]
    fn place(
        &self,
        id: AsId,
        hint: u64,
        req: &MmapRequest,
        most_mappings: usize,
    ) -> Option<(spin::RwLockWriteGuard<'_, AddressSpace>, u64)> {
        let space = self.spaces.space_write_briefly(&id)?;
        if space.mapping_count() >= most_mappings {
            return None;
        }
        let start = choose_address(&space, hint, req).ok()?;
        Some((space, start))
    }

    /// `mmap` with `MAP_SHARED | MAP_ANON` with shared access: the new
    /// mapping's object (the exclusive way makes one at once, so that a
    /// fork shares it) is one of the spare objects the exclusive sections
    /// make ahead. `None` with nothing changed when none is left (or the
    /// space's lock stays taken, or the call is one the exclusive way
    /// reports).
    #[cold]
    #[inline(never)]
    fn mmap_shared_memory(
        &self,
        id: AsId,
        hint: u64,
        len: u64,
        prot: u32,
        most_mappings: usize,
    ) -> Option<u64> {
        let flags = mman::MAP_SHARED | mman::MAP_ANON;
        let req = parse_mmap(len, prot, flags, None, 0).ok()?;
        let (mut space, start) = self.place(id, hint, &req, most_mappings)?;
        let object = self.take_spare_object()?;
        let backing = Some(Backing {
            object,
            first_page: 0,
        });
        self.insert_posix(&mut space, start, &req, backing)
            .map_err(|refused| self.give_back_spare(refused))
            .ok()?;
        Some(start)
    }

    /// Puts a POSIX mapping of `req` at `start` (free) into `space`,
    /// showing `backing` (`None`: private anonymous memory without an
    /// object yet; its first fault gives it one). `Err` gives the mapping
    /// back when the space refuses it (its reference, if any, for the
    /// caller to give back).
    #[inline]
    fn insert_posix(
        &self,
        space: &mut AddressSpace,
        start: u64,
        req: &MmapRequest,
        backing: Option<Backing>,
    ) -> Result<(), Mapping> {
        space.insert(Mapping {
            start,
            end: start + req.len,
            prot: req.prot,
            max_prot: req.max_prot,
            sharing: req.sharing,
            backing,
            origin: Origin::Posix,
        })?;
        self.store.shared_map_calls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// POSIX `munmap` with shared access to the system, in the module's
    /// case: `Some` once the range's mappings (or their parts in it) are
    /// gone and no TLB holds their entries, `None` with nothing changed.
    /// `most_mappings`: the bound on the space's mappings (a cut in the
    /// middle of one adds one).
    pub fn munmap_shared(
        &self,
        id: AsId,
        pt: &dyn PageTable,
        addr: u64,
        len: u64,
        most_mappings: usize,
    ) -> Option<()> {
        self.munmap_shared_if(id, pt, (addr, len), most_mappings, |_| true)?;
        self.store
            .shared_unmap_calls
            .fetch_add(1, Ordering::Relaxed);
        Some(())
    }

    /// [`Self::munmap_shared`] of `[addr, addr + len)` when `first`, given
    /// the space under its lock once the unmap is known possible and
    /// before anything changed, agrees (it may change the space's own
    /// state with it: a `brk`'s break); `None` with nothing changed
    /// otherwise.
    #[inline(always)]
    pub(crate) fn munmap_shared_if(
        &self,
        id: AsId,
        pt: &dyn PageTable,
        (addr, len): (u64, u64),
        most_mappings: usize,
        first: impl FnOnce(&mut AddressSpace) -> bool,
    ) -> Option<()> {
        let (mut meeting, reserved) =
            self.meeting_to_unmap(id, pt, (addr, len), most_mappings, MUNMAP_CHARGE)?;
        if !first(&mut meeting.space) {
            drop(meeting);
            self.give_back_reserved(reserved);
            return None;
        }
        // Nothing changed before this point (but what `first` did).
        let mut taken = Taken::default();
        self.unmap_meeting(&mut meeting, pt, &mut taken);
        let (start, end) = (meeting.start, meeting.end);
        drop(meeting);
        self.leave_unmapped(id, (start, end), reserved, &mut taken);
        Some(())
    }

    /// Gives back room [`Self::meeting_to_unmap`] reserved and no unmap
    /// used.
    #[cold]
    fn give_back_reserved(&self, reserved: Reserved) {
        if reserved.objects == 0 {
            return;
        }
        let mut unmapped = self.store.unmapped.lock();
        unmapped.reserved -= reserved.objects;
        unmapped.writers_reserved -= reserved.writers;
    }

    /// [`Self::mappings_meeting`] for an unmap of the range, with room on
    /// the list of what is left for the exclusive section reserved for the
    /// mappings' objects and the writers their pages may lose: what was
    /// reserved (objects, writers).
    #[inline]
    fn meeting_to_unmap(
        &self,
        id: AsId,
        pt: &dyn PageTable,
        (addr, len): (u64, u64),
        most_mappings: usize,
        charge: Charge,
    ) -> Option<(Meeting<'_>, Reserved)> {
        let meeting = self.mappings_meeting(id, pt, addr, len, most_mappings, charge)?;
        let objects = meeting.objects;
        if objects == 0 {
            return Some((meeting, Reserved::default()));
        }
        let mut unmapped = self.store.unmapped.try_lock()?;
        let writers = unmapped.reserve_writers(meeting.counted)?;
        if !unmapped.reserve(objects) {
            unmapped.writers_reserved -= writers;
            return None;
        }
        drop(unmapped);
        Some((meeting, Reserved { objects, writers }))
    }

    /// Cuts `meeting`'s mappings at its range's ends and removes those
    /// inside: their entries removed and flushed from every TLB. Their
    /// object references, with the object pages each showed, go to `taken`.
    #[inline(always)]
    fn unmap_meeting(&self, meeting: &mut Meeting, pt: &dyn PageTable, taken: &mut Taken) {
        meeting.cut(&self.store);
        let mut flush = Flush::default();
        for (&at, slot) in meeting.starts[..meeting.count].iter().zip(taken) {
            let Some(m) = meeting.space.remove(at) else {
                continue;
            };
            let Some((object, first, last)) = m.object_pages(m.start, m.end) else {
                continue;
            };
            let remove = EntryChange::Remove;
            let counted = counts_writers(&m, &self.store);
            change_entries(
                &m,
                &self.store,
                object,
                (first, last),
                (remove, counted),
                pt,
                &mut flush,
            );
            let private = m.sharing == Sharing::Private;
            *slot = m.backing.map(|b| (b.object, (first, last), private));
        }
        flush.finish(pt, &self.store);
    }

    /// Leaves what [`Self::unmap_meeting`] took, and the range `id`
    /// unmapped, for the next exclusive section, in the room `reserved`
    /// (no object: nothing to leave, no table can hold an entry).
    #[inline]
    fn leave_unmapped(
        &self,
        id: AsId,
        (start, end): (u64, u64),
        reserved: Reserved,
        taken: &mut Taken,
    ) {
        if reserved.objects == 0 {
            return;
        }
        // The reserved room: these pushes allocate nothing. Tables can
        // only hold the objects' pages' entries: the range goes too.
        let mut unmapped = self.store.unmapped.lock();
        unmapped.reserved -= reserved.objects;
        unmapped.writers_reserved -= reserved.writers;
        unmapped
            .objects
            .extend(taken.iter_mut().filter_map(Option::take));
        unmapped.ranges.push((id, start, end));
        self.store
            .shared_work_waiting
            .store(true, Ordering::Release);
    }

    /// POSIX `mprotect` with shared access to the system, of a range that
    /// private anonymous mappings in the module's case cover without a
    /// hole (those reaching past it are cut at its ends): `Some` once each
    /// has protection `prot` and no entry or TLB allows more (entries lose
    /// what `prot` lacks, or go for `PROT_NONE`, their pages kept; an entry
    /// allowing less is upgraded by its next fault), `None` with nothing
    /// changed. `most_mappings`: the bound on the space's mappings.
    pub fn mprotect_shared(
        &self,
        id: AsId,
        pt: &dyn PageTable,
        addr: u64,
        len: u64,
        prot: u32,
        most_mappings: usize,
    ) -> Option<()> {
        let prot = Prot::from_posix(prot).ok()?;
        let mut meeting =
            self.mappings_meeting(id, pt, addr, len, most_mappings, MPROTECT_CHARGE)?;
        let mut covered = meeting.start;
        let count = meeting.count;
        for s in &meeting.starts[..count] {
            let m = meeting.space.mappings.get(s)?;
            if !m.contains(covered) || !m.max_prot.contains(prot) {
                return None;
            }
            covered = m.end;
        }
        if covered < meeting.end {
            return None;
        }
        // Writable entries of shared file pages may lose their write
        // permission: room for their writers on the exclusive section's list.
        let writers = match (meeting.counted, prot.write) {
            (0, _) | (_, true) => 0,
            (counted, false) => self.store.unmapped.try_lock()?.reserve_writers(counted)?,
        };
        // Nothing changed before this point.
        meeting.cut(&self.store);
        let Meeting {
            mut space, starts, ..
        } = meeting;
        let mut flush = Flush::default();
        for s in &starts[..count] {
            let Some(m) = space.mappings.get_mut(s) else {
                continue;
            };
            let counted = counts_writers(m, &self.store);
            m.prot = prot;
            if let Some((object, first, last)) = m.object_pages(m.start, m.end) {
                let change = match prot.is_none() {
                    true => EntryChange::Remove,
                    false => EntryChange::Protect(prot),
                };
                change_entries(
                    m,
                    &self.store,
                    object,
                    (first, last),
                    (change, counted),
                    pt,
                    &mut flush,
                );
            }
        }
        flush.finish(pt, &self.store);
        if writers > 0 {
            self.store.unmapped.lock().writers_reserved -= writers;
            self.store
                .shared_work_waiting
                .store(true, Ordering::Release);
        }
        self.store
            .shared_protect_calls
            .fetch_add(1, Ordering::Relaxed);
        Some(())
    }

    /// The space `id` for writing, with `[addr, addr + len)` and the
    /// mappings meeting it, for a shared `munmap` or `mprotect`: when the
    /// range is valid, `pt` can change through a shared reference, no
    /// `sys_munmap` waits there, each mapping [`changes_alone`] and the
    /// space stays within `most_mappings` with `charge` more mappings
    /// (what the exclusive way counts: [`Charge`]).
    #[inline(always)]
    fn mappings_meeting(
        &self,
        id: AsId,
        pt: &dyn PageTable,
        addr: u64,
        len: u64,
        most_mappings: usize,
        charge: Charge,
    ) -> Option<Meeting<'_>> {
        let (start, end) = checked_range(addr, len).ok()?;
        if start < USER_BASE || end > USER_END || !pt.changes_shared() {
            return None;
        }
        let space = self.spaces.space_write_briefly(&id)?;
        if space.being_unmapped(start, end) {
            return None;
        }
        let mut starts = [0u64; MOST_MAPPINGS];
        let Found {
            count,
            cuts,
            objects,
            counted,
        } = mappings_meeting(&space, &self.store, start, end, &mut starts)?;
        let added = match cuts.first || cuts.last {
            true => charge.cut,
            false => charge.always,
        };
        if added > 0 && space.mapping_count() + added > most_mappings {
            return None;
        }
        Some(Meeting {
            space,
            start,
            end,
            starts,
            count,
            cuts,
            objects,
            counted,
        })
    }

    /// A spare object for a mapping's first shared fault
    /// (`shared_fault.rs`), if one is left (and the lock is free); below
    /// half of [`SPARE_OBJECTS`] left, the next exclusive section is asked
    /// to make more.
    pub(crate) fn take_spare_object(&self) -> Option<ObjectRef> {
        let Some(mut spares) = self.store.spare_objects.try_lock() else {
            self.store
                .shared_work_waiting
                .store(true, Ordering::Release);
            return None;
        };
        let object = spares.pop();
        if spares.len() < SPARE_OBJECTS / 2 {
            self.store
                .shared_work_waiting
                .store(true, Ordering::Release);
        }
        object
    }

    /// Removes the entries of private mapping `m` (out of its space's
    /// index, the space's lock held) and flushes them from every TLB that
    /// may hold them, before the caller gives the lock back.
    pub(crate) fn remove_entries_now(&self, m: &Mapping, pt: &dyn PageTable) {
        let Some((object, first, last)) = m.object_pages(m.start, m.end) else {
            return;
        };
        let mut flush = Flush::default();
        let remove = (EntryChange::Remove, false);
        change_entries(
            m,
            &self.store,
            object,
            (first, last),
            remove,
            pt,
            &mut flush,
        );
        flush.finish(pt, &self.store);
    }

    /// Reserves room on the exclusive section's list for one range whose
    /// page tables it is to free ([`Self::leave_range`]); `false` when the
    /// list is busy or the heap refuses the room.
    pub(crate) fn reserve_range(&self) -> bool {
        self.store
            .unmapped
            .try_lock()
            .is_some_and(|mut unmapped| unmapped.reserve(1))
    }

    /// Leaves range `(start, end)` of space `id`, its entries gone, for the
    /// next exclusive section to free its page tables, in the room
    /// [`Self::reserve_range`] reserved.
    pub(crate) fn leave_range(&self, id: AsId, (start, end): (u64, u64)) {
        let mut unmapped = self.store.unmapped.lock();
        unmapped.reserved -= 1;
        unmapped.ranges.push((id, start, end));
        self.store
            .shared_work_waiting
            .store(true, Ordering::Release);
    }

    /// Whether the shared calls left work for
    /// [`Self::finish_shared_work`].
    #[inline]
    pub fn has_shared_work(&self) -> bool {
        self.store.shared_work_waiting.load(Ordering::Acquire)
    }

    /// Does what the calls made with shared access left for an exclusive
    /// section: releases what the shared `munmap`s removed
    /// ([`Self::release_unmapped`]) and makes the spare objects the shared
    /// `mmap`s give their mappings. The kernel calls it, when
    /// [`Self::has_shared_work`], at the start of every exclusive section,
    /// before anything else can meet them.
    #[cold]
    #[inline(never)]
    /// `heap_room`: whether the kernel heap is above its reserve (spare
    /// objects are made only then).
    pub fn finish_shared_work(
        &mut self,
        io: &mut Io,
        tables: &mut dyn SpaceTables,
        heap_room: bool,
    ) {
        *self.store.shared_work_waiting.get_mut() = false;
        self.release_unmapped(io, tables);
        if heap_room {
            self.make_spare_objects();
        }
    }

    /// Makes spare objects up to [`SPARE_OBJECTS`] (none when the heap
    /// refuses room for them).
    fn make_spare_objects(&mut self) {
        let mut spares = core::mem::take(self.store.spare_objects.get_mut());
        let missing = SPARE_OBJECTS.saturating_sub(spares.len());
        if spares.try_reserve(missing).is_ok() {
            for _ in 0..missing {
                spares.push(self.store.create_mapped(ObjectKind::Anonymous));
            }
        }
        *self.store.spare_objects.get_mut() = spares;
    }

    /// Gives back what the shared `munmap`s left: the objects of the
    /// mappings they removed (their frames are freed: no entry shows them,
    /// no TLB holds one) and the page tables their ranges emptied (of the
    /// spaces `tables` still has).
    fn release_unmapped(&mut self, io: &mut Io, tables: &mut dyn SpaceTables) {
        // Taken out and put back emptied: the lists keep their room, so
        // the next shared `munmap`'s reservation allocates nothing.
        let mut list = core::mem::take(self.store.unmapped.get_mut());
        for (space, start, end) in list.ranges.drain(..) {
            if let Some(pt) = tables.table(space) {
                pt.release_tables(start, end);
            }
        }
        // Before any reference goes: the objects are there.
        for (object, index, frame) in list.writers.drain(..) {
            crate::unmap::lose_noted_writer(&mut self.store, object, index, frame);
        }
        for (object, pages, private) in list.objects.drain(..) {
            self.store
                .drop_mapping(io, object, pages, private, &mut list.frees);
        }
        free_frames(
            &mut list.frees,
            io.frames,
            self.store.frames_in_use.get_mut(),
        );
        *self.store.unmapped.get_mut() = list;
    }

    /// Calls `mmap_shared`, `munmap_shared` and `mprotect_shared` made so
    /// far (each).
    pub fn shared_map_calls(&self) -> (u64, u64, u64) {
        let calls = |c: &core::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        (
            calls(&self.store.shared_map_calls),
            calls(&self.store.shared_unmap_calls),
            calls(&self.store.shared_protect_calls),
        )
    }
}

/// What [`MemorySystem::mappings_meeting`] found: the space's write guard,
/// the range, the starts of the mappings meeting it (the first `count`).
struct Meeting<'a> {
    space: spin::RwLockWriteGuard<'a, AddressSpace>,
    start: u64,
    end: u64,
    starts: [u64; MOST_MAPPINGS],
    count: usize,
    cuts: Cuts,
    /// How many of those mappings have an object (one never touched has
    /// none: nothing to leave behind).
    objects: usize,
    /// How many of those are writable shared file mappings, whose
    /// writable entries are counted ([`counts_writers`]).
    counted: usize,
}

/// What [`mappings_meeting`] found (the fields of [`Meeting`]).
struct Found {
    count: usize,
    cuts: Cuts,
    objects: usize,
    counted: usize,
}

/// Room a shared `munmap` reserved on the exclusive section's list: for
/// its mappings' objects and the writers their pages may lose.
#[derive(Default, Clone, Copy)]
struct Reserved {
    objects: usize,
    writers: usize,
}

/// The mappings a call is counted to add against the bound on a space's
/// mappings, as the exclusive way counts them (kernel-core's
/// `mapping_room_check_for`): `always`, or `cut` when it cuts a mapping.
#[derive(Clone, Copy)]
struct Charge {
    always: usize,
    cut: usize,
}

/// `munmap`: one when it cuts (the middle of a mapping leaves two).
const MUNMAP_CHARGE: Charge = Charge { always: 0, cut: 1 };
/// `mprotect`: two when it cuts (the middle of a mapping leaves three).
const MPROTECT_CHARGE: Charge = Charge { always: 0, cut: 2 };
/// `mmap` with `MAP_FIXED`: the new mapping and one it may cut in two.
const FIXED_CHARGE: Charge = Charge { always: 2, cut: 2 };

/// Whether the first and the last mapping meeting a range reach past it
/// (and are to be cut at its start and end).
#[derive(Clone, Copy, Default)]
struct Cuts {
    first: bool,
    last: bool,
}

/// The starts of the mappings meeting `[start, end)` into `starts`, their
/// number, the cuts the range makes, how many have an object and how many
/// [`counts_writers`], when each [`changes_alone`] (at most
/// [`MOST_MAPPINGS`]); `None` otherwise. The common case, one mapping
/// exactly the range (what one `mmap` made), is one look at the index's
/// recent mapping.
#[inline(always)]
fn mappings_meeting(
    space: &AddressSpace,
    store: &ObjectStore,
    start: u64,
    end: u64,
    starts: &mut [u64; MOST_MAPPINGS],
) -> Option<Found> {
    let mut found = Found {
        count: 0,
        cuts: Cuts::default(),
        objects: 0,
        counted: 0,
    };
    if let Some(m) = space.mappings.get(&start).filter(|m| m.end == end) {
        starts[0] = start;
        found.count = 1;
        found.objects = usize::from(m.backing.is_some());
        found.counted = usize::from(counts_writers(m, store));
        return changes_alone(m, store).then_some(found);
    }
    let first = space.mapping_start_at(start).unwrap_or(start);
    for (_, m) in space.mappings.range(first..end) {
        if found.count == MOST_MAPPINGS || !changes_alone(m, store) {
            return None;
        }
        found.cuts.first |= m.start < start;
        found.cuts.last = m.end > end;
        starts[found.count] = m.start;
        found.count += 1;
        found.objects += usize::from(m.backing.is_some());
        found.counted += usize::from(counts_writers(m, store));
    }
    Some(found)
}

/// Whether `m`'s writable entries are counted: a writable shared file
/// mapping (a file's dirty pages count the writable entries that show
/// them, `unmap.rs`).
#[inline(always)]
fn counts_writers(m: &Mapping, store: &ObjectStore) -> bool {
    m.sharing == Sharing::Shared
        && m.prot.write
        && m.object_id()
            .and_then(|id| store.get(id))
            .is_some_and(MemoryObject::is_file)
}

/// Whether removing, cutting or protecting `m` touches nothing but its
/// space and the entries its objects' pages name, with no bookkeeping of
/// entries: a mapping of the POSIX calls that is
/// - private anonymous memory whose object, if any, shadows nothing and is
///   referenced by no descriptor, child or mapping but the pieces of `m`'s
///   own cuts (each showing its own pages of it: a fork gives private
///   memory new top objects, so every other mapping reference to such an
///   object is a piece in this space);
/// - a private file mapping whose top object is such, over the file itself
///   (no page `madvise` reverted): its entries show its own pages or,
///   read-only, the file's;
/// - a shared file mapping without write permission: no entry of it is
///   writable, so none is counted in the file's dirty pages (`unmap.rs`);
/// - shared anonymous memory (`MAP_SHARED | MAP_ANON`): its object keeps
///   no count of entries (other spaces' entries, a fork's, are theirs);
///
/// the object-backed ones while their objects hold at most
/// [`MOST_FILE_PAGES`] pages in the mapping's range.
fn changes_alone(m: &Mapping, store: &ObjectStore) -> bool {
    if m.origin != Origin::Posix {
        return false;
    }
    let Some(id) = m.object_id() else {
        return m.sharing == Sharing::Private;
    };
    let Some(o) = store.get(id) else {
        return false;
    };
    match (m.sharing, o.below.get()) {
        (Sharing::Private, None) => private_alone(o),
        _ => object_backed_alone(m, o, store),
    }
}

/// Whether private object `o` is anonymous and referenced by its mapping's
/// pieces alone ([`changes_alone`]).
fn private_alone(o: &MemoryObject) -> bool {
    matches!(o.kind, ObjectKind::Anonymous) && o.handle_refs == 0 && o.children == [None, None]
}

/// [`changes_alone`] for a mapping of a file (a shared one without write
/// permission, a private one whose top `o` is alone over the file itself)
/// or of shared anonymous memory; each while its objects hold few pages in
/// its range.
#[cold]
#[inline(never)]
fn object_backed_alone(m: &Mapping, o: &MemoryObject, store: &ObjectStore) -> bool {
    let Some((_, first, last)) = m.object_pages(m.start, m.end) else {
        return false;
    };
    let few = |o: &MemoryObject| few_pages(o, (first, last), MOST_FILE_PAGES);
    match (m.sharing, o.below.get()) {
        (Sharing::Shared, _) => {
            let kind_alone = match o.kind {
                ObjectKind::Anonymous => true,
                // Its writable entries' writers are settled later
                // ([`Unmapped::writers`]).
                ObjectKind::File(_) => true,
                ObjectKind::Shm(_) => false,
            };
            kind_alone && few(o)
        }
        (Sharing::Private, Some(Below::Root(file))) => {
            private_alone(o)
                && o.reverted.is_empty()
                && few(o)
                && store.get(file.id()).is_some_and(|f| f.is_file() && few(f))
        }
        (Sharing::Private, _) => false,
    }
}

/// Whether `o` holds at most `most` pages in `[first, last)`.
#[inline(never)]
fn few_pages(o: &MemoryObject, (first, last): (u64, u64), most: usize) -> bool {
    o.pages.lock().range(first..last).nth(most).is_none()
}

impl Meeting<'_> {
    /// Cuts the mappings reaching past the range at its ends (the part
    /// inside takes a counted reference to the object): `starts` then
    /// names the parts inside.
    #[inline]
    fn cut(&mut self, store: &ObjectStore) {
        if self.cuts.first && self.space.split_at(store, self.start) {
            self.starts[0] = self.start;
        }
        if self.cuts.last {
            self.space.split_at(store, self.end);
        }
    }
}

/// Removes the entries of `m`'s pages `first..last` of `object` (pages the
/// object holds, and for a private file mapping the file's below it: the
/// only ones an entry can show), or takes from them what
/// [`EntryChange::Protect`]'s protection lacks. `counted`: `m`'s writable
/// entries are counted ([`counts_writers`]): each that loses its write
/// permission goes on [`Unmapped::writers`] (its room reserved).
fn change_entries(
    m: &Mapping,
    store: &ObjectStore,
    object: ObjectId,
    pages: (u64, u64),
    (change, counted): (EntryChange, bool),
    pt: &dyn PageTable,
    flush: &mut Flush,
) {
    let Some(o) = store.get(object) else {
        return;
    };
    if counted {
        // Each entry that loses its write permission is noted.
        let note = |pages: &PageMap, batch: &[u64], lost: u64| {
            if lost != 0 {
                note_lost_writers(m, (store, object), pages, batch, lost);
            }
        };
        change_entries_of(m, o, pages, change, pt, flush, note);
    } else {
        change_entries_of(m, o, pages, change, pt, flush, |_, _, _| {});
    }
    if let Some(Below::Root(file)) = o.below.get() {
        if let Some(file) = store.get(file.id()) {
            change_entries_of(m, file, pages, change, pt, flush, |_, _, _| {});
        }
    }
}

/// [`change_entries`] for the pages `o` holds. An entry already removed
/// (or protected) through another object's page is passed over.
/// `lost_writers` is told, batch by batch, which entries lost their
/// write permission (a no-op where they are not counted: compiled away).
fn change_entries_of(
    m: &Mapping,
    o: &MemoryObject,
    (first, last): (u64, u64),
    change: EntryChange,
    pt: &dyn PageTable,
    flush: &mut Flush,
    lost_writers: impl Fn(&PageMap, &[u64], u64),
) {
    // Only this mapping and pieces of its cuts, all in this space, show a
    // private object, and the space's write lock keeps their faults out;
    // a file's pages may be faulted in by other spaces meanwhile (never
    // into this one). The pages' entries change a few at a time, in
    // address order; only those changed are flushed.
    let pages = o.pages.lock();
    let mut batch = [0u64; ENTRIES_PER_BATCH];
    let mut n = 0;
    for (index, _) in pages.range(first..last) {
        batch[n] = m.va_of_object_page(index);
        n += 1;
        if n == ENTRIES_PER_BATCH {
            lost_writers(&pages, &batch, change_batch(&batch, change, pt, flush));
            n = 0;
        }
    }
    lost_writers(
        &pages,
        &batch[..n],
        change_batch(&batch[..n], change, pt, flush),
    );
}

/// Puts the pages of `batch` whose entries lost their write permission
/// (bit `i` of `lost` for `batch[i]`) on [`Unmapped::writers`], in the
/// room the call reserved: one writer less each, settled by the
/// exclusive section.
#[cold]
#[inline(never)]
fn note_lost_writers(
    m: &Mapping,
    (store, object): (&ObjectStore, ObjectId),
    pages: &PageMap,
    batch: &[u64],
    lost: u64,
) {
    let mut unmapped = store.unmapped.lock();
    for (i, &va) in batch.iter().enumerate() {
        let Some((_, index)) = m.object_page(va).filter(|_| lost & (1 << i) != 0) else {
            continue;
        };
        if let Some(page) = pages.get(&index) {
            unmapped.writers.push((object, index, page.frame));
        }
    }
}

/// Entries [`change_entries`] hands the page table at once (the bits of
/// the mask [`PageTable::unmap_shared`] and [`PageTable::protect_shared`]
/// return).
const ENTRIES_PER_BATCH: usize = 64;

/// Changes the entries of `pages` (their flushes noted): which of them
/// lost their write permission.
fn change_batch(pages: &[u64], change: EntryChange, pt: &dyn PageTable, flush: &mut Flush) -> u64 {
    let done = match change {
        EntryChange::Protect(prot) => pt.protect_shared(pages, prot),
        _ => pt.unmap_shared(pages),
    };
    for (i, &va) in pages.iter().enumerate() {
        if done.changed & (1 << i) != 0 {
            flush.page(va);
        }
    }
    done.lost_write
}

/// The entries a shared `munmap` removed, flushed at once at its end:
/// single pages up to [`TLB_BATCH_LIMIT`], the whole TLB above.
struct Flush {
    pages: [u64; TLB_BATCH_LIMIT],
    count: usize,
    full: bool,
}

impl Default for Flush {
    fn default() -> Self {
        Flush {
            pages: [0; TLB_BATCH_LIMIT],
            count: 0,
            full: false,
        }
    }
}

impl Flush {
    fn page(&mut self, va: u64) {
        match self.pages.get_mut(self.count) {
            Some(slot) => {
                *slot = va;
                self.count += 1;
            }
            None => self.full = true,
        }
    }

    fn finish(&self, pt: &dyn PageTable, store: &ObjectStore) {
        if self.full {
            pt.flush_pages_shared(None);
            store.shared_full_flushes.fetch_add(1, Ordering::Relaxed);
        } else if self.count > 0 {
            pt.flush_pages_shared(Some(&self.pages[..self.count]));
            store
                .shared_single_flushes
                .fetch_add(self.count as u64, Ordering::Relaxed);
        }
    }
}
