//! Futex waiters: which thread sleeps on which word. A waiter is keyed by
//! the address space and the user address of the word (a private futex,
//! between threads of one process), or, for a futex without
//! `FUTEX_PRIVATE_FLAG` on a word of a shared mapping, by the memory object
//! and the word's place in it (between processes that map it, wherever),
//! carries the bit set of `FUTEX_WAIT_BITSET`, and is woken first in, first
//! out. The scheduling side (blocking, timeouts) is the
//! process table's; the calls are in `crate::threads`.

use alloc::collections::VecDeque;

use neoos_mm::{AsId, Errno, ObjectId};

use crate::process::Tid;

/// What a futex waiter waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FutexKey {
    /// Word `addr` of address space `space`.
    Private { space: AsId, addr: u64 },
    /// Byte `offset` of memory object `object` (a word of a shared
    /// mapping, for a futex call without `FUTEX_PRIVATE_FLAG`). An object
    /// id reused after the object went can only wake a waiter spuriously,
    /// which a futex waiter must expect anyway.
    Shared { object: ObjectId, offset: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Waiter {
    tid: Tid,
    key: FutexKey,
    bitset: u32,
}

/// Every thread asleep in a futex wait, in the order they went to sleep.
#[derive(Default)]
pub struct FutexTable {
    waiters: VecDeque<Waiter>,
}

impl FutexTable {
    /// Thread `tid` waits on `key` for a wake whose bit set meets `bitset`.
    pub fn add(&mut self, tid: Tid, key: FutexKey, bitset: u32) -> Result<(), Errno> {
        self.waiters.try_reserve(1).map_err(|_| Errno::NoMem)?;
        self.waiters.push_back(Waiter { tid, key, bitset });
        Ok(())
    }

    /// Takes up to `count` waiters on `key` whose bit set meets `bitset`,
    /// oldest first, calling `woken` with each; how many.
    pub fn wake(
        &mut self,
        key: FutexKey,
        bitset: u32,
        count: usize,
        mut woken: impl FnMut(Tid),
    ) -> usize {
        let mut done = 0;
        self.waiters.retain(|w| {
            if done < count && w.key == key && w.bitset & bitset != 0 {
                done += 1;
                woken(w.tid);
                false
            } else {
                true
            }
        });
        done
    }

    /// Moves up to `count` waiters on `from` to `to`; how many.
    pub fn requeue(&mut self, from: FutexKey, to: FutexKey, count: usize) -> usize {
        let mut moved = 0;
        for w in self.waiters.iter_mut() {
            if moved < count && w.key == from {
                w.key = to;
                moved += 1;
            }
        }
        moved
    }

    /// Takes thread `tid`'s wait out; whether it was still waiting.
    pub fn remove(&mut self, tid: Tid) -> bool {
        let before = self.waiters.len();
        self.waiters.retain(|w| w.tid != tid);
        self.waiters.len() != before
    }

    /// Number of waiters (for tests and the baseline checks).
    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: FutexKey = FutexKey::Private {
        space: AsId(1),
        addr: 0x1000,
    };
    const B: FutexKey = FutexKey::Private {
        space: AsId(1),
        addr: 0x1004,
    };

    #[test]
    fn wake_takes_the_oldest_matching_waiters_only() {
        let mut f = FutexTable::default();
        for (tid, key) in [(1, A), (2, B), (3, A), (4, A)] {
            f.add(tid, key, u32::MAX).unwrap();
        }
        let mut woken = alloc::vec::Vec::new();
        assert_eq!(f.wake(A, u32::MAX, 2, |t| woken.push(t)), 2);
        assert_eq!(woken, [1, 3]);
        assert_eq!(f.len(), 2);
        assert!(f.remove(4));
        assert!(!f.remove(4));
        assert_eq!(f.wake(A, u32::MAX, 9, |_| {}), 0);
    }

    #[test]
    fn a_bitset_wake_skips_waiters_of_other_bits() {
        let mut f = FutexTable::default();
        f.add(1, A, 0b01).unwrap();
        f.add(2, A, 0b10).unwrap();
        let mut woken = alloc::vec::Vec::new();
        assert_eq!(f.wake(A, 0b10, 5, |t| woken.push(t)), 1);
        assert_eq!(woken, [2]);
    }

    #[test]
    fn a_shared_word_is_one_futex_whatever_the_space_and_not_a_private_one() {
        let mut f = FutexTable::default();
        let shared = FutexKey::Shared {
            object: ObjectId(5),
            offset: 0x1008,
        };
        f.add(1, shared, u32::MAX).unwrap();
        f.add(2, A, u32::MAX).unwrap();
        let elsewhere = FutexKey::Shared {
            object: ObjectId(5),
            offset: 0x100c,
        };
        assert_eq!(f.wake(elsewhere, u32::MAX, 1, |_| {}), 0);
        let mut woken = alloc::vec::Vec::new();
        assert_eq!(f.wake(shared, u32::MAX, 2, |t| woken.push(t)), 1);
        assert_eq!(woken, [1]);
    }

    #[test]
    fn the_same_address_in_another_space_is_another_futex() {
        let mut f = FutexTable::default();
        f.add(1, A, u32::MAX).unwrap();
        let FutexKey::Private { addr, .. } = A else {
            unreachable!("A is a private key")
        };
        let other = FutexKey::Private {
            space: AsId(2),
            addr,
        };
        assert_eq!(f.wake(other, u32::MAX, 1, |_| {}), 0);
        assert_eq!(f.requeue(A, B, 1), 1);
        assert_eq!(f.wake(B, u32::MAX, 1, |_| {}), 1);
    }
}
