//! The NeoOS kernel: boots, sets up memory and the CPU, loads the initial
//! filesystem and runs the programs named on the command line in ring 3.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

#[allow(unsafe_code)]
pub mod arch;
#[macro_use]
mod log;
mod clock;
mod memory;
mod process;
mod signal;
mod syscall;
mod trap;

use alloc::collections::VecDeque;
use alloc::string::String;

use arch::{frames, qemu};
use neoos_kernel_core::fs::FileSystem;

/// The kernel proper, entered from `arch::boot` with what the boot loader's
/// `hvm_start_info` said (`None` when it was missing).
pub fn start(info: Option<arch::bootinfo::BootInfo>) -> ! {
    arch::serial::init();
    kprintln!("NeoOS booting");
    let Some(mut info) = info else {
        kprintln!("no PVH start info: cannot boot");
        qemu::exit(qemu::EXIT_KERNEL_FAILURE);
    };
    frames::init(&info.ram, arch::bootinfo::kernel_image_end(), info.module);
    let max_phys = info.ram.iter().map(|&(s, l)| s + l).max().unwrap_or(0);
    arch::paging::init_kernel_tables(max_phys);
    arch::gdt::init();
    arch::traps::init();
    arch::cpu::protect_kernel_from_user_pages();
    arch::virtio::report_disk(&info.command_line);
    let fs = initial_file_system(info.module_bytes.take());
    let launch = programs_to_run(&info.command_line);
    let (total, free) = frames::counts();
    kprintln!("memory: {} frames, {} free", total, free);
    process::init(fs, launch);
    process::run_scheduler();
    let underflows = neoos_mm::count_underflows();
    if underflows > 0 {
        kprintln!(
            "KERNEL BUG: {} mapping-core counts would have gone below zero",
            underflows
        );
        qemu::exit(qemu::EXIT_KERNEL_FAILURE);
    }
    let (_, free_after) = frames::counts();
    kprintln!(
        "all programs done; {} frames free ({} at start)",
        free_after,
        free
    );
    qemu::exit(qemu::EXIT_SUCCESS);
}

/// The initial file system image built into the kernel (empty when the
/// kernel was built without `NEOOS_INITFS`).
#[cfg(neoos_embedded_initfs)]
static EMBEDDED_INITFS: &[u8] = include_bytes!(env!("NEOOS_INITFS"));
#[cfg(not(neoos_embedded_initfs))]
static EMBEDDED_INITFS: &[u8] = &[];

/// The file system filled from the boot module when the boot loader gave
/// one (a replacement image without a rebuild), else from the embedded image.
fn initial_file_system(module: Option<alloc::vec::Vec<u8>>) -> FileSystem {
    let mut fs = FileSystem::new();
    let unpacked = match module {
        Some(image) => fs.unpack_cpio(&image),
        None => fs.unpack_cpio(EMBEDDED_INITFS),
    };
    match unpacked {
        Ok(n) => kprintln!("initial file system: {} entries", n),
        Err(e) => kprintln!("initial file system bad: {}", e),
    }
    fs
}

/// The programs named by `run=/bin/a,/bin/b` on the command line.
fn programs_to_run(command_line: &str) -> VecDeque<String> {
    command_line
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("run="))
        .flat_map(|list| list.split(','))
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kprintln!("KERNEL PANIC: {}", info);
    qemu::exit(qemu::EXIT_KERNEL_FAILURE)
}
