//! The memory a Linux process has locked (`mlock`, `mlockall`): a few
//! page ranges kept in the process's state (no allocation). NeoOS never
//! pages memory out, so a lock changes where pages live in no way; it is
//! kept for what POSIX says depends on it (`msync` with `MS_INVALIDATE`
//! on locked memory fails with `EBUSY`). `MCL_FUTURE` is accepted and
//! changes nothing kept here.

/// Most separate ranges a process may hold locked (adjacent and
/// overlapping ranges merge).
pub const MAX_LOCKED_RANGES: usize = 16;

/// The locked ranges, `[start, end)`, sorted and disjoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryLocks {
    ranges: [(u64, u64); MAX_LOCKED_RANGES],
    count: usize,
}

impl MemoryLocks {
    fn as_slice(&self) -> &[(u64, u64)] {
        &self.ranges[..self.count]
    }

    /// Bytes locked in all.
    pub fn bytes(&self) -> u64 {
        self.as_slice().iter().map(|&(s, e)| e - s).sum()
    }

    /// Whether any byte of `[start, end)` is locked.
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.as_slice().iter().any(|&(s, e)| s < end && start < e)
    }

    /// Locks `[start, end)`; `false`, with nothing changed, when that
    /// would need more than [`MAX_LOCKED_RANGES`] ranges.
    pub fn lock(&mut self, start: u64, end: u64) -> bool {
        if start >= end {
            return true;
        }
        let (mut s, mut e) = (start, end);
        let mut kept = [(0, 0); MAX_LOCKED_RANGES];
        let mut n = 0;
        for &(rs, re) in self.as_slice() {
            if re < s || e < rs {
                kept[n] = (rs, re);
                n += 1;
            } else {
                s = s.min(rs);
                e = e.max(re);
            }
        }
        if n == MAX_LOCKED_RANGES {
            return false;
        }
        kept[n] = (s, e);
        n += 1;
        kept[..n].sort_unstable();
        self.ranges = kept;
        self.count = n;
        true
    }

    /// Unlocks `[start, end)`; `false`, with nothing changed, when the cut
    /// would need more than [`MAX_LOCKED_RANGES`] ranges.
    pub fn unlock(&mut self, start: u64, end: u64) -> bool {
        let mut kept = [(0, 0); MAX_LOCKED_RANGES];
        let mut n = 0;
        for &(rs, re) in self.as_slice() {
            for piece in [(rs, re.min(start)), (rs.max(end), re)] {
                if piece.0 < piece.1 {
                    if n == MAX_LOCKED_RANGES {
                        return false;
                    }
                    kept[n] = piece;
                    n += 1;
                }
            }
        }
        self.ranges = kept;
        self.count = n;
        true
    }

    /// Unlocks everything (`munlockall`).
    pub fn clear(&mut self) {
        *self = MemoryLocks::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_split_and_overlap() {
        let mut l = MemoryLocks::default();
        assert!(l.lock(0x1000, 0x3000));
        assert!(l.lock(0x3000, 0x5000), "adjacent ranges merge");
        assert_eq!(l.as_slice(), [(0x1000, 0x5000)]);
        assert!(l.unlock(0x2000, 0x3000));
        assert_eq!(l.as_slice(), [(0x1000, 0x2000), (0x3000, 0x5000)]);
        assert!(l.overlaps(0x4000, 0x4001));
        assert!(!l.overlaps(0x2000, 0x3000));
        l.clear();
        assert!(!l.overlaps(0, u64::MAX));
    }

    #[test]
    fn too_many_ranges_change_nothing() {
        let mut l = MemoryLocks::default();
        for i in 0..MAX_LOCKED_RANGES as u64 {
            assert!(l.lock(i * 0x10000, i * 0x10000 + 0x1000));
        }
        let before = l;
        assert!(!l.lock(0x100_0000, 0x100_1000));
        assert_eq!(l, before);
        assert!(!l.unlock(0x800, 0x900), "a cut that needs a 17th range");
        assert_eq!(l, before);
    }
}
