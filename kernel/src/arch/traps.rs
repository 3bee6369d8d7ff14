//! Entry into the kernel: the IDT and its assembly stubs, the `syscall` entry,
//! the 8259 PIC (retired once the I/O APIC takes COM1 and the boot CPU's
//! APIC timer ticks: [`retire_pic`]) and the 8254 PIT (the boot CPU's timer
//! until then; always the reference that [`wait_micros`] polls), and the `TrapFrame` that
//! every entry builds. User SSE/x87 state is saved with `fxsave` on each entry
//! and restored on the way out, because the kernel's Rust code uses SSE.
//!
//! The kernel runs with interrupts disabled; user code runs with them enabled,
//! so interrupts arrive from ring 3 on the TSS stack (or from the idle loop).
//!
//! GS: in the kernel the GS base is the CPU's [`super::percpu`] structure.
//! Every entry from user mode swaps it in (`swapgs`) and every exit to user
//! mode swaps the program's back; entries from kernel mode leave it. The
//! `syscall` entry finds the kernel stack through it.

use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::structures::idt::{Entry, HandlerFunc};

use super::gdt;

/// Vector number the `syscall` entry stores in its frame.
pub const SYSCALL_VECTOR: u64 = 0x100;
/// First vector of the remapped PIC; a legacy IRQ routed through the I/O
/// APIC keeps the same vector (COM1: `IRQ_BASE + 4`).
pub const IRQ_BASE: u64 = 32;
/// COM1's legacy IRQ.
pub const COM1_IRQ: u8 = 4;
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
    .irp n, 0,1,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
    TRAP_NOERR \n
    .endr
    .irp n, 8,10,11,12,13,14,17,21,29,30
    TRAP_ERR \n
    .endr
    .irp n, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,238,239,255
    TRAP_NOERR \n
    .endr
    TRAP_NOERR {disk_vector}

    /* Saves the interrupted registers above the frame the stub pushed
       (GS already the kernel's), then calls \handler with the frame. */
    .macro SAVE_AND_CALL handler
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
    call \handler
    .endm

    /* The NMI (QEMU's monitor `nmi`: a state report) has an entry of its
       own, so that no other trap pays for telling it apart. */
    .p2align 4
trap_stub_2:
    pushq $0
    pushq $2
    testb $3, 24(%rsp)
    jz 1f
    swapgs
1:
    SAVE_AND_CALL nmi_dispatch
    jmp trap_restore

    .p2align 4
trap_common:
    /* From user mode (the saved CS at 24(%rsp) has RPL 3): the kernel's GS. */
    testb $3, 24(%rsp)
    jz trap_common_kernel_gs
    swapgs
trap_common_kernel_gs:
    SAVE_AND_CALL trap_dispatch
trap_restore:
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
    /* Back to user mode (the CS at 8(%rsp) has RPL 3): the program's GS. */
    testb $3, 8(%rsp)
    jz 1f
    swapgs
1:
    iretq

    /* syscall: rcx = user rip, r11 = user rflags, rsp still the user's */
    .global syscall_entry
    .p2align 4
syscall_entry:
    swapgs
    movq %rsp, %gs:{user_rsp_scratch}
    movq %gs:{kernel_stack_top}, %rsp
    pushq ${user_ss}
    pushq %gs:{user_rsp_scratch}
    pushq %r11
    pushq ${user_cs}
    pushq %rcx
    pushq $0
    pushq ${syscall_vector}
    jmp trap_common_kernel_gs

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
    .global trap_stub_spurious
trap_stub_spurious:
    .quad trap_stub_255
    .global trap_stub_apic_timer
trap_stub_apic_timer:
    .quad trap_stub_239
    .global trap_stub_disk
trap_stub_disk:
    .quad trap_stub_{disk_vector}
    .global trap_stub_flush
