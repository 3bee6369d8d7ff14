//! On-disk layout: little-endian field access, the superblock (parsed and
//! validated), group descriptors and inodes (kept as raw bytes so fields this
//! crate does not interpret survive a rewrite).

use crate::error::{Ext2Error, Result};
use alloc::vec;
use alloc::vec::Vec;

pub(crate) fn get16(bytes: &[u8], at: usize) -> u16 {
    match bytes.get(at..at + 2) {
        Some(b) => u16::from_le_bytes([b[0], b[1]]),
        None => 0,
    }
}

pub(crate) fn get32(bytes: &[u8], at: usize) -> u32 {
    match bytes.get(at..at + 4) {
        Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        None => 0,
    }
}

pub(crate) fn put16(bytes: &mut [u8], at: usize, value: u16) {
    if let Some(b) = bytes.get_mut(at..at + 2) {
        b.copy_from_slice(&value.to_le_bytes());
    }
}

pub(crate) fn put32(bytes: &mut [u8], at: usize, value: u32) {
    if let Some(b) = bytes.get_mut(at..at + 4) {
        b.copy_from_slice(&value.to_le_bytes());
    }
}

/// Byte offset of the superblock on the device, and its size.
pub(crate) const SUPERBLOCK_OFFSET: u64 = 1024;
pub(crate) const SUPERBLOCK_SIZE: usize = 1024;
const MAGIC: u16 = 0xEF53;

/// Feature bits this implementation understands.
pub(crate) const INCOMPAT_FILETYPE: u32 = 0x0002;
const INCOMPAT_SUPPORTED: u32 = INCOMPAT_FILETYPE;
pub(crate) const RO_COMPAT_SPARSE_SUPER: u32 = 0x0001;
pub(crate) const RO_COMPAT_LARGE_FILE: u32 = 0x0002;
const RO_COMPAT_SUPPORTED: u32 = RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE;

/// The name of the lowest incompatible feature bit set in `bits`.
fn incompat_feature_name(bits: u32) -> &'static str {
    const NAMES: [(u32, &str); 16] = [
        (0x0001, "incompatible feature compression"),
        (
            0x0004,
            "incompatible feature needs_recovery (journal to replay)",
        ),
        (0x0008, "incompatible feature journal_dev"),
        (0x0010, "incompatible feature meta_bg"),
        (0x0040, "incompatible feature extents (ext4)"),
        (0x0080, "incompatible feature 64bit"),
        (0x0100, "incompatible feature mmp"),
        (0x0200, "incompatible feature flex_bg"),
        (0x0400, "incompatible feature ea_inode"),
        (0x1000, "incompatible feature dirdata"),
        (0x2000, "incompatible feature csum_seed"),
        (0x4000, "incompatible feature large_dir"),
        (0x8000, "incompatible feature inline_data"),
        (0x10000, "incompatible feature encrypt"),
        (0x20000, "incompatible feature casefold"),
        (0x0020, "incompatible feature 0x20"),
    ];
    let lowest = bits & bits.wrapping_neg();
    NAMES
        .iter()
        .find(|(bit, _)| *bit == lowest)
        .map_or("unknown incompatible feature", |(_, name)| name)
}

/// The fields of the superblock this crate uses, with the raw bytes.
#[derive(Debug, Clone)]
pub(crate) struct Superblock {
    pub raw: Vec<u8>,
    pub block_size: u32,
    pub inodes_count: u32,
    pub blocks_count: u32,
    pub first_data_block: u32,
    pub blocks_per_group: u32,
    pub inodes_per_group: u32,
    pub inode_size: u32,
    pub first_ino: u32,
    pub group_count: u32,
    pub filetype: bool,
    /// Set when a read-only-compatible feature we do not implement is on.
    pub unknown_ro_compat: bool,
}

impl Superblock {
    /// Parses and validates; refuses what cannot be handled safely.
    pub fn parse(raw: Vec<u8>) -> Result<Self> {
        if raw.len() != SUPERBLOCK_SIZE || get16(&raw, 56) != MAGIC {
            return Err(Ext2Error::Corrupt("bad superblock magic"));
        }
        let log_block_size = get32(&raw, 24);
        if log_block_size > 2 {
            return Err(Ext2Error::Unsupported("block size above 4 KiB"));
        }
        let block_size = 1024u32 << log_block_size;
        let revision = get32(&raw, 76);
        let (first_ino, inode_size, incompat, ro_compat) = match revision {
            0 => (11, 128, 0, 0),
            1 => (
                get32(&raw, 84),
                u32::from(get16(&raw, 88)),
                get32(&raw, 96),
                get32(&raw, 100),
            ),
            _ => return Err(Ext2Error::Unsupported("revision above 1")),
        };
        let unsupported = incompat & !INCOMPAT_SUPPORTED;
        if unsupported != 0 {
            return Err(Ext2Error::Unsupported(incompat_feature_name(unsupported)));
        }
        let sb = Superblock {
            block_size,
            inodes_count: get32(&raw, 0),
            blocks_count: get32(&raw, 4),
            first_data_block: get32(&raw, 20),
            blocks_per_group: get32(&raw, 32),
            inodes_per_group: get32(&raw, 40),
            inode_size,
            first_ino,
            group_count: 0,
            filetype: incompat & INCOMPAT_FILETYPE != 0,
            unknown_ro_compat: ro_compat & !RO_COMPAT_SUPPORTED != 0,
            raw,
        };
        sb.validated()
    }

