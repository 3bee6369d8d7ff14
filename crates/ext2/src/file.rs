//! File contents: stat, reading, writing (allocating, sparse-aware),
//! truncation, and whole-page helpers for a page cache.

use crate::blockmap::Leaf;
use crate::device::{BlockDevice, SECTOR_SIZE};
use crate::error::{Ext2Error, Result};
use crate::fs::Ext2;
use crate::layout::{
    Inode, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK,
};
use alloc::vec;
use alloc::vec::Vec;

/// Size of the pages the page-run helpers work in.
pub const PAGE_SIZE: usize = 4096;

/// What kind of file an inode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
    Unknown,
}

impl FileType {
    pub(crate) fn from_mode(mode: u16) -> Self {
        match mode & S_IFMT {
            S_IFREG => FileType::Regular,
            S_IFDIR => FileType::Directory,
            S_IFLNK => FileType::Symlink,
            S_IFCHR => FileType::CharDevice,
            S_IFBLK => FileType::BlockDevice,
            S_IFIFO => FileType::Fifo,
            S_IFSOCK => FileType::Socket,
            _ => FileType::Unknown,
        }
    }

    /// The directory-entry file-type code.
    pub(crate) fn dirent_code(self) -> u8 {
        match self {
            FileType::Regular => 1,
            FileType::Directory => 2,
            FileType::CharDevice => 3,
            FileType::BlockDevice => 4,
            FileType::Fifo => 5,
            FileType::Socket => 6,
            FileType::Symlink => 7,
            FileType::Unknown => 0,
        }
    }

    pub(crate) fn from_dirent_code(code: u8) -> Self {
        match code {
            1 => FileType::Regular,
            2 => FileType::Directory,
            3 => FileType::CharDevice,
            4 => FileType::BlockDevice,
            5 => FileType::Fifo,
            6 => FileType::Socket,
            7 => FileType::Symlink,
            _ => FileType::Unknown,
        }
    }
}

/// An inode's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub ino: u32,
    pub file_type: FileType,
    /// Full `i_mode`: type and permission bits.
    pub mode: u16,
    pub size: u64,
    pub links: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: u32,
    pub mtime: u32,
    pub ctime: u32,
    /// 512-byte units allocated (data, indirect and attribute blocks).
    pub sectors: u64,
}

/// Runs of one file being placed ([`Ext2::begin_placing`]): its inode,
/// changed in memory until [`Ext2::end_placing`] stores it.
pub struct Placing {
    ino: u32,
    inode: Inode,
    map_before: u32,
    leaf: Option<Leaf>,
    /// A run inside the file was placed (its times are to be set).
    placed: bool,
    /// A run failed: the inode is written as it is.
    failed: bool,
}

/// Most blocks one device write carries.
pub const MAX_BLOCKS_PER_WRITE: usize = 256;

/// Where on the device the blocks of a run of pages lie
/// ([`Ext2::place_pages`], [`Ext2::locate_pages`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// The run's blocks that lie inside the file, in order, in extents of
    /// blocks adjacent on the disk.
    pub extents: Vec<Extent>,
    /// Bytes of the run inside the file: the caller zeroes the rest of the
    /// last block before writing it (a later growth reads zeros there).
    pub inside: usize,
}

/// Bytes `at..at + len` of a run go to the device from sector `sector`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub sector: u64,
    pub at: usize,
    pub len: usize,
}

impl<D: BlockDevice> Ext2<D> {
    /// The attributes of inode `ino`.
    pub fn stat(&mut self, ino: u32) -> Result<Stat> {
        let inode = self.read_inode(ino)?;
        Ok(Stat {
            ino,
            file_type: FileType::from_mode(inode.mode()),
            mode: inode.mode(),
            size: inode.size(),
            links: inode.links(),
            uid: inode.uid(),
            gid: inode.gid(),
            atime: inode.atime(),
            mtime: inode.mtime(),
            ctime: inode.ctime(),
            sectors: u64::from(inode.sectors()),
        })
    }

