//! Kernel stacks and switching between them. Each process has its own kernel
//! stack; a switch saves the callee-saved registers on the old stack, swaps the
//! stack pointer and restores the new stack's registers. A new process's stack
//! starts with a `TrapFrame` for its first entry into user mode.
//!
//! Each stack is a 32 KiB heap block (physically contiguous, as device
//! DMA from buffers on the stack needs) mapped a second time, page by page,
//! in the kernel-stack area (see `paging`) at a place fixed by its slot,
//! with 32 KiB left unmapped below it; the stack runs at that second
//! address only: a kernel stack overflow faults on that guard instead of writing over
//! other memory, and the fault handler names it ([`overflowed_slot`]). A
//! stack is painted with [`PAINT`] when made; when it is freed the deepest
//! word ever written is found, and the deepest use over all stacks is kept
//! ([`deepest_use`]).
//!
//! TLB rule for the area: a CPU touches a slot's area addresses only while
//! it runs that slot, and it reloads CR3 (dropping every area translation:
//! they are not global) before it runs a slot and when it leaves one. So an
//! unmap invalidates on its own CPU only, and a stack is made (painted, its
//! first frames written) and measured through its heap address, never the
//! area's: the CPU making a new stack in a reused slot may still hold the
//! translation of the slot's stack before, freed by another CPU meanwhile,
//! and writes through it would land in that freed block (and the new
//! stack would start from garbage).
//!
//! The switches are safe to call: a slot runs only while its stack is alive
//! (a [`KernelStack`] marks its slot live until it is dropped), only from the
//! scheduler, and a process parks only its own running slot. Each CPU has
//! its own scheduler (on its boot or start-up stack): the scheduler's saved
//! stack pointer and the slot running are per CPU (`PerCpu`); the process
//! table never gives one thread to two CPUs.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};

use super::paging::{self, KERNEL_STACK_AREA, KERNEL_STACK_AREA_SIZE, PAGE_SIZE};
use super::traps::TrapFrame;

/// Bytes of one kernel stack.
pub const KERNEL_STACK_SIZE: u64 = 32 * 1024;
/// Pages of one kernel stack.
const STACK_PAGES: usize = (KERNEL_STACK_SIZE / PAGE_SIZE) as usize;
/// Bytes left unmapped below each stack.
const GUARD_SIZE: u64 = 32 * 1024;
/// Bytes of the area each slot owns: its guard, then its stack.
const SLOT_SPAN: u64 = GUARD_SIZE + KERNEL_STACK_SIZE;
/// The word a new stack is filled with; a word that differs was written.
const PAINT: u64 = 0x6b73_7461_636b_2121;

/// Most processes alive at once (one saved stack pointer slot each).
pub const MAX_SLOTS: usize = 128;

const _: () = assert!(MAX_SLOTS as u64 * SLOT_SPAN <= KERNEL_STACK_AREA_SIZE);

/// Saved stack pointers: one per process slot (each CPU's scheduler keeps
/// its own in its `PerCpu`).
static SAVED_RSP: [AtomicU64; MAX_SLOTS] = [const { AtomicU64::new(0) }; MAX_SLOTS];
/// The top of each slot's live stack; 0 when the slot has no stack.
static STACK_TOP: [AtomicU64; MAX_SLOTS] = [const { AtomicU64::new(0) }; MAX_SLOTS];
/// A CPU's running slot while its scheduler runs.
const NO_SLOT: u64 = u64::MAX;

/// Whether some CPU runs slot `slot` now.
fn running_anywhere(slot: usize) -> bool {
    (0..super::percpu::MAX_CPUS)
        .map_while(super::percpu::cpu)
        .any(|c| c.running_slot.load(Ordering::Acquire) == slot as u64)
}

/// The deepest use (bytes below the top) seen on any freed stack.
static DEEPEST_USE: AtomicU64 = AtomicU64::new(0);

/// One process's kernel stack: a heap block mapped at its slot's place.
pub struct KernelStack {
    /// The heap block's address (direct map or image; never run on).
    memory: u64,
    /// Its physical address (the block is physically contiguous).
    phys: u64,
    /// How many of its pages are mapped in the area (the first ones).
    mapped: usize,
    slot: usize,
}

/// The layout of a stack's heap block: page aligned, so that it maps page
/// by page.
fn stack_layout() -> core::alloc::Layout {
    core::alloc::Layout::from_size_align(KERNEL_STACK_SIZE as usize, PAGE_SIZE as usize)
        .expect("the kernel stack layout")
}

