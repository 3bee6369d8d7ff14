//! Bringing up the CPUs: the boot CPU's own tables (GDT/TSS, local APIC,
//! per-CPU data, IDT), then the application processors (APs) the MADT
//! lists, each started with INIT, start-up, start-up through a trampoline
//! copied into low memory.
//!
//! The trampoline (page [`TRAMPOLINE_PAGE`], 0x8000) runs in real mode,
//! loads its own small GDT, enters protected mode, turns on PAE, long mode
//! and paging with page tables in low memory (the first 2 MiB identity
//! mapped for the trampoline itself, plus the kernel half of the kernel's
//! own table), and calls [`ap_entry`] in the higher half on the stack the
//! boot CPU left in the trampoline's parameters. The boot CPU starts the
//! APs one at a time and waits for each to come online before it reuses
//! the parameters for the next.
//!
//! An AP sets up its own GDT and TSS, per-CPU data (GS base), the shared
//! IDT, `syscall`, its local APIC and SMEP/SMAP, counts itself online,
//! starts its own APIC timer (100 Hz, calibrated once against the PIT by
//! the boot CPU: it preempts the threads the AP runs) and, once the kernel
//! state exists, runs its own scheduler loop on its start-up stack.
//!
//! TLB flushes of other CPUs ([`flush_remote`]): a CPU that changes a user
//! page table looks at the table's set of CPUs that may have it loaded
//! (each `PerCpu` says which one it has; the set is trimmed lazily, here);
//! for those that have, it lists the pages in its own `PerCpu` (up to a
//! batch's most; more: a full flush), writes the request into each one's
//! mailbox, interrupts it ([`apic::FLUSH_VECTOR`]) and waits until every
//! one has done it ([`serve_flush_request`]: in the interrupt, or in the
//! kernel lock's wait of a CPU looking there with interrupts off). The
//! same vector wakes idle CPUs and CPUs halted waiting for the kernel lock
//! ([`LockGate`], the gate in front of it), and asks CPUs to take a thread
//! off ([`stop_cpus`]).

use alloc::vec::Vec;
use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};

use neoos_kernel_core::platform::IpiCounters;

use super::paging::{kernel_root, phys_to_virt};
use super::percpu::{self, PerCpu};
use super::{apic, cpu, gdt, ioapic, madt, paging, traps};

/// The low-memory page the trampoline is copied to (the start-up IPI's
/// vector: the AP starts at `TRAMPOLINE_PAGE * 4096` in real mode).
pub const TRAMPOLINE_PAGE: u8 = 0x08;
const TRAMPOLINE_BASE: u64 = (TRAMPOLINE_PAGE as u64) << 12;
/// The APs' start-up page tables, in low memory below 1 MiB (which the
/// frame allocator never hands out): top level, one PDPT, one directory.
const AP_PML4: u64 = 0x9000;
const AP_PDPT: u64 = 0xa000;
const AP_PD: u64 = 0xb000;
/// Each AP's kernel stack (its scheduler loop runs on it, the clock's
/// work included: as big as the boot stack).
const AP_STACK_SIZE: usize = 64 * 1024;
/// The start-up protocol's waits.
const INIT_WAIT_MICROS: u64 = 10_000;
const FIRST_STARTUP_WAIT_MICROS: u64 = 1_000;
const ONLINE_WAIT_MICROS: u64 = 200_000;

