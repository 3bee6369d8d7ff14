//! Reclaim: RAM is a cache of the disk. When the kernel finds free frames
//! low it asks [`MemorySystem::reclaim`] for some back; the page cache's
//! clock (second chance) walks the cached pages of the files whose pager
//! can read them again ([`crate::Pager::evictable`]: files on the disk)
//! and takes the first ones not used since its last pass.
//!
//! - The clock is the objects' own page maps: the hand is a (file, page
//!   index) position, moved through the file index in id order and each
//!   file object's pages in index order, wrapping at the end. No list to
//!   keep, nothing to allocate, no stale entry.
//! - Use since the last pass: the page's `referenced` flag (set by `read`
//!   and `write` through the cache) or the accessed bit of an entry that
//!   shows the page. The hand clears both as it passes (second chance).
//! - Mapped pages: the mappings that show a file object's pages are found
//!   by one pass over the address spaces' mappings (shared mappings of the
//!   object, private ones whose chain ends in it), once per object the
//!   hand meets in a call; an entry shows the page when it holds the
//!   page's frame (a private page copied up holds another). Each such
//!   entry is removed (and flushed) in its own space's page table, reached
//!   through [`SpaceTables`]; a writable one is one writer less.
//! - Dirty pages: [`MemorySystem::reclaim`] writes them first, by the
//!   write-back munmap and msync use (`ObjectStore::write_back`); when that
//!   fails the page stays, dirty. [`MemorySystem::reclaim_leaving_dirty`]
//!   (the kernel's) writes nothing: their entries go as a clean page's do,
//!   and the span of one file's such pages is handed back
//!   ([`Reclaimed::to_write`]) for the caller to write without its lock;
//!   [`MemorySystem::evict_written`] then evicts those of them still
//!   clean and unused (or, asked to, writes them first, the old way).
//!   A page inside a range a process locked (`mlock`) stays.
//! - Never evicted: anonymous memory, System V segments, private copies
//!   (they are not in the file index), files whose pager says no (RAM
//!   files: `/tmp`, the initial file system). Without swap, anonymous
//!   memory still runs out.
//! - Cost: each step of the hand is one ordered-map search; a call stops
//!   after `budget` steps, so the work per call is bounded by the caller.
//!   Finding the mappings of a mapped object costs one pass over every
//!   mapping, once per mapped object per call.
//!
//! An evicted page is absent from its object: the next fault or `read`
//! reads it from the pager again (`ObjectStore::page_frame`).

use crate::hw::{AsId, FileId, Io, ObjectId, PageTable};
use crate::mapping::Sharing;
use crate::object::count_down;
use crate::system::MemorySystem;
use alloc::vec::Vec;

/// Wraps of the hand one call allows beyond the first (see
/// [`MemorySystem::reclaim`]): two whole laps and the part before.
const LAPS: usize = 2;

/// Dirty pages written together (one write-back, one device flush).
const WRITE_BATCH: usize = 64;

/// The page tables of every address space, and the ranges processes
/// locked: what reclaim needs beyond one call's [`crate::Hw`].
pub trait SpaceTables {
    /// The page table of address space `space`, if it has one.
    fn table(&mut self, space: AsId) -> Option<&mut dyn PageTable>;
    /// Whether the page at `va` of `space` is locked in RAM (`mlock`).
    fn locked(&self, space: AsId, va: u64) -> bool {
        let _ = (space, va);
        false
    }
}

/// Where the clock hand stands: the next page it looks at is the first
/// cached page of `file` at or after `index` (or of the next file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockHand {
    file: Option<FileId>,
    index: u64,
}

/// The pages of one file a `write` under way covers in part (its first,
/// its last), read before it without the kernel's lock: reclaim leaves
/// them until the write is made ([`MemorySystem::keep_for_write`]), so
/// that the write's own reclaim (before each chunk) never evicts one and
/// the write never reads it again under the lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeptForWrite {
    file: Option<FileId>,
    pages: [Option<u64>; 2],
}

impl KeptForWrite {
    fn keeps(&self, file: FileId, index: u64) -> bool {
        self.file == Some(file) && self.pages.contains(&Some(index))
    }
}

