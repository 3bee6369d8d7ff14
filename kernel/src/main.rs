//! The NeoOS kernel: boots, sets up memory and the CPU, loads the initial
//! filesystem and runs the programs named on the command line in ring 3.
#![no_std]
#![no_main]

extern crate alloc;

pub mod arch;
#[macro_use]
mod log;
mod clock;
mod frames;
mod memory;
mod process;
mod syscall;
mod trap;

use alloc::collections::VecDeque;
use alloc::string::String;

use arch::qemu;
use neoos_kernel_core::fs::FileSystem;

/// The kernel proper, entered from `arch::boot` with the physical address of
/// `hvm_start_info`.
pub fn start(start_info: u64) -> ! {
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
    arch::cpu::protect_kernel_from_user_pages();
    let fs = initial_file_system(info.module);
    let launch = programs_to_run(&info.command_line);
    let (total, free) = frames::counts();
    kprintln!("memory: {} frames, {} free", total, free);
    process::init(fs, launch);
    process::run_scheduler();
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
fn initial_file_system(module: Option<(u64, u64)>) -> FileSystem {
    let mut fs = FileSystem::new();
    let unpacked = match module {
        Some((start, len)) => fs.unpack_cpio(&arch::bootinfo::copy_physical(start, len)),
        None if EMBEDDED_INITFS.is_empty() => Err("none built in and no boot module"),
        None => fs.unpack_cpio(EMBEDDED_INITFS),
    };
    match unpacked {
        Ok(n) => kprintln!("initial file system: {} entries", n),
        Err(e) => kprintln!("initial file system unreadable: {}", e),
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
