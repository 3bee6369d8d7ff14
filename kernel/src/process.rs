//! The scheduler and the machine under the kernel logic. Owns the one
//! [`Kernel`] (from `neoos-kernel-core`) behind a lock, the [`Platform`]
//! that supplies it with page tables, frames, kernel stacks and the console,
//! and the switching between processes.
//!
//! Every CPU runs a scheduler loop (the boot CPU on the boot stack, the
//! others on their start-up stacks): it picks a ready thread (from its own
//! run queue first, else stealing from another CPU's), switches to
//! its kernel stack and its process's address space, and gets control back
//! when the thread yields, blocks, is preempted or ends; then it loads the
//! kernel's own tables, so that a CPU has a process's table loaded only
//! while it runs one of its threads. A thread never holds the kernel lock
//! across a switch. Threads with a futex deadline are readied by the
//! scheduler loop once the clock has reached it. The boot CPU alone
//! launches programs and ends the machine once every program has ended;
//! the clock's work (its step, the writeback) is done by whichever CPU's
//! loop or timer tick comes first.
//!
//! The kernel lock: every section says its CPU to the process table first
//! (`set_cpu`), and a CPU waiting for the lock serves the TLB flushes
//! other CPUs ask of it meanwhile (`smp::serve_flush_request`, or in the
//! interrupt once it halts: `smp::LockGate`): the holder may be waiting
//! for exactly that. The lock is a reader-writer lock: every section above
//! holds it for writing (one at a time, through the gate); a page fault's
//! first touch of a private page holds it for reading
//! ([`resolve_fault_shared`]), so such faults run on several CPUs at once.
//! A reader never waits: it reads only when the gate is free and the lock
//! can be had at once, else it takes the writing way (so a writer waits
//! only for the readers already in, each a few hundred instructions), and
//! it waits for nothing (no flush, no disk) while it reads.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use spin::RwLock;

use neoos_kernel_core::fs::FileSystem;
use neoos_kernel_core::launch::LaunchEntry;
use neoos_kernel_core::platform::{CopyCounters, IpiCounters};
use neoos_kernel_core::{Kernel, Platform};
use neoos_mm::Access;

use crate::arch::context::{self, KernelStack, MAX_SLOTS};
use crate::arch::traps::TrapFrame;
use crate::arch::{cpu, heap, paging, percpu, serial, smp};
use crate::memory::{HardwarePageTable, KernelFrames};

/// Kernel heap kept for the kernel's own work (exits, faults, writeback):
/// below it, calls that grow kernel data fail as out of memory instead of
/// running the heap dry. A sixth of the heap: 16 MiB of the 96 MiB heap of
/// a 512 MiB machine, 2 MiB of a 64 MiB machine's 12 MiB.
fn heap_reserve() -> usize {
    heap::size() / 6
}

/// A thread's kernel-side context: its switch slot and kernel stack.
pub struct ProcessContext {
    slot: usize,
    /// Held, never read: the slot is runnable only while its stack lives,
    /// and dropping the context frees it.
    _stack: KernelStack,
}

/// The x86_64 machine under the kernel logic.
pub struct KernelPlatform {
    frames: KernelFrames,
    free_slots: Vec<usize>,
}

impl KernelPlatform {
    fn new() -> Self {
        KernelPlatform {
            frames: KernelFrames::new(),
            free_slots: (0..MAX_SLOTS).rev().collect(),
        }
    }
}

impl Platform for KernelPlatform {
    type PageTable = HardwarePageTable;
    type Frames = KernelFrames;
    type UserFrame = TrapFrame;
    type Context = ProcessContext;

