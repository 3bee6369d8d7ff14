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
//!
//! Each CPU also keeps, for the length of one page fault, the copy of a
//! frame that the fault's copy-on-write break is to take
//! ([`prepare_copy`]): made with no lock held, and taken under the kernel
//! lock only if no frame was given back since the source frame was known
//! to be the page's ([`free_generation`]): then the source cannot have
//! been reused meanwhile, and the copy holds only what that page held.

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
/// Frames given back so far ([`free`]): counted under the allocator's lock
/// before the frame can be handed out again.
static FREED: AtomicU64 = AtomicU64::new(0);
/// The end of usable RAM (every frame the allocator hands out lies below).
static RAM_END: AtomicU64 = AtomicU64::new(0);
/// Copies made by [`prepare_copy`] that a fault took, and those it made
/// for nothing (a frame given back meanwhile, or the fault no longer
/// copying that frame).
static COPIES_TAKEN: AtomicU64 = AtomicU64::new(0);
static COPIES_DROPPED: AtomicU64 = AtomicU64::new(0);

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
            RAM_END.fetch_max(end, Ordering::Relaxed);
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
/// Always inlined, as [`free`]: with the kept copies' paths as more callers
/// the compiler stopped inlining them into the page fault's and the
/// map/unmap pair's (13 and 22 instructions more on
/// `tools/profile/icount_probe.c`).
#[inline(always)]
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
#[inline(always)]
pub fn free(frame: PhysFrame) {
    let addr = frame.into_raw();
    let mut a = FRAMES.lock();
    // `recycled` has room for every frame (reserved in `init`).
    a.recycled.push(addr);
    // Before the lock is given back, so before the frame can be handed out
    // again and written by its next owner (see `prepare_copy`).
    FREED.fetch_add(1, Ordering::Relaxed);
    FREE.fetch_add(1, Ordering::Relaxed);
}

/// Gives back a frame that still counts as free (a CPU's kept copy).
fn give_back_uncounted(frame: PhysFrame) {
    free(frame);
    FREE.fetch_sub(1, Ordering::Relaxed);
}

