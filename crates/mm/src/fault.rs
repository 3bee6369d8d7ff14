//! Demand paging: resolving a page of a mapping for an access (zero-fill,
//! page-cache read, copy-on-write copy or reuse) and installing the
//! page-table entry. Shared file pages are mapped writable only on a write
//! fault, which marks them dirty: that is how dirty state is tracked across
//! address spaces.

use crate::address_space::FaultHint;
use crate::errno::FaultError;
use crate::hw::{Access, Frame, Hw, Prot, PteInfo, PAGE_SIZE};
use crate::mapping::{Backing, Mapping, Sharing};
use crate::object::{ObjectKind, ObjectStore};
use crate::shadow::PrivatePage;
use crate::tlb::TlbBatch;

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
    let (frame, prot, pte) = match m.sharing {
        Sharing::Shared => {
            let pte = hw.pt.query(va);
            let (frame, prot) = resolve_shared(m, store, hw, va, write, pte)?;
            (frame, prot, pte)
        }
        Sharing::Private => {
            let (frame, prot, fresh) = resolve_private(m, store, hw, va, write)?;
            // A new zero page no object held before: no entry can show it
            // or anything else at `va` (entries only show the chain's pages).
            let pte = if fresh { None } else { hw.pt.query(va) };
            (frame, prot, pte)
        }
    };
    let install = if allowed {
        Install::Map(prot)
    } else {
        Install::Skip
    };
    install_entry(hw, batch, va, frame, install, pte)?;
    if allowed && !write {
        crate::fault_around::map_around(m, store, hw.pt, va);
    }
    Ok(frame)
}

/// The common first touch: an allowed access to a page of a private mapping
/// whose top object shadows nothing and lacks the page. A new zero page is
/// recorded and mapped with the mapping's protection: no entry can show
/// anything at `va` (entries only show the chain's pages), so the entry is
/// mapped without querying it first, and a new entry needs no TLB flush
/// (no batch). `None`: another case, for [`fault_page`].
pub(crate) fn zero_fill_private(
    m: &mut Mapping,
    store: &mut ObjectStore,
    hw: &mut Hw,
    va: u64,
    access: Access,
) -> Result<Option<Frame>, FaultError> {
    if m.sharing != Sharing::Private || !m.prot.allows(access) {
        return Ok(None);
    }
    let backing = match &mut m.backing {
        Some(b) => b,
        empty => empty.insert(Backing {
            object: store.create_mapped(ObjectKind::Anonymous),
            first_page: m.start / PAGE_SIZE,
        }),
    };
    let index = backing.first_page + (va - m.start) / PAGE_SIZE;
    let top = backing.object.id();
    zero_fill_top_page(store, hw, top, index, va, m.prot)
}

/// [`zero_fill_private`] through the address space's fault hint, without
/// the mapping: `None` when `va` is outside the hinted mapping, the access
/// is not allowed, or the top object has the page or shadows another.
#[inline]
pub(crate) fn zero_fill_hinted(
    hint: FaultHint,
    store: &mut ObjectStore,
    hw: &mut Hw,
    va: u64,
    access: Access,
) -> Result<Option<Frame>, FaultError> {
    let Some(index) = hint.page_of(va) else {
        return Ok(None);
    };
    if !hint.prot.allows(access) {
        return Ok(None);
    }
    zero_fill_top_page(store, hw, hint.top, index, va, hint.prot)
}

/// A new zero page at `index` of `top` (if `top` shadows nothing and lacks
/// it), mapped at `va` with `prot`.
#[inline]
fn zero_fill_top_page(
    store: &mut ObjectStore,
    hw: &mut Hw,
    top: crate::hw::ObjectId,
    index: u64,
    va: u64,
    prot: Prot,
) -> Result<Option<Frame>, FaultError> {
    let Some(frame) = store.zero_fill_top(&mut hw.io(), top, index)? else {
        return Ok(None);
    };
    hw.pt.map(va, frame, prot).map_err(|_| FaultError::NoMem)?;
    Ok(Some(frame))
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
    let new_writer = grant_write && !already_writable;
    if write || new_writer {
        // `page_frame` made the page resident in `frame`.
        let page = obj.mark_dirty(index, frame);
        if new_writer {
            page.writers += 1;
        }
    }
    let prot = if grant_write {
        m.prot
    } else {
        m.prot.without_write()
    };
    Ok((frame, prot))
}

/// A page of a private mapping: its top object's own page (writable), else
/// what the objects below show (read-only until written, then copied up),
/// else a new zero page. A private anonymous mapping gets its top object
/// on its first fault. The bool says whether the frame is a new zero page
/// that nothing in the chain held.
fn resolve_private(
    m: &mut Mapping,
    store: &mut ObjectStore,
    hw: &mut Hw,
    va: u64,
    write: bool,
) -> Result<(Frame, Prot, bool), FaultError> {
    let prot = m.prot;
    let backing = match &mut m.backing {
        Some(b) => b,
        empty => empty.insert(Backing {
            object: store.create_mapped(ObjectKind::Anonymous),
            first_page: m.start / PAGE_SIZE,
        }),
    };
    let top = backing.object.id();
    let index = backing.first_page + (va - m.start) / PAGE_SIZE;
    Ok(match store.private_page(&mut hw.io(), top, index, write)? {
        PrivatePage::Fresh(frame) => (frame, prot, true),
        PrivatePage::Own(frame) => (frame, prot, false),
        PrivatePage::Below(frame) => (frame, prot.without_write(), false),
    })
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