    fn frames(&mut self) -> &mut KernelFrames {
        &mut self.frames
    }
    fn new_page_table(&mut self) -> Option<HardwarePageTable> {
        HardwarePageTable::new()
    }
    fn free_page_table(&mut self, table: HardwarePageTable) {
        table.destroy();
    }
    fn user_frame(&self, entry: u64, stack: u64) -> TrapFrame {
        TrapFrame::new_user(entry, stack)
    }
    fn new_context(&mut self, frame: &TrapFrame) -> Option<ProcessContext> {
        let slot = self.free_slots.pop()?;
        let Some(stack) = KernelStack::new_for_user(slot, frame) else {
            self.free_slots.push(slot);
            return None;
        };
        Some(ProcessContext {
            slot,
            _stack: stack,
        })
    }
    fn free_context(&mut self, context: ProcessContext) {
        self.free_slots.push(context.slot);
    }
    fn report(&mut self, line: fmt::Arguments) {
        kprintln!("{}", line);
    }
    fn ticks(&self) -> u64 {
        crate::clock::ticks()
    }
    fn frame_counts(&self) -> (u64, u64) {
        crate::frames::counts()
    }
    fn ipi_counters(&self) -> IpiCounters {
        smp::ipi_counts()
    }
    fn cpus_online(&self) -> u32 {
        percpu::online_count()
    }
    fn shared_frames(&self) -> Option<&dyn neoos_mm::SharedFrames> {
        Some(&self.frames)
    }
    fn faults_at_once(&self) -> u64 {
        FAULTS_AT_ONCE.load(Ordering::Relaxed)
    }
    fn copy_counters(&self) -> CopyCounters {
        let (taken, dropped) = crate::arch::frames::copy_counts();
        CopyCounters { taken, dropped }
    }
    fn console_write(&mut self, bytes: &[u8]) {
        serial::write_bytes(bytes);
    }
    fn console_read(&mut self) -> Option<u8> {
        serial::try_read()
    }
    fn heap_room(&self) -> usize {
        heap::free_bytes().saturating_sub(heap_reserve())
    }
    fn set_user_fs_base(&mut self, base: u64) {
        cpu::set_fs_base(base);
    }
    fn random_u64(&mut self) -> u64 {
        cpu::random_u64()
    }
    fn signal_pending(&mut self) {
        crate::signal::note_pending();
    }
    fn hwcap(&self) -> u64 {
        cpu::hwcap()
    }
}

static KERNEL: RwLock<Option<Kernel<KernelPlatform>>> = RwLock::new(None);
/// The gate in front of [`KERNEL`] (so the mutex itself never waits): a
/// long wait halts, and a CPU passed over several times has the lock
/// handed to it (`smp::LockGate`).
static GATE: smp::LockGate = smp::LockGate::new();
/// Whether, at the end of the last lock section, a ready thread waited
/// that no CPU is on, and the tick at which the clock's work is next due:
/// without either, a timer tick preempts nothing and takes no lock (a
/// thread spinning in user mode is not held up by another CPU's long lock
/// sections).
static OTHERS_WAIT: AtomicBool = AtomicBool::new(false);
static TIME_WORK_AT: AtomicU64 = AtomicU64::new(0);
/// Set once [`init`] has made the kernel state (the other CPUs wait).
static KERNEL_READY: AtomicBool = AtomicBool::new(false);
/// Whether faults try the read side of the kernel lock first (several CPUs
/// online: with one, nothing could run beside a fault).
static SHARED_FAULTS: AtomicBool = AtomicBool::new(false);
/// Faults resolved under the read side that found another reader in
/// (`/proc/meminfo`'s `FaultsAtOnce`: they ran in parallel).
static FAULTS_AT_ONCE: AtomicU64 = AtomicU64::new(0);

/// Sets up the kernel state with file system `fs` and the programs to launch.
pub fn init(fs: FileSystem, launch: VecDeque<LaunchEntry>) {
    let mut kernel = Kernel::new(KernelPlatform::new(), fs, launch);
    // With one CPU no one runs while a copy is made: copy under the lock.
    let several = percpu::online_count() > 1;
    kernel.set_copies_deferred(several);
    SHARED_FAULTS.store(several, Ordering::Relaxed);
    *KERNEL.write() = Some(kernel);
    KERNEL_READY.store(true, Ordering::Release);
}

