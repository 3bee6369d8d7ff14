//! The COM1 serial port: all console output and input.

use core::fmt::{self, Write};
use spin::Mutex;
use uart_16550::SerialPort;

static COM1: Mutex<Option<SerialPort>> = Mutex::new(None);

/// Initialises COM1 (115200 8N1, receive interrupts on).
pub fn init() {
    // SAFETY: 0x3F8 is the standard COM1 I/O base on the QEMU PC machine, and
    // nothing else in the kernel drives those ports.
    let mut port = unsafe { SerialPort::new(0x3F8) };
    port.init();
    *COM1.lock() = Some(port);
}

/// Writes formatted text to the console.
pub fn write_fmt(args: fmt::Arguments) {
    if let Some(port) = COM1.lock().as_mut() {
        let _ = port.write_fmt(args);
    }
}

/// Writes formatted text unless the port stays taken (by this CPU, which
/// an NMI interrupted mid-line, or too long by another): the state report
/// of an NMI, which must not wait for a lock forever.
pub fn write_fmt_if_free(args: fmt::Arguments) {
    for _ in 0..1_000_000 {
        if let Some(mut guard) = COM1.try_lock() {
            if let Some(port) = guard.as_mut() {
                let _ = port.write_fmt(args);
            }
            return;
        }
        core::hint::spin_loop();
    }
}

/// Writes raw bytes to the console (program output), turning `\n` into `\r\n`.
pub fn write_bytes(bytes: &[u8]) {
    if let Some(port) = COM1.lock().as_mut() {
        for &b in bytes {
            if b == b'\n' {
                port.send(b'\r');
            }
            port.send(b);
        }
    }
}

/// Returns a received byte if one is waiting.
pub fn try_read() -> Option<u8> {
    COM1.lock().as_mut()?.try_receive().ok()
}
