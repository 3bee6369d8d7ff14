//! `MemorySystem::grow_anonymous` (the program break's growth): the private
//! anonymous mapping ending at the old end grows over the free range after
//! it, its pages kept and the new ones zero, only when no other mapping,
//! fork or handle can see pages of its object past its end; anything else
//! is refused with nothing changed.

use neoos_abi::mman;
use neoos_mm::testing::Machine;
use neoos_mm::{Access, AsId, PAGE_SIZE};

const RW: u32 = mman::PROT_READ | mman::PROT_WRITE;
const ANON: u32 = mman::MAP_PRIVATE | mman::MAP_ANON;
const P: u64 = PAGE_SIZE;
/// Where the tests' heaps start.
const HEAP: u64 = 0x4000_0000;

fn map_at(m: &mut Machine, p: AsId, at: u64, pages: u64, prot: u32, flags: u32) {
    let flags = flags | mman::MAP_FIXED;
    let got = m.with(p, |vm, hw| {
        vm.mmap(p, hw, at, pages * P, prot, flags, None, 0)
    });
    assert_eq!(got, Ok(at));
}

fn grow(m: &mut Machine, p: AsId, end: u64, new_end: u64) -> bool {
    m.vm.grow_anonymous(p, (HEAP, end), new_end, RW)
}

fn mappings(m: &Machine, p: AsId) -> Vec<(u64, u64)> {
    m.vm.maps(p).map(|i| (i.start, i.end)).collect()
}

/// Writes page `i`'s number into each of `pages` pages from `at`.
fn fill(m: &mut Machine, p: AsId, at: u64, pages: u64) {
    for i in 0..pages {
        m.store(p, at + i * P, &(i + 1).to_le_bytes()).unwrap();
    }
}

fn word(m: &mut Machine, p: AsId, at: u64) -> u64 {
    let bytes = m.load(p, at, 8).unwrap();
    u64::from_le_bytes(bytes.try_into().unwrap())
}

fn live_frames(m: &Machine) -> usize {
    assert_eq!(m.frames.live_count() as u64, m.vm.stats().frames_in_use);
    m.frames.live_count()
}

#[test]
fn growth_extends_the_mapping_keeping_its_pages_and_the_new_ones_read_zero() {
    let mut m = Machine::new();
    let p = m.new_space();
    let baseline = live_frames(&m);
    map_at(&mut m, p, HEAP, 4, RW, ANON);
    fill(&mut m, p, HEAP, 4);
    for step in 0..100 {
        let end = HEAP + (4 + step) * P;
        assert!(grow(&mut m, p, end, end + P));
    }
    assert_eq!(mappings(&m, p), vec![(HEAP, HEAP + 104 * P)]);
    for i in 0..4 {
        assert_eq!(word(&mut m, p, HEAP + i * P), i + 1);
    }
    for i in 4..104 {
        assert_eq!(word(&mut m, p, HEAP + i * P), 0);
    }
    m.touch(p, HEAP + 103 * P, Access::Write).unwrap();
    m.exit(p).unwrap();
    assert_eq!(live_frames(&m), baseline);
}

#[test]
fn a_mapping_never_touched_grows_too() {
    let mut m = Machine::new();
    let p = m.new_space();
    map_at(&mut m, p, HEAP, 1, RW, ANON);
    assert!(grow(&mut m, p, HEAP + P, HEAP + 3 * P));
    assert_eq!(mappings(&m, p), vec![(HEAP, HEAP + 3 * P)]);
    assert_eq!(word(&mut m, p, HEAP + 2 * P), 0);
}

#[test]
fn pages_given_up_by_a_shrink_come_back_zero() {
    let mut m = Machine::new();
    let p = m.new_space();
    map_at(&mut m, p, HEAP, 8, RW, ANON);
    fill(&mut m, p, HEAP, 8);
    m.with(p, |vm, hw| vm.munmap(p, hw, HEAP + 4 * P, 4 * P))
        .unwrap();
    assert!(grow(&mut m, p, HEAP + 4 * P, HEAP + 8 * P));
    assert_eq!(mappings(&m, p), vec![(HEAP, HEAP + 8 * P)]);
    assert_eq!(word(&mut m, p, HEAP + 3 * P), 4);
    for i in 4..8 {
        assert_eq!(word(&mut m, p, HEAP + i * P), 0);
    }
}

