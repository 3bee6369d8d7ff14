//! The map from a file's logical blocks to disk blocks: twelve direct
//! pointers, then single, double and triple indirect blocks. Lookup,
//! allocation along a path, and freeing everything from a logical block on.

use crate::device::BlockDevice;
use crate::error::{Ext2Error, Result};
use crate::fs::Ext2;
use crate::layout::{
    get32, put32, Inode, DIRECT_BLOCKS, DOUBLE_SLOT, SINGLE_SLOT, S_IFDIR, S_IFLNK, S_IFREG,
    TRIPLE_SLOT,
};

/// Where a logical block's pointer lives: the inode slot, then the index in
/// each indirect block down the tree (`depth` of them).
struct MapPath {
    slot: usize,
    depth: usize,
    indices: [usize; 3],
}

/// The indirect block holding the pointers of logical blocks
/// `first..end` (the last level of their paths), remembered from one block
/// of a run to the next ([`Ext2::map_block_in_run`]).
#[derive(Clone, Copy)]
pub(crate) struct Leaf {
    block: u32,
    first: u64,
    end: u64,
    /// Its metadata cache entry when last looked at.
    entry: usize,
}

impl<D: BlockDevice> Ext2<D> {
    pub(crate) fn pointers_per_block(&self) -> u64 {
        u64::from(self.sb.block_size / 4)
    }

    /// One past the last logical block an inode can map.
    pub(crate) fn max_logical_blocks(&self) -> u64 {
        let p = self.pointers_per_block();
        DIRECT_BLOCKS as u64 + p + p * p + p * p * p
    }

    fn map_path(&self, logical: u64) -> Result<MapPath> {
        let p = self.pointers_per_block();
        let direct = DIRECT_BLOCKS as u64;
        if logical < direct {
            return Ok(MapPath {
                slot: logical as usize,
                depth: 0,
                indices: [0; 3],
            });
        }
        let mut rest = logical - direct;
        if rest < p {
            return Ok(MapPath {
                slot: SINGLE_SLOT,
                depth: 1,
                indices: [rest as usize, 0, 0],
            });
        }
        rest -= p;
        if rest < p * p {
            let indices = [(rest / p) as usize, (rest % p) as usize, 0];
            return Ok(MapPath {
                slot: DOUBLE_SLOT,
                depth: 2,
                indices,
            });
        }
        rest -= p * p;
        if rest < p * p * p {
            let indices = [
                (rest / (p * p)) as usize,
                (rest / p % p) as usize,
                (rest % p) as usize,
            ];
            return Ok(MapPath {
                slot: TRIPLE_SLOT,
                depth: 3,
                indices,
            });
        }
        Err(Ext2Error::FileTooBig)
    }

    /// The disk block holding logical block `logical` of `inode`, or `None`
    /// for a hole.
    pub(crate) fn map_block(&mut self, inode: &Inode, logical: u64) -> Result<Option<u32>> {
        let path = self.map_path(logical)?;
        let mut pointer = inode.block(path.slot);
        for &index in &path.indices[..path.depth] {
            if pointer == 0 {
                return Ok(None);
            }
            pointer = self.meta_u32(self.check_data_block(pointer)?, index * 4)?;
        }
        if pointer == 0 {
            return Ok(None);
        }
        Ok(Some(self.check_data_block(pointer)?))
    }

    /// [`Self::map_block`] for the blocks of a run in order: `leaf` keeps
    /// the indirect block the last one's pointer was in, so that the next
    /// ones under it cost one look in it instead of a walk from the inode.
    /// `leaf` must start `None` for each run and `inode`, and the map may
    /// change meanwhile only through [`Self::map_block_alloc`] (which
    /// keeps every indirect block where it is).
    pub(crate) fn map_block_in_run(
        &mut self,
        inode: &Inode,
        logical: u64,
        leaf: &mut Option<Leaf>,
    ) -> Result<Option<u32>> {
        if logical < DIRECT_BLOCKS as u64 {
            return self.map_block(inode, logical);
        }
        if !leaf.is_some_and(|l| (l.first..l.end).contains(&logical)) {
            *leaf = self.leaf_of(inode, logical)?;
        }
        let Some(l) = leaf.as_mut() else {
            return Ok(None);
        };
        let at = ((logical - l.first) * 4) as usize;
        let pointer = self.meta_u32_at(l.block, at, &mut l.entry)?;
        if pointer == 0 {
            return Ok(None);
        }
        Ok(Some(self.check_data_block(pointer)?))
    }

