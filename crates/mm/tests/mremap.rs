//! `mremap` (Linux): shrink, grow in place, move (with and without
//! `MREMAP_FIXED`) keep the mapping's pages; hostile arguments change
//! nothing; every frame comes back.

use neoos_abi::mman;
use neoos_mm::testing::Machine;
use neoos_mm::{AsId, Errno, FaultError, FileAccess, FileId, PAGE_SIZE};

const RW: u32 = mman::PROT_READ | mman::PROT_WRITE;
const MAYMOVE: u32 = mman::MREMAP_MAYMOVE;
const FIXED: u32 = mman::MREMAP_FIXED;
const P: u64 = PAGE_SIZE;

fn map(m: &mut Machine, p: AsId, pages: u64, flags: u32, file: Option<FileId>) -> u64 {
    let file = file.map(|f| (f, FileAccess::ReadWrite));
    m.with(p, |vm, hw| vm.mmap(p, hw, 0, pages * P, RW, flags, file, 0))
        .unwrap()
}

fn anon(m: &mut Machine, p: AsId, pages: u64) -> u64 {
    map(m, p, pages, mman::MAP_PRIVATE | mman::MAP_ANON, None)
}

fn remap(
    m: &mut Machine,
    p: AsId,
    old: u64,
    old_len: u64,
    new_len: u64,
    flags: u32,
    new: u64,
) -> Result<u64, Errno> {
    m.with(p, |vm, hw| {
        vm.mremap(p, hw, old, old_len, new_len, flags, new)
    })
}

fn unmap(m: &mut Machine, p: AsId, addr: u64, len: u64) {
    m.with(p, |vm, hw| vm.munmap(p, hw, addr, len)).unwrap();
}

/// Page `i` of a test pattern: its first bytes name it.
fn pattern(i: u64) -> Vec<u8> {
    format!("page {i} of the pattern").into_bytes()
}

fn fill(m: &mut Machine, p: AsId, at: u64, pages: u64) {
    for i in 0..pages {
        m.store(p, at + i * P, &pattern(i)).unwrap();
    }
}

fn holds_pattern(m: &mut Machine, p: AsId, at: u64, pages: u64) -> bool {
    (0..pages).all(|i| {
        let want = pattern(i);
        m.load(p, at + i * P, want.len()).unwrap() == want
    })
}

fn live_frames(m: &Machine) -> usize {
    assert_eq!(m.frames.live_count() as u64, m.vm.stats().frames_in_use);
    m.frames.live_count()
}

fn mapping_count(m: &Machine, p: AsId) -> usize {
    m.vm.address_space(p).unwrap().mapping_count()
}

#[test]
fn a_moved_private_anonymous_mapping_keeps_its_contents_and_leaves_nothing_behind() {
    let mut m = Machine::new();
    let p = m.new_space();
    let baseline = live_frames(&m);
    let a = anon(&mut m, p, 3);
    fill(&mut m, p, a, 3);
    // Something right after it: growing in place is impossible.
    let blocker = anon(&mut m, p, 1);
    let a = if blocker == a + 3 * P {
        a
    } else {
        // Placement went elsewhere: put the blocker right after by hand.
        unmap(&mut m, p, blocker, P);
        let b = m
            .with(p, |vm, hw| {
                vm.mmap(
                    p,
                    hw,
                    a + 3 * P,
                    P,
                    RW,
                    mman::MAP_PRIVATE | mman::MAP_ANON | mman::MAP_FIXED,
                    None,
                    0,
                )
            })
            .unwrap();
        assert_eq!(b, a + 3 * P);
        a
    };
    let frames = live_frames(&m);
    assert_eq!(
        remap(&mut m, p, a, 3 * P, 5 * P, 0, 0),
        Err(Errno::NoMem),
        "no room in place, may not move"
    );
    assert!(holds_pattern(&mut m, p, a, 3));
    let b = remap(&mut m, p, a, 3 * P, 5 * P, MAYMOVE, 0).unwrap();
    assert_ne!(b, a);
    assert!(
        holds_pattern(&mut m, p, b, 3),
        "the moved range shows the same pages"
    );
    assert_eq!(
        m.load(p, b + 4 * P, 4).unwrap(),
        [0; 4],
        "the grown part is zero"
    );
    assert_eq!(
        live_frames(&m),
        frames + 1,
        "no page copied: one new zero page"
    );
    assert_eq!(
        m.touch(p, a, neoos_mm::Access::Read),
        Err(FaultError::NotMapped)
    );
    assert!(
        m.pt(p).entries.keys().all(|&va| va < a || va >= a + 3 * P),
        "old entries removed"
    );
    unmap(&mut m, p, b, 5 * P);
    unmap(&mut m, p, a + 3 * P, P);
    assert_eq!(live_frames(&m), baseline);
    assert_eq!(mapping_count(&m, p), 0);
}