global_asm!(
    r#"
    .set TRAMPOLINE_BASE, {base}

    /* Copied to TRAMPOLINE_BASE before use; never run where it is linked. */
    .section .rodata.ap_trampoline, "a"
    .p2align 12
    .global ap_trampoline_start
ap_trampoline_start:
    .code16
    cli
    cld
    xorw %ax, %ax
    movw %ax, %ds
    lgdtl (ap_gdt_pointer - ap_trampoline_start + TRAMPOLINE_BASE)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x18, $((ap_protected_mode - ap_trampoline_start + TRAMPOLINE_BASE))

    .code32
ap_protected_mode:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    /* CR4: PAE, PGE, OSFXSR, OSXMMEXCPT */
    movl %cr4, %eax
    orl $((1 << 5) | (1 << 7) | (1 << 9) | (1 << 10)), %eax
    movl %eax, %cr4
    movl (ap_cr3 - ap_trampoline_start + TRAMPOLINE_BASE), %eax
    movl %eax, %cr3
    /* EFER: SCE, LME, NXE */
    movl $0xC0000080, %ecx
    rdmsr
    orl $((1 << 0) | (1 << 8) | (1 << 11)), %eax
    wrmsr
    /* CR0: PE, MP, WP, PG; EM and TS clear */
    movl %cr0, %eax
    andl $~((1 << 2) | (1 << 3)), %eax
    orl $((1 << 0) | (1 << 1) | (1 << 16) | (1 << 31)), %eax
    movl %eax, %cr0
    ljmpl $0x08, $((ap_long_mode - ap_trampoline_start + TRAMPOLINE_BASE))

    .code64
ap_long_mode:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movq (ap_stack_top - ap_trampoline_start + TRAMPOLINE_BASE), %rsp
    movq (ap_per_cpu - ap_trampoline_start + TRAMPOLINE_BASE), %rdi
    xorq %rbp, %rbp
    movq (ap_rust_entry - ap_trampoline_start + TRAMPOLINE_BASE), %rax
    callq *%rax
1:
    cli
    hlt
    jmp 1b

    .p2align 3
ap_gdt:
    .quad 0
    .quad 0x00af9a000000ffff /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff /* 0x10: data */
    .quad 0x00cf9a000000ffff /* 0x18: 32-bit code */
ap_gdt_end:
ap_gdt_pointer:
    .word ap_gdt_end - ap_gdt - 1
    .long (ap_gdt - ap_trampoline_start + TRAMPOLINE_BASE)

    /* Parameters, written by the boot CPU before each start. */
    .p2align 3
    .global ap_cr3
ap_cr3: .quad 0
    .global ap_stack_top
ap_stack_top: .quad 0
    .global ap_per_cpu
ap_per_cpu: .quad 0
    .global ap_rust_entry
ap_rust_entry: .quad 0
    .global ap_trampoline_end
ap_trampoline_end:
    .text
    "#,
    base = const TRAMPOLINE_BASE,
    options(att_syntax)
);

unsafe extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
    static ap_cr3: u8;
    static ap_stack_top: u8;
    static ap_per_cpu: u8;
    static ap_rust_entry: u8;
}

/// Sets up the boot CPU: GDT and TSS, local APIC, per-CPU data (GS base),
/// IDT, PIC, PIT and `syscall` ([`retire_pic`] moves it to its APIC timer
/// and the I/O APIC later). Only the first call does anything.
pub fn init_boot_cpu() {
    let Some(tss) = gdt::init_boot_cpu() else {
        return;
    };
    apic::init_boot_cpu();
    percpu::init_boot_cpu(apic::id(), tss);
    traps::init_boot_cpu();
    percpu::mark_online();
}

/// What starting the other CPUs gave.
#[derive(Debug)]
pub struct Started {
    /// The CPUs the MADT lists (the boot CPU included).
    pub listed: usize,
    /// The CPUs online now (the boot CPU included).
    pub online: u32,
    /// The local APIC mode every CPU runs in.
    pub apic_mode: apic::Mode,
    /// APIC ids of CPUs that did not come online (each was sent INIT again).
    pub failed: Vec<u32>,
    /// APIC ids of CPUs left halted: beyond [`percpu::MAX_CPUS`].
    pub beyond_limit: Vec<u32>,
    /// The APIC timer's count per 10 ms tick (0: not measured, or the
    /// timer did not count; the APs then run without it).
    pub timer_count_per_tick: u32,
}

