//! Directories: entry blocks (parsed with every length checked), path
//! lookup, and the namespace operations: create, mkdir, unlink, rmdir,
//! rename, readdir.

use crate::device::BlockDevice;
use crate::error::{Ext2Error, Result};
use crate::file::FileType;
use crate::fs::{Ext2, ROOT_INO};
use crate::layout::{get16, get32, put16, put32, Inode, INDEX_FL, S_IFDIR, S_IFREG};
use alloc::vec;
use alloc::vec::Vec;

/// One directory entry as `readdir` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: u32,
    pub name: Vec<u8>,
    /// From the entry's type code when the image records it, otherwise
    /// from the inode.
    pub file_type: FileType,
}

/// An entry's position and header fields inside one directory block.
#[derive(Debug, Clone, Copy)]
struct RawEntry {
    offset: usize,
    ino: u32,
    rec_len: usize,
    name_len: usize,
    type_code: u8,
}

/// Where an entry was found.
struct Found {
    block: u32,
    contents: Vec<u8>,
    entries: Vec<RawEntry>,
    index: usize,
}

const MAX_NAME: usize = 255;

/// Bytes an entry with a name of `name_len` bytes needs.
fn entry_size(name_len: usize) -> usize {
    (8 + name_len).next_multiple_of(4)
}

fn check_name(name: &[u8]) -> Result<()> {
    if name.len() > MAX_NAME {
        return Err(Ext2Error::NameTooLong);
    }
    if name.is_empty() || name == b"." || name == b".." || name.iter().any(|&b| b == b'/' || b == 0)
    {
        return Err(Ext2Error::InvalidArgument);
    }
    Ok(())
}

impl<D: BlockDevice> Ext2<D> {
    fn parse_entries(&self, block: &[u8]) -> Result<Vec<RawEntry>> {
        let mut entries = Vec::new();
        let mut offset = 0;
        while offset < block.len() {
            if offset + 8 > block.len() {
                return Err(Ext2Error::Corrupt(
                    "directory entry header crosses the block",
                ));
            }
            let rec_len = usize::from(get16(block, offset + 4));
            let (name_len, type_code) = if self.sb.filetype {
                (usize::from(block[offset + 6]), block[offset + 7])
            } else {
                (usize::from(get16(block, offset + 6)), 0)
            };
            if rec_len < 8
                || rec_len % 4 != 0
                || offset + rec_len > block.len()
                || 8 + name_len > rec_len
            {
                return Err(Ext2Error::Corrupt("directory entry length"));
            }
            entries.push(RawEntry {
                offset,
                ino: get32(block, offset),
                rec_len,
                name_len,
                type_code,
            });
            offset += rec_len;
        }
        Ok(entries)
    }

    fn write_entry(&self, block: &mut [u8], entry: RawEntry, name: &[u8]) {
        let at = entry.offset;
        put32(block, at, entry.ino);
        put16(block, at + 4, entry.rec_len as u16);
        if self.sb.filetype {
            block[at + 6] = name.len() as u8;
            block[at + 7] = entry.type_code;
        } else {
            put16(block, at + 6, name.len() as u16);
        }
        block[at + 8..at + 8 + name.len()].copy_from_slice(name);
    }

    fn dir_inode(&mut self, ino: u32) -> Result<Inode> {
        let inode = self.read_inode(ino)?;
        if !inode.is_dir() {
            return Err(Ext2Error::NotDir);
        }
        Ok(inode)
    }

    /// Blocks a directory spans; never more than it holds (a crafted size
    /// must not make us walk billions of holes).
    fn dir_block_count(&self, inode: &Inode) -> u64 {
        let by_size = inode.size() / u64::from(self.sb.block_size);
        let held = u64::from(inode.sectors() / (self.sb.block_size / 512));
        by_size.min(held)
    }

