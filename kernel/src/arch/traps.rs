//! Entry into the kernel: the IDT and its assembly stubs, the `syscall` entry,
//! the 8259 PIC and 8254 PIT (the preemption timer), and the `TrapFrame` that
//! every entry builds. User SSE/x87 state is saved with `fxsave` on each entry
//! and restored on the way out, because the kernel's Rust code uses SSE.
//!
//! The kernel runs with interrupts disabled; user code runs with them enabled,
//! so interrupts arrive from ring 3 on the TSS stack (or from the idle loop).

use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::structures::idt::{Entry, HandlerFunc};

use super::gdt;

/// Vector number the `syscall` entry stores in its frame.
pub const SYSCALL_VECTOR: u64 = 0x100;
/// First vector of the remapped PIC.
pub const IRQ_BASE: u64 = 32;
pub const PAGE_FAULT: u64 = 14;
/// The double-fault exception (runs on its own IST stack).
const DOUBLE_FAULT: usize = 8;
/// The general-protection exception.
pub const GENERAL_PROTECTION: u64 = 13;

/// Registers of an interrupted context, as pushed by the entry stubs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl TrapFrame {
    /// A frame that enters user mode at `rip` with stack `rsp`, interrupts on.
    pub fn new_user(rip: u64, rsp: u64) -> Self {
        TrapFrame {
            rip,
            rsp,
            cs: gdt::USER_CODE as u64,
            ss: gdt::USER_DATA as u64,
            rflags: user_rflags(0),
            ..Default::default()
        }
    }

    /// Whether the interrupted code ran in ring 3.
    pub fn from_user(&self) -> bool {
        self.cs & 3 == 3
    }

    /// Makes the frame one that can only return to user mode: user
    /// selectors, and only the flags a program owns (see [`user_rflags`]).
    pub fn make_user(&mut self) {
        self.cs = gdt::USER_CODE as u64;
        self.ss = gdt::USER_DATA as u64;
        self.rflags = user_rflags(self.rflags);
    }
}

global_asm!(
    r#"
    .macro TRAP_NOERR n
    .p2align 4
trap_stub_\n:
    pushq $0
    pushq $\n
    jmp trap_common
    .endm

    .macro TRAP_ERR n
    .p2align 4
trap_stub_\n:
    pushq $\n
    jmp trap_common
    .endm

    .text
    .irp n, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
    TRAP_NOERR \n
    .endr
    .irp n, 8,10,11,12,13,14,17,21,29,30
    TRAP_ERR \n
    .endr
    .irp n, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
    TRAP_NOERR \n
    .endr

    .p2align 4
trap_common:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    /* Start from clean flags: a gate clears TF, NT and RF (and IF) but
       leaves AC, DF, ID and the arithmetic flags as the program set them;
       AC would switch SMAP off for the kernel. */
    pushq $2
    popfq
    movq %rsp, %rbx
    subq $512, %rsp
    andq $-16, %rsp
    fxsave (%rsp)
    movq %rbx, %rdi
    xorq %rbp, %rbp
    call trap_dispatch
    fxrstor (%rsp)
    movq %rbx, %rsp
    .global trap_exit_registers
trap_exit_registers:
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp
    iretq

    /* syscall: rcx = user rip, r11 = user rflags, rsp still the user's */
    .global syscall_entry
    .p2align 4
syscall_entry:
    movq %rsp, syscall_user_rsp(%rip)
    movq kernel_stack_top(%rip), %rsp
    pushq ${user_ss}
    pushq syscall_user_rsp(%rip)
    pushq %r11
    pushq ${user_cs}
    pushq %rcx
    pushq $0
    pushq ${syscall_vector}
    jmp trap_common

    /* First entry of a new process: fresh FPU state, then its frame. */
    .global process_first_entry
process_first_entry:
    fxrstor default_fpu_state(%rip)
    jmp trap_exit_registers

    .section .rodata.trap_stub_table, "a"
    .p2align 3
    .global trap_stub_table
trap_stub_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
    .quad trap_stub_\n
    .endr

    .section .bss.syscall_scratch, "aw", @nobits
    .p2align 3
    .global syscall_user_rsp
syscall_user_rsp: .skip 8
    .global kernel_stack_top
kernel_stack_top: .skip 8
    "#,
    user_ss = const gdt::USER_DATA as u64,
    user_cs = const gdt::USER_CODE as u64,
    syscall_vector = const SYSCALL_VECTOR,
    options(att_syntax)
);