    pub(crate) fn regular_inode(&mut self, ino: u32) -> Result<Inode> {
        let inode = self.read_inode(ino)?;
        match inode.kind() {
            S_IFREG => Ok(inode),
            S_IFDIR => Err(Ext2Error::IsDir),
            _ => Err(Ext2Error::InvalidArgument),
        }
    }

    /// The largest size a file may have here.
    pub fn max_file_size(&self) -> u64 {
        let by_map = self.max_logical_blocks() * u64::from(self.sb.block_size);
        // i_blocks counts 512-byte units in 32 bits, indirect blocks included.
        let by_count = (u64::from(u32::MAX) * 512) / 2;
        let by_revision = if self.sb.revision() >= 1 {
            u64::MAX
        } else {
            0x7FFF_FFFF
        };
        by_map.min(by_count).min(by_revision)
    }

    /// The disk block holding logical block `index` of regular file `ino`,
    /// `None` for a hole.
    pub fn block_map(&mut self, ino: u32, index: u64) -> Result<Option<u32>> {
        let inode = self.regular_inode(ino)?;
        self.map_block(&inode, index)
    }

    /// Reads from regular file `ino` at `offset`; returns the bytes read
    /// (fewer at the end of the file). Holes read as zeros. Access times are
    /// not updated (as with `noatime`).
    pub fn read_at(&mut self, ino: u32, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let inode = self.regular_inode(ino)?;
        let size = inode.size();
        if offset >= size {
            return Ok(0);
        }
        let len = (buf.len() as u64).min(size - offset) as usize;
        self.read_mapped(&inode, offset, &mut buf[..len])?;
        Ok(len)
    }

