//! The machine under the mapping core: x86_64 page tables ([`HardwarePageTable`])
//! and physical frames ([`KernelFrames`]) implementing `neoos_mm`'s traits,
//! and the frames of the RAM disk ([`DiskFrames`]).

use neoos_abi::limits::{PAGE_TABLE_RELEASE_BATCH, PAGE_TABLE_RELEASE_ENTRIES};
use neoos_mm::{
    EntryChange, Errno, Frame, PageBytes, PageTable, Prot, PteInfo, SharedChange, SharedFrames, UnmappedPage,
    VacantMap,
};

use neoos_kernel_core::fs::DiskBlocks;

use crate::arch::frames::DataFrames;
use crate::arch::paging::{LeafChange, PageTableFlags, UserPageTable};

/// The physical frames the mapping core holds, reached through the direct
/// map (only frames it was given, each borrowed through this value).
#[derive(Default)]
pub struct KernelFrames {
    data: DataFrames,
}

impl KernelFrames {
    /// A holder of no frame yet.
    pub fn new() -> Self {
        KernelFrames {
            data: DataFrames::new(),
        }
    }
}

impl neoos_mm::FrameSource for KernelFrames {
    fn alloc(&mut self) -> Option<Frame> {
        self.data.alloc().map(Frame)
    }
    fn free(&mut self, frame: Frame) {
        self.data.free(frame.0);
    }
    fn zero(&mut self, frame: Frame) {
        self.data.zero(frame.0);
    }
    #[inline(always)]
    fn alloc_zeroed(&mut self) -> Option<Frame> {
        self.data.alloc_zeroed().map(Frame)
    }
    fn copy(&mut self, src: Frame, dst: Frame) {
        self.data.copy(src.0, dst.0);
    }
    fn copy_of(&mut self, src: Frame) -> Option<Frame> {
        self.data.copy_of(src.0).map(Frame)
    }
    fn bytes(&self, frame: Frame) -> &PageBytes {
        self.data.bytes(frame.0)
    }
    fn bytes_mut(&mut self, frame: Frame) -> &mut PageBytes {
        self.data.bytes_mut(frame.0)
    }
}

impl SharedFrames for KernelFrames {
    fn alloc_zeroed_shared(&self) -> Option<Frame> {
        self.data.alloc_zeroed_shared().map(Frame)
    }
    fn free_shared(&self, frame: Frame) {
        self.data.free_shared(frame.0);
    }
}

/// Frames the RAM disk leaves free for everything but files.
const DISK_FREE_RESERVE: usize = 4096;

/// The RAM disk's blocks: frames of their own owner (beside the mapping
/// core's), so file data lives in free memory, not in the kernel heap.
#[derive(Default)]
pub struct DiskFrames {
    data: DataFrames,
}

impl DiskFrames {
    /// A holder of no frame yet.
    pub fn new() -> Self {
        DiskFrames {
            data: DataFrames::new(),
        }
    }
}

impl DiskBlocks for DiskFrames {
    fn alloc(&mut self) -> Option<u64> {
        self.data.alloc()
    }
    fn free(&mut self, block: u64) {
        self.data.free(block);
    }
    /// Half the free frames above [`DISK_FREE_RESERVE`]: what is written
    /// sits in the page cache too until the file's last reference goes, so
    /// a write's blocks leave as many frames for its cached copy, and the
    /// reserve for everything else (page tables, program memory).
    fn available(&self) -> usize {
        let free = crate::arch::frames::counts().1 as usize;
        free.saturating_sub(DISK_FREE_RESERVE) / 2
    }
    fn bytes(&self, block: u64) -> &PageBytes {
        self.data.bytes(block)
    }
    fn bytes_mut(&mut self, block: u64) -> &mut PageBytes {
        self.data.bytes_mut(block)
    }
}

/// One process's x86_64 page table.
///
/// Page-table pages an unmap leaves empty are freed in batches (once
/// [`PAGE_TABLE_RELEASE_BATCH`] unmaps wait, or [`PAGE_TABLE_RELEASE_ENTRIES`]
/// entries were removed), so a program that maps and unmaps the same place
/// again and again does not free and rebuild its tables every time, while
/// its footprint still follows what it maps: every table emptied since the
/// last batch lies in a waiting range, and needed a removed entry.
pub struct HardwarePageTable {
    tables: UserPageTable,
    /// Entries removed since the waiting ranges were last released.
    removed: usize,
    /// Unmapped ranges whose emptied tables wait to be released.
    waiting: [(u64, u64); PAGE_TABLE_RELEASE_BATCH],
    waiting_len: usize,
}

impl HardwarePageTable {
    /// A new table with an empty user half, or `None` without memory.
    pub fn new() -> Option<Self> {
        Some(HardwarePageTable {
            tables: UserPageTable::new()?,
            removed: 0,
            waiting: [(0, 0); PAGE_TABLE_RELEASE_BATCH],
            waiting_len: 0,
        })
    }

    /// Frees the table's own frames (the mapped pages belong to the mapping
    /// core), switching to the kernel's tables first when it is active.
    pub fn destroy(self) {
        drop(self.tables);
    }

