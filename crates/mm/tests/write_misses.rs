//! `write` into pages the page cache lacks: a page the write covers whole
//! is not read first (its bytes are all the write's); one it covers in
//! part is (the rest of the page is the file's), and a failed read there
//! writes nothing of that page.

use neoos_mm::testing::Machine;
use neoos_mm::{Errno, PAGE_SIZE};

const PAGE: usize = PAGE_SIZE as usize;

#[test]
fn a_page_written_whole_is_not_read_a_page_written_in_part_is() {
    let mut m = Machine::new();
    m.pager.disk_files = true;
    let contents: Vec<u8> = (0..4 * PAGE).map(|i| (i % 251) as u8).collect();
    let f = m.create_file(1, &contents);
    let whole = vec![7u8; 2 * PAGE];
    let wrote = m.with_io(|vm, io| vm.file_write(io, f, PAGE_SIZE, &whole));
    assert_eq!(wrote, Ok(2 * PAGE));
    assert_eq!(
        m.pager.reads, 0,
        "pages 1 and 2 written whole: nothing read"
    );
    assert!(!m.vm.file_page_to_read(f, 1));
    assert!(m.vm.file_page_to_read(f, 3));
    let wrote = m.with_io(|vm, io| vm.file_write(io, f, 3 * PAGE_SIZE + 10, b"part"));
    assert_eq!(wrote, Ok(4));
    assert_eq!(m.pager.reads, 1, "page 3 read first");
    let mut back = vec![0u8; 4 * PAGE];
    m.with_io(|vm, io| vm.file_read(io, f, 0, &mut back))
        .unwrap();
    assert_eq!(&back[..PAGE], &contents[..PAGE]);
    assert!(back[PAGE..3 * PAGE].iter().all(|&b| b == 7));
    assert_eq!(
        &back[3 * PAGE..3 * PAGE + 10],
        &contents[3 * PAGE..3 * PAGE + 10]
    );
    assert_eq!(&back[3 * PAGE + 10..3 * PAGE + 14], b"part");
    assert!(
        !m.vm.file_page_to_read(f, 4),
        "past the end: nothing to read"
    );
}

#[test]
fn a_failed_read_of_a_page_written_in_part_writes_nothing_of_it() {
    let mut m = Machine::new();
    m.pager.disk_files = true;
    let f = m.create_file(1, &[1u8; 2 * PAGE]);
    m.pager.fail_reads = true;
    let wrote = m.with_io(|vm, io| vm.file_write(io, f, 5, b"lost"));
    assert_eq!(wrote, Err(Errno::Io));
    // Whole page 0 then part of page 1: page 0 written, page 1 not.
    let bytes = vec![9u8; PAGE + 3];
    let wrote = m.with_io(|vm, io| vm.file_write(io, f, 0, &bytes));
    assert_eq!(wrote, Ok(PAGE), "the short count up to the failed page");
    assert_eq!(m.vm.file_page_dirty(f, 0), Some(true));
    assert_eq!(m.vm.file_page_dirty(f, 1), None, "page 1 not cached");
}
