//! The local APIC of each CPU: enabling it (in x2APIC mode when the CPU
//! has it, else xAPIC through its memory-mapped page), its id, and the
//! inter-processor interrupts that start the other CPUs (INIT, start-up).
//!
//! The boot CPU takes the 8259 PIC's interrupts (the PIT timer and COM1)
//! through LINT0 in ExtINT mode until the boot moves them to its APIC
//! timer and the I/O APIC ([`mask_pic_input`]); the other CPUs mask LINT0.
//! Every CPU uses the mode the boot CPU chose (all CPUs of a machine have
//! the same features).

use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use x86_64::registers::model_specific::Msr;

use super::paging::phys_to_virt;

/// The vector of the APIC's spurious interrupts (no end-of-interrupt).
pub const SPURIOUS_VECTOR: u8 = 0xff;
/// The vector of each CPU's own APIC timer.
pub const TIMER_VECTOR: u8 = 0xef;
/// The vector of the kernel's own IPIs: a TLB flush request from another
/// CPU (`smp::flush_remote`), or the wake-up of an idle CPU (its mailbox
/// then empty).
pub const FLUSH_VECTOR: u8 = 0xee;
/// The APIC timer's rate on every CPU.
const TIMER_HZ: u64 = 100;

const IA32_APIC_BASE: u32 = 0x1b;
const BASE_ENABLE: u64 = 1 << 11;
const BASE_X2APIC: u64 = 1 << 10;
const BASE_ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;
/// The first x2APIC register MSR (register offset / 16 is added).
const X2APIC_MSR_BASE: u32 = 0x800;

/// Register offsets in the xAPIC page (x2APIC: MSR 0x800 + offset / 16).
const REG_ID: u32 = 0x20;
const REG_EOI: u32 = 0xb0;
const REG_SPURIOUS: u32 = 0xf0;
const REG_ERROR_STATUS: u32 = 0x280;
const REG_ICR_LOW: u32 = 0x300;
const REG_ICR_HIGH: u32 = 0x310;
const REG_LVT_TIMER: u32 = 0x320;
const REG_LVT_LINT0: u32 = 0x350;
const REG_LVT_LINT1: u32 = 0x360;
const REG_LVT_ERROR: u32 = 0x370;
const REG_TIMER_INITIAL: u32 = 0x380;
const REG_TIMER_CURRENT: u32 = 0x390;
const REG_TIMER_DIVIDE: u32 = 0x3e0;
/// Divide configuration: the bus clock divided by 16.
const TIMER_DIVIDE_BY_16: u32 = 0b0011;
const LVT_TIMER_PERIODIC: u32 = 1 << 17;

const SOFTWARE_ENABLE: u32 = 1 << 8;
const LVT_MASKED: u32 = 1 << 16;
const DELIVERY_NMI: u32 = 0b100 << 8;
const DELIVERY_EXTINT: u32 = 0b111 << 8;
const ICR_INIT: u32 = 0b101 << 8;
const ICR_STARTUP: u32 = 0b110 << 8;
const ICR_LEVEL_ASSERT: u32 = 1 << 14;
const ICR_PENDING: u32 = 1 << 12;
/// Fixed delivery (the vector in the low byte), physical destination.
const ICR_FIXED: u32 = 0;

/// How this machine's local APICs are driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Not set up yet.
    Off,
    /// Memory-mapped registers at the physical base of IA32_APIC_BASE.
    XApic,
    /// Registers as MSRs, 32-bit APIC ids.
    X2Apic,
}

const MODE_OFF: u8 = 0;
const MODE_XAPIC: u8 = 1;
const MODE_X2APIC: u8 = 2;
static MODE: AtomicU8 = AtomicU8::new(MODE_OFF);

/// The mode chosen by [`init_boot_cpu`].
pub fn mode() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        MODE_XAPIC => Mode::XApic,
        MODE_X2APIC => Mode::X2Apic,
        _ => Mode::Off,
    }
}

/// Whether the CPU has an x2APIC (CPUID leaf 1, ECX bit 21).
fn cpu_has_x2apic() -> bool {
    core::arch::x86_64::__cpuid(1).ecx & (1 << 21) != 0
}

fn read_base() -> u64 {
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU; reading it has no
    // side effect.
    unsafe { Msr::new(IA32_APIC_BASE).read() }
}

