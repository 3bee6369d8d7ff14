//! The calls a program makes when the kernel heap is low: their allocations
//! are fallible or bounded in advance. A test allocator counts and, when
//! asked, refuses this thread's allocations (as the kernel heap does at its
//! reserve).

use neoos_abi::mman;
use neoos_mm::testing::Machine;
use neoos_mm::{Access, AsId, PAGE_SIZE};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

const RW: u32 = mman::PROT_READ | mman::PROT_WRITE;

struct TestHeap;

thread_local! {
    static REFUSE: Cell<bool> = const { Cell::new(false) };
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call forwards to the system allocator with the same layout
// and pointer, or returns null (allowed: an allocation may fail).
unsafe impl GlobalAlloc for TestHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if REFUSE.with(Cell::get) {
            return std::ptr::null_mut();
        }
        ALLOCATED.with(|a| a.set(a.get() + layout.size()));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if REFUSE.with(Cell::get) {
            return std::ptr::null_mut();
        }
        ALLOCATED.with(|a| a.set(a.get() + new_size.saturating_sub(layout.size())));
        // SAFETY: `ptr` came from `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static HEAP: TestHeap = TestHeap;

/// Runs `f` with this thread's allocations refused.
fn with_no_heap<R>(f: impl FnOnce() -> R) -> R {
    REFUSE.with(|r| r.set(true));
    let out = f();
    REFUSE.with(|r| r.set(false));
    out
}

/// Bytes this thread allocates while running `f`.
fn bytes_allocated_by<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCATED.with(Cell::get);
    let out = f();
    (out, ALLOCATED.with(Cell::get) - before)
}

fn anon(m: &mut Machine, p: AsId, len: u64, flags: u32) -> u64 {
    m.with(p, |vm, hw| {
        vm.mmap(p, hw, 0, len, RW, flags | mman::MAP_ANON, None, 0)
    })
    .unwrap()
}

#[test]
fn fsync_with_no_heap_left_still_writes_every_dirty_page() {
    let mut m = Machine::new();
    let f = m.create_file(1, &vec![0u8; 16 * PAGE_SIZE as usize]);
    for i in 0..8u64 {
        m.with_io(|vm, io| vm.file_write(io, f, (3 + i) * PAGE_SIZE, &[i as u8 + 1]))
            .unwrap();
    }
    // The software pager records requests in a list: room made beforehand.
    m.pager.writes.reserve(64);
    let synced = with_no_heap(|| m.with_io(|vm, io| vm.file_sync(io, f)));
    assert_eq!(synced, Ok(()));
    // No list of the run could be made: one request per page, in order.
    let requests: Vec<_> = m
        .pager
        .writes
        .iter()
        .map(|w| (w.first_page, w.pages))
        .collect();
    assert_eq!(requests, (3..11).map(|i| (i, 1)).collect::<Vec<_>>());
    for i in 0..8u64 {
        assert_eq!(
            m.pager.contents(f)[((3 + i) * PAGE_SIZE) as usize],
            i as u8 + 1
        );
    }
    assert_eq!(m.vm.file_page_dirty(f, 5), Some(false));
}

#[test]
fn fsync_with_heap_sends_one_request_per_dirty_run() {
    let mut m = Machine::new();
    let f = m.create_file(1, &vec![0u8; 16 * PAGE_SIZE as usize]);
    for i in [1u64, 2, 3, 7, 8] {
        m.with_io(|vm, io| vm.file_write(io, f, i * PAGE_SIZE, b"d"))
            .unwrap();
    }
    m.with_io(|vm, io| vm.file_sync(io, f)).unwrap();
    let requests: Vec<_> = m
        .pager
        .writes
        .iter()
        .map(|w| (w.first_page, w.pages))
        .collect();
    assert_eq!(requests, vec![(1, 3), (7, 2)]);
}

#[test]
fn mincore_with_no_heap_left_reports_residency() {
    let mut m = Machine::new();
    let p = m.new_space();
    let len = 1u64 << 34; // 16 GiB: 4 Mi pages, 3 of them resident
    let a = anon(&mut m, p, len, mman::MAP_PRIVATE);
    let touched = [0u64, 12345, (len / PAGE_SIZE) - 1];
    for &i in &touched {
        m.touch(p, a + i * PAGE_SIZE, Access::Write).unwrap();
    }
    let mut vec = vec![7u8; (len / PAGE_SIZE) as usize];
    let result = with_no_heap(|| m.vm.mincore(p, a, len, &mut vec));
    assert_eq!(result, Ok(()));
    assert_eq!(vec.iter().filter(|&&b| b == 1).count(), 3);
    assert!(touched.iter().all(|&i| vec[i as usize] == 1));
    assert!(vec.iter().all(|&b| b <= 1));
}

#[test]
fn fork_allocates_no_more_than_fork_metadata_bytes_says() {
    let mut m = Machine::new();
    let p = m.new_space();
    for i in 0..2_000u64 {
        let flags = if i % 3 == 0 {
            mman::MAP_SHARED
        } else {
            mman::MAP_PRIVATE
        };
        let a = anon(&mut m, p, 4 * PAGE_SIZE, flags);
        for k in 0..(i % 5).min(4) {
            m.touch(p, a + k * PAGE_SIZE, Access::Write).unwrap();
        }
    }
    let bound = m.vm.fork_metadata_bytes(p);
    let (child, used) = bytes_allocated_by(|| m.with(p, |vm, hw| vm.fork(p, hw)));
    child.unwrap();
    assert!(used > 0);
    assert!(used <= bound, "fork allocated {used} bytes, bound {bound}");
    // The bound is a bound, not a wild guess: within a small factor.
    assert!(bound <= 8 * used, "bound {bound} for {used} bytes");
}

#[test]
fn a_whole_one_page_mapping_given_with_length_one_is_not_a_split() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, PAGE_SIZE, mman::MAP_PRIVATE);
    assert!(!m.vm.would_split(p, a, 1));
    assert!(!m.vm.would_split(p, a, PAGE_SIZE));
    let b = anon(&mut m, p, 3 * PAGE_SIZE, mman::MAP_PRIVATE);
    assert!(!m.vm.would_split(p, b, 2 * PAGE_SIZE + 1));
    assert!(m.vm.would_split(p, b, PAGE_SIZE + 1));
    assert!(m.vm.would_split(p, b + PAGE_SIZE, 1));
}
