//! Software implementations of the machine for tests and benches (behind the
//! `testing` feature): a page table in a map, frames in heap pages, a pager
//! over in-memory files with injectable failures, and [`Machine`], which
//! bundles them with a [`MemorySystem`] and simulates user loads and stores
//! the way a CPU would (checking entries, faulting, setting dirty bits).

extern crate std;

use crate::errno::{Errno, FaultError};
use crate::hw::{
    Access, AsId, EntryChange, FileId, Frame, FrameSource, Hw, Io, IoError, PageBytes, PageTable,
    Pager, Prot, PteInfo, UnmappedPage, PAGE_SIZE,
};
use crate::system::MemorySystem;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::Cell;

/// A page table entry of [`SoftPageTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftPte {
    pub frame: Frame,
    pub prot: Prot,
    pub dirty: bool,
    pub accessed: bool,
}

/// A page table as a map from virtual page address to entry.
#[derive(Clone, Debug, Default)]
pub struct SoftPageTable {
    pub entries: BTreeMap<u64, SoftPte>,
    pub single_flushes: u64,
    pub full_flushes: u64,
    /// Requests that invalidated single pages (`flush_page`, `flush_pages`).
    pub flush_rounds: u64,
    /// Calls of `map`, `unmap`, `protect`, `query`, `take_dirty` and
    /// `update_range`, plus one per entry `update_range` visits (the steps
    /// cost-shape tests count).
    pub calls: Cell<u64>,
    /// Present entries `update_range` visited.
    pub visited: u64,
    /// Makes `map` fail with `NoMem` (intermediate table allocation).
    pub fail_map: bool,
}

impl SoftPageTable {
    fn count_call(&self) {
        self.calls.set(self.calls.get() + 1);
    }
}

impl PageTable for SoftPageTable {
    fn map(&mut self, va: u64, frame: Frame, prot: Prot) -> Result<(), Errno> {
        self.count_call();
        if self.fail_map {
            return Err(Errno::NoMem);
        }
        assert!(
            !self.entries.contains_key(&va),
            "mm mapped over a present entry at {va:#x}"
        );
        self.entries.insert(
            va,
            SoftPte {
                frame,
                prot,
                dirty: false,
                accessed: false,
            },
        );
        Ok(())
    }
    fn unmap(&mut self, va: u64) -> Option<UnmappedPage> {
        self.count_call();
        self.entries.remove(&va).map(|p| UnmappedPage {
            frame: p.frame,
            prot: p.prot,
            dirty: p.dirty,
            accessed: p.accessed,
        })
    }
    fn protect(&mut self, va: u64, prot: Prot) {
        self.count_call();
        if let Some(p) = self.entries.get_mut(&va) {
            p.prot = prot;
        }
    }
    fn query(&self, va: u64) -> Option<PteInfo> {
        self.count_call();
        self.entries.get(&va).map(|p| PteInfo {
            frame: p.frame,
            prot: p.prot,
            dirty: p.dirty,
            accessed: p.accessed,
        })
    }
    fn take_dirty(&mut self, va: u64) -> bool {
        self.count_call();
        self.entries
            .get_mut(&va)
            .is_some_and(|p| core::mem::replace(&mut p.dirty, false))
    }
    fn take_accessed(&mut self, va: u64) -> bool {
        self.count_call();
        self.entries
            .get_mut(&va)
            .is_some_and(|p| core::mem::replace(&mut p.accessed, false))
    }
    fn update_range(
        &mut self,
        start: u64,
        end: u64,
        change: &mut dyn FnMut(u64, PteInfo) -> EntryChange,
    ) {
        self.count_call();
        let mut removed = Vec::new();
        for (&va, p) in self.entries.range_mut(start..end) {
            self.calls.set(self.calls.get() + 1);
            self.visited += 1;
            let info = PteInfo {
                frame: p.frame,
                prot: p.prot,
                dirty: p.dirty,
                accessed: p.accessed,
            };
            match change(va, info) {
                EntryChange::Keep => {}
                EntryChange::Protect(prot) => p.prot = prot,
                EntryChange::Remove => removed.push(va),
            }
        }
        for va in removed {
            self.entries.remove(&va);
        }
    }
    fn flush_page(&mut self, _va: u64) {
        self.single_flushes += 1;
        self.flush_rounds += 1;
    }
    fn flush_pages(&mut self, pages: &[u64]) {
        assert!(
            pages.len() <= crate::TLB_BATCH_LIMIT,
            "a batch holds at most the limit"
        );
        self.single_flushes += pages.len() as u64;
        self.flush_rounds += 1;
    }
    fn flush_all(&mut self) {
        self.full_flushes += 1;
    }
}