/// Reads a register of this CPU's local APIC.
fn read(reg: u32) -> u32 {
    match mode() {
        // SAFETY: in x2APIC mode every register named here is an MSR at
        // 0x800 + offset / 16; reading it has no side effect.
        Mode::X2Apic => unsafe { Msr::new(X2APIC_MSR_BASE + reg / 16).read() as u32 },
        Mode::XApic => {
            let page = phys_to_virt(read_base() & BASE_ADDRESS_MASK);
            // SAFETY: the APIC page (below 4 GiB, so in the direct map) is
            // this CPU's register window; `reg` is an aligned register
            // offset inside it; registers need 32-bit volatile accesses.
            unsafe { core::ptr::read_volatile((page + u64::from(reg)) as *const u32) }
        }
        Mode::Off => 0,
    }
}

/// Writes a register of this CPU's local APIC.
fn write(reg: u32, value: u32) {
    match mode() {
        // SAFETY: as in `read`; the registers written here (EOI, spurious,
        // error status, LVTs) take any 32-bit value the callers give.
        Mode::X2Apic => unsafe { Msr::new(X2APIC_MSR_BASE + reg / 16).write(u64::from(value)) },
        Mode::XApic => {
            let page = phys_to_virt(read_base() & BASE_ADDRESS_MASK);
            // SAFETY: as in `read`.
            unsafe { core::ptr::write_volatile((page + u64::from(reg)) as *mut u32, value) }
        }
        Mode::Off => {}
    }
}

/// Turns on this CPU's APIC in the machine's mode: enabled, spurious
/// vector set, timer and error interrupts masked. LINT0 passes the 8259's
/// interrupts on the boot CPU only; LINT1 is NMI everywhere.
fn enable_this_cpu(boot_cpu: bool) {
    let extra = if mode() == Mode::X2Apic {
        BASE_X2APIC
    } else {
        0
    };
    let base = read_base();
    if base & (BASE_ENABLE | extra) != BASE_ENABLE | extra {
        // xAPIC must be globally enabled before x2APIC is switched on.
        // SAFETY: enabling the APIC (and x2APIC mode, which the CPU has)
        // changes only how this CPU's interrupts are delivered; the
        // registers are set up right below, with interrupts off.
        unsafe {
            Msr::new(IA32_APIC_BASE).write(base | BASE_ENABLE);
            Msr::new(IA32_APIC_BASE).write(base | BASE_ENABLE | extra);
        }
    }
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_LVT_ERROR, LVT_MASKED);
    let lint0 = if boot_cpu {
        DELIVERY_EXTINT
    } else {
        DELIVERY_EXTINT | LVT_MASKED
    };
    write(REG_LVT_LINT0, lint0);
    write(REG_LVT_LINT1, DELIVERY_NMI);
    write(REG_SPURIOUS, SOFTWARE_ENABLE | u32::from(SPURIOUS_VECTOR));
    write(REG_ERROR_STATUS, 0);
    write(REG_EOI, 0);
}

/// Chooses the machine's APIC mode (x2APIC when the CPU has it) and
/// enables the boot CPU's APIC; returns the mode. Later calls only
/// return it.
pub fn init_boot_cpu() -> Mode {
    if mode() != Mode::Off {
        return mode();
    }
    let chosen = if cpu_has_x2apic() {
        MODE_X2APIC
    } else {
        MODE_XAPIC
    };
    MODE.store(chosen, Ordering::Relaxed);
    enable_this_cpu(true);
    mode()
}

/// Stops this CPU's LINT0 (the 8259 PIC's ExtINT input).
pub(super) fn mask_pic_input() {
    write(REG_LVT_LINT0, DELIVERY_EXTINT | LVT_MASKED);
}

/// Enables the APIC of an application processor, in the boot CPU's mode.
pub(super) fn init_application_processor() {
    enable_this_cpu(false);
}

/// This CPU's local APIC id.
pub fn id() -> u32 {
    match mode() {
        Mode::X2Apic => read(REG_ID),
        Mode::XApic => read(REG_ID) >> 24,
        // Before the APIC is set up: the initial id CPUID reports.
        Mode::Off => core::arch::x86_64::__cpuid(1).ebx >> 24,
    }
}

/// Acknowledges the interrupt being handled (not for spurious ones).
pub fn end_of_interrupt() {
    write(REG_EOI, 0);
}

