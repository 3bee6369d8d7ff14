//! Taking pages out of page tables and ranges out of address spaces: the
//! shared machinery of munmap, MAP_FIXED replacement, madvise, mprotect,
//! shmdt and teardown. Work follows the present page-table entries of the
//! range (empty upper-level tables are skipped whole) or, when fewer, the
//! pages the mapping's objects hold; never the range size nor cached pages
//! beyond what the page table holds.

use crate::address_space::AddressSpace;
use crate::hw::{EntryChange, Hw, ObjectId, PageTable, Prot, PteInfo, PAGE_SIZE};
use crate::mapping::{Mapping, Sharing};
use crate::object::{count_down, Below, DirtyPage, ObjectStore};
use crate::tlb::TlbBatch;
use alloc::collections::btree_map::RangeMut;
use core::iter::Peekable;

/// The file object of a shared file mapping (whose writable entries are
/// counted per page), else `None`.
fn counted_object(m: &Mapping, store: &ObjectStore) -> Option<ObjectId> {
    if m.sharing != Sharing::Shared {
        return None;
    }
    let id = m.object_id()?;
    store.get(id).filter(|o| o.is_file()).map(|_| id)
}

/// What a visit decides for one entry, given the store, its address and
/// what it holds.
type EntryVisit<'a> = dyn FnMut(&mut ObjectStore, u64, PteInfo) -> EntryChange + 'a;

/// Object pages the per-page walk of [`visit_entries`] takes per search of
/// an object's page index.
const PAGES_PER_SEARCH: usize = 32;

/// Below this many pages in the chain, [`visit_entries`] looks pages up
/// rather than walking the page table's levels.
const FEW_PAGES: u64 = 64;

/// Applies `change` to each present entry of `[from, to)` of `m`, by the
/// cheaper of two walks. Entries can only show pages the mapping's chain
/// of objects holds: when those objects hold no more pages than the range
/// has page tables (one per 2 MiB; or [`FEW_PAGES`]), each of their pages
/// in the range is looked up; otherwise the page table visits its present
/// entries, skipping empty tables. Either way the work is bounded by what
/// the page table holds for the range, never by the pages the objects
/// cache beyond it.
fn visit_entries(
    m: &Mapping,
    from: u64,
    to: u64,
    store: &mut ObjectStore,
    pt: &mut dyn PageTable,
    change: &mut EntryVisit,
) {
    if !few_pages(m, from, to, store) {
        pt.update_range(from, to, &mut |va, old| change(store, va, old));
        return;
    }
    let Some((mut id, first, end)) = m.object_pages(from, to) else {
        return;
    };
    loop {
        let mut cursor = first;
        loop {
            // A few indices at a time: `change` needs the store.
            let mut found = [0u64; PAGES_PER_SEARCH];
            let mut n = 0;
            if let Some(o) = store.get_mut(id) {
                for (slot, (index, _)) in found.iter_mut().zip(o.pages.get_mut().range(cursor..end))
                {
                    *slot = index;
                    n += 1;
                }
            }
            let Some(&last) = found[..n].last() else {
                break;
            };
            cursor = last + 1;
            for &index in &found[..n] {
                visit_one(m.va_of_object_page(index), store, pt, change);
            }
        }
        match below(m, store, id) {
            Some(next) => id = next,
            None => return,
        }
    }
}

/// [`visit_entries`] for the entry at `va`, if present.
fn visit_one(va: u64, store: &mut ObjectStore, pt: &mut dyn PageTable, change: &mut EntryVisit) {
    let Some(old) = pt.query(va) else {
        return;
    };
    match change(store, va, old) {
        EntryChange::Keep => {}
        EntryChange::Protect(prot) => pt.protect(va, prot),
        EntryChange::Remove => {
            pt.unmap(va);
        }
    }
}