#[test]
fn shrinking_unmaps_the_tail_and_frees_its_pages() {
    let mut m = Machine::new();
    let p = m.new_space();
    let baseline = live_frames(&m);
    let a = anon(&mut m, p, 4);
    fill(&mut m, p, a, 4);
    assert_eq!(remap(&mut m, p, a, 4 * P, P + 1, 0, 0), Ok(a));
    assert_eq!(live_frames(&m), baseline + 2);
    assert!(holds_pattern(&mut m, p, a, 2));
    assert_eq!(
        m.touch(p, a + 2 * P, neoos_mm::Access::Read),
        Err(FaultError::NotMapped)
    );
    unmap(&mut m, p, a, 2 * P);
    assert_eq!(live_frames(&m), baseline);
    // As Linux: equal lengths change nothing and check nothing.
    assert_eq!(remap(&mut m, p, a, P, P, 0, 0), Ok(a));
    assert_eq!(mapping_count(&m, p), 0);
}

#[test]
fn growing_in_place_keeps_the_address_and_the_pages() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, 4);
    fill(&mut m, p, a, 4);
    unmap(&mut m, p, a + 2 * P, 2 * P);
    assert_eq!(remap(&mut m, p, a, 2 * P, 4 * P, 0, 0), Ok(a));
    assert_eq!(mapping_count(&m, p), 1);
    assert!(holds_pattern(&mut m, p, a, 2));
    assert_eq!(
        m.load(p, a + 2 * P, 8).unwrap(),
        [0; 8],
        "an unmapped page comes back as zero"
    );
}

#[test]
fn a_moved_shared_file_mapping_shows_and_writes_the_file() {
    let mut m = Machine::new();
    let p = m.new_space();
    let contents: Vec<u8> = (0..3 * P).map(|i| (i / P) as u8 + b'a').collect();
    let f = m.create_file(1, &contents);
    let baseline = live_frames(&m);
    let a = map(&mut m, p, 2, mman::MAP_SHARED, Some(f));
    m.store(p, a + P, b"XY").unwrap();
    let dest = anon(&mut m, p, 8) + 2 * P;
    unmap(&mut m, p, dest - 2 * P, 8 * P);
    let b = remap(&mut m, p, a, 2 * P, 3 * P, MAYMOVE | FIXED, dest).unwrap();
    assert_eq!(b, dest);
    assert_eq!(m.load(p, b, 1).unwrap(), b"a");
    assert_eq!(m.load(p, b + P, 3).unwrap(), b"XYb");
    assert_eq!(
        m.load(p, b + 2 * P, 1).unwrap(),
        b"c",
        "the grown part shows more of the file"
    );
    m.store(p, b + 2 * P, b"Z").unwrap();
    m.with(p, |vm, hw| vm.msync(p, hw, b, 3 * P, mman::MS_SYNC))
        .unwrap();
    let disk = m.pager.contents(f);
    assert_eq!(&disk[P as usize..P as usize + 2], b"XY");
    assert_eq!(disk[2 * P as usize], b'Z');
    unmap(&mut m, p, b, 3 * P);
    m.close(f).unwrap();
    assert_eq!(live_frames(&m), baseline);
}

#[test]
fn a_moved_private_file_mapping_keeps_its_private_pages_over_the_file() {
    let mut m = Machine::new();
    let p = m.new_space();
    let contents: Vec<u8> = (0..2 * P).map(|i| (i / P) as u8 + b'a').collect();
    let f = m.create_file(2, &contents);
    let baseline = live_frames(&m);
    let a = map(&mut m, p, 2, mman::MAP_PRIVATE, Some(f));
    m.store(p, a, b"own").unwrap();
    let b = remap(&mut m, p, a, 2 * P, 2 * P, MAYMOVE | FIXED, a + 16 * P).unwrap();
    assert_eq!(m.load(p, b, 3).unwrap(), b"own");
    assert_eq!(m.load(p, b + P, 1).unwrap(), b"b");
    assert_eq!(
        &m.pager.contents(f)[..3],
        b"aaa",
        "private stores stay private"
    );
    unmap(&mut m, p, b, 2 * P);
    m.close(f).unwrap();
    assert_eq!(live_frames(&m), baseline);
}

