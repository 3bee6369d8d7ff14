//! One test per sentence of the specification (the NeoOS `sys_munmap` page
//! and the BSD `munmap(2)` page), plus the `sys_mmap` facts they rely on.

use neoos_abi::{errno, layout, mman, neo, shm};
use neoos_mm::testing::Machine;
use neoos_mm::{Access, AsId, Errno, FaultError, FileAccess, FileId, PAGE_SIZE};

const PAGE: u64 = PAGE_SIZE;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A machine with one process and one file of `pages` pages open read-write.
fn setup(pages: usize) -> (Machine, AsId, FileId) {
    let mut m = Machine::new();
    let p = m.new_space();
    let f = m.create_file(7, &pattern(pages * 4096, 1));
    (m, p, f)
}

fn neo_map(
    m: &mut Machine,
    p: AsId,
    f: FileId,
    access: FileAccess,
    offset: i64,
    size: i64,
) -> Result<u64, Errno> {
    m.with(p, |vm, hw| vm.neo_mmap(p, hw, f, access, offset, size))
}

fn neo_unmap(m: &mut Machine, p: AsId, addr: u64, size: i64) -> Result<(), Errno> {
    m.with(p, |vm, hw| vm.neo_munmap(p, hw, addr, size))
}

fn anon(m: &mut Machine, p: AsId, len: u64, flags: u32) -> u64 {
    m.with(p, |vm, hw| {
        vm.mmap(
            p,
            hw,
            0,
            len,
            mman::PROT_READ | mman::PROT_WRITE,
            flags | mman::MAP_ANON,
            None,
            0,
        )
    })
    .unwrap()
}

fn munmap(m: &mut Machine, p: AsId, addr: u64, len: u64) -> Result<(), Errno> {
    m.with(p, |vm, hw| vm.munmap(p, hw, addr, len))
}

fn live_frames(m: &Machine) -> usize {
    assert_eq!(m.frames.live_count() as u64, m.vm.stats().frames_in_use);
    m.frames.live_count()
}

// ---------------------------------------------------------------- NeoOS

#[test]
fn neo_munmap_deactivates_mapping_created_by_sys_mmap() {
    let (mut m, p, f) = setup(2);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 8192).unwrap();
    assert_eq!(m.load(p, a, 4).unwrap(), pattern(4, 1));
    neo_unmap(&mut m, p, a, 8192).unwrap();
    assert_eq!(m.vm.mapping_count(p), 0);
    assert_eq!(m.load(p, a, 1), Err(FaultError::NotMapped));
}

#[test]
fn neo_munmap_addr_must_be_address_returned_by_sys_mmap() {
    let (mut m, p, f) = setup(4);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 4 * 4096).unwrap();
    assert_eq!(neo_unmap(&mut m, p, a + PAGE, 3 * 4096), Err(Errno::Inval));
    assert_eq!(neo_unmap(&mut m, p, a + 1, 4 * 4096), Err(Errno::Inval));
    assert_eq!(
        neo_unmap(&mut m, p, 0x5000_0000, 4 * 4096),
        Err(Errno::Inval)
    );
    assert_eq!(m.vm.mapping_count(p), 1);
}

#[test]
fn neo_munmap_size_must_match_sys_mmap_size() {
    let (mut m, p, f) = setup(4);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 5000).unwrap();
    assert_eq!(neo_unmap(&mut m, p, a, 4096), Err(Errno::Inval));
    assert_eq!(neo_unmap(&mut m, p, a, 3 * 4096), Err(Errno::Inval));
    assert_eq!(neo_unmap(&mut m, p, a, 0), Err(Errno::Inval));
    assert_eq!(neo_unmap(&mut m, p, a, -4096), Err(Errno::Inval));
    // Exactly the size given to sys_mmap (not merely the same page count).
    assert_eq!(neo_unmap(&mut m, p, a, 8192), Err(Errno::Inval));
    neo_unmap(&mut m, p, a, 5000).unwrap();
}

#[test]
fn neo_munmap_step1_verifies_region_is_a_valid_earlier_mapping() {
    let (mut m, p, f) = setup(2);
    // A POSIX mapping is not a sys_mmap region.
    let a = m
        .with(p, |vm, hw| {
            vm.mmap(
                p,
                hw,
                0,
                4096,
                mman::PROT_READ,
                mman::MAP_SHARED,
                Some((f, FileAccess::ReadWrite)),
                0,
            )
        })
        .unwrap();
    assert_eq!(neo_unmap(&mut m, p, a, 4096), Err(Errno::Inval));
    // Unmapped already: invalid.
    let b = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 4096).unwrap();
    neo_unmap(&mut m, p, b, 4096).unwrap();
    assert_eq!(neo_unmap(&mut m, p, b, 4096), Err(Errno::Inval));
}

#[test]
fn neo_munmap_step2_writes_dirty_pages_to_file() {
    let (mut m, p, f) = setup(4);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 4 * 4096).unwrap();
    m.store(p, a + 5, b"hello").unwrap();
    m.store(p, a + 2 * PAGE, b"world").unwrap();
    neo_unmap(&mut m, p, a, 4 * 4096).unwrap();
    let disk = m.pager.contents(f);
    assert_eq!(&disk[5..10], b"hello");
    assert_eq!(&disk[8192..8197], b"world");
    assert_eq!(&disk[4096..8192], &pattern(4 * 4096, 1)[4096..8192]);
}

#[test]
fn neo_munmap_step2_writes_only_dirty_pages_one_request_per_run() {
    let (mut m, p, f) = setup(16);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 16 * 4096).unwrap();
    for i in 0..16 {
        m.load(p, a + i * PAGE, 1).unwrap(); // all resident, clean
    }
    for i in [1, 2, 3, 7, 10, 11] {
        m.store(p, a + i * PAGE, &[9]).unwrap();
    }
    neo_unmap(&mut m, p, a, 16 * 4096).unwrap();
    let runs: Vec<(u64, usize)> = m
        .pager
        .writes
        .iter()
        .map(|w| (w.first_page, w.pages))
        .collect();
    assert_eq!(runs, vec![(1, 3), (7, 1), (10, 2)]);
    assert_eq!(m.vm.stats().writeback_requests, 3);
    assert_eq!(m.vm.stats().writeback_bytes, 6 * 4096);
}

#[test]
fn neo_munmap_step2_syncs_the_file_once_after_all_its_runs() {
    let (mut m, p, f) = setup(8);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 8 * 4096).unwrap();
    for i in [0, 2, 4, 6] {
        m.store(p, a + i * PAGE, &[9]).unwrap();
    }
    neo_unmap(&mut m, p, a, 8 * 4096).unwrap();
    assert_eq!(m.pager.writes.len(), 4);
    assert_eq!(m.pager.syncs, 1);
    assert_eq!(m.pager.writes_before_last_sync, 4);
    // Nothing dirty: nothing written, nothing synced.
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 8 * 4096).unwrap();
    m.load(p, a, 1).unwrap();
    neo_unmap(&mut m, p, a, 8 * 4096).unwrap();
    assert_eq!(m.pager.syncs, 1);
}

