//! The mounted file system: mount-time validation, block and inode I/O,
//! group descriptors, and the bitmap allocators that keep the superblock's
//! and the groups' free counts exact.

use crate::cache::MetaCache;
use crate::device::{BlockDevice, Started, SECTOR_SIZE};
use crate::error::{Ext2Error, Result};
use crate::layout::{
    gd, get16, get32, put16, put32, Inode, Superblock, GROUP_DESC_SIZE, SUPERBLOCK_OFFSET,
    SUPERBLOCK_SIZE,
};
use alloc::vec;
use alloc::vec::Vec;

/// Inode number of the root directory.
pub const ROOT_INO: u32 = 2;

/// Most data blocks a truncate's zeroed tail leaves dirty in the metadata
/// cache at once ([`Ext2::stage_data_tail`]); beyond, the tail is written
/// at once.
pub const MOST_STAGED_DATA: usize = 4;

/// The metadata writes [`Ext2::start_metadata_writes`] started: each
/// block and the change stamp its copy carries.
#[derive(Debug, Default)]
pub struct MetadataWrites {
    blocks: Vec<(u32, u64)>,
    /// Dirty blocks were left for want of room on the device's queue
    /// ([`Ext2::start_metadata_writes_queued`]).
    more: bool,
}

impl MetadataWrites {
    /// Whether dirty blocks were left for want of room on the queue.
    pub fn more(&self) -> bool {
        self.more
    }

    /// How many writes were started.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

/// An ext2 file system mounted from a block device.
pub struct Ext2<D: BlockDevice> {
    pub(crate) dev: D,
    pub(crate) sb: Superblock,
    /// The group descriptor table as stored, patched in place.
    gdt: Vec<u8>,
    read_only: bool,
    /// Seconds since the epoch stamped on what changes.
    pub(crate) now: u32,
    /// Metadata blocks read lately (inode tables, indirect blocks,
    /// bitmaps), and inode changes deferred to the next [`Ext2::flush`].
    pub(crate) meta: MetaCache,
    /// Inodes the user of the file system still holds open ([`Ext2::hold`]):
    /// losing their last link leaves them allocated until
    /// [`Ext2::release`].
    pub(crate) held: Vec<u32>,
    /// While set, a read of the device fails with
    /// [`Ext2Error::WouldRead`] instead ([`Ext2::blocks_to_read`]).
    cached_only: bool,
    /// Counts the writes of metadata (every write but a run's data): a
    /// block read meanwhile may be stale ([`Ext2::cache_read_block`]).
    writes: u64,
    /// While set ([`Ext2::defer_metadata_writes`]), a change of a metadata
    /// block (directory block, inode, bitmap, indirect block, group
    /// descriptor, superblock) goes into its cached copy, marked dirty,
    /// instead of to the disk.
    defer_writes: bool,
    /// Changes deferred so since [`Ext2::defer_metadata_writes`].
    deferred: u64,
    /// Data blocks whose change (a truncate's zeroed tail) waits dirty in
    /// the metadata cache ([`Ext2::stage_data_tail`]): a read of one
    /// writes it first ([`Ext2::write_staged_data`]). At most
    /// [`MOST_STAGED_DATA`]; an entry written since is dropped at the next look.
    staged_data: Vec<u32>,
    /// Blocks placed for a caller's data writes so far (in
    /// [`Ext2::metadata_writes`]).
    pub(crate) placed: u64,
    /// Metadata blocks written to the device and waited for (not started:
    /// [`Ext2::start_metadata_writes`]), for [`Ext2::synchronous_writes`].
    synchronous: u64,
    /// Indirect blocks allocated while writes were deferred, dirty in the
    /// cache and not yet written: written before every other dirty block
    /// ([`Ext2::start_metadata_writes_queued`]), so that no pointer to one
    /// reaches the disk before its contents do.
    fresh: Vec<u32>,
}

impl<D: BlockDevice> Ext2<D> {
    /// Mounts the file system on `dev`. Read-only when `read_only` is asked or
    /// when the image has a read-only-compatible feature we do not implement.
    pub fn mount(mut dev: D, read_only: bool) -> Result<Self> {
        let mut raw = vec![0; SUPERBLOCK_SIZE];
        let first_sector = SUPERBLOCK_OFFSET / SECTOR_SIZE as u64;
        dev.read_sectors(first_sector, &mut raw)?;
        let sb = Superblock::parse(raw)?;
        let device_bytes = dev.sector_count() * SECTOR_SIZE as u64;
        if u64::from(sb.blocks_count) * u64::from(sb.block_size) > device_bytes {
            return Err(Ext2Error::Corrupt("file system larger than the device"));
        }
        let read_only = read_only || sb.unknown_ro_compat;
        let mut fs = Ext2 {
            dev,
            gdt: Vec::new(),
            read_only,
            now: 0,
            meta: MetaCache::default(),
            held: Vec::new(),
            cached_only: false,
            writes: 0,
            defer_writes: false,
            deferred: 0,
            staged_data: Vec::new(),
            placed: 0,
            synchronous: 0,
            fresh: Vec::new(),
            sb,
        };
        // The table's size comes from the image: allocate it fallibly.
        let mut gdt = Vec::new();
        gdt.try_reserve_exact(fs.sb.gdt_bytes())
            .map_err(|_| Ext2Error::NoSpace)?;
        gdt.resize(fs.sb.gdt_bytes(), 0);
        fs.read_bytes(fs.gdt_offset(), &mut gdt)?;
        fs.gdt = gdt;
        for group in 0..fs.sb.group_count {
            fs.validate_group(group)?;
        }
        Ok(fs)
    }

