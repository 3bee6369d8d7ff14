//! The fault hint (the last mapping a fault resolved in, which the zero-fill
//! fast path uses without searching the mappings) against a plain page
//! model: runs of sequential first-touch faults interleaved with the calls
//! that change mappings (munmap, mprotect, mmap with MAP_FIXED over them,
//! fork). Every fault must succeed or fail as the current mappings say and
//! read what was last stored; a forked child keeps what the parent had; a
//! stale hint would show as a fault that succeeds in an unmapped or
//! protected page, or a page taken from a mapping that is gone.

use neoos_abi::mman::{MAP_ANON, MAP_FIXED, MAP_PRIVATE, PROT_NONE, PROT_READ, PROT_WRITE};
use neoos_mm::testing::Machine;
use neoos_mm::{AsId, PAGE_SIZE};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Pages of the window the operations use.
const PAGES: u64 = 24;
const BASE: u64 = 0x4000_0000;
const PROTS: [u32; 3] = [PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE];

/// What the model keeps of a mapped page: (readable, writable, value).
type Page = (bool, bool, u8);

#[derive(Clone, Debug)]
enum Op {
    /// MAP_FIXED private anonymous mapping over `[first, first + pages)`.
    MapFixed {
        first: u64,
        pages: u64,
        prot: u32,
    },
    Munmap {
        first: u64,
        pages: u64,
    },
    Mprotect {
        first: u64,
        pages: u64,
        prot: u32,
    },
    /// Touches `pages` pages from `first` in order (stores `value`, or loads).
    Run {
        first: u64,
        pages: u64,
        store: Option<u8>,
    },
    Fork,
}

fn op() -> impl Strategy<Value = Op> {
    let first = 0..PAGES;
    let pages = 1..8u64;
    prop_oneof![
        2 => (first.clone(), pages.clone(), 0..3usize).prop_map(|(first, pages, p)| Op::MapFixed { first, pages, prot: PROTS[p] }),
        2 => (first.clone(), pages.clone()).prop_map(|(first, pages)| Op::Munmap { first, pages }),
        2 => (first.clone(), pages.clone(), 0..3usize).prop_map(|(first, pages, p)| Op::Mprotect { first, pages, prot: PROTS[p] }),
        6 => (first, 1..12u64, proptest::option::of(any::<u8>())).prop_map(|(first, pages, store)| Op::Run { first, pages, store }),
        1 => Just(Op::Fork),
    ]
}

fn addr(page: u64) -> u64 {
    BASE + page * PAGE_SIZE
}

struct World {
    m: Machine,
    id: AsId,
    pages: BTreeMap<u64, Page>,
    /// Forked children and the pages they had at the fork.
    children: Vec<(AsId, BTreeMap<u64, Page>)>,
}

impl World {
    fn apply(&mut self, op: &Op) {
        let id = self.id;
        match *op {
            Op::MapFixed { first, pages, prot } => {
                let flags = MAP_PRIVATE | MAP_ANON | MAP_FIXED;
                let len = pages * PAGE_SIZE;
                let r = self.m.with(id, |vm, hw| {
                    vm.mmap(id, hw, addr(first), len, prot, flags, None, 0)
                });
                assert_eq!(r, Ok(addr(first)));
                for p in first..first + pages {
                    let (read, write) = (prot & PROT_READ != 0, prot & PROT_WRITE != 0);
                    self.pages.insert(p, (read, write, 0));
                }
            }
            Op::Munmap { first, pages } => {
                let len = pages * PAGE_SIZE;
                let r = self
                    .m
                    .with(id, |vm, hw| vm.munmap(id, hw, addr(first), len));
                assert_eq!(r, Ok(()));
                for p in first..first + pages {
                    self.pages.remove(&p);
                }
            }
            Op::Mprotect { first, pages, prot } => {
                let len = pages * PAGE_SIZE;
                let r = self
                    .m
                    .with(id, |vm, hw| vm.mprotect(id, hw, addr(first), len, prot));
                let all_mapped = (first..first + pages).all(|p| self.pages.contains_key(&p));
                assert_eq!(r.is_ok(), all_mapped, "mprotect {first}+{pages}: {r:?}");
                if all_mapped {
                    for p in first..first + pages {
                        let page = self.pages.get_mut(&p).unwrap();
                        page.0 = prot & PROT_READ != 0;
                        page.1 = prot & PROT_WRITE != 0;
                    }
                }
            }
            Op::Run {
                first,
                pages,
                store,
            } => {
                for p in first..first + pages {
                    self.touch(p, store);
                }
            }
            Op::Fork => {
                let child = self.m.fork(id).expect("fork");
                self.children.push((child, self.pages.clone()));
            }
        }
    }

    /// One store or load at page `p`, checked against the model.
    fn touch(&mut self, p: u64, store: Option<u8>) {
        let page = self.pages.get_mut(&p);
        match store {
            Some(v) => {
                let r = self.m.store(self.id, addr(p), &[v; 8]);
                let allowed = page.as_ref().is_some_and(|pg| pg.1);
                assert_eq!(r.is_ok(), allowed, "store at page {p}: {r:?}");
                if let Some(pg) = page.filter(|_| allowed) {
                    pg.2 = v;
                }
            }
            None => {
                let r = self.m.load(self.id, addr(p), 8);
                match page {
                    Some(&mut (true, _, v)) => assert_eq!(r, Ok(vec![v; 8]), "load at page {p}"),
                    _ => assert!(r.is_err(), "load at page {p} succeeded: {r:?}"),
                }
            }
        }
    }

    /// Children read what the parent had at the fork; everything exits and
    /// every frame comes back.
    fn finish(mut self) {
        for (child, pages) in std::mem::take(&mut self.children) {
            for (&p, &(read, _, v)) in &pages {
                if read {
                    assert_eq!(
                        self.m.load(child, addr(p), 8),
                        Ok(vec![v; 8]),
                        "child page {p}"
                    );
                }
            }
            self.m.exit(child).unwrap();
        }
        self.m.exit(self.id).unwrap();
        assert_eq!(self.m.frames.live_count(), 0, "frames left after exit");
        assert_eq!(self.m.vm.object_count(), 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn faults_agree_with_the_mappings_after_every_change(ops in proptest::collection::vec(op(), 1..40)) {
        let mut m = Machine::new();
        let id = m.new_space();
        let mut w = World { m, id, pages: BTreeMap::new(), children: Vec::new() };
        for op in &ops {
            w.apply(op);
        }
        w.finish();
    }
}
