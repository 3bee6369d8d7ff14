//! One address space: its mappings in an ordered map keyed by start address
//! (O(log n) lookup, insert and split) and the index of its holes.

use crate::holes::HoleIndex;
use crate::mapping::Mapping;
use alloc::collections::btree_map::Entry;
use alloc::collections::BTreeMap;

/// The mappings and free ranges of one process.
#[derive(Clone, Debug, Default)]
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

    /// The mapping containing `addr`.
    pub fn mapping_at(&self, addr: u64) -> Option<&Mapping> {
        let start = self.mapping_start_at(addr)?;
        self.mappings.get(&start)
    }

    /// The mapping containing `addr`, writable.
    pub fn mapping_at_mut(&mut self, addr: u64) -> Option<&mut Mapping> {
        let start = self.mapping_start_at(addr)?;
        self.mappings.get_mut(&start)
    }

    /// Adds a mapping over a free range; false (and nothing done) if the
    /// range is not free.
    pub fn insert(&mut self, mapping: Mapping) -> bool {
        if !self.holes.reserve(mapping.start, mapping.end) {
            return false;
        }
        self.mappings.insert(mapping.start, mapping);
        true
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

    /// Splits the mapping strictly containing `addr` there. Returns the
    /// backing object of the new right half (whose reference the caller must
    /// add), or `None` if nothing was split or there is no backing object.
    pub fn split_at(&mut self, addr: u64) -> SplitResult {
        let Some(start) = self.mapping_start_at(addr) else {
            return SplitResult::NotSplit;
        };
        if start == addr {
            return SplitResult::NotSplit;
        }
        let Some(left) = self.mappings.get_mut(&start) else {
            return SplitResult::NotSplit;
        };
        let right = left.split_off(addr);
        let object = right.backing.map(|b| b.object);
        self.mappings.insert(addr, right);
        SplitResult::Split(object)
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

/// Outcome of [`AddressSpace::split_at`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitResult {
    NotSplit,
    /// Split; the right half references this object (if any).
    Split(Option<crate::hw::ObjectId>),
}
