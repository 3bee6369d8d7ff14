//! The boundary with the machine: identifiers, page protections, and the
//! traits the kernel implements (page tables, physical frames, the pager),
//! bundled per call in [`Hw`] and [`Io`].

use crate::errno::Errno;
use neoos_abi::mman;

/// Bytes in a page.
pub const PAGE_SIZE: u64 = neoos_abi::PAGE_SIZE as u64;
/// `PAGE_SIZE - 1`.
pub const PAGE_MASK: u64 = PAGE_SIZE - 1;
/// Contents of one page.
pub type PageBytes = [u8; neoos_abi::PAGE_SIZE];

/// Physical address of a page frame (page aligned).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frame(pub u64);

/// Identity of a file, as given by the kernel (its inode number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub u64);

/// Identity of an address space inside a [`crate::MemorySystem`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AsId(pub u64);

/// Identity of a memory object inside a [`crate::MemorySystem`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId(pub u64);

/// Identity of a System V shared-memory segment (`shmid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShmId(pub u64);

/// Kind of memory access (of a fault or a user copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Write,
    Exec,
}

/// Access mode of the descriptor a file is mapped through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileAccess {
    ReadOnly,
    WriteOnly,
    ReadWrite,
}

impl FileAccess {
    /// Whether the descriptor was opened for reading.
    pub fn can_read(self) -> bool {
        !matches!(self, FileAccess::WriteOnly)
    }
    /// Whether the descriptor was opened for writing.
    pub fn can_write(self) -> bool {
        !matches!(self, FileAccess::ReadOnly)
    }
}

/// Page protection: read, write and execute permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Prot {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

impl Prot {
    pub const NONE: Prot = Prot::new(false, false, false);
    pub const READ: Prot = Prot::new(true, false, false);
    pub const READ_WRITE: Prot = Prot::new(true, true, false);
    pub const READ_EXEC: Prot = Prot::new(true, false, true);
    pub const ALL: Prot = Prot::new(true, true, true);

    /// A protection from its three bits.
    pub const fn new(read: bool, write: bool, exec: bool) -> Prot {
        Prot { read, write, exec }
    }

    /// Parses POSIX `PROT_*` bits; unknown bits are `Inval`.
    pub fn from_posix(bits: u32) -> Result<Prot, Errno> {
        let known = mman::PROT_READ | mman::PROT_WRITE | mman::PROT_EXEC;
        if bits & !known != 0 {
            return Err(Errno::Inval);
        }
        Ok(Prot::new(
            bits & mman::PROT_READ != 0,
            bits & mman::PROT_WRITE != 0,
            bits & mman::PROT_EXEC != 0,
        ))
    }

    /// The POSIX `PROT_*` bits.
    pub fn to_posix(self) -> u32 {
        (if self.read { mman::PROT_READ } else { 0 })
            | (if self.write { mman::PROT_WRITE } else { 0 })
            | (if self.exec { mman::PROT_EXEC } else { 0 })
    }

    /// This protection without write permission.
    pub fn without_write(self) -> Prot {
        Prot {
            write: false,
            ..self
        }
    }

    /// Permissions present in both.
    pub fn intersect(self, other: Prot) -> Prot {
        Prot::new(
            self.read && other.read,
            self.write && other.write,
            self.exec && other.exec,
        )
    }

    /// Whether every permission of `other` is also in `self`.
    pub fn contains(self, other: Prot) -> bool {
        self.intersect(other) == other
    }

    /// Whether no access is allowed.
    pub fn is_none(self) -> bool {
        self == Prot::NONE
    }

    /// Whether this protection allows `access`.
    pub fn allows(self, access: Access) -> bool {
        match access {
            Access::Read => self.read,
            Access::Write => self.write,
            Access::Exec => self.exec,
        }
    }
}

/// What a page-table entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PteInfo {
    pub frame: Frame,
    pub prot: Prot,
    pub dirty: bool,
    pub accessed: bool,
}

