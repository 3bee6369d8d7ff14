//! One address space: its mappings in an ordered map keyed by start address
//! (O(log n) lookup, insert and split) and the index of its holes.

use crate::holes::HoleIndex;
use crate::mapping::Mapping;
use crate::object::ObjectStore;
use alloc::collections::btree_map::Entry;
use alloc::collections::BTreeMap;

/// The mappings and free ranges of one process.
#[derive(Debug, Default)]
pub struct AddressSpace {
    pub(crate) mappings: BTreeMap<u64, Mapping>,
    pub(crate) holes: HoleIndex,
}

impl AddressSpace {
    /// An empty address space.
    pub fn new() -> Self {
        AddressSpace {
            mappings: BTreeMap::new(),
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
