//! What a change of the file system will read that the walk of its paths
//! ([`Ext2::blocks_to_read`]) does not list: the bitmap an allocation
//! takes a bit from and the inode-table block of the inode it picks, the
//! indirect blocks and bitmaps a truncate or a release frees in, the last
//! block a truncate zeroes the tail of, the group descriptor and
//! superblock blocks their counts go to. Found the way the change will
//! find them, but reading nothing (a block not cached is noted and ends
//! that part of the look: what it holds is needed to go on) and changing
//! nothing, for a caller that reads them first, without waiting in here,
//! and then makes the change with nothing to read.

use crate::device::BlockDevice;
use crate::error::{Ext2Error, Result};
use crate::fs::{Ext2, InodeGroup};
use crate::layout::{gd, Inode};
use alloc::vec::Vec;

/// Most blocks of a file a look at what a truncate or release frees
/// maps (the change itself goes on past them, reading what it needs).
const MOST_BLOCKS_LOOKED_AT: u64 = 4096;

/// A change whose reads are to be foreseen ([`Ext2::blocks_to_change`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new inode in directory `dir` (a new file, or with `directory`
    /// a new directory and its first block).
    Create { dir: u32, directory: bool },
    /// Regular file `ino` cut to `size` bytes.
    Truncate { ino: u32, size: u64 },
    /// Inode `ino` freed with its blocks (its last name and holder gone).
    Release { ino: u32 },
}

impl<D: BlockDevice> Ext2<D> {
    /// The metadata blocks (and the data block whose tail a truncate
    /// zeroes) `change` would read that are not cached, as far as they can
    /// be known without reading them (at most `most`). Reads nothing and
    /// changes nothing: empty when the change will read nothing.
    pub fn blocks_to_change(&mut self, change: Change, most: usize) -> Vec<u32> {
        let mut missing = Vec::new();
        self.set_cached_only(true);
        match change {
            Change::Create { dir, directory } => self.foresee_create(dir, directory, &mut missing),
            Change::Truncate { ino, size } => self.foresee_truncate(ino, size, most, &mut missing),
            Change::Release { ino } => self.foresee_release(ino, most, &mut missing),
        }
        self.set_cached_only(false);
        missing.truncate(most);
        missing
    }

    fn foresee_create(&mut self, dir: u32, directory: bool, missing: &mut Vec<u32>) {
        let Some((ino, group)) = self.foresee_inode_taken(self.group_of_inode(dir), missing) else {
            return;
        };
        self.note_group_and_super(group, missing);
        if let Ok((block, _)) = self.inode_place(ino) {
            self.note_uncached(block, missing);
        }
        if directory {
            if let Some(group) = self.foresee_block_taken(self.group_of_inode(ino), missing) {
                self.note_group_and_super(group, missing);
            }
        }
    }

    /// The inode (and its group) [`Ext2::alloc_inode`] would take from
    /// goal group `goal`; `None` when a bitmap it looks at is not cached
    /// (noted) or none is free.
    fn foresee_inode_taken(&mut self, goal: u32, missing: &mut Vec<u32>) -> Option<(u32, u32)> {
        if self.sb.free_inodes() == 0 {
            return None;
        }
        for step in 0..self.sb.group_count {
            let Some(InodeGroup {
                group,
                bitmap,
                first,
                limit,
            }) = self.inode_group(goal, step)
            else {
                continue;
            };
            if let Some(index) = self.first_clear_bit(bitmap, limit, missing)? {
                return Some((first + index + 1, group));
            }
        }
        None
    }

    /// The group [`Ext2::alloc_block`] would take a block from, goal
    /// group `goal`; `None` when a bitmap it looks at is not cached
    /// (noted) or none is free.
    fn foresee_block_taken(&mut self, goal: u32, missing: &mut Vec<u32>) -> Option<u32> {
        if self.sb.free_blocks() == 0 {
            return None;
        }
        let groups = self.sb.group_count;
        for step in 0..groups {
            let group = (goal % groups + step) % groups;
            if self.gd16(group, gd::FREE_BLOCKS) == 0 {
                continue;
            }
            let bitmap = self.gd32(group, gd::BLOCK_BITMAP);
            let limit = self.sb.blocks_in_group(group);
            if self.first_clear_bit(bitmap, limit, missing)?.is_some() {
                return Some(group);
            }
        }
        None
    }

