//! Physical memory: the frame allocator, and frames as owned values.
//!
//! The allocator hands out 4 KiB frames of usable RAM (from the boot memory
//! map, minus the kernel image and the boot module), each as a [`PhysFrame`]
//! that only [`free`] takes back, so a frame has one owner at a time. The
//! bytes of a frame borrow its owner: `&PhysFrame` reads, `&mut PhysFrame`
//! writes. [`DataFrames`] is the owner of the frames the mapping core
//! names by address (`neoos_mm::Frame`): it lends their bytes only for
//! addresses it owns, and through `&self`/`&mut self`, so no two views of
//! a frame alias. Freed frames are reused first; untouched RAM is handed
//! out from the top of the remaining ranges. Both operations are O(1).
//!
//! Each CPU keeps one zeroed frame for its next zero-fill
//! ([`prepare_zeroed_frame`]), taken from the allocator and zeroed before
//! a page fault takes the kernel lock, so the zeroing is done with no lock
//! held. A frame kept so counts as free ([`counts`]) until the mapping
//! core takes it, and the allocator's last frames include it: with none
//! left, [`alloc`] hands out this CPU's.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

use super::paging::phys_to_virt;

const PAGE: u64 = neoos_abi::PAGE_SIZE as u64;

/// Contents of one frame.
pub type PageBytes = [u8; PAGE as usize];

/// One physical frame of RAM, owned: not `Clone`, given back with [`free`].
#[derive(Debug, PartialEq, Eq)]
pub struct PhysFrame {
    addr: u64,
}

impl PhysFrame {
    /// The frame's physical address.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// Gives up the value without freeing the frame; its owner from now on
    /// keeps the address (a page table, [`DataFrames`]).
    pub(super) fn into_raw(self) -> u64 {
        self.addr
    }

    /// The value of a frame given up with [`PhysFrame::into_raw`].
    ///
    /// # Safety
    /// `addr` must come from `into_raw`, and the frame must not be owned by
    /// any other value (each `into_raw` is undone at most once).
    pub(super) unsafe fn from_raw(addr: u64) -> PhysFrame {
        PhysFrame { addr }
    }

    /// The frame's bytes.
    pub fn bytes(&self) -> &PageBytes {
        // SAFETY: every allocated frame lies in RAM covered by the direct
        // map and is page aligned; `self` owns it, so only borrows of `self`
        // reach it, and this one is shared.
        unsafe { &*(phys_to_virt(self.addr) as *const PageBytes) }
    }

    /// The frame's bytes, writable.
    pub fn bytes_mut(&mut self) -> &mut PageBytes {
        // SAFETY: as `bytes`; the borrow of `self` is exclusive.
        unsafe { &mut *(phys_to_virt(self.addr) as *mut PageBytes) }
    }

    /// Fills the frame with zeros.
    ///
    /// 256 sixteen-byte SSE stores in a row, no loop: 258 instructions a
    /// page where `rep stosq` takes 512 steps and a loop of 16 stores 307.
    /// The kernel may use SSE registers because every entry from user mode
    /// saves the user's with `fxsave`. Not inlined: one copy of the 256
    /// stores (4 KiB of code), not one per caller.
    #[inline(never)]
    pub fn zero(&mut self) {
        let page = self.bytes_mut().as_mut_ptr();
        // SAFETY: `page` is the direct-map view of this whole, 4096-byte
        // aligned frame, borrowed exclusively; the 256 16-byte aligned
        // `movaps` stores cover offsets 0..4096, inside it; xmm0 is
        // declared clobbered.
        unsafe {
            core::arch::asm!(
                "xorps xmm0, xmm0",
                ".set neoos_zero_at, 0",
                ".rept 256",
                "movaps [{p} + neoos_zero_at], xmm0",
                ".set neoos_zero_at, neoos_zero_at + 16",
                ".endr",
                p = in(reg) page,
                out("xmm0") _,
                options(nostack),
            );
        }
    }
}

struct FrameAllocator {
    /// Untouched ranges as (next frame, end).
    ranges: Vec<(u64, u64)>,
    recycled: Vec<u64>,
    total: u64,
}

static FRAMES: Mutex<FrameAllocator> = Mutex::new(FrameAllocator {
    ranges: Vec::new(),
    recycled: Vec::new(),
    total: 0,
});
/// Frames free: in the allocator, or kept zeroed by a CPU. Atomics, as
/// the total once set: taking a kept frame and reading the counts (every
/// fault and call, for reclaim) take no allocator lock.
static FREE: AtomicU64 = AtomicU64::new(0);
static TOTAL: AtomicU64 = AtomicU64::new(0);