/// The NMI state report's part about threads, printed by the first CPU
/// that finds the kernel lock free (none when some CPU holds either side:
/// its own rip says where), once a boot: each CPU's thread and queue, each
/// thread's state. Taken as a writer would, so that no fault is under way
/// on the read side either: the interrupted CPU may be one, holding the
/// heap's lock, which the report's allocations would then wait for.
pub fn report_threads_if_unlocked(cpu: usize) {
    static REPORTED: AtomicBool = AtomicBool::new(false);
    let Some(guard) = KERNEL.try_write() else {
        return;
    };
    if REPORTED.swap(true, Ordering::Relaxed) {
        return; // once a boot: the other CPUs' reports would repeat it
    }
    let Some(k) = guard.as_ref() else {
        return;
    };
    let say = crate::arch::serial::write_fmt_if_free;
    say(format_args!(
        "[neoos] nmi: cpu {cpu} took the free kernel lock; clock {}\n",
        crate::clock::ticks()
    ));
    let table = k.processes();
    for c in 0..percpu::online_count() as usize {
        let queued: alloc::vec::Vec<_> = table.queued_on(c).collect();
        say(format_args!(
            "[neoos] nmi:   cpu {c}: on {:?}, queue {queued:?}\n",
            table.running_on(c)
        ));
    }
    for (tid, pid, state, woken, last_cpu) in table.thread_states() {
        say(format_args!(
            "[neoos] nmi:   thread {tid} of {pid}: {state:?}, woken {woken}, last cpu {last_cpu}\n"
        ));
    }
}

/// Runs `f` on the kernel state.
#[inline]
pub fn with_kernel<R>(f: impl FnOnce(&mut Kernel<KernelPlatform>) -> R) -> R {
    GATE.enter();
    let result = {
        let mut guard = write_kernel();
        let k = guard.as_mut().expect("kernel state is set up at boot");
        // Before the CPU is noted: after, the flag's load made the
        // compiler read the CPU back and check it again.
        k.finish_shared_work();
        k.processes_mut()
            .set_cpu(percpu::current().index() as usize);
        let result = f(k);
        let wake = k.processes_mut().take_cpus_to_wake();
        if wake != 0 {
            smp::wake_cpus(wake);
        }
        OTHERS_WAIT.store(k.processes().others_wait_anywhere(), Ordering::Relaxed);
        crate::signal::recheck_pending(|| k.processes().signal_work_anywhere());
        TIME_WORK_AT.store(k.next_time_work(), Ordering::Relaxed);
        result
    };
    GATE.leave();
    result
}

/// The write side of the kernel lock, for the holder of the gate: it waits
/// only for the readers already in, serving the TLB flushes they ask of
/// this CPU meanwhile (a `munmap` made under the read side waits for them).
/// The guard always comes from the inline `try_write`: one the wait
/// returned would hide from the compiler that it points at [`KERNEL`], and
/// every section would reach the kernel state through a register.
#[inline]
fn write_kernel() -> KernelWriteGuard {
    loop {
        if let Some(guard) = KERNEL.try_write() {
            return guard;
        }
        wait_for_readers();
    }
}

type KernelWriteGuard = spin::RwLockWriteGuard<'static, Option<Kernel<KernelPlatform>>>;

/// One step of [`write_kernel`]'s wait while readers are in.
#[cold]
#[inline(never)]
fn wait_for_readers() {
    smp::serve_flush_request();
    core::hint::spin_loop();
}

/// The boot CPU's scheduler loop: runs until every program has ended and
/// none is left to launch.
pub fn run_scheduler() {
    while let Some(next) = with_kernel(|k| {
        leave_thread(k);
        keep_time(k);
        if k.processes().is_empty() {
            k.launch_next();
        }
        let next = pick_and_enter(k);
        let done = next.is_none() && k.processes().is_empty() && k.nothing_to_launch();
        if done {
            // What the last programs left for the flusher reaches the disk.
            k.release_kept_now();
        }
        (!done).then_some(next)
    }) {
        run_or_idle(next);
    }
}

/// Another CPU's scheduler loop, for good (once the boot CPU has set up
/// the kernel state).
pub fn run_other_cpu_scheduler() -> ! {
    while !KERNEL_READY.load(Ordering::Acquire) {
        cpu::wait_for_interrupt();
    }
    loop {
        let next = with_kernel(|k| {
            leave_thread(k);
            keep_time(k);
            pick_and_enter(k)
        });
        run_or_idle(next);
    }
}