/// Starts every application processor the MADT lists (found from `rsdp`)
/// and waits for each to come online. Runs on the boot CPU after
/// [`init_boot_cpu`] and the kernel's page tables; only the first call
/// starts anything.
pub fn start_application_processors(rsdp: Option<u64>) -> Result<Started, madt::MadtError> {
    let machine = madt::read(rsdp)?;
    let mut started = Started {
        listed: machine.processors.len(),
        online: percpu::online_count(),
        apic_mode: apic::mode(),
        failed: Vec::new(),
        beyond_limit: Vec::new(),
        timer_count_per_tick: 0,
    };
    if percpu::cpu(1).is_some() || kernel_root() == 0 {
        return Ok(started);
    }
    started.timer_count_per_tick = apic::calibrate_timer();
    let boot_apic_id = apic::id();
    if machine.processors.iter().all(|p| p.apic_id == boot_apic_id) {
        return Ok(started);
    }
    install_trampoline();
    let mut next_index = 1;
    for processor in machine
        .processors
        .iter()
        .filter(|p| p.apic_id != boot_apic_id)
    {
        let Some(cpu) = percpu::new_application_processor(next_index, processor.apic_id) else {
            started.beyond_limit.push(processor.apic_id);
            continue;
        };
        next_index += 1;
        if !start_one(cpu) {
            // Back to waiting for a start-up IPI, which it will not get
            // (so it cannot read the next CPU's parameters).
            apic::send_init(processor.apic_id);
            started.failed.push(processor.apic_id);
        }
    }
    started.online = percpu::online_count();
    Ok(started)
}

/// Why the boot CPU still takes the PIT and COM1 through the 8259 PIC.
#[derive(Debug)]
pub enum PicKept {
    /// The APIC timer was not measured (or did not count).
    NoTimer,
    /// COM1's interrupt could not be routed through an I/O APIC.
    NoRoute(ioapic::IoApicError),
}

/// Moves the boot CPU off the 8259 PIC: COM1's interrupt through the I/O
/// APIC (same vector), the boot CPU's own APIC timer (measured by
/// [`start_application_processors`], which runs first) as its tick and
/// the clock's, the PIC masked and LINT0 with it. Runs at boot after
/// [`ioapic::init`], interrupts off; on an error nothing changes.
pub fn retire_pic() -> Result<(), PicKept> {
    if !traps::pic_on() {
        return Ok(());
    }
    if !apic::timer_measured() {
        return Err(PicKept::NoTimer);
    }
    ioapic::route_isa_irq(
        traps::COM1_IRQ,
        (traps::IRQ_BASE + u64::from(traps::COM1_IRQ)) as u8,
    )
    .map_err(PicKept::NoRoute)?;
    traps::retire_pic();
    apic::mask_pic_input();
    apic::start_timer();
    Ok(())
}

/// Copies the trampoline to low memory and builds the start-up tables.
fn install_trampoline() {
    // Both symbols are labels of the assembly above, in the same section,
    // the end after the start; only their addresses are used.
    let start = core::ptr::addr_of!(ap_trampoline_start);
    let end = core::ptr::addr_of!(ap_trampoline_end);
    let length = end as usize - start as usize;
    assert!(length <= 4096, "the AP trampoline fits in its page");
    // SAFETY: `start..end` is the trampoline's code and data in the
    // kernel image (read only); the destination is the trampoline page and
    // the next three pages (AP_PML4..AP_PD), below 1 MiB: RAM the frame
    // allocator never hands out and nothing else uses after boot, mapped
    // by the direct map; only the boot CPU runs.
    unsafe {
        core::ptr::copy_nonoverlapping(start, phys_to_virt(TRAMPOLINE_BASE) as *mut u8, length);
        let pml4 = &mut *(phys_to_virt(AP_PML4) as *mut [u64; 512]);
        let pdpt = &mut *(phys_to_virt(AP_PDPT) as *mut [u64; 512]);
        let pd = &mut *(phys_to_virt(AP_PD) as *mut [u64; 512]);
        let kernel = &*(phys_to_virt(kernel_root()) as *const [u64; 512]);
        use paging::PageTableFlags as F;
        let table = (F::PRESENT | F::WRITABLE).bits();
        *pml4 = [0; 512];
        *pdpt = [0; 512];
        *pd = [0; 512];
        pml4[256..].copy_from_slice(&kernel[256..]);
        pml4[0] = AP_PDPT | table;
        pdpt[0] = AP_PD | table;
        // The first 2 MiB, identity mapped: the trampoline's own page.
        pd[0] = (F::PRESENT | F::WRITABLE | F::HUGE_PAGE).bits();
    }
    set_parameter(core::ptr::addr_of!(ap_cr3), AP_PML4);
    set_parameter(
        core::ptr::addr_of!(ap_rust_entry),
        ap_entry as *const () as u64,
    );
}

