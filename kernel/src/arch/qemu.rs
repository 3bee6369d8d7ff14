//! Leaving QEMU: the isa-debug-exit device at port 0xf4 ends QEMU with status
//! `(code << 1) | 1`. The host tool knows these codes.

/// QEMU exit status 33: every program ran, the kernel is healthy.
pub const EXIT_SUCCESS: u8 = 0x10;
/// QEMU exit status 35: the kernel itself failed (panic, kernel-mode fault).
pub const EXIT_KERNEL_FAILURE: u8 = 0x11;

/// Ends the emulator with `code`.
pub fn exit(code: u8) -> ! {
    let mut port = x86_64::instructions::port::Port::<u32>::new(0xf4);
    // SAFETY: port 0xf4 is QEMU's isa-debug-exit device; writing to it only stops
    // the machine.
    unsafe { port.write(code as u32) };
    super::cpu::halt_forever()
}