#[test]
fn growth_is_refused_with_nothing_changed_where_it_cannot_be_in_place() {
    let mut m = Machine::new();
    let p = m.new_space();
    map_at(&mut m, p, HEAP, 2, RW, ANON);
    fill(&mut m, p, HEAP, 2);
    // No mapping ends at the old end.
    assert!(!grow(&mut m, p, HEAP + P, HEAP + 3 * P));
    assert!(!grow(&mut m, p, HEAP + 3 * P, HEAP + 4 * P));
    // The range is taken.
    map_at(&mut m, p, HEAP + 3 * P, 1, RW, ANON);
    assert!(!grow(&mut m, p, HEAP + 2 * P, HEAP + 4 * P));
    assert_eq!(
        mappings(&m, p),
        vec![(HEAP, HEAP + 2 * P), (HEAP + 3 * P, HEAP + 4 * P)]
    );
    // A mapping below the floor (the data segment below the heap).
    let below = HEAP - 4 * P;
    map_at(&mut m, p, below, 1, RW, ANON);
    assert!(!grow(&mut m, p, below + P, below + 2 * P));
    m.with(p, |vm, hw| vm.munmap(p, hw, below, P)).unwrap();
    // Another protection: the growth would be a mapping of its own.
    let q = m.new_space();
    map_at(&mut m, q, HEAP, 2, mman::PROT_READ, ANON);
    assert!(!grow(&mut m, q, HEAP + 2 * P, HEAP + 3 * P));
    // Shared memory.
    map_at(
        &mut m,
        q,
        HEAP + 8 * P,
        2,
        RW,
        mman::MAP_SHARED | mman::MAP_ANON,
    );
    assert!(!grow(&mut m, q, HEAP + 10 * P, HEAP + 11 * P));
    assert_eq!(
        mappings(&m, q),
        vec![(HEAP, HEAP + 2 * P), (HEAP + 8 * P, HEAP + 10 * P)]
    );
}

#[test]
fn growth_is_refused_when_another_mapping_or_a_fork_shows_the_object() {
    let mut m = Machine::new();
    let p = m.new_space();
    map_at(&mut m, p, HEAP, 4, RW, ANON);
    fill(&mut m, p, HEAP, 4);
    // A cut leaves two pieces of one object: neither grows over what the
    // other's pages of it could be.
    m.with(p, |vm, hw| vm.munmap(p, hw, HEAP + P, P)).unwrap();
    assert!(!grow(&mut m, p, HEAP + P, HEAP + 2 * P));
    assert_eq!(
        mappings(&m, p),
        vec![(HEAP, HEAP + P), (HEAP + 2 * P, HEAP + 4 * P)]
    );
    // The first piece gone, the second is the object's one mapping again.
    m.with(p, |vm, hw| vm.munmap(p, hw, HEAP, P)).unwrap();
    assert!(grow(&mut m, p, HEAP + 4 * P, HEAP + 5 * P));
    assert_eq!(word(&mut m, p, HEAP + 4 * P), 0);
    assert_eq!(word(&mut m, p, HEAP + 3 * P), 4);
    // After a fork the parent's object shadows the shared one.
    let child = m.fork(p).unwrap();
    assert!(!grow(&mut m, p, HEAP + 5 * P, HEAP + 6 * P));
    assert!(!grow(&mut m, child, HEAP + 5 * P, HEAP + 6 * P));
    assert_eq!(mappings(&m, p), vec![(HEAP + 2 * P, HEAP + 5 * P)]);
    assert_eq!(word(&mut m, child, HEAP + 2 * P), 3);
}
