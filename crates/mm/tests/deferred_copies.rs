//! Copy-on-write copies left to the kernel, to be made outside its lock:
//! with copies deferred, a user fault's first attempt that would copy a
//! page stops with `WaitForCopy`, names the frame to copy and changes
//! nothing; the fault again (which never defers) takes the copy made
//! beforehand when the frame source offers it for that frame, else copies
//! then. Without deferral nothing changes.

use neoos_abi::mman;
use neoos_mm::testing::Machine;
use neoos_mm::{Access, AsId, FaultError, FileAccess, FileId, Frame, FrameSource, PAGE_SIZE};

const RW: u32 = mman::PROT_READ | mman::PROT_WRITE;

fn map(m: &mut Machine, p: AsId, pages: u64, file: Option<FileId>) -> u64 {
    let flags = match file {
        Some(_) => mman::MAP_PRIVATE,
        None => mman::MAP_PRIVATE | mman::MAP_ANON,
    };
    let file = file.map(|f| (f, FileAccess::ReadWrite));
    m.with(p, |vm, hw| {
        vm.mmap(p, hw, 0, pages * PAGE_SIZE, RW, flags, file, 0)
    })
    .unwrap()
}

fn first_attempt(m: &mut Machine, p: AsId, addr: u64) -> Result<(), FaultError> {
    m.with(p, |vm, hw| {
        vm.handle_fault_deferring_reads(p, hw, addr, Access::Write)
    })
}

fn again(m: &mut Machine, p: AsId, addr: u64) -> Result<(), FaultError> {
    m.with(p, |vm, hw| {
        vm.handle_fault_deferring_reads_again(p, hw, addr, Access::Write)
    })
}

fn frame_at(m: &Machine, p: AsId, addr: u64) -> Frame {
    m.pt(p).entries[&addr].frame
}

/// A process with two pages of private anonymous memory holding 1s and
/// 2s, and its fork: every page shared copy-on-write.
fn forked() -> (Machine, AsId, AsId, u64) {
    let mut m = Machine::new();
    m.vm.set_copies_deferred(true);
    let p = m.new_space();
    let a = map(&mut m, p, 2, None);
    m.store(p, a, &[1; PAGE_SIZE as usize]).unwrap();
    m.store(p, a + PAGE_SIZE, &[2; PAGE_SIZE as usize]).unwrap();
    let q = m.fork(p).unwrap();
    m.load(q, a, 1).unwrap();
    m.load(p, a, 1).unwrap();
    (m, p, q, a)
}

/// The copy the kernel makes outside its lock.
fn copy_beforehand(m: &mut Machine, src: Frame) -> Frame {
    let copy = m.frames.alloc().unwrap();
    m.frames.copy(src, copy);
    m.frames.prepared_copy = Some((src, copy));
    copy
}

#[test]
fn a_deferred_copy_changes_nothing_and_the_fault_again_takes_the_copy_made_beforehand() {
    let (mut m, p, q, a) = forked();
    let shared = frame_at(&m, p, a);
    let tables = (m.pt(p).entries.clone(), m.pt(q).entries.clone());
    let (stats, live) = (m.vm.stats(), m.frames.live_count());

    assert_eq!(first_attempt(&mut m, p, a), Err(FaultError::WaitForCopy));
    assert_eq!(m.vm.copy_waited_for(), Some(shared));
    assert_eq!(m.vm.copy_waited_for(), None, "given once");
    assert_eq!((m.pt(p).entries.clone(), m.pt(q).entries.clone()), tables);
    assert_eq!((m.vm.stats(), m.frames.live_count()), (stats, live));

    let copy = copy_beforehand(&mut m, shared);
    assert_eq!(again(&mut m, p, a), Ok(()));
    assert_eq!(m.frames.prepared_copy, None, "the copy was taken");
    assert_eq!(frame_at(&m, p, a), copy);
    assert!(m.pt(p).entries[&a].prot.write);
    m.store(p, a, &[9; 8]).unwrap();
    assert_eq!(m.load(p, a, 9).unwrap(), [9, 9, 9, 9, 9, 9, 9, 9, 1]);
    assert_eq!(
        m.load(q, a, 2).unwrap(),
        [1, 1],
        "the other side keeps its page"
    );
    assert_eq!(m.frames.live_count() as u64, m.vm.stats().frames_in_use);
}

#[test]
fn a_copy_made_of_another_frame_is_not_taken() {
    let (mut m, p, _q, a) = forked();
    assert_eq!(first_attempt(&mut m, p, a), Err(FaultError::WaitForCopy));
    let other = frame_at(&m, p, a + PAGE_SIZE);
    let stale = copy_beforehand(&mut m, other);
    assert_eq!(again(&mut m, p, a), Ok(()));
    assert_ne!(frame_at(&m, p, a), stale);
    assert_eq!(
        m.load(p, a, 2).unwrap(),
        [1, 1],
        "copied from the right frame"
    );
    assert_eq!(
        m.frames.prepared_copy,
        Some((other, stale)),
        "left to its maker"
    );
}

#[test]
fn the_fault_again_never_defers_its_copy() {
    let (mut m, p, q, a) = forked();
    assert_eq!(first_attempt(&mut m, p, a), Err(FaultError::WaitForCopy));
    let _ = m.vm.copy_waited_for();
    assert_eq!(again(&mut m, p, a), Ok(()), "copied then, under the lock");
    assert_ne!(frame_at(&m, p, a), frame_at(&m, q, a));
}

#[test]
fn copies_are_made_at_once_unless_deferred() {
    let (mut m, p, q, a) = forked();
    m.vm.set_copies_deferred(false);
    assert_eq!(first_attempt(&mut m, p, a), Ok(()));
    assert_eq!(m.vm.copy_waited_for(), None);
    assert_ne!(frame_at(&m, p, a), frame_at(&m, q, a));
}

#[test]
fn a_page_the_other_side_gave_up_is_taken_without_a_copy_or_a_wait() {
    let (mut m, p, q, a) = forked();
    m.exit(q).unwrap();
    let before = m.frames.live_count();
    assert_eq!(first_attempt(&mut m, p, a), Ok(()));
    assert_eq!(m.frames.live_count(), before, "no frame copied");
}

#[test]
fn a_private_file_page_written_waits_for_its_copy_too() {
    let mut m = Machine::new();
    m.vm.set_copies_deferred(true);
    let f = m.create_file(1, &[7; PAGE_SIZE as usize]);
    let p = m.new_space();
    let a = map(&mut m, p, 1, Some(f));
    assert_eq!(m.load(p, a, 1).unwrap(), [7]);
    let cached = frame_at(&m, p, a);
    assert_eq!(first_attempt(&mut m, p, a), Err(FaultError::WaitForCopy));
    assert_eq!(m.vm.copy_waited_for(), Some(cached));
    let copy = copy_beforehand(&mut m, cached);
    assert_eq!(again(&mut m, p, a), Ok(()));
    assert_eq!(frame_at(&m, p, a), copy);
    m.store(p, a, &[8]).unwrap();
    assert_eq!(m.pager.contents(f)[0], 7, "the file keeps its byte");
}

#[test]
fn a_first_touch_of_fresh_memory_never_waits() {
    let mut m = Machine::new();
    m.vm.set_copies_deferred(true);
    let p = m.new_space();
    let a = map(&mut m, p, 1, None);
    assert_eq!(first_attempt(&mut m, p, a), Ok(()));
}
