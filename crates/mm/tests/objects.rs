//! The object model: every page lives in an object; private mappings show
//! their own object over the file (or nothing); fork puts a hidden object
//! under both sides, merged back into the survivor when one side goes.

use neoos_abi::{mman, shm};
use neoos_mm::testing::Machine;
use neoos_mm::{AsId, Errno, FileAccess, FileId, PAGE_SIZE};

const RW: u32 = mman::PROT_READ | mman::PROT_WRITE;

fn private_anon(m: &mut Machine, p: AsId, pages: u64) -> u64 {
    m.with(p, |vm, hw| {
        vm.mmap(
            p,
            hw,
            0,
            pages * PAGE_SIZE,
            RW,
            mman::MAP_PRIVATE | mman::MAP_ANON,
            None,
            0,
        )
    })
    .unwrap()
}

fn private_file(m: &mut Machine, p: AsId, f: FileId, pages: u64) -> u64 {
    m.with(p, |vm, hw| {
        vm.mmap(
            p,
            hw,
            0,
            pages * PAGE_SIZE,
            RW,
            mman::MAP_PRIVATE,
            Some((f, FileAccess::ReadWrite)),
            0,
        )
    })
    .unwrap()
}

fn live_frames(m: &Machine) -> usize {
    assert_eq!(m.frames.live_count() as u64, m.vm.stats().frames_in_use);
    m.frames.live_count()
}

#[test]
fn untouched_private_anonymous_memory_has_no_object() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = private_anon(&mut m, p, 4);
    assert_eq!(m.vm.object_count(), 0);
    m.store(p, a, b"x").unwrap();
    assert_eq!(m.vm.object_count(), 1);
    assert_eq!(live_frames(&m), 1);
}

#[test]
fn fork_then_child_exit_merges_the_hidden_object_back() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = private_anon(&mut m, p, 4);
    for i in 0..4 {
        m.store(p, a + i * PAGE_SIZE, &[i as u8]).unwrap();
    }
    // A fork-heavy parent: a thousand children, each writing and exiting.
    for round in 0..1000u64 {
        let c = m.fork(p).unwrap();
        // Parent's object, the hidden one, the child's.
        assert_eq!(m.vm.object_count(), 3);
        m.store(c, a + (round % 4) * PAGE_SIZE, b"child").unwrap();
        m.exit(c).unwrap();
        assert_eq!(m.vm.object_count(), 1, "round {round}");
        assert_eq!(live_frames(&m), 4, "round {round}");
    }
    for i in 0..4 {
        assert_eq!(m.load(p, a + i * PAGE_SIZE, 1).unwrap(), [i as u8]);
    }
    // The parent owns its pages again: writing copies nothing.
    m.store(p, a, b"P").unwrap();
    assert_eq!(live_frames(&m), 4);
}

#[test]
fn fork_then_parent_exit_leaves_the_child_sole_owner() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = private_anon(&mut m, p, 2);
    m.store(p, a, b"one").unwrap();
    m.store(p, a + PAGE_SIZE, b"two").unwrap();
    let c = m.fork(p).unwrap();
    m.exit(p).unwrap();
    assert_eq!(m.vm.object_count(), 1);
    assert_eq!(live_frames(&m), 2);
    m.store(c, a, b"ONE").unwrap();
    assert_eq!(live_frames(&m), 2);
    assert_eq!(m.load(c, a + PAGE_SIZE, 3).unwrap(), b"two");
    m.exit(c).unwrap();
    assert_eq!(live_frames(&m), 0);
    assert_eq!(m.vm.object_count(), 0);
}

#[test]
fn a_page_both_sides_unmapped_is_freed_before_either_exits() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = private_anon(&mut m, p, 8);
    for i in 0..8 {
        m.store(p, a + i * PAGE_SIZE, &[1]).unwrap();
    }
    let c = m.fork(p).unwrap();
    assert_eq!(live_frames(&m), 8);
    m.with(p, |vm, hw| vm.munmap(p, hw, a, 4 * PAGE_SIZE))
        .unwrap();
    // The child still sees those four pages.
    assert_eq!(live_frames(&m), 8);
    assert_eq!(m.load(c, a, 1).unwrap(), [1]);
    m.with(c, |vm, hw| vm.munmap(c, hw, a, 4 * PAGE_SIZE))
        .unwrap();
    assert_eq!(live_frames(&m), 4);
    m.exit(c).unwrap();
    m.exit(p).unwrap();
    assert_eq!(live_frames(&m), 0);
}

