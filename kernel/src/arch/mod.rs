//! Everything that touches the hardware, and so every `unsafe` block of the
//! kernel (the crate root denies `unsafe` everywhere else): boot, CPU
//! tables, traps, physical frames, page tables, context switches, devices,
//! the local APICs and the start of the other CPUs.
//! Its public safe functions have no preconditions: what they need is
//! checked, or carried by owned values (frames, page tables, stacks).

pub mod apic;
pub mod boot;
pub mod bootinfo;
pub mod context;
pub mod cpu;
pub mod frames;
pub mod gdt;
pub mod heap;
pub mod ioapic;
pub mod madt;
pub mod mem;
pub mod paging;
pub mod pci;
pub mod percpu;
pub mod qemu;
pub mod serial;
pub mod smp;
pub mod traps;
pub mod virtio;
