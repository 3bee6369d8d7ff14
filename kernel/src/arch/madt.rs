//! The processors and interrupt controllers the firmware describes: the
//! ACPI MADT ("APIC" table), found from the RSDP with the `acpi` crate and
//! read through the direct map. Owns nothing after the call: the result is
//! copied into kernel memory.

use alloc::vec::Vec;
use core::ptr::NonNull;

use acpi::madt::{Madt, MadtEntry};
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};

use super::paging::{direct_map_end, phys_to_virt};

/// A processor the firmware says can be started now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Processor {
    /// Its local APIC id (the destination of INIT and start-up IPIs).
    pub apic_id: u32,
}

/// An I/O APIC the firmware lists (programmed by [`super::ioapic`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApic {
    pub id: u8,
    pub phys: u64,
    pub first_interrupt: u32,
}

/// An interrupt source override: ISA interrupt `irq` arrives at global
/// system interrupt `gsi`, with the MPS INTI `flags` (bits 0-1 polarity,
/// bits 2-3 trigger mode; 0 in a field: as the bus conforms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceOverride {
    pub irq: u8,
    pub gsi: u32,
    pub flags: u16,
}

/// What the MADT says.
#[derive(Debug, Default)]
pub struct Machine {
    /// Every enabled processor, in table order (the boot CPU among them).
    pub processors: Vec<Processor>,
    pub io_apics: Vec<IoApic>,
    /// The ISA interrupts that do not arrive at the GSI of their number,
    /// or not with the ISA bus's edge-triggered, active-high signal.
    pub overrides: Vec<SourceOverride>,
    /// Whether the legacy 8259 PICs are there too.
    pub has_8259: bool,
}

/// Why the MADT could not be read.
#[derive(Debug)]
pub enum MadtError {
    /// The ACPI tables (RSDP, root table) are missing or malformed.
    Tables(acpi::AcpiError),
    /// There is no MADT.
    NoMadt(acpi::AcpiError),
}

/// Maps physical memory for the `acpi` crate: the direct map covers all
/// RAM and at least the first 4 GiB (where QEMU puts its tables), so
/// mapping is an address computation and unmapping is nothing.
#[derive(Clone, Copy, Debug)]
struct DirectMap;

impl AcpiHandler for DirectMap {
    unsafe fn map_physical_region<T>(&self, phys: usize, size: usize) -> PhysicalMapping<Self, T> {
        let end = (phys as u64).checked_add(size as u64);
        // A firmware table outside the direct map would be unreadable:
        // the firmware's defect, which stops the boot loudly.
        assert!(
            end.is_some_and(|e| e <= direct_map_end()),
            "ACPI table at {phys:#x} (+{size:#x}) lies outside the direct map"
        );
        let virt =
            NonNull::new(phys_to_virt(phys as u64) as *mut T).expect("direct map is not at 0");
        // SAFETY: `virt` is the direct-map view of `phys..phys + size`,
        // which is mapped (checked above) and stays so for good.
        unsafe { PhysicalMapping::new(phys, virt, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// Reads the MADT, starting from the RSDP at `rsdp` (from the boot
/// loader), or from a search of the BIOS areas when it named none.
pub fn read(rsdp: Option<u64>) -> Result<Machine, MadtError> {
    let tables = match rsdp {
        // SAFETY: the address is the RSDP the PVH boot loader reported;
        // the crate checks its signature and checksum before using it.
        Some(address) => unsafe { AcpiTables::from_rsdp(DirectMap, address as usize) },
        // SAFETY: QEMU's PC machine is a BIOS platform: the areas searched
        // (EBDA, 0xE0000..0x100000) are ROM or RAM the kernel never hands out.
        None => unsafe { AcpiTables::search_for_rsdp_bios(DirectMap) },
    }
    .map_err(MadtError::Tables)?;
    let madt = tables.find_table::<Madt>().map_err(MadtError::NoMadt)?;
    let mut machine = Machine {
        has_8259: madt.get().supports_8259(),
        ..Machine::default()
    };
    for entry in madt.get().entries() {
        match entry {
            MadtEntry::LocalApic(e) if { e.flags } & 1 != 0 => {
                machine.processors.push(Processor {
                    apic_id: u32::from(e.apic_id),
                });
            }
            MadtEntry::LocalX2Apic(e) if { e.flags } & 1 != 0 => {
                let apic_id = e.x2apic_id;
                if !machine.processors.iter().any(|p| p.apic_id == apic_id) {
                    machine.processors.push(Processor { apic_id });
                }
            }
            MadtEntry::IoApic(e) => machine.io_apics.push(IoApic {
                id: e.io_apic_id,
                phys: u64::from(e.io_apic_address),
                first_interrupt: e.global_system_interrupt_base,
            }),
            // Bus 0 is ISA, the only bus an override may name.
            MadtEntry::InterruptSourceOverride(e) if { e.bus } == 0 => {
                machine.overrides.push(SourceOverride {
                    irq: e.irq,
                    gsi: e.global_system_interrupt,
                    flags: e.flags,
                })
            }
            _ => {}
        }
    }
    Ok(machine)
}