trap_stub_flush:
    .quad trap_stub_238
    "#,
    disk_vector = const super::ioapic::DISK_VECTOR,
    user_ss = const gdt::USER_DATA as u64,
    user_cs = const gdt::USER_CODE as u64,
    syscall_vector = const SYSCALL_VECTOR,
    user_rsp_scratch = const super::percpu::USER_RSP_SCRATCH_OFFSET,
    kernel_stack_top = const super::percpu::KERNEL_STACK_TOP_OFFSET,
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
    static trap_stub_spurious: u64;
    static trap_stub_apic_timer: u64;
    static trap_stub_disk: u64;
    static trap_stub_flush: u64;
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
/// on the boot CPU (once; later calls do nothing).
pub(super) fn init_boot_cpu() {
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
    // SAFETY: these stubs are defined in the assembly above and never written.
    let (spurious, timer, disk, flush) = unsafe {
        (
            *core::ptr::addr_of!(trap_stub_spurious),
            *core::ptr::addr_of!(trap_stub_apic_timer),
            *core::ptr::addr_of!(trap_stub_disk),
            *core::ptr::addr_of!(trap_stub_flush),
        )
    };
    // SAFETY: as for the stubs above; trap_dispatch handles these vectors
    // itself.
    unsafe {
        idt.0[usize::from(super::apic::SPURIOUS_VECTOR)]
            .set_handler_addr(x86_64::VirtAddr::new(spurious));
        idt.0[usize::from(super::apic::TIMER_VECTOR)]
            .set_handler_addr(x86_64::VirtAddr::new(timer));
        idt.0[usize::from(super::ioapic::DISK_VECTOR)]
            .set_handler_addr(x86_64::VirtAddr::new(disk));
        idt.0[usize::from(super::apic::FLUSH_VECTOR)]
            .set_handler_addr(x86_64::VirtAddr::new(flush));
    }
    load_idt();
    init_pic();
    init_pit(PIT_HZ);
    init_syscall();
}

/// Loads the IDT (built by `init_boot_cpu`) and sets up `syscall` on an
/// application processor.
pub(super) fn init_application_processor() {
    load_idt();
    init_syscall();
}

/// Loads the shared IDT on this CPU.
fn load_idt() {
    // SAFETY: the IDT is filled once by init_boot_cpu (which runs before
    // any other CPU starts) and only read afterwards.
    let idt = unsafe { &*core::ptr::addr_of!(IDT) };
    let pointer = x86_64::structures::DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: x86_64::VirtAddr::new(idt.0.as_ptr() as u64),
    };
    // SAFETY: the IDT is a static (lives forever) of valid gates.
    unsafe { x86_64::instructions::tables::lidt(&pointer) };
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

/// The PIT's input clock, in Hz.
const PIT_CLOCK_HZ: u64 = 1_193_182;
/// The preemption timer's rate.
const PIT_HZ: u64 = 100;
/// What channel 0 counts down from (it then reloads).
const PIT_DIVISOR: u64 = PIT_CLOCK_HZ / PIT_HZ;

fn init_pit(hz: u64) {
    let divisor = (PIT_CLOCK_HZ / hz) as u16;
    outb(0x43, 0x34);
    outb(0x40, divisor as u8);
    outb(0x40, (divisor >> 8) as u8);
}

/// PIT channel 0's current count (latched, then read low byte, high byte).
fn pit_count() -> u64 {
    outb(0x43, 0x00);
    let mut data = x86_64::instructions::port::Port::<u8>::new(0x40);
    // SAFETY: reading the latched count of channel 0 only consumes the latch.
    let (low, high) = unsafe { (data.read(), data.read()) };
    u64::from(low) | (u64::from(high) << 8)
}

/// Waits at least `micros` microseconds by watching PIT channel 0 count
/// down (works with interrupts off; for the CPU start-up protocol's delays).
/// Only the boot CPU may call it (the latch command is not shared safely).
pub(super) fn wait_micros(micros: u64) {
    wait_micros_until(micros, || false);
}

/// As [`wait_micros`], but stops early, returning true, once `done` says so.
pub(super) fn wait_micros_until(micros: u64, done: impl Fn() -> bool) -> bool {
    pit_wait(micros, &done).0
}

/// As [`wait_micros`]; returns how many PIT input clock ticks (at
/// [`PIT_CLOCK_HZ`]) it saw pass, which is fewer than really passed when
/// the CPU was away for more than one PIT period (10 ms) between two looks.
pub(super) fn wait_micros_counted(micros: u64) -> (u64, u64) {
    (pit_wait(micros, &|| false).1, PIT_CLOCK_HZ)
}

