//! Taking pages out of page tables and ranges out of address spaces: the
//! shared machinery of munmap, MAP_FIXED replacement, madvise, mprotect,
//! shmdt and teardown. Work follows resident pages (the private pages and
//! the object's cached pages in the range), never the range size.

use crate::address_space::AddressSpace;
use crate::hw::{Hw, PageTable, Prot, PAGE_SIZE};
use crate::mapping::{Mapping, Sharing};
use crate::object::{count_down, ObjectStore};
use crate::tlb::TlbBatch;

/// Removes the page-table entries of `[from, to)` of `m` (both its private
/// pages and the object pages it shows). For shared file pages, harvests
/// the hardware dirty bit and drops the writable-entry count.
pub(crate) fn clear_entries(
    m: &Mapping,
    from: u64,
    to: u64,
    store: &mut ObjectStore,
    pt: &mut dyn PageTable,
    batch: &mut TlbBatch,
) {
    for (&vpn, _) in m.private_pages.range(from / PAGE_SIZE..to / PAGE_SIZE) {
        let va = vpn * PAGE_SIZE;
        if pt.unmap(va).is_some() {
            batch.invalidate(va);
        }
    }
    let Some((object, first, end)) = m.object_pages(from, to) else {
        return;
    };
    let Some(obj) = store.get_mut(object) else {
        return;
    };
    // Writable entries are counted for shared file pages only.
    let shared = m.sharing == Sharing::Shared && obj.is_file();
    for (&index, page) in obj.pages.range_mut(first..end) {
        let va = m.va_of_object_page(index);
        let Some(old) = pt.unmap(va) else {
            continue;
        };
        batch.invalidate(va);
        if shared && old.frame == page.frame {
            if old.dirty {
                page.dirty = true;
            }
            if old.prot.write {
                count_down(&mut page.writers, "writable entries of a page");
            }
        }
    }
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
    for (&vpn, _) in m.private_pages.range(from / PAGE_SIZE..to / PAGE_SIZE) {
        restrict_one(pt, batch, vpn * PAGE_SIZE, prot);
    }
    let Some((object, first, end)) = m.object_pages(from, to) else {
        return;
    };
    let Some(obj) = store.get_mut(object) else {
        return;
    };
    // Writable entries are counted for shared file pages only.
    let shared = m.sharing == Sharing::Shared && obj.is_file();
    for (&index, page) in obj.pages.range_mut(first..end) {
        let va = m.va_of_object_page(index);
        if m.sharing == Sharing::Private && m.private_pages.contains_key(&(va / PAGE_SIZE)) {
            continue;
        }
        if let Some(lost_write) = restrict_one(pt, batch, va, prot) {
            if shared && lost_write {
                count_down(&mut page.writers, "writable entries of a page");
            }
        }
    }
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
/// already be in `batch`).
pub(crate) fn drop_private_pages(
    m: &mut Mapping,
    from: u64,
    to: u64,
    store: &mut ObjectStore,
    batch: &mut TlbBatch,
) {
    let (lo, hi) = (from / PAGE_SIZE, to / PAGE_SIZE);
    if m.private_pages.is_empty() {
        return;
    }
    if lo <= m.start / PAGE_SIZE && hi >= m.end / PAGE_SIZE {
        for (_, frame) in core::mem::take(&mut m.private_pages) {
            store.release_private_frame(frame, batch);
        }
        return;
    }
    let mut tail = m.private_pages.split_off(&lo);
    let mut keep = tail.split_off(&hi);
    for (_, frame) in tail {
        store.release_private_frame(frame, batch);
    }
    m.private_pages.append(&mut keep);
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
}

/// Takes a mapping already out of its address space apart: entries into
/// `batch`, private frames released, object reference dropped.
fn discard_mapping(mut m: Mapping, store: &mut ObjectStore, hw: &mut Hw, batch: &mut TlbBatch) {
    clear_entries(&m, m.start, m.end, store, hw.pt, batch);
    let (s, e) = (m.start, m.end);
    drop_private_pages(&mut m, s, e, store, batch);
    if let Some(b) = m.backing.take() {
        store.drop_map_ref(&mut hw.io(), b.object, batch.frees_mut());
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
        for (&index, page) in obj.pages.range_mut(first_page..end_page) {
            if !page.dirty && page.writers > 0 {
                page.dirty = pt.take_dirty(start_va + (index - first_page) * PAGE_SIZE);
            }
        }
    }
}
