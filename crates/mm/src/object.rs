//! Memory objects and their store: an object owns every page it holds
//! (anonymous memory, a file's page cache, a System V segment, the private
//! pages of a private mapping, the pages a fork left shared copy-on-write).
//! A private object may shadow another (`below`): pages it lacks are looked
//! up there (see `shadow.rs`). The store owns every object by id, counts
//! their references (mappings, plus open descriptors or the segment
//! itself), keeps the file and segment-key indexes and the global counters.

use crate::errno::{Errno, PageError};
use crate::hw::{FileId, Frame, FrameSource, Hw, Io, ObjectId, ShmId, PAGE_SIZE};
use crate::mapping::Mapping;
use crate::page_map::PageMap;
use crate::slots::SlotTable;
use crate::stats::MemStats;
use crate::tlb::{free_frames, TlbBatch};
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// One resident page of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachePage {
    pub frame: Frame,
    /// In a fork's hidden object: which children (bit 0, bit 1) no longer
    /// see this page (they copied it or gave its range up).
    pub released: u8,
    /// Used through the page cache (`read`, `write`) since the reclaim
    /// clock last passed (file objects; see `reclaim.rs`). Use through a
    /// mapping is the entries' accessed bits.
    pub referenced: bool,
}

impl CachePage {
    /// A clean page holding `frame`.
    pub fn new(frame: Frame) -> Self {
        CachePage {
            frame,
            released: 0,
            referenced: false,
        }
    }
}

/// A dirty page of a file object, in its dirty set: the frame that holds
/// it (the page's, which stays while the page is resident, and a dirty
/// page stays resident until it is written and clean) and the page-table
/// entries mapping it writable, over all address spaces. A page with a
/// writable entry is always dirty, so the count lives here: writeback and
/// the accounting of a lost writable entry search the dirty set (the
/// pages that changed), never the whole page index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirtyPage {
    pub frame: Frame,
    pub writers: u32,
    /// Its file's count of dirty markings when this page was last marked
    /// ([`FileState::dirty_marks`]): a write-back made without the kernel lock cleans the page
    /// only if nothing marked it again meanwhile (the mark it copied).
    pub mark: u64,
}

/// What lies below a private (shadow) object: the pages it lacks are
/// looked up there, at the same page index.
#[derive(Debug, PartialEq, Eq)]
pub enum Below {
    /// The file a private file mapping shows (a counted reference).
    Root(ObjectRef),
    /// The hidden object a fork made: this object is its child `side`
    /// (0 or 1); the hidden object counts its children itself.
    Hidden { parent: ObjectId, side: usize },
}

/// The link from a private object to what lies [`Below`] it. Changed
/// with exclusive access to the system, as every link; set once with
/// shared access only on a spare object no mapping shows yet (a private
/// file mapping's top object made by a shared `mmap`,
/// [`crate::MemorySystem::mmap_shared_file`]), before the mapping that
/// shows it is visible: a reader sees it through the space's lock.
#[derive(Debug, Default)]
pub struct BelowLink(spin::Once<Below>);

impl BelowLink {
    /// What lies below, if anything.
    #[inline(always)]
    pub fn get(&self) -> Option<&Below> {
        self.0.get()
    }

    /// Whether nothing lies below.
    #[inline(always)]
    pub fn is_none(&self) -> bool {
        self.get().is_none()
    }

    /// Takes the link away, leaving nothing below.
    pub(crate) fn take(&mut self) -> Option<Below> {
        core::mem::take(self).into_inner()
    }

    /// The link, given up.
    pub(crate) fn into_inner(self) -> Option<Below> {
        self.0.try_into_inner()
    }

    /// Links `root` (a file's object) below with shared access, where
    /// nothing lies below yet (`Err` gives it back otherwise): only on an
    /// object no other CPU can reach (a spare object just taken).
    pub(crate) fn link_root(&self, root: ObjectRef) -> Result<(), ObjectRef> {
        if self.0.is_completed() {
            return Err(root);
        }
        self.0.call_once(|| Below::Root(root));
        Ok(())
    }
}

impl From<Option<Below>> for BelowLink {
    fn from(below: Option<Below>) -> Self {
        BelowLink(below.map_or_else(spin::Once::new, spin::Once::initialized))
    }
}

