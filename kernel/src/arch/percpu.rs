//! Per-CPU data: one [`PerCpu`] for each CPU, reached through the GS base.
//!
//! While a CPU runs kernel code its GS base holds the address of its own
//! `PerCpu` (whose first word is that same address, so `gs:0` reads it);
//! while it runs user code the GS base is the program's and the kernel's
//! sits in IA32_KERNEL_GS_BASE. The entry stubs swap the two (`swapgs`)
//! on every entry from and exit to user mode, and the `syscall` entry
//! finds its kernel stack through `gs`. A table indexed by CPU number
//! lists every CPU's structure for code that must reach the others.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use x86_64::registers::model_specific::{GsBase, KernelGsBase};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

/// Most CPUs the kernel runs on (more are left halted): as many as the
/// process table keeps a running thread for.
pub const MAX_CPUS: usize = neoos_kernel_core::process::MAX_CPUS;
/// Most pages one remote flush request names (a batch's most).
pub const FLUSH_LIST_CAPACITY: usize = neoos_mm::TLB_BATCH_LIMIT;

/// One CPU's own data. The assembly reaches the first fields by their
/// offsets (`repr(C)`): keep them first.
#[repr(C)]
pub struct PerCpu {
    /// The address of this structure (`gs:0`).
    this: AtomicU64,
    /// The kernel stack the `syscall` entry switches to.
    pub(super) kernel_stack_top: AtomicU64,
    /// The user stack pointer, kept by the `syscall` entry while it saves it.
    pub(super) user_rsp_scratch: AtomicU64,
    /// This CPU's TSS (its ring-0 stack, its IST stacks).
    pub(super) tss: AtomicPtr<TaskStateSegment>,
    /// The CPU's number: 0 for the boot CPU, then 1, 2... in MADT order.
    index: AtomicU32,
    /// The CPU's local APIC id.
    apic_id: AtomicU32,
    /// Whether the CPU has finished its own set-up.
    online: AtomicBool,
    /// Interrupts of this CPU's own APIC timer so far.
    timer_ticks: AtomicU64,
    /// The scheduler's saved stack pointer while a thread runs here.
    pub(super) scheduler_rsp: AtomicU64,
    /// The context slot running here, or `u64::MAX` while the scheduler runs.
    pub(super) running_slot: AtomicU64,
    /// The root of the user page table loaded here (0: the kernel's own):
    /// this CPU may cache that space's entries and no other's.
    pub(super) user_root: AtomicU64,
    /// A TLB flush asked of this CPU (0: none; see `smp::flush_remote`),
    /// cleared once done.
    pub(super) flush_request: AtomicU64,
    /// The pages this CPU asks others to invalidate (the first
    /// `flush_list_len`), unchanged until every CPU asked has done it.
    pub(super) flush_list: [AtomicU64; FLUSH_LIST_CAPACITY],
    pub(super) flush_list_len: AtomicU64,
    /// How many times this CPU switched to a thread.
    thread_runs: AtomicU64,
    /// Whether its scheduler found nothing to run and halts (or is about
    /// to): a CPU that readies a thread interrupts it.
    idle: AtomicBool,
    /// Set by a CPU that holds the threads of a process off the CPUs
    /// while this one may run one of them (`smp::stop_cpus`): the next
    /// return to user mode here asks whether its thread must leave.
    pub(super) stop_asked: AtomicBool,
    /// A zeroed frame kept for this CPU's next zero-fill (0: none; see
    /// `frames::prepare_zeroed_frame`); only this CPU fills or takes it.
    pub(super) zeroed_frame: AtomicU64,
    /// A copy kept for the page fault under way on this CPU (0: none; see
    /// `frames::prepare_copy`), the frame it copies and the count of
    /// frames given back when that frame was known to be the page's; only
    /// this CPU touches them.
    pub(super) copy_frame: AtomicU64,
    pub(super) copy_source: AtomicU64,
    pub(super) copy_generation: AtomicU64,
    /// Whether this CPU halts waiting for the kernel lock (`smp::LockGate`):
    /// the CPU that gives it back interrupts it.
    pub(super) lock_parked: AtomicBool,
    /// How many times this CPU halted waiting for the kernel lock.
    lock_parks: AtomicU64,
}