/// Whether the pages `m`'s chain holds are few enough for the per-page
/// walk (no more than the page tables of `[from, to)`, or [`FEW_PAGES`]).
fn few_pages(m: &Mapping, from: u64, to: u64, store: &mut ObjectStore) -> bool {
    let tables = ((to - from) / PAGE_SIZE).div_ceil(512).max(FEW_PAGES);
    chain_pages(m, store) <= tables
}

/// [`clear_entries`] by the pages of the chain (see [`visit_entries`]):
/// each level's pages in the range in one ordered pass, each entry removed
/// by address. `counted`: shared file pages, whose writable entries are
/// counted.
fn clear_by_pages(
    m: &Mapping,
    from: u64,
    to: u64,
    counted: bool,
    store: &mut ObjectStore,
    pt: &mut dyn PageTable,
    batch: &mut TlbBatch,
) {
    let Some((mut id, first, end)) = m.object_pages(from, to) else {
        return;
    };
    loop {
        let Some(obj) = store.get_mut(id) else {
            return;
        };
        // The dirty pages of the range alongside (both ascend): a writable
        // entry's page is among them.
        let mut dirty = obj.dirty.range_mut(first..end).peekable();
        for (index, page) in obj.pages.get_mut().range(first..end) {
            let va = m.va_of_object_page(index);
            let Some(old) = pt.unmap(va) else {
                continue;
            };
            batch.invalidate(va);
            if counted && old.prot.write && old.frame == page.frame {
                let found = lose_writer(&mut dirty, index, old.frame);
                debug_assert!(found, "a writable shared file page outside the dirty set");
            }
        }
        match below(m, store, id) {
            Some(next) => id = next,
            None => return,
        }
    }
}

/// The object below `id` in `m`'s chain (none for a shared mapping).
fn below(m: &Mapping, store: &ObjectStore, id: ObjectId) -> Option<ObjectId> {
    if m.sharing == Sharing::Shared {
        return None;
    }
    match store.get(id)?.below.get() {
        Some(Below::Root(r)) => Some(r.id()),
        Some(Below::Hidden { parent, .. }) => Some(*parent),
        None => None,
    }
}

/// Pages the objects of `m`'s chain hold, in all (one count per object).
fn chain_pages(m: &Mapping, store: &mut ObjectStore) -> u64 {
    let mut total = 0;
    let mut level = m.object_id();
    while let Some(id) = level {
        total += store
            .get_mut(id)
            .map_or(0, |o| o.pages.get_mut().len() as u64);
        level = below(m, store, id);
    }
    total
}

/// Removes the page-table entries of `[from, to)` of `m` (whatever object
/// of its chain they show). For shared file pages, drops the writable-entry
/// count (their dirty state is in the object's dirty set already). Work
/// follows the present entries (see [`visit_entries`]), never the object's
/// cached pages.
pub(crate) fn clear_entries(
    m: &Mapping,
    from: u64,
    to: u64,
    store: &mut ObjectStore,
    pt: &mut dyn PageTable,
    batch: &mut TlbBatch,
) {
    let counted = counted_object(m, store);
    if few_pages(m, from, to, store) {
        clear_by_pages(m, from, to, counted.is_some(), store, pt, batch);
        return;
    }
    // The writable entries' counts are settled in batches (one ordered
    // pass over the dirty set per batch), as `restrict_entries` does.
    let mut lost = LostWrites::new(counted);
    visit_entries(m, from, to, store, pt, &mut |store, va, old| {
        batch.invalidate(va);
        if old.prot.write {
            lost.note(store, m, va, old);
        }
        EntryChange::Remove
    });
    lost.settle(store);
}

/// One writer less for dirty page `index` of object `id` held in `frame`:
/// a writable entry of it that a call made with shared access removed or
/// write-protected (`shared_map.rs` notes them; the exclusive section
/// settles them before anything reads the counts).
pub(crate) fn lose_noted_writer(
    store: &mut ObjectStore,
    id: ObjectId,
    index: u64,
    frame: crate::hw::Frame,
) {
    let Some(obj) = store.get_mut(id) else {
        return;
    };
    let mut dirty = obj.dirty.range_mut(index..=index).peekable();
    let found = lose_writer(&mut dirty, index, frame);
    debug_assert!(found, "a writable shared file page outside the dirty set");
}