    /// The indirect block holding `logical`'s pointer (`logical` past the
    /// direct blocks), or `None` when its path has a hole above it.
    fn leaf_of(&mut self, inode: &Inode, logical: u64) -> Result<Option<Leaf>> {
        let path = self.map_path(logical)?;
        let Some((&last, above)) = path.indices[..path.depth].split_last() else {
            return Ok(None);
        };
        let mut pointer = inode.block(path.slot);
        for &index in above {
            if pointer == 0 {
                return Ok(None);
            }
            pointer = self.meta_u32(self.check_data_block(pointer)?, index * 4)?;
        }
        if pointer == 0 {
            return Ok(None);
        }
        let first = logical - last as u64;
        Ok(Some(Leaf {
            block: self.check_data_block(pointer)?,
            first,
            end: first + self.pointers_per_block(),
            entry: 0,
        }))
    }

    /// How many blocks mapping `logical` would allocate (0 when mapped).
    pub(crate) fn blocks_needed(&mut self, inode: &Inode, logical: u64) -> Result<u32> {
        let path = self.map_path(logical)?;
        let mut pointer = inode.block(path.slot);
        for (level, &index) in path.indices[..path.depth].iter().enumerate() {
            if pointer == 0 {
                return Ok((path.depth - level) as u32 + 1);
            }
            pointer = self.meta_u32(self.check_data_block(pointer)?, index * 4)?;
        }
        Ok(u32::from(pointer == 0))
    }

    /// Maps logical block `logical`, allocating the data block and any
    /// missing indirect blocks (zeroed). Returns the disk block and whether
    /// it is new (its contents then are stale: the caller writes all of it).
    /// `inode` is updated in memory (pointers, `i_blocks`); the caller
    /// stores it, also on error. Fails with `NoSpace` before allocating
    /// anything when the free count cannot cover the whole path.
    pub(crate) fn map_block_alloc(
        &mut self,
        ino: u32,
        inode: &mut Inode,
        logical: u64,
    ) -> Result<(u32, bool)> {
        self.map_block_alloc_in_run(ino, inode, logical, &mut None)
    }

    /// [`Self::map_block_alloc`] for the blocks of a run in order, a
    /// mapped block found as [`Self::map_block_in_run`] finds it.
    pub(crate) fn map_block_alloc_in_run(
        &mut self,
        ino: u32,
        inode: &mut Inode,
        logical: u64,
        leaf: &mut Option<Leaf>,
    ) -> Result<(u32, bool)> {
        if let Some(block) = self.map_block_in_run(inode, logical, leaf)? {
            return Ok((block, false));
        }
        let needed = self.blocks_needed(inode, logical)?;
        if needed == 0 {
            let block = self
                .map_block(inode, logical)?
                .ok_or(Ext2Error::Corrupt("map changed"))?;
            return Ok((block, false));
        }
        if self.sb.free_blocks() < needed {
            return Err(Ext2Error::NoSpace);
        }
        let sectors_per_block = self.sb.block_size / 512;
        let new_sectors = inode.sectors().checked_add(needed * sectors_per_block);
        if new_sectors.is_none() {
            return Err(Ext2Error::FileTooBig);
        }
        let goal = self.group_of_inode(ino);
        let path = self.map_path(logical)?;
        let mut pointer = inode.block(path.slot);
        let mut fresh = false;
        if pointer == 0 {
            pointer = self.alloc_child(goal, path.depth > 0)?;
            inode.set_block(path.slot, pointer);
            inode.set_sectors(inode.sectors() + sectors_per_block);
            fresh = true;
        }
        for (level, &index) in path.indices[..path.depth].iter().enumerate() {
            let table_block = self.check_data_block(pointer)?;
            pointer = self.meta_u32(table_block, index * 4)?;
            fresh = false;
            if pointer == 0 {
                let mut table = self.read_meta(table_block)?;
                pointer = self.alloc_child(goal, level + 1 < path.depth)?;
                put32(&mut table, index * 4, pointer);
                self.write_meta_block(table_block, &table)?;
                inode.set_sectors(inode.sectors() + sectors_per_block);
                fresh = true;
            }
        }
        Ok((self.check_data_block(pointer)?, fresh))
    }

