//! The physical frame allocator: hands out 4 KiB frames of usable RAM (from
//! the boot memory map, minus the kernel image and the boot module). Freed
//! frames are reused first; untouched RAM is handed out from the top of the
//! remaining ranges. Both operations are O(1).

use alloc::vec::Vec;
use spin::Mutex;

const PAGE: u64 = 4096;

struct FrameAllocator {
    /// Untouched ranges as (next frame, end).
    ranges: Vec<(u64, u64)>,
    recycled: Vec<u64>,
    total: u64,
    free: u64,
}

static FRAMES: Mutex<FrameAllocator> = Mutex::new(FrameAllocator {
    ranges: Vec::new(),
    recycled: Vec::new(),
    total: 0,
    free: 0,
});

/// Builds the allocator from usable RAM, skipping everything below `reserved_end`
/// (low memory and the kernel image) and the boot module.
pub fn init(ram: &[(u64, u64)], reserved_end: u64, module: Option<(u64, u64)>) {
    let mut a = FRAMES.lock();
    let add = |start: u64, end: u64, a: &mut FrameAllocator| {
        let start = start.next_multiple_of(PAGE);
        let end = end & !(PAGE - 1);
        if end > start {
            a.ranges.push((start, end));
            a.total += (end - start) / PAGE;
        }
    };
    for &(base, len) in ram {
        let start = base.max(reserved_end);
        let end = base + len;
        match module {
            Some((m, mlen)) if m < end && m + mlen > start => {
                add(start, m, &mut a);
                add(m + mlen, end, &mut a);
            }
            _ => add(start, end, &mut a),
        }
    }
    a.free = a.total;
    let total = a.total as usize;
    a.recycled.reserve(total);
}

/// One frame, or `None` when memory is exhausted. Contents are not zeroed.
pub fn alloc() -> Option<u64> {
    let mut a = FRAMES.lock();
    let frame = match a.recycled.pop() {
        Some(f) => f,
        None => {
            let (next, end) = a.ranges.last_mut()?;
            let f = *next;
            *next += PAGE;
            if *next >= *end {
                a.ranges.pop();
            }
            f
        }
    };
    a.free -= 1;
    Some(frame)
}

/// Returns a frame.
pub fn free(frame: u64) {
    let mut a = FRAMES.lock();
    a.recycled.push(frame);
    a.free += 1;
}

/// (total frames, free frames).
pub fn counts() -> (u64, u64) {
    let a = FRAMES.lock();
    (a.total, a.free)
}
