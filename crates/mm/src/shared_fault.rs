//! Page faults resolved with shared access to the system
//! (`&MemorySystem`): the kernel takes its lock for reading for them, so
//! the faults of one address space (and of all) run on several CPUs at
//! once, while every call that changes mappings holds the lock for
//! writing and so runs alone.
//!
//! The faults taken here need nothing but the pages of one or two objects
//! and an empty entry to fill:
//! - the first touch of a private mapping's page whose top object exists,
//!   shadows nothing and lacks the page: a new zero page (a private
//!   mapping without its object yet first takes a spare one:
//!   [`MemorySystem::with_spare_object`]);
//! - a read (or execute) of a private file mapping's page its top object
//!   lacks (a fork's shadowing aside) and the file has in its cache: the
//!   file's page, mapped read-only (a write copies it up the exclusive
//!   way) - program text and data faulting in;
//! - a shared mapping's page its object has in its cache (mapped writable
//!   only for an anonymous or System V object, and for a file only when
//!   the mapping already shows it writable: never here, so a write to a
//!   file page, which makes it dirty, goes the exclusive way), or an
//!   anonymous or System V object lacks (a new zero page).
//!
//! A read of a cached file page maps the window around it too
//! (`fault_around.rs`).
//!
//! Anything else, a page the top object already has included, is
//! [`SharedFault::NeedsExclusive`], every page, entry and count left as it
//! was (a page table linked on the way may stay, empty): the kernel makes
//! the fault again the exclusive way, from the start, which handles every
//! case (disk reads, copies, shadow chains, dirty tracking, the fault
//! hint, the top object's creation, reclaim, a fault that ends the
//! program).
//!
//! What a shared fault changes, and the lock that keeps it whole:
//! - the object's page index: its page lock
//!   ([`crate::object::MemoryObject::pages`]), held from the look for the
//!   page to the entry's install (and the new page's record), so two CPUs
//!   faulting one page find it absent once (the second finds it present
//!   and, for a private page, goes exclusive: never a second frame for one
//!   page). A private file page holds the top object's lock, then the
//!   file's: always in that order;
//! - the page table: [`crate::PageTable::map_vacant`], atomic per entry
//!   and per intermediate table, installing only where no entry is;
//! - the counters of frames in use and faults: atomics.
//!
//! No exclusive path can run until the shared lock is given back, so the
//! mappings, the objects' chains and every page found stay as they were.

use crate::address_space::AddressSpace;
use crate::fault_around;
use crate::hw::{
    page_floor, Access, AsId, Frame, ObjectId, PageTable, Prot, SharedFrames, VacantMap, PAGE_SIZE,
};
use crate::mapping::{Backing, Sharing};
use crate::object::{Below, CachePage, MemoryObject, ObjectStore};
use crate::page_map::PageMap;
use crate::system::MemorySystem;
use core::sync::atomic::Ordering;

/// How a shared fault ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedFault {
    /// The page is mapped: the access can be made again.
    Resolved,
    /// Every page, entry and count as it was (a page table linked on the
    /// way may stay, empty): the fault is to be made the exclusive way.
    NeedsExclusive,
}

/// The page a fault names: its mapping's object (the top object of a
/// private mapping), the page's index in it, the mapping's protection and
/// sharing.
struct FaultPage {
    object: ObjectId,
    index: u64,
    prot: Prot,
    sharing: Sharing,
    /// The object pages of the fault-around window the mapping shows.
    around: (u64, u64),
}

impl MemorySystem {
    /// Resolves the fault at `addr` of space `id` for `access` when it is
    /// one of the module's cases, with shared access to the system: `pt`
    /// is the space's page table, `frames` the frame source of shared
    /// faults.
    pub fn fault_shared(
        &self,
        id: AsId,
        pt: &dyn PageTable,
        frames: &dyn SharedFrames,
        addr: u64,
        access: Access,
    ) -> SharedFault {
        let va = page_floor(addr);
        // Held to the end: a mapping call made with shared access
        // (`shared_map.rs`) changes the space only under its write lock,
        // and so never between the look for the page and its install.
        let Some(space) = self.spaces.space_read_briefly(&id) else {
            return SharedFault::NeedsExclusive;
        };
        // (The guard is held to the end, as said above.)
        let (_space, page) = match page_at(&space, va) {
            Some(page) => (space, page),
            None => {
                drop(space);
                match self.with_spare_object(id, va) {
                    Some(found) => found,
                    None => return SharedFault::NeedsExclusive,
                }
            }
        };
        let Some(obj) = self.store.get(page.object) else {
            return SharedFault::NeedsExclusive;
        };
        if !page.prot.allows(access) {
            return SharedFault::NeedsExclusive;
        }
        let fault = ResolvedAt { va, pt, frames };
        let resolved = match page.sharing {
            Sharing::Private => self.private_page(obj, &page, access, &fault),
            Sharing::Shared => self.shared_page(obj, &page, access, &fault),
        };
        if !resolved {
            return SharedFault::NeedsExclusive;
        }
        self.store.faults.fetch_add(1, Ordering::Relaxed);
        self.store.shared_faults.fetch_add(1, Ordering::Relaxed);
        SharedFault::Resolved
    }
}