/// File state of a file object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileState {
    pub file: FileId,
    /// Current length (the page cache's view).
    pub size: u64,
    /// Length last given to the pager.
    pub stored_size: u64,
    /// Dirty markings made so far ([`DirtyPage::mark`]).
    pub dirty_marks: u64,
    /// The object lost its last reference with dirty pages and is kept
    /// (one handle reference, the kernel's) until they are written
    /// ([`ObjectStore::keep_released`]).
    pub kept: bool,
}

/// System V segment state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShmState {
    pub id: ShmId,
    pub key: i64,
    /// Size in bytes as asked.
    pub size: u64,
    /// `IPC_RMID` was done: freed on last detach.
    pub destroyed: bool,
}

/// What kind of memory an object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// Zero-filled on demand, shared between its mappings (`MAP_SHARED|MAP_ANON`).
    Anonymous,
    /// The page cache of one file.
    File(FileState),
    /// A System V shared-memory segment.
    Shm(ShmState),
}

/// A memory object.
#[derive(Debug)]
pub struct MemoryObject {
    pub kind: ObjectKind,
    /// The resident pages, by index. Behind the object's own lock for the
    /// faults resolved with shared access to the system
    /// (`shared_fault.rs`); every other path has the system exclusively and
    /// reaches them through `get_mut`, at no cost.
    pub pages: spin::Mutex<PageMap>,
    /// The pages that differ from the file, by index (file objects only):
    /// every page written through `write`, and every page that has, or had
    /// since its last writeback, a writable entry (shared file pages are
    /// mapped writable only by a write fault, which adds them here). So
    /// writeback and msync find dirty pages here, never by scanning `pages`
    /// or page tables. Each is a resident page of `pages`.
    pub dirty: BTreeMap<u64, DirtyPage>,
    /// Mappings referencing the object (and shadows over a file).
    pub(crate) map_refs: AtomicU32,
    /// Open descriptors (files) or the live segment itself (shm).
    pub handle_refs: u32,
    /// The object this one shadows (private objects only).
    pub below: BelowLink,
    /// A hidden object's two children (fork); it lives while one does.
    pub children: [Option<ObjectId>; 2],
    /// Pages whose view, from here down, is the root's again (or zero):
    /// `MADV_DONTNEED` over pages an ancestor still holds for others.
    pub reverted: BTreeSet<u64>,
    /// Pages being read from the disk, by index, with the read's number
    /// (file objects only; `reads_in_flight.rs`). Such a page is not in
    /// `pages` until its read is finished.
    pub reading: BTreeMap<u64, u64>,
}

impl MemoryObject {
    /// The file state, for file objects.
    /// The mappings referencing the object (pieces of a split each count).
    pub fn map_refs(&self) -> u32 {
        self.map_refs.load(Ordering::Relaxed)
    }

    pub fn file(&self) -> Option<&FileState> {
        match &self.kind {
            ObjectKind::File(f) => Some(f),
            _ => None,
        }
    }

    /// Whether this is a file object.
    pub fn is_file(&self) -> bool {
        matches!(self.kind, ObjectKind::File(_))
    }

    /// Whether page `index` is resident and dirty.
    pub fn is_dirty(&self, index: u64) -> bool {
        self.dirty.contains_key(&index)
    }

    /// Marks resident page `index`, held in `frame`, dirty; its entry in
    /// the dirty set.
    pub(crate) fn mark_dirty(&mut self, index: u64, frame: Frame) -> &mut DirtyPage {
        debug_assert_eq!(
            self.pages.get_mut().get(&index).map(|p| p.frame),
            Some(frame)
        );
        let mark = match &mut self.kind {
            ObjectKind::File(f) => {
                f.dirty_marks += 1;
                f.dirty_marks
            }
            _ => 0,
        };
        let page = self.dirty.entry(index).or_insert(DirtyPage {
            frame,
            writers: 0,
            mark,
        });
        page.mark = mark;
        page
    }