    /// A new block: zeroed when it will be an indirect block.
    fn alloc_child(&mut self, goal: u32, indirect: bool) -> Result<u32> {
        if indirect {
            self.alloc_zeroed_block(goal)
        } else {
            self.alloc_block(goal)
        }
    }

    /// Frees every data and indirect block at logical index `first` and
    /// beyond; indirect blocks that still map something below `first` stay.
    pub(crate) fn free_blocks_from(&mut self, inode: &mut Inode, first: u64) -> Result<()> {
        let mut freed = 0u32;
        let result = self.free_tree(inode, first, &mut freed);
        let sectors = freed.saturating_mul(self.sb.block_size / 512);
        inode.set_sectors(inode.sectors().saturating_sub(sectors));
        result
    }

    fn free_tree(&mut self, inode: &mut Inode, first: u64, freed: &mut u32) -> Result<()> {
        for slot in 0..DIRECT_BLOCKS {
            let block = inode.block(slot);
            if slot as u64 >= first && block != 0 {
                self.free_block(block)?;
                inode.set_block(slot, 0);
                *freed += 1;
            }
        }
        let p = self.pointers_per_block();
        let mut base = DIRECT_BLOCKS as u64;
        let mut span = p;
        for (depth, slot) in [(1, SINGLE_SLOT), (2, DOUBLE_SLOT), (3, TRIPLE_SLOT)] {
            let block = inode.block(slot);
            if block != 0
                && first < base + span
                && self.free_indirect(block, depth, base, first, freed)?
            {
                inode.set_block(slot, 0);
            }
            base += span;
            span *= p;
        }
        Ok(())
    }

    /// Frees what indirect block `block` (mapping logical blocks from `base`,
    /// `depth` levels above the data) holds at `first` and beyond. Returns
    /// whether `block` itself was freed.
    fn free_indirect(
        &mut self,
        block: u32,
        depth: u32,
        base: u64,
        first: u64,
        freed: &mut u32,
    ) -> Result<bool> {
        let block = self.check_data_block(block)?;
        let mut table = self.read_meta(block)?;
        let child_span = self.pointers_per_block().pow(depth - 1);
        let mut changed = false;
        for index in 0..self.pointers_per_block() as usize {
            let child = get32(&table, index * 4);
            let child_base = base + index as u64 * child_span;
            if child == 0 || child_base + child_span <= first {
                continue;
            }
            let child_freed = if depth == 1 {
                self.free_block(child)?;
                *freed += 1;
                true
            } else {
                self.free_indirect(child, depth - 1, child_base, first, freed)?
            };
            if child_freed {
                put32(&mut table, index * 4, 0);
                changed = true;
            }
        }
        if base >= first {
            self.free_block(block)?;
            *freed += 1;
            return Ok(true);
        }
        if changed {
            self.write_meta_block(block, &table)?;
        }
        Ok(false)
    }

    /// Drops the inode's reference to its extended-attribute block, freeing
    /// the block when no other inode shares it.
    pub(crate) fn release_xattr_block(&mut self, inode: &mut Inode) -> Result<()> {
        let block = inode.file_acl();
        if block == 0 {
            return Ok(());
        }
        let block = self.check_data_block(block)?;
        let mut header = self.read_block(block)?;
        if get32(&header, 0) != 0xEA02_0000 {
            return Err(Ext2Error::Corrupt("extended attribute block magic"));
        }
        let references = get32(&header, 4);
        if references <= 1 {
            self.free_block(block)?;
        } else {
            put32(&mut header, 4, references - 1);
            self.write_blocks(block, &header)?;
        }
        inode.set_file_acl(0);
        let sectors = self.sb.block_size / 512;
        inode.set_sectors(inode.sectors().saturating_sub(sectors));
        Ok(())
    }

    /// Whether the inode's block array holds block pointers: regular files,
    /// directories and symbolic links too long for the inode. Device
    /// numbers, fifos, sockets and short link targets live there instead.
    pub(crate) fn has_block_map(&self, inode: &Inode) -> bool {
        let xattr_sectors = if inode.file_acl() != 0 {
            self.sb.block_size / 512
        } else {
            0
        };
        match inode.kind() {
            S_IFREG | S_IFDIR => true,
            S_IFLNK => inode.sectors() != xattr_sectors,
            _ => false,
        }
    }
}