/// Builds the allocator from usable RAM, skipping everything below
/// `reserved_end` (low memory and the kernel image) and the boot module.
/// Only the first call counts (later ones would hand out frames twice).
pub fn init(ram: &[(u64, u64)], reserved_end: u64, module: Option<(u64, u64)>) {
    let mut a = FRAMES.lock();
    if a.total != 0 {
        return;
    }
    let add = |start: u64, end: u64, a: &mut FrameAllocator| {
        let start = start.next_multiple_of(PAGE);
        let end = end & !(PAGE - 1);
        if end > start {
            a.ranges.push((start, end));
            a.total += (end - start) / PAGE;
        }
    };
    for &(base, len) in ram {
        let start = base.max(reserved_end);
        let end = base + len;
        match module {
            Some((m, mlen)) if m < end && m + mlen > start => {
                add(start, m, &mut a);
                add(m + mlen, end, &mut a);
            }
            _ => add(start, end, &mut a),
        }
    }
    give_heap_its_share(&mut a);
    FREE.store(a.total, Ordering::Relaxed);
    TOTAL.store(a.total, Ordering::Relaxed);
    let total = a.total as usize;
    a.recycled.reserve(total);
}

/// Grows the kernel heap by its share of RAM ([`super::heap::heap_bytes_for`]),
/// taken from the top of the largest range that holds it below the boot
/// direct map's 4 GiB; those frames are never handed out. A machine with
/// no such range keeps the heap's static arena alone.
fn give_heap_its_share(a: &mut FrameAllocator) {
    const BOOT_DIRECT_MAP_END: u64 = 4 << 30;
    let want = super::heap::heap_bytes_for(a.total * PAGE) as u64;
    if want == 0 {
        return;
    }
    let fits = |&(start, end): &(u64, u64)| end <= BOOT_DIRECT_MAP_END && end - start >= want;
    let Some(range) = a
        .ranges
        .iter_mut()
        .filter(|r| fits(r))
        .max_by_key(|r| r.1 - r.0)
    else {
        return;
    };
    let base = range.1 - want;
    if super::heap::grow(base, want as usize) {
        range.1 = base;
        a.total -= want / PAGE;
    }
    a.ranges.retain(|&(start, end)| end > start);
}

/// One frame, or `None` when memory is exhausted. Contents are not zeroed.
pub fn alloc() -> Option<PhysFrame> {
    let Some(frame) = alloc_uncounted() else {
        return take_zeroed_frame();
    };
    FREE.fetch_sub(1, Ordering::Relaxed);
    Some(frame)
}

/// A frame out of the allocator, still counted as free.
fn alloc_uncounted() -> Option<PhysFrame> {
    let mut a = FRAMES.lock();
    let addr = match a.recycled.pop() {
        Some(f) => f,
        None => {
            let (next, end) = a.ranges.last_mut()?;
            let f = *next;
            *next += PAGE;
            if *next >= *end {
                a.ranges.pop();
            }
            f
        }
    };
    Some(PhysFrame { addr })
}

/// Returns a frame.
pub fn free(frame: PhysFrame) {
    let addr = frame.into_raw();
    let mut a = FRAMES.lock();
    // `recycled` has room for every frame (reserved in `init`).
    a.recycled.push(addr);
    FREE.fetch_add(1, Ordering::Relaxed);
}

/// (total frames, free frames); the zeroed frames CPUs keep count as free.
#[inline]
pub fn counts() -> (u64, u64) {
    (TOTAL.load(Ordering::Relaxed), FREE.load(Ordering::Relaxed))
}

/// Gives this CPU a zeroed frame for its next zero-fill, if it has none:
/// the allocator's lock only, zeroed with no lock held (a page fault's
/// entry, before it takes the kernel lock). Without free memory, nothing.
#[inline]
pub fn prepare_zeroed_frame() {
    let slot = &super::percpu::current().zeroed_frame;
    if slot.load(Ordering::Relaxed) != 0 {
        return;
    }
    if let Some(mut frame) = alloc_uncounted() {
        frame.zero();
        slot.store(frame.into_raw(), Ordering::Relaxed);
    }
}

/// This CPU's zeroed frame, if it has one (it now counts as in use).
#[inline]
fn take_zeroed_frame() -> Option<PhysFrame> {
    let addr = super::percpu::current()
        .zeroed_frame
        .swap(0, Ordering::Relaxed);
    if addr == 0 {
        return None;
    }
    FREE.fetch_sub(1, Ordering::Relaxed);
    // SAFETY: a nonzero slot holds the address of a frame that
    // `prepare_zeroed_frame` took from the allocator and gave up with
    // `into_raw`; the swap emptied the slot, so it is re-wrapped once.
    Some(unsafe { PhysFrame::from_raw(addr) })
}

