//! The I/O APICs: where device interrupts (global system interrupts, GSIs)
//! become vectors on a CPU. Owns the chips the MADT lists (their registers,
//! reached through the direct map) and the interrupt source overrides, and
//! programs one redirection entry per device interrupt the kernel uses.
//! Every entry starts masked; the disk's and COM1's are unmasked when their
//! drivers route them (the 8259 PIC is retired then: `traps::retire_pic`).
//! End of interrupt goes to the local APIC ([`super::apic::end_of_interrupt`]),
//! which passes it on to the I/O APIC for level-triggered entries.

use alloc::vec::Vec;
use spin::Mutex;

use super::madt::{self, SourceOverride};
use super::paging::{direct_map_end, phys_to_virt};

/// The vector of the virtio block device's interrupt.
pub const DISK_VECTOR: u8 = 0x50;

/// Offsets of the index and data registers in a chip's window.
const REG_SELECT: u64 = 0x00;
const REG_WINDOW: u64 = 0x10;
/// Indirect registers: version (bits 16-23: the last entry), then two
/// 32-bit halves per redirection entry.
const REG_VERSION: u32 = 0x01;
const REG_REDIRECTION: u32 = 0x10;

const ENTRY_MASKED: u64 = 1 << 16;
const ENTRY_LEVEL: u64 = 1 << 15;
const ENTRY_ACTIVE_LOW: u64 = 1 << 13;
const ENTRY_DESTINATION_SHIFT: u64 = 56;

/// How an interrupt line signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Edge,
    Level,
}

/// Which level of the line means "interrupt".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Polarity {
    High,
    Low,
}

/// Where a device's interrupt line arrives, and how it signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub gsi: u32,
    pub trigger: Trigger,
    pub polarity: Polarity,
}

/// Why an interrupt could not be routed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoApicError {
    /// [`init`] found no I/O APIC (or was not run).
    NoIoApic,
    /// No I/O APIC has an input for this GSI.
    NoInput(u32),
    /// The local APIC is off, or the CPU's id does not fit an entry's
    /// 8-bit physical destination.
    NoDestination,
}

/// One I/O APIC: its register window and the GSIs of its inputs.
struct Chip {
    /// Virtual address of the register window (direct map).
    window: u64,
    first_gsi: u32,
    inputs: u32,
}

impl Chip {
    fn read(&self, reg: u32) -> u32 {
        // SAFETY: `window` is the direct-map view of an I/O APIC the MADT
        // lists (below 4 GiB, so mapped); selecting a register and reading
        // the window has no other effect. The caller holds `CONTROLLERS`,
        // so no other select/access pair interleaves.
        unsafe {
            core::ptr::write_volatile((self.window + REG_SELECT) as *mut u32, reg);
            core::ptr::read_volatile((self.window + REG_WINDOW) as *const u32)
        }
    }

    fn write(&self, reg: u32, value: u32) {
        // SAFETY: as in `read`; the registers written are redirection
        // entries of inputs this module owns.
        unsafe {
            core::ptr::write_volatile((self.window + REG_SELECT) as *mut u32, reg);
            core::ptr::write_volatile((self.window + REG_WINDOW) as *mut u32, value);
        }
    }

    fn holds(&self, gsi: u32) -> bool {
        gsi.checked_sub(self.first_gsi)
            .is_some_and(|input| input < self.inputs)
    }

    fn read_entry(&self, input: u32) -> u64 {
        let reg = REG_REDIRECTION + 2 * input;
        u64::from(self.read(reg)) | (u64::from(self.read(reg + 1)) << 32)
    }

    /// Writes entry `input`, masked while the halves disagree.
    fn write_entry(&self, input: u32, entry: u64) {
        let reg = REG_REDIRECTION + 2 * input;
        self.write(reg, (entry as u32) | ENTRY_MASKED as u32);
        self.write(reg + 1, (entry >> 32) as u32);
        self.write(reg, entry as u32);
    }
}

/// The machine's I/O APICs and overrides, once [`init`] has run.
struct Controllers {
    chips: Vec<Chip>,
    overrides: Vec<SourceOverride>,
}

impl Controllers {
    /// The chip with an input for `gsi`, and that input.
    fn input(&self, gsi: u32) -> Result<(&Chip, u32), IoApicError> {
        self.chips
            .iter()
            .find(|chip| chip.holds(gsi))
            .map(|chip| (chip, gsi - chip.first_gsi))
            .ok_or(IoApicError::NoInput(gsi))
    }
}

static CONTROLLERS: Mutex<Option<Controllers>> = Mutex::new(None);

/// Finds the I/O APICs in the MADT (from the RSDP at `rsdp`, or the BIOS
/// areas) and masks every input; returns how many chips there are (one
/// whose registers lie outside the direct map is left out).
/// Later calls change nothing and return the same count.
pub fn init(rsdp: Option<u64>) -> Result<usize, madt::MadtError> {
    let mut controllers = CONTROLLERS.lock();
    if let Some(c) = controllers.as_ref() {
        return Ok(c.chips.len());
    }
    let machine = madt::read(rsdp)?;
    let chips: Vec<Chip> = machine
        .io_apics
        .iter()
        .filter(|found| found.phys.saturating_add(REG_WINDOW + 4) <= direct_map_end())
        .map(|found| {
            let mut chip = Chip {
                window: phys_to_virt(found.phys),
                first_gsi: found.first_interrupt,
                inputs: 0,
            };
            chip.inputs = ((chip.read(REG_VERSION) >> 16) & 0xff) + 1;
            for input in 0..chip.inputs {
                let entry = chip.read_entry(input);
                chip.write_entry(input, entry | ENTRY_MASKED);
            }
            chip
        })
        .collect();
    let count = chips.len();
    *controllers = Some(Controllers {
        chips,
        overrides: machine.overrides,
    });
    Ok(count)
}

