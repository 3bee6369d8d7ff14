//! The kernel heap: Talc over a static arena in the kernel image, with a
//! count of the bytes in use so that system calls which grow kernel data can
//! refuse (out of memory) before the heap runs out.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

use spinning_top::RawSpinlock;
use talc::source::Claim;
use talc::TalcLock;

const ARENA_SIZE: usize = 96 * 1024 * 1024;

#[repr(align(4096))]
struct Arena([u8; ARENA_SIZE]);

static mut ARENA: Arena = Arena([0; ARENA_SIZE]);

/// Talc, plus the bytes handed out and not yet given back.
struct CountedHeap {
    talc: TalcLock<RawSpinlock, Claim>,
    in_use: AtomicUsize,
}

#[global_allocator]
static HEAP: CountedHeap = CountedHeap {
    // SAFETY: the arena is a static used by nothing but this allocator.
    talc: TalcLock::new(unsafe { Claim::array(core::ptr::addr_of_mut!(ARENA.0)) }),
    in_use: AtomicUsize::new(0),
};

// SAFETY: every call is passed on to Talc unchanged; the counter only
// follows what Talc handed out.
unsafe impl GlobalAlloc for CountedHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `alloc` are passed on.
        let p = unsafe { self.talc.alloc(layout) };
        if !p.is_null() {
            self.in_use.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's guarantees for `dealloc` are passed on.
        unsafe { self.talc.dealloc(ptr, layout) };
        self.in_use.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's guarantees for `realloc` are passed on.
        let p = unsafe { self.talc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            self.in_use.fetch_sub(layout.size(), Ordering::Relaxed);
            self.in_use.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

/// Bytes of the heap not handed out (fragmentation aside).
pub fn free_bytes() -> usize {
    ARENA_SIZE.saturating_sub(HEAP.in_use.load(Ordering::Relaxed))
}
