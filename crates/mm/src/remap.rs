//! `mremap` (Linux): shrinking a mapping (its tail unmapped), growing it in
//! place when the pages after it are free, or moving it (`MREMAP_MAYMOVE`,
//! `MREMAP_FIXED`). A moved mapping keeps its object and offset, so the new
//! range shows the same pages; the old page-table entries are removed and a
//! refault at the new address finds the pages through the object. Every
//! check is made before anything changes: a failed `mremap` changes
//! nothing.
//!
//! Decisions: `MREMAP_DONTUNMAP` and an `old_len` of 0 (Linux's duplicate of
//! a shared mapping) are `Inval`; a `sys_mmap` (NeoOS) mapping is `Inval`.
//! A private mapping's pages are indexed in its object, which the pieces of
//! a split mapping share: a piece that grows over object pages another piece
//! shows first gets a top object of its own (its pages move there; no frame
//! is copied), unless a fork's hidden object lies below the shared top:
//! then the growth is refused with `NoMem` (Linux would succeed).

use crate::address_space::AddressSpace;
use crate::errno::Errno;
use crate::hw::{is_page_aligned, page_ceil, AsId, Hw, ObjectId, PAGE_SIZE};
use crate::mapping::{Mapping, Origin, Sharing};
use crate::object::{Below, ObjectKind, ObjectStore};
use crate::system::MemorySystem;
use crate::tlb::free_frames;
use crate::unmap::{clear_entries, remove_range, split_at};
use alloc::vec::Vec;
use neoos_abi::layout::{USER_BASE, USER_END};
use neoos_abi::mman::{MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE};

/// A checked `mremap` request: page-rounded lengths, the old range, and
/// the fixed destination if any.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Request {
    pub(crate) old: u64,
    pub(crate) old_end: u64,
    pub(crate) new_len: u64,
    pub(crate) may_move: bool,
    pub(crate) fixed: Option<u64>,
}

impl Request {
    pub(crate) fn old_len(&self) -> u64 {
        self.old_end - self.old
    }
}

/// The argument checks that need no address space (`Inval`, or `NoMem`
/// for a new length larger than the user range).
pub(crate) fn check_request(
    old: u64,
    old_len: u64,
    new_len: u64,
    flags: u32,
    new: u64,
) -> Result<Request, Errno> {
    let known = MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP;
    if flags & !known != 0 || flags & MREMAP_DONTUNMAP != 0 {
        return Err(Errno::Inval);
    }
    let may_move = flags & MREMAP_MAYMOVE != 0;
    let fixed = flags & MREMAP_FIXED != 0;
    if fixed && !may_move {
        return Err(Errno::Inval);
    }
    if !is_page_aligned(old) || old_len == 0 || new_len == 0 {
        return Err(Errno::Inval);
    }
    let old_len = page_ceil(old_len).ok_or(Errno::Inval)?;
    let new_len = page_ceil(new_len).ok_or(Errno::Inval)?;
    if new_len > USER_END - USER_BASE {
        return Err(Errno::NoMem);
    }
    let old_end = old.checked_add(old_len).ok_or(Errno::Inval)?;
    let fixed = match fixed {
        false => None,
        true => {
            let end = new.checked_add(new_len).ok_or(Errno::Inval)?;
            let overlaps = new < old_end && old < end;
            if !is_page_aligned(new) || new < USER_BASE || end > USER_END || overlaps {
                return Err(Errno::Inval);
            }
            Some(new)
        }
    };
    Ok(Request {
        old,
        old_end,
        new_len,
        may_move,
        fixed,
    })
}

/// Where a mapping goes, and whether it needs its own top object first.
#[derive(Clone, Copy, Debug)]
struct Destination {
    dest: u64,
    detach: bool,
}

/// Gives private mapping `m` a top object of its own, holding the pages
/// (and reverted marks) it showed of its shared top, over the same file if
/// any: then growing it shows no page of the other mappings of that top.
/// The caller checked that no fork's hidden object lies below the top.
/// Frames stay where they are, so page-table entries stay valid.
fn own_top(store: &mut ObjectStore, hw: &mut Hw, m: &mut Mapping) {
    let Some((top, first, end)) = m.object_pages(m.start, m.end) else {
        return;
    };
    let Some(o) = store.get_mut(top) else {
        return;
    };
    let mut pages = o.pages.get_mut().split_off(&first);
    let mut above = pages.split_off(&end);
    o.pages.get_mut().append(&mut above);
    let mut reverted = o.reverted.split_off(&first);
    let mut above = reverted.split_off(&end);
    o.reverted.append(&mut above);
    let root = match o.below.get() {
        Some(Below::Root(r)) => Some(r.id()),
        _ => None,
    };
    let fresh = store.create_mapped(ObjectKind::Anonymous);
    let below = root.and_then(|r| store.map_ref(r)).map(Below::Root);
    if let Some(n) = store.get_mut(fresh.id()) {
        *n.pages.get_mut() = pages;
        n.reverted = reverted;
        n.below = below.into();
    }
    let Some(b) = m.backing.as_mut() else {
        return;
    };
    let shared = core::mem::replace(&mut b.object, fresh);
    let mut frees = Vec::new();
    store.drop_map_ref(&mut hw.io(), shared, &mut frees);
    free_frames(&mut frees, hw.frames, store.frames_in_use.get_mut());
}

