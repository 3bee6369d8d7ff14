//! Write-backs made in three steps, as the kernel makes them for files on
//! its disk (gather the dirty pages under the kernel lock, write them
//! without it, clean them under it again): what is gathered is the pages'
//! bytes at the gather, batches are bounded, and a page stored to after
//! its copy, or mapped writable when copied, stays dirty.

use neoos_abi::mman;
use neoos_mm::testing::Machine;
use neoos_mm::{FileAccess, PAGE_SIZE};

const PAGE: usize = PAGE_SIZE as usize;
const RW: u32 = mman::PROT_READ | mman::PROT_WRITE;

fn write(m: &mut Machine, f: neoos_mm::FileId, page: u64, byte: u8) {
    m.with_io(|vm, io| vm.file_write(io, f, page * PAGE_SIZE, &[byte]))
        .unwrap();
}

#[test]
fn a_page_written_again_after_its_copy_stays_dirty_the_others_become_clean() {
    let mut m = Machine::new();
    let f = m.create_file(1, &vec![0u8; 16 * PAGE]);
    for i in [1u64, 2, 3, 7, 8, 12] {
        write(&mut m, f, i, i as u8);
    }
    let g = m
        .with_io(|vm, io| vm.file_gather_dirty(io, f, (0, u64::MAX), 2, 256))
        .unwrap()
        .expect("dirty pages");
    let runs: Vec<(u64, usize)> = g.runs.iter().map(|(at, b)| (*at, b.len() / PAGE)).collect();
    assert_eq!(runs, [(1, 3), (7, 2)], "at most two runs");
    assert_eq!(g.next, 9);
    assert_eq!(g.runs[0].1[PAGE], 2, "page 2's bytes at the gather");
    assert!(m.pager.writes.is_empty(), "the gather writes nothing");
    write(&mut m, f, 2, 99);
    m.vm.clean_written(&g);
    for (page, dirty) in [
        (1, false),
        (2, true),
        (3, false),
        (7, false),
        (8, false),
        (12, true),
    ] {
        assert_eq!(m.vm.file_page_dirty(f, page), Some(dirty), "page {page}");
    }
    let rest = m
        .with_io(|vm, io| vm.file_gather_dirty(io, f, (g.next, u64::MAX), 16, 256))
        .unwrap()
        .expect("page 12");
    assert_eq!(rest.runs.len(), 1);
    assert_eq!(rest.runs[0].0, 12);
    let again = m
        .with_io(|vm, io| vm.file_gather_dirty(io, f, (0, u64::MAX), 16, 256))
        .unwrap()
        .expect("pages 2 and 12");
    assert_eq!(again.runs[0].1[0], 99);
    m.vm.clean_written(&again);
    assert_eq!(
        m.with_io(|vm, io| vm.file_gather_dirty(io, f, (0, u64::MAX), 16, 256))
            .unwrap()
            .map(|g| g.next),
        None
    );
}

#[test]
fn a_page_mapped_writable_when_copied_stays_dirty_and_batches_are_bounded_by_pages() {
    let mut m = Machine::new();
    let f = m.create_file(1, &vec![0u8; 8 * PAGE]);
    let p = m.new_space();
    let a = m
        .with(p, |vm, hw| {
            vm.mmap(
                p,
                hw,
                0,
                8 * PAGE_SIZE,
                RW,
                mman::MAP_SHARED,
                Some((f, FileAccess::ReadWrite)),
                0,
            )
        })
        .unwrap();
    for page in 0..8u64 {
        m.store(p, a + page * PAGE_SIZE, &[page as u8 + 1]).unwrap();
    }
    let g = m
        .with_io(|vm, io| vm.file_gather_dirty(io, f, (0, u64::MAX), 16, 3))
        .unwrap()
        .expect("dirty pages");
    assert_eq!(g.runs.len(), 1);
    assert_eq!(g.runs[0].1.len(), 3 * PAGE, "three pages at most");
    assert_eq!(g.next, 3);
    assert!(g.pages.is_empty(), "writable pages are not to be cleaned");
    m.vm.clean_written(&g);
    assert_eq!(m.vm.file_page_dirty(f, 0), Some(true));
}

/// A `sys_mmap` of the first 4 pages of `f` in space `p`, pages 0 and 2
/// stored to: its address.
fn neo_mapped_and_stored(m: &mut Machine, p: neoos_mm::AsId, f: neoos_mm::FileId) -> u64 {
    let size = 4 * PAGE_SIZE as i64;
    let a = m
        .with(p, |vm, hw| {
            vm.neo_mmap(p, hw, f, FileAccess::ReadWrite, 0, size)
        })
        .unwrap();
    m.store(p, a, b"zero").unwrap();
    m.store(p, a + 2 * PAGE_SIZE, b"two").unwrap();
    a
}

