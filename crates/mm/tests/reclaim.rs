//! Reclaim (RAM as a cache of the disk): with few frames, a file larger
//! than RAM is read whole through a mapping and through `read`, dirty
//! shared pages reach the file before they go, and what may not go stays:
//! dirty pages whose write failed, locked pages, anonymous memory, private
//! copies, files kept in RAM, pages used since the clock's last pass.

use neoos_abi::mman;
use neoos_mm::testing::Machine;
use neoos_mm::{Access, AsId, FileAccess, FileId, PAGE_SIZE};

const RW: u32 = mman::PROT_READ | mman::PROT_WRITE;
const PAGE: usize = PAGE_SIZE as usize;

/// Byte `i` of the test file.
fn byte(i: usize) -> u8 {
    (i / PAGE * 7 + i) as u8
}

fn file_of(pages: usize) -> Vec<u8> {
    (0..pages * PAGE).map(byte).collect()
}

fn map(m: &mut Machine, p: AsId, f: Option<FileId>, pages: u64, flags: u32) -> u64 {
    m.with(p, |vm, hw| {
        vm.mmap(
            p,
            hw,
            0,
            pages * PAGE_SIZE,
            RW,
            flags,
            f.map(|f| (f, FileAccess::ReadWrite)),
            0,
        )
    })
    .unwrap()
}

/// What the kernel does before each fault or call: when fewer than 4
/// frames are free, reclaim 8 in at most 64 steps.
fn keep_frames_free(m: &mut Machine, limit: usize) {
    if limit - m.frames.live_count() < 4 {
        m.reclaim(8, 64);
    }
}

/// A machine whose files are on a disk (evictable, read ahead).
fn disk_machine() -> Machine {
    let mut m = Machine::new();
    m.pager.disk_files = true;
    m
}

fn resident(m: &Machine, f: FileId, index: u64) -> bool {
    m.vm.file_page_dirty(f, index).is_some()
}

#[test]
fn a_file_eight_times_ram_sums_right_through_one_shared_mapping_twice() {
    let (limit, pages) = (32, 256);
    let mut m = disk_machine();
    m.frames.limit = Some(limit);
    let f = m.create_file(1, &file_of(pages));
    let p = m.new_space();
    let a = map(&mut m, p, Some(f), pages as u64, mman::MAP_SHARED);
    let expected: u64 = (0..pages).map(|i| u64::from(byte(i * PAGE + 5))).sum();
    for round in 0..2 {
        let mut sum = 0u64;
        for i in 0..pages {
            keep_frames_free(&mut m, limit);
            let got = m.load(p, a + (i * PAGE + 5) as u64, 1).unwrap();
            sum += u64::from(got[0]);
        }
        assert_eq!(sum, expected, "round {round}");
    }
    // The second round read evicted pages from the file again.
    assert!(m.pager.reads > pages as u64, "reads {}", m.pager.reads);
    assert!(m.vm.stats().evictions > pages as u64 - limit as u64);
    assert!(m.frames.live_count() <= limit);
}

#[test]
fn a_file_larger_than_ram_reads_right_through_the_cache() {
    let (limit, pages) = (16, 100);
    let mut m = disk_machine();
    m.frames.limit = Some(limit);
    let contents = file_of(pages);
    let f = m.create_file(1, &contents);
    let mut buf = vec![0u8; 3 * PAGE];
    let mut offset = 0;
    while offset < contents.len() {
        keep_frames_free(&mut m, limit);
        let n = m
            .with_io(|vm, io| vm.file_read(io, f, offset as u64, &mut buf))
            .unwrap();
        assert_eq!(buf[..n], contents[offset..offset + n], "at {offset}");
        offset += n;
    }
    assert!(m.vm.stats().evictions > 0);
}

#[test]
fn dirty_shared_pages_under_pressure_reach_the_file_before_they_go() {
    let (limit, pages) = (24, 128);
    let mut m = disk_machine();
    m.frames.limit = Some(limit);
    let f = m.create_file(1, &vec![0u8; pages * PAGE]);
    let p = m.new_space();
    let a = map(&mut m, p, Some(f), pages as u64, mman::MAP_SHARED);
    for i in 0..pages {
        keep_frames_free(&mut m, limit);
        m.store(p, a + (i * PAGE) as u64, &[i as u8 ^ 0x5a; 16])
            .unwrap();
    }
    // Most were written and evicted under pressure, several pages per
    // request; fsync writes the rest.
    let written: usize = m.pager.writes.iter().map(|w| w.pages).sum();
    assert!(written > pages / 2, "{written} pages written");
    assert!(
        m.pager.writes.len() < pages / 4,
        "{} requests",
        m.pager.writes.len()
    );
    m.with(p, |vm, hw| vm.munmap(p, hw, a, (pages * PAGE) as u64))
        .unwrap();
    m.with_io(|vm, io| vm.file_sync(io, f)).unwrap();
    let file = m.pager.contents(f);
    for i in 0..pages {
        assert_eq!(
            file[i * PAGE..i * PAGE + 16],
            [i as u8 ^ 0x5a; 16],
            "page {i}"
        );
        assert_eq!(file[i * PAGE + 16], 0);
    }
}

