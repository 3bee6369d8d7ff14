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