/// Offsets the assembly uses.
pub const KERNEL_STACK_TOP_OFFSET: usize = core::mem::offset_of!(PerCpu, kernel_stack_top);
pub const USER_RSP_SCRATCH_OFFSET: usize = core::mem::offset_of!(PerCpu, user_rsp_scratch);

impl PerCpu {
    const fn new(index: u32, apic_id: u32) -> Self {
        PerCpu {
            this: AtomicU64::new(0),
            kernel_stack_top: AtomicU64::new(0),
            user_rsp_scratch: AtomicU64::new(0),
            tss: AtomicPtr::new(core::ptr::null_mut()),
            index: AtomicU32::new(index),
            apic_id: AtomicU32::new(apic_id),
            online: AtomicBool::new(false),
            timer_ticks: AtomicU64::new(0),
            scheduler_rsp: AtomicU64::new(0),
            running_slot: AtomicU64::new(u64::MAX),
            user_root: AtomicU64::new(0),
            flush_request: AtomicU64::new(0),
            flush_list: [const { AtomicU64::new(0) }; FLUSH_LIST_CAPACITY],
            flush_list_len: AtomicU64::new(0),
            thread_runs: AtomicU64::new(0),
            idle: AtomicBool::new(false),
            stop_asked: AtomicBool::new(false),
            zeroed_frame: AtomicU64::new(0),
            copy_frame: AtomicU64::new(0),
            copy_source: AtomicU64::new(0),
            copy_generation: AtomicU64::new(0),
            lock_parked: AtomicBool::new(false),
            lock_parks: AtomicU64::new(0),
        }
    }

    /// The CPU's number (0: the boot CPU).
    pub fn index(&self) -> u32 {
        self.index.load(Ordering::Relaxed)
    }

    /// The CPU's local APIC id.
    pub fn apic_id(&self) -> u32 {
        self.apic_id.load(Ordering::Relaxed)
    }

    /// Whether the CPU has come online.
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    /// How often this CPU's own APIC timer has fired.
    pub fn timer_ticks(&self) -> u64 {
        self.timer_ticks.load(Ordering::Relaxed)
    }

    /// Marks this CPU idle (its scheduler halts) or not.
    pub fn set_idle(&self, idle: bool) {
        self.idle.store(idle, Ordering::Release);
    }

    /// Whether this CPU's scheduler halts for want of a thread.
    pub fn is_idle(&self) -> bool {
        self.idle.load(Ordering::Acquire)
    }

    /// Takes the request of `smp::stop_cpus` (whether there was one).
    pub fn take_stop_request(&self) -> bool {
        self.stop_asked.load(Ordering::Relaxed) && self.stop_asked.swap(false, Ordering::AcqRel)
    }

    /// How many times this CPU switched to a thread.
    pub fn thread_runs(&self) -> u64 {
        self.thread_runs.load(Ordering::Relaxed)
    }

    /// Counts one switch of this CPU to a thread.
    pub(super) fn count_thread_run(&self) {
        self.thread_runs.fetch_add(1, Ordering::Relaxed);
    }

    /// How many times this CPU halted waiting for the kernel lock.
    pub fn lock_parks(&self) -> u64 {
        self.lock_parks.load(Ordering::Relaxed)
    }