#[test]
fn neo_munmap_e_io_when_the_sync_fails_pages_stay_dirty_and_a_retry_writes_them() {
    let (mut m, p, f) = setup(4);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 4 * 4096).unwrap();
    m.store(p, a + PAGE, b"kept").unwrap();
    let before = m.vm.maps(p).collect::<Vec<_>>();
    m.pager.fail_syncs = 1;
    assert_eq!(neo_unmap(&mut m, p, a, 4 * 4096), Err(Errno::Io));
    assert_eq!(m.vm.maps(p).collect::<Vec<_>>(), before);
    assert_eq!(m.vm.file_page_dirty(f, 1), Some(true));
    assert_eq!(m.load(p, a + PAGE, 4).unwrap(), b"kept");
    neo_unmap(&mut m, p, a, 4 * 4096).unwrap();
    assert_eq!(m.pager.writes.len(), 2);
    assert_eq!(m.pager.syncs, 1);
    assert_eq!(m.pager.writes_before_last_sync, 2);
    assert_eq!(&m.pager.contents(f)[4096..4100], b"kept");
}

#[test]
fn neo_munmap_step2_nothing_written_when_no_pending_changes() {
    let (mut m, p, f) = setup(2);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 8192).unwrap();
    m.load(p, a, 1).unwrap();
    neo_unmap(&mut m, p, a, 8192).unwrap();
    assert!(m.pager.writes.is_empty());
}

#[test]
fn neo_munmap_step2_happens_before_step3_pending_hardware_dirty_bits_are_written() {
    // Dirty state that only the page table knows must reach the file too.
    let (mut m, p, f) = setup(1);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 4096).unwrap();
    m.store(p, a, b"x").unwrap();
    m.with_io(|vm, io| vm.file_sync(io, f)).unwrap(); // page written yet still writable: stays dirty
    m.store(p, a, b"y").unwrap();
    neo_unmap(&mut m, p, a, 4096).unwrap();
    assert_eq!(m.pager.contents(f)[0], b'y');
}

#[test]
fn neo_munmap_step3_page_still_writable_elsewhere_stays_dirty() {
    // Step 3 makes the written pages clean only where no other entry maps
    // them writable: a later store through that entry makes no fault, and
    // must still reach the file.
    let (mut m, p, f) = setup(2);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 2 * 4096).unwrap();
    let b = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 2 * 4096).unwrap();
    m.store(p, b, b"x").unwrap();
    m.store(p, a + PAGE, b"y").unwrap();
    neo_unmap(&mut m, p, a, 2 * 4096).unwrap();
    assert_eq!(m.pager.contents(f)[0], b'x');
    m.store(p, b, b"z").unwrap();
    m.with_io(|vm, io| vm.file_sync(io, f)).unwrap();
    assert_eq!(m.pager.contents(f)[0], b'z');
    assert_eq!(m.pager.contents(f)[4096], b'y');
}

#[test]
fn neo_munmap_step3_removes_page_table_entries_with_one_batched_flush() {
    let (mut m, p, f) = setup(8);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 8 * 4096).unwrap();
    for i in 0..8 {
        m.load(p, a + i * PAGE, 1).unwrap();
    }
    assert_eq!(m.pt(p).entries.len(), 8);
    let before = m.pt(p).single_flushes;
    neo_unmap(&mut m, p, a, 8 * 4096).unwrap();
    assert!(m.pt(p).entries.is_empty());
    assert_eq!(m.pt(p).single_flushes - before, 8);
    assert_eq!(m.pt(p).full_flushes, 0);
}

#[test]
fn neo_munmap_step3_more_than_33_pages_use_one_full_flush() {
    let (mut m, p, f) = setup(40);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 40 * 4096).unwrap();
    for i in 0..40 {
        m.store(p, a + i * PAGE, &[1]).unwrap();
    }
    let singles = m.pt(p).single_flushes;
    neo_unmap(&mut m, p, a, 40 * 4096).unwrap();
    assert_eq!(m.pt(p).full_flushes, 1);
    assert_eq!(m.pt(p).single_flushes, singles);
    assert_eq!(m.vm.stats().tlb_full_flushes, 1);
}

#[test]
fn neo_munmap_step4_frees_virtual_address_range() {
    let (mut m, p, f) = setup(2);
    let holes_before = m.vm.address_space(p).unwrap().holes().len();
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 8192).unwrap();
    neo_unmap(&mut m, p, a, 8192).unwrap();
    assert_eq!(m.vm.address_space(p).unwrap().holes().len(), holes_before);
    // The same range can be mapped again.
    let b = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 8192).unwrap();
    assert_eq!(a, b);
}

#[test]
fn neo_munmap_step5_decrements_file_reference_count() {
    let (mut m, p, f) = setup(1);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 4096).unwrap();
    m.close(f).unwrap(); // the mapping keeps the file object
    assert_eq!(m.vm.file_size(f), Ok(4096));
    m.store(p, a, b"Z").unwrap();
    neo_unmap(&mut m, p, a, 4096).unwrap();
    // Last reference gone: the object and its frames went.
    assert_eq!(m.vm.file_size(f), Err(Errno::NoEnt));
    assert_eq!(m.vm.object_count(), 0);
    assert_eq!(live_frames(&m), 0);
    assert_eq!(m.pager.contents(f)[0], b'Z');
}

#[test]
fn neo_munmap_returns_e_ok_when_mapping_deactivated() {
    let (mut m, p, f) = setup(1);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 4096).unwrap();
    let r = neo_unmap(&mut m, p, a, 4096).map_or_else(|e| e.neo_code(), |_| neo::E_OK);
    assert_eq!(r, neo::E_OK);
}

#[test]
fn neo_munmap_e_inval_when_address_or_size_invalid_or_not_mapped() {
    let (mut m, p, f) = setup(1);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 4096).unwrap();
    for (addr, size) in [
        (a, 0),
        (a, -1),
        (a + 3, 4096),
        (0, 4096),
        (!4095u64, 4096),
        (a + PAGE, 4096),
    ] {
        let e = neo_unmap(&mut m, p, addr, size).unwrap_err();
        assert_eq!(e.neo_code(), neo::E_INVAL, "{addr:#x} {size}");
    }
}

#[test]
fn neo_munmap_e_io_when_writeback_fails_mapping_left_exactly_as_it_was() {
    let (mut m, p, f) = setup(4);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 4 * 4096).unwrap();
    m.store(p, a, b"one").unwrap();
    m.store(p, a + 2 * PAGE, b"two").unwrap();
    let before = m.vm.maps(p).collect::<Vec<_>>();
    let entries_before = m.pt(p).entries.clone();
    m.pager.fail_writes = 2;
    let e = neo_unmap(&mut m, p, a, 4 * 4096).unwrap_err();
    assert_eq!(e, Errno::Io);
    assert_eq!(e.neo_code(), neo::E_IO);
    assert_eq!(m.vm.maps(p).collect::<Vec<_>>(), before);
    assert_eq!(
        m.pt(p).entries.keys().collect::<Vec<_>>(),
        entries_before.keys().collect::<Vec<_>>()
    );
    assert_eq!(m.vm.file_page_dirty(f, 0), Some(true));
    assert_eq!(m.vm.file_page_dirty(f, 2), Some(true));
    assert_eq!(m.load(p, a + 2 * PAGE, 3).unwrap(), b"two");
    // A later retry succeeds.
    m.pager.fail_writes = 0;
    neo_unmap(&mut m, p, a, 4 * 4096).unwrap();
    assert_eq!(&m.pager.contents(f)[8192..8195], b"two");
}