    /// Calls `visit` on every block of a directory (holes skipped) until it
    /// returns `Some`.
    fn scan_dir<T>(
        &mut self,
        inode: &Inode,
        mut visit: impl FnMut(&Self, u32, Vec<u8>, Vec<RawEntry>) -> Option<T>,
    ) -> Result<Option<T>> {
        for logical in 0..self.dir_block_count(inode) {
            let Some(block) = self.map_block(inode, logical)? else {
                continue;
            };
            let contents = self.read_meta(block)?;
            let entries = self.parse_entries(&contents)?;
            if let Some(found) = visit(self, block, contents, entries) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    fn find_entry(&mut self, dir: &Inode, name: &[u8]) -> Result<Option<Found>> {
        self.scan_dir(dir, |_, block, contents, entries| {
            let index = entries.iter().position(|e| {
                e.ino != 0 && contents[e.offset + 8..e.offset + 8 + e.name_len] == *name
            })?;
            Some(Found {
                block,
                contents,
                entries,
                index,
            })
        })
    }

    /// The inode named `name` in directory `dir`.
    pub fn lookup(&mut self, dir: u32, name: &[u8]) -> Result<u32> {
        let inode = self.dir_inode(dir)?;
        if name.len() > MAX_NAME {
            return Err(Ext2Error::NameTooLong);
        }
        let found = self.find_entry(&inode, name)?.ok_or(Ext2Error::NotFound)?;
        Ok(found.entries[found.index].ino)
    }

    /// The metadata blocks a call on `path` reads that are not cached, as
    /// far as they can be known without reading them (at most `most`):
    /// walking from the root, the inode and the blocks of each directory
    /// on the way (a lookup scans them), then the inode of what `path`
    /// names and, for a directory, its blocks. The walk stops at the first
    /// directory with blocks missing (its entries are needed to go on), at
    /// a directory of more than `most` blocks, at a name not found, and at
    /// any error (the call itself reports it).
    /// Reads nothing and changes nothing: empty when the walk is cached.
    pub fn blocks_to_read(&mut self, path: &str, most: usize) -> Vec<u32> {
        let mut missing = Vec::new();
        self.set_cached_only(true);
        self.walk_cached(path, most, &mut missing);
        self.set_cached_only(false);
        missing
    }

    /// The walk of [`Self::blocks_to_read`], noting the blocks missing.
    fn walk_cached(&mut self, path: &str, most: usize, missing: &mut Vec<u32>) {
        let mut ino = ROOT_INO;
        let mut components = path.split('/').filter(|c| !c.is_empty() && *c != ".");
        loop {
            let read = self.read_inode(ino);
            let Some(inode) = cached(read, missing) else {
                return;
            };
            if !inode.is_dir() || !self.dir_blocks_cached(&inode, most, missing) {
                return;
            }
            let Some(name) = components.next() else {
                return;
            };
            let found = self.lookup(ino, name.as_bytes());
            let Some(next) = cached(found, missing) else {
                return;
            };
            ino = next;
        }
    }

    /// Whether every block of directory `inode` is cached; the missing
    /// ones noted (at most `most` in all). A directory of more than `most`
    /// blocks is not looked at (`false`, nothing noted): reading it ahead
    /// would evict its own first blocks from the cache.
    fn dir_blocks_cached(&mut self, inode: &Inode, most: usize, missing: &mut Vec<u32>) -> bool {
        let blocks = self.dir_block_count(inode);
        if blocks > most as u64 {
            return false;
        }
        for logical in 0..blocks {
            if missing.len() >= most {
                break;
            }
            let mapped = self.map_block(inode, logical);
            let Some(block) = cached(mapped, missing) else {
                break;
            };
            if let Some(block) = block.filter(|&b| self.meta.find(b).is_none()) {
                note_missing(block, missing);
            }
        }
        missing.is_empty()
    }

    /// The inode at absolute or root-relative `path` (`/`-separated;
    /// symbolic links are not followed).
    pub fn lookup_path(&mut self, path: &str) -> Result<u32> {
        let mut ino = ROOT_INO;
        for component in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
            ino = self.lookup(ino, component.as_bytes())?;
        }
        Ok(ino)
    }

    /// The entries of directory `dir`, `.` and `..` included.
    pub fn read_dir(&mut self, dir: u32) -> Result<Vec<DirEntry>> {
        let inode = self.dir_inode(dir)?;
        let mut list = Vec::new();
        self.scan_dir(&inode, |_, _, contents, entries| {
            for e in entries.iter().filter(|e| e.ino != 0) {
                list.push((
                    e.ino,
                    contents[e.offset + 8..e.offset + 8 + e.name_len].to_vec(),
                    e.type_code,
                ));
            }
            None::<()>
        })?;
        let mut out = Vec::with_capacity(list.len());
        for (ino, name, code) in list {
            let file_type = if self.sb.filetype {
                FileType::from_dirent_code(code)
            } else {
                FileType::from_mode(self.read_inode(ino)?.mode())
            };
            out.push(DirEntry {
                ino,
                name,
                file_type,
            });
        }
        Ok(out)
    }

    fn is_empty_dir(&mut self, inode: &Inode) -> Result<bool> {
        let other = self.scan_dir(inode, |_, _, contents, entries| {
            entries.iter().find(|e| {
                let name = &contents[e.offset + 8..e.offset + 8 + e.name_len];
                e.ino != 0 && name != b"." && name != b".."
            })?;
            Some(())
        })?;
        Ok(other.is_none())
    }

    /// Marks a directory as changed: times, and no hash index (we do not
    /// maintain one; its first block stays a valid linear directory).
    fn touch_dir(&self, inode: &mut Inode) {
        inode.set_flags(inode.flags() & !INDEX_FL);
        inode.set_times(None, Some(self.now), Some(self.now));
    }

    /// Adds entry `name` -> `ino` to directory `dir_ino`, growing it by a
    /// block when no entry has room. Changes nothing on error.
    fn add_entry(
        &mut self,
        dir_ino: u32,
        name: &[u8],
        ino: u32,
        file_type: FileType,
    ) -> Result<()> {
        let mut dir = self.dir_inode(dir_ino)?;
        let needed = entry_size(name.len());
        let type_code = if self.sb.filetype {
            file_type.dirent_code()
        } else {
            0
        };
        let slot = self.scan_dir(&dir, |_, block, contents, entries| {
            entries.iter().find_map(|e| {
                let used = if e.ino == 0 {
                    0
                } else {
                    entry_size(e.name_len)
                };
                (e.rec_len >= used + needed).then_some((block, contents.clone(), *e, used))
            })
        })?;
        if let Some((block, mut contents, entry, used)) = slot {
            if used > 0 {
                let kept = RawEntry {
                    rec_len: used,
                    ..entry
                };
                let name_of_kept =
                    contents[entry.offset + 8..entry.offset + 8 + entry.name_len].to_vec();
                self.write_entry(&mut contents, kept, &name_of_kept);
            }
            let new = RawEntry {
                offset: entry.offset + used,
                ino,
                rec_len: entry.rec_len - used,
                name_len: name.len(),
                type_code,
            };
            self.write_entry(&mut contents, new, name);
            self.write_meta_block(block, &contents)?;
        } else {
            let logical = self.dir_block_count(&dir);
            let (block, _) = match self.map_block_alloc(dir_ino, &mut dir, logical) {
                Ok(mapped) => mapped,
                Err(error) => {
                    self.write_inode(dir_ino, &dir)?;
                    return Err(error);
                }
            };
            let block_size = self.sb.block_size as usize;
            let mut contents = vec![0; block_size];
            let new = RawEntry {
                offset: 0,
                ino,
                rec_len: block_size,
                name_len: name.len(),
                type_code,
            };
            self.write_entry(&mut contents, new, name);
            self.write_meta_block(block, &contents)?;
            dir.set_size(dir.size() + block_size as u64);
        }
        self.touch_dir(&mut dir);
        self.write_inode(dir_ino, &dir)
    }

    /// Removes entry `name` from directory `dir_ino`; returns its inode.
    fn remove_entry(&mut self, dir_ino: u32, name: &[u8]) -> Result<u32> {
        let mut dir = self.dir_inode(dir_ino)?;
        let mut found = self.find_entry(&dir, name)?.ok_or(Ext2Error::NotFound)?;
        let entry = found.entries[found.index];
        if found.index == 0 {
            put32(&mut found.contents, entry.offset, 0);
        } else {
            let previous = found.entries[found.index - 1];
            put16(
                &mut found.contents,
                previous.offset + 4,
                (previous.rec_len + entry.rec_len) as u16,
            );
        }
        self.write_meta_block(found.block, &found.contents)?;
        self.touch_dir(&mut dir);
        self.write_inode(dir_ino, &dir)?;
        Ok(entry.ino)
    }

    /// Points existing entry `name` of `dir_ino` at `ino`.
    fn retarget_entry(
        &mut self,
        dir_ino: u32,
        name: &[u8],
        ino: u32,
        file_type: FileType,
    ) -> Result<()> {
        let mut dir = self.dir_inode(dir_ino)?;
        let mut found = self.find_entry(&dir, name)?.ok_or(Ext2Error::NotFound)?;
        let entry = found.entries[found.index];
        put32(&mut found.contents, entry.offset, ino);
        if self.sb.filetype {
            found.contents[entry.offset + 7] = file_type.dirent_code();
        }
        self.write_meta_block(found.block, &found.contents)?;
        self.touch_dir(&mut dir);
        self.write_inode(dir_ino, &dir)
    }

    fn adjust_links(&mut self, ino: u32, added: bool) -> Result<()> {
        let mut inode = self.read_inode(ino)?;
        let links = if added {
            inode.links().saturating_add(1)
        } else {
            inode.links().saturating_sub(1)
        };
        inode.set_links(links);
        inode.set_times(None, Some(self.now), None);
        self.write_inode(ino, &inode)
    }

    /// Creates an empty regular file `name` in `dir` with permission bits
    /// `perm`; returns its inode.
    pub fn create(&mut self, dir: u32, name: &[u8], perm: u16) -> Result<u32> {
        self.check_writable()?;
        check_name(name)?;
        let parent = self.dir_inode(dir)?;
        if self.find_entry(&parent, name)?.is_some() {
            return Err(Ext2Error::Exists);
        }
        let ino = self.alloc_inode(self.group_of_inode(dir), false)?;
        let inode = self.new_inode(S_IFREG | (perm & 0o7777));
        let added = self
            .write_inode(ino, &inode)
            .and_then(|()| self.add_entry(dir, name, ino, FileType::Regular));
        if let Err(error) = added {
            self.release_inode(ino, false)?;
            return Err(error);
        }
        Ok(ino)
    }

    /// Creates directory `name` in `dir` (with `.` and `..`); returns its
    /// inode.
    pub fn mkdir(&mut self, dir: u32, name: &[u8], perm: u16) -> Result<u32> {
        self.check_writable()?;
        check_name(name)?;
        let parent = self.dir_inode(dir)?;
        if self.find_entry(&parent, name)?.is_some() {
            return Err(Ext2Error::Exists);
        }
        if parent.links() == u16::MAX {
            return Err(Ext2Error::NoSpace);
        }
        let ino = self.alloc_inode(self.group_of_inode(dir), true)?;
        let block = match self.alloc_block(self.group_of_inode(ino)) {
            Ok(block) => block,
            Err(error) => {
                self.release_inode(ino, true)?;
                return Err(error);
            }
        };
        let made = self
            .fill_new_dir(dir, ino, block, perm)
            .and_then(|()| self.add_entry(dir, name, ino, FileType::Directory));
        if let Err(error) = made {
            self.free_block(block)?;
            self.release_inode(ino, true)?;
            return Err(error);
        }
        self.adjust_links(dir, true)?;
        Ok(ino)
    }

    fn fill_new_dir(&mut self, parent: u32, ino: u32, block: u32, perm: u16) -> Result<()> {
        let block_size = self.sb.block_size as usize;
        let mut contents = vec![0; block_size];
        let type_code = if self.sb.filetype {
            FileType::Directory.dirent_code()
        } else {
            0
        };
        let dot = RawEntry {
            offset: 0,
            ino,
            rec_len: 12,
            name_len: 1,
            type_code,
        };
        self.write_entry(&mut contents, dot, b".");
        let dotdot = RawEntry {
            offset: 12,
            ino: parent,
            rec_len: block_size - 12,
            name_len: 2,
            type_code,
        };
        self.write_entry(&mut contents, dotdot, b"..");
        self.write_meta_block(block, &contents)?;
        let mut inode = self.new_inode(S_IFDIR | (perm & 0o7777));
        inode.set_links(2);
        inode.set_size(block_size as u64);
        inode.set_block(0, block);
        inode.set_sectors(self.sb.block_size / 512);
        self.write_inode(ino, &inode)
    }

    /// Drops one link of `ino`; frees the inode and its blocks at zero,
    /// unless it is held open ([`Ext2::hold`]): then it stays, with no
    /// link, until [`Ext2::release`].
    fn drop_link(&mut self, ino: u32) -> Result<()> {
        let mut inode = self.read_inode(ino)?;
        let links = inode.links().saturating_sub(1);
        inode.set_links(links);
        inode.set_times(None, Some(self.now), None);
        if links > 0 || self.held.contains(&ino) {
            return self.write_inode(ino, &inode);
        }
        self.free_inode(ino, inode)
    }

    /// Marks regular file `ino` open: when its last name goes (`unlink`, or
    /// `rename` over it) its data stays until [`Ext2::release`] (POSIX: a
    /// file lives while it is open). Fails without memory for the record.
    pub fn hold(&mut self, ino: u32) -> Result<()> {
        if !self.held.contains(&ino) {
            self.held.try_reserve(1).map_err(|_| Ext2Error::NoSpace)?;
            self.held.push(ino);
        }
        Ok(())
    }

    /// Ends a [`Ext2::hold`]: an inode that lost every name meanwhile is
    /// freed now, with its blocks.
    pub fn release(&mut self, ino: u32) -> Result<()> {
        let Some(at) = self.held.iter().position(|&h| h == ino) else {
            return Ok(());
        };
        self.held.swap_remove(at);
        let inode = self.read_inode(ino)?;
        if inode.links() == 0 && inode.mode() != 0 {
            self.check_writable()?;
            return self.free_inode(ino, inode);
        }
        Ok(())
    }

    /// Sets the permission bits (`0o7777`) of `ino`, keeping its type; the
    /// change time becomes now.
    pub fn set_permissions(&mut self, ino: u32, perm: u16) -> Result<()> {
        self.check_writable()?;
        let mut inode = self.read_inode(ino)?;
        inode.set_mode((inode.mode() & !0o7777) | (perm & 0o7777));
        inode.set_times(None, Some(self.now), None);
        self.write_inode(ino, &inode)
    }

    /// Sets the access and/or modification time of `ino` (`None` keeps
    /// one); the change time becomes now.
    pub fn set_times(&mut self, ino: u32, atime: Option<u32>, mtime: Option<u32>) -> Result<()> {
        self.check_writable()?;
        let mut inode = self.read_inode(ino)?;
        inode.set_times(atime, Some(self.now), mtime);
        self.write_inode(ino, &inode)
    }

    /// Frees an inode with no links left: blocks, attributes, bitmap bit.
    fn free_inode(&mut self, ino: u32, mut inode: Inode) -> Result<()> {
        let dir = inode.is_dir();
        inode.set_links(0);
        let freed = if self.has_block_map(&inode) {
            self.free_blocks_from(&mut inode, 0)
        } else {
            Ok(())
        };
        let freed = freed.and_then(|()| self.release_xattr_block(&mut inode));
        // A deletion time below the inode count reads as a link of the
        // orphan list to e2fsck: a clock that starts at 0 (NeoOS counts
        // from boot) must not make one.
        inode.set_dtime(self.now.max(self.sb.inodes_count.saturating_add(1)));
        self.write_inode(ino, &inode)?;
        freed?;
        self.release_inode(ino, dir)
    }

    /// Removes non-directory `name` from `dir`.
    pub fn unlink(&mut self, dir: u32, name: &[u8]) -> Result<()> {
        self.check_writable()?;
        check_name(name)?;
        let ino = self.lookup(dir, name)?;
        if self.read_inode(ino)?.is_dir() {
            return Err(Ext2Error::IsDir);
        }
        self.remove_entry(dir, name)?;
        self.drop_link(ino)
    }

    /// Removes empty directory `name` from `dir`.
    pub fn rmdir(&mut self, dir: u32, name: &[u8]) -> Result<()> {
        self.check_writable()?;
        check_name(name)?;
        let ino = self.lookup(dir, name)?;
        let inode = self.dir_inode(ino)?;
        if !self.is_empty_dir(&inode)? {
            return Err(Ext2Error::NotEmpty);
        }
        self.remove_entry(dir, name)?;
        self.free_inode(ino, inode)?;
        self.adjust_links(dir, false)
    }

    /// Whether directory `ancestor` is `dir` or one of its parents.
    fn is_ancestor(&mut self, ancestor: u32, dir: u32) -> Result<bool> {
        let mut current = dir;
        for _ in 0..self.sb.inodes_count {
            if current == ancestor {
                return Ok(true);
            }
            if current == ROOT_INO {
                return Ok(false);
            }
            current = self.lookup(current, b"..")?;
        }
        Err(Ext2Error::Corrupt("directory parent chain loops"))
    }

    /// Moves `old_dir/old_name` to `new_dir/new_name`, replacing a target of
    /// the same kind (a directory only when empty).
    pub fn rename(
        &mut self,
        old_dir: u32,
        old_name: &[u8],
        new_dir: u32,
        new_name: &[u8],
    ) -> Result<()> {
        self.check_writable()?;
        check_name(old_name)?;
        check_name(new_name)?;
        let ino = self.lookup(old_dir, old_name)?;
        let moving = self.read_inode(ino)?;
        let is_dir = moving.is_dir();
        let file_type = FileType::from_mode(moving.mode());
        if is_dir && self.is_ancestor(ino, new_dir)? {
            return Err(Ext2Error::InvalidArgument);
        }
        match self.lookup(new_dir, new_name) {
            Ok(target) if target == ino => return Ok(()),
            Ok(target) => {
                let target_inode = self.read_inode(target)?;
                match (is_dir, target_inode.is_dir()) {
                    (true, false) => return Err(Ext2Error::NotDir),
                    (false, true) => return Err(Ext2Error::IsDir),
                    (true, true) if !self.is_empty_dir(&target_inode)? => {
                        return Err(Ext2Error::NotEmpty)
                    }
                    _ => {}
                }
                self.retarget_entry(new_dir, new_name, ino, file_type)?;
                if target_inode.is_dir() {
                    self.free_inode(target, target_inode)?;
                    self.adjust_links(new_dir, false)?;
                } else {
                    self.drop_link(target)?;
                }
            }
            Err(Ext2Error::NotFound) => {
                if is_dir && old_dir != new_dir && self.read_inode(new_dir)?.links() == u16::MAX {
                    return Err(Ext2Error::NoSpace);
                }
                self.add_entry(new_dir, new_name, ino, file_type)?;
            }
            Err(error) => return Err(error),
        }
        self.remove_entry(old_dir, old_name)?;
        if is_dir && old_dir != new_dir {
            self.retarget_entry(ino, b"..", new_dir, FileType::Directory)?;
            self.adjust_links(old_dir, false)?;
            self.adjust_links(new_dir, true)?;
        }
        let mut moved = self.read_inode(ino)?;
        moved.set_times(None, Some(self.now), None);
        self.write_inode(ino, &moved)
    }
}

/// The value of a read made for [`Ext2::blocks_to_read`]; `None` when it
/// needed a block not cached (noted in `missing`) or failed otherwise.
pub(crate) fn cached<T>(read: Result<T>, missing: &mut Vec<u32>) -> Option<T> {
    match read {
        Ok(value) => Some(value),
        Err(Ext2Error::WouldRead(block)) => {
            note_missing(block, missing);
            None
        }
        Err(_) => None,
    }
}

/// Notes `block` as missing, once (nothing when the heap refuses).
pub(crate) fn note_missing(block: u32, missing: &mut Vec<u32>) {
    if !missing.contains(&block) && missing.try_reserve(1).is_ok() {
        missing.push(block);
    }
}