    /// Makes the dirty pages of `[first, end)` that no entry maps writable
    /// clean (after they were written). Work follows the dirty pages of
    /// the range: one ordered pass gathers a batch of them, then each is
    /// removed.
    pub(crate) fn clean_unwritable(&mut self, first: u64, end: u64) {
        let mut cursor = first;
        loop {
            let mut clean = [0u64; CLEAN_BATCH];
            let mut n = 0;
            let mut last = None;
            for (&index, page) in self.dirty.range(cursor..end) {
                last = Some(index);
                if page.writers == 0 {
                    clean[n] = index;
                    n += 1;
                    if n == CLEAN_BATCH {
                        break;
                    }
                }
            }
            for index in &clean[..n] {
                self.dirty.remove(index);
            }
            match last {
                Some(index) if n == CLEAN_BATCH => cursor = index + 1,
                _ => return,
            }
        }
    }

    /// Makes every dirty page of `[first, end)` clean; `count` is how many
    /// there are. When they are at least half the dirty set, one pass over
    /// the set drops them; otherwise each is removed (work follows the
    /// dirty pages of the range either way).
    pub(crate) fn clean_range(&mut self, first: u64, end: u64, count: usize) {
        if count == self.dirty.len() {
            self.dirty.clear();
        } else if count * 2 >= self.dirty.len() {
            self.dirty.retain(|index, _| !(first..end).contains(index));
        } else {
            while let Some((&index, _)) = self.dirty.range(first..end).next() {
                self.dirty.remove(&index);
            }
        }
    }
}

/// Dirty pages [`MemoryObject::clean_unwritable`] gathers per pass.
const CLEAN_BATCH: usize = 32;

/// A mapping's counted reference to a memory object. Only the store makes
/// one ([`ObjectStore::map_ref`], [`ObjectStore::share`], each counting it)
/// and only the store takes one back ([`ObjectStore::drop_map_ref`], by
/// value, uncounting it). It is neither `Clone` nor `Copy`: a reference
/// cannot be duplicated without being counted nor released twice.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a mapping reference is given back with ObjectStore::drop_map_ref"]
pub struct ObjectRef(ObjectId);

impl ObjectRef {
    /// The object referenced.
    pub fn id(&self) -> ObjectId {
        self.0
    }
}

/// Counts that would have gone below zero since boot (release builds only;
/// debug builds panic at once).
static COUNT_UNDERFLOWS: AtomicU64 = AtomicU64::new(0);

/// How many counts would have gone below zero since boot. Any is a bug in
/// this crate: the kernel reports it and fails its run.
pub fn count_underflows() -> u64 {
    COUNT_UNDERFLOWS.load(Ordering::Relaxed)
}

/// One less of a count. Going below zero is a bug in this crate: it panics
/// in debug builds (the tests and the fuzzer); in release builds (the
/// kernel keeps running) the count stays at zero and [`count_underflows`]
/// records it.
pub(crate) fn count_down(count: &mut u32, what: &'static str) {
    match count.checked_sub(1) {
        Some(n) => *count = n,
        None => underflow(what),
    }
}

/// [`count_down`] for 64-bit counters.
pub(crate) fn count_down64(count: &mut u64, what: &'static str) {
    match count.checked_sub(1) {
        Some(n) => *count = n,
        None => underflow(what),
    }
}

fn underflow(what: &'static str) {
    COUNT_UNDERFLOWS.fetch_add(1, Ordering::Relaxed);
    debug_assert!(false, "{what} would go below zero");
}

/// Every object by id (see `slots.rs`: a lookup is an index, not a search).
pub(crate) type ObjectTable = SlotTable<ObjectId, MemoryObject>;