#[test]
fn neo_munmap_other_error_codes_come_from_error_h() {
    for e in [
        Errno::Inval,
        Errno::Io,
        Errno::NoMem,
        Errno::Perm,
        Errno::NoEnt,
        Errno::Busy,
        Errno::Exists,
    ] {
        assert!(e.neo_code() < 0);
    }
}

#[test]
fn neo_note_every_mapping_must_be_unmapped_to_avoid_resource_leaks() {
    let (mut m, p, f) = setup(8);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 8 * 4096).unwrap();
    let b = neo_map(&mut m, p, f, FileAccess::ReadOnly, 4096, 4096).unwrap();
    for i in 0..8 {
        m.load(p, a + i * PAGE, 1).unwrap();
    }
    m.load(p, b, 1).unwrap();
    neo_unmap(&mut m, p, a, 8 * 4096).unwrap();
    assert_eq!(m.vm.mapping_count(p), 1);
    neo_unmap(&mut m, p, b, 4096).unwrap();
    m.close(f).unwrap();
    assert_eq!(live_frames(&m), 0);
    assert_eq!(m.vm.object_count(), 0);
}

#[test]
fn neo_note_access_after_munmap_is_a_segmentation_fault() {
    let (mut m, p, f) = setup(1);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 4096).unwrap();
    m.store(p, a, b"x").unwrap();
    neo_unmap(&mut m, p, a, 4096).unwrap();
    assert_eq!(m.store(p, a, b"y"), Err(FaultError::NotMapped));
    assert_eq!(m.load(p, a, 1), Err(FaultError::NotMapped));
}

#[test]
fn neo_note_changes_written_during_munmap_reach_the_pager_not_necessarily_disk() {
    let (mut m, p, f) = setup(1);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 4096).unwrap();
    m.store(p, a, b"data").unwrap();
    neo_unmap(&mut m, p, a, 4096).unwrap();
    assert_eq!(m.pager.writes.len(), 1);
    assert_eq!(&m.pager.contents(f)[..4], b"data");
}

#[test]
fn neo_note_process_exit_without_munmap_cleans_all_mappings() {
    let (mut m, p, f) = setup(4);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 4 * 4096).unwrap();
    let b = anon(&mut m, p, 8 * PAGE, mman::MAP_PRIVATE);
    m.store(p, a + PAGE, b"exit").unwrap();
    m.store(p, b, b"anon").unwrap();
    m.exit(p).unwrap();
    assert_eq!(&m.pager.contents(f)[4096..4100], b"exit");
    assert_eq!(m.vm.stats().writeback_bytes, PAGE, "the dirty page, once");
    m.close(f).unwrap();
    assert_eq!(m.vm.stats().writeback_bytes, PAGE, "nothing left to write");
    assert_eq!(live_frames(&m), 0);
    assert_eq!(m.vm.object_count(), 0);
    assert_eq!(m.vm.address_space_count(), 0);
}

#[test]
fn neo_note_process_exit_after_close_writes_each_dirty_page_once() {
    let (mut m, p, f) = setup(8);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 8 * 4096).unwrap();
    for page in 0..8 {
        m.store(p, a + page * PAGE, b"x").unwrap();
    }
    m.close(f).unwrap(); // the mapping now holds the last reference
    m.exit(p).unwrap();
    assert_eq!(m.vm.stats().writeback_bytes, 8 * PAGE);
    assert!((0..8).all(|page| m.pager.contents(f)[page * 4096] == b'x'));
    assert_eq!(live_frames(&m), 0);
    assert_eq!(m.vm.object_count(), 0);
}

#[test]
fn neo_munmap_rejects_partial_unmap() {
    let (mut m, p, f) = setup(4);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 4 * 4096).unwrap();
    m.store(p, a + 3 * PAGE, b"keep").unwrap();
    assert_eq!(neo_unmap(&mut m, p, a, 2 * 4096), Err(Errno::Inval));
    assert_eq!(
        neo_unmap(&mut m, p, a + 2 * PAGE, 2 * 4096),
        Err(Errno::Inval)
    );
    assert_eq!(m.vm.maps(p).collect::<Vec<_>>().len(), 1);
    assert_eq!(m.load(p, a + 3 * PAGE, 4).unwrap(), b"keep");
    assert!(m.pager.writes.is_empty());
}

#[test]
fn neo_note_munmap_does_not_close_the_descriptor() {
    let (mut m, p, f) = setup(1);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 4096).unwrap();
    neo_unmap(&mut m, p, a, 4096).unwrap();
    assert_eq!(m.vm.file_size(f), Ok(4096));
    let mut buf = [0u8; 4];
    assert_eq!(m.with_io(|vm, io| vm.file_read(io, f, 0, &mut buf)), Ok(4));
    m.close(f).unwrap();
    assert_eq!(m.close(f), Err(Errno::Inval));
}

#[test]
fn neo_example_fill_mapping_then_munmap_then_close() {
    // The seed's first example: map 4096 bytes, mapped[i] = i, munmap, close.
    let mut m = Machine::new();
    let p = m.new_space();
    let f = m.create_file(3, &[0u8; 4096]);
    let mapped = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 4096).unwrap();
    assert_ne!(mapped, 0);
    let data: Vec<u8> = (0..4096).map(|i| i as u8).collect();
    m.store(p, mapped, &data).unwrap();
    assert_eq!(neo_unmap(&mut m, p, mapped, 4096), Ok(()));
    m.close(f).unwrap();
    assert_eq!(m.pager.contents(f), &data[..]);
    assert_eq!(live_frames(&m), 0);
}

#[test]
fn neo_example_read_only_processing_of_one_megabyte() {
    // The second example: O_RDONLY, map 1 MiB, process, munmap, close.
    let mut m = Machine::new();
    let p = m.new_space();
    let content = pattern(1 << 20, 5);
    let f = m.create_file(4, &content);
    let a = neo_map(&mut m, p, f, FileAccess::ReadOnly, 0, 1 << 20).unwrap();
    assert_eq!(m.load(p, a, 1 << 20).unwrap(), content);
    assert_eq!(m.store(p, a, b"no"), Err(FaultError::NotPermitted));
    neo_unmap(&mut m, p, a, 1 << 20).unwrap();
    m.close(f).unwrap();
    assert!(m.pager.writes.is_empty());
    assert_eq!(live_frames(&m), 0);
}

#[test]
fn neo_mmap_e_inval_for_bad_descriptor_offset_or_size() {
    let (mut m, p, f) = setup(2);
    for (off, size) in [
        (0, 0),
        (0, -5),
        (-4096, 4096),
        (100, 4096),
        (0, 3 * 4096),
        (4096, 8192),
        (i64::MAX & !4095, i64::MAX),
    ] {
        assert_eq!(
            neo_map(&mut m, p, f, FileAccess::ReadWrite, off, size),
            Err(Errno::Inval),
            "{off} {size}"
        );
    }
    assert_eq!(
        neo_map(&mut m, p, FileId(999), FileAccess::ReadWrite, 0, 4096),
        Err(Errno::Inval)
    );
}