#[test]
fn dontneed_after_fork_shows_the_file_again_while_the_child_keeps_its_copy() {
    let mut m = Machine::new();
    let p = m.new_space();
    let f = m.create_file(3, &[b'f'; 2 * PAGE_SIZE as usize]);
    let a = private_file(&mut m, p, f, 2);
    m.store(p, a, b"private").unwrap();
    let c = m.fork(p).unwrap();
    m.with(p, |vm, hw| {
        vm.madvise(p, hw, a, 2 * PAGE_SIZE, mman::MADV_DONTNEED)
    })
    .unwrap();
    assert_eq!(m.load(p, a, 7).unwrap(), b"fffffff");
    assert_eq!(m.load(c, a, 7).unwrap(), b"private");
    // Writing after DONTNEED copies the file's page again.
    m.store(p, a, b"again").unwrap();
    assert_eq!(m.load(p, a, 7).unwrap(), b"againff");
    assert_eq!(m.load(c, a, 7).unwrap(), b"private");
    assert_eq!(m.pager.contents(f)[..7], *b"fffffff");
    m.exit(c).unwrap();
    assert_eq!(m.load(p, a, 7).unwrap(), b"againff");
    m.exit(p).unwrap();
    m.close(f).unwrap();
    assert_eq!(live_frames(&m), 0);
    assert_eq!(m.vm.object_count(), 0);
}

#[test]
fn generations_of_live_children_each_see_their_own_copy() {
    let mut m = Machine::new();
    let p = m.new_space();
    let f = m.create_file(4, &[b'.'; PAGE_SIZE as usize]);
    let a = private_file(&mut m, p, f, 1);
    let b = private_anon(&mut m, p, 1);
    m.store(p, b, b"p0").unwrap();
    let mut procs = vec![p];
    // Each generation forks from the last one, all stay alive.
    for g in 1..6u8 {
        let parent = *procs.last().unwrap();
        let c = m.fork(parent).unwrap();
        m.store(c, a, &[b'0' + g]).unwrap();
        m.store(c, b, &[b'p', b'0' + g]).unwrap();
        procs.push(c);
    }
    for (g, &id) in procs.iter().enumerate() {
        let expect_file = if g == 0 { b'.' } else { b'0' + g as u8 };
        assert_eq!(m.load(id, a, 1).unwrap(), [expect_file]);
        assert_eq!(m.load(id, b, 2).unwrap(), [b'p', b'0' + g as u8]);
    }
    // Exits in a mixed order; the survivors keep their views.
    for &gone in &[procs[2], procs[0], procs[4]] {
        m.exit(gone).unwrap();
    }
    for &g in &[1usize, 3, 5] {
        assert_eq!(m.load(procs[g], a, 1).unwrap(), [b'0' + g as u8]);
        assert_eq!(m.load(procs[g], b, 2).unwrap(), [b'p', b'0' + g as u8]);
    }
    for &g in &[1usize, 3, 5] {
        m.exit(procs[g]).unwrap();
    }
    m.close(f).unwrap();
    assert_eq!(live_frames(&m), 0);
    assert_eq!(m.vm.object_count(), 0);
    assert!(m.pager.writes.is_empty(), "private stores reached the file");
}

#[test]
fn a_removed_segment_id_stays_invalid_when_another_segment_is_made() {
    let mut m = Machine::new();
    let first = m.vm.shmget(shm::IPC_PRIVATE, PAGE_SIZE, 0).unwrap();
    m.with_io(|vm, io| vm.shmctl(io, first, shm::IPC_RMID))
        .unwrap();
    let second = m.vm.shmget(shm::IPC_PRIVATE, PAGE_SIZE, 0).unwrap();
    assert_ne!(first, second);
    assert_eq!(
        m.with_io(|vm, io| vm.shmctl(io, first, shm::IPC_STAT)),
        Err(Errno::Inval)
    );
    assert!(m
        .with_io(|vm, io| vm.shmctl(io, second, shm::IPC_STAT))
        .is_ok());
}

/// A process with private pages shared with a child and a shared file
/// mapping with a dirty page; ends in steps of `step` mappings (0: in one
/// teardown). Returns the frames left once the child has gone too, and the
/// file's contents.
fn exit_and_count(step: usize) -> (usize, Vec<u8>) {
    let mut m = Machine::new();
    let f = m.create_file(1, &[0u8; 3 * PAGE_SIZE as usize]);
    let p = m.new_space();
    let shared = m
        .with(p, |vm, hw| {
            let flags = mman::MAP_SHARED;
            let file = Some((f, FileAccess::ReadWrite));
            vm.mmap(p, hw, 0, 3 * PAGE_SIZE, RW, flags, file, 0)
        })
        .unwrap();
    for _ in 0..5 {
        let a = private_anon(&mut m, p, 2);
        m.store(p, a + PAGE_SIZE, b"x").unwrap();
    }
    m.store(p, shared + PAGE_SIZE, b"kept").unwrap();
    let c = m.fork(p).unwrap();
    if step > 0 {
        let mappings = |m: &Machine| m.vm.address_space(p).unwrap().mappings().count();
        loop {
            let before = mappings(&m);
            let done = m.with(p, |vm, hw| vm.unmap_lowest(p, hw, step)).unwrap();
            assert_eq!(mappings(&m), before.saturating_sub(step));
            assert_eq!(done, mappings(&m) == 0);
            if done {
                break;
            }
        }
    }
    m.exit(p).unwrap();
    m.exit(c).unwrap();
    m.close(f).unwrap();
    (live_frames(&m), m.pager.contents(f).to_vec())
}

