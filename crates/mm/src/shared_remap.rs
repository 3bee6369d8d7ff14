//! Linux `mremap` made with shared access to the system (`&MemorySystem`,
//! the kernel's lock held for reading), as the mapping calls of
//! `shared_map.rs` are, under the space's own lock: the growth of a whole
//! mapping of private anonymous memory whose pages past its end can only
//! be new (no object yet, or one only it references, shadowing nothing:
//! [`only_new_pages_past`], the program break's rule), so that it never
//! needs a top object of its own:
//! - in place, when the range after it is free;
//! - else moved (`MREMAP_MAYMOVE`) to a free range: the new range is
//!   taken first (a mapping without an object), then the old mapping
//!   leaves the index and its object goes to the new one (the new range
//!   shows the same pages, which fault in there); its entries are removed
//!   and flushed from every TLB before the call returns (no CPU can reach
//!   an old page through the old range once it has), and the old range's
//!   page tables are freed by the next exclusive section.
//!
//! A shrink unmaps the tail as the shared `munmap` does (the mappings there
//! in its case). Anything else (growing a part of a mapping, the same
//! length, `MREMAP_FIXED`, a growth of a file or shared mapping or a cut
//! or forked one, a space near its bound on mappings, a space whose lock
//! stays taken) is `None` with nothing changed: the
//! kernel makes the call again the exclusive way (`remap.rs`), which
//! handles every case and reports every error.

use crate::address_space::AddressSpace;
use crate::hw::{AsId, PageTable};
use crate::mapping::{Mapping, Origin, Sharing};
use crate::program_break::only_new_pages_past;
use crate::remap::{check_request, Request};
use crate::system::MemorySystem;
use core::sync::atomic::Ordering;
use neoos_abi::layout::USER_END;

/// Mappings the exclusive `mremap` counts a call to add against the bound
/// on a space's mappings (kernel-core's `mremap`): the shared way takes
/// only spaces that have that room, so the answer never depends on the way.
const MREMAP_CHARGE: usize = 3;

impl MemorySystem {
    /// Linux `mremap` of `[old, old + old_len)` to `new_len` bytes with
    /// shared access, in the module's case: the mapping's new address, or
    /// `None` with nothing changed. `pt`: the space's page table;
    /// `most_mappings`: the bound on the space's mappings.
    pub fn mremap_shared(
        &self,
        id: AsId,
        pt: &dyn PageTable,
        (old, old_len, new_len): (u64, u64, u64),
        flags: u32,
        most_mappings: usize,
    ) -> Option<u64> {
        let req = check_request(old, old_len, new_len, flags, 0).ok()?;
        if req.fixed.is_some() || !pt.changes_shared() {
            return None;
        }
        if req.new_len < req.old_len() {
            return self.shrink_shared(id, pt, &req, most_mappings);
        }
        if req.new_len == req.old_len() {
            return None;
        }
        let mut space = self.spaces.space_write_briefly(&id)?;
        if space.mapping_count() + MREMAP_CHARGE > most_mappings
            || !self.grows_alone(&space, (req.old, req.old_end))
        {
            return None;
        }
        let new_end = req
            .old
            .checked_add(req.new_len)
            .filter(|&end| end <= USER_END);
        let moved = match new_end {
            Some(end) if space.holes.is_free(req.old_end, end) => {
                space.extend(req.old_end, end).then_some(req.old)
            }
            _ if req.may_move => self.move_mapping(id, &mut space, pt, req.old, req.new_len),
            _ => None,
        }?;
        self.store
            .shared_remap_calls
            .fetch_add(1, Ordering::Relaxed);
        Some(moved)
    }

    /// A shrink: the tail `[old + new_len, old_end)` unmapped as
    /// [`Self::munmap_shared`] unmaps it (as the exclusive way, whatever
    /// is mapped there), when nothing of the old range is being unmapped
    /// and the space has the room the exclusive way counts.
    fn shrink_shared(
        &self,
        id: AsId,
        pt: &dyn PageTable,
        req: &Request,
        most_mappings: usize,
    ) -> Option<u64> {
        let tail = req.old + req.new_len;
        let may = |space: &mut AddressSpace| {
            space.mapping_count() + MREMAP_CHARGE <= most_mappings
                && !space.being_unmapped(req.old, req.old_end)
        };
        self.munmap_shared_if(id, pt, (tail, req.old_end - tail), most_mappings, may)?;
        self.store
            .shared_remap_calls
            .fetch_add(1, Ordering::Relaxed);
        Some(req.old)
    }

    /// Whether the mapping of `space` that is exactly `[start, end)` is
    /// one the module grows: POSIX private anonymous memory whose pages
    /// past its end can only be new, not being unmapped.
    fn grows_alone(&self, space: &AddressSpace, (start, end): (u64, u64)) -> bool {
        space.mappings.get(&start).is_some_and(|m| {
            m.end == end
                && m.sharing == Sharing::Private
                && m.origin == Origin::Posix
                && !space.being_unmapped(start, end)
                && m.object_id()
                    .is_none_or(|o| only_new_pages_past(&self.store, o))
        })
    }

    /// Moves the mapping at `old` of `space` (whose lock is held) to a
    /// free range of `new_len` bytes: that range taken first (and given
    /// back if the exclusive section's list has no room), so that nothing
    /// can fail once the old mapping leaves; the old entries removed and
    /// flushed. `None` with nothing changed when no range is free, the
    /// list has no room or the space refuses the new range.
    fn move_mapping(
        &self,
        id: AsId,
        space: &mut AddressSpace,
        pt: &dyn PageTable,
        old: u64,
        new_len: u64,
    ) -> Option<u64> {
        let dest = space.holes.place(new_len)?;
        let m = space.mappings.get(&old)?;
        let taken = Mapping {
            start: dest,
            end: dest + new_len,
            backing: None,
            ..*m
        };
        let has_object = m.backing.is_some();
        space.insert(taken).ok()?;
        if has_object && !self.reserve_range() {
            space.remove(dest);
            return None;
        }
        // Nothing changed before this point (but the new range taken).
        let Some(mut m) = space.remove(old) else {
            return None; // Never: the mapping was just found.
        };
        self.remove_entries_now(&m, pt);
        if let Some(new) = space.mapping_at_mut(dest) {
            new.backing = m.backing.take();
        }
        if has_object {
            self.leave_range(id, (m.start, m.end));
        }
        Some(dest)
    }

    /// `mremap` calls made with shared access.
    pub fn shared_remap_calls(&self) -> u64 {
        self.store.shared_remap_calls.load(Ordering::Relaxed)
    }
}