/// Whether a mapping of `space` other than the part of `m` below
/// `grown_from` shows pages `[first, end)` of private object `top`.
fn shown_elsewhere(
    space: &AddressSpace,
    m: &Mapping,
    grown_from: u64,
    top: ObjectId,
    (first, end): (u64, u64),
) -> bool {
    space.mappings.values().any(|x| {
        let from = if x.start == m.start {
            grown_from
        } else {
            x.start
        };
        if x.object_id() != Some(top) || from >= x.end {
            return false;
        }
        x.object_pages(from, x.end)
            .is_some_and(|(_, s, e)| s < end && first < e)
    })
}

impl MemorySystem {
    /// Linux `mremap`: resizes or moves `[old, old + old_len)`. Shrinking
    /// in place unmaps the tail, as `munmap` would (Linux checks no
    /// mapping then); growing or moving needs the old range in one mapping
    /// (`Fault` otherwise). Returns the new address.
    /// `Inval` for bad flags (`MREMAP_FIXED` without `MREMAP_MAYMOVE`,
    /// `MREMAP_DONTUNMAP`), an unaligned `old`, zero lengths, a fixed
    /// destination unaligned, outside the user range or overlapping the
    /// old range; `NoMem` when it cannot grow in place and may not move,
    /// or there is no room.
    #[allow(clippy::too_many_arguments)]
    pub fn mremap(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        old: u64,
        old_len: u64,
        new_len: u64,
        flags: u32,
        new: u64,
    ) -> Result<u64, Errno> {
        let req = check_request(old, old_len, new_len, flags, new)?;
        if let Some(space) = self.spaces.space(&id) {
            space.check_not_being_unmapped(req.old, req.old_end)?;
            if let Some(dest) = req.fixed {
                space.check_not_being_unmapped(dest, dest + req.new_len)?;
            }
        }
        if req.fixed.is_none() && req.new_len <= req.old_len() {
            // As Linux: a shrink is an unmap of the tail, whatever is
            // mapped there (nothing at all for equal lengths).
            let tail = req.old + req.new_len;
            if tail < req.old_end {
                if tail < USER_BASE || req.old_end > USER_END {
                    return Err(Errno::Inval);
                }
                let space = self.spaces.space_mut(&id).ok_or(Errno::Inval)?;
                remove_range(space, &mut self.store, hw, tail, req.old_end);
            }
            return Ok(req.old);
        }
        let Destination { dest, detach } = self.destination(id, &req)?;
        let space = self.spaces.space_mut(&id).ok_or(Errno::Inval)?;
        let store = &mut self.store;
        if dest == req.old {
            // Growth in place (a shrink returned above).
            let new_end = req.old + req.new_len;
            let start = space.mapping_start_at(req.old).ok_or(Errno::Fault)?;
            if !space.holes.reserve(req.old_end, new_end) {
                return Err(Errno::NoMem);
            }
            if let Some(m) = space.mappings.get_mut(&start) {
                if detach {
                    own_top(store, hw, m);
                }
                m.end = new_end;
            }
            return Ok(dest);
        }
        if req.fixed.is_some() {
            remove_range(space, store, hw, dest, dest + req.new_len);
        }
        let kept_end = req.old + req.new_len.min(req.old_len());
        if kept_end < req.old_end {
            remove_range(space, store, hw, kept_end, req.old_end);
        }
        split_at(space, store, req.old);
        split_at(space, store, kept_end);
        let mut piece = space.remove(req.old).ok_or(Errno::Fault)?;
        let mut batch = store.begin_batch();
        clear_entries(&piece, piece.start, piece.end, store, hw.pt, &mut batch);
        store.finish_batch(batch, hw.pt, hw.frames);
        hw.pt.release_tables(req.old, kept_end);
        if detach {
            own_top(store, hw, &mut piece);
        }
        piece.start = dest;
        piece.end = dest + req.new_len;
        // The destination was checked free (or just emptied); the old range
        // does not meet it.
        match space.insert(piece) {
            Ok(()) => Ok(dest),
            Err(lost) => {
                let start = lost.start;
                self.insert_mapping(id, hw, lost)?;
                Ok(start)
            }
        }
    }

    /// Where the mapping goes (`old` itself when it stays), after every
    /// check that needs the address space.
    fn destination(&self, id: AsId, req: &Request) -> Result<Destination, Errno> {
        let space = self.spaces.space(&id).ok_or(Errno::Inval)?;
        let m = space
            .mapping_at(req.old)
            .filter(|m| req.old_end <= m.end)
            .ok_or(Errno::Fault)?;
        if matches!(m.origin, Origin::Neo { .. }) {
            return Err(Errno::Inval);
        }
        let grows = req.new_len > req.old_len();
        let mut detach = false;
        if grows && m.sharing == Sharing::Private {
            if let Some((top, first, _)) = m.object_pages(req.old, req.old_end) {
                let pages = (
                    first + req.old_len() / PAGE_SIZE,
                    first + req.new_len / PAGE_SIZE,
                );
                if shown_elsewhere(&space, m, req.old_end, top, pages) {
                    // Its own top object would show the pages it had and
                    // nothing of the others': possible unless a fork's
                    // hidden object lies below.
                    let below = self.store.get(top).and_then(|o| o.below.get());
                    if matches!(below, Some(Below::Hidden { .. })) {
                        return Err(Errno::NoMem);
                    }
                    detach = true;
                }
            }
        }
        let place = |dest| Ok(Destination { dest, detach });
        if let Some(fixed) = req.fixed {
            return place(fixed);
        }
        let in_place = req
            .old
            .checked_add(req.new_len)
            .filter(|&end| end <= USER_END && m.end == req.old_end)
            .is_some_and(|end| space.holes.is_free(req.old_end, end));
        if in_place {
            return place(req.old);
        }
        if !req.may_move {
            return Err(Errno::NoMem);
        }
        place(space.holes.place(req.new_len).ok_or(Errno::NoMem)?)
    }
}
