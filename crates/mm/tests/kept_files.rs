//! Kept file objects (`kept_files.rs`): with keeping on, a disk file
//! object whose last reference goes with dirty pages (a close, an exit's
//! teardown, a POSIX `munmap`) is kept, not written, until the kernel has
//! written it and lets it go; a RAM file, or keeping off, writes at once.

use neoos_abi::mman;
use neoos_mm::testing::Machine;
use neoos_mm::{FileAccess, FileId, PAGE_SIZE};

const PAGE: usize = PAGE_SIZE as usize;
const RW: u32 = mman::PROT_READ | mman::PROT_WRITE;

/// A machine whose files are on a disk, keeping on, with file 1 (4
/// pages) open once.
fn disk_machine() -> (Machine, FileId) {
    let mut m = Machine::new();
    m.pager.disk_files = true;
    m.vm.set_keep_released(true);
    let f = m.create_file(1, &[0u8; 4 * PAGE]);
    (m, f)
}

/// A shared read-write mapping of `f` (4 pages) in a new space, page 1
/// stored to: the space and the address.
fn mapped_and_stored(m: &mut Machine, f: FileId) -> (neoos_mm::AsId, u64) {
    let p = m.new_space();
    let a = m
        .with(p, |vm, hw| {
            let file = Some((f, FileAccess::ReadWrite));
            vm.mmap(p, hw, 0, 4 * PAGE_SIZE, RW, mman::MAP_SHARED, file, 0)
        })
        .unwrap();
    m.store(p, a + PAGE_SIZE, b"kept").unwrap();
    (p, a)
}

#[test]
fn an_exit_keeps_the_dirty_object_unwritten_until_it_is_written_and_let_go() {
    let (mut m, f) = disk_machine();
    let frames = m.frames.live_count();
    let (p, _) = mapped_and_stored(&mut m, f);
    m.close(f).unwrap();
    assert!(!m.vm.file_kept(f), "the mapping still holds it");
    m.exit(p).unwrap();
    assert!(m.pager.writes.is_empty(), "the exit wrote nothing");
    assert!(m.vm.file_kept(f));
    assert_eq!(m.vm.kept_file_count(), 1);
    assert_eq!(m.vm.file_page_dirty(f, 1), Some(true));
    let released = m.with_io(|vm, io| vm.file_release_kept(io, f));
    assert_eq!(released, Ok(false), "dirty: not let go");
    m.with_io(|vm, io| vm.file_sync(io, f)).unwrap();
    assert_eq!(&m.pager.contents(f)[PAGE..PAGE + 4], b"kept");
    let released = m.with_io(|vm, io| vm.file_release_kept(io, f));
    assert_eq!(released, Ok(true));
    assert_eq!(m.vm.kept_file_count(), 0);
    assert_eq!(m.vm.file_page_dirty(f, 1), None, "the object went");
    assert_eq!(m.frames.live_count(), frames, "its frames back");
}

#[test]
fn a_posix_munmap_and_a_close_keep_it_an_open_takes_it_up_and_a_ram_file_is_written_at_once() {
    let (mut m, f) = disk_machine();
    let (p, a) = mapped_and_stored(&mut m, f);
    m.close(f).unwrap();
    m.with(p, |vm, hw| vm.munmap(p, hw, a, 4 * PAGE_SIZE))
        .unwrap();
    assert!(m.pager.writes.is_empty(), "the munmap wrote nothing");
    assert!(m.vm.file_kept(f));
    // Opened again: the same object, whose close is a last close (the
    // kernel's reference does not count), and the kernel's release then
    // only drops its reference.
    m.vm.file_open_ref(f, 4 * PAGE_SIZE);
    assert!(
        m.vm.file_close_writes(f),
        "the kernel's reference does not count"
    );
    let released = m.with_io(|vm, io| vm.file_release_kept(io, f));
    assert_eq!(released, Ok(true), "held by the descriptor: let go dirty");
    assert!(!m.vm.file_kept(f));
    // The close of the mapping core keeps it again (the kernel's last
    // close writes it first, without the lock).
    m.close(f).unwrap();
    assert!(m.vm.file_kept(f));
    assert!(m.pager.writes.is_empty());
    // A RAM file is written at its last release as before.
    m.pager.kept_in_ram.insert(FileId(2));
    let g = m.create_file(2, &[0u8; 4 * PAGE]);
    m.with_io(|vm, io| vm.file_write(io, g, 0, b"ram")).unwrap();
    m.close(g).unwrap();
    assert!(!m.vm.file_kept(g));
    assert_eq!(&m.pager.contents(g)[..3], b"ram");
}

#[test]
fn an_exit_leaves_the_pages_of_an_object_held_elsewhere_dirty_and_release_now_writes_the_kept() {
    let (mut m, f) = disk_machine();
    let (p, _) = mapped_and_stored(&mut m, f);
    m.exit(p).unwrap();
    assert!(
        m.pager.writes.is_empty(),
        "held by its descriptor: not written"
    );
    assert_eq!(m.vm.file_page_dirty(f, 1), Some(true));
    assert!(!m.vm.file_kept(f));
    m.close(f).unwrap();
    assert!(m.vm.file_kept(f), "the last close of the mm keeps it too");
    m.pager.fail_writes = 1;
    let all = m.with_io(|vm, io| vm.release_kept_now(io));
    assert!(all.is_err(), "the failed write is reported");
    assert_eq!(
        m.vm.kept_file_count(),
        0,
        "and the object goes all the same"
    );
    assert_eq!(m.vm.file_page_dirty(f, 1), None);
    // Keeping is off after: a release writes at once again.
    let g = m.create_file(3, &[0u8; PAGE]);
    m.with_io(|vm, io| vm.file_write(io, g, 0, b"now")).unwrap();
    m.close(g).unwrap();
    assert_eq!(&m.pager.contents(g)[..3], b"now");
}

#[test]
fn keeping_off_writes_at_the_last_release_as_before() {
    let mut m = Machine::new();
    m.pager.disk_files = true;
    let f = m.create_file(1, &[0u8; 4 * PAGE]);
    let (p, _) = mapped_and_stored(&mut m, f);
    m.close(f).unwrap();
    m.exit(p).unwrap();
    assert_eq!(&m.pager.contents(f)[PAGE..PAGE + 4], b"kept");
    assert!(!m.vm.file_kept(f));
}
