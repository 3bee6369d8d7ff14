//! Fault-around (the exclusive fault path): a read fault on a cached file
//! page maps the file's other cached pages of its aligned 16-page window,
//! read-only, inside the mapping only, reading nothing; a write still
//! faults and makes its page dirty; a private mapping's own pages stay its
//! own; reclaim still evicts what the window mapped.

use neoos_abi::mman;
use neoos_mm::testing::Machine;
use neoos_mm::{AsId, FileAccess, FileId, PageTable, PAGE_SIZE};

const RW: u32 = mman::PROT_READ | mman::PROT_WRITE;
const P: u64 = PAGE_SIZE;
/// The fault-around window, in pages.
const WINDOW: u64 = 16;

/// A file of `pages` pages, page `i` filled with byte `i + 1`.
fn file(m: &mut Machine, pages: u64) -> FileId {
    let bytes: Vec<u8> = (0..pages * P).map(|b| (b / P + 1) as u8).collect();
    m.create_file(1, &bytes)
}

/// Reads pages `first..first + count` of `f` through the cache.
fn cache(m: &mut Machine, f: FileId, first: u64, count: u64) {
    let mut buf = vec![0u8; (count * P) as usize];
    m.with_io(|vm, io| vm.file_read(io, f, first * P, &mut buf))
        .unwrap();
}

/// A mapping of `pages` pages of `f` from page `offset`, at a
/// window-aligned address.
fn map(m: &mut Machine, p: AsId, f: FileId, (offset, pages): (u64, u64), flags: u32) -> u64 {
    let at = 0x4000_0000;
    let file = Some((f, FileAccess::ReadWrite));
    let flags = flags | mman::MAP_FIXED;
    m.with(p, |vm, hw| {
        vm.mmap(p, hw, at, pages * P, RW, flags, file, (offset * P) as i64)
    })
    .unwrap()
}

/// The pages of `[a, a + pages)` with an entry, and whether any is
/// writable.
fn entries(m: &Machine, p: AsId, a: u64, pages: u64) -> (Vec<u64>, bool) {
    let pt = m.pt(p);
    let present: Vec<u64> = (0..pages)
        .filter(|i| pt.query(a + i * P).is_some())
        .collect();
    let writable = present
        .iter()
        .any(|i| pt.query(a + i * P).is_some_and(|e| e.prot.write));
    (present, writable)
}

#[test]
fn a_read_fault_maps_the_windows_cached_pages_read_only_as_one_fault() {
    let mut m = Machine::new();
    let p = m.new_space();
    let f = file(&mut m, 40);
    cache(&mut m, f, 0, 40);
    let a = map(&mut m, p, f, (0, 40), mman::MAP_SHARED);
    let (faults, reads) = (m.vm.stats().faults, m.pager.reads);
    assert_eq!(m.load(p, a + 5 * P, 1).unwrap(), [6]);
    assert_eq!(m.vm.stats().faults - faults, 1);
    assert_eq!(m.pager.reads, reads, "nothing read");
    let (present, writable) = entries(&m, p, a, 40);
    assert_eq!(present, (0..WINDOW).collect::<Vec<_>>());
    assert!(!writable);
    // Every page of the window reads its own bytes without a fault.
    for i in 0..WINDOW {
        assert_eq!(m.load(p, a + i * P, 1).unwrap(), [i as u8 + 1]);
    }
    assert_eq!(m.vm.stats().faults - faults, 1);
}

#[test]
fn only_cached_pages_are_mapped_and_nothing_is_read_for_the_window() {
    let mut m = Machine::new();
    let p = m.new_space();
    let f = file(&mut m, 16);
    cache(&mut m, f, 3, 1);
    cache(&mut m, f, 9, 2);
    let a = map(&mut m, p, f, (0, 16), mman::MAP_SHARED);
    let reads = m.pager.reads;
    assert_eq!(m.load(p, a + 3 * P, 1).unwrap(), [4]);
    assert_eq!(m.pager.reads, reads);
    assert_eq!(entries(&m, p, a, 16).0, vec![3, 9, 10]);
}