/// The physical address of `virt`, an address of the kernel heap (in the
/// kernel image or the direct map, both linear).
fn heap_phys(virt: u64) -> u64 {
    if virt >= paging::KERNEL_BASE {
        paging::kernel_image_phys(virt)
    } else {
        virt - paging::DIRECT_MAP_BASE
    }
}

/// The lowest address of slot `slot`'s stack (its guard lies below).
fn stack_bottom(slot: usize) -> u64 {
    KERNEL_STACK_AREA + slot as u64 * SLOT_SPAN + GUARD_SIZE
}

/// The slot whose guard holds `address`: a kernel fault there (or with the
/// stack pointer there) is that slot's kernel stack overflowing.
pub fn overflowed_slot(address: u64) -> Option<usize> {
    let offset = address.checked_sub(KERNEL_STACK_AREA)?;
    let slot = usize::try_from(offset / SLOT_SPAN).ok()?;
    (slot < MAX_SLOTS && offset % SLOT_SPAN < GUARD_SIZE).then_some(slot)
}

/// Whether `range` lies wholly on one live (mapped) kernel stack.
pub fn live_stack_holds(range: &core::ops::Range<u64>) -> bool {
    let Some(slot) = range
        .start
        .checked_sub(KERNEL_STACK_AREA)
        .map(|offset| offset / SLOT_SPAN)
        .and_then(|slot| usize::try_from(slot).ok())
        .filter(|&slot| slot < MAX_SLOTS)
    else {
        return false;
    };
    let top = STACK_TOP[slot].load(Ordering::Relaxed);
    top != 0 && range.start >= stack_bottom(slot) && range.end <= top
}

/// The deepest use, in bytes below the top, of any kernel stack freed so
/// far (every process's stack is freed when it is reaped).
pub fn deepest_use() -> u64 {
    DEEPEST_USE.load(Ordering::Relaxed)
}

global_asm!(
    r#"
    .text
    .global context_switch
context_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    "#,
    options(att_syntax)
);

unsafe extern "C" {
    fn context_switch(save_rsp: *mut u64, load_rsp: u64);
    fn process_first_entry();
}

impl KernelStack {
    /// A stack for process `slot` whose first run enters user mode with
    /// `frame` (its selectors and flags made those of user mode). Panics if
    /// the slot already has a live stack (a kernel bug). `None` when frames
    /// for it cannot be had (nothing is kept).
    pub fn new_for_user(slot: usize, frame: &TrapFrame) -> Option<KernelStack> {
        assert_eq!(
            STACK_TOP[slot].load(Ordering::Relaxed),
            0,
            "kernel stack slot {slot} is taken"
        );
        // SAFETY: the layout is non-zero sized; null is handled below.
        let memory = unsafe { alloc::alloc::alloc(stack_layout()) };
        if memory.is_null() {
            return None;
        }
        let mut stack = KernelStack {
            memory: memory as u64,
            phys: heap_phys(memory as u64),
            mapped: 0,
            slot,
        };
        for page in 0..STACK_PAGES {
            let virt = stack_bottom(slot) + page as u64 * PAGE_SIZE;
            let phys = stack.phys + page as u64 * PAGE_SIZE;
            // Drop unmaps what was mapped and frees the block.
            assert!(
                paging::map_kernel_stack_page(virt, phys),
                "kernel stack page {virt:#x} is mapped already"
            );
            stack.mapped = page + 1;
        }
        stack.paint();
        let frame_offset = KERNEL_STACK_SIZE - core::mem::size_of::<TrapFrame>() as u64;
        // Switch frame: six callee-saved registers, then the return address.
        let switch_offset = frame_offset - 7 * 8;
        // SAFETY: both writes fall inside this stack's own heap block (its
        // heap address: see the module's TLB rule), which is 16-byte
        // aligned and large enough; nothing else refers to it yet.
        unsafe {
            let mut frame = *frame;
            frame.make_user();
            core::ptr::write((stack.memory + frame_offset) as *mut TrapFrame, frame);
            let words = (stack.memory + switch_offset) as *mut u64;
            for i in 0..6 {
                core::ptr::write(words.add(i), 0);
            }
            core::ptr::write(words.add(6), process_first_entry as *const () as u64);
        }
        SAVED_RSP[slot].store(stack_bottom(slot) + switch_offset, Ordering::Relaxed);
        STACK_TOP[slot].store(stack.top(), Ordering::Relaxed);
        Some(stack)
    }