    /// Whether writes are refused.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Block size in bytes (1024, 2048 or 4096).
    pub fn block_size(&self) -> u32 {
        self.sb.block_size
    }

    /// Free blocks, as the superblock counts them.
    pub fn free_blocks(&self) -> u32 {
        self.sb.free_blocks()
    }

    /// Free inodes, as the superblock counts them.
    pub fn free_inodes(&self) -> u32 {
        self.sb.free_inodes()
    }

    /// Sets the clock (seconds since 1970) stamped on inodes that change.
    pub fn set_time(&mut self, unix_seconds: u32) {
        self.now = unix_seconds;
    }

    /// Writes everything out and flushes the device: first the metadata
    /// blocks holding deferred changes (modification times of files written
    /// since the last flush), then the device's write cache. On error what
    /// was not written stays pending for the next flush.
    pub fn flush(&mut self) -> Result<()> {
        self.write_pending_metadata()?;
        self.dev.flush()?;
        Ok(())
    }

    /// The first half of [`Ext2::flush`]: the metadata blocks holding
    /// deferred changes written, not the device's write cache flushed
    /// (the caller flushes it: [`BlockDevice::start_flush`]).
    pub fn write_pending_metadata(&mut self) -> Result<()> {
        self.forget_written_fresh();
        for fresh_pass in [true, false] {
            for index in 0..self.meta.entries.len() {
                let entry = &self.meta.entries[index];
                if entry.dirty && (!fresh_pass || self.fresh.contains(&entry.block)) {
                    self.store_meta(index)?;
                }
            }
        }
        self.forget_written_fresh();
        Ok(())
    }

    /// Drops from [`Self::fresh`] the blocks no longer dirty (written, or
    /// freed and forgotten).
    fn forget_written_fresh(&mut self) {
        let entries = &self.meta.entries;
        self.fresh
            .retain(|&block| entries.iter().any(|e| e.block == block && e.dirty));
    }

    /// Starts the writes of the metadata blocks holding deferred changes
    /// (what [`Ext2::flush`] writes before the device's flush) without
    /// waiting for them: each a copy the device keeps until done
    /// ([`BlockDevice::requests_in_flight`]); a block the queue (or the
    /// heap, for the copy) has no room for is written at once. The blocks
    /// stay dirty (never evicted) until [`Ext2::end_metadata_writes`] is
    /// told how the writes went. Then [`BlockDevice::start_flush`] makes
    /// them durable. On an error the writes started are the caller's to
    /// end all the same (the error is reported after them).
    pub fn start_metadata_writes(&mut self) -> (MetadataWrites, Result<()>) {
        let mut started = MetadataWrites::default();
        for index in 0..self.meta.entries.len() {
            if !self.meta.entries[index].dirty {
                continue;
            }
            if let Err(error) = self.start_meta_write(index, &mut started, false) {
                return (started, Err(error));
            }
        }
        (started, Ok(()))
    }

    /// [`Self::start_metadata_writes`], but stopping where the device's
    /// queue is full instead of writing the next block at once (which
    /// waits for those in flight): the blocks left stay dirty for the next
    /// call, made once these are done ([`MetadataWrites::more`]).
    ///
    /// The indirect blocks allocated while writes were deferred go first,
    /// alone: the others are left (`more`) until those are written, so a
    /// pointer to a new indirect block never reaches the disk before the
    /// block's own contents (as when each was written at its allocation).
    pub fn start_metadata_writes_queued(&mut self) -> (MetadataWrites, Result<()>) {
        let mut started = MetadataWrites::default();
        self.forget_written_fresh();
        let fresh_only = !self.fresh.is_empty();
        let mut left = false;
        for index in 0..self.meta.entries.len() {
            let entry = &self.meta.entries[index];
            if !entry.dirty {
                continue;
            }
            if fresh_only && !self.fresh.contains(&entry.block) {
                left = true;
                continue;
            }
            match self.start_meta_write(index, &mut started, true) {
                Err(error) => return (started, Err(error)),
                Ok(()) if started.more => break,
                Ok(()) => {}
            }
        }
        started.more |= left;
        (started, Ok(()))
    }

