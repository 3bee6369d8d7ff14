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