/// Writes the parameter whose label (in the linked trampoline) is
/// `label` into the copy in low memory.
fn set_parameter(label: *const u8, value: u64) {
    let offset = label as u64 - core::ptr::addr_of!(ap_trampoline_start) as u64;
    debug_assert!(offset + 8 <= 4096 && offset.is_multiple_of(8));
    // SAFETY: every label passed is one of the 8-byte aligned parameter
    // words inside the trampoline, whose copy lies in the trampoline page
    // (mapped by the direct map, used by nobody while the boot CPU
    // writes: no AP is between start-up and online).
    unsafe { core::ptr::write_volatile(phys_to_virt(TRAMPOLINE_BASE + offset) as *mut u64, value) };
}

#[repr(C, align(16))]
struct ApStack([u8; AP_STACK_SIZE]);

/// Starts one AP with INIT, start-up (and a second start-up when the
/// first was not taken), and waits for it to come online.
fn start_one(cpu: &'static PerCpu) -> bool {
    let layout = core::alloc::Layout::new::<ApStack>();
    // SAFETY: the layout is non-zero sized; a null result goes to
    // handle_alloc_error. The stack is never freed (the AP parks on it).
    let stack = unsafe {
        let ptr = alloc::alloc::alloc(layout);
        if ptr.is_null() {
            alloc::alloc::handle_alloc_error(layout);
        }
        ptr as u64
    };
    set_parameter(
        core::ptr::addr_of!(ap_stack_top),
        stack + AP_STACK_SIZE as u64,
    );
    set_parameter(
        core::ptr::addr_of!(ap_per_cpu),
        core::ptr::from_ref(cpu) as u64,
    );
    apic::send_init(cpu.apic_id());
    traps::wait_micros(INIT_WAIT_MICROS);
    apic::send_startup(cpu.apic_id(), TRAMPOLINE_PAGE);
    if traps::wait_micros_until(FIRST_STARTUP_WAIT_MICROS, || cpu.is_online()) {
        return true;
    }
    apic::send_startup(cpu.apic_id(), TRAMPOLINE_PAGE);
    traps::wait_micros_until(ONLINE_WAIT_MICROS, || cpu.is_online())
}

/// Where the trampoline lands, in long mode on the AP's own stack (still
/// on the start-up tables), with the AP's [`PerCpu`].
extern "C" fn ap_entry(cpu: *const PerCpu) -> ! {
    // SAFETY: the kernel's own root maps all the kernel, as the
    // trampoline's tables' kernel half does. (Not through
    // `activate_kernel_tables`, which records it in this CPU's `PerCpu`,
    // not yet installed.)
    unsafe { cpu::load_root(kernel_root()) };
    // SAFETY: the boot CPU wrote this pointer into the parameters: a
    // PerCpu leaked for this AP (lives for good, all fields atomic).
    let cpu: &'static PerCpu = unsafe { &*cpu };
    let tss = gdt::init_application_processor();
    percpu::install_application_processor(cpu, tss);
    traps::init_application_processor();
    apic::init_application_processor();
    cpu::protect_kernel_from_user_pages();
    percpu::mark_online();
    apic::start_timer();
    crate::process::run_other_cpu_scheduler()
}

/// A mailbox's flush request: the whole user half; else, from
/// `FLUSH_LIST_FROM`, the pages the CPU of index `request - FLUSH_LIST_FROM`
/// lists.
const FLUSH_ALL: u64 = 1;
const FLUSH_LIST_FROM: u64 = 2;

/// What other CPUs are asked to drop from their TLBs.
#[derive(Clone, Copy)]
pub enum RemoteFlush<'a> {
    /// These pages' translations (more than the list holds: all).
    Pages(&'a [u64]),
    /// Every user translation.
    All,
}

/// Flush requests sent to other CPUs (one IPI each), the single pages and
/// full flushes they asked for, and wake-up IPIs.
static FLUSH_IPIS: AtomicU64 = AtomicU64::new(0);
static REMOTE_PAGES: AtomicU64 = AtomicU64::new(0);
static REMOTE_FULL_FLUSHES: AtomicU64 = AtomicU64::new(0);
static WAKE_IPIS: AtomicU64 = AtomicU64::new(0);