/// Frames backed by heap pages; `limit` caps how many may be live.
#[derive(Default)]
pub struct SoftFrames {
    pages: Vec<Option<Box<PageBytes>>>,
    free_list: Vec<usize>,
    live: BTreeSet<u64>,
    pub limit: Option<usize>,
    /// A copy made beforehand, as (source, copy): `copy_of(source)` takes
    /// it (the kernel's copy made outside its lock).
    pub prepared_copy: Option<(Frame, Frame)>,
}

const FRAME_BASE: u64 = 0x10_0000;

impl SoftFrames {
    pub fn new() -> Self {
        Self::default()
    }
    /// Frames currently allocated.
    pub fn live_count(&self) -> usize {
        self.live.len()
    }
    fn slot(frame: Frame) -> usize {
        ((frame.0 - FRAME_BASE) / PAGE_SIZE) as usize
    }
}

impl FrameSource for SoftFrames {
    fn alloc(&mut self) -> Option<Frame> {
        if self.limit.is_some_and(|l| self.live.len() >= l) {
            return None;
        }
        let slot = match self.free_list.pop() {
            Some(s) => s,
            None => {
                self.pages.push(None);
                self.pages.len() - 1
            }
        };
        // Poison fresh frames so that missing zero-fills show up.
        self.pages[slot] = Some(Box::new([0xa5; neoos_abi::PAGE_SIZE]));
        let frame = Frame(FRAME_BASE + slot as u64 * PAGE_SIZE);
        self.live.insert(frame.0);
        Some(frame)
    }
    fn free(&mut self, frame: Frame) {
        assert!(
            self.live.remove(&frame.0),
            "double free of frame {:#x}",
            frame.0
        );
        let slot = Self::slot(frame);
        self.pages[slot] = None;
        self.free_list.push(slot);
    }
    fn zero(&mut self, frame: Frame) {
        self.bytes_mut(frame).fill(0);
    }
    fn copy(&mut self, src: Frame, dst: Frame) {
        let data = *self.bytes(src);
        *self.bytes_mut(dst) = data;
    }
    fn copy_of(&mut self, src: Frame) -> Option<Frame> {
        match self.prepared_copy {
            Some((from, copy)) if from == src => {
                self.prepared_copy = None;
                Some(copy)
            }
            _ => {
                let copy = self.alloc()?;
                self.copy(src, copy);
                Some(copy)
            }
        }
    }
    fn bytes(&self, frame: Frame) -> &PageBytes {
        self.pages[Self::slot(frame)]
            .as_deref()
            .expect("access to a free frame")
    }
    fn bytes_mut(&mut self, frame: Frame) -> &mut PageBytes {
        self.pages[Self::slot(frame)]
            .as_deref_mut()
            .expect("access to a free frame")
    }
}

/// One recorded `write_run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteRequest {
    pub file: FileId,
    pub first_page: u64,
    pub pages: usize,
}

/// In-memory files with injectable failures.
#[derive(Default)]
pub struct SoftPager {
    pub files: BTreeMap<FileId, Vec<u8>>,
    /// Fail every read.
    pub fail_reads: bool,
    /// Fail every `read_pages` (a read of several pages at once).
    pub fail_read_runs: bool,
    /// Fail the next N write requests.
    pub fail_writes: u32,
    /// Fail every `set_len`.
    pub fail_set_len: bool,
    pub writes: Vec<WriteRequest>,
    /// Successful `sync` calls (counted without allocating: the heap-low
    /// tests run with the heap exhausted).
    pub syncs: u64,
    /// The write requests made before the last successful `sync`.
    pub writes_before_last_sync: usize,
    /// Fail the next N `sync` calls.
    pub fail_syncs: u32,
    /// Pages read (by `read_page`, also those of `read_pages`).
    pub reads: u64,
    /// Calls of `read_pages` (read-ahead requests).
    pub read_runs: u64,
    /// Whether the files are on a disk ([`Pager::evictable`]: reclaim and
    /// read-ahead apply), but those in `kept_in_ram`. Off by default: the
    /// files stay resident, read a page per request.
    pub disk_files: bool,
    /// Files whose pages must stay in RAM (as `/tmp` in the kernel).
    pub kept_in_ram: BTreeSet<FileId>,
}

