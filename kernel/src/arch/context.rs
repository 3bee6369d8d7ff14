//! Kernel stacks and switching between them. Each process has its own kernel
//! stack; a switch saves the callee-saved registers on the old stack, swaps the
//! stack pointer and restores the new stack's registers. A new process's stack
//! starts with a `TrapFrame` for its first entry into user mode.

use alloc::boxed::Box;
use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};

use super::traps::TrapFrame;

const KERNEL_STACK_SIZE: usize = 32 * 1024;

#[repr(C, align(16))]
struct StackMemory([u8; KERNEL_STACK_SIZE]);

/// Most processes alive at once (one saved stack pointer slot each).
pub const MAX_SLOTS: usize = 128;

/// Saved stack pointers: one per process slot, and the scheduler's own.
static SAVED_RSP: [AtomicU64; MAX_SLOTS] = [const { AtomicU64::new(0) }; MAX_SLOTS];
static SCHEDULER_RSP: AtomicU64 = AtomicU64::new(0);

/// The memory of one process's kernel stack.
pub struct KernelStack {
    memory: Box<StackMemory>,
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
    /// A stack for process `slot` whose first run enters user mode with `frame`.
    pub fn new_for_user(slot: usize, frame: &TrapFrame) -> KernelStack {
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
        let stack = KernelStack { memory };
        let frame_at = stack.top() - core::mem::size_of::<TrapFrame>() as u64;
        // Switch frame: six callee-saved registers, then the return address.
        let switch_at = frame_at - 7 * 8;
        // SAFETY: both writes fall inside this stack's own memory, which is
        // 16-byte aligned and large enough; nothing else refers to it yet.
        unsafe {
            let frame = TrapFrame {
                rflags: super::traps::user_rflags(frame.rflags),
                ..*frame
            };
            core::ptr::write(frame_at as *mut TrapFrame, frame);
            let words = switch_at as *mut u64;
            for i in 0..6 {
                core::ptr::write(words.add(i), 0);
            }
            core::ptr::write(words.add(6), process_first_entry as *const () as u64);
        }
        SAVED_RSP[slot].store(switch_at, Ordering::Relaxed);
        stack
    }

    /// The address just above the stack (what the TSS and syscall entry load).
    pub fn top(&self) -> u64 {
        self.memory.0.as_ptr() as u64 + KERNEL_STACK_SIZE as u64
    }
}

/// From the scheduler: runs process `slot` until it returns to the scheduler.
/// The slot's stack must have been built by [`KernelStack::new_for_user`] and
/// still be alive.
pub fn run_slot(slot: usize) {
    let target = SAVED_RSP[slot].load(Ordering::Relaxed);
    // SAFETY: the slot's saved pointer was stored by new_for_user or by
    // return_to_scheduler on a stack that the process table keeps alive while
    // the process is runnable; the scheduler's registers are saved first.
    unsafe { context_switch(SCHEDULER_RSP.as_ptr(), target) };
}

/// From process `slot`: parks it and resumes the scheduler.
pub fn return_to_scheduler(slot: usize) {
    let target = SCHEDULER_RSP.load(Ordering::Relaxed);
    // SAFETY: the scheduler parked itself with run_slot before any process ran,
    // so its saved pointer is a valid switch frame on the boot stack.
    unsafe { context_switch(SAVED_RSP[slot].as_ptr(), target) };
}
