//! Small CPU operations: halting, control registers, TLB invalidation, time
//! stamp, the user FS base, CPU features and random numbers.

use core::arch::asm;

/// Stops the CPU for good (interrupts off).
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// Waits for the next interrupt with interrupts enabled, then disables them again.
pub fn wait_for_interrupt() {
    x86_64::instructions::interrupts::enable_and_hlt();
    x86_64::instructions::interrupts::disable();
}

/// Spins with interrupts enabled until `done` says so (interrupt handlers
/// run meanwhile), then disables them again: `idle=poll`'s halt.
pub fn spin_with_interrupts_until(done: impl Fn() -> bool) {
    x86_64::instructions::interrupts::enable();
    while !done() {
        core::hint::spin_loop();
    }
    x86_64::instructions::interrupts::disable();
}

/// The faulting address of the last page fault.
pub fn fault_address() -> u64 {
    x86_64::registers::control::Cr2::read_raw()
}

/// Physical address of the active top-level page table.
pub fn current_root() -> u64 {
    let (frame, _) = x86_64::registers::control::Cr3::read_raw();
    frame.start_address().as_u64()
}

/// Loads a top-level page table (flushes every non-global TLB entry).
///
/// # Safety
/// `phys` must be the root of a complete page table that maps the kernel
/// (image, direct map, stacks) as the kernel's own table does, and its
/// frames must stay allocated while it is loaded.
pub unsafe fn load_root(phys: u64) {
    // SAFETY: the caller's guarantees keep the running code and data mapped.
    unsafe { asm!("mov cr3, {}", in(reg) phys, options(nostack, preserves_flags)) };
}

/// Invalidates the TLB entry of one page.
pub fn invalidate_page(virt: u64) {
    // SAFETY: invlpg only drops a cached translation.
    unsafe { asm!("invlpg [{}]", in(reg) virt, options(nostack, preserves_flags)) };
}

/// Turns on, where the CPU has them, the protections that fault when the
/// kernel runs code in user pages (SMEP) or reads or writes user pages (SMAP).
/// The kernel reaches user memory only through the frames the mapping core
/// resolves (the direct map), so either fault means a kernel bug, caught
/// loudly instead of silently using memory a program controls.
pub fn protect_kernel_from_user_pages() {
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    use x86_64::registers::control::{Cr4, Cr4Flags};
    if __cpuid(0).eax < 7 {
        return;
    }
    let features = __cpuid_count(7, 0).ebx;
    let mut flags = Cr4Flags::empty();
    if features & (1 << 7) != 0 {
        flags |= Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION;
    }
    if features & (1 << 20) != 0 {
        flags |= Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION;
    }
    // SAFETY: both bits only add faults for kernel accesses to user pages,
    // which the kernel does not make.
    unsafe { Cr4::update(|f| f.insert(flags)) };
}

/// Reads the time stamp counter (guest instructions under `-icount`).
pub fn timestamp() -> u64 {
    // SAFETY: rdtsc has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Reads a saved (frame pointer, return address) pair at `rbp`, if `rbp`
/// lies in the kernel image (the boot stack), which is always mapped, or on
/// a live kernel stack (mapped while it lives).
pub fn read_kernel_frame(rbp: u64) -> Option<[u64; 2]> {
    let image = super::paging::KERNEL_BASE..super::bootinfo::kernel_image_end_virt();
    let pair = rbp..rbp.checked_add(16)?;
    let in_image = image.contains(&pair.start) && pair.end <= image.end;
    if !rbp.is_multiple_of(8) || !(in_image || super::context::live_stack_holds(&pair)) {
        return None;
    }
    // SAFETY: the 16 bytes lie in the mapped kernel image or on a live
    // (mapped) kernel stack, and are aligned;
    // any bit pattern is a valid u64; the volatile read makes no claim
    // about what else refers to the memory (used while reporting a fatal
    // kernel fault, on one CPU).
    Some(unsafe { core::ptr::read_volatile(rbp as *const [u64; 2]) })
}

/// Sets the FS segment base user code runs with (the thread pointer of a
/// Linux program). The kernel itself never uses FS. A non-canonical
/// address (which the kernel logic refuses before) is ignored.
pub fn set_fs_base(base: u64) {
    if let Ok(addr) = x86_64::VirtAddr::try_new(base) {
        x86_64::registers::model_specific::FsBase::write(addr);
    }
}

/// The CPU feature bits Linux reports as `AT_HWCAP` (CPUID leaf 1, EDX).
pub fn hwcap() -> u64 {
    u64::from(core::arch::x86_64::__cpuid(1).edx)
}

/// 64 random bits: from `rdrand` where the CPU has it (retried a few
/// times, as Intel advises), else the time stamp counter mixed through
/// splitmix64 with a running state.
pub fn random_u64() -> u64 {
    use core::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    if let Some(rd) = x86_64::instructions::random::RdRand::new() {
        for _ in 0..10 {
            if let Some(v) = rd.get_u64() {
                return v;
            }
        }
    }
    let mut z = STATE
        .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        .wrapping_add(timestamp());
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