/// What a [`MemorySystem::reclaim`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Frames given back to the frame source.
    pub freed: usize,
    /// Steps of the hand (pages looked at, files passed).
    pub scanned: usize,
    /// Dirty pages written before they went.
    pub written: usize,
    /// Dirty pages whose write failed (kept, still dirty).
    pub write_errors: usize,
    /// Dirty pages left dirty, their entries gone, for the caller to write
    /// ([`MemorySystem::reclaim_leaving_dirty`]): those of
    /// [`Self::to_write`] and of other files (found by the next lap).
    pub left_dirty: usize,
    /// The pages of one file [`MemorySystem::reclaim_leaving_dirty`] left
    /// dirty: to be written, then evicted ([`MemorySystem::evict_written`]).
    pub to_write: Option<PagesToWrite>,
}

/// Pages `first..end` of `file`, some of them dirty and shown by no entry,
/// left by reclaim for its caller to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagesToWrite {
    /// The file.
    pub file: FileId,
    /// Its first page left dirty.
    pub first: u64,
    /// The page after its last.
    pub end: u64,
}

/// A mapping that may show pages of the object being reclaimed.
#[derive(Clone, Copy, Debug)]
struct View {
    space: AsId,
    start: u64,
    end: u64,
    first_page: u64,
    shared: bool,
}

impl View {
    /// The address at which this mapping shows page `index`, if it does.
    fn va_of(&self, index: u64) -> Option<u64> {
        let offset = index
            .checked_sub(self.first_page)?
            .checked_mul(crate::PAGE_SIZE)?;
        let va = self.start.checked_add(offset)?;
        (va < self.end).then_some(va)
    }
}

/// What the hand found next.
enum Step {
    /// Page `index` of `file`'s object `id`.
    Page(FileId, ObjectId, u64),
    /// A file passed without a page at or after the hand (one step);
    /// `wrapped` when the hand went from the last file to the first.
    Passed { wrapped: bool },
    /// No file is cached.
    Empty,
}

/// What becomes of one page the hand looked at.
enum Verdict {
    /// Clean and shown by no entry: its frame goes now.
    Evict,
    /// Dirty and shown by no entry: written with the pending batch, then
    /// evicted.
    Write,
    /// It stays (used, locked, or still mapped writable).
    Keep,
}

impl MemorySystem {
    /// Reclaim leaves pages `pages` of `file` (a `write`'s first and last,
    /// which it covers in part) until [`Self::release_kept_for_write`].
    pub fn keep_for_write(&mut self, file: FileId, pages: [Option<u64>; 2]) {
        self.store.kept_for_write = KeptForWrite {
            file: Some(file),
            pages,
        };
    }

    /// Ends [`Self::keep_for_write`].
    pub fn release_kept_for_write(&mut self) {
        self.store.kept_for_write = KeptForWrite::default();
    }

    /// Gives back up to `want` frames of clean (or cleanly written) file
    /// pages not used since the clock last passed, in at most `budget`
    /// steps of the hand. See the module documentation.
    pub fn reclaim(
        &mut self,
        io: &mut Io,
        tables: &mut dyn SpaceTables,
        want: usize,
        budget: usize,
    ) -> Reclaimed {
        self.reclaim_pages(io, tables, want, budget, true)
    }

    /// [`Self::reclaim`] without writing: a dirty page the hand would
    /// write is left dirty, its entries gone (a store faults and marks it
    /// again), and counts towards `want` as a page soon free; the span of
    /// the first file's such pages is [`Reclaimed::to_write`], for the
    /// caller to write (without its lock) and then give to
    /// [`Self::evict_written`].
    pub fn reclaim_leaving_dirty(
        &mut self,
        io: &mut Io,
        tables: &mut dyn SpaceTables,
        want: usize,
        budget: usize,
    ) -> Reclaimed {
        self.reclaim_pages(io, tables, want, budget, false)
    }

    /// Looks at each cached page of `pages` as the hand does (second
    /// chance, locks, entries removed): evicts those clean and unused;
    /// with `write`, writes the dirty ones first (as [`Self::reclaim`]),
    /// else leaves them. What it did.
    pub fn evict_written(
        &mut self,
        io: &mut Io,
        tables: &mut dyn SpaceTables,
        pages: PagesToWrite,
        write: bool,
    ) -> Reclaimed {
        let mut done = Reclaimed::default();
        let Some(&id) = self.store.files.get(&pages.file) else {
            return done;
        };
        let Some(views) = self.views_of(id) else {
            return done;
        };
        let mut pending = PendingWrites::default();
        let mut index = pages.first;
        while index < pages.end {
            let next = self.store.get_mut(id).and_then(|o| {
                o.pages
                    .get_mut()
                    .range(index..pages.end)
                    .next()
                    .map(|(i, _)| i)
            });
            let Some(at) = next else {
                break;
            };
            index = at.saturating_add(1);
            done.scanned += 1;
            if pending.count == WRITE_BATCH {
                self.write_pending(io, &mut pending, &mut done);
            }
            match self.consider(tables, id, at, &views) {
                Verdict::Evict => {
                    self.evict(io, id, at);
                    done.freed += 1;
                }
                Verdict::Write if write => {
                    pending.object = Some(id);
                    pending.indices[pending.count] = at;
                    pending.count += 1;
                }
                Verdict::Write => done.left_dirty += 1,
                Verdict::Keep => {}
            }
        }
        self.write_pending(io, &mut pending, &mut done);
        done
    }