/// What a removed page-table entry held (the same fields as a live one).
pub type UnmappedPage = PteInfo;

/// What [`PageTable::update_range`] does with one present entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryChange {
    /// Leave it as it is.
    Keep,
    /// Give it this protection (frame, accessed and dirty bits kept).
    Protect(Prot),
    /// Remove it.
    Remove,
}

/// What [`PageTable::unmap_shared`] or [`PageTable::protect_shared`] did to
/// its pages' entries, bit `i` for `pages[i]`: which changed, and which of
/// those were writable and are no longer (a shared file page's writable
/// entries are counted: `unmap.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SharedChange {
    pub changed: u64,
    pub lost_write: u64,
}

/// One address space's page table (x86_64 four-level tables in the kernel,
/// a map in tests). Virtual addresses passed in are page aligned user
/// addresses. The mm never maps over a present entry: it unmaps first.
/// Changing or removing an entry is followed by `flush_page`/`flush_all`
/// issued by the mm's TLB batch (the implementation must not flush itself).
pub trait PageTable {
    /// Installs `va -> frame` with `prot`. May fail with `NoMem` when an
    /// intermediate table cannot be allocated.
    fn map(&mut self, va: u64, frame: Frame, prot: Prot) -> Result<(), Errno>;
    /// Installs `va -> frame` with `prot` only where no entry is, through
    /// a shared reference: several CPUs may install entries in one table
    /// at once (the faults of `shared_fault.rs`, taken while the kernel
    /// holds its lock for reading), each entry and each missing
    /// intermediate table put in place atomically. Never replaces or
    /// changes an entry, so no TLB flush follows. The default takes no
    /// part ([`VacantMap::Unsupported`]): every fault then goes the
    /// exclusive way.
    fn map_vacant(&self, va: u64, frame: Frame, prot: Prot) -> VacantMap {
        let _ = (va, frame, prot);
        VacantMap::Unsupported
    }
    /// Whether [`Self::unmap_shared`] and [`Self::flush_pages_shared`]
    /// work: the mapping calls made with shared access (`shared_map.rs`)
    /// are made only then. The default: no.
    fn changes_shared(&self) -> bool {
        false
    }
    /// Removes the entries of `pages` (at most 64, in address order;
    /// those without one are passed over) through a shared reference,
    /// returning which were there and which of those were writable:
    /// several CPUs may change one table at once, each in a range no one
    /// else changes (the space's write lock keeps the others out of it),
    /// so only entries change, atomically; tables stay. The caller flushes
    /// with [`Self::flush_pages_shared`].
    fn unmap_shared(&self, pages: &[u64]) -> SharedChange {
        let _ = pages;
        SharedChange::default()
    }
    /// Takes from the entries of `pages` (at most 64, in address order;
    /// those without one are passed over) what `prot` lacks (write,
    /// execute; `prot` is not none), through a shared reference as
    /// [`Self::unmap_shared`], returning which changed and which of those
    /// lost their write permission.
    fn protect_shared(&self, pages: &[u64], prot: Prot) -> SharedChange {
        let _ = (pages, prot);
        SharedChange::default()
    }
    /// [`Self::flush_pages`] (or, for `None`, [`Self::flush_all`]) through
    /// a shared reference: several CPUs may flush at once.
    fn flush_pages_shared(&self, pages: Option<&[u64]>) {
        let _ = pages;
    }
    /// Removes the entry for `va`, returning what it held.
    fn unmap(&mut self, va: u64) -> Option<UnmappedPage>;
    /// Changes the protection of a present entry (no-op when absent).
    fn protect(&mut self, va: u64, prot: Prot);
    /// The entry for `va`, if present.
    fn query(&self, va: u64) -> Option<PteInfo>;
    /// Reads and clears the hardware dirty bit of `va`'s entry.
    fn take_dirty(&mut self, va: u64) -> bool;
    /// Reads and clears the hardware accessed bit of `va`'s entry (the
    /// reclaim clock's second chance). The default knows no accessed bits:
    /// `false`, so reclaim sees mapped pages as unused.
    fn take_accessed(&mut self, va: u64) -> bool {
        let _ = va;
        false
    }
    /// Calls `change` with each present entry of `[start, end)` (page
    /// aligned, in address order, with what the entry holds before any
    /// change) and applies what it returns. Work follows the present
    /// entries and the tables that hold them: an empty upper-level entry
    /// is one check for all it covers (512 GiB, 1 GiB, 2 MiB on x86_64).
    /// The implementation does not flush (the caller batches).
    fn update_range(
        &mut self,
        start: u64,
        end: u64,
        change: &mut dyn FnMut(u64, PteInfo) -> EntryChange,
    );
    /// Invalidates the TLB entry for `va`.
    fn flush_page(&mut self, va: u64);
    /// Invalidates the TLB entries for `pages` (at most
    /// [`TLB_BATCH_LIMIT`](crate::TLB_BATCH_LIMIT)), as one request: an
    /// implementation that must ask other CPUs asks each once for them all.
    /// The default invalidates them one by one.
    fn flush_pages(&mut self, pages: &[u64]) {
        for &va in pages {
            self.flush_page(va);
        }
    }
    /// Invalidates the whole (non-global) TLB.
    fn flush_all(&mut self);
    /// Frees the intermediate page-table pages that cover part of
    /// `[start, end)` and hold no entry any more. Called at the end of an
    /// unmap, after its flush; the implementation invalidates the cached
    /// paths through a table before freeing it. The default keeps them.
    fn release_tables(&mut self, start: u64, end: u64) {
        let _ = (start, end);
    }
}

