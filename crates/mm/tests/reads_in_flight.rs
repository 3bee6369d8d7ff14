//! Read faults whose disk reads run without the kernel lock: a miss on a
//! disk file plans a read and marks the pages "being read"; other faults on
//! them wait for the same read; the bytes are installed when it finishes,
//! unless the page went meanwhile (truncated, the object gone) or was
//! cached another way; a failed read installs nothing; nothing leaks.

use neoos_abi::mman;
use neoos_mm::testing::Machine;
use neoos_mm::{Access, AsId, FaultError, FileAccess, FileId, PlannedRead, PAGE_SIZE};

const PAGE: usize = PAGE_SIZE as usize;

/// A machine whose files are on a disk, a file of `pages` pages (byte
/// `i` of page `p` is `p + 1`) mapped shared read-only by a new space.
fn mapped_file(pages: usize) -> (Machine, FileId, AsId, u64) {
    let mut m = Machine::new();
    m.pager.disk_files = true;
    let bytes: Vec<u8> = (0..pages * PAGE).map(|i| (i / PAGE) as u8 + 1).collect();
    let f = m.create_file(1, &bytes);
    let p = m.new_space();
    let a = map(&mut m, p, f, pages);
    (m, f, p, a)
}

fn map(m: &mut Machine, p: AsId, f: FileId, pages: usize) -> u64 {
    m.with(p, |vm, hw| {
        vm.mmap(
            p,
            hw,
            0,
            pages as u64 * PAGE_SIZE,
            mman::PROT_READ,
            mman::MAP_SHARED,
            Some((f, FileAccess::ReadOnly)),
            0,
        )
    })
    .unwrap()
}

fn fault(m: &mut Machine, p: AsId, addr: u64) -> Result<(), FaultError> {
    m.with(p, |vm, hw| {
        vm.handle_fault_deferring_reads(p, hw, addr, Access::Read)
    })
}

/// The read a fault waits for (`None`: it did not wait).
fn waits_for(m: &mut Machine, p: AsId, addr: u64) -> Option<u64> {
    match fault(m, p, addr) {
        Err(FaultError::WaitForRead) => Some(m.vm.read_waited_for()),
        _ => None,
    }
}

/// The file's bytes of the planned run, as the disk would give them.
fn read_from_disk(m: &Machine, r: &PlannedRead) -> Vec<u8> {
    let start = (r.first * PAGE_SIZE) as usize;
    let mut bytes = vec![0u8; r.count as usize * PAGE];
    let stored = m.pager.contents(r.file).get(start..).unwrap_or(&[]);
    let n = stored.len().min(bytes.len());
    bytes[..n].copy_from_slice(&stored[..n]);
    bytes
}

fn finish(m: &mut Machine, r: &PlannedRead, ok: bool) -> Result<(), FaultError> {
    let data = read_from_disk(m, r);
    m.with_io(|vm, io| vm.finish_read(io, r, ok.then_some(&data[..])))
}

#[test]
fn a_miss_plans_one_read_that_other_faults_on_the_page_wait_for() {
    let (mut m, f, p, a) = mapped_file(4);
    let q = m.new_space();
    let b = map(&mut m, q, f, 4);
    let read = waits_for(&mut m, p, a + PAGE_SIZE).expect("a miss on a disk file waits");
    let planned = m.vm.take_planned_read().expect("a planned read");
    assert_eq!((planned.read, planned.first, planned.count), (read, 1, 1));
    assert_eq!(m.vm.take_planned_read(), None, "taken once");
    assert_eq!(waits_for(&mut m, p, a + PAGE_SIZE), Some(read));
    assert_eq!(waits_for(&mut m, q, b + PAGE_SIZE), Some(read));
    assert_eq!(m.vm.take_planned_read(), None, "no second read of the page");
    assert_eq!(m.pager.reads, 0, "nothing read under the lock");
    finish(&mut m, &planned, true).unwrap();
    fault(&mut m, p, a + PAGE_SIZE).unwrap();
    fault(&mut m, q, b + PAGE_SIZE).unwrap();
    assert_eq!(m.load(p, a + PAGE_SIZE, 2).unwrap(), [2, 2]);
    assert_eq!(m.load(q, b + PAGE_SIZE + 9, 1).unwrap(), [2]);
    assert_eq!(m.pager.reads, 0);
}

#[test]
fn a_sequential_miss_reads_ahead_up_to_the_cached_page_and_the_end() {
    let (mut m, _, p, a) = mapped_file(40);
    for page in [0u64, 10] {
        let _ = fault(&mut m, p, a + page * PAGE_SIZE);
        let r = m.vm.take_planned_read().unwrap();
        assert_eq!((r.first, r.count), (page, 1), "not sequential: one page");
        finish(&mut m, &r, true).unwrap();
    }
    let _ = fault(&mut m, p, a + PAGE_SIZE);
    let r = m.vm.take_planned_read().unwrap();
    assert_eq!((r.first, r.count), (1, 9), "stops at cached page 10");
    finish(&mut m, &r, true).unwrap();
    let _ = fault(&mut m, p, a + 11 * PAGE_SIZE);
    let r = m.vm.take_planned_read().unwrap();
    assert_eq!((r.first, r.count), (11, 29), "stops at the end of the file");
    finish(&mut m, &r, true).unwrap();
    for page in 0..40u64 {
        assert_eq!(
            m.load(p, a + page * PAGE_SIZE, 1).unwrap(),
            [page as u8 + 1]
        );
    }
    assert_eq!(m.pager.reads, 0);
}