#[test]
fn neo_mmap_e_perm_for_write_only_descriptor() {
    let (mut m, p, f) = setup(1);
    let e = neo_map(&mut m, p, f, FileAccess::WriteOnly, 0, 4096).unwrap_err();
    assert_eq!(e.neo_code(), neo::E_PERM);
}

#[test]
fn neo_mmap_e_io_when_file_cannot_be_read() {
    let (mut m, p, f) = setup(1);
    m.pager.fail_reads = true;
    let e = neo_map(&mut m, p, f, FileAccess::ReadOnly, 0, 4096).unwrap_err();
    assert_eq!(e.neo_code(), neo::E_IO);
    assert_eq!(m.vm.mapping_count(p), 0);
    assert_eq!(live_frames(&m), 0);
}

#[test]
fn neo_mmap_e_nomem_when_no_room() {
    let mut m = Machine::new();
    let p = m.new_space();
    let f = m.create_file(1, &[1u8; 4096]);
    // Fill the placement arena below MMAP_TOP with one fixed mapping.
    let len = layout::MMAP_TOP - layout::USER_BASE;
    m.with(p, |vm, hw| {
        vm.mmap(
            p,
            hw,
            layout::USER_BASE,
            len,
            0,
            mman::MAP_PRIVATE | mman::MAP_ANON | mman::MAP_FIXED,
            None,
            0,
        )
    })
    .unwrap();
    assert_eq!(
        neo_map(&mut m, p, f, FileAccess::ReadOnly, 0, 4096),
        Err(Errno::NoMem)
    );
}

#[test]
fn neo_mmap_is_shared_with_the_file_and_other_processes() {
    let (mut m, p, f) = setup(1);
    let q = m.new_space();
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 4096).unwrap();
    let b = neo_map(&mut m, q, f, FileAccess::ReadWrite, 0, 4096).unwrap();
    m.store(p, a, b"from p").unwrap();
    assert_eq!(m.load(q, b, 6).unwrap(), b"from p");
    let mut buf = [0u8; 6];
    m.with_io(|vm, io| vm.file_read(io, f, 0, &mut buf))
        .unwrap();
    assert_eq!(&buf, b"from p");
    m.with_io(|vm, io| vm.file_write(io, f, 0, b"by write"))
        .unwrap();
    assert_eq!(m.load(p, a, 8).unwrap(), b"by write");
}

#[test]
fn neo_mmap_access_past_the_mapped_size_faults() {
    let (mut m, p, f) = setup(4);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 5000).unwrap();
    // The rest of the last page is accessible, the next page is not.
    m.load(p, a + 8191, 1).unwrap();
    assert_eq!(m.load(p, a + 8192, 1), Err(FaultError::NotMapped));
}

// ---------------------------------------------------------------- BSD

#[test]
fn bsd_munmap_deletes_mappings_further_references_are_invalid() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, 3 * PAGE, mman::MAP_PRIVATE);
    m.store(p, a, b"x").unwrap();
    munmap(&mut m, p, a, 3 * PAGE).unwrap();
    assert_eq!(m.load(p, a, 1), Err(FaultError::NotMapped));
    assert_eq!(m.load(p, a + 2 * PAGE, 1), Err(FaultError::NotMapped));
}

#[test]
fn bsd_anonymous_contents_discarded_when_last_reference_goes() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, 4 * PAGE, mman::MAP_SHARED);
    m.store(p, a, b"gone").unwrap();
    assert_eq!(live_frames(&m), 1);
    munmap(&mut m, p, a, 4 * PAGE).unwrap();
    assert_eq!(live_frames(&m), 0);
    assert_eq!(m.vm.object_count(), 0);
    // A new anonymous mapping reads zero.
    let b = anon(&mut m, p, PAGE, mman::MAP_PRIVATE);
    assert_eq!(m.load(p, b, 4).unwrap(), [0; 4]);
}

#[test]
fn bsd_anonymous_private_pages_freed_on_munmap() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, 16 * PAGE, mman::MAP_PRIVATE);
    for i in 0..16 {
        m.store(p, a + i * PAGE, &[1]).unwrap();
    }
    assert_eq!(live_frames(&m), 16);
    munmap(&mut m, p, a, 16 * PAGE).unwrap();
    assert_eq!(live_frames(&m), 0);
}

fn shmget(m: &mut Machine, key: i64, size: u64, flags: u32) -> Result<neoos_mm::ShmId, Errno> {
    m.vm.shmget(key, size, flags)
}

#[test]
fn sysv_segment_persists_after_detach_until_destroyed() {
    let mut m = Machine::new();
    let p = m.new_space();
    let id = shmget(&mut m, 42, 2 * PAGE, shm::IPC_CREAT).unwrap();
    let a = m.with(p, |vm, hw| vm.shmat(p, hw, id, 0, 0)).unwrap();
    m.store(p, a + PAGE, b"persist").unwrap();
    m.with(p, |vm, hw| vm.shmdt(p, hw, a)).unwrap();
    assert_eq!(live_frames(&m), 1);
    // Found again by key, contents intact.
    let again = shmget(&mut m, 42, 0, 0).unwrap();
    assert_eq!(again, id);
    let b = m.with(p, |vm, hw| vm.shmat(p, hw, id, 0, 0)).unwrap();
    assert_eq!(m.load(p, b + PAGE, 7).unwrap(), b"persist");
    // Also munmap of the attach leaves the segment alone.
    munmap(&mut m, p, b, 2 * PAGE).unwrap();
    assert_eq!(live_frames(&m), 1);
    m.with_io(|vm, io| vm.shmctl(io, id, shm::IPC_RMID))
        .unwrap();
    assert_eq!(live_frames(&m), 0);
    assert_eq!(shmget(&mut m, 42, 0, 0), Err(Errno::NoEnt));
}

#[test]
fn sysv_destroyed_segment_freed_on_last_detach() {
    let mut m = Machine::new();
    let p = m.new_space();
    let q = m.new_space();
    let id = shmget(&mut m, shm::IPC_PRIVATE, PAGE, 0).unwrap();
    let a = m.with(p, |vm, hw| vm.shmat(p, hw, id, 0, 0)).unwrap();
    let b = m
        .with(q, |vm, hw| vm.shmat(q, hw, id, 0, shm::SHM_RDONLY))
        .unwrap();
    m.store(p, a, b"seg").unwrap();
    assert_eq!(m.load(q, b, 3).unwrap(), b"seg");
    assert_eq!(m.store(q, b, b"no"), Err(FaultError::NotPermitted));
    let st = m
        .with_io(|vm, io| vm.shmctl(io, id, shm::IPC_RMID))
        .unwrap();
    assert_eq!(st.attaches, 2);
    assert_eq!(live_frames(&m), 1);
    m.with(p, |vm, hw| vm.shmdt(p, hw, a)).unwrap();
    assert_eq!(m.load(q, b, 3).unwrap(), b"seg");
    m.with(q, |vm, hw| vm.shmdt(q, hw, b)).unwrap();
    assert_eq!(live_frames(&m), 0);
    assert_eq!(m.vm.object_count(), 0);
}