/// One writer less for dirty page `index` if it is still held in `frame`
/// (the entry's frame). `dirty` walks the dirty set upward and stands at
/// or before `index`; whether the page was found there.
fn lose_writer(
    dirty: &mut Peekable<RangeMut<'_, u64, DirtyPage>>,
    index: u64,
    frame: crate::hw::Frame,
) -> bool {
    while dirty.next_if(|(&at, _)| at < index).is_some() {}
    match dirty.next_if(|(&at, page)| at == index && page.frame == frame) {
        Some((_, page)) => {
            count_down(&mut page.writers, "writable entries of a page");
            true
        }
        None => false,
    }
}

/// Writable entries of a shared file mapping's pages that a page-table
/// walk write-protected (msync, mprotect), each one writer less for its page:
/// noted in address order and settled [`LostWrites::BATCH`] at a time
/// (one object lookup and one ordered pass over the dirty set each time,
/// where a search per entry cost a lookup of the object and a descent of
/// the dirty set). Nothing reads the counts during the walk.
/// A removed entry's hardware dirty bit adds nothing: the page has been in
/// the dirty set since the write fault that made the entry writable, and
/// stays there while any writable entry shows it; a read-only entry needs
/// no bookkeeping at all.
struct LostWrites {
    object: Option<ObjectId>,
    /// Made by the first note: a walk that meets no writable entry does
    /// not even clear the lists.
    noted: Option<NotedWrites>,
}

/// The pages and frames of the writable entries noted since the last
/// settling.
struct NotedWrites {
    indexes: [u64; LostWrites::BATCH],
    frames: [crate::hw::Frame; LostWrites::BATCH],
    len: usize,
}

impl NotedWrites {
    const EMPTY: NotedWrites = NotedWrites {
        indexes: [0; LostWrites::BATCH],
        frames: [crate::hw::Frame(0); LostWrites::BATCH],
        len: 0,
    };
}

impl LostWrites {
    const BATCH: usize = 32;

    /// For the counted object `object` (none: nothing is counted).
    fn new(object: Option<ObjectId>) -> Self {
        LostWrites {
            object,
            noted: None,
        }
    }

    /// Notes that the writable entry of `m` at `va` (holding `old`) went.
    fn note(&mut self, store: &mut ObjectStore, m: &Mapping, va: u64, old: PteInfo) {
        if self.object.is_none() {
            return;
        }
        let Some((_, index)) = m.object_page(va) else {
            return;
        };
        if self.noted.as_ref().is_some_and(|n| n.len == Self::BATCH) {
            self.settle(store);
        }
        let noted = match &mut self.noted {
            Some(noted) => noted,
            none => none.insert(NotedWrites::EMPTY),
        };
        noted.indexes[noted.len] = index;
        noted.frames[noted.len] = old.frame;
        noted.len += 1;
    }

    /// One writer less for each noted page the object still shows with
    /// the entry's frame: the noted indexes ascend, so one ordered pass
    /// over the dirty pages between the first and the last settles them.
    fn settle(&mut self, store: &mut ObjectStore) {
        let Some(noted) = self.noted.as_mut() else {
            return;
        };
        let len = core::mem::take(&mut noted.len);
        let (indexes, frames) = (&noted.indexes[..len], &noted.frames[..len]);
        let Some(obj) = self.object.and_then(|id| store.get_mut(id)) else {
            return;
        };
        let (Some(&first), Some(&last)) = (indexes.first(), indexes.last()) else {
            return;
        };
        // (`max`: a range that ends below its start would panic; the
        // indexes ascend, so it never does.)
        let mut dirty = obj.dirty.range_mut(first..=last.max(first)).peekable();
        for (&index, &frame) in indexes.iter().zip(frames) {
            if !lose_writer(&mut dirty, index, frame) {
                debug_assert!(
                    obj.pages
                        .get_mut()
                        .get(&index)
                        .is_none_or(|p| p.frame != frame),
                    "a writable shared file page outside the dirty set"
                );
            }
        }
    }
}

