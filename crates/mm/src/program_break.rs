//! The program break (Linux `brk`) of an address space: where it starts
//! (the page-aligned end of the program), where it is now, and its moves.
//! It lives in the space, behind the space's own lock, so that `brk` can
//! be made with shared access to the system ([`MemorySystem::brk_shared`])
//! as the other mapping calls of `shared_map.rs` are: a query, a move
//! within the same page, a growth of the heap's mapping in place, and a
//! shrink that `munmap_shared` can unmap. A growth that needs a mapping of
//! its own and anything refused go the exclusive way (the kernel's `brk`),
//! which uses the same rules ([`ProgramBreak::move_to`]) and
//! [`MemorySystem::grow_anonymous`].

use crate::address_space::AddressSpace;
use crate::hw::{AsId, PageTable, PAGE_SIZE};
use crate::mapping::{Origin, Sharing};
use crate::object::{ObjectKind, ObjectStore};
use crate::posix::{parse_mmap, MmapRequest};
use crate::system::MemorySystem;
use core::sync::atomic::Ordering;
use neoos_abi::layout::USER_END;
use neoos_abi::mman;

/// A space's program break: `start`, the page-aligned end of the program
/// (the break never goes below it), and `end`, the break now (not
/// page-aligned: the pages up to its page end are mapped). Both 0 for a
/// space without one (a NeoOS program's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgramBreak {
    pub start: u64,
    pub end: u64,
}

/// What a `brk` to a new break does to the mappings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakMove {
    /// The break cannot go there (below its start, past user space): it
    /// stays, and the call returns it.
    Stays,
    /// The new break is on the same page end: nothing to map or unmap.
    Within,
    /// The pages `[old_end, new_end)` are to be mapped.
    Grows { old_end: u64, new_end: u64 },
    /// The pages `[new_end, old_end)` are to be unmapped.
    Shrinks { new_end: u64, old_end: u64 },
}

impl ProgramBreak {
    /// What moving the break to `addr` does.
    pub fn move_to(&self, addr: u64) -> BreakMove {
        if addr < self.start || addr >= USER_END {
            return BreakMove::Stays;
        }
        let old_end = self.end.next_multiple_of(PAGE_SIZE);
        let new_end = addr.next_multiple_of(PAGE_SIZE);
        match new_end.cmp(&old_end) {
            core::cmp::Ordering::Equal => BreakMove::Within,
            core::cmp::Ordering::Greater => BreakMove::Grows { old_end, new_end },
            core::cmp::Ordering::Less => BreakMove::Shrinks { new_end, old_end },
        }
    }
}

impl MemorySystem {
    /// The program break of space `id` (`None` for no such space).
    pub fn program_break(&self, id: AsId) -> Option<ProgramBreak> {
        Some(self.spaces.space(&id)?.program_break)
    }

    /// Sets the program break of space `id` (a new program's, a `brk`'s
    /// move); `false` for no such space.
    pub fn set_program_break(&mut self, id: AsId, brk: ProgramBreak) -> bool {
        let Some(space) = self.spaces.space_mut(&id) else {
            return false;
        };
        space.program_break = brk;
        true
    }

    /// Grows the private anonymous mapping that ends at `end` to `new_end`
    /// (the break's growth, as Linux merges it into the heap's mapping),
    /// when it [`can_grow`] with protection `prot`. `false` with nothing
    /// changed otherwise (the caller maps the growth as a mapping of its
    /// own).
    pub fn grow_anonymous(
        &mut self,
        id: AsId,
        (floor, end): (u64, u64),
        new_end: u64,
        prot: u32,
    ) -> bool {
        let Some(req) = growth(end, new_end, prot) else {
            return false;
        };
        let Some(space) = self.spaces.space_mut(&id) else {
            return false;
        };
        can_grow(space, &self.store, (floor, end), &req) && space.extend(end, end + req.len)
    }