/// How many frames were given back so far. A frame known to be held at a
/// reading of this count has not been reused since while it reads the same.
pub fn free_generation() -> u64 {
    FREED.load(Ordering::Acquire)
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

/// Notes, for the page fault under way on this CPU, that its copy-on-write
/// break is to copy frame `src` (`neoos_mm`'s `WaitForCopy`), with the
/// count of frames given back by now ([`free_generation`]); 0: none.
/// Called under the kernel lock, while `src` is a page of the mapping core.
pub fn note_copy_source(src: u64) {
    let cpu = super::percpu::current();
    cpu.copy_source.store(src, Ordering::Relaxed);
    cpu.copy_generation
        .store(free_generation(), Ordering::Relaxed);
}

/// Copies the frame [`note_copy_source`] noted into a frame this CPU keeps
/// for the fault: no lock is held but the allocator's, for the frame. The
/// copy is kept only if no frame was given back since the note, so the
/// source was the page's throughout. A kept copy counts as free until
/// [`take_copy_of`] takes it.
pub fn prepare_copy() {
    drop_prepared_copy();
    let cpu = super::percpu::current();
    let src = cpu.copy_source.load(Ordering::Relaxed);
    let generation = cpu.copy_generation.load(Ordering::Relaxed);
    if src == 0 || !src.is_multiple_of(PAGE) || src >= RAM_END.load(Ordering::Relaxed) {
        return;
    }
    let Some(mut frame) = alloc() else {
        return;
    };
    // Kept, it counts as free (as a kept zeroed frame does).
    FREE.fetch_add(1, Ordering::Relaxed);
    // SAFETY: `src` is page aligned and below the end of RAM (checked), so
    // its 4 KiB lie in the direct map; `frame` is ours alone.
    unsafe { copy_physical_frame(src, &mut frame) };
    // The copy's loads come before this load (x86 keeps loads in order and
    // the copy's `asm!` is a compiler barrier). A frame given back counts
    // in `FREED` before its lock section ends, so before any next owner
    // can write it: a copy that read a next owner's bytes reads a larger
    // count here.
    if free_generation() != generation {
        COPIES_DROPPED.fetch_add(1, Ordering::Relaxed);
        give_back_uncounted(frame);
        return;
    }
    cpu.copy_frame.store(frame.into_raw(), Ordering::Relaxed);
}

/// This CPU's copy of `src` ([`prepare_copy`]), if it has one and no frame
/// was given back since `src` was known to be the page's: `src` then still
/// holds that page (it now counts as in use).
fn take_copy_of(src: u64) -> Option<PhysFrame> {
    let cpu = super::percpu::current();
    if cpu.copy_frame.load(Ordering::Relaxed) == 0
        || cpu.copy_source.load(Ordering::Relaxed) != src
        || cpu.copy_generation.load(Ordering::Relaxed) != free_generation()
    {
        return None;
    }
    let addr = cpu.copy_frame.swap(0, Ordering::Relaxed);
    FREE.fetch_sub(1, Ordering::Relaxed);
    COPIES_TAKEN.fetch_add(1, Ordering::Relaxed);
    // SAFETY: a nonzero slot holds the address of a frame `prepare_copy`
    // took from the allocator and gave up with `into_raw`; the swap emptied
    // the slot, so it is re-wrapped once.
    Some(unsafe { PhysFrame::from_raw(addr) })
}

/// Gives back this CPU's copy if the fault did not take it (called at the
/// end of each attempt of a fault that waited for its copy).
pub fn drop_prepared_copy() {
    let addr = super::percpu::current()
        .copy_frame
        .swap(0, Ordering::Relaxed);
    if addr != 0 {
        COPIES_DROPPED.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as in `take_copy_of`: the slot held the frame, now empty.
        give_back_uncounted(unsafe { PhysFrame::from_raw(addr) });
    }
}

/// (copies made outside the kernel lock that faults took, copies made for
/// nothing).
pub fn copy_counts() -> (u64, u64) {
    (
        COPIES_TAKEN.load(Ordering::Relaxed),
        COPIES_DROPPED.load(Ordering::Relaxed),
    )
}

/// Copies the 4 KiB of physical frame `src` into `dst`, as the hardware
/// reads them: another CPU (a program's store, a kernel write under the
/// kernel lock) may write `src` meanwhile, so its bytes are read by the
/// copy instructions alone, never through a Rust reference.
///
/// # Safety
/// `src` must be the page-aligned address of a frame of RAM (covered by
/// the direct map).
unsafe fn copy_physical_frame(src: u64, dst: &mut PhysFrame) {
    let from = phys_to_virt(src);
    let to = dst.bytes_mut().as_mut_ptr();
    // SAFETY: `from` is the direct-map view of a whole RAM frame (the
    // caller's promise), read only; `to` is `dst`'s, borrowed exclusively;
    // 32 rounds of 128 bytes cover offsets 0..4096 of each, 16-byte
    // aligned; the registers used are declared clobbered.
    unsafe {
        core::arch::asm!(
            "2:",
            "movaps xmm0, [{s}]",
            "movaps xmm1, [{s} + 16]",
            "movaps xmm2, [{s} + 32]",
            "movaps xmm3, [{s} + 48]",
            "movaps xmm4, [{s} + 64]",
            "movaps xmm5, [{s} + 80]",
            "movaps xmm6, [{s} + 96]",
            "movaps xmm7, [{s} + 112]",
            "movaps [{d}], xmm0",
            "movaps [{d} + 16], xmm1",
            "movaps [{d} + 32], xmm2",
            "movaps [{d} + 48], xmm3",
            "movaps [{d} + 64], xmm4",
            "movaps [{d} + 80], xmm5",
            "movaps [{d} + 96], xmm6",
            "movaps [{d} + 112], xmm7",
            "add {s}, 128",
            "add {d}, 128",
            "dec {n:e}",
            "jnz 2b",
            s = inout(reg) from => _,
            d = inout(reg) to => _,
            n = inout(reg) 32u32 => _,
            out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
            out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
            options(nostack),
        );
    }
}

/// The frames the mapping core holds, named by physical address: one bit
/// per frame of RAM says whether this owner holds it. Every method that
/// reaches a frame's bytes checks the bit; an address it does not hold is
/// a kernel bug and stops the kernel. The bits are atomics for the faults
/// taken on several CPUs at once (`alloc_zeroed_shared`, `free_shared`);
/// every other method has the owner exclusively and reaches them with
/// plain loads and stores.
#[derive(Default)]
pub struct DataFrames {
    owned: Vec<AtomicU64>,
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
        self.owned
            .get(word)
            .is_some_and(|w| w.load(Ordering::Relaxed) & bit != 0)
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
            Some(w) => *w.get_mut() |= bit,
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
        self.owned.resize_with(word + 1, || AtomicU64::new(0));
        *self.owned[word].get_mut() |= bit;
        Some(frame.into_raw())
    }

    /// Gives frame `addr` back to the allocator.
    pub fn free(&mut self, addr: u64) {
        self.check(addr);
        let (word, bit) = Self::slot(addr);
        *self.owned[word].get_mut() &= !bit;
        // SAFETY: the bit was set by `alloc`, which gave up the PhysFrame of
        // `addr` with into_raw; clearing it ends this owner's claim, so the
        // frame is re-wrapped exactly once.
        free(unsafe { PhysFrame::from_raw(addr) });
    }

    /// [`Self::alloc_zeroed`] through a shared borrow (faults taken on
    /// several CPUs at once): the frame's bit set atomically. `None` also
    /// for a frame past the end of the map, which only the exclusive
    /// borrow may grow (the frame goes back).
    pub fn alloc_zeroed_shared(&self) -> Option<u64> {
        let frame = alloc_zeroed()?;
        let (word, bit) = Self::slot(frame.addr());
        let Some(w) = self.owned.get(word) else {
            free(frame);
            return None;
        };
        w.fetch_or(bit, Ordering::Relaxed);
        Some(frame.into_raw())
    }

    /// [`Self::free`] through a shared borrow: gives back frame `addr` of
    /// [`Self::alloc_zeroed_shared`] (which no one else can have reached:
    /// the fault that took it never published it).
    pub fn free_shared(&self, addr: u64) {
        self.check(addr);
        let (word, bit) = Self::slot(addr);
        self.owned[word].fetch_and(!bit, Ordering::Relaxed);
        // SAFETY: as in `free`: the bit was set when the frame was given up
        // with into_raw, and clearing it ends this owner's claim.
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

    /// A frame holding a copy of frame `src`, now held here: this CPU's
    /// copy made outside the kernel lock when it is still good
    /// ([`prepare_copy`]), else one copied now; `None` without memory.
    pub fn copy_of(&mut self, src: u64) -> Option<u64> {
        self.check(src);
        if let Some(copy) = take_copy_of(src) {
            return self.hold(copy);
        }
        let copy = self.alloc()?;
        self.copy(src, copy);
        Some(copy)
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
