//! The NeoOS mapping core: address spaces, memory objects (anonymous memory,
//! file page caches, System V segments), demand paging with copy-on-write,
//! and the two memory personalities (NeoOS `sys_mmap`/`sys_munmap`, POSIX
//! `mmap`/`munmap`/`msync`/`mprotect`/`madvise`/`mincore`, SysV `shm*`).
//!
//! The kernel owns one [`MemorySystem`] (behind a lock) and passes the
//! machine to each call through [`Hw`] (page table of the address space
//! concerned, frame source, pager) or [`Io`] (frames and pager only).
//! Errors are [`Errno`]; the kernel converts them at the system-call boundary
//! with [`Errno::neo_code`] or [`Errno::posix_errno`].
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod address_space;
mod deferred_copies;
pub mod errno;
mod fault;
mod fault_around;
pub mod holes;
pub mod hw;
mod kept_files;
pub mod mapping;
pub mod maps;
mod neo;
mod object;
mod page_cache;
mod page_map;
pub mod posix;
pub mod program_break;
mod read_ahead;
mod reads_in_flight;
mod reclaim;
mod remap;
mod shadow;
mod shared_fault;
mod shared_map;
mod shared_remap;
mod slots;
pub mod stats;
pub mod system;
pub mod sysv;
pub mod tlb;
mod unmap;
mod user_access;

#[cfg(feature = "testing")]
pub mod testing;

pub use errno::{Errno, FaultError};
pub use hw::{
    Access, AsId, EntryChange, FileAccess, FileId, Frame, FrameSource, Hw, Io, IoError, ObjectId,
    PageBytes, PageTable, Pager, Prot, PteInfo, SharedChange, SharedFrames, ShmId, UnmappedPage,
    VacantMap, PAGE_SIZE,
};
pub use maps::{format_maps, write_maps_line, MapInfo, MapObject};
pub use neo::NeoUnmapWrite;
pub use object::{count_underflows, ObjectRef};
pub use page_cache::GatheredRuns;
pub use posix::{getpagesize, DirtyFiles};
pub use program_break::{BreakMove, ProgramBreak};
pub use read_ahead::READ_AHEAD_PAGES;
pub use reads_in_flight::PlannedRead;
pub use reclaim::{ClockHand, PagesToWrite, Reclaimed, SpaceTables};
pub use shared_fault::SharedFault;
pub use stats::MemStats;
pub use system::MemorySystem;
pub use sysv::ShmStat;
pub use tlb::TLB_BATCH_LIMIT;

/// The whole system must be movable into a kernel-wide lock, and shared
/// between CPUs under its read side (`shared_fault.rs`).
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MemorySystem>();
};