    /// Makes this the CPU's page table.
    pub fn activate(&self) {
        self.tables.activate();
    }

    /// Frees the tables left empty in every waiting range.
    fn release_waiting(&mut self) {
        for &(start, end) in &self.waiting[..self.waiting_len] {
            self.tables.release_empty_tables(start, end);
        }
        self.waiting_len = 0;
        self.removed = 0;
    }
}

fn flags_of(prot: Prot) -> PageTableFlags {
    let mut flags = PageTableFlags::empty();
    if prot.write {
        flags |= PageTableFlags::WRITABLE;
    }
    if !prot.exec {
        flags |= PageTableFlags::NO_EXECUTE;
    }
    flags
}

/// What an entry says, in the mapping core's terms.
fn info_of((frame, flags): (u64, PageTableFlags)) -> PteInfo {
    PteInfo {
        frame: Frame(frame),
        prot: Prot::new(
            true,
            flags.contains(PageTableFlags::WRITABLE),
            !flags.contains(PageTableFlags::NO_EXECUTE),
        ),
        dirty: flags.contains(PageTableFlags::DIRTY),
        accessed: flags.contains(PageTableFlags::ACCESSED),
    }
}

impl PageTable for HardwarePageTable {
    #[inline]
    fn map(&mut self, va: u64, frame: Frame, prot: Prot) -> Result<(), Errno> {
        self.tables
            .map(va, frame.0, flags_of(prot))
            .map_err(|_| Errno::NoMem)
    }
    fn map_vacant(&self, va: u64, frame: Frame, prot: Prot) -> VacantMap {
        match self.tables.map_vacant(va, frame.0, flags_of(prot)) {
            Ok(true) => VacantMap::Installed,
            Ok(false) => VacantMap::Occupied,
            Err(_) => VacantMap::NoMem,
        }
    }
    fn changes_shared(&self) -> bool {
        true
    }
    fn unmap_shared(&self, pages: &[u64]) -> SharedChange {
        let (changed, lost_write) = self.tables.unmap_shared(pages);
        SharedChange {
            changed,
            lost_write,
        }
    }
    fn protect_shared(&self, pages: &[u64], prot: Prot) -> SharedChange {
        let (changed, lost_write) = self.tables.protect_shared(pages, prot.write, prot.exec);
        SharedChange {
            changed,
            lost_write,
        }
    }
    fn flush_pages_shared(&self, pages: Option<&[u64]>) {
        match pages {
            Some(pages) => self.tables.invalidate_pages(pages),
            None => self.tables.invalidate_all(),
        }
    }
    fn unmap(&mut self, va: u64) -> Option<UnmappedPage> {
        let page = self.tables.unmap(va).map(info_of);
        self.removed += usize::from(page.is_some());
        page
    }
    fn protect(&mut self, va: u64, prot: Prot) {
        self.tables.set_flags(va, flags_of(prot));
    }
    fn query(&self, va: u64) -> Option<PteInfo> {
        self.tables.entry(va).map(info_of)
    }
    fn take_dirty(&mut self, va: u64) -> bool {
        let was_dirty = !self
            .tables
            .clear_flags(va, PageTableFlags::DIRTY)
            .is_empty();
        // A cached translation still says "dirty": the CPU would not set the bit
        // again on the next store, so that store would be lost to writeback.
        if was_dirty {
            self.tables.invalidate(va);
        }
        was_dirty
    }
    fn take_accessed(&mut self, va: u64) -> bool {
        let was_accessed = !self
            .tables
            .clear_flags(va, PageTableFlags::ACCESSED)
            .is_empty();
        // A cached translation would let the next use pass without setting
        // the bit again (for the active table; an inactive one has none).
        if was_accessed {
            self.tables.invalidate(va);
        }
        was_accessed
    }
    fn update_range(
        &mut self,
        start: u64,
        end: u64,
        change: &mut dyn FnMut(u64, PteInfo) -> EntryChange,
    ) {
        let removed =
            self.tables.update_present(
                start,
                end,
                &mut |va, entry| match change(va, info_of(entry)) {
                    EntryChange::Keep => LeafChange::Keep,
                    EntryChange::Protect(prot) => LeafChange::SetFlags(flags_of(prot)),
                    EntryChange::Remove => LeafChange::Clear,
                },
            );
        self.removed += removed;
    }
    fn flush_page(&mut self, va: u64) {
        self.tables.invalidate(va);
    }
    fn flush_pages(&mut self, pages: &[u64]) {
        self.tables.invalidate_pages(pages);
    }
    fn flush_all(&mut self) {
        self.tables.invalidate_all();
    }
    fn release_tables(&mut self, start: u64, end: u64) {
        // Queued even when this unmap removed nothing: its range may hold
        // tables emptied earlier (by MADV_DONTNEED) and not yet released.
        self.waiting[self.waiting_len] = (start, end);
        self.waiting_len += 1;
        if self.waiting_len == PAGE_TABLE_RELEASE_BATCH
            || self.removed >= PAGE_TABLE_RELEASE_ENTRIES
        {
            self.release_waiting();
        }
    }
}