    fn reclaim_pages(
        &mut self,
        io: &mut Io,
        tables: &mut dyn SpaceTables,
        want: usize,
        budget: usize,
        write: bool,
    ) -> Reclaimed {
        let mut done = Reclaimed::default();
        let mut views: Option<(ObjectId, Vec<View>)> = None;
        let mut pending = PendingWrites::default();
        // Wraps of the hand past the last file: after two whole laps
        // (every bit cleared once, every page looked at again) more steps
        // find nothing new.
        let mut wraps = 0;
        while done.freed + done.left_dirty + pending.count < want
            && done.scanned < budget
            && wraps <= LAPS
        {
            done.scanned += 1;
            let (file, id, index) = match self.clock_step() {
                Step::Empty => break,
                Step::Passed { wrapped } => {
                    wraps += usize::from(wrapped);
                    continue;
                }
                Step::Page(file, id, index) => (file, id, index),
            };
            if !io.pager.evictable(file) {
                self.store.clock = ClockHand {
                    file: Some(file),
                    index: u64::MAX,
                };
                continue;
            }
            self.store.clock.index = index.saturating_add(1);
            if pending.object.is_some_and(|of| of != id) || pending.count == WRITE_BATCH {
                self.write_pending(io, &mut pending, &mut done);
            }
            if views.as_ref().is_none_or(|(of, _)| *of != id) {
                views = self.views_of(id).map(|v| (id, v));
            }
            let Some((_, shown)) = views.as_ref() else {
                continue; // No memory for the list: nothing mapped can go.
            };
            match self.consider(tables, id, index, shown) {
                Verdict::Evict => {
                    self.evict(io, id, index);
                    done.freed += 1;
                }
                Verdict::Write if write => {
                    pending.object = Some(id);
                    pending.indices[pending.count] = index;
                    pending.count += 1;
                }
                Verdict::Write => {
                    done.left_dirty += 1;
                    match &mut done.to_write {
                        None => {
                            done.to_write = Some(PagesToWrite {
                                file,
                                first: index,
                                end: index.saturating_add(1),
                            });
                        }
                        Some(span) if span.file == file => {
                            span.first = span.first.min(index);
                            span.end = span.end.max(index.saturating_add(1));
                        }
                        Some(_) => {}
                    }
                }
                Verdict::Keep => {}
            }
        }
        self.write_pending(io, &mut pending, &mut done);
        done
    }

    /// Writes the pending dirty pages (one write-back over their span: a
    /// device request per contiguous run, one flush) and evicts those now
    /// clean. When the write fails they all stay, dirty.
    fn write_pending(&mut self, io: &mut Io, pending: &mut PendingWrites, done: &mut Reclaimed) {
        let indices = &pending.indices[..pending.count];
        let (Some(id), Some(&first), Some(&last)) =
            (pending.object, indices.first(), indices.last())
        else {
            return;
        };
        if self.store.write_back(io, id, first, last + 1).is_err() {
            done.write_errors += indices.len();
        } else {
            for &index in indices {
                let clean = self.store.get(id).is_some_and(|o| {
                    !o.dirty.contains_key(&index) && o.pages.lock().contains_key(&index)
                });
                if clean {
                    self.evict(io, id, index);
                    done.freed += 1;
                    done.written += 1;
                }
            }
        }
        *pending = PendingWrites::default();
    }

    /// Frees page `index` of `id` (no entry shows it, it is clean).
    fn evict(&mut self, io: &mut Io, id: ObjectId, index: u64) {
        let Some(page) = self
            .store
            .get_mut(id)
            .and_then(|o| o.pages.get_mut().remove(&index))
        else {
            return;
        };
        self.store.free_frame_now(io.frames, page.frame);
        self.store.stats.evictions += 1;
    }