    fn validated(mut self) -> Result<Self> {
        let bits_per_block = self.block_size * 8;
        let expected_first = if self.block_size == 1024 { 1 } else { 0 };
        if self.first_data_block != expected_first {
            return Err(Ext2Error::Corrupt("first data block"));
        }
        if self.blocks_per_group == 0 || self.blocks_per_group > bits_per_block {
            return Err(Ext2Error::Corrupt("blocks per group"));
        }
        if self.inodes_per_group == 0 || self.inodes_per_group > bits_per_block {
            return Err(Ext2Error::Corrupt("inodes per group"));
        }
        if self.inode_size < 128
            || !self.inode_size.is_power_of_two()
            || self.inode_size > self.block_size
        {
            return Err(Ext2Error::Corrupt("inode size"));
        }
        if self.blocks_count <= self.first_data_block + 1 {
            return Err(Ext2Error::Corrupt("blocks count"));
        }
        let data_blocks = self.blocks_count - self.first_data_block;
        self.group_count = data_blocks.div_ceil(self.blocks_per_group);
        let max_inodes = u64::from(self.group_count) * u64::from(self.inodes_per_group);
        if self.inodes_count == 0 || u64::from(self.inodes_count) > max_inodes {
            return Err(Ext2Error::Corrupt("inodes count"));
        }
        if self.first_ino < 11 || self.first_ino > self.inodes_count {
            return Err(Ext2Error::Corrupt("first inode"));
        }
        let gdt_blocks = self.gdt_bytes().div_ceil(self.block_size as usize) as u64;
        if u64::from(self.first_data_block) + 1 + gdt_blocks > u64::from(self.blocks_count) {
            return Err(Ext2Error::Corrupt("group descriptor table beyond the end"));
        }
        Ok(self)
    }

    /// Size in bytes of the group descriptor table (32 bytes per group).
    pub fn gdt_bytes(&self) -> usize {
        self.group_count as usize * GROUP_DESC_SIZE
    }

    /// Blocks of the inode table of one group.
    pub fn inode_table_blocks(&self) -> u32 {
        (self.inodes_per_group * self.inode_size).div_ceil(self.block_size)
    }

    /// Number of blocks in group `group` (the last may be short).
    pub fn blocks_in_group(&self, group: u32) -> u32 {
        let start = group * self.blocks_per_group;
        (self.blocks_count - self.first_data_block - start).min(self.blocks_per_group)
    }

    pub fn free_blocks(&self) -> u32 {
        get32(&self.raw, 12)
    }
    pub fn set_free_blocks(&mut self, count: u32) {
        put32(&mut self.raw, 12, count);
    }
    pub fn free_inodes(&self) -> u32 {
        get32(&self.raw, 16)
    }
    pub fn set_free_inodes(&mut self, count: u32) {
        put32(&mut self.raw, 16, count);
    }
    pub fn set_write_time(&mut self, now: u32) {
        put32(&mut self.raw, 48, now);
    }
    pub fn revision(&self) -> u32 {
        get32(&self.raw, 76)
    }
    pub fn has_large_file(&self) -> bool {
        self.revision() >= 1 && get32(&self.raw, 100) & RO_COMPAT_LARGE_FILE != 0
    }
    pub fn set_large_file(&mut self) {
        let ro = get32(&self.raw, 100);
        put32(&mut self.raw, 100, ro | RO_COMPAT_LARGE_FILE);
    }
    /// The extra inode size new inodes should carry (rev 1, large inodes).
    pub fn want_extra_isize(&self) -> u16 {
        if self.inode_size <= 128 {
            return 0;
        }
        let wanted = get16(&self.raw, 0x15C);
        let max = (self.inode_size - 128) as u16;
        if wanted >= 4 && wanted <= max && wanted.is_multiple_of(4) {
            wanted
        } else {
            32.min(max)
        }
    }
}

pub(crate) const GROUP_DESC_SIZE: usize = 32;

