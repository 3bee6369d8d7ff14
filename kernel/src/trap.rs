//! What the kernel does on each trap: a fault of the kernel itself ends the
//! machine with a report; a fault of a user program is resolved through the
//! mapping core or ends that program; interrupts drive preemption; system
//! calls go to `syscall`.

use neoos_mm::Access;
use x86_64::structures::idt::PageFaultErrorCode;

use crate::arch::traps::{self, TrapFrame, IRQ_BASE, PAGE_FAULT, SYSCALL_VECTOR};
use crate::arch::{context, cpu, qemu};
use crate::process;

const TIMER_IRQ: u64 = IRQ_BASE;

/// Handles one entry into the kernel (inlined into the entry, always:
/// every system call and fault comes through here; a plain `inline` was
/// dropped when `paging.rs` grew, +13 instructions per call and fault).
#[inline(always)]
pub fn handle(frame: &mut TrapFrame) {
    match frame.vector {
        SYSCALL_VECTOR => {
            crate::syscall::handle(frame);
            return_address_check(frame);
        }
        v if v >= IRQ_BASE => interrupt(frame),
        _ if !frame.from_user() => kernel_fault(frame),
        PAGE_FAULT => user_page_fault(frame),
        v => process::end_current_for_exception(v, frame.rip),
    }
}

/// A `syscall` in the last two bytes of the user half returns to the first
/// non-canonical address. `iretq` there faults in the kernel on real
/// hardware, so the program is ended here as if it had faulted at that
/// address itself.
fn return_address_check(frame: &TrapFrame) {
    if frame.rip >= neoos_abi::layout::USER_END {
        process::end_current_for_exception(traps::GENERAL_PROTECTION, frame.rip);
    }
}

fn interrupt(frame: &mut TrapFrame) {
    if frame.vector == u64::from(crate::arch::apic::TIMER_VECTOR) {
        // Acknowledged by the entry; only an interrupted thread is here.
        process::preempt();
        return;
    }
    traps::end_of_interrupt(frame.vector);
    if frame.vector == TIMER_IRQ {
        crate::clock::tick();
    }
    if frame.vector == TIMER_IRQ && frame.from_user() {
        process::preempt();
    }
}

#[inline]
fn user_page_fault(frame: &mut TrapFrame) {
    let address = cpu::fault_address();
    let code = PageFaultErrorCode::from_bits_truncate(frame.error);
    let access = if code.contains(PageFaultErrorCode::INSTRUCTION_FETCH) {
        Access::Exec
    } else if code.contains(PageFaultErrorCode::CAUSED_BY_WRITE) {
        Access::Write
    } else {
        Access::Read
    };
    process::resolve_fault(frame, address, access);
}

fn kernel_fault(frame: &TrapFrame) -> ! {
    let overflowed = context::overflowed_slot(cpu::fault_address())
        .or_else(|| context::overflowed_slot(frame.rsp));
    if let Some(slot) = overflowed {
        kprintln!(
            "KERNEL FAULT: kernel stack overflow (slot {}, stack pointer {:#x})",
            slot,
            frame.rsp
        );
    }
    kprintln!(
        "KERNEL FAULT: vector {} at rip {:#x}, cr2 {:#x}, error {:#x}",
        frame.vector,
        frame.rip,
        cpu::fault_address(),
        frame.error
    );
    print_backtrace(frame.rbp);
    qemu::exit(qemu::EXIT_KERNEL_FAILURE)
}

/// An NMI's report (QEMU's monitor `nmi`: the test harness's report of a
/// silent machine; the machine goes on) of this CPU (where it was interrupted, its kernel
/// backtrace) and, when the kernel lock is free, of every thread: what the
/// test harness asks of a machine that went silent. Prints only when the
/// console is free, takes no lock it would wait for, changes nothing.
#[cold]
pub fn report_state(frame: &TrapFrame) {
    let this = crate::arch::percpu::current();
    let cpu = this.index() as usize;
    let mode = if frame.from_user() { "user" } else { "kernel" };
    crate::arch::serial::write_fmt_if_free(format_args!(
        "[neoos] nmi: cpu {cpu} in {mode} mode at rip {:#x}, rsp {:#x}; idle {}, \
         timer ticks {}, thread runs {}\n",
        frame.rip,
        frame.rsp,
        this.is_idle(),
        this.timer_ticks(),
        this.thread_runs()
    ));
    if !frame.from_user() {
        let mut rbp = frame.rbp;
        for _ in 0..16 {
            let Some([next, ret]) = crate::arch::cpu::read_kernel_frame(rbp) else {
                break;
            };
            crate::arch::serial::write_fmt_if_free(format_args!(
                "[neoos] nmi: cpu {cpu}   called from {ret:#x}\n"
            ));
            rbp = next;
        }
    }
    process::report_threads_if_unlocked(cpu);
}

/// Walks the frame-pointer chain of kernel code (the kernel is built with
/// frame pointers), printing return addresses.
fn print_backtrace(mut rbp: u64) {
    kprintln!("backtrace:");
    for _ in 0..16 {
        let Some([next, ret]) = crate::arch::cpu::read_kernel_frame(rbp) else {
            break;
        };
        kprintln!("  {:#x}", ret);
        rbp = next;
    }
}
