//! Shadow objects: the private pages of private mappings and fork's
//! copy-on-write sharing, as objects over objects.
//!
//! A private mapping shows its own anonymous object (the *top*). A private
//! file mapping's top shadows the file object (`Below::Root`): pages the top
//! lacks are the file's, shown read-only until written, then copied up. A
//! fork moves a top's pages into a new *hidden* object with two children:
//! the parent's top (same id, now empty) and the child's new top. The hidden
//! object is frozen; each page there records which children no longer see
//! it (`CachePage::released`): the first child to write a page copies it,
//! the second takes it (no copy), and a page neither child sees is freed.
//! When one child goes, the hidden object is merged into the other, so a
//! chain is as deep as the forks whose both sides are still alive. Every
//! object shares its page indexes with the object below it.

use crate::errno::PageError;
use crate::hw::{Frame, Io, ObjectId};
use crate::object::{Below, CachePage, ObjectKind, ObjectStore};
use alloc::collections::BTreeSet;
use alloc::vec::Vec;

/// Where a private page was found below a top object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// In the hidden object right below the top, seen as child `side`.
    HiddenParent { parent: ObjectId, side: usize },
    /// Deeper in the chain, or in the root (file) object.
    Deeper,
}

/// The frame a private view shows at a page, and whose it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PrivatePage {
    /// A new zero page, now the top's: nothing in the chain held the page.
    Fresh(Frame),
    /// The top's own page (held before, copied up or taken just now).
    Own(Frame),
    /// A page below the top, to be shown read-only.
    Below(Frame),
}

/// Bit of child `side` in `CachePage::released`.
fn side_bit(side: usize) -> u8 {
    1 << side
}

impl ObjectStore {
    /// The object below `id` and, if it is hidden, which child `id` is.
    pub(crate) fn below_of(&self, id: ObjectId) -> Option<(ObjectId, Option<usize>)> {
        match self.objects.get(&id)?.below.get()? {
            Below::Root(r) => Some((r.id(), None)),
            Below::Hidden { parent, side } => Some((*parent, Some(*side))),
        }
    }

    /// The root (file) object at the bottom of `top`'s chain, if any.
    pub(crate) fn root_of(&self, top: ObjectId) -> Option<ObjectId> {
        let mut id = top;
        loop {
            match self.objects.get(&id)?.below.get()? {
                Below::Root(r) => return Some(r.id()),
                Below::Hidden { parent, .. } => id = *parent,
            }
        }
    }

    /// The page shown at `index` by a view whose top is `top`, among the
    /// resident pages (nothing is read or allocated), with the object
    /// holding it.
    pub(crate) fn visible_page(&self, top: ObjectId, index: u64) -> Option<(ObjectId, CachePage)> {
        let mut id = top;
        let mut via: Option<usize> = None;
        loop {
            let o = self.objects.get(&id)?;
            if let Some(p) = o.pages.lock().get(&index) {
                if via.is_none_or(|side| p.released & side_bit(side) == 0) {
                    return Some((id, *p));
                }
            }
            if !o.reverted.is_empty() && o.reverted.contains(&index) {
                let root = self.root_of(id)?;
                let p = self.objects.get(&root)?.pages.lock().get(&index).copied()?;
                return Some((root, p));
            }
            let (next, side) = self.below_of(id)?;
            id = next;
            via = side;
        }
    }

    /// The page a private view with top `top` shows at `index` from below
    /// the top: a hidden ancestor's page, else the root file's (read in if
    /// needed), else none (zero).
    pub(crate) fn find_below(
        &mut self,
        io: &mut Io,
        top: ObjectId,
        index: u64,
    ) -> Result<Option<(Frame, Found)>, PageError> {
        let mut id = top;
        let mut depth = 0usize;
        loop {
            let Some(o) = self.objects.get(&id) else {
                return Ok(None);
            };
            if !o.reverted.is_empty() && o.reverted.contains(&index) {
                return self.root_page(io, id, index);
            }
            let Some((next, side)) = self.below_of(id) else {
                return Ok(None);
            };
            let Some(side) = side else {
                // The root: its page, read from the file on first use.
                let frame = self.page_frame(io, next, index)?;
                return Ok(Some((frame, Found::Deeper)));
            };
            depth += 1;
            if let Some(p) = self
                .objects
                .get(&next)
                .and_then(|o| o.pages.lock().get(&index).copied())
            {
                if p.released & side_bit(side) == 0 {
                    let found = if depth == 1 {
                        Found::HiddenParent { parent: next, side }
                    } else {
                        Found::Deeper
                    };
                    return Ok(Some((p.frame, found)));
                }
            }
            id = next;
        }
    }

    /// The root's page at `index` for a view below `id` (none: zero).
    fn root_page(
        &mut self,
        io: &mut Io,
        id: ObjectId,
        index: u64,
    ) -> Result<Option<(Frame, Found)>, PageError> {
        match self.root_of(id) {
            Some(root) => Ok(Some((self.page_frame(io, root, index)?, Found::Deeper))),
            None => Ok(None),
        }
    }