impl SoftPager {
    pub fn new() -> Self {
        Self::default()
    }
    /// The stored contents of `file`.
    pub fn contents(&self, file: FileId) -> &[u8] {
        self.files.get(&file).map_or(&[], |v| v.as_slice())
    }
}

impl Pager for SoftPager {
    fn read_page(
        &mut self,
        file: FileId,
        page_index: u64,
        dst: &mut PageBytes,
    ) -> Result<(), IoError> {
        if self.fail_reads {
            return Err(IoError);
        }
        self.reads += 1;
        let data = self.files.get(&file).ok_or(IoError)?;
        dst.fill(0);
        let start = (page_index * PAGE_SIZE) as usize;
        if start < data.len() {
            let n = (data.len() - start).min(PAGE_SIZE as usize);
            dst[..n].copy_from_slice(&data[start..start + n]);
        }
        Ok(())
    }
    fn sync(&mut self, file: FileId) -> Result<(), IoError> {
        if self.fail_syncs > 0 {
            self.fail_syncs -= 1;
            return Err(IoError);
        }
        let _ = file;
        self.syncs += 1;
        self.writes_before_last_sync = self.writes.len();
        Ok(())
    }
    fn write_run(
        &mut self,
        file: FileId,
        first_page_index: u64,
        pages: &[&PageBytes],
    ) -> Result<(), IoError> {
        if self.fail_writes > 0 {
            self.fail_writes -= 1;
            return Err(IoError);
        }
        let data = self.files.get_mut(&file).ok_or(IoError)?;
        for (i, page) in pages.iter().enumerate() {
            let start = ((first_page_index + i as u64) * PAGE_SIZE) as usize;
            if start >= data.len() {
                break;
            }
            let n = (data.len() - start).min(PAGE_SIZE as usize);
            data[start..start + n].copy_from_slice(&page[..n]);
        }
        self.writes.push(WriteRequest {
            file,
            first_page: first_page_index,
            pages: pages.len(),
        });
        Ok(())
    }
    fn read_pages(
        &mut self,
        file: FileId,
        first_page_index: u64,
        buf: &mut [u8],
    ) -> Result<(), IoError> {
        self.read_runs += 1;
        if self.fail_read_runs {
            return Err(IoError);
        }
        for (i, chunk) in buf.chunks_exact_mut(PAGE_SIZE as usize).enumerate() {
            let page: &mut PageBytes = chunk.try_into().map_err(|_| IoError)?;
            self.read_page(file, first_page_index + i as u64, page)?;
        }
        Ok(())
    }
    fn evictable(&self, file: FileId) -> bool {
        self.disk_files && !self.kept_in_ram.contains(&file)
    }
    fn set_len(&mut self, file: FileId, len: u64) -> Result<(), IoError> {
        if self.fail_set_len {
            return Err(IoError);
        }
        self.files.entry(file).or_default().resize(len as usize, 0);
        Ok(())
    }
}

/// A [`MemorySystem`] with software hardware, one page table per space.
#[derive(Default)]
pub struct Machine {
    pub vm: MemorySystem,
    pub frames: SoftFrames,
    pub pager: SoftPager,
    pub tables: BTreeMap<AsId, SoftPageTable>,
    /// Ranges `[start, end)` locked in RAM per space (`mlock`).
    pub locked: Vec<(AsId, u64, u64)>,
}

/// The machine's page tables and locked ranges, as reclaim reaches them.
struct SoftSpaces<'a> {
    tables: &'a mut BTreeMap<AsId, SoftPageTable>,
    locked: &'a [(AsId, u64, u64)],
}

impl crate::SpaceTables for SoftSpaces<'_> {
    fn table(&mut self, space: AsId) -> Option<&mut dyn PageTable> {
        self.tables.get_mut(&space).map(|t| t as &mut dyn PageTable)
    }
    fn locked(&self, space: AsId, va: u64) -> bool {
        self.locked
            .iter()
            .any(|&(s, start, end)| s == space && start <= va && va < end)
    }
}