/// A zeroed frame: this CPU's kept one, else a new one zeroed now.
#[inline]
pub fn alloc_zeroed() -> Option<PhysFrame> {
    take_zeroed_frame().or_else(|| {
        let mut frame = alloc()?;
        frame.zero();
        Some(frame)
    })
}

/// The frames the mapping core holds, named by physical address: one bit
/// per frame of RAM says whether this owner holds it. Every method that
/// reaches a frame's bytes checks the bit; an address it does not hold is
/// a kernel bug and stops the kernel.
#[derive(Default)]
pub struct DataFrames {
    owned: Vec<u64>,
}

impl DataFrames {
    /// An owner of no frame.
    pub const fn new() -> Self {
        DataFrames { owned: Vec::new() }
    }

    fn slot(addr: u64) -> (usize, u64) {
        let n = addr / PAGE;
        ((n / 64) as usize, 1 << (n % 64))
    }

    fn holds(&self, addr: u64) -> bool {
        let (word, bit) = Self::slot(addr);
        self.owned.get(word).is_some_and(|w| w & bit != 0)
    }

    fn check(&self, addr: u64) {
        assert!(
            self.holds(addr),
            "frame {addr:#x} is not held by the mapping core"
        );
    }

    /// A frame from the allocator, now held here; `None` without memory.
    pub fn alloc(&mut self) -> Option<u64> {
        self.hold(alloc()?)
    }

    /// A zeroed frame ([`alloc_zeroed`]), now held here; `None` without
    /// memory.
    #[inline(always)]
    pub fn alloc_zeroed(&mut self) -> Option<u64> {
        self.hold(alloc_zeroed()?)
    }

    /// Holds `frame` here (gives it back when the bitmap cannot grow).
    #[inline]
    fn hold(&mut self, frame: PhysFrame) -> Option<u64> {
        let (word, bit) = Self::slot(frame.addr());
        match self.owned.get_mut(word) {
            Some(w) => *w |= bit,
            None => return self.hold_beyond_map(frame),
        }
        Some(frame.into_raw())
    }

    /// [`Self::alloc`] of a frame past the end of the map: grows it
    /// (fallibly; without memory the frame goes back). Out of line: the
    /// map covers the highest frame held so far.
    #[cold]
    #[inline(never)]
    fn hold_beyond_map(&mut self, frame: PhysFrame) -> Option<u64> {
        let (word, bit) = Self::slot(frame.addr());
        let more = word + 1 - self.owned.len();
        if self.owned.try_reserve(more).is_err() {
            free(frame);
            return None;
        }
        self.owned.resize(word + 1, 0);
        self.owned[word] |= bit;
        Some(frame.into_raw())
    }

    /// Gives frame `addr` back to the allocator.
    pub fn free(&mut self, addr: u64) {
        self.check(addr);
        let (word, bit) = Self::slot(addr);
        self.owned[word] &= !bit;
        // SAFETY: the bit was set by `alloc`, which gave up the PhysFrame of
        // `addr` with into_raw; clearing it ends this owner's claim, so the
        // frame is re-wrapped exactly once.
        free(unsafe { PhysFrame::from_raw(addr) });
    }

    /// A frame held here, as a borrowed [`PhysFrame`] view.
    fn view(&self, addr: u64) -> core::mem::ManuallyDrop<PhysFrame> {
        self.check(addr);
        // SAFETY: this owner holds `addr` (checked); the value is never
        // dropped or freed (ManuallyDrop), and its borrows are tied to the
        // borrow of `self` by the callers.
        core::mem::ManuallyDrop::new(unsafe { PhysFrame::from_raw(addr) })
    }

    /// The bytes of frame `addr`.
    pub fn bytes(&self, addr: u64) -> &PageBytes {
        let frame = self.view(addr);
        // SAFETY: the frame is held here, and the returned borrow lives no
        // longer than the shared borrow of `self`, which keeps every
        // `bytes_mut` of this owner away meanwhile.
        unsafe { &*(frame.bytes() as *const PageBytes) }
    }

    /// The bytes of frame `addr`, writable.
    pub fn bytes_mut(&mut self, addr: u64) -> &mut PageBytes {
        let mut frame = self.view(addr);
        // SAFETY: as `bytes`, with the exclusive borrow of `self`.
        unsafe { &mut *(frame.bytes_mut() as *mut PageBytes) }
    }

    /// Fills frame `addr` with zeros.
    pub fn zero(&mut self, addr: u64) {
        self.view(addr).zero();
    }

    /// Copies frame `src` into frame `dst` (nothing to do when they are
    /// the same frame).
    pub fn copy(&mut self, src: u64, dst: u64) {
        if src == dst {
            self.check(src);
            return;
        }
        let from = self.view(src);
        let mut to = self.view(dst);
        to.bytes_mut().copy_from_slice(from.bytes());
    }
}
