//! The index of free virtual ranges (holes) of an address space: by address,
//! to test and carve a given range, and by size, to place a mapping without a
//! hint in O(log n). Placement policy: best fit among the holes below
//! `MMAP_TOP` (smallest hole that fits; among equal sizes the highest), and
//! the mapping goes at the top of that hole, so an empty address space fills
//! downward from `MMAP_TOP`. A placement may ask for a free guard page above
//! the mapping (NeoOS `sys_mmap` promises that access past its size faults). Holes never merge across `MMAP_TOP`, so the size
//! index only holds holes below it.
//!
//! The hole made by the latest release is kept beside the two trees (the
//! freed-range cache), not in them: an mmap that takes it again (the
//! mmap/munmap pair, a free page beside every mapping or not) reserves it
//! and the munmap gives it back without a tree insert or removal. Every
//! query looks at it as at a hole of the trees. When that munmap comes right
//! after the mmap (no reserve or release between), it needs no tree search
//! for its neighbours either.

use alloc::collections::{BTreeMap, BTreeSet};
use neoos_abi::layout::{MMAP_TOP, USER_BASE, USER_END};

/// The free page left above a mapping placed with a guard.
const GUARD: u64 = crate::hw::PAGE_SIZE;

/// Free virtual ranges `[start, end)` of one address space: each hole is
/// either in both trees (`by_size` only below `MMAP_TOP`) or the `cached`
/// one, never both.
#[derive(Clone, Debug)]
pub struct HoleIndex {
    /// start -> end of each hole but the cached one.
    by_addr: BTreeMap<u64, u64>,
    /// (size, !start) of each hole below `MMAP_TOP` but the cached one.
    by_size: BTreeSet<(u64, u64)>,
    /// The hole the latest release made (or what a reserve left of it),
    /// in neither tree.
    cached: Option<(u64, u64)>,
    /// The range the latest reserve took from the cached hole up to the
    /// hole's end, if no reserve or release came after it: no hole of the
    /// trees ends at its start or starts at its end (the cached hole was
    /// maximal, and only a reserve or release changes the trees), so its
    /// release (the pair's munmap) needs no search of them.
    taken: Option<(u64, u64)>,
}

impl Default for HoleIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl HoleIndex {
    /// The whole user range, free.
    pub fn new() -> Self {
        let mut holes = HoleIndex {
            by_addr: BTreeMap::new(),
            by_size: BTreeSet::new(),
            cached: None,
            taken: None,
        };
        holes.add(USER_BASE, MMAP_TOP);
        holes.add(MMAP_TOP, USER_END);
        holes
    }

    fn add(&mut self, start: u64, end: u64) {
        self.by_addr.insert(start, end);
        self.index_size(start, end);
    }

    /// Enters a hole in the size index (holes below `MMAP_TOP` only).
    fn index_size(&mut self, start: u64, end: u64) {
        if end <= MMAP_TOP {
            self.by_size.insert((end - start, !start));
        }
    }

    /// Takes a hole out of the size index.
    fn unindex_size(&mut self, start: u64, end: u64) {
        if end <= MMAP_TOP {
            self.by_size.remove(&(end - start, !start));
        }
    }

    /// The hole containing `addr`, as `(start, end)`.
    pub fn hole_at(&self, addr: u64) -> Option<(u64, u64)> {
        if let Some((start, end)) = self.cached.filter(|&(s, e)| s <= addr && addr < e) {
            return Some((start, end));
        }
        let (&start, &end) = self.by_addr.range(..=addr).next_back()?;
        (addr < end).then_some((start, end))
    }

    /// Whether `[start, end)` is entirely free.
    pub fn is_free(&self, start: u64, end: u64) -> bool {
        if start < MMAP_TOP && MMAP_TOP < end {
            return self.is_free(start, MMAP_TOP) && self.is_free(MMAP_TOP, end);
        }
        start < end && self.hole_at(start).is_some_and(|(_, e)| end <= e)
    }

    /// Marks the free range `[start, end)` used; false (nothing done) if it
    /// is not free.
    pub fn reserve(&mut self, start: u64, end: u64) -> bool {
        self.taken = None;
        if start < MMAP_TOP && MMAP_TOP < end {
            return self.is_free(start, end)
                && self.reserve_within_hole(start, MMAP_TOP)
                && self.reserve_within_hole(MMAP_TOP, end);
        }
        self.reserve_within_hole(start, end)
    }