#[test]
fn a_fixed_move_replaces_what_was_there_and_may_shrink() {
    let mut m = Machine::new();
    let p = m.new_space();
    let baseline = live_frames(&m);
    let a = anon(&mut m, p, 3);
    fill(&mut m, p, a, 3);
    let other = anon(&mut m, p, 2);
    m.store(p, other, b"old").unwrap();
    assert_eq!(
        remap(&mut m, p, a, 3 * P, 2 * P, MAYMOVE | FIXED, other),
        Ok(other)
    );
    assert!(holds_pattern(&mut m, p, other, 2));
    assert_eq!(
        m.touch(p, a + 2 * P, neoos_mm::Access::Read),
        Err(FaultError::NotMapped)
    );
    assert_eq!(mapping_count(&m, p), 1);
    unmap(&mut m, p, other, 2 * P);
    assert_eq!(live_frames(&m), baseline);
}

#[test]
fn moving_the_middle_of_a_mapping_leaves_both_sides() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, 5);
    fill(&mut m, p, a, 5);
    let b = remap(&mut m, p, a + 2 * P, P, P, MAYMOVE | FIXED, a + 32 * P).unwrap();
    assert_eq!(m.load(p, b, 6).unwrap(), &pattern(2)[..6]);
    assert!(holds_pattern(&mut m, p, a, 2));
    assert_eq!(m.load(p, a + 3 * P, 6).unwrap(), &pattern(3)[..6]);
    assert_eq!(
        m.touch(p, a + 2 * P, neoos_mm::Access::Read),
        Err(FaultError::NotMapped)
    );
    assert_eq!(mapping_count(&m, p), 3);
}

#[test]
fn a_piece_growing_over_another_pieces_pages_gets_its_own_object() {
    let mut m = Machine::new();
    let p = m.new_space();
    let baseline = live_frames(&m);
    let a = anon(&mut m, p, 2);
    fill(&mut m, p, a, 2);
    // The first page moves away; grown, it must not show the second's page.
    let b = remap(&mut m, p, a, P, P, MAYMOVE | FIXED, a + 32 * P).unwrap();
    let frames = live_frames(&m);
    let c = remap(&mut m, p, b, P, 2 * P, MAYMOVE, 0).unwrap();
    assert_eq!(live_frames(&m), frames, "no frame copied");
    assert_eq!(m.load(p, c, 6).unwrap(), &pattern(0)[..6]);
    assert_eq!(m.load(p, c + P, 4).unwrap(), [0; 4]);
    assert_eq!(m.load(p, a + P, 6).unwrap(), &pattern(1)[..6]);
    m.store(p, c + P, b"new").unwrap();
    assert_eq!(m.load(p, a + P, 6).unwrap(), &pattern(1)[..6]);
    unmap(&mut m, p, c, 2 * P);
    unmap(&mut m, p, a + P, P);
    assert_eq!(live_frames(&m), baseline);
    assert_eq!(m.vm.object_count(), 0);
}

#[test]
fn a_private_file_piece_growing_over_another_piece_shows_the_file() {
    let mut m = Machine::new();
    let p = m.new_space();
    let contents: Vec<u8> = (0..2 * P).map(|i| (i / P) as u8 + b'a').collect();
    let f = m.create_file(4, &contents);
    let baseline = live_frames(&m);
    let a = map(&mut m, p, 2, mman::MAP_PRIVATE, Some(f));
    m.store(p, a, b"one").unwrap();
    m.store(p, a + P, b"two").unwrap();
    let b = remap(&mut m, p, a, P, P, MAYMOVE | FIXED, a + 32 * P).unwrap();
    // In place this time: the page after `b` is free.
    assert_eq!(remap(&mut m, p, b, P, 2 * P, 0, 0), Ok(b));
    assert_eq!(m.load(p, b, 3).unwrap(), b"one");
    assert_eq!(
        m.load(p, b + P, 3).unwrap(),
        b"bbb",
        "the file, not the other piece's copy"
    );
    assert_eq!(m.load(p, a + P, 3).unwrap(), b"two");
    unmap(&mut m, p, b, 2 * P);
    unmap(&mut m, p, a + P, P);
    m.close(f).unwrap();
    assert_eq!(live_frames(&m), baseline);
    assert_eq!(m.vm.object_count(), 0);
}

#[test]
fn after_a_fork_growing_over_another_pieces_pages_is_refused() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, 2);
    fill(&mut m, p, a, 2);
    let b = remap(&mut m, p, a, P, P, MAYMOVE | FIXED, a + 32 * P).unwrap();
    let child = m.fork(p).unwrap();
    assert_eq!(remap(&mut m, p, b, P, 2 * P, MAYMOVE, 0), Err(Errno::NoMem));
    assert_eq!(m.load(p, b, 6).unwrap(), &pattern(0)[..6]);
    assert_eq!(m.load(p, a + P, 6).unwrap(), &pattern(1)[..6]);
    assert_eq!(m.load(child, b, 6).unwrap(), &pattern(0)[..6]);
}

