//! The metadata block cache: a few whole blocks of inode tables, indirect
//! blocks and bitmaps, so that writing many runs of one file reads its
//! metadata once, not once per run.
//!
//! Every write the file system makes to the device passes through
//! [`MetaCache::absorb`], so a clean entry always equals the disk. An entry
//! is dirty when it holds changes the disk has not seen yet: inode updates
//! deferred to the next flush (a data write's modification time), or an
//! inode write that failed, or the metadata changes of a call made while
//! writes are deferred ([`crate::Ext2::defer_metadata_writes`]). Dirty
//! entries are written by [`crate::Ext2::flush`] (or
//! [`crate::Ext2::start_metadata_writes`]) and are never evicted (only
//! forgotten when their block is freed); when every entry is dirty a new block is simply
//! not cached (the caller reads and writes the disk directly). Entries live
//! in a vector of at most [`META_CACHE_ENTRIES`]: a lookup scans that
//! bounded vector, and eviction takes the least recently used clean entry.

use alloc::vec::Vec;

/// Most blocks the cache holds (at most 128 KiB with 4 KiB blocks): the
/// inode-table block and the indirect blocks of a few files, and bitmaps.
pub const META_CACHE_ENTRIES: usize = 32;

/// One cached block.
pub(crate) struct MetaEntry {
    pub block: u32,
    pub bytes: Vec<u8>,
    /// Holds changes the disk has not seen.
    pub dirty: bool,
    /// When it was last made dirty (the cache's stamp): a started write of
    /// it makes it clean only if no change came since
    /// ([`crate::Ext2::end_metadata_writes`]).
    pub changed: u64,
    /// When it was last used (the cache's clock).
    used: u64,
}

/// The cached metadata blocks.
#[derive(Default)]
pub(crate) struct MetaCache {
    pub entries: Vec<MetaEntry>,
    clock: u64,
    /// The last stamp given to a change ([`MetaEntry::changed`]).
    stamps: u64,
    /// Bit `block % 64` set for every cached block (and maybe for a few
    /// gone): a block whose bit is clear has no entry, which
    /// [`Self::forget`] sees without a search (the blocks of every run
    /// written are forgotten, and are nearly never cached).
    held: u64,
}

/// The bit of `block` in [`MetaCache::held`].
fn held_bit(block: u32) -> u64 {
    1 << (block % 64)
}

impl MetaCache {
    /// The index of `block`'s entry, marked used.
    pub fn find(&mut self, block: u32) -> Option<usize> {
        let index = self.entries.iter().position(|e| e.block == block)?;
        self.clock += 1;
        self.entries[index].used = self.clock;
        Some(index)
    }

    /// The little-endian word at byte `at` of `block`'s entry if it is
    /// still entry `hint` (an index [`Self::find`] gave before), marked
    /// used; `None` when the entries moved since.
    pub fn word_at(&mut self, hint: usize, block: u32, at: usize) -> Option<u32> {
        let entry = self.entries.get_mut(hint).filter(|e| e.block == block)?;
        self.clock += 1;
        entry.used = self.clock;
        let word = entry.bytes.get(at..at + 4)?;
        Some(u32::from_le_bytes([word[0], word[1], word[2], word[3]]))
    }

    /// Marks entry `index` dirty with a new change stamp.
    pub fn mark_dirty(&mut self, index: usize) {
        self.stamps += 1;
        let entry = &mut self.entries[index];
        entry.dirty = true;
        entry.changed = self.stamps;
    }

    /// Whether a new entry can be added (a slot free or a clean entry to
    /// evict).
    pub fn has_room(&self) -> bool {
        self.entries.len() < META_CACHE_ENTRIES || self.entries.iter().any(|e| !e.dirty)
    }

