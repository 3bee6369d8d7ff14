//! Taking pages out of page tables and ranges out of address spaces: the
//! shared machinery of munmap, MAP_FIXED replacement, madvise, mprotect,
//! shmdt and teardown. Work follows resident pages (the pages the
//! mapping's objects hold in the range), never the range size.

use crate::address_space::AddressSpace;
use crate::hw::{Hw, PageTable, Prot, PAGE_SIZE};
use crate::mapping::{Mapping, Sharing};
use crate::object::{count_down, Below, MemoryObject, ObjectStore};
use crate::tlb::TlbBatch;

/// Calls `f` with each object of `m`'s chain (its object, then, for a
/// private mapping, the objects below it) and the object's pages shown by
/// `[from, to)` of `m`. Page-table entries of the range can only show
/// pages of these objects.
fn for_each_level(
    m: &Mapping,
    from: u64,
    to: u64,
    store: &mut ObjectStore,
    mut f: impl FnMut(&mut MemoryObject, u64, u64),
) {
    let Some((mut id, first, end)) = m.object_pages(from, to) else {
        return;
    };
    loop {
        let Some(obj) = store.get_mut(id) else {
            return;
        };
        f(obj, first, end);
        if m.sharing == Sharing::Shared {
            return;
        }
        id = match &obj.below {
            Some(Below::Root(r)) => r.id(),
            Some(Below::Hidden { parent, .. }) => *parent,
            None => return,
        };
    }
}

/// Removes the page-table entries of `[from, to)` of `m` (whatever object
/// of its chain they show). For shared file pages, harvests the hardware
/// dirty bit and drops the writable-entry count.
pub(crate) fn clear_entries(
    m: &Mapping,
    from: u64,
    to: u64,
    store: &mut ObjectStore,
    pt: &mut dyn PageTable,
    batch: &mut TlbBatch,
) {
    let shared = m.sharing == Sharing::Shared;
    for_each_level(m, from, to, store, |obj, first, end| {
        // Writable entries are counted for shared file pages only.
        let counted = shared && obj.is_file();
        for (index, page) in obj.pages.range_mut(first..end) {
            let va = m.va_of_object_page(index);
            let Some(old) = pt.unmap(va) else {
                continue;
            };
            batch.invalidate(va);
            if counted && old.frame == page.frame {
                if old.dirty {
                    page.dirty = true;
                }
                if old.prot.write {
                    count_down(&mut page.writers, "writable entries of a page");
                }
            }
        }
    });
}

/// Lowers the entries of `[from, to)` of `m` to at most `prot` (removing
/// them when `prot` is none).
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
    let shared = m.sharing == Sharing::Shared;
    for_each_level(m, from, to, store, |obj, first, end| {
        let counted = shared && obj.is_file();
        for (index, page) in obj.pages.range_mut(first..end) {
            let va = m.va_of_object_page(index);
            let lost_write = restrict_one(pt, batch, va, prot);
            if counted && lost_write == Some(true) {
                count_down(&mut page.writers, "writable entries of a page");
            }
        }
    });
}

/// Lowers one entry; returns whether it lost write permission (None if absent).
fn restrict_one(pt: &mut dyn PageTable, batch: &mut TlbBatch, va: u64, prot: Prot) -> Option<bool> {
    let old = pt.query(va)?;
    let new = old.prot.intersect(prot);
    if new == old.prot {
        return Some(false);
    }
    pt.protect(va, new);
    batch.invalidate(va);
    Some(old.prot.write && !new.write)
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
    let mut batch = store.begin_batch();
    if let Some(m) = space.remove_exact(start, end) {
        // The common case (unmapping what one mmap made): no split, no scan.
        discard_mapping(m, store, hw, &mut batch);
    } else {
        split_at(space, store, start);
        split_at(space, store, end);
        while let Some(first) = space.mappings.range(start..end).next().map(|(&s, _)| s) {
            let Some(m) = space.remove(first) else {
                break;
            };
            discard_mapping(m, store, hw, &mut batch);
        }
    }
    store.finish_batch(batch, hw.pt, hw.frames);
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

/// Moves the hardware dirty bits of the writable entries that show pages
/// `[first_page, end_page)` of `object` (mapped from `start_va` on) into the
/// page cache, so that a writeback sees every store.
pub(crate) fn harvest_dirty_bits(
    store: &mut ObjectStore,
    pt: &mut dyn PageTable,
    object: crate::hw::ObjectId,
    first_page: u64,
    end_page: u64,
    start_va: u64,
) {
    if let Some(obj) = store.get_mut(object) {
        for (index, page) in obj.pages.range_mut(first_page..end_page) {
            if !page.dirty && page.writers > 0 {
                page.dirty = pt.take_dirty(start_va + (index - first_page) * PAGE_SIZE);
            }
        }
    }
}