/// The IPIs sent so far, by every CPU.
pub fn ipi_counts() -> IpiCounters {
    IpiCounters {
        tlb_shootdown_ipis: FLUSH_IPIS.load(Ordering::Relaxed),
        remote_page_invalidations: REMOTE_PAGES.load(Ordering::Relaxed),
        remote_full_flushes: REMOTE_FULL_FLUSHES.load(Ordering::Relaxed),
        wakeup_ipis: WAKE_IPIS.load(Ordering::Relaxed),
    }
}

/// Makes every other CPU that has the user table `root` loaded drop the
/// cached translations `flush` names, and waits until they have: one IPI
/// per such CPU, whatever the number of pages (none for no page). `cpus`
/// is the table's set of CPUs that may have it loaded (see
/// `UserPageTable`): only they are looked at, and a CPU of it found on
/// another table leaves it (the lazy trim; it can only load this one again
/// under the write side of the kernel lock, and the caller holds one side).
/// The caller has done its own CPU's.
pub fn flush_remote(root: u64, cpus: &AtomicU64, flush: RemoteFlush) {
    let me = percpu::current();
    let pages = match flush {
        RemoteFlush::Pages([]) => return,
        RemoteFlush::Pages(pages) if pages.len() <= percpu::FLUSH_LIST_CAPACITY => Some(pages),
        _ => None,
    };
    let others = cpus.load(Ordering::Acquire) & !(1 << me.index());
    if others == 0 {
        return;
    }
    let request = pages.map_or(FLUSH_ALL, |_| FLUSH_LIST_FROM + u64::from(me.index()));
    let mut asked = 0u64;
    for cpu in cpus_in(others) {
        if cpu.user_root.load(Ordering::Acquire) != root {
            cpus.fetch_and(!(1 << cpu.index()), Ordering::AcqRel);
            continue;
        }
        if asked == 0 {
            if let Some(pages) = pages {
                write_flush_list(me, pages);
            }
        }
        claim_flush_slot(cpu, request);
        apic::send_vector(cpu.apic_id(), apic::FLUSH_VECTOR);
        FLUSH_IPIS.fetch_add(1, Ordering::Relaxed);
        match pages {
            Some(pages) => REMOTE_PAGES.fetch_add(pages.len() as u64, Ordering::Relaxed),
            None => REMOTE_FULL_FLUSHES.fetch_add(1, Ordering::Relaxed),
        };
        asked |= 1 << cpu.index();
    }
    for cpu in cpus_in(asked) {
        while cpu.flush_request.load(Ordering::Acquire) != 0 {
            // Another CPU may be waiting for this one the same way.
            serve_flush_request();
            core::hint::spin_loop();
        }
    }
}

/// Puts `request` in `cpu`'s request slot once no other CPU's is there:
/// several CPUs may flush at once (`munmap`s made under the read side of
/// the kernel lock); each waits for the slot serving the requests made
/// of it meanwhile, as it waits for the flush itself.
fn claim_flush_slot(cpu: &PerCpu, request: u64) {
    while cpu
        .flush_request
        .compare_exchange(0, request, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        serve_flush_request();
        core::hint::spin_loop();
    }
}

/// The CPUs whose numbers are the bits of `set`.
fn cpus_in(set: u64) -> impl Iterator<Item = &'static PerCpu> {
    (0..percpu::MAX_CPUS)
        .filter(move |&i| set & (1 << i) != 0)
        .filter_map(percpu::cpu)
}

/// Fills this CPU's outgoing page list (at most its capacity) before any
/// CPU is asked to read it.
fn write_flush_list(me: &PerCpu, pages: &[u64]) {
    for (slot, &page) in me.flush_list.iter().zip(pages) {
        slot.store(page & !0xfff, Ordering::Relaxed);
    }
    me.flush_list_len
        .store(pages.len() as u64, Ordering::Release);
}

/// Makes the CPUs of `cpus` (bits by number) enter the kernel and ask,
/// on their way back to user mode, whether their thread must leave the
/// CPU (`process::leave_if_held`).
pub fn stop_cpus(cpus: u64) {
    for cpu in cpus_in(cpus) {
        cpu.stop_asked.store(true, Ordering::Release);
        apic::send_vector(cpu.apic_id(), apic::FLUSH_VECTOR);
    }
}

