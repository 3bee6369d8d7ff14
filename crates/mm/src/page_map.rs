//! The page index of a memory object: its resident pages by page index.
//! Pages are kept in chunks of [`CHUNK_PAGES`] consecutive indexes (a
//! presence mask and the pages) in an ordered map keyed by chunk, so a
//! search runs over a tree 32 times smaller than one keyed by page, and a
//! tree insert (and a node) is needed once per 32 pages of a run. The
//! highest chunk is kept open, out of the tree: the common first touch, the
//! page after the last one of an object, is a compare and a store.

use crate::hw::Frame;
use crate::object::CachePage;
use alloc::collections::BTreeMap;
use core::ops::Range;

/// Pages per chunk (a power of two, at most the bits of [`Mask`]).
pub const CHUNK_PAGES: u64 = 32;
const CHUNK_SHIFT: u32 = CHUNK_PAGES.trailing_zeros();

/// A chunk's presence mask: one bit per page.
type Mask = u32;

/// Up to [`CHUNK_PAGES`] consecutive pages; bit `s` of `present` says
/// whether `pages[s]` holds one (without it, `pages[s]` means nothing).
#[derive(Clone, Debug)]
struct Chunk {
    present: Mask,
    pages: [CachePage; CHUNK_PAGES as usize],
}

const NO_PAGE: CachePage = CachePage {
    frame: Frame(0),
    released: 0,
    referenced: false,
};

impl Chunk {
    const EMPTY: Chunk = Chunk {
        present: 0,
        pages: [NO_PAGE; CHUNK_PAGES as usize],
    };

    fn has(&self, slot: usize) -> bool {
        self.present & (1 << slot) != 0
    }

    fn get(&self, slot: usize) -> Option<&CachePage> {
        self.has(slot).then(|| &self.pages[slot])
    }

    fn get_mut(&mut self, slot: usize) -> Option<&mut CachePage> {
        if self.has(slot) {
            Some(&mut self.pages[slot])
        } else {
            None
        }
    }

    /// The pages held, with their indexes (`key` is the chunk's): one step
    /// per page held, not per slot.
    fn iter(&self, key: u64) -> impl Iterator<Item = (u64, &CachePage)> {
        let mut left = self.present;
        core::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let slot = left.trailing_zeros() as usize;
            left &= left - 1;
            Some((index_of(key, slot), &self.pages[slot]))
        })
    }

    fn iter_mut(&mut self, key: u64) -> impl Iterator<Item = (u64, &mut CachePage)> {
        let present = self.present;
        self.pages
            .iter_mut()
            .enumerate()
            .filter(move |(slot, _)| present & (1 << slot) != 0)
            .map(move |(slot, page)| (index_of(key, slot), page))
    }

    fn count(&self) -> usize {
        self.present.count_ones() as usize
    }
}

/// Chunk key and slot of a page index.
fn split(index: u64) -> (u64, usize) {
    (index >> CHUNK_SHIFT, (index & (CHUNK_PAGES - 1)) as usize)
}

fn index_of(key: u64, slot: usize) -> u64 {
    (key << CHUNK_SHIFT) | slot as u64
}

/// Resident pages by page index (an ordered map with the calls of
/// `BTreeMap<u64, CachePage>` the mapping core uses).
///
/// The chunk with the highest key is kept out of the tree, open: a run of
/// first touches upward fills it with a compare and a store, and it goes
/// into the tree (one insert at the tree's end) when the run moves past it.
#[derive(Clone, Debug, Default)]
pub struct PageMap {
    /// Every chunk but the open one, whose key is above all of theirs.
    chunks: BTreeMap<u64, Chunk>,
    /// The chunk with the highest key, if any chunk holds a page.
    open: Option<(u64, Chunk)>,
    len: usize,
}

impl PageMap {
    /// An empty index.
    pub const fn new() -> Self {
        PageMap {
            chunks: BTreeMap::new(),
            open: None,
            len: 0,
        }
    }