    /// Adds `block` with `bytes` as read from the disk, evicting the least
    /// recently used clean entry when full. `None` when every entry is dirty
    /// or the vector cannot grow.
    pub fn insert(&mut self, block: u32, bytes: Vec<u8>) -> Option<usize> {
        self.clock += 1;
        let entry = MetaEntry {
            block,
            bytes,
            dirty: false,
            changed: 0,
            used: self.clock,
        };
        if self.entries.len() < META_CACHE_ENTRIES && self.entries.try_reserve(1).is_ok() {
            self.entries.push(entry);
            self.held |= held_bit(block);
            return Some(self.entries.len() - 1);
        }
        let (index, _) = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.dirty)
            .min_by_key(|(_, e)| e.used)?;
        self.entries[index] = entry;
        self.refresh_held();
        Some(index)
    }

    /// Copies what a successful device write put at byte `offset` into the
    /// entries it overlaps.
    pub fn absorb(&mut self, block_size: u64, offset: u64, data: &[u8]) {
        let end = offset + data.len() as u64;
        for entry in &mut self.entries {
            let start = u64::from(entry.block) * block_size;
            let (from, to) = (start.max(offset), (start + block_size).min(end));
            if from < to {
                let into = (from - start) as usize..(to - start) as usize;
                let out = (from - offset) as usize..(to - offset) as usize;
                entry.bytes[into].copy_from_slice(&data[out]);
            }
        }
    }

    /// Drops the clean entries overlapping `[offset, offset + len)`: a write
    /// there failed, so the disk may hold anything. Dirty ones stay (they
    /// hold what the disk is to get).
    pub fn forget_range(&mut self, block_size: u64, offset: u64, len: u64) {
        self.entries.retain(|entry| {
            let start = u64::from(entry.block) * block_size;
            entry.dirty || start + block_size <= offset || start >= offset + len
        });
        self.refresh_held();
    }

    /// [`Self::held`] recomputed from the entries.
    fn refresh_held(&mut self) {
        self.held = self.entries.iter().fold(0, |h, e| h | held_bit(e.block));
    }

    /// Drops `block`'s entry, dirty or not (the block was freed, or
    /// written as a file's data: its cached contents no longer matter, and
    /// a dirty one written later would overwrite what the block holds
    /// next).
    pub fn forget(&mut self, block: u32) {
        if self.held & held_bit(block) == 0 {
            return;
        }
        // A block has at most one entry: one look, no rebuilding of the vector.
        if let Some(index) = self.entries.iter().position(|entry| entry.block == block) {
            self.entries.remove(index);
            self.refresh_held();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn blocks(cache: &MetaCache) -> Vec<u32> {
        let mut held: Vec<u32> = cache.entries.iter().map(|e| e.block).collect();
        held.sort_unstable();
        held
    }

    /// `forget` drops every cached clean block, whatever came and went
    /// before (blocks equal modulo 64, evictions, a range dropped), and
    /// nothing else: the filter that lets it skip the search never hides
    /// a cached block.
    #[test]
    fn forget_finds_every_cached_block_past_evictions_and_collisions() {
        let mut cache = MetaCache::default();
        for block in 0..META_CACHE_ENTRIES as u32 {
            cache.insert(block * 64 + 5, vec![0; 8]);
        }
        // Full: each insert evicts the least recently used (block 5, then 69).
        cache.insert(7, vec![0; 8]);
        cache.insert(71, vec![0; 8]);
        assert!(cache.find(5).is_none() && cache.find(69).is_none());
        cache.forget(71);
        assert!(
            cache.find(71).is_none(),
            "a block an eviction cached forgotten"
        );
        cache.forget(5);
        cache.forget(64 * 2 + 5);
        assert!(
            cache.find(64 * 2 + 5).is_none(),
            "a collision's entry forgotten"
        );
        assert!(cache.find(7).is_some());
        cache.forget_range(1, 0, 8);
        assert!(cache.find(7).is_none(), "a range dropped");
        let left = blocks(&cache);
        for &block in &left {
            cache.forget(block);
        }
        assert_eq!(blocks(&cache), vec![], "every block forgotten: {left:?}");
        cache.insert(3, vec![0; 8]);
        cache.forget(3);
        assert!(cache.entries.is_empty());
        // A dirty entry goes too: its block was freed.
        let index = cache.insert(9, vec![0; 8]).unwrap();
        cache.mark_dirty(index);
        cache.forget(9);
        assert!(cache.find(9).is_none(), "a freed dirty block forgotten");
    }
}