#[test]
fn hostile_arguments_change_nothing() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = anon(&mut m, p, 2);
    fill(&mut m, p, a, 2);
    // A mapping right after it: growing in place is impossible.
    let next = m.with(p, |vm, hw| {
        vm.mmap(
            p,
            hw,
            a + 2 * P,
            P,
            RW,
            mman::MAP_PRIVATE | mman::MAP_ANON | mman::MAP_FIXED,
            None,
            0,
        )
    });
    assert_eq!(next, Ok(a + 2 * P));
    let frames = live_frames(&m);
    let cases: &[(u64, u64, u64, u32, u64, Errno)] = &[
        (a + 1, P, P, 0, 0, Errno::Inval),
        (a, P, 0, 0, 0, Errno::Inval),
        (a, 0, P, 0, 0, Errno::Inval),
        (a, P, P, 8, 0, Errno::Inval),
        (a, P, P, mman::MREMAP_DONTUNMAP | MAYMOVE, 0, Errno::Inval),
        (a, P, P, FIXED, a + 64 * P, Errno::Inval),
        (a, 2 * P, 2 * P, MAYMOVE | FIXED, a + P, Errno::Inval),
        (
            a,
            2 * P,
            2 * P,
            MAYMOVE | FIXED,
            a + 64 * P + 1,
            Errno::Inval,
        ),
        (
            a,
            2 * P,
            2 * P,
            MAYMOVE | FIXED,
            u64::MAX - P + 1,
            Errno::Inval,
        ),
        (a, u64::MAX, P, 0, 0, Errno::Inval),
        (a, P, u64::MAX - 10, MAYMOVE, 0, Errno::Inval),
        (a, P, 1 << 62, MAYMOVE, 0, Errno::NoMem),
        (a, 3 * P, 4 * P, MAYMOVE, 0, Errno::Fault),
        (a + P, 2 * P, 3 * P, MAYMOVE, 0, Errno::Fault),
        (a + 64 * P, P, 2 * P, MAYMOVE, 0, Errno::Fault),
        (0, P, 2 * P, MAYMOVE, 0, Errno::Fault),
        (a, 3 * P, 3 * P, MAYMOVE | FIXED, a + 64 * P, Errno::Fault),
        (0, 2 * P, P, 0, 0, Errno::Inval),
        (a, 2 * P, 4 * P, 0, 0, Errno::NoMem),
    ];
    for &(old, old_len, new_len, flags, new, want) in cases {
        let got = remap(&mut m, p, old, old_len, new_len, flags, new);
        assert_eq!(
            got,
            Err(want),
            "mremap({old:#x}, {old_len:#x}, {new_len:#x}, {flags}, {new:#x})"
        );
        assert!(holds_pattern(&mut m, p, a, 2));
        assert_eq!(mapping_count(&m, p), 2);
        assert_eq!(live_frames(&m), frames);
    }
}

#[test]
fn madv_free_drops_private_anonymous_pages_and_refuses_other_mappings() {
    let mut m = Machine::new();
    let p = m.new_space();
    let baseline = live_frames(&m);
    let a = anon(&mut m, p, 2);
    fill(&mut m, p, a, 2);
    let free = |m: &mut Machine, at: u64, len: u64| {
        m.with(p, |vm, hw| vm.madvise(p, hw, at, len, mman::MADV_FREE))
    };
    assert_eq!(free(&mut m, a, 2 * P), Ok(()));
    assert_eq!(live_frames(&m), baseline, "the pages are freed at once");
    assert_eq!(m.load(p, a, 8).unwrap(), [0; 8], "and read back as zero");
    let contents = vec![b'f'; P as usize];
    let f = m.create_file(3, &contents);
    let shared = map(&mut m, p, 1, mman::MAP_SHARED | mman::MAP_ANON, None);
    let private_file = map(&mut m, p, 1, mman::MAP_PRIVATE, Some(f));
    m.store(p, shared, b"kept").unwrap();
    m.store(p, private_file, b"mine").unwrap();
    assert_eq!(free(&mut m, shared, P), Err(Errno::Inval));
    assert_eq!(free(&mut m, private_file, P), Err(Errno::Inval));
    assert_eq!(m.load(p, shared, 4).unwrap(), b"kept");
    assert_eq!(m.load(p, private_file, 4).unwrap(), b"mine");
}
