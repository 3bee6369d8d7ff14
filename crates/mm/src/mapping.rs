//! One mapping of an address space: a virtual range, its protection and
//! the memory object it shows from which page on. A shared mapping shows
//! the object itself; a private one shows its own (shadow) object, which
//! holds its private pages (see `shadow.rs`). Pages live in objects only.

use crate::hw::{ObjectId, Prot, ShmId, PAGE_SIZE};
use crate::object::ObjectRef;

/// Whether stores reach the object (shared) or stay in the mapping's own
/// object (private).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sharing {
    Shared,
    Private,
}

/// Which call created the mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// `sys_mmap` of the NeoOS personality, of `size` bytes (only
    /// `neo_munmap` with exactly that size removes it, though POSIX calls may
    /// also act on it).
    Neo { size: u64 },
    /// POSIX `mmap`.
    Posix,
    /// `shmat` of the given segment.
    Shm(ShmId),
}

/// The object a mapping shows (a counted reference), and which page of it
/// is at the mapping start.
#[derive(Debug, PartialEq, Eq)]
pub struct Backing {
    pub object: ObjectRef,
    pub first_page: u64,
}

/// What [`crate::MemorySystem::mapping_at`] tells of a mapping: its range,
/// protection and sharing (a copy: the space's lock is not held after).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappingSummary {
    pub start: u64,
    pub end: u64,
    pub prot: Prot,
    pub sharing: Sharing,
}

/// One mapping `[start, end)`. Not `Clone`: it owns a counted reference to
/// its object, which only the object store duplicates or gives back.
#[derive(Debug)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub prot: Prot,
    /// Highest protection `mprotect` may grant (the descriptor's access).
    pub max_prot: Prot,
    pub sharing: Sharing,
    /// `None` for private anonymous memory not touched yet.
    pub backing: Option<Backing>,
    pub origin: Origin,
}

impl Mapping {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the mapping is empty (never true for a live mapping).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Whether `addr` lies inside.
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// Index of the backing object's page shown at `va`.
    pub fn object_page(&self, va: u64) -> Option<(ObjectId, u64)> {
        let b = self.backing.as_ref()?;
        Some((b.object.id(), b.first_page + (va - self.start) / PAGE_SIZE))
    }

    /// Backing object page indices `[first, end)` shown by `[from, to)`.
    pub fn object_pages(&self, from: u64, to: u64) -> Option<(ObjectId, u64, u64)> {
        let b = self.backing.as_ref()?;
        let first = b.first_page + (from - self.start) / PAGE_SIZE;
        Some((b.object.id(), first, first + (to - from) / PAGE_SIZE))
    }

    /// Virtual address at which object page `index` appears.
    pub fn va_of_object_page(&self, index: u64) -> u64 {
        let first = self.backing.as_ref().map_or(0, |b| b.first_page);
        self.start + (index - first) * PAGE_SIZE
    }

    /// The backing object's id, if any.
    pub fn object_id(&self) -> Option<ObjectId> {
        self.backing.as_ref().map(|b| b.object.id())
    }

    /// Cuts the mapping at `addr` (strictly inside), keeping `[start, addr)`
    /// and returning `[addr, end)`, which shows its object through
    /// `right_ref` (a reference the caller counted, for a mapping with an
    /// object).
    pub fn split_off(&mut self, addr: u64, right_ref: Option<ObjectRef>) -> Mapping {
        let backing = match (&self.backing, right_ref) {
            (Some(b), Some(object)) => Some(Backing {
                object,
                first_page: b.first_page + (addr - self.start) / PAGE_SIZE,
            }),
            _ => None,
        };
        let right = Mapping {
            start: addr,
            end: self.end,
            prot: self.prot,
            max_prot: self.max_prot,
            sharing: self.sharing,
            backing,
            origin: self.origin,
        };
        self.end = addr;
        right
    }
}