    /// The address just above the stack (what the TSS and syscall entry load).
    pub fn top(&self) -> u64 {
        stack_bottom(self.slot) + KERNEL_STACK_SIZE
    }

    /// Fills the whole stack with [`PAINT`] (through its heap address).
    fn paint(&mut self) {
        let words = self.memory as *mut u64;
        for i in 0..(KERNEL_STACK_SIZE / 8) as usize {
            // SAFETY: the heap block is the stack's memory, 8-byte aligned,
            // and owned by this value, which nothing runs on yet.
            unsafe { core::ptr::write_volatile(words.add(i), PAINT) };
        }
    }

    /// Bytes below the top down to the deepest word ever written.
    fn used_bytes(&self) -> u64 {
        let words = self.memory as *const u64;
        let untouched = (0..(KERNEL_STACK_SIZE / 8) as usize)
            // SAFETY: as in `paint`; the stack is not running (Drop checks).
            .take_while(|&i| unsafe { core::ptr::read_volatile(words.add(i)) } == PAINT)
            .count() as u64;
        KERNEL_STACK_SIZE - untouched * 8
    }
}

impl Drop for KernelStack {
    /// Frees the stack; the slot can take a new one. Panics if the stack is
    /// the one running (a kernel bug: the CPU would run on freed memory).
    fn drop(&mut self) {
        assert!(
            !running_anywhere(self.slot),
            "dropping a running kernel stack"
        );
        if self.mapped == STACK_PAGES {
            // Fully made (painted): measure before unmapping.
            DEEPEST_USE.fetch_max(self.used_bytes(), Ordering::Relaxed);
        }
        STACK_TOP[self.slot].store(0, Ordering::Relaxed);
        for page in 0..self.mapped {
            let virt = stack_bottom(self.slot) + page as u64 * PAGE_SIZE;
            let unmapped = paging::unmap_kernel_stack_page(virt);
            debug_assert_eq!(unmapped, Some(self.phys + page as u64 * PAGE_SIZE));
        }
        // SAFETY: `memory` came from `alloc` with this layout in
        // new_for_user, is freed once, here, and its second mapping is gone.
        unsafe { alloc::alloc::dealloc(self.memory as *mut u8, stack_layout()) };
    }
}

/// From the scheduler: runs process `slot` on its kernel stack until it
/// returns to the scheduler (user-mode entries land on that stack too).
/// Does nothing for a slot without a live stack, or when not called from
/// the scheduler.
pub fn run_slot(slot: usize) {
    let Some(top) = STACK_TOP.get(slot).map(|t| t.load(Ordering::Relaxed)) else {
        return;
    };
    let cpu = super::percpu::current();
    if top == 0 || cpu.running_slot.load(Ordering::Relaxed) != NO_SLOT {
        return;
    }
    let target = SAVED_RSP[slot].load(Ordering::Acquire);
    cpu.running_slot.store(slot as u64, Ordering::Release);
    cpu.count_thread_run();
    // SAFETY: `top` is the top of the slot's live stack, which stays alive
    // while it runs (Drop refuses the running stack).
    unsafe { super::traps::set_kernel_stack(top) };
    // SAFETY: the slot's saved pointer was stored by new_for_user or by
    // return_to_scheduler on its stack, which is alive (checked above) and
    // which no other CPU runs (the process table gives a thread to one CPU
    // at a time, and only once the CPU before has left it); this CPU's
    // scheduler registers are saved first.
    unsafe { context_switch(cpu.scheduler_rsp.as_ptr(), target) };
    cpu.running_slot.store(NO_SLOT, Ordering::Release);
}

/// From process `slot`: parks it and resumes the scheduler. Does nothing
/// unless `slot` is the slot running now.
pub fn return_to_scheduler(slot: usize) {
    let cpu = super::percpu::current();
    if cpu.running_slot.load(Ordering::Relaxed) != slot as u64 {
        return;
    }
    let target = cpu.scheduler_rsp.load(Ordering::Relaxed);
    // SAFETY: this CPU's scheduler parked itself in run_slot before this
    // slot ran, so its saved pointer is a valid switch frame on its stack;
    // this code runs on the slot's own stack, where the switch frame is
    // saved.
    unsafe { context_switch(SAVED_RSP[slot].as_ptr(), target) };
}