/// Sends an inter-processor interrupt (`command`: the ICR's low word) to
/// the CPU whose APIC id is `apic_id`, and waits until it is sent.
fn send_ipi(apic_id: u32, command: u32) {
    // Everything written before (the trampoline, its parameters) is seen
    // by the target before the IPI: an x2APIC ICR write does not
    // serialise, so fence first.
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    match mode() {
        Mode::X2Apic => {
            let icr = (u64::from(apic_id) << 32) | u64::from(command);
            // SAFETY: the ICR takes a destination and a command; the
            // commands sent here (INIT, start-up) only affect the target.
            unsafe { Msr::new(X2APIC_MSR_BASE + REG_ICR_LOW / 16).write(icr) };
        }
        Mode::XApic => {
            write(REG_ICR_HIGH, apic_id << 24);
            write(REG_ICR_LOW, command);
            while read(REG_ICR_LOW) & ICR_PENDING != 0 {
                core::hint::spin_loop();
            }
        }
        Mode::Off => {}
    }
}

/// Interrupts CPU `apic_id` with `vector` (fixed delivery).
pub(super) fn send_vector(apic_id: u32, vector: u8) {
    send_ipi(apic_id, ICR_FIXED | ICR_LEVEL_ASSERT | u32::from(vector));
}

/// Sends INIT to the CPU `apic_id` (it resets and waits for a start-up).
pub(super) fn send_init(apic_id: u32) {
    send_ipi(apic_id, ICR_INIT | ICR_LEVEL_ASSERT);
}

/// Sends a start-up IPI: the CPU `apic_id` starts in real mode at
/// physical address `page * 4096`.
pub(super) fn send_startup(apic_id: u32, page: u8) {
    send_ipi(apic_id, ICR_STARTUP | ICR_LEVEL_ASSERT | u32::from(page));
}

/// The timer's initial count for one tick at [`TIMER_HZ`] (0: not measured).
static TIMER_COUNT_PER_TICK: AtomicU32 = AtomicU32::new(0);

/// Measures this CPU's APIC timer against the PIT so that every CPU can
/// tick at [`TIMER_HZ`]; the result is kept for [`start_timer`]. Five
/// windows of 2 ms (interrupts off); the slowest rate wins, because a
/// window in which the emulator was away longer than a PIT period counts
/// too few PIT ticks and so too fast a timer. Returns the count per tick
/// (0 when the timer did not count). Run on the boot CPU, APIC enabled.
pub(super) fn calibrate_timer() -> u32 {
    const WINDOW_MICROS: u64 = 2_000;
    const WINDOWS: usize = 5;
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    write(REG_TIMER_DIVIDE, TIMER_DIVIDE_BY_16);
    write(REG_TIMER_INITIAL, u32::MAX);
    let mut per_second = u64::MAX;
    for _ in 0..WINDOWS {
        let start = read(REG_TIMER_CURRENT);
        let (pit_ticks, pit_hz) = super::traps::wait_micros_counted(WINDOW_MICROS);
        let counted = u64::from(start.saturating_sub(read(REG_TIMER_CURRENT)));
        if let Some(rate) = (counted * pit_hz).checked_div(pit_ticks) {
            per_second = per_second.min(rate);
        }
    }
    write(REG_TIMER_INITIAL, 0);
    let per_tick = if per_second == u64::MAX {
        0
    } else {
        per_second / TIMER_HZ
    };
    let per_tick = u32::try_from(per_tick).unwrap_or(u32::MAX);
    TIMER_COUNT_PER_TICK.store(per_tick, Ordering::Relaxed);
    per_tick
}

/// Whether [`calibrate_timer`] measured the timer.
pub(super) fn timer_measured() -> bool {
    TIMER_COUNT_PER_TICK.load(Ordering::Relaxed) != 0
}

/// Starts this CPU's APIC timer: periodic, [`TIMER_HZ`], vector
/// [`TIMER_VECTOR`]. Does nothing before [`calibrate_timer`] measured it.
pub(super) fn start_timer() {
    let per_tick = TIMER_COUNT_PER_TICK.load(Ordering::Relaxed);
    if per_tick == 0 {
        return;
    }
    write(REG_TIMER_DIVIDE, TIMER_DIVIDE_BY_16);
    write(REG_LVT_TIMER, LVT_TIMER_PERIODIC | u32::from(TIMER_VECTOR));
    write(REG_TIMER_INITIAL, per_tick);
}
