//! What placing or locating runs of a file's pages would read: the
//! metadata blocks not cached, found without reading the device (the
//! device reads fail with [`crate::Ext2Error::WouldRead`] in the walk, as
//! in [`Ext2::blocks_to_read`]). Its caller reads them without holding
//! anything, caches them ([`Ext2::cache_read_block`]) and then places
//! (or locates) the runs reading nothing.
//!
//! Placing reads the file's inode-table block, the indirect blocks on the
//! paths of its runs' blocks, and for holes what an allocation reads: the
//! block bitmaps of the groups the allocator would take from (from the
//! inode's group on, until their free counts cover the blocks needed), the
//! group descriptor table blocks holding their descriptors and the
//! superblock's block (read to be changed in part while metadata writes
//! are deferred: [`Ext2::defer_metadata_writes`]). A fresh indirect block
//! is written whole, so it is never read.

use alloc::vec::Vec;

use crate::device::BlockDevice;
use crate::dir::{cached, note_missing};
use crate::error::Ext2Error;
use crate::file::{run_inside, PAGE_SIZE};
use crate::fs::Ext2;
use crate::layout::{gd, GROUP_DESC_SIZE, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE};

impl<D: BlockDevice> Ext2<D> {
    /// The metadata blocks not cached that placing the runs `runs` (each
    /// its first page and its number of pages) of regular file `ino` would
    /// read ([`Ext2::begin_placing`], [`Ext2::place_run`],
    /// [`Ext2::end_placing`]), at most `most`: the inode's block first (the
    /// rest is known only once it is cached), then the indirect blocks on
    /// the way (a path stops at the first one missing), then, when holes
    /// are to be allocated, the allocator's. Reads nothing and changes
    /// nothing: empty when placing reads nothing (or when the walk meets
    /// an error other than a missing block: the placing reports it).
    pub fn blocks_to_place(&mut self, ino: u32, runs: &[(u64, usize)], most: usize) -> Vec<u32> {
        self.blocks_to_map(ino, runs, true, most)
    }

    /// [`Self::blocks_to_place`] for locating the blocks of `pages` pages
    /// from page `first_page` ([`Ext2::locate_pages`]): no allocation.
    pub fn blocks_to_locate(
        &mut self,
        ino: u32,
        first_page: u64,
        pages: usize,
        most: usize,
    ) -> Vec<u32> {
        self.blocks_to_map(ino, &[(first_page, pages)], false, most)
    }

    /// The walk of [`Self::blocks_to_place`] and [`Self::blocks_to_locate`].
    fn blocks_to_map(
        &mut self,
        ino: u32,
        runs: &[(u64, usize)],
        allocate: bool,
        most: usize,
    ) -> Vec<u32> {
        let mut missing = Vec::new();
        self.set_cached_only(true);
        let needed = self.runs_cached(ino, runs, most, &mut missing);
        if allocate && needed > 0 && missing.len() < most {
            self.allocation_cached(ino, needed, most, &mut missing);
        }
        self.set_cached_only(false);
        missing
    }

    /// Walks the paths of the runs' blocks, noting the blocks missing: how
    /// many blocks their holes would allocate (a bound: an indirect block
    /// shared by several holes counts for each).
    fn runs_cached(
        &mut self,
        ino: u32,
        runs: &[(u64, usize)],
        most: usize,
        missing: &mut Vec<u32>,
    ) -> u32 {
        let Some(inode) = cached(self.regular_inode(ino), missing) else {
            return 0;
        };
        let block_size = self.sb.block_size as usize;
        let mut needed = 0u32;
        for &(first_page, pages) in runs {
            let Ok(Some(inside)) = run_inside(&inode, first_page, pages) else {
                continue;
            };
            let first_logical = first_page * PAGE_SIZE as u64 / block_size as u64;
            let mut leaf = None;
            for i in 0..inside.div_ceil(block_size) as u64 {
                if missing.len() >= most {
                    return needed;
                }
                let logical = first_logical + i;
                match self.map_block_in_run(&inode, logical, &mut leaf) {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        let more = cached(self.blocks_needed(&inode, logical), missing);
                        needed = needed.saturating_add(more.unwrap_or(0));
                    }
                    Err(Ext2Error::WouldRead(block)) => {
                        note_missing(block, missing);
                        leaf = None;
                    }
                    Err(_) => return needed,
                }
            }
        }
        needed
    }

    /// Notes the blocks an allocation of `needed` blocks for inode `ino`
    /// would read, not cached: the bitmaps of the groups the allocator
    /// takes from, their descriptors' blocks, the superblock's block.
    fn allocation_cached(&mut self, ino: u32, needed: u32, most: usize, missing: &mut Vec<u32>) {
        let block_size = u64::from(self.sb.block_size);
        let partial = |fs: &mut Self, offset: u64, len: usize, missing: &mut Vec<u32>| {
            let block = (offset / block_size) as u32;
            let whole = offset.is_multiple_of(block_size) && len as u64 == block_size;
            if !whole && fs.meta.find(block).is_none() {
                note_missing(block, missing);
            }
        };
        partial(self, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, missing);
        let groups = self.sb.group_count;
        let goal = self.group_of_inode(ino);
        let mut covered = 0u32;
        for step in 0..groups {
            if covered >= needed || missing.len() >= most {
                return;
            }
            let group = (goal % groups + step) % groups;
            let free = u32::from(self.gd16(group, gd::FREE_BLOCKS));
            if free == 0 {
                continue;
            }
            covered = covered.saturating_add(free);
            let bitmap = self.gd32(group, gd::BLOCK_BITMAP);
            if self.meta.find(bitmap).is_none() {
                note_missing(bitmap, missing);
            }
            let at = self.gdt_offset() + u64::from(group) * GROUP_DESC_SIZE as u64;
            partial(self, at, GROUP_DESC_SIZE, missing);
        }
    }
}