#[test]
fn the_window_stays_inside_the_mapping() {
    let mut m = Machine::new();
    let p = m.new_space();
    let f = file(&mut m, 32);
    cache(&mut m, f, 0, 32);
    // Pages 4..8 of the file, at a window-aligned address; another
    // mapping of the file right after it.
    let a = map(&mut m, p, f, (4, 4), mman::MAP_SHARED);
    let b = a + 4 * P;
    let file = Some((f, FileAccess::ReadWrite));
    let flags = mman::MAP_SHARED | mman::MAP_FIXED;
    m.with(p, |vm, hw| vm.mmap(p, hw, b, 12 * P, RW, flags, file, 0))
        .unwrap();
    assert_eq!(m.load(p, a + P, 1).unwrap(), [6]);
    assert_eq!(entries(&m, p, a, 16).0, vec![0, 1, 2, 3]);
}

#[test]
fn a_write_to_a_page_the_window_mapped_faults_and_makes_it_dirty() {
    let mut m = Machine::new();
    let p = m.new_space();
    let f = file(&mut m, 16);
    cache(&mut m, f, 0, 16);
    let a = map(&mut m, p, f, (0, 16), mman::MAP_SHARED);
    m.load(p, a, 1).unwrap();
    let faults = m.vm.stats().faults;
    m.store(p, a + 6 * P, &[0xee]).unwrap();
    assert_eq!(m.vm.stats().faults - faults, 1, "the write faulted");
    m.with(p, |vm, hw| vm.msync(p, hw, a, 16 * P, mman::MS_SYNC))
        .unwrap();
    assert_eq!(m.pager.writes.len(), 1);
    assert_eq!(m.pager.contents(f)[(6 * P) as usize], 0xee);
}

#[test]
fn a_private_mapping_keeps_its_own_pages_where_the_window_passes() {
    let mut m = Machine::new();
    let p = m.new_space();
    let f = file(&mut m, 16);
    cache(&mut m, f, 0, 16);
    let a = map(&mut m, p, f, (0, 16), mman::MAP_PRIVATE);
    m.store(p, a + 2 * P, &[0xaa]).unwrap();
    // The whole mapping made inaccessible and readable again: no entry
    // left, page 2 still the mapping's own copy.
    for prot in [mman::PROT_NONE, mman::PROT_READ] {
        m.with(p, |vm, hw| vm.mprotect(p, hw, a, 16 * P, prot))
            .unwrap();
    }
    assert!(entries(&m, p, a, 16).0.is_empty());
    assert_eq!(m.load(p, a, 1).unwrap(), [1]);
    let (present, writable) = entries(&m, p, a, 16);
    assert_eq!(present, [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    assert!(!writable);
    assert_eq!(m.load(p, a + 2 * P, 1).unwrap(), [0xaa], "its own copy");
    assert_eq!(
        m.pager.contents(f)[(2 * P) as usize],
        3,
        "the file unchanged"
    );
}

#[test]
fn reclaim_evicts_the_pages_a_window_mapped() {
    let mut m = Machine::new();
    m.pager.disk_files = true;
    let p = m.new_space();
    let f = file(&mut m, 16);
    cache(&mut m, f, 0, 16);
    let a = map(&mut m, p, f, (0, 16), mman::MAP_SHARED);
    m.load(p, a, 1).unwrap();
    assert_eq!(entries(&m, p, a, 16).0.len(), 16);
    // Two passes of the clock: the pages read through the cache are
    // referenced once; those only the window mapped were never used.
    let reclaimed = m.reclaim(64, 1_000);
    let reclaimed = reclaimed.freed + m.reclaim(64, 1_000).freed;
    assert!(reclaimed >= 15, "reclaimed {reclaimed}");
    assert!(entries(&m, p, a, 16).0.len() <= 1);
    // Read again from the pager, right.
    assert_eq!(m.load(p, a + 9 * P, 1).unwrap(), [10]);
}