impl MemorySystem {
    /// The first fault of a private mapping without its object yet (its
    /// first touch): the mapping takes one of the spare objects the
    /// exclusive sections make ahead ([`crate::object::ObjectStore`]'s
    /// `spare_objects`), under the space's write lock, which then becomes a
    /// read lock for the rest of the fault (so the object is made lazily, as
    /// the exclusive way makes it: a mapping never touched has none).
    /// `None` (nothing changed) when the lock stays taken, no mapping
    /// without an object is at `va` or no spare is left.
    #[cold]
    #[inline(never)]
    fn with_spare_object(
        &self,
        id: AsId,
        va: u64,
    ) -> Option<(spin::RwLockReadGuard<'_, AddressSpace>, FaultPage)> {
        let mut space = self.spaces.space_write_briefly(&id)?;
        let m = space.mapping_at_mut(va)?;
        if m.sharing != Sharing::Private || m.backing.is_some() {
            return None;
        }
        let object = self.take_spare_object()?;
        m.backing = Some(Backing {
            object,
            first_page: m.start / PAGE_SIZE,
        });
        let space = space.downgrade();
        let page = page_at(&space, va)?;
        Some((space, page))
    }
}

/// The object page at `va` of `space` (through the fault hint, else one
/// search).
fn page_at(space: &AddressSpace, va: u64) -> Option<FaultPage> {
    if let Some(hint) = space.mappings.fault_hint() {
        if let Some(index) = hint.page_of(va) {
            return Some(FaultPage {
                object: hint.top,
                index,
                prot: hint.prot,
                sharing: Sharing::Private,
                around: (index, index + 1),
            });
        }
    }
    let m = space.mapping_at(va)?;
    let (object, index) = m.object_page(va)?;
    Some(FaultPage {
        object,
        index,
        prot: m.prot,
        sharing: m.sharing,
        around: fault_around::window(m, va, index),
    })
}

impl MemorySystem {
    /// A private mapping's page its top object `top` lacks: a new zero
    /// page when `top` shadows nothing, the file's cached page (read-only)
    /// for a read under a private file mapping. Always inline: the
    /// zero-fill fault is the hot case; since the space's read guard
    /// joined `fault_shared`, `#[inline]` alone left it out of line (+17
    /// on the 2-CPU first-touch probe).
    #[inline(always)]
    fn private_page(
        &self,
        top: &MemoryObject,
        page: &FaultPage,
        access: Access,
        fault: &ResolvedAt,
    ) -> bool {
        if top.below.is_none() {
            return fault.zero_page(&top.pages, page.index, page.prot, &self.store);
        }
        let Some(Below::Root(file)) = top.below.get() else {
            return false;
        };
        if access == Access::Write || !top.reverted.is_empty() {
            return false;
        }
        let pages = top.pages.lock();
        if pages.contains_key(&page.index) {
            return false;
        }
        let Some(file) = self.store.get(file.id()) else {
            return false;
        };
        let cached = file.pages.lock();
        let prot = page.prot.without_write();
        let mapped = (cached.get(&page.index)).is_some_and(|p| fault.map(p.frame, prot));
        if mapped {
            fault.map_around(&cached, page, prot, |index| pages.contains_key(&index));
        }
        mapped
    }

    /// A shared mapping's page of `obj`: the cached one (read-only for a
    /// file), else a new zero page of an anonymous or System V object.
    fn shared_page(
        &self,
        obj: &MemoryObject,
        page: &FaultPage,
        access: Access,
        fault: &ResolvedAt,
    ) -> bool {
        let file = obj.is_file();
        if file && access == Access::Write {
            return false;
        }
        let prot = if file {
            page.prot.without_write()
        } else {
            page.prot
        };
        let pages = obj.pages.lock();
        if let Some(p) = pages.get(&page.index) {
            let mapped = fault.map(p.frame, prot);
            if mapped && file {
                fault.map_around(&pages, page, prot, |_| false);
            }
            return mapped;
        }
        drop(pages);
        !file && fault.zero_page(&obj.pages, page.index, prot, &self.store)
    }

    /// Faults resolved the shared way so far (a part of
    /// [`crate::MemStats::faults`]).
    pub fn shared_faults(&self) -> u64 {
        self.store.shared_faults.load(Ordering::Relaxed)
    }
}

/// Where a shared fault installs: the page, its table, the frames.
struct ResolvedAt<'a> {
    va: u64,
    pt: &'a dyn PageTable,
    frames: &'a dyn SharedFrames,
}

impl ResolvedAt<'_> {
    /// Installs `frame` at the fault's page with `prot` where no entry is.
    fn map(&self, frame: Frame, prot: Prot) -> bool {
        self.pt.map_vacant(self.va, frame, prot) == VacantMap::Installed
    }

    /// Maps with `prot`, where no entry is, the pages of `cached` (a file's
    /// page index, locked) in `page`'s fault-around window but `page`
    /// itself and those `shadowed` names (a private mapping's top object
    /// has its own).
    #[inline(never)]
    fn map_around(
        &self,
        cached: &PageMap,
        page: &FaultPage,
        prot: Prot,
        shadowed: impl Fn(u64) -> bool,
    ) {
        let at = (self.va, page.index);
        for (va, frame) in fault_around::window_pages(cached, at, page.around, shadowed) {
            self.pt.map_vacant(va, frame, prot);
        }
    }

    /// A new zero page at `index` of the object whose page index is
    /// `pages`, mapped with `prot`, if the object lacks it (one search of
    /// the index, under its lock from the look to the record); the frame is
    /// taken before the lock (its zeroing, when the CPU kept none, outside
    /// it) and goes back when the page is there or cannot be mapped.
    fn zero_page(
        &self,
        pages: &spin::Mutex<PageMap>,
        index: u64,
        prot: Prot,
        store: &ObjectStore,
    ) -> bool {
        let Some(frame) = self.frames.alloc_zeroed_shared() else {
            return false;
        };
        let made = pages
            .lock()
            .insert_vacant(index, || match self.map(frame, prot) {
                true => Ok(CachePage::new(frame)),
                false => Err(()),
            });
        let made = matches!(made, Ok(Some(_)));
        if !made {
            self.frames.free_shared(frame);
        } else {
            store.frames_in_use.fetch_add(1, Ordering::Relaxed);
        }
        made
    }
}
