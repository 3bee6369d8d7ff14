//! The kernel heap: Talc over a static arena in the kernel image.

use spinning_top::RawSpinlock;
use talc::source::Claim;
use talc::TalcLock;

const ARENA_SIZE: usize = 96 * 1024 * 1024;

#[repr(align(4096))]
struct Arena([u8; ARENA_SIZE]);

static mut ARENA: Arena = Arena([0; ARENA_SIZE]);

#[global_allocator]
static ALLOCATOR: TalcLock<RawSpinlock, Claim> =
    // SAFETY: the arena is a static used by nothing but this allocator.
    TalcLock::new(unsafe { Claim::array(core::ptr::addr_of_mut!(ARENA.0)) });
