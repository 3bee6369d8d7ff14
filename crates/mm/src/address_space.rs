//! One address space: its mappings in an ordered map keyed by start address
//! (O(log n) lookup, insert and split) with the latest inserted mapping kept
//! beside it, the fault hint that map carries, and the index of its holes.

use crate::errno::Errno;
use crate::holes::HoleIndex;
use crate::hw::{ObjectId, Prot, PAGE_SIZE};
use crate::mapping::{Mapping, Sharing};
use crate::object::ObjectStore;
use alloc::collections::btree_map::Entry;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ops::RangeBounds;

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
///
/// The mapping the latest insert added is kept beside the tree (`recent`,
/// its key in no tree node), as the hole index keeps the latest released
/// hole: the mmap that adds one mapping and the munmap that takes it away
/// again touch no tree node; the next insert moves it into the tree. Every
/// reader (`get`, `range`, `iter`, `values`, `len`) sees it in its place,
/// so the index reads as one ordered map. Every way to change a mapping or
/// the index is a method here that drops the hint first, so no path that
/// changes mappings (munmap, mprotect, MAP_FIXED, madvise, shmdt, exit) can
/// leave a stale one. Only [`Self::set_fault_hint`] sets it.
#[derive(Debug, Default)]
pub struct MappingIndex {
    /// Every mapping but `recent`, by start.
    tree: BTreeMap<u64, Mapping>,
    /// The latest inserted mapping (start, mapping), if no change took it
    /// out since.
    recent: Option<(u64, Mapping)>,
    fault_hint: Option<FaultHint>,
}

/// The tree's entries in a range merged with the recent mapping (when it
/// lies in the range), in key order from both ends. `front` and `back`
/// hold a tree entry read ahead of its turn.
struct Merged<'a, I, V> {
    tree: I,
    recent: Option<(&'a u64, V)>,
    front: Option<(&'a u64, V)>,
    back: Option<(&'a u64, V)>,
}

impl<'a, I: DoubleEndedIterator<Item = (&'a u64, V)>, V> Iterator for Merged<'a, I, V> {
    type Item = (&'a u64, V);

    fn next(&mut self) -> Option<Self::Item> {
        let next = (self.front.take())
            .or_else(|| self.tree.next())
            .or_else(|| self.back.take());
        match (&self.recent, &next) {
            (Some((r, _)), Some((t, _))) if r < t => {
                self.front = next;
                self.recent.take()
            }
            (Some(_), None) => self.recent.take(),
            _ => next,
        }
    }
}

impl<'a, I: DoubleEndedIterator<Item = (&'a u64, V)>, V> DoubleEndedIterator for Merged<'a, I, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let next = (self.back.take())
            .or_else(|| self.tree.next_back())
            .or_else(|| self.front.take());
        match (&self.recent, &next) {
            (Some((r, _)), Some((t, _))) if r > t => {
                self.back = next;
                self.recent.take()
            }
            (Some(_), None) => self.recent.take(),
            _ => next,
        }
    }
}

impl MappingIndex {
    /// Drops the hint: the index or a mapping is about to change.
    fn changing(&mut self) {
        self.fault_hint = None;
    }

    /// The mapping starting at `start`.
    pub fn get(&self, start: &u64) -> Option<&Mapping> {
        match &self.recent {
            Some((s, m)) if s == start => Some(m),
            _ => self.tree.get(start),
        }
    }

    /// The mappings starting in `range`, in address order (both ends).
    pub fn range<R: RangeBounds<u64>>(
        &self,
        range: R,
    ) -> impl DoubleEndedIterator<Item = (&u64, &Mapping)> {
        let recent = (self.recent.as_ref())
            .filter(|(s, _)| range.contains(s))
            .map(|(s, m)| (s, m));
        Merged {
            tree: self.tree.range(range),
            recent,
            front: None,
            back: None,
        }
    }

    /// The mapping with the highest start at or below `addr` (one tree
    /// search, no merging iterator: the lookup of faults and splits).
    pub fn last_at_or_below(&self, addr: u64) -> Option<&Mapping> {
        let in_tree = self.tree.range(..=addr).next_back().map(|(_, m)| m);
        match &self.recent {
            Some((s, m)) if *s <= addr && in_tree.is_none_or(|t| t.start < *s) => Some(m),
            _ => in_tree,
        }
    }