#[test]
fn sysv_shmget_errors() {
    let mut m = Machine::new();
    shmget(&mut m, 5, PAGE, shm::IPC_CREAT).unwrap();
    assert_eq!(
        shmget(&mut m, 5, PAGE, shm::IPC_CREAT | shm::IPC_EXCL),
        Err(Errno::Exists)
    );
    assert_eq!(shmget(&mut m, 5, 2 * PAGE, 0), Err(Errno::Inval));
    assert_eq!(shmget(&mut m, 6, PAGE, 0), Err(Errno::NoEnt));
    assert_eq!(shmget(&mut m, 7, 0, shm::IPC_CREAT), Err(Errno::Inval));
    assert_eq!(
        shmget(&mut m, 8, u64::MAX, shm::IPC_CREAT),
        Err(Errno::Inval)
    );
}

#[test]
fn sysv_segment_ids_run_out_at_the_limit_and_come_back_on_removal() {
    let mut m = Machine::new();
    let mut ids = Vec::new();
    for _ in 0..neoos_abi::limits::SHM_SEGMENTS_MAX {
        ids.push(shmget(&mut m, shm::IPC_PRIVATE, PAGE, shm::IPC_CREAT).unwrap());
    }
    assert_eq!(
        shmget(&mut m, shm::IPC_PRIVATE, PAGE, shm::IPC_CREAT),
        Err(Errno::NoSpace)
    );
    assert_eq!(Errno::NoSpace.posix_errno(), errno::ENOSPC);
    let id = ids.pop().unwrap();
    m.with_io(|vm, io| vm.shmctl(io, id, shm::IPC_RMID))
        .unwrap();
    assert!(shmget(&mut m, shm::IPC_PRIVATE, PAGE, shm::IPC_CREAT).is_ok());
}

#[test]
fn bsd_file_mapping_dirty_pages_written_back_eventually_not_at_munmap() {
    let (mut m, p, f) = setup(2);
    let a = m
        .with(p, |vm, hw| {
            vm.mmap(
                p,
                hw,
                0,
                2 * PAGE,
                mman::PROT_READ | mman::PROT_WRITE,
                mman::MAP_SHARED,
                Some((f, FileAccess::ReadWrite)),
                0,
            )
        })
        .unwrap();
    m.store(p, a + PAGE, b"later").unwrap();
    munmap(&mut m, p, a, 2 * PAGE).unwrap();
    // Dirty state stays in the page cache...
    assert!(m.pager.writes.is_empty());
    assert_eq!(m.vm.file_page_dirty(f, 1), Some(true));
    let mut buf = [0u8; 5];
    m.with_io(|vm, io| vm.file_read(io, f, 4096, &mut buf))
        .unwrap();
    assert_eq!(&buf, b"later");
    // ...and reaches the file when the file object is synced or let go.
    m.close(f).unwrap();
    assert_eq!(&m.pager.contents(f)[4096..4101], b"later");
    assert_eq!(live_frames(&m), 0);
}

#[test]
fn bsd_msync_forces_dirty_file_pages_to_be_written() {
    let (mut m, p, f) = setup(8);
    let a = m
        .with(p, |vm, hw| {
            vm.mmap(
                p,
                hw,
                0,
                8 * PAGE,
                mman::PROT_READ | mman::PROT_WRITE,
                mman::MAP_SHARED,
                Some((f, FileAccess::ReadWrite)),
                0,
            )
        })
        .unwrap();
    for i in [0, 1, 5, 6] {
        m.store(p, a + i * PAGE, b"s").unwrap();
    }
    // Only the range asked: pages 0..4.
    m.with(p, |vm, hw| vm.msync(p, hw, a, 4 * PAGE, mman::MS_SYNC))
        .unwrap();
    let runs: Vec<(u64, usize)> = m
        .pager
        .writes
        .iter()
        .map(|w| (w.first_page, w.pages))
        .collect();
    assert_eq!(runs, vec![(0, 2)]);
    assert_eq!(m.vm.file_page_dirty(f, 0), Some(false));
    assert_eq!(m.vm.file_page_dirty(f, 5), Some(true));
    // Stores after msync dirty the page again.
    m.store(p, a, b"t").unwrap();
    assert_eq!(m.vm.file_page_dirty(f, 0), Some(true));
    m.with(p, |vm, hw| vm.msync(p, hw, a, 8 * PAGE, mman::MS_SYNC))
        .unwrap();
    assert_eq!(m.pager.writes.len(), 3);
    assert_eq!(m.pager.contents(f)[5 * 4096], b's');
}

#[test]
fn bsd_msync_argument_errors() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, 2 * PAGE, mman::MAP_SHARED);
    let e = |m: &mut Machine, addr, len, fl| m.with(p, |vm, hw| vm.msync(p, hw, addr, len, fl));
    assert_eq!(
        e(&mut m, a, PAGE, mman::MS_SYNC | mman::MS_ASYNC),
        Err(Errno::Inval)
    );
    assert_eq!(e(&mut m, a, PAGE, 0x80), Err(Errno::Inval));
    assert_eq!(e(&mut m, a + 1, PAGE, mman::MS_SYNC), Err(Errno::Inval));
    assert_eq!(e(&mut m, a, 3 * PAGE, mman::MS_SYNC), Err(Errno::NoMem));
    assert_eq!(
        e(&mut m, a, PAGE, mman::MS_ASYNC | mman::MS_INVALIDATE),
        Ok(())
    );
}

#[test]
fn bsd_munmap_other_references_keep_memory_alive() {
    // Another mapping of the same object, another process after fork.
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, 2 * PAGE, mman::MAP_SHARED);
    m.store(p, a, b"alive").unwrap();
    let c = m.fork(p).unwrap();
    munmap(&mut m, p, a, 2 * PAGE).unwrap();
    assert_eq!(live_frames(&m), 1);
    assert_eq!(m.load(c, a, 5).unwrap(), b"alive");
    // Private memory shared copy-on-write after fork also survives.
    let b = anon(&mut m, c, PAGE, mman::MAP_PRIVATE);
    m.store(c, b, b"cow").unwrap();
    let d = m.fork(c).unwrap();
    munmap(&mut m, c, b, PAGE).unwrap();
    assert_eq!(m.load(d, b, 3).unwrap(), b"cow");
    m.exit(c).unwrap();
    m.exit(d).unwrap();
    m.exit(p).unwrap();
    assert_eq!(live_frames(&m), 0);
}

#[test]
fn bsd_munmap_partial_range_splits_mapping_and_keeps_the_rest() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, 5 * PAGE, mman::MAP_PRIVATE);
    for i in 0..5 {
        m.store(p, a + i * PAGE, &[i as u8 + 1]).unwrap();
    }
    munmap(&mut m, p, a + PAGE, 2 * PAGE).unwrap();
    let maps = m.vm.maps(p).collect::<Vec<_>>();
    assert_eq!(maps.len(), 2);
    assert_eq!((maps[0].start, maps[0].end), (a, a + PAGE));
    assert_eq!((maps[1].start, maps[1].end), (a + 3 * PAGE, a + 5 * PAGE));
    assert_eq!(m.load(p, a, 1).unwrap(), [1]);
    assert_eq!(m.load(p, a + 4 * PAGE, 1).unwrap(), [5]);
    assert_eq!(m.load(p, a + PAGE, 1), Err(FaultError::NotMapped));
    assert_eq!(live_frames(&m), 3);
}