/// Every object, by id, plus the indexes and counters.
#[derive(Default)]
pub struct ObjectStore {
    pub(crate) objects: ObjectTable,
    pub(crate) files: BTreeMap<FileId, ObjectId>,
    pub(crate) shm_keys: BTreeMap<i64, ObjectId>,
    /// System V segment ids (given out in order, never reused) to objects.
    pub(crate) shm_ids: BTreeMap<ShmId, ObjectId>,
    last_shm_id: u64,
    /// System V segments whose id is valid (created, not yet removed).
    pub(crate) live_segments: usize,
    /// The counters but two: [`MemStats::frames_in_use`] and
    /// [`MemStats::faults`], which faults resolved with shared access
    /// change too (`shared_fault.rs`), are the atomics below (exclusive
    /// paths reach them through `get_mut`, at no cost).
    pub(crate) stats: MemStats,
    pub(crate) frames_in_use: AtomicU64,
    pub(crate) faults: AtomicU64,
    /// The faults resolved with shared access (`shared_fault.rs`).
    pub(crate) shared_faults: AtomicU64,
    /// The mapping calls made with shared access (`shared_map.rs`: `mmap`,
    /// `munmap`, `mprotect`), the
    /// TLB invalidations they made (single pages, whole TLBs: added to
    /// [`MemStats`]'s), the objects of the mappings they removed,
    /// waiting for the next exclusive section, and the anonymous objects
    /// made ahead for the shared `mmap` to give its mappings (each with
    /// its one mapping reference, no page), so that their first touches
    /// are shared faults too (`shared_work_waiting` says whether that
    /// section has work: objects to release, spare objects to make).
    pub(crate) shared_map_calls: AtomicU64,
    pub(crate) shared_unmap_calls: AtomicU64,
    pub(crate) shared_protect_calls: AtomicU64,
    pub(crate) shared_single_flushes: AtomicU64,
    pub(crate) shared_full_flushes: AtomicU64,
    pub(crate) unmapped: spin::Mutex<crate::shared_map::Unmapped>,
    pub(crate) spare_objects: spin::Mutex<Vec<ObjectRef>>,
    pub(crate) shared_work_waiting: core::sync::atomic::AtomicBool,
    /// `brk` calls made with shared access (`program_break.rs`).
    pub(crate) shared_brk_calls: AtomicU64,
    /// `mremap` calls made with shared access (`shared_remap.rs`).
    pub(crate) shared_remap_calls: AtomicU64,
    scratch: crate::tlb::BatchLists,
    /// Where the reclaim clock stands among the cached file pages.
    pub(crate) clock: crate::reclaim::ClockHand,
    /// The pages a `write` under way covers in part, which reclaim leaves.
    pub(crate) kept_for_write: crate::reclaim::KeptForWrite,
    /// Reads deferred by faults (`reads_in_flight.rs`).
    pub(crate) reads: crate::reads_in_flight::DeferredReads,
    /// Copies deferred by faults (`deferred_copies.rs`).
    pub(crate) copies: crate::deferred_copies::DeferredCopies,
    /// Whether a disk file object ([`crate::Pager::evictable`]) that loses
    /// its last reference with dirty pages is kept for the caller's
    /// unlocked write-back instead of written at once (`kept_files.rs`).
    pub(crate) keep_released: bool,
    /// The file objects kept so ([`FileState::kept`]).
    pub(crate) kept_files: usize,
}

impl ObjectStore {
    /// Adds an object with `handle_refs` handle references and no mapping.
    pub fn create(&mut self, kind: ObjectKind, handle_refs: u32) -> ObjectId {
        self.objects.insert_boxed(Box::new(MemoryObject {
            kind,
            pages: spin::Mutex::new(PageMap::new()),
            dirty: BTreeMap::new(),
            map_refs: AtomicU32::new(0),
            handle_refs,
            below: BelowLink::default(),
            children: [None, None],
            reverted: BTreeSet::new(),
            reading: BTreeMap::new(),
        }))
    }

    /// The id the next System V segment gets.
    pub fn next_shm_id(&mut self) -> ShmId {
        self.last_shm_id += 1;
        ShmId(self.last_shm_id)
    }

    pub fn get(&self, id: ObjectId) -> Option<&MemoryObject> {
        self.objects.get(&id)
    }

    pub fn get_mut(&mut self, id: ObjectId) -> Option<&mut MemoryObject> {
        self.objects.get_mut(&id)
    }

    /// A fresh TLB batch reusing the store's scratch list.
    pub fn begin_batch(&mut self) -> TlbBatch {
        TlbBatch::new(core::mem::take(&mut self.scratch))
    }

    /// Gives back the object reference of a mapping no space took.
    pub(crate) fn give_back_refused(&mut self, hw: &mut Hw, mut refused: Mapping) {
        if let Some(b) = refused.backing.take() {
            let mut frees = Vec::new();
            self.drop_map_ref(&mut hw.io(), b.object, &mut frees);
            free_frames(&mut frees, hw.frames, self.frames_in_use.get_mut());
        }
    }