    /// Linux `brk` of space `id` (page table `pt`) to `addr` with shared
    /// access to the system, when the space's lock is had within a few
    /// looks and the break stays, moves within its page end, grows the
    /// heap's mapping in place (read-write, as the exclusive way maps it)
    /// or shrinks, its pages unmapped as [`Self::munmap_shared`] unmaps
    /// them (within `most_mappings` mappings): the break returned. `None`
    /// with nothing changed otherwise: the exclusive way makes the call.
    pub fn brk_shared(
        &self,
        id: AsId,
        pt: &dyn PageTable,
        addr: u64,
        most_mappings: usize,
    ) -> Option<u64> {
        let mut space = self.spaces.space_write_briefly(&id)?;
        let brk = space.program_break;
        let end = match brk.move_to(addr) {
            BreakMove::Stays => brk.end,
            BreakMove::Within => addr,
            BreakMove::Grows { old_end, new_end } => {
                let req = growth(old_end, new_end, mman::PROT_READ | mman::PROT_WRITE)?;
                let grows = can_grow(&space, &self.store, (brk.start, old_end), &req)
                    && space.extend(old_end, new_end);
                if !grows {
                    return None;
                }
                addr
            }
            BreakMove::Shrinks { new_end, old_end } => {
                drop(space);
                // The break moves with the unmap, under the same lock, if
                // no other call moved it meanwhile.
                let moved = |space: &mut AddressSpace| {
                    let same = space.program_break == brk;
                    if same {
                        space.program_break.end = addr;
                    }
                    same
                };
                let range = (new_end, old_end - new_end);
                self.munmap_shared_if(id, pt, range, most_mappings, moved)?;
                self.store.shared_brk_calls.fetch_add(1, Ordering::Relaxed);
                return Some(addr);
            }
        };
        space.program_break.end = end;
        self.store.shared_brk_calls.fetch_add(1, Ordering::Relaxed);
        Some(end)
    }

    /// `brk` calls made with shared access.
    pub fn shared_brk_calls(&self) -> u64 {
        self.store.shared_brk_calls.load(Ordering::Relaxed)
    }
}

/// The request a new private anonymous mapping of `[end, new_end)` with
/// protection `prot` would be (`None` when it would be refused).
fn growth(end: u64, new_end: u64, prot: u32) -> Option<MmapRequest> {
    let flags = mman::MAP_PRIVATE | mman::MAP_ANON;
    parse_mmap(new_end.saturating_sub(end), prot, flags, None, 0).ok()
}

/// Whether the mapping of `space` that ends at `end` can grow by `req`
/// in place: it starts at or above `floor` (the heap's own mapping, not
/// the data below it), is private anonymous memory of the protection
/// `req` has (as a new mapping of it would), the range after it is not
/// being unmapped, and its pages past `end` can only be new: no object
/// yet, or an anonymous one only this mapping references, shadowing
/// nothing and shadowed by nothing. (Whether the range is free is
/// [`AddressSpace::extend`]'s question.)
fn can_grow(
    space: &AddressSpace,
    store: &ObjectStore,
    (floor, end): (u64, u64),
    req: &MmapRequest,
) -> bool {
    end > 0
        && !space.being_unmapped(end - 1, end + req.len)
        && space.mapping_at(end - 1).is_some_and(|m| {
            m.end == end
                && m.start >= floor
                && m.sharing == Sharing::Private
                && m.origin == Origin::Posix
                && (m.prot, m.max_prot) == (req.prot, req.max_prot)
                && m.object_id().is_none_or(|o| only_new_pages_past(store, o))
        })
}

/// Whether pages of anonymous object `id` past what its one mapping shows
/// can only be new: it is referenced by that mapping alone (no piece of a
/// cut or moved part elsewhere, no handle) and has no object below or
/// child.
pub(crate) fn only_new_pages_past(store: &ObjectStore, id: crate::hw::ObjectId) -> bool {
    store.get(id).is_some_and(|o| {
        matches!(o.kind, ObjectKind::Anonymous)
            && o.map_refs() == 1
            && o.handle_refs == 0
            && o.below.is_none()
            && o.children == [None, None]
    })
}
