//! What the kernel logic needs from the machine, supplied by the kernel (or
//! by a test double on the host): page tables, frames, execution contexts,
//! the console, the clock, and the kernel's own memory.

use core::fmt;

use neoos_mm::{FrameSource, PageTable};

/// The machine under the kernel logic.
pub trait Platform {
    /// A process's page table.
    type PageTable: PageTable;
    /// Physical frames.
    type Frames: FrameSource;
    /// The registers a process enters user mode with.
    type UserFrame;
    /// What it takes to run a process (its kernel stack, saved registers).
    type Context;

    /// The frame source.
    fn frames(&mut self) -> &mut Self::Frames;
    /// A new page table with an empty user half, or `None` without memory.
    fn new_page_table(&mut self) -> Option<Self::PageTable>;
    /// Frees a page table that no CPU uses any more (its own frames only).
    fn free_page_table(&mut self, table: Self::PageTable);
    /// The registers that enter a program at `entry` with stack `stack`.
    fn user_frame(&self, entry: u64, stack: u64) -> Self::UserFrame;
    /// A context whose first run enters user mode with `frame`, or `None`
    /// when no more processes fit.
    fn new_context(&mut self, frame: &Self::UserFrame) -> Option<Self::Context>;
    /// Frees a context nothing runs on any more.
    fn free_context(&mut self, context: Self::Context);
    /// Writes one line of kernel report (the host tool reads some of them).
    fn report(&mut self, line: fmt::Arguments);
    /// Clock ticks since boot.
    fn ticks(&self) -> u64;
    /// Makes `base` the FS segment base of the user code about to run
    /// (`arch_prctl(ARCH_SET_FS)` of the running process).
    fn set_user_fs_base(&mut self, base: u64);
    /// 64 random bits (for `AT_RANDOM` and `getrandom`).
    fn random_u64(&mut self) -> u64;
    /// The CPU feature bits a Linux program gets as `AT_HWCAP`.
    fn hwcap(&self) -> u64;
    /// Physical frames in all and free: (total, free).
    fn frame_counts(&self) -> (u64, u64);
    /// Writes bytes to the console.
    fn console_write(&mut self, bytes: &[u8]);
    /// One byte of console input that has arrived, if any.
    fn console_read(&mut self) -> Option<u8>;
    /// Heap bytes above the kernel's own reserve (0 when the heap is low):
    /// below it, calls that grow kernel data are refused.
    fn heap_room(&self) -> usize;
    /// A signal was made pending for some process: the kernel checks for
    /// pending signals on its way back to user mode from now on.
    fn signal_pending(&mut self) {}
    /// The kernel's inter-processor interrupts so far, every CPU's
    /// (none where only one CPU runs).
    fn ipi_counters(&self) -> IpiCounters {
        IpiCounters::default()
    }
    /// How many CPUs run programs (at least one).
    fn cpus_online(&self) -> u32 {
        1
    }
    /// The copy-on-write copies made outside the kernel lock so far (none
    /// where faults copy under it).
    fn copy_counters(&self) -> CopyCounters {
        CopyCounters::default()
    }
    /// The frame source of faults taken with shared access to the kernel
    /// (its lock held for reading, faults on several CPUs at once:
    /// [`crate::Kernel::resolve_fault_shared`]); without one every fault
    /// takes the kernel exclusively.
    fn shared_frames(&self) -> Option<&dyn neoos_mm::SharedFrames> {
        None
    }
    /// The faults resolved under the read side of the kernel lock that
    /// began while another such fault was under way on another CPU (none
    /// where faults take the kernel exclusively).
    fn faults_at_once(&self) -> u64 {
        0
    }
}

/// Counts of the page faults and mapping calls made under the read side
/// of the kernel lock (system-wide, since boot), shown by `/proc/meminfo`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SharedFaultCounters {
    /// Faults resolved so (`neoos_mm`'s `fault_shared`).
    pub resolved: u64,
    /// Those that began while another was under way on another CPU.
    pub at_once: u64,
    /// `mmap`, `munmap` and `mprotect` calls made so (`neoos_mm`'s
    /// `shared_map.rs`).
    pub map_calls: (u64, u64, u64),
    /// Linux `brk` and `mremap` calls made so (`neoos_mm`'s
    /// `program_break.rs`, `shared_remap.rs`).
    pub brk_calls: u64,
    pub remap_calls: u64,
}

/// Counts of the copy-on-write copies faults left to be made outside the
/// kernel lock (system-wide, since boot), shown by `/proc/meminfo`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyCounters {
    /// Copies made with no lock held that their fault then took.
    pub taken: u64,
    /// Copies made for nothing: a frame was given back while or after one
    /// was made (the fault copied again under the lock), or the fault
    /// again no longer copied that frame.
    pub dropped: u64,
}

/// Counts of the kernel's inter-processor interrupts (system-wide, since
/// boot), shown by `sys_meminfo` and `/proc/meminfo`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpiCounters {
    /// IPIs sent to make another CPU flush TLB entries (one per CPU asked,
    /// per round).
    pub tlb_shootdown_ipis: u64,
    /// Single-page invalidations asked of other CPUs (one per page per CPU).
    pub remote_page_invalidations: u64,
    /// Full TLB flushes asked of other CPUs (one per CPU).
    pub remote_full_flushes: u64,
    /// IPIs that woke an idle CPU for a thread made ready.
    pub wakeup_ipis: u64,
}