/// The clock's work (on whichever CPU comes first): the writeback when
/// due, the clock's step (timers, sleepers), and the threads whose futex
/// deadline has passed readied.
fn keep_time(k: &mut Kernel<KernelPlatform>) {
    k.flush_if_due();
    k.clock_step();
    k.processes_mut().wake_expired(crate::clock::ticks());
    crate::arch::virtio::take_completion_note();
    k.disk_step();
}

/// Picks a thread for this CPU and loads its address space and FS base:
/// its context slot.
fn pick_and_enter(k: &mut Kernel<KernelPlatform>) -> Option<usize> {
    let Some(tid) = k.processes_mut().pick_next() else {
        // Marked under the lock: a CPU that readies a thread after this
        // section sees it and interrupts this one, whose halt then ends
        // at once (the interrupt waits for `sti`).
        percpu::current().set_idle(true);
        return None;
    };
    let t = k.processes().thread(tid)?;
    let p = k.processes().get(t.pid)?;
    let (context, table) = (t.context.as_ref()?, p.table.as_ref()?);
    table.activate();
    cpu::set_fs_base(t.part.fs_base);
    Some(context.slot)
}

/// Runs the thread of context slot `next` until it comes back (then
/// leaves its address space; the next lock section of the loop,
/// [`leave_thread`], takes it), or halts until an interrupt when there is
/// none: a CPU that gives an idle one a thread interrupts it
/// (`smp::wake_cpus`).
fn run_or_idle(next: Option<usize>) {
    let Some(slot) = next else {
        idle_until_interrupt();
        percpu::current().set_idle(false);
        return;
    };
    context::run_slot(slot);
    paging::activate_kernel_tables();
}

/// Halts until an interrupt. With `idle=poll` (the benchmark's disk
/// boots) it spins instead, until the disk completes something or this
/// CPU's timer ticks: under `-icount sleep=off` a halted machine's clock
/// jumps to its next timer, which would count a thread's wait for the disk
/// as up to a tick of instructions.
fn idle_until_interrupt() {
    if !crate::arch::virtio::waits_poll() {
        cpu::wait_for_interrupt();
        return;
    }
    let this = percpu::current();
    let ticks = this.timer_ticks();
    cpu::spin_with_interrupts_until(|| {
        crate::arch::virtio::completion_noted() || this.timer_ticks() != ticks
    });
}

/// In the scheduler loop's section after a thread came back: this CPU no
/// longer runs it (another may take it from now on), and what it left if
/// it ended is freed. In the same section as the next pick, so that no
/// section ends with the thread ready but its CPU between two.
fn leave_thread(k: &mut Kernel<KernelPlatform>) {
    if let Some(tid) = k.processes_mut().take_current() {
        k.release_after_switch(tid);
    }
}

/// Gives the CPU back to the scheduler from the running thread; returns
/// when the thread is scheduled again.
fn switch_to_scheduler() {
    let slot = with_kernel(|k| {
        let tid = k.processes().current_thread()?;
        k.processes().thread(tid)?.context.as_ref().map(|c| c.slot)
    });
    if let Some(slot) = slot {
        context::return_to_scheduler(slot);
    }
}

/// Blocks the running thread by `block` and gives the CPU away, in one
/// lock section: unless the block did not take (a wake-up or a signal came
/// first), when it goes on at once.
fn block_and_switch(block: impl FnOnce(&mut Kernel<KernelPlatform>)) {
    let slot = with_kernel(|k| {
        block(k);
        switch_slot(k)
    });
    if let Some(slot) = slot {
        context::return_to_scheduler(slot);
    }
}

/// The context slot of the running thread when it must leave the CPU (it
/// no longer runs: it blocked, yielded or ended).
fn switch_slot(k: &Kernel<KernelPlatform>) -> Option<usize> {
    if k.processes().current_runs() {
        return None;
    }
    let tid = k.processes().current_thread()?;
    k.processes().thread(tid)?.context.as_ref().map(|c| c.slot)
}

/// After a futex wait was entered (and the thread blocked with it, in the
/// same section): gives the CPU away unless a wake-up or a signal came
/// first.
pub fn switch_if_blocked() {
    block_and_switch(|_| {});
}