#[test]
fn bsd_munmap_range_with_holes_is_fine() {
    let mut m = Machine::new();
    let p = m.new_space();
    let base = 0x4000_0000;
    for i in [0u64, 2, 4] {
        m.with(p, |vm, hw| {
            vm.mmap(
                p,
                hw,
                base + i * PAGE,
                PAGE,
                mman::PROT_READ,
                mman::MAP_PRIVATE | mman::MAP_ANON | mman::MAP_FIXED,
                None,
                0,
            )
        })
        .unwrap();
    }
    munmap(&mut m, p, base, 5 * PAGE).unwrap();
    assert_eq!(m.vm.mapping_count(p), 0);
    munmap(&mut m, p, base, 5 * PAGE).unwrap(); // nothing mapped: still fine
}

#[test]
fn bsd_munmap_returns_zero_on_success() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, PAGE, mman::MAP_PRIVATE);
    assert_eq!(munmap(&mut m, p, a, PAGE).map(|_| 0), Ok(0));
}

#[test]
fn bsd_munmap_einval_when_addr_not_page_aligned() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, 2 * PAGE, mman::MAP_PRIVATE);
    let e = munmap(&mut m, p, a + 1, PAGE).unwrap_err();
    assert_eq!(e.posix_errno(), errno::EINVAL);
    assert_eq!(m.vm.mapping_count(p), 1);
}

#[test]
fn bsd_munmap_einval_when_len_zero() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, PAGE, mman::MAP_PRIVATE);
    assert_eq!(munmap(&mut m, p, a, 0), Err(Errno::Inval));
}

#[test]
fn bsd_munmap_einval_when_len_negative() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, PAGE, mman::MAP_PRIVATE);
    assert_eq!(munmap(&mut m, p, a, (-4096i64) as u64), Err(Errno::Inval));
    assert_eq!(munmap(&mut m, p, a, u64::MAX), Err(Errno::Inval));
}

#[test]
fn bsd_munmap_einval_when_region_not_valid_address_space() {
    let mut m = Machine::new();
    let p = m.new_space();
    assert_eq!(munmap(&mut m, p, 0, PAGE), Err(Errno::Inval)); // NULL guard
    assert_eq!(
        munmap(&mut m, p, layout::USER_END - PAGE, 2 * PAGE),
        Err(Errno::Inval)
    );
    assert_eq!(munmap(&mut m, p, layout::USER_END, PAGE), Err(Errno::Inval));
    assert_eq!(munmap(&mut m, p, !4095u64, 2 * PAGE), Err(Errno::Inval)); // overflow
}

#[test]
fn bsd_getpagesize_is_4096() {
    assert_eq!(neoos_mm::getpagesize(), 4096);
}

#[test]
fn bsd_mprotect_splits_and_enforces() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, 3 * PAGE, mman::MAP_PRIVATE);
    m.store(p, a + PAGE, b"w").unwrap();
    m.with(p, |vm, hw| {
        vm.mprotect(p, hw, a + PAGE, PAGE, mman::PROT_READ)
    })
    .unwrap();
    assert_eq!(m.vm.mapping_count(p), 3);
    assert_eq!(m.store(p, a + PAGE, b"x"), Err(FaultError::NotPermitted));
    assert_eq!(m.load(p, a + PAGE, 1).unwrap(), b"w");
    m.store(p, a + 2 * PAGE, b"ok").unwrap();
    m.with(p, |vm, hw| vm.mprotect(p, hw, a, PAGE, mman::PROT_NONE))
        .unwrap();
    assert_eq!(m.load(p, a, 1), Err(FaultError::NotPermitted));
    // Holes: ENOMEM; shared file mapping of a read-only descriptor: EACCES.
    assert_eq!(
        m.with(p, |vm, hw| vm.mprotect(p, hw, a, 4 * PAGE, mman::PROT_READ)),
        Err(Errno::NoMem)
    );
    let f = m.create_file(9, &[0; 4096]);
    let b = m
        .with(p, |vm, hw| {
            vm.mmap(
                p,
                hw,
                0,
                PAGE,
                mman::PROT_READ,
                mman::MAP_SHARED,
                Some((f, FileAccess::ReadOnly)),
                0,
            )
        })
        .unwrap();
    assert_eq!(
        m.with(p, |vm, hw| vm.mprotect(p, hw, b, PAGE, mman::PROT_WRITE))
            .unwrap_err()
            .posix_errno(),
        errno::EACCES
    );
}

#[test]
fn bsd_madvise_dontneed_private_anon_reads_back_zero() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, 2 * PAGE, mman::MAP_PRIVATE);
    m.store(p, a, b"drop").unwrap();
    m.with(p, |vm, hw| {
        vm.madvise(p, hw, a, 2 * PAGE, mman::MADV_DONTNEED)
    })
    .unwrap();
    assert_eq!(live_frames(&m), 0);
    assert_eq!(m.load(p, a, 4).unwrap(), [0; 4]);
}

#[test]
fn bsd_madvise_dontneed_shared_file_pages_keep_dirty_state() {
    let (mut m, p, f) = setup(1);
    let a = m
        .with(p, |vm, hw| {
            vm.mmap(
                p,
                hw,
                0,
                PAGE,
                3,
                mman::MAP_SHARED,
                Some((f, FileAccess::ReadWrite)),
                0,
            )
        })
        .unwrap();
    m.store(p, a, b"keep").unwrap();
    m.with(p, |vm, hw| vm.madvise(p, hw, a, PAGE, mman::MADV_DONTNEED))
        .unwrap();
    assert!(m.pt(p).entries.is_empty());
    assert_eq!(m.vm.file_page_dirty(f, 0), Some(true));
    assert_eq!(m.load(p, a, 4).unwrap(), b"keep");
    m.with_io(|vm, io| vm.file_sync(io, f)).unwrap();
    assert_eq!(&m.pager.contents(f)[..4], b"keep");
}

#[test]
fn bsd_madvise_willneed_prefaults_and_bad_advice_is_inval() {
    let (mut m, p, f) = setup(4);
    let a = m
        .with(p, |vm, hw| {
            vm.mmap(
                p,
                hw,
                0,
                4 * PAGE,
                1,
                mman::MAP_PRIVATE,
                Some((f, FileAccess::ReadOnly)),
                0,
            )
        })
        .unwrap();
    m.with(p, |vm, hw| {
        vm.madvise(p, hw, a, 4 * PAGE, mman::MADV_WILLNEED)
    })
    .unwrap();
    assert_eq!(m.pt(p).entries.len(), 4);
    assert_eq!(
        m.with(p, |vm, hw| vm.madvise(p, hw, a, PAGE, 99)),
        Err(Errno::Inval)
    );
    assert_eq!(
        m.with(p, |vm, hw| vm.madvise(p, hw, a + 1, PAGE, 0)),
        Err(Errno::Inval)
    );
}

