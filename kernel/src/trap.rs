//! What the kernel does on each trap: exceptions, interrupts and system calls.

use crate::arch::traps::TrapFrame;
use crate::arch::{cpu, qemu};

/// Handles one entry into the kernel.
pub fn handle(frame: &mut TrapFrame) {
    if !frame.from_user() && frame.vector < 32 {
        kernel_fault(frame);
    }
    kprintln!("unexpected trap {}", frame.vector);
}

fn kernel_fault(frame: &TrapFrame) -> ! {
    kprintln!(
        "KERNEL FAULT: vector {} at rip {:#x}, cr2 {:#x}, error {:#x}",
        frame.vector,
        frame.rip,
        cpu::fault_address(),
        frame.error
    );
    qemu::exit(qemu::EXIT_KERNEL_FAILURE)
}
