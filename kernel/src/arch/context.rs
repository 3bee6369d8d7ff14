//! Kernel stacks and switching between them. Each process has its own kernel
//! stack; a switch saves the callee-saved registers on the old stack, swaps the
//! stack pointer and restores the new stack's registers. A new process's stack
//! starts with a `TrapFrame` for its first entry into user mode.
//!
//! The switches are safe to call: a slot runs only while its stack is alive
//! (a [`KernelStack`] marks its slot live until it is dropped), only from the
//! scheduler, and a process parks only its own running slot.

use alloc::boxed::Box;
use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};

use super::traps::TrapFrame;

// 64 KiB: with signal state, timers and threads merged, a process's exit
// path (its record and table nodes moved on the stack) overflowed 32 KiB
// into the heap next to the stack (seen as heap corruption at the next free).
const KERNEL_STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(16))]
struct StackMemory([u8; KERNEL_STACK_SIZE]);

/// Most processes alive at once (one saved stack pointer slot each).
pub const MAX_SLOTS: usize = 128;

/// Saved stack pointers: one per process slot, and the scheduler's own.
static SAVED_RSP: [AtomicU64; MAX_SLOTS] = [const { AtomicU64::new(0) }; MAX_SLOTS];
static SCHEDULER_RSP: AtomicU64 = AtomicU64::new(0);
/// The top of each slot's live stack; 0 when the slot has no stack.
static STACK_TOP: [AtomicU64; MAX_SLOTS] = [const { AtomicU64::new(0) }; MAX_SLOTS];
/// The slot running now, or [`NO_SLOT`] while the scheduler runs.
static RUNNING: AtomicU64 = AtomicU64::new(NO_SLOT);
const NO_SLOT: u64 = u64::MAX;

/// The memory of one process's kernel stack, holding its slot.
pub struct KernelStack {
    memory: Box<StackMemory>,
    slot: usize,
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
    /// the slot already has a live stack (a kernel bug).
    pub fn new_for_user(slot: usize, frame: &TrapFrame) -> KernelStack {
        assert_eq!(
            STACK_TOP[slot].load(Ordering::Relaxed),
            0,
            "kernel stack slot {slot} is taken"
        );
        let layout = core::alloc::Layout::new::<StackMemory>();
        // SAFETY: the layout is non-zero sized; a null result goes to
        // handle_alloc_error; all-zero bytes are a valid StackMemory.
        let memory = unsafe {
            let ptr = alloc::alloc::alloc_zeroed(layout) as *mut StackMemory;
            if ptr.is_null() {
                alloc::alloc::handle_alloc_error(layout);
            }
            Box::from_raw(ptr)
        };
        let stack = KernelStack { memory, slot };
        let frame_at = stack.top() - core::mem::size_of::<TrapFrame>() as u64;
        // Switch frame: six callee-saved registers, then the return address.
        let switch_at = frame_at - 7 * 8;
        // SAFETY: both writes fall inside this stack's own memory, which is
        // 16-byte aligned and large enough; nothing else refers to it yet.
        unsafe {
            let mut frame = *frame;
            frame.make_user();
            core::ptr::write(frame_at as *mut TrapFrame, frame);
            let words = switch_at as *mut u64;
            for i in 0..6 {
                core::ptr::write(words.add(i), 0);
            }
            core::ptr::write(words.add(6), process_first_entry as *const () as u64);
        }
        SAVED_RSP[slot].store(switch_at, Ordering::Relaxed);
        STACK_TOP[slot].store(stack.top(), Ordering::Relaxed);
        stack
    }

    /// The address just above the stack (what the TSS and syscall entry load).
    pub fn top(&self) -> u64 {
        self.memory.0.as_ptr() as u64 + KERNEL_STACK_SIZE as u64
    }
}

impl Drop for KernelStack {
    /// Frees the stack; the slot can take a new one. Panics if the stack is
    /// the one running (a kernel bug: the CPU would run on freed memory).
    fn drop(&mut self) {
        assert_ne!(
            RUNNING.load(Ordering::Relaxed),
            self.slot as u64,
            "dropping the running kernel stack"
        );
        STACK_TOP[self.slot].store(0, Ordering::Relaxed);
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
    if top == 0 || RUNNING.load(Ordering::Relaxed) != NO_SLOT {
        return;
    }
    let target = SAVED_RSP[slot].load(Ordering::Relaxed);
    RUNNING.store(slot as u64, Ordering::Relaxed);
    // SAFETY: `top` is the top of the slot's live stack, which stays alive
    // while it runs (Drop refuses the running stack).
    unsafe { super::traps::set_kernel_stack(top) };
    // SAFETY: the slot's saved pointer was stored by new_for_user or by
    // return_to_scheduler on its stack, which is alive (checked above); the
    // scheduler's registers are saved first.
    unsafe { context_switch(SCHEDULER_RSP.as_ptr(), target) };
    RUNNING.store(NO_SLOT, Ordering::Relaxed);
}

/// From process `slot`: parks it and resumes the scheduler. Does nothing
/// unless `slot` is the slot running now.
pub fn return_to_scheduler(slot: usize) {
    if RUNNING.load(Ordering::Relaxed) != slot as u64 {
        return;
    }
    let target = SCHEDULER_RSP.load(Ordering::Relaxed);
    // SAFETY: the scheduler parked itself in run_slot before this slot ran,
    // so its saved pointer is a valid switch frame on the boot stack; this
    // code runs on the slot's own stack, where the switch frame is saved.
    unsafe { context_switch(SAVED_RSP[slot].as_ptr(), target) };
}