    /// Starts the write of dirty cache entry `index` (see
    /// [`Self::start_metadata_writes`]); when the queue is full, written
    /// at once, or left (`started.more` set) when `leave_when_full`.
    fn start_meta_write(
        &mut self,
        index: usize,
        started: &mut MetadataWrites,
        leave_when_full: bool,
    ) -> Result<()> {
        self.writes += 1;
        let entry = &self.meta.entries[index];
        let (block, changed) = (entry.block, entry.changed);
        let sector = self.block_offset(block)? / SECTOR_SIZE as u64;
        let mut copy = Vec::new();
        if copy.try_reserve_exact(entry.bytes.len()).is_err()
            || started.blocks.try_reserve(1).is_err()
        {
            return self.store_meta(index);
        }
        copy.extend_from_slice(&entry.bytes);
        match self.dev.start_write(sector, copy)? {
            Started::InFlight => {
                started.blocks.push((block, changed));
                Ok(())
            }
            Started::Done => {
                self.meta.entries[index].dirty = false;
                Ok(())
            }
            Started::QueueFull(_) if leave_when_full => {
                started.more = true;
                Ok(())
            }
            Started::QueueFull(_) => self.store_meta(index),
        }
    }

    /// Ends the metadata writes of [`Self::start_metadata_writes`] once
    /// the device has none in flight: when they all succeeded, each block
    /// changed no more since is clean; else every one stays dirty (written
    /// again by the next flush).
    pub fn end_metadata_writes(&mut self, written: MetadataWrites, succeeded: bool) {
        if !succeeded {
            return;
        }
        for (block, changed) in written.blocks {
            if let Some(entry) = self
                .meta
                .entries
                .iter_mut()
                .find(|e| e.block == block && e.changed == changed)
            {
                entry.dirty = false;
            }
        }
    }

    /// From now until [`Self::end_deferred_writes`], the metadata blocks
    /// the calls change are changed in the cache, marked dirty, and not
    /// written: the next [`Self::start_metadata_writes`] (or
    /// [`Self::flush`]) writes them, so that its caller can wait for them
    /// without holding anything. Reads see the changes (a dirty block is
    /// never evicted); a block the cache has no room for is written at
    /// once, as always. A file's data only for a truncate's zeroed tail
    /// ([`Self::stage_data_tail`]: written before any read of its block).
    pub fn defer_metadata_writes(&mut self) {
        self.defer_writes = true;
        self.deferred = 0;
    }

    /// Ends [`Self::defer_metadata_writes`]: whether a change was deferred
    /// (dirty blocks left to write).
    pub fn end_deferred_writes(&mut self) -> bool {
        self.defer_writes = false;
        core::mem::take(&mut self.deferred) != 0
    }

    /// Whether metadata writes are being deferred
    /// ([`Self::defer_metadata_writes`] until [`Self::end_deferred_writes`]).
    pub fn deferring_metadata_writes(&self) -> bool {
        self.defer_writes
    }

    /// How many metadata blocks hold changes the disk has not seen.
    pub fn dirty_metadata_blocks(&self) -> usize {
        self.meta.entries.iter().filter(|e| e.dirty).count()
    }

    /// Whether metadata blocks hold changes the disk has not seen (written
    /// by the next [`Self::flush`]).
    pub fn has_dirty_metadata(&self) -> bool {
        self.meta.entries.iter().any(|e| e.dirty)
    }

    /// How many metadata blocks were written and waited for so far (every
    /// write made but those started by [`Self::start_metadata_writes`]).
    pub fn synchronous_writes(&self) -> u64 {
        self.synchronous
    }

    /// Sets whether device reads fail with [`Ext2Error::WouldRead`]
    /// (for [`Ext2::blocks_to_read`]).
    pub(crate) fn set_cached_only(&mut self, cached_only: bool) {
        self.cached_only = cached_only;
    }

    /// How many metadata writes were made so far, and blocks placed for
    /// a caller's data writes ([`Ext2::place_pages`]; a truncate's last
    /// block, which [`Ext2::blocks_to_change`] lists, is a file's data): a
    /// block read from the device while this number stays the same is
    /// what the disk holds.
    pub fn metadata_writes(&self) -> u64 {
        self.writes + self.placed
    }

    /// The first sector of block `block`.
    pub fn block_sector(&self, block: u32) -> Result<u64> {
        Ok(self.block_offset(block)? / SECTOR_SIZE as u64)
    }

    /// Caches metadata block `block` with `bytes`, read from the device
    /// without the file system (a read started when
    /// [`Ext2::metadata_writes`] said `writes`): only if no metadata
    /// write came since (else the bytes may be stale), the block is not
    /// cached already, and the cache has room. Whether it was cached.
    pub fn cache_read_block(&mut self, block: u32, bytes: Vec<u8>, writes: u64) -> bool {
        let fits = bytes.len() == self.sb.block_size as usize && block < self.sb.blocks_count;
        if !fits
            || writes != self.metadata_writes()
            || !self.meta.has_room()
            || self.meta.find(block).is_some()
        {
            return false;
        }
        self.meta.insert(block, bytes).is_some()
    }

    /// The device under the file system.
    pub fn device(&self) -> &D {
        &self.dev
    }