/// The running thread gives up the CPU but stays ready.
pub fn yield_now() {
    block_and_switch(|k| k.processes_mut().yield_current());
}

/// The timer fired while a thread ran: it gives the CPU away if another
/// thread could have it (else it goes on, with no more lock sections).
pub fn preempt() {
    if !OTHERS_WAIT.load(Ordering::Relaxed)
        && crate::clock::ticks() < TIME_WORK_AT.load(Ordering::Relaxed)
        && !crate::arch::virtio::completion_noted()
    {
        return;
    }
    block_and_switch(|k| {
        keep_time(k);
        k.processes_mut().preempt_current();
    });
}

/// Runs `step` in a lock section until it gives a result: each time it
/// gives none, the running thread waits for the disk (blocked in that
/// section, so no completion can slip in between) and gives the CPU away;
/// the clock's work readies it once the disk has no write in flight.
pub fn step_waiting_for_disk<R>(
    mut step: impl FnMut(&mut Kernel<KernelPlatform>) -> Option<R>,
) -> R {
    loop {
        let (result, slot) = with_kernel(|k| {
            let result = step(k);
            if result.is_some() {
                return (result, None);
            }
            k.processes_mut().block_current_for_disk();
            (result, switch_slot(k))
        });
        if let Some(result) = result {
            return result;
        }
        match slot {
            Some(slot) => context::return_to_scheduler(slot),
            None => yield_now(),
        }
    }
}

/// The disk's interrupt came while a thread ran in user mode: a thread
/// waiting for the disk may be ready now. It is readied (an idle CPU that
/// may run it is interrupted, as for any readying), but the running
/// thread keeps its CPU until its tick: it is not the waiter's to take.
pub fn disk_interrupt() {
    if crate::arch::virtio::completion_noted() {
        with_kernel(keep_time);
    }
}

/// The running thread blocks until a child of its process ends.
pub fn block_for_child() {
    block_and_switch(|k| k.processes_mut().block_current_for_child());
}

/// The running thread waits for thread `target` of its process to end.
pub fn block_for_join(target: neoos_kernel_core::Tid) {
    block_and_switch(|k| k.processes_mut().block_current_for_join(target));
}

/// The running thread sleeps until the clock reaches `until` ticks or a
/// signal wakes it (the clock's step, or the sender, makes it ready).
pub fn sleep_until(until: u64) {
    block_and_switch(|k| k.processes_mut().block_current_sleeping(until));
}

/// Holds the other threads of the running process off the CPUs and
/// returns once no CPU is on one (before an `exit_group` or `execve` takes
/// them and the space apart): the CPUs on one are interrupted, and each
/// such thread yields on its way back to user mode ([`leave_if_held`]).
/// When another thread holds this one already, this one leaves its CPU
/// and waits (it goes on only if that thread's `execve` fails).
pub fn stop_other_threads() {
    use neoos_kernel_core::process::StopAsked;
    loop {
        let asked = with_kernel(|k| {
            let (pid, tid) = (k.processes().current()?, k.processes().current_thread()?);
            Some((pid, tid, k.processes_mut().stop_others(pid, tid)))
        });
        match asked {
            None => return,
            Some((_, _, StopAsked::Held)) => yield_now(),
            Some((pid, tid, StopAsked::Cpus(cpus))) => {
                smp::stop_cpus(cpus);
                while with_kernel(|k| k.processes().others_on_cpus(pid, tid)) {
                    yield_now();
                }
                return;
            }
        }
    }
}

/// On the way back to user mode: when a sibling holds the running thread
/// off the CPUs ([`stop_other_threads`] asked this CPU), it yields until
/// the hold ends (or for good: its process ends or execs meanwhile).
#[inline]
pub fn leave_if_held() {
    if percpu::current().take_stop_request() {
        wait_while_held();
    }
}

/// [`leave_if_held`] once a sibling asked: out of line, rare.
#[cold]
#[inline(never)]
fn wait_while_held() {
    while with_kernel(|k| k.processes().current_held()) {
        yield_now();
    }
}