    /// Number of pages held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn chunk(&self, key: u64) -> Option<&Chunk> {
        match &self.open {
            Some((open, chunk)) if *open == key => Some(chunk),
            Some((open, _)) if *open < key => None,
            _ => self.chunks.get(&key),
        }
    }

    fn chunk_mut(&mut self, key: u64) -> Option<&mut Chunk> {
        match &mut self.open {
            Some((open, chunk)) if *open == key => Some(chunk),
            Some((open, _)) if *open < key => None,
            _ => self.chunks.get_mut(&key),
        }
    }

    pub fn get(&self, index: &u64) -> Option<&CachePage> {
        let (key, slot) = split(*index);
        self.chunk(key)?.get(slot)
    }

    pub fn get_mut(&mut self, index: &u64) -> Option<&mut CachePage> {
        let (key, slot) = split(*index);
        self.chunk_mut(key)?.get_mut(slot)
    }

    pub fn contains_key(&self, index: &u64) -> bool {
        self.get(index).is_some()
    }

    /// The chunk `key`, made (empty) if there is none.
    fn chunk_or_new(&mut self, key: u64) -> &mut Chunk {
        let above_all = self.open.as_ref().is_none_or(|(open, _)| *open < key);
        if above_all {
            let (open, chunk) = self.open.get_or_insert((key, Chunk::EMPTY));
            if *open != key {
                // The run moved past the open chunk: a copy goes into the
                // tree, and its place, emptied, opens `key` (no chunk is
                // moved out or filled anew).
                self.chunks.insert(*open, chunk.clone());
                *open = key;
                chunk.present = 0;
            }
            return chunk;
        }
        match &mut self.open {
            Some((open, chunk)) if *open == key => chunk,
            _ => self.chunks.entry(key).or_insert(Chunk::EMPTY),
        }
    }

    /// Puts `page` at `index`; returns the page it replaces.
    pub fn insert(&mut self, index: u64, page: CachePage) -> Option<CachePage> {
        let (key, slot) = split(index);
        let chunk = self.chunk_or_new(key);
        let old = chunk.get(slot).copied();
        chunk.pages[slot] = page;
        chunk.present |= 1 << slot;
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Puts the page `make` gives at `index` if none is there, with one
    /// search (the first-touch fault); returns its frame, or `None` (and
    /// `make` is not called) when a page is there. An error of `make`
    /// changes nothing.
    #[inline(always)]
    pub fn insert_vacant<E>(
        &mut self,
        index: u64,
        make: impl FnOnce() -> Result<CachePage, E>,
    ) -> Result<Option<Frame>, E> {
        let (key, slot) = split(index);
        let chunk = match &mut self.open {
            Some((open, chunk)) if *open == key => Some(chunk),
            Some((open, _)) if *open < key => None,
            _ => self.chunks.get_mut(&key),
        };
        let Some(chunk) = chunk else {
            // A new chunk: the general insert makes it.
            let page = make()?;
            self.insert(index, page);
            return Ok(Some(page.frame));
        };
        if chunk.has(slot) {
            return Ok(None);
        }
        let page = make()?;
        chunk.pages[slot] = page;
        chunk.present |= 1 << slot;
        self.len += 1;
        Ok(Some(page.frame))
    }

    /// Takes the page at `index` out.
    pub fn remove(&mut self, index: &u64) -> Option<CachePage> {
        let (key, slot) = split(*index);
        let chunk = self.chunk_mut(key)?;
        let page = chunk.get(slot).copied()?;
        chunk.present &= !(1 << slot);
        let emptied = chunk.present == 0;
        self.len -= 1;
        if emptied {
            if self.open.as_ref().is_some_and(|(open, _)| *open == key) {
                self.open = self.chunks.pop_last();
            } else {
                self.chunks.remove(&key);
            }
        }
        Some(page)
    }

    /// The chunks that may hold pages of `range` (chunk 0 for an empty
    /// range: the callers filter by `range`).
    fn chunk_keys(range: &Range<u64>) -> core::ops::RangeInclusive<u64> {
        if range.start < range.end {
            split(range.start).0..=split(range.end - 1).0
        } else {
            0..=0
        }
    }

    /// The pages with indexes in `range`, in order.
    pub fn range(&self, range: Range<u64>) -> impl Iterator<Item = (u64, &CachePage)> {
        let keys = Self::chunk_keys(&range);
        let open = self.open.as_ref().filter(|(key, _)| keys.contains(key));
        self.chunks
            .range(keys)
            .chain(open.map(|(key, chunk)| (key, chunk)))
            .flat_map(|(&key, chunk)| chunk.iter(key))
            .filter(move |(index, _)| range.contains(index))
    }

    /// The pages with indexes in `range`, in order, to change.
    pub fn range_mut(&mut self, range: Range<u64>) -> impl Iterator<Item = (u64, &mut CachePage)> {
        let keys = Self::chunk_keys(&range);
        let open = self.open.as_mut().filter(|(key, _)| keys.contains(key));
        self.chunks
            .range_mut(keys)
            .chain(open.map(|(key, chunk)| (&*key, chunk)))
            .flat_map(|(&key, chunk)| chunk.iter_mut(key))
            .filter(move |(index, _)| range.contains(index))
    }

    /// Every page, in order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &CachePage)> {
        self.chunks
            .iter()
            .chain(self.open.as_ref().map(|(key, chunk)| (key, chunk)))
            .flat_map(|(&key, chunk)| chunk.iter(key))
    }

    /// The lowest-indexed page.
    pub fn first_key_value(&self) -> Option<(u64, &CachePage)> {
        self.iter().next()
    }

    /// The highest-indexed page.
    pub fn last_key_value(&self) -> Option<(u64, &CachePage)> {
        let (key, chunk) = self.open.as_ref()?;
        chunk.iter(*key).last()
    }

    /// Every page, in order.
    pub fn values(&self) -> impl Iterator<Item = &CachePage> {
        self.iter().map(|(_, page)| page)
    }

    /// Every page with its index, by value, in order.
    pub fn into_pages(self) -> impl Iterator<Item = (u64, CachePage)> {
        self.chunks
            .into_iter()
            .chain(self.open)
            .flat_map(|(key, chunk)| {
                let present = chunk.present;
                chunk
                    .pages
                    .into_iter()
                    .enumerate()
                    .filter(move |(slot, _)| present & (1 << slot) != 0)
                    .map(move |(slot, page)| (index_of(key, slot), page))
            })
    }

    /// Every chunk in the tree, none open (for the calls that cut and join).
    fn close(&mut self) {
        if let Some((key, chunk)) = self.open.take() {
            self.chunks.insert(key, chunk);
        }
    }

    /// Makes the highest chunk the open one again.
    fn reopen(&mut self) {
        debug_assert!(self.open.is_none());
        self.open = self.chunks.pop_last();
    }

    /// Splits off the pages at `at` and above.
    pub fn split_off(&mut self, at: &u64) -> PageMap {
        self.close();
        let (key, slot) = split(*at);
        let mut tail = PageMap {
            chunks: self.chunks.split_off(&key),
            open: None,
            len: 0,
        };
        if slot > 0 {
            if let Some(boundary) = tail.chunks.get_mut(&key) {
                let below: Mask = (1 << slot) - 1;
                let kept = Chunk {
                    present: boundary.present & below,
                    pages: boundary.pages,
                };
                boundary.present &= !below;
                if boundary.present == 0 {
                    tail.chunks.remove(&key);
                }
                if kept.present != 0 {
                    self.chunks.insert(key, kept);
                }
            }
        }
        tail.len = tail.chunks.values().map(Chunk::count).sum();
        self.len -= tail.len;
        self.reopen();
        tail.reopen();
        tail
    }

    /// Moves every page of `other` into this index (replacing pages at the
    /// same index).
    pub fn append(&mut self, other: &mut PageMap) {
        let mine = self.open.as_ref().map(|(key, _)| *key);
        let theirs = other.iter().next().map(|(index, _)| split(index).0);
        if let (Some(mine), Some(theirs)) = (mine, theirs) {
            if theirs <= mine {
                for (index, page) in core::mem::take(other).into_pages() {
                    self.insert(index, page);
                }
                return;
            }
        }
        self.close();
        other.close();
        self.chunks.append(&mut other.chunks);
        self.len += other.len;
        other.len = 0;
        self.reopen();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn page(n: u64) -> CachePage {
        CachePage::new(Frame(n << 12))
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64),
        Remove(u64),
        SplitOffAndAppend(u64),
        CutOut(u64, u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let index = 0u64..80;
        prop_oneof![
            4 => index.clone().prop_map(Op::Insert),
            2 => index.clone().prop_map(Op::Remove),
            1 => index.clone().prop_map(Op::SplitOffAndAppend),
            1 => (index.clone(), index).prop_map(|(a, b)| Op::CutOut(a.min(b), a.max(b))),
        ]
    }

    fn agrees(map: &PageMap, model: &BTreeMap<u64, CachePage>) {
        let got: Vec<(u64, CachePage)> = map.iter().map(|(i, p)| (i, *p)).collect();
        let want: Vec<(u64, CachePage)> = model.iter().map(|(&i, p)| (i, *p)).collect();
        assert_eq!(got, want);
        assert_eq!(map.len(), model.len());
        assert_eq!(map.is_empty(), model.is_empty());
        assert_eq!(
            map.first_key_value().map(|(i, _)| i),
            model.keys().next().copied()
        );
        assert_eq!(
            map.last_key_value().map(|(i, _)| i),
            model.keys().next_back().copied()
        );
    }

    proptest! {
        /// Every call agrees with `BTreeMap<u64, CachePage>` over random
        /// sequences (indexes dense enough to share and split chunks).
        #[test]
        fn behaves_as_an_ordered_map(ops in proptest::collection::vec(op(), 1..60), probe in 0u64..90, len in 0u64..30) {
            let mut map = PageMap::new();
            let mut model = BTreeMap::new();
            for (n, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Insert(i) if n % 3 == 0 => {
                        // A failing `make` changes nothing.
                        let failed = map.insert_vacant(i, || Err(()));
                        let want = if model.contains_key(&i) { Ok(None) } else { Err(()) };
                        prop_assert_eq!(failed, want);
                    }
                    Op::Insert(i) if n % 3 == 1 => {
                        let vacant = !model.contains_key(&i);
                        let got = map.insert_vacant(i, || Ok::<_, ()>(page(n as u64)));
                        prop_assert_eq!(got, Ok(vacant.then_some(page(n as u64).frame)));
                        if vacant {
                            model.insert(i, page(n as u64));
                        }
                    }
                    Op::Insert(i) => {
                        prop_assert_eq!(map.insert(i, page(n as u64)), model.insert(i, page(n as u64)));
                    }
                    Op::Remove(i) => prop_assert_eq!(map.remove(&i), model.remove(&i)),
                    Op::SplitOffAndAppend(at) => {
                        let mut tail = map.split_off(&at);
                        let mut model_tail = model.split_off(&at);
                        agrees(&map, &model);
                        agrees(&tail, &model_tail);
                        map.append(&mut tail);
                        model.append(&mut model_tail);
                        prop_assert!(tail.is_empty());
                    }
                    Op::CutOut(a, b) => {
                        let mut middle = map.split_off(&a);
                        let mut rest = middle.split_off(&b);
                        let mut model_middle = model.split_off(&a);
                        let mut model_rest = model_middle.split_off(&b);
                        agrees(&middle, &model_middle);
                        map.append(&mut rest);
                        model.append(&mut model_rest);
                        // Put the middle back over what is there (append
                        // over overlapping chunks).
                        if n % 2 == 0 {
                            map.append(&mut middle);
                            model.append(&mut model_middle);
                        }
                    }
                }
                agrees(&map, &model);
            }
            let range = probe..probe + len;
            let got: Vec<u64> = map.range(range.clone()).map(|(i, _)| i).collect();
            let want: Vec<u64> = model.range(range.clone()).map(|(&i, _)| i).collect();
            prop_assert_eq!(got, want);
            for (i, p) in map.range_mut(range.clone()) {
                p.released += 1;
                model.get_mut(&i).unwrap().released += 1;
            }
            agrees(&map, &model);
            prop_assert_eq!(map.get(&probe), model.get(&probe));
            prop_assert_eq!(map.get_mut(&probe).copied(), model.get(&probe).copied());
            prop_assert_eq!(map.contains_key(&probe), model.contains_key(&probe));
            let values: Vec<CachePage> = map.clone().into_pages().map(|(_, p)| p).collect();
            prop_assert_eq!(values, model.values().copied().collect::<Vec<_>>());
        }
    }

    #[test]
    fn an_empty_range_and_the_top_of_the_index_space() {
        let mut map = PageMap::new();
        let top = u64::MAX >> 12;
        map.insert(top, page(1));
        assert_eq!(map.range(5..5).count(), 0);
        assert_eq!(map.range(top..top + 1).count(), 1);
        assert_eq!(map.range(0..top).count(), 0);
    }
}