    /// The device under the file system, for writes placed by
    /// [`Ext2::place_pages`] (nothing else may be written through it).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// Unmounts, giving the device back.
    pub fn into_device(mut self) -> Result<D> {
        self.flush()?;
        Ok(self.dev)
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.read_only {
            Err(Ext2Error::ReadOnly)
        } else {
            Ok(())
        }
    }

    pub(crate) fn gdt_offset(&self) -> u64 {
        u64::from(self.sb.first_data_block + 1) * u64::from(self.sb.block_size)
    }

    fn validate_group(&self, group: u32) -> Result<()> {
        let in_range =
            |block: u32| block >= self.sb.first_data_block && block < self.sb.blocks_count;
        let table = self.gd32(group, gd::INODE_TABLE);
        let table_end = u64::from(table) + u64::from(self.sb.inode_table_blocks());
        if !in_range(self.gd32(group, gd::BLOCK_BITMAP))
            || !in_range(self.gd32(group, gd::INODE_BITMAP))
            || !in_range(table)
            || table_end > u64::from(self.sb.blocks_count)
        {
            return Err(Ext2Error::Corrupt(
                "group descriptor points outside the file system",
            ));
        }
        Ok(())
    }

    // ---- byte and block I/O -------------------------------------------------

    /// Reads `buf.len()` bytes at byte `offset` (any alignment).
    pub(crate) fn read_bytes(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if self.cached_only {
            let block = offset / u64::from(self.sb.block_size);
            return Err(Ext2Error::WouldRead(block as u32));
        }
        let sector = SECTOR_SIZE as u64;
        let start = offset / sector;
        let end = (offset + buf.len() as u64).div_ceil(sector);
        let head = (offset % sector) as usize;
        if head == 0 && buf.len().is_multiple_of(SECTOR_SIZE) {
            self.dev.read_sectors(start, buf)?;
            return Ok(());
        }
        let mut bounce = vec![0; ((end - start) * sector) as usize];
        self.dev.read_sectors(start, &mut bounce)?;
        buf.copy_from_slice(&bounce[head..head + buf.len()]);
        Ok(())
    }

    /// Writes `data` at byte `offset`, reading around partial sectors.
    pub(crate) fn write_bytes(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.writes += 1;
        self.synchronous += 1;
        let block_size = u64::from(self.sb.block_size);
        match self.write_bytes_uncached(offset, data) {
            Ok(()) => {
                self.meta.absorb(block_size, offset, data);
                Ok(())
            }
            Err(error) => {
                self.meta
                    .forget_range(block_size, offset, data.len() as u64);
                Err(error)
            }
        }
    }

    fn write_bytes_uncached(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        let sector = SECTOR_SIZE as u64;
        let start = offset / sector;
        let end = (offset + data.len() as u64).div_ceil(sector);
        let head = (offset % sector) as usize;
        if head == 0 && data.len().is_multiple_of(SECTOR_SIZE) {
            self.dev.write_sectors(start, data)?;
            return Ok(());
        }
        let mut bounce = vec![0; ((end - start) * sector) as usize];
        self.dev.read_sectors(start, &mut bounce)?;
        bounce[head..head + data.len()].copy_from_slice(data);
        self.dev.write_sectors(start, &bounce)?;
        Ok(())
    }

    fn block_offset(&self, block: u32) -> Result<u64> {
        if block >= self.sb.blocks_count {
            return Err(Ext2Error::Corrupt("block number beyond the end"));
        }
        Ok(u64::from(block) * u64::from(self.sb.block_size))
    }

    /// Reads whole blocks starting at `block` into `buf` (a multiple of the
    /// block size).
    pub(crate) fn read_blocks(&mut self, block: u32, buf: &mut [u8]) -> Result<()> {
        let count = (buf.len() / self.sb.block_size as usize) as u64;
        if u64::from(block) + count > u64::from(self.sb.blocks_count) {
            return Err(Ext2Error::Corrupt("block run beyond the end"));
        }
        self.write_staged_data(block, count as u32)?;
        let offset = self.block_offset(block)?;
        self.read_bytes(offset, buf)
    }

    pub(crate) fn write_blocks(&mut self, block: u32, data: &[u8]) -> Result<()> {
        let count = (data.len() / self.sb.block_size as usize) as u64;
        if u64::from(block) + count > u64::from(self.sb.blocks_count) {
            return Err(Ext2Error::Corrupt("block run beyond the end"));
        }
        let offset = self.block_offset(block)?;
        self.write_bytes(offset, data)
    }

    /// Writes metadata block `block` (a bitmap, a directory or indirect
    /// block) whole: into its cached copy while writes are deferred
    /// ([`Self::defer_metadata_writes`]), else (or when it cannot be
    /// cached) to the disk now.
    pub(crate) fn write_meta_block(&mut self, block: u32, data: &[u8]) -> Result<()> {
        if self.defer_writes
            && data.len() == self.sb.block_size as usize
            && self.stage_bytes(block, 0, data)?
        {
            return Ok(());
        }
        self.write_blocks(block, data)
    }