/// The x87/SSE state a new process starts with: control word 0x37f, MXCSR 0x1f80.
#[repr(C, align(16))]
struct FpuState([u8; 512]);

#[unsafe(no_mangle)]
static default_fpu_state: FpuState = {
    let mut s = [0u8; 512];
    s[0] = 0x7f;
    s[1] = 0x03;
    s[24] = 0x80;
    s[25] = 0x1f;
    FpuState(s)
};

unsafe extern "C" {
    static trap_stub_table: [u64; 48];
    static mut kernel_stack_top: u64;
    fn syscall_entry();
}

/// The IDT: gates built with the `x86_64` crate's entry type, pointing at
/// the assembly stubs (its handler-function tables need the nightly
/// `x86-interrupt` ABI).
#[repr(C, align(16))]
struct Idt([Entry<HandlerFunc>; 256]);

static mut IDT: Idt = Idt([Entry::missing(); 256]);
static LOADED: AtomicBool = AtomicBool::new(false);

/// Builds and loads the IDT, programs the PIC and PIT, and sets up `syscall`
/// (once; later calls do nothing).
pub fn init() {
    if LOADED.swap(true, Ordering::Relaxed) {
        return;
    }
    // SAFETY: runs once (LOADED), at boot with interrupts off, before any
    // user code: nothing else refers to the IDT static while it is filled.
    let idt = unsafe { &mut *core::ptr::addr_of_mut!(IDT) };
    // SAFETY: the stub table is defined in the assembly above and never written.
    let stubs = unsafe { &*core::ptr::addr_of!(trap_stub_table) };
    for (vector, &stub) in stubs.iter().enumerate() {
        // SAFETY: each stub is an interrupt entry of ours (trap_common
        // saves everything and ends with iretq), for exactly this vector.
        let options = unsafe { idt.0[vector].set_handler_addr(x86_64::VirtAddr::new(stub)) };
        if vector == DOUBLE_FAULT {
            // SAFETY: the double-fault IST slot holds a stack used by
            // nothing else (set up by gdt::init, which runs first).
            unsafe { options.set_stack_index(gdt::DOUBLE_FAULT_IST) };
        }
    }
    let pointer = x86_64::structures::DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: x86_64::VirtAddr::new(idt.0.as_ptr() as u64),
    };
    // SAFETY: the IDT is a static (lives forever) of valid gates.
    unsafe { x86_64::instructions::tables::lidt(&pointer) };
    init_pic();
    init_pit(100);
    init_syscall();
}

fn outb(port: u16, value: u8) {
    let mut p = x86_64::instructions::port::Port::<u8>::new(port);
    // SAFETY: only called for the PIC and PIT command/data ports.
    unsafe { p.write(value) };
}

fn init_pic() {
    outb(0x20, 0x11);
    outb(0xA0, 0x11);
    outb(0x21, IRQ_BASE as u8);
    outb(0xA1, IRQ_BASE as u8 + 8);
    outb(0x21, 4);
    outb(0xA1, 2);
    outb(0x21, 1);
    outb(0xA1, 1);
    // Timer (IRQ0) and COM1 (IRQ4) only.
    outb(0x21, !((1 << 0) | (1 << 4)));
    outb(0xA1, 0xff);
}

fn init_pit(hz: u32) {
    let divisor = (1_193_182 / hz) as u16;
    outb(0x43, 0x34);
    outb(0x40, divisor as u8);
    outb(0x40, (divisor >> 8) as u8);
}

/// Acknowledges an interrupt from the PIC.
pub fn end_of_interrupt(vector: u64) {
    if vector >= IRQ_BASE + 8 {
        outb(0xA0, 0x20);
    }
    outb(0x20, 0x20);
}

