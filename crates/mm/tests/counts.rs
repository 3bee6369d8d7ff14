//! Reference and page counts: every mapping reference is given back exactly
//! once (objects go with their last reference, none is left behind), and
//! counts that once went below zero unnoticed now stay exact (a count going
//! below zero panics in these debug builds).

use neoos_abi::{mman, shm};
use neoos_mm::testing::Machine;
use neoos_mm::{Access, PAGE_SIZE};

const RW: u32 = mman::PROT_READ | mman::PROT_WRITE;

#[test]
fn every_mapping_reference_is_given_back_after_split_fork_and_munmap() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = m
        .with(p, |vm, hw| {
            vm.mmap(
                p,
                hw,
                0,
                4 * PAGE_SIZE,
                RW,
                mman::MAP_SHARED | mman::MAP_ANON,
                None,
                0,
            )
        })
        .unwrap();
    m.store(p, a + PAGE_SIZE, b"x").unwrap();
    // Three pieces, three references to one object.
    m.with(p, |vm, hw| {
        vm.mprotect(p, hw, a + PAGE_SIZE, PAGE_SIZE, mman::PROT_READ)
    })
    .unwrap();
    assert_eq!(m.vm.mapping_count(p), 3);
    assert_eq!(m.vm.object_count(), 1);
    let c = m.fork(p).unwrap();
    m.with(p, |vm, hw| vm.munmap(p, hw, a, 4 * PAGE_SIZE))
        .unwrap();
    // The child's three references keep the object and its page.
    assert_eq!(m.vm.object_count(), 1);
    assert_eq!(m.load(c, a + PAGE_SIZE, 1).unwrap(), b"x");
    m.with(c, |vm, hw| vm.munmap(c, hw, a + PAGE_SIZE, PAGE_SIZE))
        .unwrap();
    assert_eq!(m.vm.object_count(), 1);
    m.exit(c).unwrap();
    m.exit(p).unwrap();
    assert_eq!(m.vm.object_count(), 0);
    assert_eq!(m.frames.live_count(), 0);
    assert_eq!(m.vm.stats().frames_in_use, 0);
}

#[test]
fn writable_segment_pages_detach_without_a_writer_count_going_below_zero() {
    let mut m = Machine::new();
    let p = m.new_space();
    let id = m.vm.shmget(shm::IPC_PRIVATE, PAGE_SIZE, 0).unwrap();
    let a = m.with(p, |vm, hw| vm.shmat(p, hw, id, 0, 0)).unwrap();
    // A writable entry of a segment page, then its removal: only shared
    // file pages count writable entries, so nothing is decremented here.
    m.touch(p, a, Access::Write).unwrap();
    m.with(p, |vm, hw| {
        vm.mprotect(p, hw, a, PAGE_SIZE, mman::PROT_READ)
    })
    .unwrap();
    m.with(p, |vm, hw| vm.shmdt(p, hw, a)).unwrap();
    m.with_io(|vm, io| vm.shmctl(io, id, shm::IPC_RMID))
        .unwrap();
    assert_eq!(m.vm.object_count(), 0);
    assert_eq!(m.frames.live_count(), 0);
}

#[test]
fn writable_shared_anonymous_pages_unmap_without_a_writer_count_going_below_zero() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = m
        .with(p, |vm, hw| {
            vm.mmap(
                p,
                hw,
                0,
                2 * PAGE_SIZE,
                RW,
                mman::MAP_SHARED | mman::MAP_ANON,
                None,
                0,
            )
        })
        .unwrap();
    m.store(p, a, b"ab").unwrap();
    m.store(p, a + PAGE_SIZE, b"cd").unwrap();
    m.with(p, |vm, hw| vm.munmap(p, hw, a, 2 * PAGE_SIZE))
        .unwrap();
    assert_eq!(m.vm.object_count(), 0);
    assert_eq!(m.frames.live_count(), 0);
}
