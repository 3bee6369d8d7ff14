//! The hole index against a plain model (the set of used pages): after any
//! sequence of reserves and releases around `MMAP_TOP`, the holes are exactly
//! the maximal free runs (split at `MMAP_TOP`), and placement picks the best
//! fit the model picks.

use neoos_abi::layout::{MMAP_TOP, USER_BASE, USER_END};
use neoos_mm::holes::HoleIndex;
use proptest::prelude::*;
use std::collections::BTreeSet;

const PAGE: u64 = neoos_mm::PAGE_SIZE;
/// Pages of the window the operations touch, centred on `MMAP_TOP`.
const WINDOW: u64 = 24;
const WINDOW_START: u64 = MMAP_TOP - WINDOW / 2 * PAGE;

#[derive(Clone, Debug)]
enum Op {
    Reserve(u64, u64),
    /// Releases one of the ranges reserved so far (by position, modulo).
    Release(usize),
    /// Reserves `pages` where placement puts them (from the freed-range
    /// cache when it is the best fit), as mmap without a hint does.
    Place(u64),
    /// Releases the latest reserved range (the munmap of the pair).
    ReleaseLatest,
}

fn op() -> impl Strategy<Value = Op> {
    let anywhere = (any::<bool>(), 0..WINDOW, 1..8u64, any::<usize>()).prop_map(
        |(reserve, first, pages, i)| {
            let start = WINDOW_START + first * PAGE;
            let end = (start + pages * PAGE).min(WINDOW_START + WINDOW * PAGE);
            if reserve {
                Op::Reserve(start, end)
            } else {
                Op::Release(i)
            }
        },
    );
    prop_oneof![
        4 => anywhere,
        1 => (1..4u64).prop_map(Op::Place),
        1 => Just(Op::ReleaseLatest),
    ]
}

/// The free runs of the model, split at `MMAP_TOP`.
fn model_holes(used: &BTreeSet<u64>) -> Vec<(u64, u64)> {
    let mut holes = Vec::new();
    let mut free_from = USER_BASE;
    for &page in used.iter().chain([USER_END].iter()) {
        if free_from < page {
            if free_from < MMAP_TOP && MMAP_TOP < page {
                holes.push((free_from, MMAP_TOP));
                holes.push((MMAP_TOP, page));
            } else {
                holes.push((free_from, page));
            }
        }
        free_from = page + PAGE;
    }
    holes
}

fn model_place(holes: &[(u64, u64)], len: u64) -> Option<u64> {
    holes
        .iter()
        .filter(|&&(s, e)| e <= MMAP_TOP && e - s >= len)
        .min_by_key(|&&(s, e)| (e - s, std::cmp::Reverse(s)))
        .map(|&(_, e)| e - len)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn holes_match_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let mut index = HoleIndex::new();
        let mut used = BTreeSet::new();
        let mut reserved = Vec::new();
        for op in ops {
            match op {
                Op::Reserve(s, e) => {
                    let free = (s..e).step_by(PAGE as usize).all(|p| !used.contains(&p));
                    prop_assert_eq!(index.reserve(s, e), free);
                    if free {
                        used.extend((s..e).step_by(PAGE as usize));
                        reserved.push((s, e));
                    }
                }
                // Only reserved ranges are released, as the address space does.
                Op::Release(i) if !reserved.is_empty() => {
                    let (s, e) = reserved.swap_remove(i % reserved.len());
                    index.release(s, e);
                    for p in (s..e).step_by(PAGE as usize) {
                        used.remove(&p);
                    }
                }
                Op::Release(_) => {}
                Op::Place(pages) => {
                    let len = pages * PAGE;
                    let Some(s) = index.place(len) else { continue };
                    prop_assert!(index.reserve(s, s + len));
                    used.extend((s..s + len).step_by(PAGE as usize));
                    reserved.push((s, s + len));
                }
                Op::ReleaseLatest => {
                    let Some((s, e)) = reserved.pop() else { continue };
                    index.release(s, e);
                    for p in (s..e).step_by(PAGE as usize) {
                        used.remove(&p);
                    }
                }
            }
            let holes = model_holes(&used);
            prop_assert_eq!(index.iter().collect::<Vec<_>>(), holes.clone());
            for len in [PAGE, 2 * PAGE, 5 * PAGE] {
                prop_assert_eq!(index.place(len), model_place(&holes, len));
            }
        }
    }
}
