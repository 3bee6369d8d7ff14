//! Demand paging: resolving a page of a mapping for an access (zero-fill,
//! page-cache read, copy-on-write copy or reuse) and installing the
//! page-table entry. Shared file pages are mapped writable only on a write
//! fault, which marks them dirty: that is how dirty state is tracked across
//! address spaces.

use crate::errno::FaultError;
use crate::hw::{Access, Frame, Hw, Prot, PteInfo, PAGE_SIZE};
use crate::mapping::{Mapping, Sharing};
use crate::object::ObjectStore;
use crate::tlb::TlbBatch;
use alloc::collections::btree_map::{Entry, OccupiedEntry};

/// What to do with the resolved page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Install {
    /// Install (or upgrade) the entry with this protection.
    Map(Prot),
    /// Leave the page table alone (forced kernel write through a read-only
    /// mapping), but drop an entry that shows a stale frame.
    Skip,
}

/// Makes the page at `va` of `m` present for `access` and returns its frame.
/// `force` ignores the mapping's protection (kernel writes of program text).
pub(crate) fn fault_page(
    m: &mut Mapping,
    store: &mut ObjectStore,
    hw: &mut Hw,
    batch: &mut TlbBatch,
    va: u64,
    access: Access,
    force: bool,
) -> Result<Frame, FaultError> {
    let allowed = m.prot.allows(access);
    if !allowed && !force {
        return Err(FaultError::NotPermitted);
    }
    let write = access == Access::Write;
    let pte = hw.pt.query(va);
    let (frame, prot) = match m.sharing {
        Sharing::Shared => resolve_shared(m, store, hw, va, write, pte)?,
        Sharing::Private => resolve_private(m, store, hw, va, write)?,
    };
    let install = if allowed {
        Install::Map(prot)
    } else {
        Install::Skip
    };
    install_entry(hw, batch, va, frame, install, pte)?;
    Ok(frame)
}

/// A page of a shared mapping: the object's page. File pages get write
/// permission (and become dirty) only for writes.
fn resolve_shared(
    m: &Mapping,
    store: &mut ObjectStore,
    hw: &mut Hw,
    va: u64,
    write: bool,
    pte: Option<PteInfo>,
) -> Result<(Frame, Prot), FaultError> {
    let (object, index) = m.object_page(va).ok_or(FaultError::NotMapped)?;
    let frame = store.page_frame(&mut hw.io(), object, index)?;
    let obj = store.get_mut(object).ok_or(FaultError::NotMapped)?;
    if !obj.is_file() {
        return Ok((frame, m.prot));
    }
    let already_writable = pte.is_some_and(|p| p.frame == frame && p.prot.write);
    let grant_write = m.prot.write && (write || already_writable);
    if let Some(page) = obj.pages.get_mut(&index) {
        if write {
            page.dirty = true;
        }
        if grant_write && !already_writable {
            page.writers += 1;
            page.dirty = true;
        }
    }
    let prot = if grant_write {
        m.prot
    } else {
        m.prot.without_write()
    };
    Ok((frame, prot))
}

/// A page of a private mapping: its own page if it has one (copied first if
/// shared copy-on-write and written), else the backing file's cache page
/// (read-only until written, then copied), else a new zero page.
fn resolve_private(
    m: &mut Mapping,
    store: &mut ObjectStore,
    hw: &mut Hw,
    va: u64,
    write: bool,
) -> Result<(Frame, Prot), FaultError> {
    let prot = m.prot;
    let backing_page = m.object_page(va);
    // One search of the private pages finds the page or the place for it.
    let slot = match m.private_pages.entry(va / PAGE_SIZE) {
        Entry::Occupied(own) => return resolve_own_page(own, store, hw, prot, write),
        Entry::Vacant(slot) => slot,
    };
    let Some((object, index)) = backing_page else {
        let zero = store.alloc_zeroed(hw.frames)?;
        slot.insert(zero);
        return Ok((zero, prot));
    };
    let cached = store.page_frame(&mut hw.io(), object, index)?;
    if !write {
        return Ok((cached, prot.without_write()));
    }
    let copy = store.alloc_frame(hw.frames)?;
    hw.frames.copy(cached, copy);
    slot.insert(copy);
    Ok((copy, prot))
}

/// A private page the mapping already has: copied first when it is shared
/// copy-on-write and this is a write.
fn resolve_own_page(
    mut own: OccupiedEntry<u64, Frame>,
    store: &mut ObjectStore,
    hw: &mut Hw,
    prot: Prot,
    write: bool,
) -> Result<(Frame, Prot), FaultError> {
    let frame = *own.get();
    if !store.is_cow_shared(frame) {
        return Ok((frame, prot));
    }
    if !write {
        return Ok((frame, prot.without_write()));
    }
    let copy = store.alloc_frame(hw.frames)?;
    hw.frames.copy(frame, copy);
    store.cow_leave(frame);
    own.insert(copy);
    Ok((copy, prot))
}

/// Puts `frame` at `va` with the decided protection, replacing a stale entry.
fn install_entry(
    hw: &mut Hw,
    batch: &mut TlbBatch,
    va: u64,
    frame: Frame,
    install: Install,
    pte: Option<PteInfo>,
) -> Result<(), FaultError> {
    match (install, pte) {
        (Install::Skip, Some(old)) if old.frame != frame => {
            hw.pt.unmap(va);
            batch.invalidate(va);
            Ok(())
        }
        (Install::Skip, _) => Ok(()),
        (Install::Map(prot), Some(old)) if old.frame == frame => {
            if old.prot != prot {
                hw.pt.protect(va, prot);
                batch.invalidate(va);
            }
            Ok(())
        }
        (Install::Map(prot), old) => {
            if old.is_some() {
                hw.pt.unmap(va);
                batch.invalidate(va);
            }
            hw.pt.map(va, frame, prot).map_err(|_| FaultError::NoMem)
        }
    }
}
