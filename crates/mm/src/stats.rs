//! Counters the mm keeps for introspection (`sys_meminfo`) and for tests.

/// Global counters of a [`crate::MemorySystem`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemStats {
    /// Frames currently allocated by the mm (and not yet returned).
    pub frames_in_use: u64,
    /// Pager write requests (one per contiguous run of dirty pages).
    pub writeback_requests: u64,
    /// Bytes handed to the pager in those requests.
    pub writeback_bytes: u64,
    /// Single-page TLB invalidations issued.
    pub tlb_single_flushes: u64,
    /// Full TLB flushes issued.
    pub tlb_full_flushes: u64,
    /// Page faults resolved.
    pub faults: u64,
    /// File pages reclaim took out of RAM (see `reclaim.rs`).
    pub evictions: u64,
    /// File objects that went with their last reference (the last
    /// descriptor closed, the last mapping removed): the kernel frees an
    /// unlinked file's data only after its object went.
    pub files_released: u64,
}