/// Ends the running process with `status`, every thread of it (Linux
/// `exit_group`, a fatal signal or fault), and never returns.
pub fn exit_current(status: i64) -> ! {
    // The other threads go first, so none runs while the space goes.
    stop_other_threads();
    with_kernel(|k| {
        if let (Some(pid), Some(tid)) = (k.processes().current(), k.processes().current_thread()) {
            k.end_other_threads(pid, tid);
        }
    });
    // The address space goes in bounded steps, the others running between
    // them; what is left to `end` is then small.
    while !with_kernel(|k| k.processes().current().is_none_or(|pid| k.exit_step(pid))) {
        yield_now();
    }
    with_kernel(|k| {
        if let Some(pid) = k.processes().current() {
            k.end(pid, status);
        }
    });
    switch_to_scheduler();
    unreachable!("an ended process is never scheduled again");
}

/// Ends the running thread only (Linux `exit`, `sys_thread_exit`); the
/// last thread's end is its process's, with `status`.
pub fn exit_thread(status: i64) -> ! {
    let ended = with_kernel(|k| {
        k.processes()
            .current_thread()
            .is_some_and(|tid| k.end_thread(tid, status))
    });
    if !ended {
        exit_current(status);
    }
    switch_to_scheduler();
    unreachable!("an ended thread is never scheduled again");
}

/// Resolves a user page fault through the mapping core; one it cannot
/// resolve becomes a signal to a Linux program's handler (SIGSEGV,
/// SIGBUS with the address), or ends the process with the kernel's report.
pub fn resolve_fault(frame: &mut TrapFrame, address: u64, access: Access) {
    // The zeroing of a zero-fill's frame, done before the lock is taken.
    crate::arch::frames::prepare_zeroed_frame();
    if SHARED_FAULTS.load(Ordering::Relaxed) && resolve_fault_shared(address, access) {
        return;
    }
    let outcome = with_kernel(|k| {
        let pid = k.processes().current()?;
        let fatal = k.resolve_fault(pid, address, access).err()?;
        if fatal.waits_for_copy() {
            note_copy_source(k);
        }
        Some((pid, k.path_of(pid), fatal))
    });
    if let Some((pid, path, fatal)) = outcome {
        fault_not_resolved(frame, address, access, pid, path, fatal);
    }
}

/// The fault at `address` resolved under the read side of the kernel lock
/// (`Kernel::resolve_fault_shared`: a fault that only fills an empty
/// entry), when
/// no CPU holds or waits at the gate and the lock can be had at once;
/// `false`: nothing changed, the fault goes the writing way.
fn resolve_fault_shared(address: u64, access: Access) -> bool {
    if !GATE.is_free() {
        return false;
    }
    let Some(guard) = KERNEL.try_read() else {
        return false;
    };
    let Some(k) = guard.as_ref() else {
        return false;
    };
    let at_once = KERNEL.reader_count() > 1;
    let cpu = percpu::current().index() as usize;
    let resolved = k.resolve_fault_shared(cpu, address, access);
    if resolved && at_once {
        FAULTS_AT_ONCE.fetch_add(1, Ordering::Relaxed);
    }
    resolved
}

/// The system call in `frame` made under the read side of the kernel lock
/// (`Kernel::system_call_shared`: the mapping calls and `brk` it takes),
/// as [`resolve_fault_shared`] makes faults:
/// `true` when made (its return value in `rax`), `false` with nothing
/// changed (the call goes the writing way). With one CPU this is one
/// load of a flag: the number and arguments are read out of line.
#[inline]
pub fn system_call_shared(frame: &mut TrapFrame) -> bool {
    SHARED_FAULTS.load(Ordering::Relaxed) && system_call_shared_now(frame)
}

/// Cold: so the entry keeps `frame` where it had it on the way past (one
/// CPU never comes here); without it the entry copied `frame` to another
/// register before the flag's test, 2 instructions a call.
#[cold]
#[inline(never)]
fn system_call_shared_now(frame: &mut TrapFrame) -> bool {
    let number = frame.rax as usize;
    if !neoos_kernel_core::syscall::may_run_shared(number) || !GATE.is_free() {
        return false;
    }
    let Some(guard) = KERNEL.try_read() else {
        return false;
    };
    let Some(k) = guard.as_ref() else {
        return false;
    };
    let regs = [
        frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
    ];
    let cpu = percpu::current().index() as usize;
    let Some(rax) = k.system_call_shared(cpu, number, regs) else {
        return false;
    };
    frame.rax = rax as u64;
    true
}