#[test]
fn a_dirty_page_whose_write_fails_stays_dirty_and_resident() {
    let mut m = disk_machine();
    let f = m.create_file(1, &file_of(4));
    let p = m.new_space();
    let a = map(&mut m, p, Some(f), 4, mman::MAP_SHARED);
    m.store(p, a, b"stored").unwrap();
    // The store left the entry accessed: a first pass clears that, the
    // second tries to write.
    m.pager.fail_writes = 100;
    let done = m.reclaim(4, 64);
    assert!(done.write_errors >= 1);
    assert_eq!(m.vm.file_page_dirty(f, 0), Some(true));
    assert_eq!(m.pager.contents(f)[..6], file_of(4)[..6]);
    assert_eq!(m.load(p, a, 6).unwrap(), b"stored");
    m.pager.fail_writes = 0;
    m.with(p, |vm, hw| vm.munmap(p, hw, a, 4 * PAGE_SIZE))
        .unwrap();
    m.with_io(|vm, io| vm.file_sync(io, f)).unwrap();
    assert_eq!(&m.pager.contents(f)[..6], b"stored");
}

#[test]
fn a_page_used_since_the_last_pass_gets_a_second_chance() {
    let mut m = disk_machine();
    let f = m.create_file(1, &file_of(8));
    let p = m.new_space();
    let a = map(&mut m, p, Some(f), 8, mman::MAP_SHARED);
    for i in 0..8 {
        m.touch(p, a + i * PAGE_SIZE, Access::Read).unwrap();
    }
    // One pass over the 8 pages (and the file) clears their accessed bits.
    assert_eq!(m.reclaim(8, 9).freed, 0);
    m.touch(p, a + 3 * PAGE_SIZE, Access::Read).unwrap();
    assert_eq!(m.reclaim(7, 64).freed, 7);
    assert!(resident(&m, f, 3));
    assert!(m.pt(p).entries.contains_key(&(a + 3 * PAGE_SIZE)));
    for i in [0u64, 1, 2, 4, 5, 6, 7] {
        assert!(!resident(&m, f, i), "page {i}");
        assert!(!m.pt(p).entries.contains_key(&(a + i * PAGE_SIZE)));
    }
    // A refault reads the right bytes back.
    assert_eq!(
        m.load(p, a + 6 * PAGE_SIZE, 8).unwrap(),
        file_of(8)[6 * PAGE..6 * PAGE + 8]
    );
}

#[test]
fn a_locked_page_stays() {
    let mut m = disk_machine();
    let f = m.create_file(1, &file_of(4));
    let p = m.new_space();
    let a = map(&mut m, p, Some(f), 4, mman::MAP_SHARED);
    for i in 0..4 {
        m.touch(p, a + i * PAGE_SIZE, Access::Read).unwrap();
    }
    m.locked.push((p, a, a + PAGE_SIZE));
    let done = m.reclaim(4, 100);
    assert_eq!(done.freed, 3);
    assert!(resident(&m, f, 0));
    assert!(m.pt(p).entries.contains_key(&a));
}

#[test]
fn anonymous_memory_private_copies_and_files_kept_in_ram_never_go() {
    let mut m = disk_machine();
    let f = m.create_file(1, &file_of(4));
    let tmp = m.create_file(2, &file_of(4));
    m.pager.kept_in_ram.insert(tmp);
    let p = m.new_space();
    let anon = map(&mut m, p, None, 4, mman::MAP_PRIVATE | mman::MAP_ANON);
    let shared_anon = map(&mut m, p, None, 4, mman::MAP_SHARED | mman::MAP_ANON);
    let private = map(&mut m, p, Some(f), 4, mman::MAP_PRIVATE);
    let kept = map(&mut m, p, Some(tmp), 4, mman::MAP_SHARED);
    for i in 0..4 {
        m.store(p, anon + i * PAGE_SIZE, b"anon").unwrap();
        m.store(p, shared_anon + i * PAGE_SIZE, b"shan").unwrap();
        m.store(p, private + i * PAGE_SIZE, b"copy").unwrap();
        m.touch(p, kept + i * PAGE_SIZE, Access::Read).unwrap();
    }
    let before = m.frames.live_count();
    // The private mapping's copies hide the file's pages: those may go.
    let done = m.reclaim(100, 1000);
    assert_eq!(done.freed, 4);
    assert_eq!(m.frames.live_count(), before - 4);
    for i in 0..4 {
        assert!(!resident(&m, f, i));
        assert!(resident(&m, tmp, i));
        assert_eq!(m.load(p, anon + i * PAGE_SIZE, 4).unwrap(), b"anon");
        assert_eq!(m.load(p, shared_anon + i * PAGE_SIZE, 4).unwrap(), b"shan");
        assert_eq!(m.load(p, private + i * PAGE_SIZE, 4).unwrap(), b"copy");
    }
}