fn init_syscall() {
    use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
    use x86_64::registers::rflags::RFlags;
    // SAFETY: enabling syscall is part of the documented boot state; the entry
    // point is the assembly above, which switches to the kernel stack first.
    unsafe {
        Efer::update(|f| *f |= EferFlags::SYSTEM_CALL_EXTENSIONS);
    }
    LStar::write(x86_64::VirtAddr::new(syscall_entry as *const () as u64));
    // Every flag off in the kernel: above all NT (an `iretq` with NT set
    // faults), AC (switches SMAP off), TF, DF and IF.
    SFMask::write(RFlags::all());
    Star::write(
        gdt::selector(gdt::USER_CODE),
        gdt::selector(gdt::USER_DATA),
        gdt::selector(gdt::KERNEL_CODE),
        gdt::selector(gdt::KERNEL_DATA),
    )
    .expect("GDT order fits syscall/sysret");
}

/// Sets the kernel stack used by the next entry from user mode.
///
/// # Safety
/// `top` must be the top of a kernel stack that stays alive, and used by
/// nothing else, while user code can enter the kernel on it.
pub(super) unsafe fn set_kernel_stack(top: u64) {
    // SAFETY: the caller's guarantee.
    unsafe { gdt::set_kernel_stack(top) };
    // SAFETY: single CPU, interrupts off in kernel mode: the syscall entry cannot
    // read this while it is written.
    unsafe { *core::ptr::addr_of_mut!(kernel_stack_top) = top };
}

/// Bytes of an `fxsave` area.
pub const FPU_AREA_SIZE: usize = 512;

/// The user x87/SSE state `trap_common` saved for `frame` (restored with
/// `fxrstor` when the trap returns): changing it changes the state the
/// program resumes with. `frame` must be the frame `trap_common` built and
/// handed to [`trap_dispatch`] (it is: only that function makes a
/// `&mut TrapFrame` of a live entry, and copies are never passed here).
pub fn saved_fpu_state(frame: &mut TrapFrame) -> &mut [u8; FPU_AREA_SIZE] {
    let area = ((frame as *mut TrapFrame as usize) - FPU_AREA_SIZE) & !15;
    // SAFETY: trap_common moved rsp to (frame - 512) & -16 and saved the
    // user state there with fxsave before calling trap_dispatch; the area
    // lies on the same kernel stack below the frame, is 16-byte aligned,
    // and nothing else refers to it until fxrstor reads it after
    // trap_dispatch returns. The borrow is tied to the `&mut` frame, so
    // it cannot outlive the trap.
    unsafe { &mut *(area as *mut [u8; FPU_AREA_SIZE]) }
}

/// The x87/SSE state a program starts with (and a signal handler runs with).
pub fn initial_fpu_state() -> &'static [u8; FPU_AREA_SIZE] {
    &default_fpu_state.0
}

/// Called by `trap_common` with the frame it built.
#[unsafe(no_mangle)]
extern "C" fn trap_dispatch(frame: *mut TrapFrame) {
    // SAFETY: trap_common passes a pointer to the frame it just pushed on this
    // stack; it stays valid and unaliased until this function returns.
    let frame = unsafe { &mut *frame };
    if frame.from_user() {
        crate::trap::handle(frame);
        crate::signal::deliver_pending(frame);
        // Whatever the handler wrote, iretq goes back to user mode with
        // only the flags a program owns.
        frame.make_user();
    } else {
        // A trap of the kernel itself resumes exactly where it was.
        let interrupted = *frame;
        crate::trap::handle(frame);
        *frame = interrupted;
    }
}

/// The flags a program may own: arithmetic flags, TF, DF, NT, AC and ID.
/// IOPL, RF, the virtual-8086 bits and the reserved bits never go back to
/// user mode; IF is always on there.
pub fn user_rflags(flags: u64) -> u64 {
    use x86_64::registers::rflags::RFlags;
    let owned = RFlags::CARRY_FLAG
        | RFlags::PARITY_FLAG
        | RFlags::AUXILIARY_CARRY_FLAG
        | RFlags::ZERO_FLAG
        | RFlags::SIGN_FLAG
        | RFlags::TRAP_FLAG
        | RFlags::DIRECTION_FLAG
        | RFlags::OVERFLOW_FLAG
        | RFlags::NESTED_TASK
        | RFlags::ALIGNMENT_CHECK
        | RFlags::ID;
    const RESERVED_ONE: u64 = 1 << 1;
    (flags & owned.bits()) | RFlags::INTERRUPT_FLAG.bits() | RESERVED_ONE
}