/// Waits `micros` or until `done`; returns whether `done` said so and the
/// PIT ticks seen.
fn pit_wait(micros: u64, done: &dyn Fn() -> bool) -> (bool, u64) {
    let needed = micros * PIT_CLOCK_HZ / 1_000_000 + 1;
    let mut last = pit_count();
    let mut elapsed = 0;
    while elapsed < needed {
        if done() {
            return (true, elapsed);
        }
        core::hint::spin_loop();
        let now = pit_count();
        // Counting down; below `last` after a reload from PIT_DIVISOR.
        elapsed += if now <= last {
            last - now
        } else {
            last + PIT_DIVISOR.saturating_sub(now)
        };
        last = now;
    }
    (done(), elapsed)
}

/// Whether the 8259 PIC still delivers the legacy interrupts.
static PIC_ON: AtomicBool = AtomicBool::new(true);

/// Masks every input of the 8259 PIC: from now on the legacy interrupts
/// the kernel uses come through the I/O APIC, and [`end_of_interrupt`]
/// acknowledges them at the local APIC. The PIT keeps counting (for
/// [`wait_micros`]); its interrupt goes nowhere.
pub(super) fn retire_pic() {
    outb(0x21, 0xff);
    outb(0xA1, 0xff);
    PIC_ON.store(false, Ordering::Relaxed);
}

/// Whether the 8259 PIC (and so the PIT's interrupt) is still in use.
pub fn pic_on() -> bool {
    PIC_ON.load(Ordering::Relaxed)
}

/// Acknowledges a legacy interrupt: at the PIC while it is on, else at
/// the local APIC (the I/O APIC delivered it).
pub fn end_of_interrupt(vector: u64) {
    if !pic_on() {
        super::apic::end_of_interrupt();
        return;
    }
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
    super::percpu::current()
        .kernel_stack_top
        .store(top, Ordering::Relaxed);
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

/// Called by the NMI's entry with the frame it built: the state report,
/// then back to exactly where the CPU was.
#[unsafe(no_mangle)]
extern "C" fn nmi_dispatch(frame: *mut TrapFrame) {
    // SAFETY: as for trap_dispatch: the entry's frame, on this stack.
    let frame = unsafe { &*frame };
    crate::trap::report_state(frame);
}

/// Called by `trap_common` with the frame it built.
#[unsafe(no_mangle)]
extern "C" fn trap_dispatch(frame: *mut TrapFrame) {
    // SAFETY: trap_common passes a pointer to the frame it just pushed on this
    // stack; it stays valid and unaliased until this function returns.
    let frame = unsafe { &mut *frame };
    if frame.vector == u64::from(super::apic::SPURIOUS_VECTOR) {
        // Spurious APIC interrupts are not acknowledged.
        return;
    }
    let kernel_ipi = frame.vector == u64::from(super::apic::FLUSH_VECTOR);
    if kernel_ipi {
        // Another CPU asked for a TLB flush (it waits for it), woke this
        // one, or asks its thread to leave (below, from user mode).
        super::smp::serve_flush_request();
        super::apic::end_of_interrupt();
        if !frame.from_user() {
            return;
        }
    }
    if frame.vector == u64::from(super::ioapic::DISK_VECTOR) {
        // The disk's completion interrupt (through the I/O APIC): the
        // driver acknowledges the device and the local APIC; from user
        // mode too, it changes nothing of the program.
        super::virtio::handle_interrupt();
        if frame.from_user() {
            // A thread waiting for the disk may run now (it may be this
            // CPU's turn for it): as a timer tick's preemption.
            crate::process::disk_interrupt();
            crate::signal::deliver_pending(frame);
            frame.make_user();
        }
        return;
    }
    if frame.vector == u64::from(super::apic::TIMER_VECTOR) {
        // A CPU's own timer: counted on that CPU (the boot CPU's also
        // advances the clock); from user mode it preempts the thread
        // (`trap::handle`).
        let cpu = super::percpu::current();
        cpu.count_timer_tick();
        if cpu.index() == 0 {
            crate::clock::tick();
        }
        super::apic::end_of_interrupt();
        if !frame.from_user() {
            return;
        }
    }
    if frame.from_user() {
        if !kernel_ipi {
            crate::trap::handle(frame);
        }
        crate::process::leave_if_held();
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
