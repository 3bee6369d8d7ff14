//! The kernel heap: Talc over a static arena in the kernel image. Talc's
//! counters say how many bytes are in use, so that system calls which grow
//! kernel data can refuse (out of memory) before the heap runs out.

use spinning_top::RawSpinlock;
use talc::source::Claim;
use talc::TalcLock;

const ARENA_SIZE: usize = 96 * 1024 * 1024;

#[repr(align(4096))]
struct Arena([u8; ARENA_SIZE]);

static mut ARENA: Arena = Arena([0; ARENA_SIZE]);

#[global_allocator]
static HEAP: TalcLock<RawSpinlock, Claim> =
    // SAFETY: the arena is a static used by nothing but this allocator.
    TalcLock::new(unsafe { Claim::array(core::ptr::addr_of_mut!(ARENA.0)) });

/// Bytes of the heap not handed out (fragmentation aside).
pub fn free_bytes() -> usize {
    let in_use = HEAP.lock().counters().allocated_bytes;
    ARENA_SIZE.saturating_sub(in_use)
}