    /// Reads `buf.len()` bytes at `offset` through the block map, merging
    /// runs of contiguous disk blocks into one device transfer.
    fn read_mapped(&mut self, inode: &Inode, offset: u64, buf: &mut [u8]) -> Result<()> {
        let block_size = self.sb.block_size as u64;
        let mut done = 0usize;
        while done < buf.len() {
            let position = offset + done as u64;
            let logical = position / block_size;
            let within = (position % block_size) as usize;
            let remaining = buf.len() - done;
            let Some(block) = self.map_block(inode, logical)? else {
                let n = (block_size as usize - within).min(remaining);
                buf[done..done + n].fill(0);
                done += n;
                continue;
            };
            if within != 0 || remaining < block_size as usize {
                let data = self.read_block(block)?;
                let n = (block_size as usize - within).min(remaining);
                buf[done..done + n].copy_from_slice(&data[within..within + n]);
                done += n;
                continue;
            }
            let mut run = 1u64;
            let whole_blocks = (remaining / block_size as usize) as u64;
            while run < whole_blocks
                && self.map_block(inode, logical + run)?.map(u64::from)
                    == Some(u64::from(block) + run)
            {
                run += 1;
            }
            let n = (run * block_size) as usize;
            self.read_blocks(block, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    /// Writes `data` to regular file `ino` at `offset`, allocating blocks as
    /// needed and extending the size. Returns the bytes written: fewer than
    /// asked only when space ran out part way (then the file is consistent
    /// and holds what was written); `NoSpace` when nothing could be written.
    pub fn write_at(&mut self, ino: u32, offset: u64, data: &[u8]) -> Result<usize> {
        self.check_writable()?;
        let mut inode = self.regular_inode(ino)?;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(Ext2Error::FileTooBig)?;
        if end > self.max_file_size() {
            return Err(Ext2Error::FileTooBig);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let map_before = (inode.sectors(), inode.size());
        let outcome = self.write_blocks_of(ino, &mut inode, offset, data);
        let written = match outcome {
            Ok(()) => data.len(),
            Err((written, _)) if written > 0 => written,
            Err((_, error)) => {
                self.write_inode(ino, &inode)?;
                return Err(error);
            }
        };
        let new_end = offset + written as u64;
        if new_end > inode.size() {
            self.note_file_size(new_end)?;
            inode.set_size(new_end);
        }
        inode.set_times(None, Some(self.now), Some(self.now));
        if (inode.sectors(), inode.size()) == map_before {
            // Only the times changed (no block allocated, no growth): the
            // data is readable without this inode write, which waits for
            // the next flush.
            self.write_inode_later(ino, &inode)?;
        } else {
            self.write_inode(ino, &inode)?;
        }
        Ok(written)
    }

    /// The block loop of `write_at`; on error, says how much was written.
    /// Whole blocks that lie next to each other on the disk go as one
    /// device write (a run of up to [`MAX_BLOCKS_PER_WRITE`] blocks).
    fn write_blocks_of(
        &mut self,
        ino: u32,
        inode: &mut Inode,
        offset: u64,
        data: &[u8],
    ) -> core::result::Result<(), (usize, Ext2Error)> {
        let block_size = self.sb.block_size as usize;
        let mut done = 0usize;
        // The next block's mapping, when found while extending a run.
        let mut carried: Option<(u32, bool)> = None;
        while done < data.len() {
            let position = offset + done as u64;
            let logical = position / block_size as u64;
            let within = (position % block_size as u64) as usize;
            let n = (block_size - within).min(data.len() - done);
            let (block, fresh) = match carried.take() {
                Some(found) => found,
                None => self
                    .map_block_alloc(ino, inode, logical)
                    .map_err(|error| (done, error))?,
            };
            if n == block_size {
                let (run, next) =
                    self.contiguous_run(ino, inode, logical, block, data.len() - done);
                carried = next;
                let bytes = run as usize * block_size;
                self.write_blocks(block, &data[done..done + bytes])
                    .map_err(|error| (done, error))?;
                done += bytes;
                continue;
            }
            let piece = &data[done..done + n];
            let result = {
                let mut contents = if fresh {
                    vec![0; block_size]
                } else {
                    self.read_block(block).map_err(|error| (done, error))?
                };
                contents[within..within + n].copy_from_slice(piece);
                self.write_blocks(block, &contents)
            };
            result.map_err(|error| (done, error))?;
            done += n;
        }
        Ok(())
    }

    /// How many whole blocks from logical `logical` (on disk at `block`)
    /// lie one after the other on the disk, within `remaining` bytes,
    /// allocating holes on the way; and the mapping of the block that broke
    /// the run, when one was allocated or found (for the caller to use
    /// next). An allocation that fails ends the run (the caller meets the
    /// error again on the next block).
    fn contiguous_run(
        &mut self,
        ino: u32,
        inode: &mut Inode,
        logical: u64,
        block: u32,
        remaining: usize,
    ) -> (u32, Option<(u32, bool)>) {
        let block_size = self.sb.block_size as usize;
        let most = (remaining / block_size).min(MAX_BLOCKS_PER_WRITE) as u32;
        let mut run = 1u32;
        while run < most {
            match self.map_block_alloc(ino, inode, logical + u64::from(run)) {
                Ok((next, _)) if Some(next) == block.checked_add(run) => run += 1,
                Ok(found) => return (run, Some(found)),
                Err(_) => break,
            }
        }
        (run, None)
    }

    /// Sets the size of regular file `ino`. Growing leaves a hole; shrinking
    /// frees every block past the new end (indirect blocks included) and
    /// zeros the tail of the last block so a later growth reads zeros.
    pub fn truncate(&mut self, ino: u32, size: u64) -> Result<()> {
        self.check_writable()?;
        let mut inode = self.regular_inode(ino)?;
        if size > self.max_file_size() {
            return Err(Ext2Error::FileTooBig);
        }
        let block_size = u64::from(self.sb.block_size);
        if size < inode.size() {
            let result = self.free_blocks_from(&mut inode, size.div_ceil(block_size));
            if let Err(error) = result {
                self.write_inode(ino, &inode)?;
                return Err(error);
            }
            let tail = (size % block_size) as usize;
            if tail != 0 {
                if let Some(block) = self.map_block(&inode, size / block_size)? {
                    if !self.stage_data_tail(block, tail)? {
                        let mut contents = self.read_block(block)?;
                        contents[tail..].fill(0);
                        self.write_blocks(block, &contents)?;
                    }
                }
            }
        } else {
            self.note_file_size(size)?;
        }
        inode.set_size(size);
        inode.set_times(None, Some(self.now), Some(self.now));
        self.write_inode(ino, &inode)
    }

    /// Reads whole pages of regular file `ino` starting at page
    /// `first_page` into `buf` (a multiple of [`PAGE_SIZE`]). Bytes past the
    /// end of the file read as zeros, as a page cache wants them.
    pub fn read_pages(&mut self, ino: u32, first_page: u64, buf: &mut [u8]) -> Result<()> {
        if !buf.len().is_multiple_of(PAGE_SIZE) {
            return Err(Ext2Error::InvalidArgument);
        }
        let offset = first_page
            .checked_mul(PAGE_SIZE as u64)
            .ok_or(Ext2Error::InvalidArgument)?;
        let read = self.read_at(ino, offset, buf)?;
        buf[read..].fill(0);
        Ok(())
    }

    /// Where the blocks of `pages` whole pages of regular file `ino` from
    /// page `first_page` lie, for the caller to read them from the device
    /// itself (and so without waiting in here): the extents of the blocks
    /// inside the file that hold data, adjacent blocks merged (as
    /// [`Ext2::place_pages`] gives them); holes have none (they read as
    /// zeros). Nothing is allocated or written; metadata blocks the map
    /// needs are read (and cached) here.
    pub fn locate_pages(&mut self, ino: u32, first_page: u64, pages: usize) -> Result<Placement> {
        let inode = self.regular_inode(ino)?;
        let Some(inside) = run_inside(&inode, first_page, pages)? else {
            return Ok(Placement::default());
        };
        let block_size = self.sb.block_size as usize;
        let first_logical = first_page * PAGE_SIZE as u64 / block_size as u64;
        let mut extents: Vec<Extent> = Vec::new();
        let mut leaf = None;
        for i in 0..inside.div_ceil(block_size) {
            let Some(block) = self.map_block_in_run(&inode, first_logical + i as u64, &mut leaf)?
            else {
                continue;
            };
            self.write_staged_data(block, 1)?;
            add_block(&mut extents, block, i * block_size, block_size)?;
        }
        Ok(Placement { extents, inside })
    }

    /// Places `pages` whole pages of regular file `ino` from page
    /// `first_page` for the caller to write to the device itself (and so
    /// without waiting in here): the blocks inside the file are mapped,
    /// holes allocated (the metadata written now), and the file's times
    /// set as [`Ext2::write_pages`] sets them. The size does not change.
    /// The blocks leave the metadata cache: the caller's writes are what
    /// they hold. Until those writes are done nothing else may write or
    /// free the blocks (the caller's rule).
    pub fn place_pages(&mut self, ino: u32, first_page: u64, pages: usize) -> Result<Placement> {
        let mut placing = self.begin_placing(ino)?;
        let placed = self.place_run(&mut placing, first_page, pages);
        let ended = self.end_placing(placing);
        let placed = placed?;
        ended.map(|()| placed)
    }

    /// Starts placing runs of regular file `ino` one after another
    /// ([`Ext2::place_run`], as [`Ext2::place_pages`] places one), the
    /// inode read once and kept in the [`Placing`] until
    /// [`Ext2::end_placing`] stores it, which must follow (also after an
    /// error), before anything else uses the file system.
    pub fn begin_placing(&mut self, ino: u32) -> Result<Placing> {
        self.check_writable()?;
        let inode = self.regular_inode(ino)?;
        Ok(Placing {
            ino,
            map_before: inode.sectors(),
            inode,
            leaf: None,
            placed: false,
            failed: false,
        })
    }

    /// [`Ext2::place_pages`] of a run of `placing`'s file (runs in any
    /// order; the indirect block of the last block placed is kept for the
    /// next). On an error the run is placed in part: the allocations made
    /// are stored by [`Ext2::end_placing`].
    pub fn place_run(
        &mut self,
        placing: &mut Placing,
        first_page: u64,
        pages: usize,
    ) -> Result<Placement> {
        let Some(inside) = run_inside(&placing.inode, first_page, pages)? else {
            return Ok(Placement::default());
        };
        let block_size = self.sb.block_size as usize;
        let first_logical = first_page * PAGE_SIZE as u64 / block_size as u64;
        let mut extents: Vec<Extent> = Vec::new();
        placing.placed = true;
        for i in 0..inside.div_ceil(block_size) {
            let logical = first_logical + i as u64;
            let (ino, inode, leaf) = (placing.ino, &mut placing.inode, &mut placing.leaf);
            let placed = self
                .map_block_alloc_in_run(ino, inode, logical, leaf)
                .and_then(|(block, _)| {
                    self.meta.forget(block);
                    self.placed += 1;
                    add_block(&mut extents, block, i * block_size, block_size)
                });
            if let Err(error) = placed {
                placing.failed = true;
                return Err(error);
            }
        }
        Ok(Placement { extents, inside })
    }

    /// Ends [`Ext2::begin_placing`]: the inode is stored with the file's
    /// times set when a run was placed, written now when blocks were
    /// allocated (or a run failed, then without new times), else at the
    /// next flush.
    pub fn end_placing(&mut self, placing: Placing) -> Result<()> {
        let Placing {
            ino,
            mut inode,
            map_before,
            placed,
            failed,
            ..
        } = placing;
        if failed {
            return self.write_inode(ino, &inode);
        }
        if !placed {
            return Ok(());
        }
        inode.set_times(None, Some(self.now), Some(self.now));
        if inode.sectors() == map_before {
            self.write_inode_later(ino, &inode)
        } else {
            self.write_inode(ino, &inode)
        }
    }

    /// Writes back whole pages of regular file `ino` from page `first_page`
    /// (`data` a multiple of [`PAGE_SIZE`]) without changing the file size:
    /// bytes past the end of the file are not written, as a page cache
    /// writing back dirty pages needs.
    pub fn write_pages(&mut self, ino: u32, first_page: u64, data: &[u8]) -> Result<()> {
        if !data.len().is_multiple_of(PAGE_SIZE) {
            return Err(Ext2Error::InvalidArgument);
        }
        let offset = first_page
            .checked_mul(PAGE_SIZE as u64)
            .ok_or(Ext2Error::InvalidArgument)?;
        let size = self.regular_inode(ino)?.size();
        if offset >= size {
            return Ok(());
        }
        let len = (data.len() as u64).min(size - offset) as usize;
        let written = self.write_at(ino, offset, &data[..len])?;
        if written < len {
            return Err(Ext2Error::NoSpace);
        }
        Ok(())
    }
}

/// The bytes of a run of `pages` whole pages from page `first_page` that
/// lie inside the file (`None`: the run starts past its end).
pub(crate) fn run_inside(inode: &Inode, first_page: u64, pages: usize) -> Result<Option<usize>> {
    let offset = first_page
        .checked_mul(PAGE_SIZE as u64)
        .ok_or(Ext2Error::InvalidArgument)?;
    let asked = pages
        .checked_mul(PAGE_SIZE)
        .ok_or(Ext2Error::InvalidArgument)?;
    if offset >= inode.size() {
        return Ok(None);
    }
    Ok(Some((asked as u64).min(inode.size() - offset) as usize))
}

/// Adds disk block `block`, holding bytes `at..at + block_size` of a run,
/// to `extents`: the last one grows when the block follows it on the disk
/// and in the run (up to [`MAX_BLOCKS_PER_WRITE`] blocks), else a new one.
fn add_block(extents: &mut Vec<Extent>, block: u32, at: usize, block_size: usize) -> Result<()> {
    let sector = u64::from(block) * (block_size / SECTOR_SIZE) as u64;
    match extents.last_mut() {
        Some(e)
            if e.sector + (e.len / SECTOR_SIZE) as u64 == sector
                && e.at + e.len == at
                && e.len < MAX_BLOCKS_PER_WRITE * block_size =>
        {
            e.len += block_size
        }
        _ => {
            extents.try_reserve(1).map_err(|_| Ext2Error::NoSpace)?;
            extents.push(Extent {
                sector,
                at,
                len: block_size,
            });
        }
    }
    Ok(())
}