    /// `Some(first clear bit below limit)` of cached bitmap block `bitmap`;
    /// `None` (noted) when it is not cached.
    fn first_clear_bit(
        &mut self,
        bitmap: u32,
        limit: u32,
        missing: &mut Vec<u32>,
    ) -> Option<Option<u32>> {
        let bytes = noted(self.read_meta(bitmap), missing)?;
        for (byte_index, byte) in bytes.iter().enumerate() {
            if *byte == 0xFF {
                continue;
            }
            let index = byte_index as u32 * 8 + byte.trailing_ones();
            return Some((index < limit).then_some(index));
        }
        Some(None)
    }

    fn foresee_truncate(&mut self, ino: u32, size: u64, most: usize, missing: &mut Vec<u32>) {
        let Some(inode) = noted(self.read_inode(ino), missing) else {
            return;
        };
        if !inode.is_regular() || size >= inode.size() || !self.has_block_map(&inode) {
            return;
        }
        let block_size = u64::from(self.sb.block_size);
        if !size.is_multiple_of(block_size) {
            let tail = noted(self.map_block(&inode, size / block_size), missing);
            let Some(tail) = tail else {
                return;
            };
            if let Some(block) = tail {
                self.note_uncached(block, missing);
            }
        }
        self.foresee_freeing(&inode, size.div_ceil(block_size), most, missing);
    }

    fn foresee_release(&mut self, ino: u32, most: usize, missing: &mut Vec<u32>) {
        let Some(inode) = noted(self.read_inode(ino), missing) else {
            return;
        };
        let group = self.group_of_inode(ino);
        self.note_uncached(self.gd32(group, gd::INODE_BITMAP), missing);
        self.note_group_and_super(group, missing);
        if self.has_block_map(&inode) {
            self.foresee_freeing(&inode, 0, most, missing);
        }
    }

    /// The indirect blocks (when not cached: the look ends there) and the
    /// block bitmaps freeing `inode`'s blocks from logical block `first`
    /// reads, and the group descriptor and superblock blocks it changes.
    fn foresee_freeing(&mut self, inode: &Inode, first: u64, most: usize, missing: &mut Vec<u32>) {
        let block_size = u64::from(self.sb.block_size);
        let held = u64::from(inode.sectors() / (self.sb.block_size / 512));
        let end = inode.size().div_ceil(block_size).max(held);
        let mut last_group = None;
        for logical in first..end.min(first.saturating_add(MOST_BLOCKS_LOOKED_AT)) {
            if missing.len() >= most {
                return;
            }
            let Some(mapped) = noted(self.map_block(inode, logical), missing) else {
                return;
            };
            let Some(block) = mapped.filter(|&b| b > self.sb.first_data_block) else {
                continue;
            };
            let group = (block - self.sb.first_data_block) / self.sb.blocks_per_group;
            if last_group != Some(group) {
                last_group = Some(group);
                self.note_uncached(self.gd32(group, gd::BLOCK_BITMAP), missing);
                self.note_group_and_super(group, missing);
            }
        }
    }

    fn note_group_and_super(&mut self, group: u32, missing: &mut Vec<u32>) {
        for block in self.group_and_super_blocks(group) {
            self.note_uncached(block, missing);
        }
    }

    /// Notes `block` when the cache does not hold it.
    fn note_uncached(&mut self, block: u32, missing: &mut Vec<u32>) {
        if self.meta.find(block).is_none()
            && !missing.contains(&block)
            && missing.try_reserve(1).is_ok()
        {
            missing.push(block);
        }
    }
}

/// The value of a read made in a look; `None` when it needed a block not
/// cached (noted in `missing`) or failed otherwise (the change reports it).
fn noted<T>(read: Result<T>, missing: &mut Vec<u32>) -> Option<T> {
    match read {
        Ok(value) => Some(value),
        Err(Ext2Error::WouldRead(block)) => {
            if !missing.contains(&block) && missing.try_reserve(1).is_ok() {
                missing.push(block);
            }
            None
        }
        Err(_) => None,
    }
}