    /// As [`Self::last_at_or_below`], for a change.
    pub(crate) fn last_at_or_below_mut(&mut self, addr: u64) -> Option<&mut Mapping> {
        self.changing();
        let in_tree = self.tree.range_mut(..=addr).next_back().map(|(_, m)| m);
        match &mut self.recent {
            Some((s, m)) if *s <= addr && in_tree.as_ref().is_none_or(|t| t.start < *s) => Some(m),
            _ => in_tree,
        }
    }

    /// Every mapping with its start, in address order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&u64, &Mapping)> {
        self.range(..)
    }

    /// Every mapping, in address order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Mapping> {
        self.iter().map(|(_, m)| m)
    }

    /// Number of mappings.
    pub fn len(&self) -> usize {
        self.tree.len() + usize::from(self.recent.is_some())
    }

    /// Whether there is no mapping.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `m` at its start, where no mapping starts (the callers add
    /// over free ranges or split inside a mapping). It becomes the recent
    /// mapping; the one before goes into the tree.
    pub(crate) fn insert(&mut self, m: Mapping) {
        self.changing();
        debug_assert!(self.get(&m.start).is_none(), "a mapping starts there");
        if let Some((start, older)) = self.recent.replace((m.start, m)) {
            self.tree.insert(start, older);
        }
    }

    /// Adds `m` at its start, where no mapping starts, into the tree: the
    /// recent mapping stays (a split: the right half of a mapping is not
    /// the pair's mapping, and moving the recent one would cost a tree
    /// insert more).
    pub(crate) fn insert_in_tree(&mut self, m: Mapping) {
        self.changing();
        debug_assert!(self.get(&m.start).is_none(), "a mapping starts there");
        self.tree.insert(m.start, m);
    }

    /// Removes the mapping at `start`.
    pub(crate) fn remove(&mut self, start: &u64) -> Option<Mapping> {
        self.remove_if(*start, |_| true)
    }

    /// Removes the mapping at `start` if it `matches`.
    pub(crate) fn remove_if(
        &mut self,
        start: u64,
        matches: impl FnOnce(&Mapping) -> bool,
    ) -> Option<Mapping> {
        self.changing();
        if let Some((s, m)) = &self.recent {
            if *s == start {
                // Its key is in no tree node.
                return matches(m)
                    .then(|| self.recent.take())
                    .flatten()
                    .map(|(_, m)| m);
            }
        }
        match self.tree.entry(start) {
            Entry::Occupied(e) if matches(e.get()) => Some(e.remove()),
            _ => None,
        }
    }

    /// The mapping at `start`, for a change.
    pub(crate) fn get_mut(&mut self, start: &u64) -> Option<&mut Mapping> {
        self.changing();
        match &mut self.recent {
            Some((s, m)) if s == start => Some(m),
            _ => self.tree.get_mut(start),
        }
    }

    /// The mappings starting in `range`, for a change, in address order
    /// (both ends).
    pub(crate) fn range_mut<R: RangeBounds<u64>>(
        &mut self,
        range: R,
    ) -> impl DoubleEndedIterator<Item = (&u64, &mut Mapping)> {
        self.changing();
        let recent = (self.recent.as_mut())
            .filter(|(s, _)| range.contains(s))
            .map(|(s, m)| (&*s, m));
        Merged {
            tree: self.tree.range_mut(range),
            recent,
            front: None,
            back: None,
        }
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
        self.fault_hint = self.get(&start).and_then(FaultHint::of);
    }
}

/// The mappings and free ranges of one process.
#[derive(Debug, Default)]
pub struct AddressSpace {
    pub(crate) mappings: MappingIndex,
    pub(crate) holes: HoleIndex,
    /// The ranges of mappings whose `sys_munmap` waits for the disk
    /// (one per waiting thread): no other call changes them meanwhile.
    unmapping: Vec<(u64, u64)>,
    /// The program break (Linux `brk`; none for a NeoOS program).
    pub(crate) program_break: crate::program_break::ProgramBreak,
}

impl AddressSpace {
    /// An empty address space.
    pub fn new() -> Self {
        AddressSpace {
            mappings: MappingIndex::default(),
            holes: HoleIndex::new(),
            unmapping: Vec::new(),
            program_break: Default::default(),
        }
    }

