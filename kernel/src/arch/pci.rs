//! PCI configuration space through I/O ports 0xCF8/0xCFC (configuration
//! mechanism #1, which QEMU's PC machine provides; it has no ECAM window).
//! Only this module touches those ports.

use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};
use x86_64::instructions::port::Port;

const CONFIG_ADDRESS: u16 = 0xCF8;
const CONFIG_DATA: u16 = 0xCFC;

/// Access to the configuration space of every PCI function.
pub struct PortConfigAccess {
    _private: (),
}

impl PortConfigAccess {
    /// The machine's configuration space. The kernel runs on one CPU with
    /// interrupts off in kernel mode, so an address/data pair of port
    /// accesses is never interleaved with another.
    pub fn new() -> Self {
        PortConfigAccess { _private: () }
    }

    fn address(function: DeviceFunction, register: u8) -> u32 {
        1 << 31
            | u32::from(function.bus) << 16
            | u32::from(function.device & 0x1F) << 11
            | u32::from(function.function & 0x7) << 8
            | u32::from(register & 0xFC)
    }
}

impl Default for PortConfigAccess {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigurationAccess for PortConfigAccess {
    fn read_word(&self, function: DeviceFunction, register: u8) -> u32 {
        // SAFETY: 0xCF8/0xCFC are the PCI configuration ports of the PC
        // machine; selecting a register and reading it has no effect beyond
        // the configuration space, which only this module drives.
        unsafe {
            Port::<u32>::new(CONFIG_ADDRESS).write(Self::address(function, register));
            Port::<u32>::new(CONFIG_DATA).read()
        }
    }

    fn write_word(&mut self, function: DeviceFunction, register: u8, data: u32) {
        // SAFETY: as `read_word`; the callers (the virtio transport and
        // `arch::virtio`) write only command and BAR registers of the
        // device they drive.
        unsafe {
            Port::<u32>::new(CONFIG_ADDRESS).write(Self::address(function, register));
            Port::<u32>::new(CONFIG_DATA).write(data);
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortConfigAccess { _private: () }
    }
}

/// The Interrupt Line and Interrupt Pin registers (byte 0 and 1 of the
/// word at 0x3C).
const INTERRUPT_LINE_REGISTER: u8 = 0x3C;

/// The legacy interrupt line (the IRQ number the firmware routed the
/// function's INTx pin to), `None` when the function uses no pin or the
/// firmware routed none (line 0xFF).
pub fn interrupt_line(access: &impl ConfigurationAccess, function: DeviceFunction) -> Option<u8> {
    let word = access.read_word(function, INTERRUPT_LINE_REGISTER);
    let (line, pin) = (word as u8, (word >> 8) as u8);
    (pin != 0 && line != 0xFF).then_some(line)
}