    /// The first touch of page `index` of a private view whose top object
    /// `top` shadows nothing: a new zero page, recorded in `top` (one index
    /// search). `None` when `top` holds the page already or shadows another
    /// object: the general path ([`ObjectStore::private_page`]) decides.
    #[inline]
    pub(crate) fn zero_fill_top(
        &mut self,
        io: &mut Io,
        top: ObjectId,
        index: u64,
    ) -> Result<Option<Frame>, PageError> {
        let ObjectStore {
            objects,
            frames_in_use,
            ..
        } = self;
        let obj = objects.get_mut(&top).ok_or(PageError::BeyondEndOfFile)?;
        if !obj.below.is_none() {
            return Ok(None);
        }
        let frames = &mut *io.frames;
        obj.pages.get_mut().insert_vacant(index, || {
            let frame = frames.alloc_zeroed().ok_or(PageError::NoMem)?;
            *frames_in_use.get_mut() += 1;
            Ok(CachePage::new(frame))
        })
    }

    /// The frame a private view with top `top` writes at `index`: its own
    /// page, else a copy of what it shows (taken without a copy when the
    /// hidden parent's other child no longer sees it), else a zero page.
    /// With `write` false, a page found below is returned as is (to map
    /// read-only).
    pub(crate) fn private_page(
        &mut self,
        io: &mut Io,
        top: ObjectId,
        index: u64,
        write: bool,
    ) -> Result<PrivatePage, PageError> {
        // The common cases with one search each: the top's own page, or a zero
        // page for a view with nothing below.
        let ObjectStore {
            objects,
            frames_in_use,
            ..
        } = self;
        let obj = objects.get_mut(&top).ok_or(PageError::BeyondEndOfFile)?;
        if let Some(own) = obj.pages.get_mut().get(&index) {
            return Ok(PrivatePage::Own(own.frame));
        }
        if obj.below.is_none() {
            let frame = io.frames.alloc_zeroed().ok_or(PageError::NoMem)?;
            *frames_in_use.get_mut() += 1;
            obj.pages.get_mut().insert(index, CachePage::new(frame));
            return Ok(PrivatePage::Fresh(frame));
        }
        let found = self.find_below(io, top, index)?;
        let frame = match found {
            Some((frame, _)) if !write => return Ok(PrivatePage::Below(frame)),
            None => self.alloc_zeroed(io.frames)?,
            Some((frame, Found::HiddenParent { parent, side })) => {
                self.copy_or_take(io, parent, side, index, frame)?
            }
            Some((frame, Found::Deeper)) => self.copy_page(io, frame)?,
        };
        if let Some(o) = self.objects.get_mut(&top) {
            o.pages.get_mut().insert(index, CachePage::new(frame));
            if !o.reverted.is_empty() {
                o.reverted.remove(&index);
            }
        }
        Ok(match found {
            None => PrivatePage::Fresh(frame),
            Some(_) => PrivatePage::Own(frame),
        })
    }

    /// Child `side` of hidden object `parent` writes page `index` (holding
    /// `frame`): it takes the page if the other child no longer sees it,
    /// else copies it and stops seeing it.
    fn copy_or_take(
        &mut self,
        io: &mut Io,
        parent: ObjectId,
        side: usize,
        index: u64,
        frame: Frame,
    ) -> Result<Frame, PageError> {
        let other_gone = self
            .objects
            .get(&parent)
            .and_then(|o| o.pages.lock().get(&index).copied())
            .is_some_and(|p| p.released & side_bit(1 - side) != 0);
        if other_gone {
            if let Some(o) = self.objects.get_mut(&parent) {
                o.pages.get_mut().remove(&index);
            }
            return Ok(frame);
        }
        let copy = self.copy_page(io, frame)?;
        if let Some(p) = self
            .objects
            .get_mut(&parent)
            .and_then(|o| o.pages.get_mut().get_mut(&index))
        {
            p.released |= side_bit(side);
        }
        Ok(copy)
    }

    /// A private view with top `top` gives up pages `[first, end)`: its
    /// own pages go to `frees`, and its hidden parent's pages there stop
    /// being seen from this side (freed when neither child sees them).
    /// With `revert` (MADV_DONTNEED), the range shows the root (or zero)
    /// again where an ancestor still holds a page; otherwise (munmap) the
    /// range is no longer shown at all.
    pub(crate) fn release_private_range(
        &mut self,
        top: ObjectId,
        first: u64,
        end: u64,
        revert: bool,
        frees: &mut Vec<Frame>,
    ) {
        let Some(o) = self.objects.get_mut(&top) else {
            return;
        };
        let whole = o
            .pages
            .get_mut()
            .first_key_value()
            .is_none_or(|(k, _)| k >= first)
            && o.pages
                .get_mut()
                .last_key_value()
                .is_none_or(|(k, _)| k < end);
        let own = if whole {
            core::mem::take(o.pages.get_mut())
        } else {
            let mut tail = o.pages.get_mut().split_off(&first);
            let mut keep = tail.split_off(&end);
            o.pages.get_mut().append(&mut keep);
            tail
        };
        frees.extend(own.values().map(|p| p.frame));
        if !o.reverted.is_empty() {
            let mut tail = o.reverted.split_off(&first);
            let mut keep = tail.split_off(&end);
            o.reverted.append(&mut keep);
        }
        let Some((parent, Some(side))) = self.below_of(top) else {
            return;
        };
        if revert {
            let held = self.indexes_held_below(top, first, end);
            if let Some(o) = self.objects.get_mut(&top) {
                o.reverted.extend(held);
            }
        }
        let Some(h) = self.objects.get_mut(&parent) else {
            return;
        };
        let mut unseen = Vec::new();
        for (index, page) in h.pages.get_mut().range_mut(first..end) {
            page.released |= side_bit(side);
            if page.released == 0b11 {
                unseen.push(index);
            }
        }
        for index in unseen {
            if let Some(p) = h.pages.get_mut().remove(&index) {
                frees.push(p.frame);
            }
        }
    }