impl Machine {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new address space with its page table.
    pub fn new_space(&mut self) -> AsId {
        let id = self.vm.create_address_space();
        self.tables.insert(id, SoftPageTable::default());
        id
    }

    /// Creates a file on the "disk" and opens one descriptor to it.
    pub fn create_file(&mut self, id: u64, contents: &[u8]) -> FileId {
        let file = FileId(id);
        self.pager.files.insert(file, contents.to_vec());
        self.vm.file_open_ref(file, contents.len() as u64);
        file
    }

    /// Runs `f` with the system and the hardware of address space `id`.
    pub fn with<R>(&mut self, id: AsId, f: impl FnOnce(&mut MemorySystem, &mut Hw) -> R) -> R {
        let Machine {
            vm,
            frames,
            pager,
            tables,
            ..
        } = self;
        let pt = tables.entry(id).or_default();
        let mut hw = Hw::new(pt, frames, pager);
        f(vm, &mut hw)
    }

    /// Runs `f` with the system and the frames and pager.
    pub fn with_io<R>(&mut self, f: impl FnOnce(&mut MemorySystem, &mut Io) -> R) -> R {
        let Machine {
            vm, frames, pager, ..
        } = self;
        let mut io = Io { frames, pager };
        f(vm, &mut io)
    }

    /// The page table of `id`.
    pub fn pt(&self, id: AsId) -> &SoftPageTable {
        &self.tables[&id]
    }

    /// A user load of `len` bytes at `addr`, as the CPU does it.
    pub fn load(&mut self, id: AsId, addr: u64, len: usize) -> Result<Vec<u8>, FaultError> {
        let mut out = vec![0u8; len];
        let mut done = 0;
        while done < len {
            let pos = addr + done as u64;
            let frame = self.touch(id, pos, Access::Read)?;
            let off = (pos % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - off).min(len - done);
            out[done..done + n].copy_from_slice(&self.frames.bytes(frame)[off..off + n]);
            done += n;
        }
        Ok(out)
    }

    /// A user store of `data` at `addr`, as the CPU does it.
    pub fn store(&mut self, id: AsId, addr: u64, data: &[u8]) -> Result<(), FaultError> {
        let mut done = 0;
        while done < data.len() {
            let pos = addr + done as u64;
            let frame = self.touch(id, pos, Access::Write)?;
            let off = (pos % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - off).min(data.len() - done);
            self.frames.bytes_mut(frame)[off..off + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// Translates like the MMU: a present entry allowing `access` is used
    /// (setting accessed/dirty), else the mm resolves a fault and it retries.
    pub fn touch(&mut self, id: AsId, addr: u64, access: Access) -> Result<Frame, FaultError> {
        let va = addr & !(PAGE_SIZE - 1);
        for _ in 0..2 {
            let table = self.tables.entry(id).or_default();
            if let Some(p) = table.entries.get_mut(&va) {
                if p.prot.allows(access) {
                    p.accessed = true;
                    if access == Access::Write {
                        p.dirty = true;
                    }
                    return Ok(p.frame);
                }
            }
            self.with(id, |vm, hw| vm.handle_fault(id, hw, addr, access))?;
        }
        panic!("fault at {addr:#x} resolved without a usable entry");
    }

    /// Reclaim of up to `want` frames in at most `budget` steps, over
    /// every space's table.
    pub fn reclaim(&mut self, want: usize, budget: usize) -> crate::Reclaimed {
        let Machine {
            vm,
            frames,
            pager,
            tables,
            locked,
        } = self;
        let mut io = Io { frames, pager };
        let mut spaces = SoftSpaces { tables, locked };
        vm.reclaim(&mut io, &mut spaces, want, budget)
    }

    /// Process exit.
    pub fn exit(&mut self, id: AsId) -> Result<(), Errno> {
        let r = self.with(id, |vm, hw| vm.destroy_address_space(id, hw));
        self.tables.remove(&id);
        r
    }

    /// Fork of `parent`.
    pub fn fork(&mut self, parent: AsId) -> Result<AsId, Errno> {
        let child = self.with(parent, |vm, hw| vm.fork(parent, hw))?;
        self.tables.insert(child, SoftPageTable::default());
        Ok(child)
    }

    /// Closes one descriptor of `file`.
    pub fn close(&mut self, file: FileId) -> Result<(), Errno> {
        self.with_io(|vm, io| vm.file_close_ref(io, file))
    }
}