    /// Counts one halt of this CPU waiting for the kernel lock.
    pub(super) fn count_lock_park(&self) {
        self.lock_parks.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one interrupt of this CPU's APIC timer.
    pub(super) fn count_timer_tick(&self) {
        self.timer_ticks.fetch_add(1, Ordering::Relaxed);
    }
}

/// The boot CPU's structure (a static: it exists before the heap is used).
static BOOT_CPU: PerCpu = PerCpu::new(0, 0);
/// Set once the boot CPU's GS base points at [`BOOT_CPU`].
static BOOT_CPU_INSTALLED: AtomicBool = AtomicBool::new(false);
/// Every CPU's structure, by CPU number.
static CPUS: [AtomicPtr<PerCpu>; MAX_CPUS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];
/// How many CPUs are online.
static ONLINE: AtomicU32 = AtomicU32::new(0);

/// Points this CPU's GS base at `cpu` (the user's GS base, in
/// IA32_KERNEL_GS_BASE until the first exit to user mode, starts at 0).
fn install(cpu: &'static PerCpu) {
    let address = cpu as *const PerCpu as u64;
    cpu.this.store(address, Ordering::Relaxed);
    GsBase::write(VirtAddr::new(address));
    KernelGsBase::write(VirtAddr::zero());
}

/// Sets up the boot CPU's structure (CPU 0, its APIC id, its TSS) and its
/// GS base. Only the first call does anything.
pub(super) fn init_boot_cpu(apic_id: u32, tss: *mut TaskStateSegment) {
    if BOOT_CPU_INSTALLED.load(Ordering::Relaxed) {
        return;
    }
    BOOT_CPU.apic_id.store(apic_id, Ordering::Relaxed);
    BOOT_CPU.tss.store(tss, Ordering::Relaxed);
    install(&BOOT_CPU);
    CPUS[0].store(core::ptr::addr_of!(BOOT_CPU).cast_mut(), Ordering::Release);
    BOOT_CPU_INSTALLED.store(true, Ordering::Release);
}

/// A new structure for application processor `index` (not yet installed
/// anywhere), listed in the CPU table; `None` when `index` is 0 or past
/// [`MAX_CPUS`], or already taken.
pub(super) fn new_application_processor(index: usize, apic_id: u32) -> Option<&'static PerCpu> {
    if index == 0 || index >= MAX_CPUS || !CPUS[index].load(Ordering::Acquire).is_null() {
        return None;
    }
    let cpu: &'static PerCpu = Box::leak(Box::new(PerCpu::new(index as u32, apic_id)));
    CPUS[index].store(core::ptr::from_ref(cpu).cast_mut(), Ordering::Release);
    Some(cpu)
}

/// On an application processor, first thing: makes `cpu` this CPU's
/// structure and records its TSS.
pub(super) fn install_application_processor(cpu: &'static PerCpu, tss: *mut TaskStateSegment) {
    cpu.tss.store(tss, Ordering::Relaxed);
    install(cpu);
}

/// Counts this CPU online (after its set-up is complete).
pub(super) fn mark_online() {
    let cpu = current();
    if !cpu.online.swap(true, Ordering::AcqRel) {
        ONLINE.fetch_add(1, Ordering::AcqRel);
    }
}

/// The structure of the CPU running this code (inlined: a fault or call
/// asks for it several times, and the body is two loads).
#[inline]
pub fn current() -> &'static PerCpu {
    if !BOOT_CPU_INSTALLED.load(Ordering::Acquire) {
        // Only the boot CPU runs before its structure is installed.
        return &BOOT_CPU;
    }
    let address: u64;
    // SAFETY: once the boot CPU's structure is installed, every CPU that
    // runs kernel code has its GS base on its own PerCpu (the boot CPU
    // from then on; an application processor installs its own before any
    // other Rust code runs; the entry stubs swap the user's GS base out);
    // the load reads the structure's first word, its own address.
    unsafe {
        core::arch::asm!("mov {}, gs:[0]", out(reg) address, options(nostack, readonly, preserves_flags));
    }
    // SAFETY: the address is that of a PerCpu that lives for good (the
    // static, or a leaked box), only ever shared (all fields atomic).
    unsafe { &*(address as *const PerCpu) }
}

/// The CPU numbered `index`, if it exists.
pub fn cpu(index: usize) -> Option<&'static PerCpu> {
    let ptr = CPUS.get(index)?.load(Ordering::Acquire);
    // SAFETY: non-null entries point to PerCpu values that live for good
    // (the static or a leaked box) and are only shared.
    (!ptr.is_null()).then(|| unsafe { &*ptr })
}

/// How many CPUs are online now.
pub fn online_count() -> u32 {
    ONLINE.load(Ordering::Acquire)
}
