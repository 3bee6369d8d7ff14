//! Page faults resolved with shared access to the system
//! (`&MemorySystem`): the kernel takes its lock for reading for them, so
//! the faults of one address space (and of all) run on several CPUs at
//! once, while every call that changes mappings holds the lock for
//! writing and so runs alone.
//!
//! Only the common first touch is taken here: an allowed access to a page
//! of a private mapping whose top object exists, shadows nothing and lacks
//! the page (a new zero page, no entry to replace, no TLB flush). Anything
//! else, a page the object already has included, is
//! [`SharedFault::NeedsExclusive`]: the kernel makes the fault again the
//! exclusive way, from the start, which handles every case (and the fault
//! hint, the top object's creation, reclaim, a fault that ends the program).
//!
//! What a shared fault changes, and the lock that keeps it whole:
//! - the top object's page index: its page lock
//!   ([`crate::object::MemoryObject::pages`]), held from the look for the
//!   page to its record, so two CPUs faulting the same page find it absent
//!   once (the second finds it present and goes exclusive: never a second
//!   frame for one page);
//! - the page table: [`crate::PageTable::map_vacant`], atomic per entry
//!   and per intermediate table, installing only where no entry is;
//! - the counters of frames in use and faults: atomics.
//!
//! The entry is installed before the page is recorded, both under the page
//! lock: no other shared fault can look at the page meanwhile, and no
//! exclusive path can run until the shared lock is given back.

use crate::hw::{
    page_floor, Access, AsId, ObjectId, PageTable, Prot, SharedFrames, VacantMap, PAGE_SIZE,
};
use crate::mapping::Sharing;
use crate::object::CachePage;
use crate::system::MemorySystem;
use core::sync::atomic::Ordering;

/// How a shared fault ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedFault {
    /// The page is mapped: the access can be made again.
    Resolved,
    /// Nothing changed: the fault is to be made the exclusive way.
    NeedsExclusive,
}

impl MemorySystem {
    /// Resolves the fault at `addr` of space `id` for `access` if it is a
    /// first touch of a private mapping's page (see the module's doc), with
    /// shared access to the system: `pt` is the space's page table,
    /// `frames` the frame source of shared faults.
    pub fn fault_shared(
        &self,
        id: AsId,
        pt: &dyn PageTable,
        frames: &dyn SharedFrames,
        addr: u64,
        access: Access,
    ) -> SharedFault {
        let va = page_floor(addr);
        let Some((top, index, prot)) = self.private_page_at(id, va) else {
            return SharedFault::NeedsExclusive;
        };
        if !prot.allows(access) {
            return SharedFault::NeedsExclusive;
        }
        let Some(obj) = self.store.get(top) else {
            return SharedFault::NeedsExclusive;
        };
        if obj.below.is_some() {
            return SharedFault::NeedsExclusive;
        }
        let mut pages = obj.pages.lock();
        if pages.contains_key(&index) {
            return SharedFault::NeedsExclusive;
        }
        let Some(frame) = frames.alloc_zeroed_shared() else {
            return SharedFault::NeedsExclusive;
        };
        if pt.map_vacant(va, frame, prot) != VacantMap::Installed {
            frames.free_shared(frame);
            return SharedFault::NeedsExclusive;
        }
        pages.insert(index, CachePage::new(frame));
        drop(pages);
        self.store.frames_in_use.fetch_add(1, Ordering::Relaxed);
        self.store.faults.fetch_add(1, Ordering::Relaxed);
        self.store.shared_faults.fetch_add(1, Ordering::Relaxed);
        SharedFault::Resolved
    }

    /// The top object, its page index and the protection of the private
    /// mapping page at `va` (through the fault hint, else one search):
    /// `None` outside a private mapping with an object.
    fn private_page_at(&self, id: AsId, va: u64) -> Option<(ObjectId, u64, Prot)> {
        let space = self.spaces.get(&id)?;
        if let Some(hint) = space.mappings.fault_hint() {
            if let Some(index) = hint.page_of(va) {
                return Some((hint.top, index, hint.prot));
            }
        }
        let m = space.mapping_at(va)?;
        if m.sharing != Sharing::Private {
            return None;
        }
        let b = m.backing.as_ref()?;
        Some((
            b.object.id(),
            b.first_page + (va - m.start) / PAGE_SIZE,
            m.prot,
        ))
    }

    /// Faults resolved the shared way so far (a part of
    /// [`crate::MemStats::faults`]).
    pub fn shared_faults(&self) -> u64 {
        self.store.shared_faults.load(Ordering::Relaxed)
    }
}