#[test]
fn bsd_mincore_reports_residency() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, 4 * PAGE, mman::MAP_PRIVATE);
    m.store(p, a + PAGE, &[1]).unwrap();
    m.store(p, a + 3 * PAGE, &[1]).unwrap();
    let mut v = [9u8; 4];
    m.vm.mincore(p, a, 4 * PAGE, &mut v).unwrap();
    assert_eq!(v, [0, 1, 0, 1]);
    assert_eq!(m.vm.mincore(p, a, 5 * PAGE, &mut [0; 5]), Err(Errno::NoMem));
    assert_eq!(m.vm.mincore(p, a, 4 * PAGE, &mut [0; 2]), Err(Errno::Fault));
}

#[test]
fn bsd_mmap_argument_checks() {
    let (mut m, p, f) = setup(1);
    let rw = Some((f, FileAccess::ReadWrite));
    let mut call = |len, prot, flags, file, off| {
        m.with(p, |vm, hw| vm.mmap(p, hw, 0, len, prot, flags, file, off))
    };
    assert_eq!(
        call(0, 1, mman::MAP_PRIVATE | mman::MAP_ANON, None, 0),
        Err(Errno::Inval)
    );
    assert_eq!(call(PAGE, 1, mman::MAP_ANON, None, 0), Err(Errno::Inval));
    assert_eq!(
        call(
            PAGE,
            1,
            mman::MAP_SHARED | mman::MAP_PRIVATE | mman::MAP_ANON,
            None,
            0
        ),
        Err(Errno::Inval)
    );
    assert_eq!(call(PAGE, 1, mman::MAP_SHARED, rw, 100), Err(Errno::Inval));
    assert_eq!(call(PAGE, 8, mman::MAP_SHARED, rw, 0), Err(Errno::Inval));
    assert_eq!(
        call(
            PAGE,
            3,
            mman::MAP_SHARED,
            Some((f, FileAccess::ReadOnly)),
            0
        ),
        Err(Errno::Access)
    );
    assert_eq!(
        call(
            PAGE,
            1,
            mman::MAP_SHARED,
            Some((f, FileAccess::WriteOnly)),
            0
        ),
        Err(Errno::Access)
    );
    assert!(call(
        PAGE,
        3,
        mman::MAP_PRIVATE,
        Some((f, FileAccess::ReadOnly)),
        0
    )
    .is_ok());
    assert_eq!(call(PAGE, 1, mman::MAP_SHARED, None, 0), Err(Errno::BadFd));
    assert_eq!(
        call(
            PAGE,
            1,
            mman::MAP_SHARED,
            Some((FileId(77), FileAccess::ReadWrite)),
            0
        ),
        Err(Errno::BadFd)
    );
    assert_eq!(
        call(u64::MAX, 1, mman::MAP_PRIVATE | mman::MAP_ANON, None, 0),
        Err(Errno::Inval)
    );
    assert_eq!(
        call(1 << 62, 1, mman::MAP_PRIVATE | mman::MAP_ANON, None, 0),
        Err(Errno::NoMem)
    );
    let fixed = mman::MAP_PRIVATE | mman::MAP_ANON | mman::MAP_FIXED;
    assert_eq!(
        m.with(p, |vm, hw| vm.mmap(
            p,
            hw,
            0x4000_0001,
            PAGE,
            1,
            fixed,
            None,
            0
        )),
        Err(Errno::Inval)
    );
}

#[test]
fn bsd_mmap_fixed_replaces_existing_mappings() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, 4 * PAGE, mman::MAP_PRIVATE);
    m.store(p, a + PAGE, b"old").unwrap();
    let fixed = mman::MAP_PRIVATE | mman::MAP_ANON | mman::MAP_FIXED;
    let b = m
        .with(p, |vm, hw| {
            vm.mmap(p, hw, a + PAGE, 2 * PAGE, 3, fixed, None, 0)
        })
        .unwrap();
    assert_eq!(b, a + PAGE);
    assert_eq!(m.vm.mapping_count(p), 3);
    assert_eq!(live_frames(&m), 0); // the old page went
    assert_eq!(m.load(p, a + PAGE, 3).unwrap(), [0; 3]);
}

#[test]
fn bsd_private_file_mapping_is_copy_on_write() {
    let (mut m, p, f) = setup(2);
    let a = m
        .with(p, |vm, hw| {
            vm.mmap(
                p,
                hw,
                0,
                2 * PAGE,
                3,
                mman::MAP_PRIVATE,
                Some((f, FileAccess::ReadOnly)),
                0,
            )
        })
        .unwrap();
    m.store(p, a, b"private").unwrap();
    let mut buf = [0u8; 7];
    m.with_io(|vm, io| vm.file_read(io, f, 0, &mut buf))
        .unwrap();
    assert_eq!(&buf[..], &pattern(7, 1)[..]);
    assert_eq!(m.load(p, a, 7).unwrap(), b"private");
    m.exit(p).unwrap();
    m.close(f).unwrap();
    assert!(m.pager.writes.is_empty());
    assert_eq!(live_frames(&m), 0);
}

#[test]
fn fork_private_memory_is_copy_on_write_and_shared_stays_shared() {
    let mut m = Machine::new();
    let p = m.new_space();
    let private = anon(&mut m, p, PAGE, mman::MAP_PRIVATE);
    let shared = anon(&mut m, p, PAGE, mman::MAP_SHARED);
    m.store(p, private, b"parent").unwrap();
    m.store(p, shared, b"both").unwrap();
    let c = m.fork(p).unwrap();
    m.store(c, private, b"child!").unwrap();
    assert_eq!(m.load(p, private, 6).unwrap(), b"parent");
    assert_eq!(m.load(c, private, 6).unwrap(), b"child!");
    m.store(c, shared, b"seen").unwrap();
    assert_eq!(m.load(p, shared, 4).unwrap(), b"seen");
    // Parent, now sole owner, reuses its page.
    let before = live_frames(&m);
    m.store(p, private, b"P").unwrap();
    assert_eq!(live_frames(&m), before);
    m.exit(c).unwrap();
    m.exit(p).unwrap();
    assert_eq!(live_frames(&m), 0);
}

#[test]
fn page_cache_file_write_extends_and_truncate_rules() {
    let (mut m, p, f) = setup(1);
    assert_eq!(
        m.with_io(|vm, io| vm.file_write(io, f, 10_000, b"tail")),
        Ok(4)
    );
    assert_eq!(m.vm.file_size(f), Ok(10_004));
    let mut buf = [7u8; 8];
    m.with_io(|vm, io| vm.file_read(io, f, 9_996, &mut buf))
        .unwrap();
    assert_eq!(&buf, b"\0\0\0\0tail");
    let a = m
        .with(p, |vm, hw| {
            vm.mmap(
                p,
                hw,
                0,
                3 * PAGE,
                1,
                mman::MAP_SHARED,
                Some((f, FileAccess::ReadWrite)),
                0,
            )
        })
        .unwrap();
    assert_eq!(
        m.with_io(|vm, io| vm.file_truncate(io, f, 10)),
        Err(Errno::Busy)
    );
    assert_eq!(m.with_io(|vm, io| vm.file_truncate(io, f, 20_000)), Ok(()));
    munmap(&mut m, p, a, 3 * PAGE).unwrap();
    m.with_io(|vm, io| vm.file_truncate(io, f, 10)).unwrap();
    m.with_io(|vm, io| vm.file_sync(io, f)).unwrap();
    assert_eq!(m.pager.contents(f).len(), 10);
    // Beyond end of file: bus error.
    let b = m
        .with(p, |vm, hw| {
            vm.mmap(
                p,
                hw,
                0,
                2 * PAGE,
                1,
                mman::MAP_SHARED,
                Some((f, FileAccess::ReadWrite)),
                0,
            )
        })
        .unwrap();
    assert_eq!(m.load(p, b, 10).unwrap(), &pattern(10, 1)[..]);
    assert_eq!(m.load(p, b + 10, 1).unwrap(), [0]);
    assert_eq!(m.load(p, b + PAGE, 1), Err(FaultError::BeyondEndOfFile));
}

