//! The kernel heap: Talc over a small static arena in the kernel image,
//! grown once at boot by a run of RAM sized from the machine's memory
//! ([`heap_bytes_for`]), so the image stays small and a machine of 64 MiB
//! boots. Talc's counters say how many bytes are in use, so that system
//! calls which grow kernel data can refuse (out of memory) before the heap
//! runs out.

use core::sync::atomic::{AtomicUsize, Ordering};

use spinning_top::RawSpinlock;
use talc::source::Claim;
use talc::TalcLock;

/// The arena in the kernel image: enough for the boot until the frame
/// allocator hands out the rest ([`grow`]).
const ARENA_SIZE: usize = 4 * 1024 * 1024;

/// The whole heap, arena included, at most: 3/16 of RAM up to this (512
/// MiB of RAM, the default machine, gets exactly this).
const MAX_HEAP: usize = 96 * 1024 * 1024;

#[repr(align(4096))]
struct Arena([u8; ARENA_SIZE]);

static mut ARENA: Arena = Arena([0; ARENA_SIZE]);

#[global_allocator]
static HEAP: TalcLock<RawSpinlock, Claim> =
    // SAFETY: the arena is a static used by nothing but this allocator.
    TalcLock::new(unsafe { Claim::array(core::ptr::addr_of_mut!(ARENA.0)) });

/// Bytes the heap holds in all (the arena and what [`grow`] added).
static HEAP_SIZE: AtomicUsize = AtomicUsize::new(ARENA_SIZE);

/// Bytes of RAM the heap should take from a machine of `ram` bytes (beyond
/// the arena): 3/16 of RAM, the whole heap at most [`MAX_HEAP`].
pub fn heap_bytes_for(ram: u64) -> usize {
    let want = usize::try_from(ram / 16 * 3).unwrap_or(MAX_HEAP);
    want.min(MAX_HEAP).saturating_sub(ARENA_SIZE) & !0xfff
}

/// Adds `len` bytes at physical address `phys` (page aligned, RAM the frame
/// allocator gave up for good, inside the boot direct map) to the heap.
/// `false` when Talc refused the region (too small to hold a chunk).
pub fn grow(phys: u64, len: usize) -> bool {
    let base = super::paging::phys_to_virt(phys) as *mut u8;
    // SAFETY: the region is RAM the frame allocator removed from its
    // ranges (it is never handed out as a frame), mapped writable by the
    // boot direct map, and given to the allocator once; nothing else
    // reaches it.
    let claimed = unsafe { HEAP.lock().claim(base, len) };
    if claimed.is_some() {
        HEAP_SIZE.fetch_add(len, Ordering::Relaxed);
    }
    claimed.is_some()
}

/// Bytes the heap holds in all.
pub fn size() -> usize {
    HEAP_SIZE.load(Ordering::Relaxed)
}

/// Bytes of the heap not handed out (fragmentation aside).
pub fn free_bytes() -> usize {
    let in_use = HEAP.lock().counters().allocated_bytes;
    size().saturating_sub(in_use)
}
