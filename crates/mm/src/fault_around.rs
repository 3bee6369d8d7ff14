//! Fault-around: a read fault on a cached file page also maps, read-only,
//! the file's other cached pages of the aligned window of [`FAULT_AROUND`]
//! pages around it (as Linux does, 64 KiB), where no entry is and the
//! mapping shows them (for a private mapping, the pages its top object
//! lacks, over the file itself: no fork's shadow between). A sequential
//! read of a cached file then faults once per window, not per page.
//!
//! Nothing is read from the disk for the window: only pages the file's
//! cache holds are mapped, and they count as no fault. Their entries are
//! read-only, so a write still faults (a shared file page is made dirty
//! there, a private one copied up), and their accessed bits start clear,
//! so reclaim takes them as unused until they are. Both fault paths do it:
//! the exclusive one (`fault.rs`) and the shared one (`shared_fault.rs`),
//! each under the locks it already holds (a private mapping's top object's
//! page lock before the file's).

use crate::hw::{PageTable, Prot, PAGE_SIZE};
use crate::mapping::{Mapping, Sharing};
use crate::object::{Below, ObjectStore};
use crate::page_map::PageMap;

/// Pages a read fault on a cached file page may map at once: the aligned
/// window of 64 KiB around it (Linux's `fault_around_bytes`). A power of
/// two within one page table (512 pages), so the window's entries share
/// the faulting page's table.
pub(crate) const FAULT_AROUND: u64 = 16;

/// The object pages `[first, end)` of `m`'s fault-around window around
/// `va`, which shows page `index`: the aligned window cut to the mapping.
pub(crate) fn window(m: &Mapping, va: u64, index: u64) -> (u64, u64) {
    let window = va & !(FAULT_AROUND * PAGE_SIZE - 1);
    let from = window.max(m.start);
    let to = (window + FAULT_AROUND * PAGE_SIZE).min(m.end);
    (
        index - (va - from) / PAGE_SIZE,
        index + (to - va) / PAGE_SIZE,
    )
}

/// The cached pages of a fault-around window to map: those of `cached` (a
/// file's page index) in `window` but `index` (the faulting page) and
/// those `shadowed` says the mapping shows from elsewhere, each with the
/// address it has where `va` shows `index`.
pub(crate) fn window_pages<'a>(
    cached: &'a PageMap,
    (va, index): (u64, u64),
    window: (u64, u64),
    shadowed: impl Fn(u64) -> bool + 'a,
) -> impl Iterator<Item = (u64, crate::hw::Frame)> + 'a {
    // Addresses modulo 2^64: a file page's index may exceed the address
    // it is mapped at.
    let base = va.wrapping_sub(index.wrapping_mul(PAGE_SIZE));
    cached
        .range(window.0..window.1)
        .filter(move |&(i, _)| i != index && !shadowed(i))
        .map(move |(i, p)| (base.wrapping_add(i.wrapping_mul(PAGE_SIZE)), p.frame))
}

/// The exclusive fault path's fault-around, after a read fault at `va` of
/// `m` mapped the page: the window's cached file pages, read-only, where
/// the page table has no entry. Nothing for a mapping that is not of a
/// file (or whose private chain holds more than its top object over the
/// file, or pages `madvise` reverted).
pub(crate) fn map_around(m: &Mapping, store: &ObjectStore, pt: &mut dyn PageTable, va: u64) {
    let Some((top, index)) = m.object_page(va) else {
        return;
    };
    let Some(obj) = store.get(top) else {
        return;
    };
    let (file, shadow) = match (m.sharing, obj.below.get()) {
        (Sharing::Shared, _) if obj.is_file() => (obj, None),
        (Sharing::Private, Some(Below::Root(f))) if obj.reverted.is_empty() => {
            match store.get(f.id()) {
                Some(file) => (file, Some(obj)),
                None => return,
            }
        }
        _ => return,
    };
    let prot: Prot = m.prot.without_write();
    let shown = shadow.map(|o| o.pages.lock());
    let cached = file.pages.lock();
    let shadowed = |i: u64| shown.as_ref().is_some_and(|s| s.contains_key(&i));
    for (at, frame) in window_pages(&cached, (va, index), window(m, va, index), shadowed) {
        if pt.query(at).is_none() {
            // A table the heap refuses: the page faults later instead.
            let _ = pt.map(at, frame, prot);
        }
    }
}
