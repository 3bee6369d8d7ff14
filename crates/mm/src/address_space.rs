//! One address space: its mappings in an ordered map keyed by start address
//! (O(log n) lookup, insert and split), the fault hint that map carries, and
//! the index of its holes.

use crate::holes::HoleIndex;
use crate::hw::{ObjectId, Prot, PAGE_SIZE};
use crate::mapping::{Mapping, Sharing};
use crate::object::ObjectStore;
use alloc::collections::btree_map::{Entry, RangeMut};
use alloc::collections::BTreeMap;
use core::ops::{Deref, RangeBounds};

/// The last mapping a fault resolved in, as the zero-fill fast path needs
/// it: a first-touch loop faults in one mapping page after page, and with
/// the hint it skips the mapping search. Only ever a private mapping with
/// its top object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FaultHint {
    pub start: u64,
    pub end: u64,
    pub prot: Prot,
    /// The mapping's top object.
    pub top: ObjectId,
    /// The page of `top` shown at `start`.
    pub first_page: u64,
}

impl FaultHint {
    /// The hint for `m`, if it is a private mapping with an object.
    fn of(m: &Mapping) -> Option<FaultHint> {
        let b = m
            .backing
            .as_ref()
            .filter(|_| m.sharing == Sharing::Private)?;
        Some(FaultHint {
            start: m.start,
            end: m.end,
            prot: m.prot,
            top: b.object.id(),
            first_page: b.first_page,
        })
    }

    /// The page of the top object shown at `va`, if `va` is in the mapping.
    pub fn page_of(&self, va: u64) -> Option<u64> {
        (self.start <= va && va < self.end).then(|| self.first_page + (va - self.start) / PAGE_SIZE)
    }
}

/// The mappings of one address space by start address, and the fault hint.
/// Reading goes through `Deref` to the map; every way to change a mapping
/// or the map (insert, remove, entry, `get_mut`, `range_mut`) is a method
/// here that drops the hint first, so no path that changes mappings
/// (munmap, mprotect, MAP_FIXED, madvise, shmdt, exit)
/// can leave a stale one. Only [`Self::set_fault_hint`] sets it.
#[derive(Debug, Default)]
pub struct MappingIndex {
    map: BTreeMap<u64, Mapping>,
    fault_hint: Option<FaultHint>,
}

impl Deref for MappingIndex {
    type Target = BTreeMap<u64, Mapping>;

    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl MappingIndex {
    /// The map, for a change: the hint goes.
    fn changing(&mut self) -> &mut BTreeMap<u64, Mapping> {
        self.fault_hint = None;
        &mut self.map
    }

    /// Inserts `m` at `start` (see `BTreeMap::insert`).
    pub(crate) fn insert(&mut self, start: u64, m: Mapping) -> Option<Mapping> {
        self.changing().insert(start, m)
    }

    /// Removes the mapping at `start`.
    pub(crate) fn remove(&mut self, start: &u64) -> Option<Mapping> {
        self.changing().remove(start)
    }

    /// The entry at `start`, for a change.
    pub(crate) fn entry(&mut self, start: u64) -> Entry<'_, u64, Mapping> {
        self.changing().entry(start)
    }

    /// The mapping at `start`, for a change.
    pub(crate) fn get_mut(&mut self, start: &u64) -> Option<&mut Mapping> {
        self.changing().get_mut(start)
    }

    /// The mappings starting in `range`, for a change.
    pub(crate) fn range_mut<R: RangeBounds<u64>>(
        &mut self,
        range: R,
    ) -> RangeMut<'_, u64, Mapping> {
        self.changing().range_mut(range)
    }

    /// The hint, if a fault set one and nothing changed a mapping since.
    pub(crate) fn fault_hint(&self) -> Option<FaultHint> {
        self.fault_hint
    }

    /// Drops the hint (fork: the objects under the mappings change).
    pub(crate) fn forget_fault_hint(&mut self) {
        self.fault_hint = None;
    }

    /// Records the mapping at `start` as the hint (after a fault resolved
    /// in it); none if it is not a private mapping with an object.
    pub(crate) fn set_fault_hint(&mut self, start: u64) {
        self.fault_hint = self.map.get(&start).and_then(FaultHint::of);
    }
}