    /// Indexes in `[first, end)` where an anonymous object below `top`
    /// holds a page.
    fn indexes_held_below(&self, top: ObjectId, first: u64, end: u64) -> BTreeSet<u64> {
        let mut held = BTreeSet::new();
        let mut id = top;
        while let Some((next, side)) = self.below_of(id) {
            if side.is_none() {
                break;
            }
            if let Some(o) = self.objects.get(&next) {
                held.extend(o.pages.lock().range(first..end).map(|(i, _)| i));
                held.extend(o.reverted.range(first..end).copied());
            }
            id = next;
        }
        held
    }

    /// A new private view (top object) over file object `file`.
    pub(crate) fn shadow_of(&mut self, file: ObjectId) -> Option<ObjectId> {
        let root = self.map_ref(file)?;
        let top = self.create(ObjectKind::Anonymous, 0);
        if let Some(t) = self.objects.get_mut(&top) {
            t.below = Some(Below::Root(root)).into();
        }
        Some(top)
    }

    /// Fork of the private view whose top is `top`: its pages move into a
    /// new hidden object below it, and the child gets a new top over that
    /// same hidden object. Returns the child's top, or `None` when the view
    /// holds nothing yet (the child starts empty too).
    pub(crate) fn fork_private(&mut self, top: ObjectId) -> Option<ObjectId> {
        let t = self.objects.get_mut(&top)?;
        if t.pages.get_mut().is_empty() && t.reverted.is_empty() && t.below.is_none() {
            return None;
        }
        let pages = core::mem::take(&mut t.pages);
        let reverted = core::mem::take(&mut t.reverted);
        let below = t.below.take();
        let hidden = self.create(ObjectKind::Anonymous, 0);
        let child = self.create(ObjectKind::Anonymous, 0);
        if let Some(Below::Hidden { parent, side }) = &below {
            if let Some(g) = self.objects.get_mut(parent) {
                g.children[*side] = Some(hidden);
            }
        }
        if let Some(h) = self.objects.get_mut(&hidden) {
            h.pages = pages;
            h.reverted = reverted;
            h.below = below.into();
            h.children = [Some(top), Some(child)];
        }
        for (id, side) in [(top, 0), (child, 1)] {
            if let Some(o) = self.objects.get_mut(&id) {
                o.below = Some(Below::Hidden {
                    parent: hidden,
                    side,
                })
                .into();
            }
        }
        Some(child)
    }

    /// Child `side` of hidden object `hidden` is gone: the hidden object
    /// merges into its other child, or goes if there is none.
    pub(crate) fn leave_hidden(
        &mut self,
        io: &mut Io,
        hidden: ObjectId,
        side: usize,
        frees: &mut Vec<Frame>,
    ) {
        let Some(h) = self.objects.get_mut(&hidden) else {
            return;
        };
        h.children[side] = None;
        match h.children[1 - side] {
            Some(survivor) => self.merge_into(hidden, 1 - side, survivor, frees),
            None => {
                let _ = self.release_if_unused(io, hidden, frees);
            }
        }
    }

    /// Moves hidden object `hidden` into its only child `survivor` (child
    /// `side`): pages the survivor still sees and lacks move up, the others
    /// are freed, and the survivor takes the hidden object's place below.
    fn merge_into(
        &mut self,
        hidden: ObjectId,
        side: usize,
        survivor: ObjectId,
        frees: &mut Vec<Frame>,
    ) {
        let Some(h) = self.objects.remove_boxed(&hidden) else {
            return;
        };
        if let Some(Below::Hidden { parent, side }) = h.below.get() {
            if let Some(g) = self.objects.get_mut(parent) {
                g.children[*side] = Some(survivor);
            }
        }
        let Some(s) = self.objects.get_mut(&survivor) else {
            return;
        };
        for (index, mut page) in h.pages.into_inner().into_pages() {
            let seen = page.released & side_bit(side) == 0;
            if seen && !s.pages.get_mut().contains_key(&index) && !s.reverted.contains(&index) {
                page.released = 0;
                s.pages.get_mut().insert(index, page);
            } else {
                frees.push(page.frame);
            }
        }
        for index in h.reverted {
            if !s.pages.get_mut().contains_key(&index) {
                s.reverted.insert(index);
            }
        }
        s.below = h.below;
    }
}