/// The frames of faults taken with shared access (`shared_fault.rs`):
/// several CPUs call these at once.
pub trait SharedFrames {
    /// A free frame filled with zeroes, or `None` (the fault then goes the
    /// exclusive way, which may reclaim or end the program).
    fn alloc_zeroed_shared(&self) -> Option<Frame>;
    /// Gives back a frame of [`Self::alloc_zeroed_shared`] that no entry
    /// maps.
    fn free_shared(&self, frame: Frame);
}

/// What [`PageTable::map_vacant`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VacantMap {
    /// The entry is in place.
    Installed,
    /// An entry was there already: nothing changed.
    Occupied,
    /// An intermediate table could not be had: no entry installed (the
    /// tables linked before it stay, empty).
    NoMem,
    /// The table installs only through exclusive access.
    Unsupported,
}

/// Physical page frames. `bytes`/`bytes_mut` give access to a frame's
/// contents (the kernel's direct map).
pub trait FrameSource {
    /// A free frame (contents unspecified), or `None` when memory is exhausted.
    fn alloc(&mut self) -> Option<Frame>;
    /// Returns a frame obtained from `alloc`.
    fn free(&mut self, frame: Frame);
    /// Fills a frame with zeroes.
    fn zero(&mut self, frame: Frame);
    /// A free frame filled with zeroes, or `None` when memory is exhausted
    /// (a platform may have zeroed one beforehand, outside its locks).
    fn alloc_zeroed(&mut self) -> Option<Frame> {
        let frame = self.alloc()?;
        self.zero(frame);
        Some(frame)
    }
    /// Copies the contents of `src` into `dst`.
    fn copy(&mut self, src: Frame, dst: Frame);
    /// A free frame holding a copy of `src`, or `None` when memory is
    /// exhausted (a platform may have made the copy beforehand, outside
    /// its locks: [`crate::FaultError::WaitForCopy`]).
    fn copy_of(&mut self, src: Frame) -> Option<Frame> {
        let copy = self.alloc()?;
        self.copy(src, copy);
        Some(copy)
    }
    /// The contents of a frame.
    fn bytes(&self, frame: Frame) -> &PageBytes;
    /// The contents of a frame, writable.
    fn bytes_mut(&mut self, frame: Frame) -> &mut PageBytes;
}