    /// Whether `[start, end)` meets a mapping being unmapped (its
    /// `sys_munmap` waiting for its write-back): a call that would remove,
    /// replace, move or reprotect it fails with
    /// [`Errno::BeingUnmapped`] and is made again once that is over.
    pub fn being_unmapped(&self, start: u64, end: u64) -> bool {
        self.unmapping.iter().any(|&(s, e)| s < end && start < e)
    }

    /// [`Errno::BeingUnmapped`] when `[start, end)` is
    /// [`Self::being_unmapped`].
    pub(crate) fn check_not_being_unmapped(&self, start: u64, end: u64) -> Result<(), Errno> {
        if self.being_unmapped(start, end) {
            Err(Errno::BeingUnmapped)
        } else {
            Ok(())
        }
    }

    /// Marks `[start, end)` (one mapping) as being unmapped; `NoMem` when
    /// the heap refuses the record (nothing marked).
    pub(crate) fn mark_being_unmapped(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        self.unmapping.try_reserve(1).map_err(|_| Errno::NoMem)?;
        self.unmapping.push((start, end));
        Ok(())
    }

    /// The mapping at `start` is no longer being unmapped.
    pub(crate) fn unmark_being_unmapped(&mut self, start: u64) {
        self.unmapping.retain(|&(s, _)| s != start);
    }

    /// Start of the mapping containing `addr`.
    pub fn mapping_start_at(&self, addr: u64) -> Option<u64> {
        let m = self.mappings.last_at_or_below(addr)?;
        m.contains(addr).then_some(m.start)
    }

    /// The mapping containing `addr` (one search).
    pub fn mapping_at(&self, addr: u64) -> Option<&Mapping> {
        let m = self.mappings.last_at_or_below(addr)?;
        m.contains(addr).then_some(m)
    }

    /// The mapping containing `addr`, writable (one search).
    pub fn mapping_at_mut(&mut self, addr: u64) -> Option<&mut Mapping> {
        let m = self.mappings.last_at_or_below_mut(addr)?;
        m.contains(addr).then_some(m)
    }

    /// Adds a mapping over a free range; gives it back (nothing done) if the
    /// range is not free.
    pub fn insert(&mut self, mapping: Mapping) -> Result<(), Mapping> {
        if !self.holes.reserve(mapping.start, mapping.end) {
            return Err(mapping);
        }
        self.mappings.insert(mapping);
        Ok(())
    }

    /// Moves the end of the mapping that ends at `end` to `new_end`, over
    /// the free range between; `false` (nothing changed) when no mapping
    /// ends there or that range is not free.
    pub(crate) fn extend(&mut self, end: u64, new_end: u64) -> bool {
        let ends_there = end > 0 && self.mapping_at(end - 1).is_some_and(|m| m.end == end);
        if !ends_there || !self.holes.reserve(end, new_end) {
            return false;
        }
        if let Some(m) = self.mapping_at_mut(end - 1) {
            m.end = new_end;
        }
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
        let m = self.mappings.remove_if(start, |m| m.end == end)?;
        self.holes.release(m.start, m.end);
        Some(m)
    }

    /// Splits the mapping strictly containing `addr` there; the new right
    /// half gets its own counted reference to the object. Returns whether a
    /// mapping was split.
    pub(crate) fn split_at(&mut self, store: &ObjectStore, addr: u64) -> bool {
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
        self.mappings.insert_in_tree(right);
        true
    }