#[test]
fn exit_in_steps_removes_a_step_at_a_time_and_ends_as_one_teardown() {
    let whole = exit_and_count(0);
    assert_eq!(&whole.1[PAGE_SIZE as usize..][..4], b"kept");
    assert_eq!(whole.0, 0);
    for step in [1, 2, 4, 100] {
        assert_eq!(exit_and_count(step), whole, "steps of {step}");
    }
}

#[test]
fn dirty_shared_files_lists_a_file_only_for_ranges_holding_its_dirty_pages() {
    let mut m = Machine::new();
    let f = m.create_file(1, &[0u8; 8 * PAGE_SIZE as usize]);
    let p = m.new_space();
    let a = m
        .with(p, |vm, hw| {
            let file = Some((f, FileAccess::ReadWrite));
            vm.mmap(p, hw, 0, 8 * PAGE_SIZE, RW, mman::MAP_SHARED, file, 0)
        })
        .unwrap();
    m.load(p, a, 8 * PAGE_SIZE as usize).unwrap();
    let dirty = |m: &Machine, from: u64, to: u64| {
        m.vm.dirty_shared_files(p, a + from * PAGE_SIZE, a + to * PAGE_SIZE, 16)
    };
    assert!(dirty(&m, 0, 8).is_empty(), "read, never written");
    m.store(p, a + 5 * PAGE_SIZE, b"x").unwrap();
    assert!(dirty(&m, 0, 5).is_empty());
    assert!(dirty(&m, 6, 8).is_empty());
    assert_eq!(dirty(&m, 5, 6), [f], "a range starting inside the mapping");
    let part =
        m.vm.dirty_shared_files(p, a + 5 * PAGE_SIZE, a + 5 * PAGE_SIZE + 1024, 16);
    assert_eq!(part, [f], "a length ending inside a page covers the page");
    assert_eq!(dirty(&m, 0, 8), [f]);
    assert_eq!(m.vm.dirty_shared_files(p, a, a + 8 * PAGE_SIZE, 0), []);
    for (start, end) in [
        (u64::MAX - 0x7ff, u64::MAX),
        (a + 5 * PAGE_SIZE + 1, a + 5 * PAGE_SIZE),
        (a + 6 * PAGE_SIZE, a),
        (0, u64::MAX),
    ] {
        assert!(m.vm.dirty_shared_files(p, start, end, 16).len() <= 1);
    }
}

#[test]
fn msync_notes_the_files_whose_mappings_held_dirty_pages_in_its_range() {
    let mut m = Machine::new();
    let f = m.create_file(1, &[0u8; 8 * PAGE_SIZE as usize]);
    let p = m.new_space();
    let a = m
        .with(p, |vm, hw| {
            let file = Some((f, FileAccess::ReadWrite));
            vm.mmap(p, hw, 0, 8 * PAGE_SIZE, RW, mman::MAP_SHARED, file, 0)
        })
        .unwrap();
    let msync = |m: &mut Machine, from: u64, len: u64| {
        let mut files = neoos_mm::DirtyFiles::default();
        let result = m.with(p, |vm, hw| {
            vm.msync_noting(p, hw, a + from, len, mman::MS_SYNC, &mut files)
        });
        (result, files.as_slice().to_vec())
    };
    assert_eq!(msync(&mut m, 0, 8 * PAGE_SIZE), (Ok(()), vec![]), "clean");
    m.store(p, a + 5 * PAGE_SIZE, b"x").unwrap();
    assert_eq!(msync(&mut m, 0, 5 * PAGE_SIZE), (Ok(()), vec![]));
    assert_eq!(
        msync(&mut m, 5 * PAGE_SIZE, 1024),
        (Ok(()), vec![f]),
        "a length ending inside a page covers the page"
    );
    assert_eq!(
        msync(&mut m, 0, 8 * PAGE_SIZE),
        (Ok(()), vec![]),
        "written: clean"
    );
    m.store(p, a + 7 * PAGE_SIZE, b"y").unwrap();
    assert_eq!(
        msync(&mut m, 0, 9 * PAGE_SIZE).1,
        vec![],
        "a hole: NoMem, nothing noted"
    );
    assert_eq!(msync(&mut m, 0, 8 * PAGE_SIZE), (Ok(()), vec![f]));
}