/// Interrupts the CPUs of `cpus` (one bit per CPU number) other than
/// this one that are halting for want of a thread: their scheduler looks
/// for one again (one was queued for them).
pub fn wake_cpus(cpus: u64) {
    let me = percpu::current().index();
    for cpu in (0..percpu::MAX_CPUS).map_while(percpu::cpu) {
        if cpus & (1 << cpu.index()) != 0 && cpu.index() != me && cpu.is_idle() {
            cpu.set_idle(false);
            apic::send_vector(cpu.apic_id(), apic::FLUSH_VECTOR);
            WAKE_IPIS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Does the TLB flush another CPU asked of this one, if any, and tells it
/// so.
pub fn serve_flush_request() {
    let me = percpu::current();
    let request = me.flush_request.load(Ordering::Acquire);
    if request == 0 {
        return;
    }
    let sender = request
        .checked_sub(FLUSH_LIST_FROM)
        .and_then(|index| percpu::cpu(index as usize));
    match sender {
        Some(sender) => {
            let len = sender.flush_list_len.load(Ordering::Acquire) as usize;
            for slot in sender.flush_list.iter().take(len) {
                cpu::invalidate_page(slot.load(Ordering::Relaxed));
            }
        }
        // SAFETY: reloading the loaded root keeps every mapping as it is
        // and drops the cached non-global translations.
        _ => unsafe { cpu::load_root(cpu::current_root()) },
    }
    me.flush_request.store(0, Ordering::Release);
}

/// How many times a CPU waiting for the kernel lock looks before it halts
/// until the lock is given back (a few microseconds on hardware).
const LOOKS_BEFORE_PARKING: u32 = 2000;
/// A waiter pauses (`pause`) once every this many looks: under an
/// emulator that runs its CPUs in turn, `pause` lets the next one run;
/// under one that runs them as host threads it is a trip through the
/// emulator's global lock, so not every look.
const LOOKS_PER_PAUSE: u32 = 64;
/// How many halts a waiter goes through (each ended when the lock was
/// given back, then taken by another CPU first) before it asks that the
/// lock be kept for it.
const PARKS_BEFORE_HANDOFF: u32 = 4;

/// The [`LockGate`]'s word: whether it is held, how many CPUs halt waiting
/// for it, and which CPU (its number plus one; 0: none) asked for it to be
/// kept for it. The free paths change it only when it is exactly free or
/// exactly held, so a halted or asking CPU always sends the others to the
/// slow paths.
const HELD: u64 = 1;
const PARKED_ONE: u64 = 2;
const PARKED_MASK: u64 = 0xfe;
const ASKING_SHIFT: u32 = 8;
const ASKING_MASK: u64 = !0xff;

/// The gate in front of the kernel lock: taken by whichever CPU finds it
/// free; a CPU that has looked a while halts until it is given back, and a
/// CPU passed over several times has it kept for it (the others wait).
/// One word holds it all, so taking and giving back a gate that nobody
/// waits for is one compare-and-swap each.
///
/// Why not turns in arrival order (a ticket lock, as before): under an
/// emulator whose CPUs are host threads on fewer host cores, the CPU
/// whose turn comes next may not be running on the host, and every turn
/// waited for the host to schedule that one CPU (4 CPUs on 2 cores: 270
/// sections a second spinning, 15,000 with waiters halting, each turn an
/// interrupt to wake the next); a gate that any running CPU may take
/// needs no wake-up while some CPU that wants it runs (a program mapping
/// 131,066 pages while 8 others yield in a loop on 4 CPUs: 1.8 s, against
/// 41 s with halting turns; docs/design.md, "CPUs"). Waiters halt
/// (interrupts on: TLB flush requests are served in the interrupt as
/// ever), so they leave the host cores to the CPUs that work. The handing
/// over bounds the unfairness: a CPU that gives the lock back and asks
/// again at once (a scheduler loop, a call stepped with yields) cannot
/// keep a waiter out for long.
pub struct LockGate {
    state: AtomicU64,
}

impl Default for LockGate {
    fn default() -> Self {
        Self::new()
    }
}

impl LockGate {
    pub const fn new() -> Self {
        LockGate {
            state: AtomicU64::new(0),
        }
    }

    /// Returns once this CPU holds the gate (interrupts off on entry and
    /// on return). Serves the TLB flushes other CPUs ask of this one
    /// meanwhile: the holder may be waiting for exactly that.
    #[inline]
    pub fn enter(&self) {
        if self
            .state
            .compare_exchange(0, HELD, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.enter_contended();
        }
    }

    /// Whether no CPU holds the gate or asks for it (the read side of the
    /// kernel lock steps aside otherwise: writers first).
    #[inline]
    pub fn is_free(&self) -> bool {
        self.state.load(Ordering::Acquire) & (HELD | ASKING_MASK) == 0
    }

    /// Takes the gate if no CPU holds it now (whoever asked for it): the
    /// NMI report's look, which must not wait.
    pub fn try_enter(&self) -> bool {
        let state = self.state.load(Ordering::Relaxed);
        state & HELD == 0
            && self
                .state
                .compare_exchange(state, state | HELD, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// [`Self::enter`] when the gate was held, or CPUs halt or ask for it.
    #[cold]
    #[inline(never)]
    fn enter_contended(&self) {
        let me = percpu::current();
        let mine = (u64::from(me.index()) + 1) << ASKING_SHIFT;
        let (mut looks, mut parks) = (0u32, 0u32);
        loop {
            let state = self.state.load(Ordering::Acquire);
            let asking = state & ASKING_MASK;
            if state & HELD == 0 && (asking == 0 || asking == mine) {
                // Taken, and this CPU's request (if it was one) withdrawn.
                let taken = (state | HELD) & !(asking & mine);
                if self
                    .state
                    .compare_exchange(state, taken, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
                continue;
            }
            serve_flush_request();
            looks += 1;
            if looks % LOOKS_PER_PAUSE == 0 {
                core::hint::spin_loop();
            }
            if looks < LOOKS_BEFORE_PARKING {
                continue;
            }
            looks = 0;
            parks += 1;
            if parks >= PARKS_BEFORE_HANDOFF && asking == 0 {
                let _ = self.state.compare_exchange(
                    state,
                    state | mine,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                );
            }
            self.park(me, mine);
        }
    }

    /// Halts until an interrupt unless the gate may be taken by this CPU.
    /// The halt is counted in the word before the last look, so the
    /// holder's give-back goes the slow way and wakes a halted CPU (an
    /// interrupt sent between the look and the halt waits for `sti` and
    /// ends the halt).
    fn park(&self, me: &PerCpu, mine: u64) {
        me.lock_parked.store(true, Ordering::SeqCst);
        let state = self.state.fetch_add(PARKED_ONE, Ordering::SeqCst);
        let asking = state & ASKING_MASK;
        if state & HELD != 0 || (asking != 0 && asking != mine) {
            me.count_lock_park();
            cpu::wait_for_interrupt();
        }
        self.state.fetch_sub(PARKED_ONE, Ordering::SeqCst);
        me.lock_parked.store(false, Ordering::SeqCst);
    }

    /// Gives the gate back.
    #[inline]
    pub fn leave(&self) {
        if self
            .state
            .compare_exchange(HELD, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.leave_contended();
        }
    }

    /// [`Self::leave`] when CPUs halt or one asked for the gate: freed,
    /// and the asking CPU woken if it halts, else one halted CPU.
    #[cold]
    #[inline(never)]
    fn leave_contended(&self) {
        let state = self.state.fetch_and(!HELD, Ordering::SeqCst);
        let asking = (state & ASKING_MASK) >> ASKING_SHIFT;
        let asking_cpu = asking.checked_sub(1).and_then(|i| percpu::cpu(i as usize));
        match asking_cpu {
            Some(cpu) if cpu.lock_parked.load(Ordering::SeqCst) => {
                apic::send_vector(cpu.apic_id(), apic::FLUSH_VECTOR);
            }
            None if state & PARKED_MASK != 0 => wake_one_parked(),
            _ => {}
        }
    }
}

/// Interrupts one CPU that halts waiting for the kernel lock (the first
/// after this one in number order), if one does.
#[cold]
fn wake_one_parked() {
    let me = percpu::current().index() as usize;
    let cpus = || (0..percpu::MAX_CPUS).map_while(percpu::cpu);
    let parked = cpus()
        .skip(me + 1)
        .chain(cpus().take(me))
        .find(|cpu| cpu.lock_parked.load(Ordering::SeqCst));
    if let Some(cpu) = parked {
        apic::send_vector(cpu.apic_id(), apic::FLUSH_VECTOR);
    }
}