/// The pager failed (device or file-system error).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IoError;

/// Backing store of file objects (the file system).
pub trait Pager {
    /// Reads page `page_index` of `file` into `dst`; bytes past the stored
    /// length of the file must read as zero.
    fn read_page(
        &mut self,
        file: FileId,
        page_index: u64,
        dst: &mut PageBytes,
    ) -> Result<(), IoError>;
    /// Reads consecutive pages from `first_page_index` of `file` into
    /// `buf` (whole pages), as [`Pager::read_page`] reads each: one device
    /// request for a run where the store can. The default reads them one
    /// by one.
    fn read_pages(
        &mut self,
        file: FileId,
        first_page_index: u64,
        buf: &mut [u8],
    ) -> Result<(), IoError> {
        for (i, chunk) in buf.chunks_exact_mut(PAGE_SIZE as usize).enumerate() {
            let page: &mut PageBytes = chunk.try_into().map_err(|_| IoError)?;
            self.read_page(file, first_page_index + i as u64, page)?;
        }
        Ok(())
    }
    /// Writes consecutive whole pages starting at `first_page_index` (one
    /// request per contiguous run of dirty pages). The stored length of the
    /// file is not changed by this call: bytes past the length last given to
    /// [`Pager::set_len`] are padding and are dropped.
    fn write_run(
        &mut self,
        file: FileId,
        first_page_index: u64,
        pages: &[&PageBytes],
    ) -> Result<(), IoError>;
    /// Makes the runs written to `file` since the last call durable, with
    /// what is needed to read them back (the file's metadata, the device's
    /// write cache). The writeback calls it once after the runs of one
    /// write-back, and reports success only when it succeeds. The default
    /// does nothing (a store whose writes are durable as they complete).
    fn sync(&mut self, file: FileId) -> Result<(), IoError> {
        let _ = file;
        Ok(())
    }
    /// Sets the stored length of `file` (growing with zeroes or truncating).
    fn set_len(&mut self, file: FileId, len: u64) -> Result<(), IoError>;
    /// Whether clean pages of `file` may leave RAM, to be read again from
    /// here when used (a file on a disk). The default, `false`, keeps every
    /// page of every file resident (a store in RAM gains nothing by it).
    fn evictable(&self, file: FileId) -> bool {
        let _ = file;
        false
    }
}

/// What a call that touches one address space needs from the machine.
pub struct Hw<'a> {
    /// The page table of the address space the call names.
    pub pt: &'a mut dyn PageTable,
    pub frames: &'a mut dyn FrameSource,
    pub pager: &'a mut dyn Pager,
}

/// What a call on the page cache alone needs from the machine.
pub struct Io<'a> {
    pub frames: &'a mut dyn FrameSource,
    pub pager: &'a mut dyn Pager,
}

impl<'a> Hw<'a> {
    /// Bundles the three parts.
    pub fn new(
        pt: &'a mut dyn PageTable,
        frames: &'a mut dyn FrameSource,
        pager: &'a mut dyn Pager,
    ) -> Self {
        Hw { pt, frames, pager }
    }

    /// The frame source and pager, reborrowed.
    pub fn io(&mut self) -> Io<'_> {
        Io {
            frames: &mut *self.frames,
            pager: &mut *self.pager,
        }
    }
}

/// `addr` rounded down to a page boundary.
pub fn page_floor(addr: u64) -> u64 {
    addr & !PAGE_MASK
}

/// `len` rounded up to whole pages, `None` on overflow.
pub fn page_ceil(len: u64) -> Option<u64> {
    len.checked_add(PAGE_MASK).map(page_floor)
}

/// Whether `addr` is page aligned.
pub fn is_page_aligned(addr: u64) -> bool {
    addr & PAGE_MASK == 0
}