    /// Flushes and frees what `batch` collected.
    pub fn finish_batch(
        &mut self,
        batch: TlbBatch,
        pt: &mut dyn crate::hw::PageTable,
        frames: &mut dyn FrameSource,
    ) {
        self.scratch = batch.finish(pt, frames, &mut self.stats, self.frames_in_use.get_mut());
    }

    /// A frame from the frame source, counted.
    pub fn alloc_frame(&mut self, frames: &mut dyn FrameSource) -> Result<Frame, PageError> {
        let frame = frames.alloc().ok_or(PageError::NoMem)?;
        *self.frames_in_use.get_mut() += 1;
        Ok(frame)
    }

    /// A zero-filled frame, counted.
    pub fn alloc_zeroed(&mut self, frames: &mut dyn FrameSource) -> Result<Frame, PageError> {
        let frame = frames.alloc_zeroed().ok_or(PageError::NoMem)?;
        *self.frames_in_use.get_mut() += 1;
        Ok(frame)
    }

    /// Returns a frame no page table maps.
    pub fn free_frame_now(&mut self, frames: &mut dyn FrameSource, frame: Frame) {
        frames.free(frame);
        count_down64(self.frames_in_use.get_mut(), "frames in use");
    }

    /// A new mapping reference to object `id` (`None` if there is no such
    /// object).
    pub fn map_ref(&mut self, id: ObjectId) -> Option<ObjectRef> {
        let o = self.objects.get_mut(&id)?;
        *o.map_refs.get_mut() += 1;
        Some(ObjectRef(id))
    }

    /// A mapping reference to object `id` taken with shared access (a
    /// file's `mmap` made under the read side: `shared_map.rs`). Only for
    /// an object something else keeps (a file's open descriptor), so that
    /// [`Self::give_back_unused`] may hand it back the same way.
    pub(crate) fn map_ref_shared(&self, id: ObjectId) -> Option<ObjectRef> {
        let o = self.objects.get(&id)?;
        o.map_refs.fetch_add(1, Ordering::Relaxed);
        Some(ObjectRef(id))
    }