    fn reserve_within_hole(&mut self, start: u64, end: u64) -> bool {
        self.taken = None;
        if let Some((hs, he)) = self.cached.filter(|&(s, e)| s <= start && start < e) {
            if end > he {
                return false;
            }
            if end == he {
                self.taken = Some((start, end));
            }
            // What is left stays out of the trees: the lower part (where
            // the next placement at the top of this hole goes) as the
            // cached hole, the upper part in the trees.
            self.cached = None;
            if end < he {
                self.add(end, he);
            }
            if hs < start {
                self.cached = Some((hs, start));
            }
            return true;
        }
        // One search finds the hole; its lower part, if any, shrinks in place.
        let Some((&hs, end_of_hole)) = self.by_addr.range_mut(..=start).next_back() else {
            return false;
        };
        let he = *end_of_hole;
        if start >= end || end > he {
            return false;
        }
        if hs < start {
            *end_of_hole = start;
        } else {
            self.by_addr.remove(&hs);
        }
        self.unindex_size(hs, he);
        if hs < start {
            self.index_size(hs, start);
        }
        if end < he {
            self.add(end, he);
        }
        true
    }

    /// Marks the used range `[start, end)` free, merging with neighbours.
    pub fn release(&mut self, start: u64, end: u64) {
        if start < MMAP_TOP && MMAP_TOP < end {
            self.release_one_side(start, MMAP_TOP);
            self.release_one_side(MMAP_TOP, end);
        } else {
            self.release_one_side(start, end);
        }
    }

    fn release_one_side(&mut self, start: u64, end: u64) {
        let apart_from_trees = self.taken.take() == Some((start, end));
        // The cached hole may be a neighbour; the trees hold the others.
        let (mut start, mut end) = (start, end);
        if let Some((cs, ce)) = self.cached {
            if ce == start && start != MMAP_TOP {
                start = cs;
                self.cached = None;
            } else if cs == end && end != MMAP_TOP {
                end = ce;
                self.cached = None;
            }
        }
        let (below, above) = match apart_from_trees {
            true => (None, None),
            false => self.tree_neighbours(start, end),
        };
        if let Some(ae) = above {
            self.by_addr.remove(&end);
            self.unindex_size(end, ae);
        }
        if let Some(ps) = below {
            self.by_addr.remove(&ps);
            self.unindex_size(ps, start);
        }
        let merged = (below.unwrap_or(start), above.unwrap_or(end));
        // The new hole is the cached one; an older cached hole goes into
        // the trees.
        if let Some((cs, ce)) = self.cached.replace(merged) {
            self.add(cs, ce);
        }
    }

    /// The start of the tree hole ending at `start` and the end of the one
    /// starting at `end`, the holes a release of `[start, end)` merges with
    /// (never across `MMAP_TOP`): one search, as nothing lies inside.
    fn tree_neighbours(&self, start: u64, end: u64) -> (Option<u64>, Option<u64>) {
        let mut around = self.by_addr.range(..=end);
        let mut below = around.next_back();
        let mut above = None;
        if let Some((&s, &e)) = below {
            if s == end {
                above = (end != MMAP_TOP).then_some(e);
                below = around.next_back();
            }
        }
        let below = match below {
            Some((&ps, &pe)) if pe == start && start != MMAP_TOP => Some(ps),
            _ => None,
        };
        (below, above)
    }

    /// Where to place `len` bytes without a hint (see module docs).
    pub fn place(&self, len: u64) -> Option<u64> {
        self.best_fit(len).map(|top| top - len)
    }

    /// As [`HoleIndex::place`], but under one free guard page when some hole
    /// has room for it, so an access just past the end faults instead of
    /// landing in a neighbouring mapping.
    pub fn place_with_guard(&self, len: u64) -> Option<u64> {
        self.best_fit(len.checked_add(GUARD)?)
            .map(|top| top - GUARD - len)
            .or_else(|| self.place(len))
    }

    /// The end of the smallest hole of at least `len` bytes (the highest
    /// among equal sizes).
    fn best_fit(&self, len: u64) -> Option<u64> {
        // When the smallest hole of the trees fits (every one-page
        // request), it is the one: the leftmost descent finds it without
        // comparing keys. Otherwise a search, O(log n) either way.
        let in_trees = match self.by_size.first() {
            Some(&smallest) if smallest.0 >= len => Some(smallest),
            _ => self.by_size.range((len, 0)..).next().copied(),
        };
        let cached = self
            .cached
            .filter(|&(s, e)| e <= MMAP_TOP && e - s >= len)
            .map(|(s, e)| (e - s, !s));
        let (size, not_start) = match (in_trees, cached) {
            (Some(t), Some(c)) => t.min(c),
            (t, c) => t.or(c)?,
        };
        Some(!not_start + size)
    }

    /// Number of holes.
    pub fn len(&self) -> usize {
        self.by_addr.len() + usize::from(self.cached.is_some())
    }

    /// Whether there is no hole at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates the holes as `(start, end)`, in address order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut cached = self.cached;
        let mut trees = self.by_addr.iter().map(|(&s, &e)| (s, e)).peekable();
        core::iter::from_fn(move || match (cached, trees.peek()) {
            (Some(c), Some(&t)) if t.0 < c.0 => trees.next(),
            (Some(c), _) => cached.take().map(|_| c),
            (None, _) => trees.next(),
        })
    }
}
