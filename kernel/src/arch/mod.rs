//! Everything that touches the hardware, and so every `unsafe` block of the
//! kernel: boot, CPU tables, traps, page tables, context switches, devices.

pub mod boot;
pub mod bootinfo;
pub mod context;
pub mod cpu;
pub mod gdt;
pub mod heap;
pub mod mem;
pub mod paging;
pub mod qemu;
pub mod serial;
pub mod traps;