/// Notes, for this CPU, the frame the fault's first attempt left to be
/// copied outside the kernel lock, with the count of frames given back by
/// now (under the lock: the frame is the page's at this count).
#[cold]
#[inline(never)]
fn note_copy_source(k: &mut Kernel<KernelPlatform>) {
    let src = k.copy_waited_for().map_or(0, |frame| frame.0);
    crate::arch::frames::note_copy_source(src);
}

/// A fault the first attempt did not resolve: one whose page is to be
/// copied (a copy-on-write break) has the copy made here, with no lock
/// held, and faults again; one whose page is to be read from the disk
/// faults again, starting the read and waiting for it without the kernel
/// lock, then faulting again once it is in (`neoos_kernel_core::disk_wait`);
/// a fault that ends goes to [`end_for_fault`].
#[cold]
#[inline(never)]
fn fault_not_resolved(
    frame: &mut TrapFrame,
    address: u64,
    access: Access,
    pid: neoos_kernel_core::Pid,
    path: alloc::string::String,
    fatal: neoos_kernel_core::FatalFault,
) {
    let ended = if fatal.waits_for_read() || fatal.waits_for_copy() {
        if fatal.waits_for_copy() {
            crate::arch::frames::prepare_copy();
        }
        step_waiting_for_disk(|k| {
            let (Some(pid), Some(tid)) = (k.processes().current(), k.processes().current_thread())
            else {
                crate::arch::frames::drop_prepared_copy();
                return Some(None);
            };
            let step = k.resolve_fault_step(pid, tid, address, access);
            // Taken by the attempt, or of no more use (this CPU may run
            // another thread next).
            crate::arch::frames::drop_prepared_copy();
            let fatal = step?.err();
            Some(fatal.map(|fatal| (pid, k.path_of(pid), fatal)))
        })
    } else {
        Some((pid, path, fatal))
    };
    if let Some((pid, path, fatal)) = ended {
        end_for_fault(frame, address, access, pid, path, fatal);
    }
}

/// A fault the mapping core could not resolve: the signal to the
/// program's handler, else the end of the process with the kernel's
/// report. Out of line and cold: the resolved fault carries none of it.
#[cold]
#[inline(never)]
fn end_for_fault(
    frame: &mut TrapFrame,
    address: u64,
    access: Access,
    pid: neoos_kernel_core::Pid,
    path: alloc::string::String,
    fatal: neoos_kernel_core::FatalFault,
) {
    let mut status = fatal.status;
    if let Some((signo, code)) = fatal.signal {
        use neoos_kernel_core::linux::signals::{SigInfo, SignalOutcome, TrapInfo};
        let info = SigInfo {
            signo,
            code,
            addr_or_pid: address,
            status: 0,
        };
        let trap = TrapInfo {
            trapno: crate::arch::traps::PAGE_FAULT,
            error: frame.error,
            cr2: address,
        };
        match crate::signal::deliver(frame, info, trap, true) {
            SignalOutcome::Continue => return,
            SignalOutcome::Kill(sig) => status = neoos_kernel_core::linux::killed_by(sig),
            SignalOutcome::Nothing => {}
        }
    }
    let kind = match access {
        Access::Read => "read",
        Access::Write => "write",
        Access::Exec => "execute",
    };
    kprintln!(
        "{} (pid {}): {} at {:#x} ({} access, {})",
        path,
        pid,
        fatal.what,
        address,
        kind,
        fatal.reason
    );
    exit_current(status);
}

/// Ends the running process for a CPU exception other than a page fault.
pub fn end_current_for_exception(vector: u64, rip: u64) {
    let (pid, path) = with_kernel(|k| {
        let pid = k.processes().current().unwrap_or(0);
        (pid, k.path_of(pid))
    });
    kprintln!(
        "{} (pid {}): killed by CPU exception {} at {:#x}",
        path,
        pid,
        vector,
        rip
    );
    exit_current(neoos_abi::status::CRASHED);
}
