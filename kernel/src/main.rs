//! The NeoOS kernel: boots, sets up memory and the CPU, loads the initial
//! filesystem and runs the programs named on the command line in ring 3.
#![no_std]
#![no_main]

extern crate alloc;

pub mod arch;
mod frames;
#[macro_use]
mod log;
mod trap;

use arch::qemu;

/// The Rust entry, called by the PVH boot code with the physical address of
/// `hvm_start_info`.
#[unsafe(no_mangle)]
pub extern "C" fn kernel_main(start_info: u64) -> ! {
    arch::serial::init();
    kprintln!("NeoOS booting");
    let Some(info) = arch::bootinfo::read(start_info) else {
        kprintln!("no PVH start info: cannot boot");
        qemu::exit(qemu::EXIT_KERNEL_FAILURE);
    };
    frames::init(&info.ram, arch::bootinfo::kernel_image_end(), info.module);
    let max_phys = info.ram.iter().map(|&(s, l)| s + l).max().unwrap_or(0);
    arch::paging::init_kernel_tables(max_phys, &mut frames::alloc);
    arch::gdt::init();
    arch::traps::init();
    let (total, free) = frames::counts();
    kprintln!("memory: {} frames, {} free; command line '{}'", total, free, info.command_line);
    qemu::exit(qemu::EXIT_SUCCESS);
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kprintln!("KERNEL PANIC: {}", info);
    qemu::exit(qemu::EXIT_KERNEL_FAILURE)
}