    /// Gives back a reference of [`Self::map_ref_shared`] that no mapping
    /// took: the object stays (something else keeps it).
    pub(crate) fn give_back_unused(&self, r: ObjectRef) {
        if let Some(o) = self.objects.get(&r.0) {
            o.map_refs.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// A new object of `kind` with one mapping reference, that reference.
    pub fn create_mapped(&mut self, kind: ObjectKind) -> ObjectRef {
        let id = self.objects.insert_boxed(Box::new(MemoryObject {
            kind,
            pages: spin::Mutex::new(PageMap::new()),
            dirty: BTreeMap::new(),
            map_refs: AtomicU32::new(1),
            handle_refs: 0,
            below: BelowLink::default(),
            children: [None, None],
            reverted: BTreeSet::new(),
            reading: BTreeMap::new(),
        }));
        ObjectRef(id)
    }

    /// A second mapping reference to the object `r` references (a split
    /// mapping, a forked one). Shared access is enough: a split made with
    /// shared access (`shared_map.rs`) counts its new half so.
    pub fn share(&self, r: &ObjectRef) -> ObjectRef {
        match self.objects.get(&r.0) {
            Some(o) => {
                o.map_refs.fetch_add(1, Ordering::Relaxed);
            }
            None => debug_assert!(false, "a reference to a released object"),
        }
        ObjectRef(r.0)
    }

    /// Gives back a mapping reference; the object goes when nothing
    /// references it (its frames are queued on `frees`, to be freed after
    /// the caller's flush). See [`ObjectStore::release_if_unused`].
    pub fn drop_map_ref(&mut self, io: &mut Io, r: ObjectRef, frees: &mut Vec<Frame>) {
        let id = r.0;
        match self.objects.get_mut(&id) {
            Some(o) => count_down(o.map_refs.get_mut(), "mapping references"),
            None => debug_assert!(false, "a reference to a released object"),
        }
        let _ = self.release_if_unused(io, id, frees);
    }

    /// Gives back the reference of a mapping that showed pages
    /// `[first, end)` of the object. For a private view still shown by
    /// other mappings (pieces of a split), that range of it is given up;
    /// the object goes with its last reference.
    pub(crate) fn drop_mapping(
        &mut self,
        io: &mut Io,
        r: ObjectRef,
        pages: (u64, u64),
        private: bool,
        frees: &mut Vec<Frame>,
    ) {
        let id = r.0;
        let Some(o) = self.objects.get_mut(&id) else {
            debug_assert!(false, "a reference to a released object");
            return;
        };
        count_down(o.map_refs.get_mut(), "mapping references");
        if *o.map_refs.get_mut() > 0 {
            if private {
                self.release_private_range(id, pages.0, pages.1, false, frees);
            }
            return;
        }
        // Unreferenced memory without a file to write goes at once.
        let unused = o.handle_refs == 0 && o.children == [None, None] && !o.is_file();
        if !unused {
            let _ = self.release_if_unused(io, id, frees);
        } else if let Some(o) = self.objects.remove_boxed(&id) {
            self.dismantle(io, id, o, frees);
        }
    }

    /// Drops a handle reference (descriptor close, segment removal).
    pub fn drop_handle_ref(&mut self, io: &mut Io, id: ObjectId) -> Result<(), Errno> {
        if let Some(o) = self.objects.get_mut(&id) {
            count_down(&mut o.handle_refs, "handle references");
        }
        let mut frees = Vec::new();
        let result = self.release_if_unused(io, id, &mut frees);
        free_frames(&mut frees, io.frames, self.frames_in_use.get_mut());
        result
    }

    /// Frees an object without references. A file object first writes its
    /// dirty pages back; if that fails `Io` is returned and the object is
    /// freed all the same (nothing could write its pages later either).
    /// Except a disk file object with dirty pages while
    /// [`Self::keep_released`] is set: it is kept, written later by the
    /// kernel without the lock (`kept_files.rs`).
    pub fn release_if_unused(
        &mut self,
        io: &mut Io,
        id: ObjectId,
        frees: &mut Vec<Frame>,
    ) -> Result<(), Errno> {
        let Some(o) = self.objects.get(&id) else {
            return Ok(());
        };
        if o.map_refs() > 0 || o.handle_refs > 0 || o.children.iter().any(Option::is_some) {
            return Ok(());
        }
        let is_file = o.is_file();
        if is_file && self.keep_if_dirty(io, id) {
            return Ok(());
        }
        // The last reference is gone: dirty pages go to the file. If the
        // device fails, the error is reported but the pages are released all
        // the same: nothing could write them later either, and memory must
        // come back.
        let written = if is_file {
            self.write_back(io, id, 0, u64::MAX)
        } else {
            Ok(())
        };
        if let Some(o) = self.objects.remove_boxed(&id) {
            self.dismantle(io, id, o, frees);
        }
        written
    }

    /// Takes apart object `id`, just removed from the table: its index
    /// entries go, its frames are queued on `frees`, and what lies below it
    /// loses this object.
    fn dismantle(
        &mut self,
        io: &mut Io,
        id: ObjectId,
        mut o: Box<MemoryObject>,
        frees: &mut Vec<Frame>,
    ) {
        match o.kind {
            ObjectKind::File(f) => {
                self.files.remove(&f.file);
                self.stats.files_released += 1;
            }
            ObjectKind::Shm(s) => {
                if self.shm_keys.get(&s.key) == Some(&id) {
                    self.shm_keys.remove(&s.key);
                }
                self.shm_ids.remove(&s.id);
            }
            ObjectKind::Anonymous => {}
        }
        frees.extend(o.pages.get_mut().values().map(|p| p.frame));
        match o.below.into_inner() {
            Some(Below::Root(root)) => self.drop_map_ref(io, root, frees),
            Some(Below::Hidden { parent, side }) => self.leave_hidden(io, parent, side, frees),
            None => {}
        }
    }

    /// The frame of page `index` of object `id`, reading or zero-filling it
    /// on first use. File pages at or past the end of file are refused.
    pub fn page_frame(
        &mut self,
        io: &mut Io,
        id: ObjectId,
        index: u64,
    ) -> Result<Frame, PageError> {
        self.page_frame_reading(io, id, index, true)
    }

    /// [`Self::page_frame`]; `ahead`: a sequential miss on a disk file
    /// reads the pages after it in the same request (`read_ahead.rs`).
    pub(crate) fn page_frame_reading(
        &mut self,
        io: &mut Io,
        id: ObjectId,
        index: u64,
        ahead: bool,
    ) -> Result<Frame, PageError> {
        let obj = self
            .objects
            .get_mut(&id)
            .ok_or(PageError::BeyondEndOfFile)?;
        if let Some(p) = obj.pages.get_mut().get(&index) {
            return Ok(p.frame);
        }
        let kind = obj.kind;
        if let (ObjectKind::File(f), true) = (kind, self.reads.defer) {
            if let Some(read) = self.defer_read(io, id, f, index) {
                self.reads.waited = read;
                return Err(PageError::Reading);
            }
        }
        if let (ObjectKind::File(f), true) = (kind, ahead) {
            if let Some(frame) = self.read_ahead(io, id, f, index) {
                return Ok(frame);
            }
        }
        let frame = match kind {
            ObjectKind::File(f) => self.read_file_page(io, f, index)?,
            ObjectKind::Anonymous | ObjectKind::Shm(_) => self.alloc_zeroed(io.frames)?,
        };
        if let Some(obj) = self.objects.get_mut(&id) {
            obj.pages.get_mut().insert(index, CachePage::new(frame));
        }
        Ok(frame)
    }

    fn read_file_page(
        &mut self,
        io: &mut Io,
        f: FileState,
        index: u64,
    ) -> Result<Frame, PageError> {
        let offset = index
            .checked_mul(PAGE_SIZE)
            .ok_or(PageError::BeyondEndOfFile)?;
        if offset >= f.size {
            return Err(PageError::BeyondEndOfFile);
        }
        let frame = self.alloc_frame(io.frames)?;
        let loaded = if offset >= f.stored_size {
            io.frames.zero(frame);
            Ok(())
        } else {
            io.pager
                .read_page(f.file, index, io.frames.bytes_mut(frame))
        };
        if loaded.is_err() {
            self.free_frame_now(io.frames, frame);
            return Err(PageError::Io);
        }
        let valid = f.size - offset;
        if valid < PAGE_SIZE {
            io.frames.bytes_mut(frame)[valid as usize..].fill(0);
        }
        Ok(frame)
    }

    /// The counters.
    pub fn stats(&self) -> MemStats {
        MemStats {
            frames_in_use: self.frames_in_use.load(Ordering::Relaxed),
            faults: self.faults.load(Ordering::Relaxed),
            tlb_single_flushes: self.stats.tlb_single_flushes
                + self.shared_single_flushes.load(Ordering::Relaxed),
            tlb_full_flushes: self.stats.tlb_full_flushes
                + self.shared_full_flushes.load(Ordering::Relaxed),
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{count_down, count_down64};

    #[test]
    #[should_panic(expected = "would go below zero")]
    fn a_reference_count_going_below_zero_fails_loudly() {
        let mut refs = 0u32;
        count_down(&mut refs, "mapping references");
    }

    #[test]
    #[should_panic(expected = "would go below zero")]
    fn a_frame_count_going_below_zero_fails_loudly() {
        let mut frames = 0u64;
        count_down64(&mut frames, "frames in use");
    }

    #[test]
    fn an_id_finds_nothing_once_its_object_is_gone_even_when_the_slot_is_reused() {
        use super::{ObjectKind, ObjectStore};
        let mut store = ObjectStore::default();
        let old = store.create(ObjectKind::Anonymous, 0);
        assert!(store.objects.remove(&old).is_some());
        let new = store.create(ObjectKind::Anonymous, 0);
        assert_ne!(old, new);
        assert!(store.get(old).is_none());
        assert!(store.get(new).is_some());
        assert!(store.objects.remove(&old).is_none());
        assert_eq!(store.objects.len(), 1);
    }

    #[test]
    fn a_count_above_zero_goes_down_by_one() {
        let mut refs = 2u32;
        count_down(&mut refs, "mapping references");
        assert_eq!(refs, 1);
    }
}