/// Field offsets of a group descriptor.
pub(crate) mod gd {
    pub const BLOCK_BITMAP: usize = 0;
    pub const INODE_BITMAP: usize = 4;
    pub const INODE_TABLE: usize = 8;
    pub const FREE_BLOCKS: usize = 12;
    pub const FREE_INODES: usize = 14;
    pub const USED_DIRS: usize = 16;
}

/// File-type bits of `i_mode`.
pub(crate) const S_IFMT: u16 = 0xF000;
pub(crate) const S_IFREG: u16 = 0x8000;
pub(crate) const S_IFDIR: u16 = 0x4000;
pub(crate) const S_IFLNK: u16 = 0xA000;
pub(crate) const S_IFCHR: u16 = 0x2000;
pub(crate) const S_IFBLK: u16 = 0x6000;
pub(crate) const S_IFIFO: u16 = 0x1000;
pub(crate) const S_IFSOCK: u16 = 0xC000;

/// `i_flags` bit of a directory indexed by a hash tree (which we do not
/// maintain: we clear it when we change the directory).
pub(crate) const INDEX_FL: u32 = 0x1000;

/// Number of block pointers in an inode and the first indirect slots.
pub(crate) const DIRECT_BLOCKS: usize = 12;
pub(crate) const SINGLE_SLOT: usize = 12;
pub(crate) const DOUBLE_SLOT: usize = 13;
pub(crate) const TRIPLE_SLOT: usize = 14;

/// An inode as stored: `inode_size` raw bytes with typed accessors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inode {
    pub raw: Vec<u8>,
}

impl Inode {
    pub fn zeroed(inode_size: u32) -> Self {
        Inode {
            raw: vec![0; inode_size as usize],
        }
    }
    pub fn mode(&self) -> u16 {
        get16(&self.raw, 0)
    }
    pub fn set_mode(&mut self, mode: u16) {
        put16(&mut self.raw, 0, mode);
    }
    pub fn kind(&self) -> u16 {
        self.mode() & S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.kind() == S_IFDIR
    }
    pub fn is_regular(&self) -> bool {
        self.kind() == S_IFREG
    }
    pub fn uid(&self) -> u32 {
        u32::from(get16(&self.raw, 2)) | u32::from(get16(&self.raw, 120)) << 16
    }
    pub fn gid(&self) -> u32 {
        u32::from(get16(&self.raw, 24)) | u32::from(get16(&self.raw, 122)) << 16
    }
    /// File size; the high half counts for regular files only (for others it
    /// is the old `i_dir_acl`).
    pub fn size(&self) -> u64 {
        let low = u64::from(get32(&self.raw, 4));
        if self.is_regular() {
            low | u64::from(get32(&self.raw, 108)) << 32
        } else {
            low
        }
    }
    pub fn set_size(&mut self, size: u64) {
        put32(&mut self.raw, 4, size as u32);
        if self.is_regular() {
            put32(&mut self.raw, 108, (size >> 32) as u32);
        }
    }
    pub fn atime(&self) -> u32 {
        get32(&self.raw, 8)
    }
    pub fn ctime(&self) -> u32 {
        get32(&self.raw, 12)
    }
    pub fn mtime(&self) -> u32 {
        get32(&self.raw, 16)
    }
    pub fn set_times(&mut self, atime: Option<u32>, ctime: Option<u32>, mtime: Option<u32>) {
        for (at, value) in [(8, atime), (12, ctime), (16, mtime)] {
            if let Some(value) = value {
                put32(&mut self.raw, at, value);
            }
        }
    }
    pub fn set_dtime(&mut self, dtime: u32) {
        put32(&mut self.raw, 20, dtime);
    }
    pub fn links(&self) -> u16 {
        get16(&self.raw, 26)
    }
    pub fn set_links(&mut self, links: u16) {
        put16(&mut self.raw, 26, links);
    }
    /// `i_blocks`: 512-byte units held (data, indirect and attribute blocks).
    pub fn sectors(&self) -> u32 {
        get32(&self.raw, 28)
    }
    pub fn set_sectors(&mut self, sectors: u32) {
        put32(&mut self.raw, 28, sectors);
    }
    pub fn flags(&self) -> u32 {
        get32(&self.raw, 32)
    }
    pub fn set_flags(&mut self, flags: u32) {
        put32(&mut self.raw, 32, flags);
    }
    pub fn block(&self, slot: usize) -> u32 {
        get32(&self.raw, 40 + 4 * slot)
    }
    pub fn set_block(&mut self, slot: usize, block: u32) {
        put32(&mut self.raw, 40 + 4 * slot, block);
    }
    pub fn file_acl(&self) -> u32 {
        get32(&self.raw, 104)
    }
    pub fn set_file_acl(&mut self, block: u32) {
        put32(&mut self.raw, 104, block);
    }
    pub fn set_extra_isize(&mut self, extra: u16) {
        put16(&mut self.raw, 128, extra);
    }
}
