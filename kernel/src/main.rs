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

use arch::{frames, qemu};
use neoos_kernel_core::fs::{FileSystem, RamDisk};
use neoos_kernel_core::launch::{self, LaunchEntry};

/// The kernel proper, entered from `arch::boot` with what the boot loader's
/// `hvm_start_info` said (`None` when it was missing).
pub fn start(info: Option<arch::bootinfo::BootInfo>) -> ! {
    arch::serial::init();
    kprintln!("NeoOS booting");
    let Some(info) = info else {
        kprintln!("no PVH start info: cannot boot");
        qemu::exit(qemu::EXIT_KERNEL_FAILURE);
    };
    frames::init(&info.ram, arch::bootinfo::kernel_image_end(), info.module);
    let max_phys = info.ram.iter().map(|&(s, l)| s + l).max().unwrap_or(0);
    arch::paging::init_kernel_tables(max_phys);
    arch::smp::init_boot_cpu();
    arch::cpu::protect_kernel_from_user_pages();
    start_other_cpus(info.rsdp);
    find_io_apics(info.rsdp);
    retire_pic();
    let mut fs = initial_file_system(info.copy_module());
    if info
        .command_line
        .split_whitespace()
        .any(|w| w == "idle=poll")
    {
        arch::virtio::poll_waits();
    }
    if info.command_line.contains("disk-smoke=") {
        arch::virtio::report_disk(&info.command_line);
    } else {
        mount_home(&mut fs);
    }
    let launch = programs_to_run(&info.command_line);
    let (total, free) = frames::counts();
    kprintln!("memory: {} frames, {} free", total, free);
    let disk_at_start = fs.disk.reserved_pages() as u64;
    process::init(fs, launch);
    if let Some(seconds) = flush_age_seconds(&info.command_line) {
        process::with_kernel(|k| k.set_flush_age(seconds.saturating_mul(100)));
    }
    process::run_scheduler();
    let underflows = neoos_mm::count_underflows();
    if underflows > 0 {
        kprintln!(
            "KERNEL BUG: {} mapping-core counts would have gone below zero",
            underflows
        );
        qemu::exit(qemu::EXIT_KERNEL_FAILURE);
    }
    report_cpus();
    kprintln!(
        "kernel stacks: deepest use {} bytes of {}",
        arch::context::deepest_use(),
        arch::context::KERNEL_STACK_SIZE
    );
    let (_, free_after) = frames::counts();
    // Files the programs left on the RAM disk hold frames (one per page of
    // their reservation): those count as returned, exactly.
    let disk_after = process::with_kernel(|k| k.fs().disk.reserved_pages()) as u64;
    kprintln!(
        "RAM disk: {} frames at start, {} now",
        disk_at_start,
        disk_after
    );
    kprintln!(
        "all programs done; {} frames free or holding files ({} at start)",
        (free_after + disk_after).saturating_sub(disk_at_start),
        free
    );
    qemu::exit(qemu::EXIT_SUCCESS);
}

/// Starts the CPUs the firmware lists (each runs its own scheduler once
/// the kernel state exists) and says how many are online.
fn start_other_cpus(rsdp: Option<u64>) {
    match arch::smp::start_application_processors(rsdp) {
        Ok(started) => {
            for apic_id in &started.failed {
                kprintln!("cpu with APIC id {} did not come online", apic_id);
            }
            if !started.beyond_limit.is_empty() {
                kprintln!(
                    "{} cpus left halted (more than {})",
                    started.beyond_limit.len(),
                    arch::percpu::MAX_CPUS
                );
            }
            kprintln!(
                "cpus: {} online ({} listed, {:?}, APIC timer {} per 10 ms)",
                started.online,
                started.listed,
                started.apic_mode,
                started.timer_count_per_tick
            );
        }
        Err(e) => kprintln!(
            "cpus: {} online (no other CPU started: {:?})",
            arch::percpu::online_count(),
            e
        ),
    }
}

/// Finds the I/O APICs (the disk's interrupt comes through one) and says
/// how many there are; without one the disk driver polls.
fn find_io_apics(rsdp: Option<u64>) {
    match arch::ioapic::init(rsdp) {
        Ok(count) => kprintln!("I/O APICs: {}", count),
        Err(e) => kprintln!("I/O APICs: none usable ({:?})", e),
    }
}

/// Moves the boot CPU's timer and COM1 off the 8259 PIC and says which
/// timer the boot CPU ticks with.
fn retire_pic() {
    match arch::smp::retire_pic() {
        Ok(()) => kprintln!("boot cpu: APIC timer, COM1 through the I/O APIC, 8259 PIC masked"),
        Err(why) => kprintln!("boot cpu: PIT and COM1 through the 8259 PIC ({:?})", why),
    }
}

/// Says, for each CPU, whether it is online and how often its own APIC
/// timer fired; then how often it switched to a thread.
fn report_cpus() {
    for cpu in (0..arch::percpu::MAX_CPUS).map_while(arch::percpu::cpu) {
        kprintln!(
            "cpu {} (APIC id {}): {}, {} timer ticks",
            cpu.index(),
            cpu.apic_id(),
            if cpu.is_online() { "online" } else { "offline" },
            cpu.timer_ticks()
        );
    }
    for cpu in (0..arch::percpu::MAX_CPUS).map_while(arch::percpu::cpu) {
        kprintln!(
            "cpu {} ran threads {} times",
            cpu.index(),
            cpu.thread_runs()
        );
    }
    for cpu in (0..arch::percpu::MAX_CPUS).map_while(arch::percpu::cpu) {
        kprintln!(
            "cpu {} halted {} times waiting for the kernel lock",
            cpu.index(),
            cpu.lock_parks()
        );
    }
    let ipis = arch::smp::ipi_counts();
    kprintln!(
        "IPIs: {} TLB flush requests, {} wake-ups of idle CPUs",
        ipis.tlb_shootdown_ipis,
        ipis.wakeup_ipis
    );
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
    let disk = RamDisk::new(alloc::boxed::Box::new(memory::DiskFrames::new()));
    let mut fs = FileSystem::with_disk(disk);
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

/// Mounts the attached disk's ext2 volume at /home (without a disk, or
/// with one that holds no usable ext2, /home stays in the RAM file system).
fn mount_home(fs: &mut FileSystem) {
    let Some(disk) = arch::virtio::open_disk() else {
        return;
    };
    match fs.mount_home(alloc::boxed::Box::new(disk)) {
        Ok(()) => kprintln!("ext2 volume mounted at /home"),
        Err(e) => kprintln!("disk not mounted: {}", e),
    }
}

/// The flusher's age from `flush-age=SECONDS` on the command line (tests
/// shorten it; the default is the kernel-core flusher's).
fn flush_age_seconds(command_line: &str) -> Option<u64> {
    command_line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("flush-age="))
        .and_then(|s| s.parse().ok())
}

/// The programs named by `run=/bin/a,/bin/b:ARG` on the command line, each
/// with its argv decoded (see `neoos_kernel_core::launch`).
fn programs_to_run(command_line: &str) -> VecDeque<LaunchEntry> {
    command_line
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("run="))
        .flat_map(launch::parse_launch_list)
        .collect()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kprintln!("KERNEL PANIC: {}", info);
    qemu::exit(qemu::EXIT_KERNEL_FAILURE)
}