#[test]
fn a_file_page_under_a_private_mapping_goes_from_every_space_and_comes_back() {
    let mut m = disk_machine();
    let f = m.create_file(1, &file_of(2));
    let p = m.new_space();
    let private = map(&mut m, p, Some(f), 2, mman::MAP_PRIVATE);
    let shared = map(&mut m, p, Some(f), 2, mman::MAP_SHARED);
    let q = m.fork(p).unwrap();
    for s in [p, q] {
        m.touch(s, private, Access::Read).unwrap();
        m.touch(s, shared, Access::Read).unwrap();
    }
    let done = m.reclaim(1, 100);
    assert_eq!(done.freed, 1);
    assert!(!resident(&m, f, 0));
    for s in [p, q] {
        assert!(!m.pt(s).entries.contains_key(&private));
        assert!(!m.pt(s).entries.contains_key(&shared));
    }
    m.store(q, shared, b"both").unwrap();
    assert_eq!(m.load(p, shared, 4).unwrap(), b"both");
    assert_eq!(m.load(p, private, 4).unwrap(), b"both");
}

#[test]
fn dirty_pages_written_by_write_are_written_then_evicted() {
    let mut m = disk_machine();
    let f = m.create_file(1, &file_of(4));
    m.with_io(|vm, io| vm.file_write(io, f, PAGE_SIZE, b"written"))
        .unwrap();
    let done = m.reclaim(4, 100);
    assert_eq!(done.freed, 1);
    assert_eq!(done.written, 1);
    assert_eq!(&m.pager.contents(f)[PAGE..PAGE + 7], b"written");
    let mut buf = [0u8; 7];
    m.with_io(|vm, io| vm.file_read(io, f, PAGE_SIZE, &mut buf))
        .unwrap();
    assert_eq!(&buf, b"written");
}

#[test]
fn reclaim_stops_after_its_budget() {
    let mut m = disk_machine();
    let f = m.create_file(1, &file_of(64));
    let mut buf = vec![0u8; 64 * PAGE];
    m.with_io(|vm, io| vm.file_read(io, f, 0, &mut buf))
        .unwrap();
    let done = m.reclaim(64, 10);
    assert_eq!(done.scanned, 10);
    assert_eq!(done.freed, 0);
    let done = m.reclaim(64, 1000);
    assert_eq!(done.freed, 64);
    assert!(m.reclaim(64, 1000).freed == 0);
}

#[test]
fn a_sequential_miss_whose_run_cannot_be_read_reads_its_page_alone() {
    let mut m = disk_machine();
    m.pager.fail_read_runs = true;
    let f = m.create_file(1, &file_of(40));
    let p = m.new_space();
    let a = map(&mut m, p, Some(f), 40, mman::MAP_SHARED);
    for i in 0..40 {
        let got = m.load(p, a + i * PAGE_SIZE + 9, 1).unwrap();
        assert_eq!(got[0], byte(i as usize * PAGE + 9));
    }
    // The misses of pages 1 to 38 each tried a run, which failed (the last
    // page's miss has no page after it to read with it): each page was then
    // read alone.
    assert_eq!(m.pager.read_runs, 38);
    assert_eq!(m.pager.reads, 40);
}

#[test]
fn a_sequential_reader_gets_its_pages_thirty_two_per_request_a_random_one_does_not() {
    let mut m = disk_machine();
    let f = m.create_file(1, &file_of(64));
    let p = m.new_space();
    let a = map(&mut m, p, Some(f), 64, mman::MAP_SHARED);
    for i in 0..64 {
        let got = m.load(p, a + i * PAGE_SIZE + 9, 1).unwrap();
        assert_eq!(got[0], byte(i as usize * PAGE + 9));
    }
    // Page 0 read alone; the miss of page 1 reads 1..33 in one request,
    // that of page 33 the 31 left.
    assert_eq!(m.pager.reads, 64);
    assert_eq!(m.pager.read_runs, 2);
    let g = m.create_file(2, &file_of(64));
    let b = map(&mut m, p, Some(g), 64, mman::MAP_SHARED);
    for i in (1..64).rev() {
        let got = m.load(p, b + i * PAGE_SIZE + 9, 1).unwrap();
        assert_eq!(got[0], byte(i as usize * PAGE + 9));
    }
    assert_eq!(m.pager.read_runs, 2);
    assert_eq!(m.pager.reads, 64 + 63);
}