    /// [`Self::write_meta_block`] for `data` at byte `offset` (the
    /// superblock, a group descriptor), within one block.
    fn write_meta_bytes(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        let block_size = u64::from(self.sb.block_size);
        let within = offset % block_size;
        if self.defer_writes
            && within + data.len() as u64 <= block_size
            && self.stage_bytes((offset / block_size) as u32, within as usize, data)?
        {
            return Ok(());
        }
        self.write_bytes(offset, data)
    }

    /// Puts `data` at byte `within` of the cached copy of `block` (read
    /// first when it is not cached and `data` is not the whole block),
    /// marked dirty; `false` when the cache has no room for it.
    fn stage_bytes(&mut self, block: u32, within: usize, data: &[u8]) -> Result<bool> {
        self.block_offset(block)?;
        let size = self.sb.block_size as usize;
        let index = match self.meta.find(block) {
            Some(index) => index,
            None if within == 0 && data.len() == size => {
                let mut bytes = Vec::new();
                if !self.meta.has_room() || bytes.try_reserve_exact(size).is_err() {
                    return Ok(false);
                }
                bytes.extend_from_slice(data);
                match self.meta.insert(block, bytes) {
                    Some(index) => index,
                    None => return Ok(false),
                }
            }
            None => match self.cached_meta(block)? {
                Some(index) => index,
                None => return Ok(false),
            },
        };
        self.writes += 1;
        self.deferred += 1;
        self.meta.entries[index].bytes[within..within + data.len()].copy_from_slice(data);
        self.meta.mark_dirty(index);
        Ok(true)
    }

    /// Zeroes data block `block` from byte `tail` on (a truncate's last
    /// block) in its cached copy, marked dirty, while writes are deferred
    /// ([`Self::defer_metadata_writes`]): written with the metadata, and
    /// before any read of the block from the device. `false` when it is
    /// not deferred, or neither the cache nor the list of such blocks has
    /// room: the caller writes it now.
    pub(crate) fn stage_data_tail(&mut self, block: u32, tail: usize) -> Result<bool> {
        let size = self.sb.block_size as usize;
        if !self.defer_writes || tail >= size {
            return Ok(false);
        }
        let entries = &self.meta.entries;
        self.staged_data
            .retain(|&b| entries.iter().any(|e| e.block == b && e.dirty));
        if self.staged_data.len() >= MOST_STAGED_DATA || self.staged_data.try_reserve(1).is_err() {
            return Ok(false);
        }
        let mut zeros = Vec::new();
        if zeros.try_reserve_exact(size - tail).is_err() {
            return Ok(false);
        }
        zeros.resize(size - tail, 0);
        if !self.stage_bytes(block, tail, &zeros)? {
            return Ok(false);
        }
        if !self.staged_data.contains(&block) {
            self.staged_data.push(block);
        }
        Ok(true)
    }