    /// Moves the hand to the next cached page of an evictable-or-not file.
    fn clock_step(&mut self) -> Step {
        use core::ops::Bound;
        let hand = self.store.clock;
        if let Some(file) = hand.file {
            if let Some(&id) = self.store.files.get(&file) {
                let next = self.store.get(id).and_then(|o| {
                    o.pages
                        .lock()
                        .range(hand.index..u64::MAX)
                        .next()
                        .map(|(i, _)| i)
                });
                if let Some(index) = next {
                    return Step::Page(file, id, index);
                }
            }
        }
        let from = hand.file.map_or(Bound::Unbounded, Bound::Excluded);
        let after = self.store.files.range((from, Bound::Unbounded)).next();
        let wrapped = after.is_none();
        let next = after.or_else(|| self.store.files.iter().next());
        let Some((&file, _)) = next else {
            return Step::Empty;
        };
        self.store.clock = ClockHand {
            file: Some(file),
            index: 0,
        };
        Step::Passed { wrapped }
    }

    /// The mappings of every space that may show pages of file object
    /// `id`; `None` when the list cannot be allocated.
    fn views_of(&self, id: ObjectId) -> Option<Vec<View>> {
        let mut views = Vec::new();
        if self.store.get(id)?.map_refs() == 0 {
            return Some(views);
        }
        for (space, s) in self.spaces.iter() {
            for m in s.read().mappings.values() {
                let Some(b) = &m.backing else {
                    continue;
                };
                let shows = match m.sharing {
                    Sharing::Shared => b.object.id() == id,
                    Sharing::Private => self.store.root_of(b.object.id()) == Some(id),
                };
                if !shows {
                    continue;
                }
                views.try_reserve(1).ok()?;
                views.push(View {
                    space,
                    start: m.start,
                    end: m.end,
                    first_page: b.first_page,
                    shared: m.sharing == Sharing::Shared,
                });
            }
        }
        Some(views)
    }

    /// Looks at page `index` of file object `id`: used since the last pass
    /// (the flag and entries' accessed bits are cleared: second chance) or
    /// locked, it stays; else its entries go, and it is to be evicted, or
    /// written first when dirty.
    fn consider(
        &mut self,
        tables: &mut dyn SpaceTables,
        id: ObjectId,
        index: u64,
        views: &[View],
    ) -> Verdict {
        let kept = self.store.kept_for_write;
        if kept.file.is_some() {
            let file = self.store.get(id).and_then(|o| o.file()).map(|f| f.file);
            if file.is_some_and(|file| kept.keeps(file, index)) {
                return Verdict::Keep;
            }
        }
        let Some(page) = self
            .store
            .get_mut(id)
            .and_then(|o| o.pages.get_mut().get_mut(&index))
        else {
            return Verdict::Keep;
        };
        let frame = page.frame;
        let mut used = core::mem::replace(&mut page.referenced, false);
        for v in views {
            let Some(va) = v.va_of(index) else {
                continue;
            };
            if tables.locked(v.space, va) {
                return Verdict::Keep;
            }
            // A table out of reach might show the page: it stays.
            let Some(pt) = tables.table(v.space) else {
                return Verdict::Keep;
            };
            if pt.query(va).is_some_and(|p| p.frame == frame) {
                used |= pt.take_accessed(va);
            }
        }
        if used {
            return Verdict::Keep;
        }
        for v in views {
            let Some(va) = v.va_of(index) else {
                continue;
            };
            let Some(pt) = tables.table(v.space) else {
                continue;
            };
            if pt.query(va).is_none_or(|p| p.frame != frame) {
                continue;
            }
            let removed = pt.unmap(va);
            pt.flush_page(va);
            if v.shared && removed.is_some_and(|p| p.prot.write) {
                if let Some(page) = self.store.get_mut(id).and_then(|o| o.dirty.get_mut(&index)) {
                    count_down(&mut page.writers, "writable entries of a page");
                }
            }
        }
        let Some(o) = self.store.get(id) else {
            return Verdict::Keep;
        };
        if o.dirty.get(&index).is_some_and(|p| p.writers > 0) {
            // Mapped writable where no view was found: cannot happen for a
            // page the views cover; never dropped unwritten.
            return Verdict::Keep;
        }
        if o.dirty.contains_key(&index) {
            Verdict::Write
        } else {
            Verdict::Evict
        }
    }
}

/// Dirty pages of one object whose entries are gone, to be written in one
/// write-back and then evicted (in index order: the hand's).
struct PendingWrites {
    object: Option<ObjectId>,
    indices: [u64; WRITE_BATCH],
    count: usize,
}

impl Default for PendingWrites {
    fn default() -> Self {
        PendingWrites {
            object: None,
            indices: [0; WRITE_BATCH],
            count: 0,
        }
    }
}