/// Lowers the entries of `[from, to)` of `m` to at most `prot` (removing
/// them when `prot` is none). Work follows the present entries.
pub(crate) fn restrict_entries(
    m: &Mapping,
    from: u64,
    to: u64,
    prot: Prot,
    store: &mut ObjectStore,
    pt: &mut dyn PageTable,
    batch: &mut TlbBatch,
) {
    if prot.is_none() {
        clear_entries(m, from, to, store, pt, batch);
        return;
    }
    let mut lost = LostWrites::new(counted_object(m, store));
    visit_entries(m, from, to, store, pt, &mut |store, va, old| {
        let new = old.prot.intersect(prot);
        if new == old.prot {
            return EntryChange::Keep;
        }
        batch.invalidate(va);
        if old.prot.write && !new.write {
            lost.note(store, m, va, old);
        }
        EntryChange::Protect(new)
    });
    lost.settle(store);
}

/// Gives up the private pages of `[from, to)` of `m` (their entries must
/// already be in `batch`): munmap (`revert` false) or MADV_DONTNEED
/// (`revert`: the range shows the file, or zero, again).
pub(crate) fn drop_private_pages(
    m: &Mapping,
    from: u64,
    to: u64,
    revert: bool,
    store: &mut ObjectStore,
    batch: &mut TlbBatch,
) {
    if m.sharing != Sharing::Private {
        return;
    }
    if let Some((top, first, end)) = m.object_pages(from, to) {
        store.release_private_range(top, first, end, revert, batch.frees_mut());
    }
}

/// Splits the mapping strictly containing `addr`, counting the new half's
/// object reference.
pub(crate) fn split_at(space: &mut AddressSpace, store: &mut ObjectStore, addr: u64) {
    space.split_at(store, addr);
}

/// Removes every mapping part inside `[start, end)` (page aligned): entries
/// removed with one batched flush, private frames released after it, and
/// object references dropped (an object nobody references goes; a file
/// object writes its dirty pages first).
pub(crate) fn remove_range(
    space: &mut AddressSpace,
    store: &mut ObjectStore,
    hw: &mut Hw,
    start: u64,
    end: u64,
) {
    if let Some(m) = space.remove_exact(start, end) {
        // The common case (unmapping what one mmap made): no split, no
        // scan. A mapping without an object was never touched (a fault
        // gives it one before it maps a page): no entry, page or reference
        // to give back, no batch; and no table to release: any table in
        // its range was emptied before it came, by changes to mappings
        // whose removal queued their range already.
        if m.backing.is_none() {
            return;
        }
        let mut batch = store.begin_batch();
        discard_mapping(m, store, hw, &mut batch);
        store.finish_batch(batch, hw.pt, hw.frames);
    } else {
        let mut batch = store.begin_batch();
        split_at(space, store, start);
        split_at(space, store, end);
        loop {
            let Some(first) = space.mappings.range(start..end).next().map(|(&s, _)| s) else {
                break;
            };
            let Some(m) = space.remove(first) else {
                break;
            };
            discard_mapping(m, store, hw, &mut batch);
        }
        store.finish_batch(batch, hw.pt, hw.frames);
    }
    hw.pt.release_tables(start, end);
}

/// Takes a mapping already out of its address space apart: entries into
/// `batch`, private frames released, object reference dropped.
fn discard_mapping(mut m: Mapping, store: &mut ObjectStore, hw: &mut Hw, batch: &mut TlbBatch) {
    clear_entries(&m, m.start, m.end, store, hw.pt, batch);
    let pages = m
        .object_pages(m.start, m.end)
        .map(|(_, first, end)| (first, end));
    let private = m.sharing == Sharing::Private;
    if let (Some(b), Some(pages)) = (m.backing.take(), pages) {
        store.drop_mapping(&mut hw.io(), b.object, pages, private, batch.frees_mut());
    }
}