#[test]
fn a_failed_read_installs_nothing_and_the_next_fault_reads_again() {
    let (mut m, _, p, a) = mapped_file(2);
    let in_use = m.vm.stats().frames_in_use;
    let _ = fault(&mut m, p, a);
    let r = m.vm.take_planned_read().unwrap();
    finish(&mut m, &r, false).unwrap();
    assert_eq!(m.vm.stats().frames_in_use, in_use);
    let again = waits_for(&mut m, p, a).expect("read again");
    assert_ne!(again, r.read, "a new read");
    let r = m.vm.take_planned_read().unwrap();
    finish(&mut m, &r, true).unwrap();
    assert_eq!(m.load(p, a, 1).unwrap(), [1]);
}

#[test]
fn a_read_that_finishes_after_its_object_went_or_its_pages_were_truncated_installs_nothing() {
    let (mut m, f, p, a) = mapped_file(3);
    let baseline = m.vm.stats().frames_in_use;
    let _ = fault(&mut m, p, a + 2 * PAGE_SIZE);
    let gone = m.vm.take_planned_read().unwrap();
    // The faulting process ends, the file is truncated below the page.
    m.exit(p).unwrap();
    m.with_io(|vm, io| vm.file_truncate(io, f, PAGE_SIZE))
        .unwrap();
    finish(&mut m, &gone, true).unwrap();
    assert_eq!(m.vm.stats().frames_in_use, baseline);
    // Its object gone altogether.
    let q = m.new_space();
    let b = map(&mut m, q, f, 1);
    let _ = fault(&mut m, q, b);
    let r = m.vm.take_planned_read().unwrap();
    m.exit(q).unwrap();
    m.close(f).unwrap();
    finish(&mut m, &r, true).unwrap();
    assert_eq!(m.vm.stats().frames_in_use, baseline);
}

#[test]
fn a_page_cached_by_a_write_meanwhile_keeps_the_written_bytes() {
    let (mut m, f, p, a) = mapped_file(1);
    let _ = fault(&mut m, p, a);
    let r = m.vm.take_planned_read().unwrap();
    m.with_io(|vm, io| vm.file_write(io, f, 0, b"new")).unwrap();
    finish(&mut m, &r, true).unwrap();
    fault(&mut m, p, a).unwrap();
    assert_eq!(m.load(p, a, 4).unwrap(), [b'n', b'e', b'w', 1]);
}

#[test]
fn files_in_ram_and_pages_past_the_stored_end_are_not_deferred() {
    let (mut m, f, p, a) = mapped_file(1);
    m.pager.kept_in_ram.insert(f);
    fault(&mut m, p, a).unwrap();
    assert_eq!(m.vm.take_planned_read(), None);
    assert_eq!(m.load(p, a, 1).unwrap(), [1]);
    let mut m = Machine::new();
    let f = m.create_file(1, &[]);
    m.pager.disk_files = true;
    m.with_io(|vm, io| vm.file_write(io, f, 0, &[7; 10]))
        .unwrap();
    let p = m.new_space();
    let a = map(&mut m, p, f, 1);
    fault(&mut m, p, a).unwrap();
    assert_eq!(m.vm.take_planned_read(), None);
}

/// A `read`'s range: each call plans the next run of absent pages not
/// being read (cached pages split runs), and names a read the range waits
/// for; once every page is cached, none; pages past the stored end are
/// never planned.
#[test]
fn a_read_range_plans_its_absent_runs_one_by_one() {
    let (mut m, f, p, a) = mapped_file(40);
    let _ = fault(&mut m, p, a + 3 * PAGE_SIZE);
    let cached = m.vm.take_planned_read().unwrap();
    finish(&mut m, &cached, true).unwrap();
    let plan = |m: &mut Machine, offset: u64, len: u64| {
        m.with_io(|vm, io| vm.file_plan_read(io, f, offset, len))
            .unwrap()
    };
    let first = plan(&mut m, 0, 40 * PAGE_SIZE).expect("a read to wait for");
    let r1 = m.vm.take_planned_read().unwrap();
    assert_eq!(
        (r1.read, r1.first, r1.count),
        (first, 0, 3),
        "up to cached page 3"
    );
    assert_eq!(
        plan(&mut m, 0, 40 * PAGE_SIZE),
        Some(first),
        "waits for the first"
    );
    let r2 = m.vm.take_planned_read().unwrap();
    assert_eq!(
        (r2.first, r2.count),
        (4, 32),
        "then the next run, 32 pages at most"
    );
    assert_eq!(plan(&mut m, 0, 40 * PAGE_SIZE), Some(first));
    let r3 = m.vm.take_planned_read().unwrap();
    assert_eq!((r3.first, r3.count), (36, 4), "up to the end of the file");
    assert_eq!(plan(&mut m, 0, 40 * PAGE_SIZE), Some(first));
    assert_eq!(m.vm.take_planned_read(), None, "all planned");
    for r in [r1, r2, r3] {
        finish(&mut m, &r, true).unwrap();
    }
    assert_eq!(plan(&mut m, 0, 40 * PAGE_SIZE), None, "all cached");
    assert_eq!(
        plan(&mut m, 50 * PAGE_SIZE, PAGE_SIZE),
        None,
        "past the end"
    );
    let mut buf = vec![0u8; 2];
    let n = m
        .with_io(|vm, io| vm.file_read(io, f, 37 * PAGE_SIZE + 5, &mut buf))
        .unwrap();
    assert_eq!((n, buf[0]), (2, 38));
    assert_eq!(m.pager.reads, 0, "the read copied cached pages only");
}