#[test]
fn file_close_writeback_failure_reports_io_and_releases_pages() {
    let (mut m, _p, f) = setup(1);
    m.with_io(|vm, io| vm.file_write(io, f, 0, b"precious"))
        .unwrap();
    m.pager.fail_writes = 1;
    assert_eq!(m.close(f), Err(Errno::Io));
    // The last reference is gone: memory comes back even though the device failed.
    assert_eq!(live_frames(&m), 0);
    assert_eq!(m.vm.object_count(), 0);
}

#[test]
fn user_copies_resolve_through_mappings() {
    let (mut m, p, f) = setup(1);
    let text = m
        .with(p, |vm, hw| {
            vm.mmap(
                p,
                hw,
                0,
                PAGE,
                5,
                mman::MAP_PRIVATE,
                Some((f, FileAccess::ReadOnly)),
                0,
            )
        })
        .unwrap();
    assert_eq!(
        m.with(p, |vm, hw| vm.copy_to_user(p, hw, text, b"code", false)),
        Err(Errno::Fault)
    );
    m.with(p, |vm, hw| vm.copy_to_user(p, hw, text, b"code", true))
        .unwrap();
    assert_eq!(m.load(p, text, 4).unwrap(), b"code");
    assert_eq!(m.store(p, text, b"x"), Err(FaultError::NotPermitted));
    let mut buf = [0u8; 4];
    m.with_io(|vm, io| vm.file_read(io, f, 0, &mut buf))
        .unwrap();
    assert_eq!(&buf[..], &pattern(4, 1)[..]); // the file is untouched
    let s = m
        .with(p, |vm, hw| {
            vm.mmap(
                p,
                hw,
                0,
                2 * PAGE,
                3,
                mman::MAP_SHARED,
                Some((f, FileAccess::ReadWrite)),
                0,
            )
        })
        .unwrap();
    m.with(p, |vm, hw| {
        vm.copy_to_user(p, hw, s + 4090, b"abc\0", false)
    })
    .unwrap();
    assert_eq!(m.vm.file_page_dirty(f, 0), Some(true));
    let got = m
        .with(p, |vm, hw| vm.read_user_cstr(p, hw, s + 4090, 16))
        .unwrap();
    assert_eq!(got, b"abc");
    let mut out = [0u8; 3];
    m.with(p, |vm, hw| vm.copy_from_user(p, hw, s + 4090, &mut out))
        .unwrap();
    assert_eq!(&out, b"abc");
    assert_eq!(
        m.with(p, |vm, hw| vm.copy_from_user(p, hw, 0, &mut out)),
        Err(Errno::Fault)
    );
    assert_eq!(
        m.with(p, |vm, hw| vm.copy_from_user(p, hw, u64::MAX - 1, &mut out)),
        Err(Errno::Fault)
    );
}

#[test]
fn maps_listing_counts_resident_and_dirty_pages() {
    let (mut m, p, f) = setup(4);
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 4 * 4096).unwrap();
    m.load(p, a, 1).unwrap();
    m.store(p, a + PAGE, b"d").unwrap();
    let maps = m.vm.maps(p).collect::<Vec<_>>();
    assert_eq!((maps[0].resident, maps[0].dirty), (2, 1));
    let text = neoos_mm::format_maps(&maps);
    assert!(
        text.ends_with(&format!(
            "{:016x}-{:016x} rw-s file resident=2 dirty=1\n",
            a,
            a + 4 * 4096
        )),
        "{text}"
    );
}

#[test]
fn errno_conversions_match_the_abi() {
    assert_eq!(Errno::Inval.neo_code(), neo::E_INVAL);
    assert_eq!(Errno::Io.neo_code(), neo::E_IO);
    assert_eq!(Errno::NoMem.neo_code(), neo::E_NOMEM);
    assert_eq!(Errno::Perm.neo_code(), neo::E_PERM);
    assert_eq!(Errno::Inval.posix_errno(), errno::EINVAL);
    assert_eq!(Errno::Access.posix_errno(), errno::EACCES);
    assert_eq!(Errno::NoMem.posix_errno(), errno::ENOMEM);
    assert_eq!(Errno::Fault.posix_errno(), errno::EFAULT);
}

#[test]
fn fault_outside_mappings_is_not_mapped() {
    let mut m = Machine::new();
    let p = m.new_space();
    assert_eq!(
        m.with(p, |vm, hw| vm.handle_fault(p, hw, 0, Access::Read)),
        Err(FaultError::NotMapped)
    );
    assert_eq!(
        m.with(p, |vm, hw| vm.handle_fault(p, hw, u64::MAX, Access::Write)),
        Err(FaultError::NotMapped)
    );
}

#[test]
fn placement_without_hint_goes_down_from_mmap_top() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, PAGE, mman::MAP_PRIVATE);
    let b = anon(&mut m, p, 2 * PAGE, mman::MAP_PRIVATE);
    assert_eq!(a, layout::MMAP_TOP - PAGE);
    assert_eq!(b, a - 2 * PAGE);
}

#[test]
fn neo_mmap_placed_below_another_mapping_still_faults_past_its_size() {
    // A small hole right under a fixed mapping is the best fit; the guard
    // page keeps the neighbour out of reach.
    let (mut m, p, f) = setup(4);
    let fixed = 0x40_0000;
    let flags = mman::MAP_PRIVATE | mman::MAP_ANON | mman::MAP_FIXED;
    m.with(p, |vm, hw| {
        vm.mmap(
            p,
            hw,
            fixed,
            PAGE,
            mman::PROT_READ | mman::PROT_WRITE,
            flags,
            None,
            0,
        )
    })
    .unwrap();
    let a = neo_map(&mut m, p, f, FileAccess::ReadWrite, 0, 2 * 4096).unwrap();
    assert!(a < fixed, "placed in the hole under the fixed mapping");
    assert_eq!(m.load(p, a + 2 * PAGE, 1), Err(FaultError::NotMapped));
}

#[test]
fn would_split_says_whether_a_range_cuts_a_mapping() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, 4 * PAGE, mman::MAP_PRIVATE);
    assert!(!m.vm.would_split(p, a, 4 * PAGE), "the whole mapping");
    assert!(
        !m.vm.would_split(p, a - 8 * PAGE, 20 * PAGE),
        "more than the mapping"
    );
    assert!(m.vm.would_split(p, a, PAGE), "its first page");
    assert!(m.vm.would_split(p, a + 3 * PAGE, PAGE), "its last page");
    assert!(m.vm.would_split(p, a + PAGE, PAGE), "a middle page");
    assert!(!m.vm.would_split(p, a - 2 * PAGE, PAGE), "beside it");
}