/// The mappings and free ranges of one process.
#[derive(Debug, Default)]
pub struct AddressSpace {
    pub(crate) mappings: MappingIndex,
    pub(crate) holes: HoleIndex,
}

impl AddressSpace {
    /// An empty address space.
    pub fn new() -> Self {
        AddressSpace {
            mappings: MappingIndex::default(),
            holes: HoleIndex::new(),
        }
    }

    /// Start of the mapping containing `addr`.
    pub fn mapping_start_at(&self, addr: u64) -> Option<u64> {
        let (&start, m) = self.mappings.range(..=addr).next_back()?;
        m.contains(addr).then_some(start)
    }

    /// The mapping containing `addr` (one search).
    pub fn mapping_at(&self, addr: u64) -> Option<&Mapping> {
        let (_, m) = self.mappings.range(..=addr).next_back()?;
        m.contains(addr).then_some(m)
    }

    /// The mapping containing `addr`, writable (one search).
    pub fn mapping_at_mut(&mut self, addr: u64) -> Option<&mut Mapping> {
        let (_, m) = self.mappings.range_mut(..=addr).next_back()?;
        m.contains(addr).then_some(m)
    }

    /// Adds a mapping over a free range; gives it back (nothing done) if the
    /// range is not free.
    pub fn insert(&mut self, mapping: Mapping) -> Result<(), Mapping> {
        if !self.holes.reserve(mapping.start, mapping.end) {
            return Err(mapping);
        }
        self.mappings.insert(mapping.start, mapping);
        Ok(())
    }

    /// Removes the mapping starting at `start`, freeing its range.
    pub fn remove(&mut self, start: u64) -> Option<Mapping> {
        let m = self.mappings.remove(&start)?;
        self.holes.release(m.start, m.end);
        Some(m)
    }

    /// Removes the mapping that is exactly `[start, end)`, if there is one.
    pub fn remove_exact(&mut self, start: u64, end: u64) -> Option<Mapping> {
        let entry = match self.mappings.entry(start) {
            Entry::Occupied(e) if e.get().end == end => e,
            _ => return None,
        };
        let m = entry.remove();
        self.holes.release(m.start, m.end);
        Some(m)
    }

    /// Splits the mapping strictly containing `addr` there; the new right
    /// half gets its own counted reference to the object. Returns whether a
    /// mapping was split.
    pub(crate) fn split_at(&mut self, store: &mut ObjectStore, addr: u64) -> bool {
        let Some(start) = self.mapping_start_at(addr) else {
            return false;
        };
        if start == addr {
            return false;
        }
        let Some(left) = self.mappings.get_mut(&start) else {
            return false;
        };
        let right_ref = left.backing.as_ref().map(|b| store.share(&b.object));
        let right = left.split_off(addr, right_ref);
        self.mappings.insert(addr, right);
        true
    }

    /// Whether `[start, end)` is covered by mappings without holes.
    pub fn is_fully_mapped(&self, start: u64, end: u64) -> bool {
        let Some(first) = self.mapping_at(start) else {
            return false;
        };
        let mut cursor = first.end;
        if cursor >= end {
            return true;
        }
        for (&s, m) in self.mappings.range(cursor..end) {
            if s != cursor {
                return false;
            }
            cursor = m.end;
        }
        cursor >= end
    }

    /// Number of mappings.
    pub fn mapping_count(&self) -> usize {
        self.mappings.len()
    }

    /// The mappings in address order.
    pub fn mappings(&self) -> impl Iterator<Item = &Mapping> {
        self.mappings.values()
    }

    /// The hole index.
    pub fn holes(&self) -> &HoleIndex {
        &self.holes
    }
}