    /// The mapping containing `start` if `[start, end)` is covered by
    /// mappings without holes.
    pub fn first_of_fully_mapped(&self, start: u64, end: u64) -> Option<&Mapping> {
        let first = self.mapping_at(start)?;
        let mut cursor = first.end;
        if cursor >= end {
            return Some(first);
        }
        for (&s, m) in self.mappings.range(cursor..end) {
            if s != cursor {
                return None;
            }
            cursor = m.end;
        }
        (cursor >= end).then_some(first)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Origin;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// A mapping of one page at page number `page`, its end marking it.
    fn mapping(page: u64, mark: u64) -> Mapping {
        Mapping {
            start: page * PAGE_SIZE,
            end: page * PAGE_SIZE + PAGE_SIZE + mark,
            prot: Prot::READ,
            max_prot: Prot::READ,
            sharing: Sharing::Private,
            backing: None,
            origin: Origin::Posix,
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64, u64),
        Remove(u64),
        RemoveIfEnd(u64, u64),
        Mark(u64, u64),
        MarkRange(u64, u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let page = 0u64..40;
        prop_oneof![
            4 => (page.clone(), 0u64..4).prop_map(|(p, m)| Op::Insert(p, m)),
            2 => page.clone().prop_map(Op::Remove),
            2 => (page.clone(), 0u64..4).prop_map(|(p, m)| Op::RemoveIfEnd(p, m)),
            1 => (page.clone(), 0u64..4).prop_map(|(p, m)| Op::Mark(p, m)),
            1 => (page.clone(), page).prop_map(|(a, b)| Op::MarkRange(a.min(b), a.max(b))),
        ]
    }

    fn ends<'a>(it: impl Iterator<Item = (&'a u64, &'a Mapping)>) -> Vec<(u64, u64)> {
        it.map(|(&s, m)| (s, m.end)).collect()
    }

    /// Every reader, from both ends and alternating, against the model.
    fn agrees(index: &MappingIndex, model: &BTreeMap<u64, u64>, lo: u64, hi: u64) {
        let want: Vec<(u64, u64)> = model.iter().map(|(&s, &e)| (s, e)).collect();
        assert_eq!(ends(index.iter()), want);
        let mut back = ends(index.iter().rev());
        back.reverse();
        assert_eq!(back, want);
        assert_eq!(index.len(), model.len());
        assert_eq!(index.is_empty(), model.is_empty());
        let (lo, hi) = (lo * PAGE_SIZE, hi * PAGE_SIZE);
        let want: Vec<(u64, u64)> = model.range(lo..hi).map(|(&s, &e)| (s, e)).collect();
        let mut range = index.range(lo..hi);
        let (mut front, mut back) = (Vec::new(), Vec::new());
        loop {
            let next = if (front.len() + back.len()) % 2 == 0 {
                range.next().map(|x| front.push(x))
            } else {
                range.next_back().map(|x| back.push(x))
            };
            if next.is_none() {
                break;
            }
        }
        front.extend(back.into_iter().rev());
        assert_eq!(ends(front.into_iter()), want);
        let below = model.range(..=hi).next_back().map(|(&s, _)| s);
        assert_eq!(index.range(..=hi).next_back().map(|(&s, _)| s), below);
        assert_eq!(index.last_at_or_below(hi).map(|m| m.start), below);
        for s in (0..40).map(|p| p * PAGE_SIZE) {
            assert_eq!(index.get(&s).map(|m| m.end), model.get(&s).copied());
        }
    }

    proptest! {
        /// The index with its recent mapping beside the tree reads and
        /// changes as one ordered map.
        #[test]
        fn mapping_index_is_an_ordered_map(
            ops in proptest::collection::vec(op(), 1..80),
            lo in 0u64..40,
            len in 0u64..40,
        ) {
            let mut index = MappingIndex::default();
            let mut model: BTreeMap<u64, u64> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(p, mark) => {
                        let m = mapping(p, mark);
                        if model.contains_key(&m.start) {
                            continue;
                        }
                        model.insert(m.start, m.end);
                        index.insert(m);
                    }
                    Op::Remove(p) => {
                        let s = p * PAGE_SIZE;
                        assert_eq!(index.remove(&s).map(|m| m.end), model.remove(&s));
                    }
                    Op::RemoveIfEnd(p, mark) => {
                        let (s, end) = (p * PAGE_SIZE, mapping(p, mark).end);
                        let want = model.get(&s).filter(|&&e| e == end).copied();
                        if want.is_some() {
                            model.remove(&s);
                        }
                        assert_eq!(index.remove_if(s, |m| m.end == end).map(|m| m.end), want);
                    }
                    Op::Mark(p, mark) => {
                        let s = p * PAGE_SIZE;
                        if let Some(m) = index.get_mut(&s) {
                            m.end = mapping(p, mark).end;
                        }
                        if let Some(e) = model.get_mut(&s) {
                            *e = mapping(p, mark).end;
                        }
                    }
                    Op::MarkRange(a, b) => {
                        let range = a * PAGE_SIZE..b * PAGE_SIZE;
                        for (_, m) in index.range_mut(range.clone()) {
                            m.end += 1;
                        }
                        for (_, e) in model.range_mut(range) {
                            *e += 1;
                        }
                    }
                }
                agrees(&index, &model, lo, (lo + len).min(40));
            }
        }
    }
}