/// How a bus signals when an override leaves it "as the bus conforms".
#[derive(Clone, Copy)]
enum Bus {
    /// ISA: edge-triggered, active high.
    Isa,
    /// PCI: level-triggered, active low.
    Pci,
}

/// Where the legacy IRQ `irq` arrives on `bus`: an override for it gives
/// its GSI and whatever signal it states, else the GSI is the IRQ itself;
/// a signal the override leaves "as the bus conforms", or no override, is
/// the bus's own (MADT flags: polarity bits 0-1, trigger bits 2-3; 0b01
/// high / edge, 0b11 low / level).
fn legacy_route(overrides: &[SourceOverride], irq: u8, bus: Bus) -> Route {
    let found = overrides.iter().find(|o| o.irq == irq);
    let gsi = found.map_or(u32::from(irq), |o| o.gsi);
    let flags = found.map_or(0, |o| o.flags);
    let (bus_trigger, bus_polarity) = match bus {
        Bus::Isa => (Trigger::Edge, Polarity::High),
        Bus::Pci => (Trigger::Level, Polarity::Low),
    };
    let polarity = match flags & 0b11 {
        0b01 => Polarity::High,
        0b11 => Polarity::Low,
        _ => bus_polarity,
    };
    let trigger = match (flags >> 2) & 0b11 {
        0b01 => Trigger::Edge,
        0b11 => Trigger::Level,
        _ => bus_trigger,
    };
    Route {
        gsi,
        trigger,
        polarity,
    }
}

/// The redirection entry delivering `route` as `vector` to the CPU whose
/// APIC id is `apic_id` (fixed delivery, physical destination), unmasked.
fn entry_for(route: Route, vector: u8, apic_id: u8) -> u64 {
    let mut entry = u64::from(vector) | (u64::from(apic_id) << ENTRY_DESTINATION_SHIFT);
    if route.trigger == Trigger::Level {
        entry |= ENTRY_LEVEL;
    }
    if route.polarity == Polarity::Low {
        entry |= ENTRY_ACTIVE_LOW;
    }
    entry
}

/// This CPU's APIC id as an entry's destination.
fn this_cpu_destination() -> Result<u8, IoApicError> {
    if super::apic::mode() == super::apic::Mode::Off {
        return Err(IoApicError::NoDestination);
    }
    u8::try_from(super::apic::id()).map_err(|_| IoApicError::NoDestination)
}

/// Routes PCI interrupt line `line` (the number the firmware wrote in the
/// function's Interrupt Line register) to `vector` on this CPU, unmasked;
/// returns the route taken. Without an ACPI interpreter (no `_PRT`) the
/// line is taken as the legacy IRQ it names. (QEMU's `pc` machine lists
/// overrides for IRQs 5, 9, 10 and 11: level, active high, as its PIIX
/// delivers them.)
pub fn route_pci_line(line: u8, vector: u8) -> Result<Route, IoApicError> {
    route_legacy(line, Bus::Pci, vector)
}

/// Routes the ISA interrupt `irq` (COM1's is 4) to `vector` on this CPU,
/// unmasked; returns the route taken.
pub fn route_isa_irq(irq: u8, vector: u8) -> Result<Route, IoApicError> {
    route_legacy(irq, Bus::Isa, vector)
}

fn route_legacy(irq: u8, bus: Bus, vector: u8) -> Result<Route, IoApicError> {
    let destination = this_cpu_destination()?;
    let controllers = CONTROLLERS.lock();
    let controllers = controllers.as_ref().ok_or(IoApicError::NoIoApic)?;
    let route = legacy_route(&controllers.overrides, irq, bus);
    let (chip, input) = controllers.input(route.gsi)?;
    chip.write_entry(input, entry_for(route, vector, destination));
    Ok(route)
}

/// Sends `gsi`'s interrupts to this CPU from now on (vector, signal and
/// mask unchanged): a CPU about to wait for a device's interrupt calls it.
pub fn deliver_here(gsi: u32) -> Result<(), IoApicError> {
    let destination = u64::from(this_cpu_destination()?);
    let controllers = CONTROLLERS.lock();
    let controllers = controllers.as_ref().ok_or(IoApicError::NoIoApic)?;
    let (chip, input) = controllers.input(gsi)?;
    let entry = chip.read_entry(input);
    let moved =
        (entry & !(0xff << ENTRY_DESTINATION_SHIFT)) | (destination << ENTRY_DESTINATION_SHIFT);
    if moved != entry {
        chip.write_entry(input, moved);
    }
    Ok(())
}

/// Stops `gsi`'s interrupts (its entry masked, nothing else changed).
pub fn mask(gsi: u32) -> Result<(), IoApicError> {
    let controllers = CONTROLLERS.lock();
    let controllers = controllers.as_ref().ok_or(IoApicError::NoIoApic)?;
    let (chip, input) = controllers.input(gsi)?;
    chip.write_entry(input, chip.read_entry(input) | ENTRY_MASKED);
    Ok(())
}