#[test]
fn a_mapping_being_unmapped_refuses_changes_until_its_munmap_ends_and_keeps_later_stores() {
    use neoos_mm::{Errno, NeoUnmapWrite};
    let mut m = Machine::new();
    let f = m.create_file(1, &vec![0u8; 8 * PAGE]);
    let p = m.new_space();
    let a = neo_mapped_and_stored(&mut m, p, f);
    let size = 4 * PAGE_SIZE as i64;
    let len = 4 * PAGE_SIZE;
    let begun = m.with(p, |vm, hw| vm.neo_munmap_begin(p, hw, a, size, |_| true));
    let expected = NeoUnmapWrite {
        file: f,
        first_page: 0,
        end_page: 4,
    };
    assert_eq!(begun, Ok(Some(expected)));
    assert!(m
        .vm
        .address_space(p)
        .unwrap()
        .being_unmapped(a + PAGE_SIZE, a + 2 * PAGE_SIZE));
    let rw = mman::PROT_READ | mman::PROT_WRITE;
    let fixed = mman::MAP_PRIVATE | mman::MAP_ANON | mman::MAP_FIXED;
    let refused = [
        m.with(p, |vm, hw| vm.neo_munmap(p, hw, a, size)),
        m.with(p, |vm, hw| vm.munmap(p, hw, a + PAGE_SIZE, PAGE_SIZE)),
        m.with(p, |vm, hw| {
            vm.mprotect(p, hw, a, PAGE_SIZE, mman::PROT_READ)
        }),
        m.with(p, |vm, hw| {
            vm.mmap(p, hw, a + len - PAGE_SIZE, PAGE_SIZE, rw, fixed, None, 0)
        })
        .map(|_| ()),
        m.with(p, |vm, hw| vm.mremap(p, hw, a, len, PAGE_SIZE, 0, 0))
            .map(|_| ()),
    ];
    for (call, result) in refused.into_iter().enumerate() {
        assert_eq!(result, Err(Errno::BeingUnmapped), "call {call} waits");
    }
    assert_eq!(
        m.load(p, a, 4).unwrap(),
        b"zero",
        "the mapping is as it was"
    );
    // The pages are written (as the kernel does, in batches).
    let g = m
        .with_io(|vm, io| vm.file_gather_dirty(io, f, (0, 4), 16, 256))
        .unwrap()
        .expect("pages 0 and 2");
    assert_eq!(g.pages.len(), 2, "write-protected: both to be cleaned");
    // A store meanwhile (the entry is read-only: it faults, re-dirtying).
    m.store(p, a, b"ZERO").unwrap();
    m.vm.clean_written(&g);
    assert_eq!(
        m.vm.file_page_dirty(f, 0),
        Some(true),
        "stored after its copy"
    );
    assert_eq!(m.vm.file_page_dirty(f, 2), Some(false));
    let writes_before = m.pager.writes.len();
    m.with(p, |vm, hw| vm.neo_munmap_finish(p, hw, a, size))
        .unwrap();
    assert_eq!(
        m.pager.writes.len(),
        writes_before + 1,
        "page 0 written again"
    );
    assert!(m.load(p, a, 1).is_err(), "unmapped");
    assert!(!m.vm.address_space(p).unwrap().being_unmapped(a, a + len));
}

#[test]
fn an_abandoned_munmap_leaves_the_mapping_usable_and_a_fork_inherits_no_mark() {
    use neoos_mm::Errno;
    let mut m = Machine::new();
    let f = m.create_file(1, &vec![0u8; 8 * PAGE]);
    let p = m.new_space();
    let a = neo_mapped_and_stored(&mut m, p, f);
    let size = 4 * PAGE_SIZE as i64;
    let begun = m.with(p, |vm, hw| vm.neo_munmap_begin(p, hw, a, size, |_| true));
    assert!(matches!(begun, Ok(Some(_))));
    let child = m.fork(p).unwrap();
    assert!(!m
        .vm
        .address_space(child)
        .unwrap()
        .being_unmapped(a, a + 4 * PAGE_SIZE));
    m.vm.neo_munmap_abandon(p, a);
    assert_eq!(m.vm.file_page_dirty(f, 0), Some(true), "still dirty");
    m.store(p, a + 3 * PAGE_SIZE, b"three").unwrap();
    let protect = m.with(p, |vm, hw| {
        vm.mprotect(p, hw, a, 4 * PAGE_SIZE, mman::PROT_READ)
    });
    assert_eq!(protect, Ok(()));
    // A file the caller writes under the lock: the whole call at once.
    let unlocked = m.with(p, |vm, hw| vm.neo_munmap_begin(p, hw, a, size, |_| false));
    assert_eq!(unlocked, Ok(None));
    assert_eq!(
        m.vm.file_page_dirty(f, 3),
        Some(false),
        "written by the call"
    );
    let gone = m.with(p, |vm, hw| vm.neo_munmap(p, hw, a, size));
    assert_eq!(gone, Err(Errno::Inval));
}

/// Each run's buffer is allocated once at its run's length (a run cut by
/// the batch's page bound or by the range's end included): grown page by
/// page it was reallocated, its bytes copied again, at each doubling.
#[test]
fn each_run_is_gathered_into_a_buffer_of_its_exact_length() {
    let mut m = Machine::new();
    let f = m.create_file(1, &vec![0u8; 40 * PAGE]);
    for i in (0..5u64).chain(9..12).chain(20..37) {
        write(&mut m, f, i, i as u8 + 1);
    }
    let g = m
        .with_io(|vm, io| vm.file_gather_dirty(io, f, (0, 30), 16, 20))
        .unwrap()
        .expect("dirty pages");
    let runs: Vec<(u64, usize, usize)> = g
        .runs
        .iter()
        .map(|(at, b)| (*at, b.len() / PAGE, b.capacity() / PAGE))
        .collect();
    assert_eq!(runs, [(0, 5, 5), (9, 3, 3), (20, 10, 10)]);
    for (at, bytes) in &g.runs {
        for (i, page) in bytes.chunks(PAGE).enumerate() {
            assert_eq!(page[0], *at as u8 + i as u8 + 1, "page {}", at + i as u64);
        }
    }
    let bounded = m
        .with_io(|vm, io| vm.file_gather_dirty(io, f, (20, 40), 16, 6))
        .unwrap()
        .expect("dirty pages");
    assert_eq!(bounded.runs.len(), 1);
    assert_eq!(bounded.runs[0].1.len(), 6 * PAGE);
    assert_eq!(
        bounded.runs[0].1.capacity(),
        6 * PAGE,
        "cut by the page bound"
    );
}