    /// Writes now the staged data blocks ([`Self::stage_data_tail`]) among
    /// the `count` blocks from `block` still dirty, before a read of them
    /// from the device (the device holds their old bytes). Nothing while
    /// none is staged (the common case: one test).
    pub(crate) fn write_staged_data(&mut self, block: u32, count: u32) -> Result<()> {
        if self.staged_data.is_empty() || self.cached_only {
            return Ok(());
        }
        let end = block.saturating_add(count);
        let mut i = 0;
        while i < self.staged_data.len() {
            let staged = self.staged_data[i];
            if staged < block || staged >= end {
                i += 1;
                continue;
            }
            self.staged_data.swap_remove(i);
            if let Some(index) = self.meta.find(staged) {
                if self.meta.entries[index].dirty {
                    self.store_meta(index)?;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn read_block(&mut self, block: u32) -> Result<Vec<u8>> {
        let mut buf = vec![0; self.sb.block_size as usize];
        self.read_blocks(block, &mut buf)?;
        Ok(buf)
    }

    /// Reads a metadata block (indirect block, bitmap), through the cache.
    pub(crate) fn read_meta(&mut self, block: u32) -> Result<Vec<u8>> {
        match self.cached_meta(block)? {
            Some(index) => Ok(self.meta.entries[index].bytes.clone()),
            None => self.read_block(block),
        }
    }

    /// The little-endian 32-bit word at byte `at` of metadata block `block`
    /// (an indirect block's pointer), read in place through the cache: no
    /// copy of the block, as [`Ext2::read_meta`] makes.
    pub(crate) fn meta_u32(&mut self, block: u32, at: usize) -> Result<u32> {
        match self.cached_meta(block)? {
            Some(index) => Ok(get32(&self.meta.entries[index].bytes, at)),
            None => Ok(get32(&self.read_block(block)?, at)),
        }
    }

    /// [`Self::meta_u32`], looking first at cache entry `hint` (where
    /// `block` was last found, updated when it moved): no search of the
    /// cache while it stays there.
    pub(crate) fn meta_u32_at(&mut self, block: u32, at: usize, hint: &mut usize) -> Result<u32> {
        if let Some(word) = self.meta.word_at(*hint, block, at) {
            return Ok(word);
        }
        match self.cached_meta(block)? {
            Some(index) => {
                *hint = index;
                Ok(get32(&self.meta.entries[index].bytes, at))
            }
            None => Ok(get32(&self.read_block(block)?, at)),
        }
    }

    /// The cache entry of metadata block `block`, read from the disk on a
    /// miss; `None` when the cache has no room (every entry dirty) or no
    /// memory for it: the caller then goes to the disk.
    fn cached_meta(&mut self, block: u32) -> Result<Option<usize>> {
        if let Some(index) = self.meta.find(block) {
            return Ok(Some(index));
        }
        let size = self.sb.block_size as usize;
        let mut bytes = Vec::new();
        if !self.meta.has_room() || bytes.try_reserve_exact(size).is_err() {
            return Ok(None);
        }
        bytes.resize(size, 0);
        self.read_blocks(block, &mut bytes)?;
        Ok(self.meta.insert(block, bytes))
    }

    /// Writes cache entry `index` to the disk; it is clean once written.
    fn store_meta(&mut self, index: usize) -> Result<()> {
        self.writes += 1;
        self.synchronous += 1;
        let entry = &self.meta.entries[index];
        let offset = self.block_offset(entry.block)?;
        self.dev
            .write_sectors(offset / SECTOR_SIZE as u64, &entry.bytes)?;
        self.meta.entries[index].dirty = false;
        Ok(())
    }

    /// Checks that `block` may be a file's data or indirect block.
    pub(crate) fn check_data_block(&self, block: u32) -> Result<u32> {
        if block <= self.sb.first_data_block || block >= self.sb.blocks_count {
            return Err(Ext2Error::Corrupt("block pointer outside the data area"));
        }
        Ok(block)
    }

    // ---- group descriptors and superblock -------------------------------

    fn gd_at(&self, group: u32, field: usize) -> usize {
        group as usize * GROUP_DESC_SIZE + field
    }

    pub(crate) fn gd32(&self, group: u32, field: usize) -> u32 {
        get32(&self.gdt, self.gd_at(group, field))
    }

    pub(crate) fn gd16(&self, group: u32, field: usize) -> u16 {
        get16(&self.gdt, self.gd_at(group, field))
    }

    fn set_gd16(&mut self, group: u32, field: usize, value: u16) {
        let at = self.gd_at(group, field);
        put16(&mut self.gdt, at, value);
    }

    /// Writes group `group`'s descriptor and the superblock back.
    fn store_group_and_super(&mut self, group: u32) -> Result<()> {
        let at = self.gd_at(group, 0);
        let desc = self.gdt[at..at + GROUP_DESC_SIZE].to_vec();
        self.write_meta_bytes(self.gdt_offset() + at as u64, &desc)?;
        self.store_super()
    }

    /// The blocks [`Self::store_group_and_super`] changes for `group`: the
    /// one holding its descriptor, the superblock's.
    pub(crate) fn group_and_super_blocks(&self, group: u32) -> [u32; 2] {
        let block_size = u64::from(self.sb.block_size);
        let descriptor = self.gdt_offset() + self.gd_at(group, 0) as u64;
        [
            (descriptor / block_size) as u32,
            (SUPERBLOCK_OFFSET / block_size) as u32,
        ]
    }

    pub(crate) fn store_super(&mut self) -> Result<()> {
        self.sb.set_write_time(self.now);
        let raw = self.sb.raw.clone();
        self.write_meta_bytes(SUPERBLOCK_OFFSET, &raw)
    }

    /// Adjusts the free-block counts of `group` and the superblock.
    fn count_blocks(&mut self, group: u32, taken: bool) -> Result<()> {
        let group_free = self.gd16(group, gd::FREE_BLOCKS);
        let total_free = self.sb.free_blocks();
        if taken {
            self.set_gd16(group, gd::FREE_BLOCKS, group_free.saturating_sub(1));
            self.sb.set_free_blocks(total_free.saturating_sub(1));
        } else {
            self.set_gd16(group, gd::FREE_BLOCKS, group_free.saturating_add(1));
            self.sb.set_free_blocks(total_free.saturating_add(1));
        }
        self.store_group_and_super(group)
    }

    fn count_inodes(&mut self, group: u32, taken: bool, dir: bool) -> Result<()> {
        let group_free = self.gd16(group, gd::FREE_INODES);
        let total_free = self.sb.free_inodes();
        let dirs = self.gd16(group, gd::USED_DIRS);
        if taken {
            self.set_gd16(group, gd::FREE_INODES, group_free.saturating_sub(1));
            self.sb.set_free_inodes(total_free.saturating_sub(1));
            if dir {
                self.set_gd16(group, gd::USED_DIRS, dirs.saturating_add(1));
            }
        } else {
            self.set_gd16(group, gd::FREE_INODES, group_free.saturating_add(1));
            self.sb.set_free_inodes(total_free.saturating_add(1));
            if dir {
                self.set_gd16(group, gd::USED_DIRS, dirs.saturating_sub(1));
            }
        }
        self.store_group_and_super(group)
    }

    // ---- allocators -----------------------------------------------------

    /// Finds and sets the first clear bit below `limit` in a bitmap block.
    fn take_bit(&mut self, bitmap_block: u32, limit: u32) -> Result<Option<u32>> {
        let mut bitmap = self.read_meta(bitmap_block)?;
        for (byte_index, byte) in bitmap.iter_mut().enumerate() {
            if *byte == 0xFF {
                continue;
            }
            let bit = byte.trailing_ones();
            let index = byte_index as u32 * 8 + bit;
            if index >= limit {
                return Ok(None);
            }
            *byte |= 1 << bit;
            self.write_meta_block(bitmap_block, &bitmap)?;
            return Ok(Some(index));
        }
        Ok(None)
    }

    /// Clears bit `index` of a bitmap block; an already clear bit means the
    /// image is inconsistent and nothing is changed.
    fn release_bit(&mut self, bitmap_block: u32, index: u32) -> Result<()> {
        let mut bitmap = self.read_meta(bitmap_block)?;
        let byte = &mut bitmap[(index / 8) as usize];
        let mask = 1u8 << (index % 8);
        if *byte & mask == 0 {
            return Err(Ext2Error::Corrupt("freeing a block or inode that is free"));
        }
        *byte &= !mask;
        self.write_meta_block(bitmap_block, &bitmap)
    }

    pub(crate) fn group_of_inode(&self, ino: u32) -> u32 {
        (ino.saturating_sub(1)) / self.sb.inodes_per_group
    }

    /// Allocates a block, preferring group `goal`. Its contents are stale.
    pub(crate) fn alloc_block(&mut self, goal: u32) -> Result<u32> {
        self.check_writable()?;
        if self.sb.free_blocks() == 0 {
            return Err(Ext2Error::NoSpace);
        }
        let groups = self.sb.group_count;
        for step in 0..groups {
            let group = (goal % groups + step) % groups;
            if self.gd16(group, gd::FREE_BLOCKS) == 0 {
                continue;
            }
            let bitmap = self.gd32(group, gd::BLOCK_BITMAP);
            let limit = self.sb.blocks_in_group(group);
            if let Some(index) = self.take_bit(bitmap, limit)? {
                self.count_blocks(group, true)?;
                return Ok(self.sb.first_data_block + group * self.sb.blocks_per_group + index);
            }
        }
        Err(Ext2Error::NoSpace)
    }

    /// Allocates a block and fills it with zeros.
    pub(crate) fn alloc_zeroed_block(&mut self, goal: u32) -> Result<u32> {
        let block = self.alloc_block(goal)?;
        let zeros = vec![0; self.sb.block_size as usize];
        if self.defer_writes && self.fresh.try_reserve(1).is_err() {
            // No room to note it: written now, before any pointer to it.
            self.write_blocks(block, &zeros)?;
            return Ok(block);
        }
        self.write_meta_block(block, &zeros)?;
        if self.defer_writes
            && self
                .meta
                .find(block)
                .is_some_and(|i| self.meta.entries[i].dirty)
        {
            self.fresh.push(block);
        }
        Ok(block)
    }

    pub(crate) fn free_block(&mut self, block: u32) -> Result<()> {
        self.check_data_block(block)?;
        let relative = block - self.sb.first_data_block;
        let group = relative / self.sb.blocks_per_group;
        let bitmap = self.gd32(group, gd::BLOCK_BITMAP);
        self.release_bit(bitmap, relative % self.sb.blocks_per_group)?;
        self.meta.forget(block);
        self.count_blocks(group, false)
    }

    /// The `step`th group an inode allocation preferring group `goal`
    /// looks at, when it has free inodes (else `None`).
    pub(crate) fn inode_group(&self, goal: u32, step: u32) -> Option<InodeGroup> {
        let groups = self.sb.group_count;
        let group = (goal % groups + step) % groups;
        if self.gd16(group, gd::FREE_INODES) == 0 {
            return None;
        }
        let first = group * self.sb.inodes_per_group;
        Some(InodeGroup {
            group,
            bitmap: self.gd32(group, gd::INODE_BITMAP),
            first,
            limit: self
                .sb
                .inodes_per_group
                .min(self.sb.inodes_count.saturating_sub(first)),
        })
    }

    /// Allocates an inode number, preferring group `goal`.
    pub(crate) fn alloc_inode(&mut self, goal: u32, dir: bool) -> Result<u32> {
        self.check_writable()?;
        if self.sb.free_inodes() == 0 {
            return Err(Ext2Error::NoSpace);
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
            if let Some(index) = self.take_bit(bitmap, limit)? {
                let ino = first + index + 1;
                if ino < self.sb.first_ino {
                    // A reserved inode marked free: leave it taken, corrupt.
                    return Err(Ext2Error::Corrupt("reserved inode marked free"));
                }
                self.count_inodes(group, true, dir)?;
                return Ok(ino);
            }
        }
        Err(Ext2Error::NoSpace)
    }

    pub(crate) fn release_inode(&mut self, ino: u32, dir: bool) -> Result<()> {
        self.inode_offset(ino)?;
        let group = self.group_of_inode(ino);
        let bitmap = self.gd32(group, gd::INODE_BITMAP);
        self.release_bit(bitmap, (ino - 1) % self.sb.inodes_per_group)?;
        self.count_inodes(group, false, dir)
    }

    // ---- inodes -----------------------------------------------------------

    fn inode_offset(&self, ino: u32) -> Result<u64> {
        let (block, within) = self.inode_place(ino)?;
        Ok(u64::from(block) * u64::from(self.sb.block_size) + within as u64)
    }

    /// The inode-table block holding inode `ino`, and the inode's byte
    /// offset in it.
    pub(crate) fn inode_place(&self, ino: u32) -> Result<(u32, usize)> {
        if ino == 0 || ino > self.sb.inodes_count {
            return Err(Ext2Error::Corrupt("inode number out of range"));
        }
        let group = self.group_of_inode(ino);
        let index = (ino - 1) % self.sb.inodes_per_group;
        let table = self.gd32(group, gd::INODE_TABLE);
        let per_block = self.sb.block_size / self.sb.inode_size;
        let block = table + index / per_block;
        Ok((block, ((index % per_block) * self.sb.inode_size) as usize))
    }

    /// Reads inode `ino`, through the cache (deferred changes included).
    pub(crate) fn read_inode(&mut self, ino: u32) -> Result<Inode> {
        let (block, within) = self.inode_place(ino)?;
        let mut inode = Inode::zeroed(self.sb.inode_size);
        let size = inode.raw.len();
        match self.cached_meta(block)? {
            Some(index) => inode
                .raw
                .copy_from_slice(&self.meta.entries[index].bytes[within..within + size]),
            None => self.read_bytes(self.inode_offset(ino)?, &mut inode.raw)?,
        }
        Ok(inode)
    }

    /// Writes inode `ino` to the disk now. When its block is cached, the
    /// cached copy takes the change first, so a failed write leaves it
    /// pending for the next flush.
    pub(crate) fn write_inode(&mut self, ino: u32, inode: &Inode) -> Result<()> {
        match self.stage_inode(ino, inode)? {
            Some(_) if self.defer_writes => {
                self.writes += 1;
                self.deferred += 1;
                Ok(())
            }
            Some(index) => self.store_meta(index),
            None => self.write_bytes(self.inode_offset(ino)?, &inode.raw),
        }
    }

    /// Records inode `ino` for the next flush (a change only of its times,
    /// which a power cut may lose); written now when its block cannot be
    /// cached.
    pub(crate) fn write_inode_later(&mut self, ino: u32, inode: &Inode) -> Result<()> {
        match self.stage_inode(ino, inode)? {
            Some(_) => Ok(()),
            None => self.write_bytes(self.inode_offset(ino)?, &inode.raw),
        }
    }

    /// Puts `inode` into the cached copy of its block, marked dirty; the
    /// entry's index, `None` when the block is not cached.
    fn stage_inode(&mut self, ino: u32, inode: &Inode) -> Result<Option<usize>> {
        self.check_writable()?;
        let (block, within) = self.inode_place(ino)?;
        let Some(index) = self.cached_meta(block)? else {
            return Ok(None);
        };
        let entry = &mut self.meta.entries[index];
        entry.bytes[within..within + inode.raw.len()].copy_from_slice(&inode.raw);
        self.meta.mark_dirty(index);
        Ok(Some(index))
    }

    /// A fresh in-memory inode with `mode`, one link and the current times.
    pub(crate) fn new_inode(&self, mode: u16) -> Inode {
        let mut inode = Inode::zeroed(self.sb.inode_size);
        inode.set_mode(mode);
        inode.set_links(1);
        inode.set_times(Some(self.now), Some(self.now), Some(self.now));
        inode.set_extra_isize(self.sb.want_extra_isize());
        if self.sb.inode_size > 128 {
            put32(&mut inode.raw, 0x90, self.now); // i_crtime
        }
        inode
    }

    /// Marks the large-file feature once a file passes 2 GiB.
    pub(crate) fn note_file_size(&mut self, size: u64) -> Result<()> {
        if size > 0x7FFF_FFFF && !self.sb.has_large_file() {
            if self.sb.revision() < 1 {
                return Err(Ext2Error::FileTooBig);
            }
            self.sb.set_large_file();
            self.store_super()?;
        }
        Ok(())
    }
}

/// A group an inode allocation looks at ([`Ext2::inode_group`]): its
/// number, its inode bitmap's block, the index of its first inode and how
/// many inodes it holds.
pub(crate) struct InodeGroup {
    pub(crate) group: u32,
    pub(crate) bitmap: u32,
    pub(crate) first: u32,
    pub(crate) limit: u32,
}
