//! The file system: a namespace of directories and files (`FileSystem`) over a
//! RAM disk (`RamDisk`, the backing store the mapping core's page cache pages
//! from and writes back to). It is filled at boot from the cpio ("newc")
//! archive the host tool builds. Once a disk is mounted at `/home`
//! ([`FileSystem::mount_home`]), paths below it go to the ext2 volume
//! through the mount layer ([`crate::mount`]), which also owns the pager.
//!
//! `/dev/faulty` lives on a disk region whose writes fail: writing to it, or
//! writing back its dirty pages, reports an I/O error, which is how programs
//! exercise E_IO.
//!
//! The disk's data lives in page-sized blocks of a [`DiskBlocks`] store:
//! physical frames in the kernel (so files are bounded by free memory, not
//! by the kernel heap), heap pages on the host.
//!
//! Room on the disk is reserved before data is accepted: every file holds a
//! reservation of as many blocks as its length has pages (holes included),
//! taken from the store when a write that lengthens it is accepted
//! ([`RamDisk::reserve`], refused when memory is full) and brought to its
//! stored length by [`Pager::set_len`]. Writing back a file's pages within
//! its length therefore needs no memory, so what a write or a store through
//! a shared mapping was allowed to change is never lost later for want of
//! space.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::ops::Bound;
use core::sync::atomic::{AtomicU64, Ordering};

use neoos_mm::{FileId, IoError, PageBytes, Pager};

use crate::mount::{below_home, Storage};

const PAGE: usize = neoos_abi::PAGE_SIZE;

/// The file whose every write to the disk fails.
pub const FAULTY_FILE: &str = "/dev/faulty";

/// What a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    Dir,
    File(FileId),
}

/// Why a namespace operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsError {
    NotFound,
    Exists,
    NotADirectory,
    Invalid,
    /// The file system holds `MAX_NODES` entries already (or the disk
    /// volume is full).
    Full,
    /// The disk volume could not be read or written, or is corrupt.
    Io,
    /// The directory to remove (or to rename over) still has entries.
    NotEmpty,
    /// A directory where a file was needed.
    IsDir,
    /// A name in the path is longer than [`NAME_MAX`] bytes.
    NameTooLong,
    /// A rename from one file system to another (the volume and RAM).
    CrossDevice,
    /// The path is a mount point (`/`, `/home`, `/tmp`, ...).
    Busy,
}

/// Longest name of one directory entry (bytes).
pub const NAME_MAX: usize = 255;

/// Paths where a file system is mounted (or that the kernel serves): no
/// rename or rmdir takes them.
const MOUNT_POINTS: &[&str] = &["/", "/home", "/tmp", "/dev", "/dev/shm", "/proc"];

/// `NameTooLong` when a name in `path` is longer than [`NAME_MAX`].
pub fn check_names(path: &str) -> Result<(), FsError> {
    if path.split('/').any(|name| name.len() > NAME_MAX) {
        return Err(FsError::NameTooLong);
    }
    Ok(())
}

/// Whether normalized `path` is `dir` or lies below it.
pub fn is_within(path: &str, dir: &str) -> bool {
    dir == "/"
        || path == dir
        || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

/// Why the initial file system could not be filled whole from its image.
#[derive(Debug, PartialEq, Eq)]
pub enum UnpackError {
    /// There is no image (none built in and no boot module).
    Empty,
    /// The image is not a well-formed cpio "newc" archive.
    Malformed(&'static str),
    /// The file system refused this entry of the image.
    Refused { path: String, why: FsError },
}

impl core::fmt::Display for UnpackError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            UnpackError::Empty => f.write_str("no image (none built in and no boot module)"),
            UnpackError::Malformed(what) => f.write_str(what),
            UnpackError::Refused { path, why } => write!(f, "entry {path} refused: {why:?}"),
        }
    }
}

/// Most files and directories the file system holds (each costs kernel heap,
/// and a directory listing is built whole).
pub const MAX_NODES: usize = 16384;

/// Where the RAM disk keeps file data: page-sized blocks outside the
/// kernel heap (physical frames in the kernel, bounded by free memory),
/// named by number. The kernel gives its own; [`HeapBlocks`] is the
/// host's.
pub trait DiskBlocks: Send {
    /// A block (contents unspecified), or `None` when memory is full.
    fn alloc(&mut self) -> Option<u64>;
    /// Gives back a block from `alloc`.
    fn free(&mut self, block: u64);
    /// How many blocks `alloc` could give now.
    fn available(&self) -> usize;
    /// The contents of a block.
    fn bytes(&self, block: u64) -> &PageBytes;
    /// The contents of a block, writable.
    fn bytes_mut(&mut self, block: u64) -> &mut PageBytes;
}

/// Blocks in heap pages, at most `limit` of them: the disk of host builds
/// and tests (a machine with `limit` pages of memory for files).
pub struct HeapBlocks {
    pages: Vec<Option<Box<PageBytes>>>,
    free_slots: Vec<usize>,
    live: usize,
    limit: usize,
}

/// Blocks a [`RamDisk::default`] may hold on the host (32 MiB).
pub const HOST_DISK_BLOCKS: usize = 8192;

impl HeapBlocks {
    /// A store of at most `limit` blocks.
    pub fn with_limit(limit: usize) -> Self {
        HeapBlocks {
            pages: Vec::new(),
            free_slots: Vec::new(),
            live: 0,
            limit,
        }
    }
}

impl DiskBlocks for HeapBlocks {
    fn alloc(&mut self) -> Option<u64> {
        if self.live >= self.limit {
            return None;
        }
        let mut bytes = Vec::new();
        bytes.try_reserve_exact(PAGE).ok()?;
        bytes.resize(PAGE, 0u8);
        let page: Box<PageBytes> = bytes.into_boxed_slice().try_into().ok()?;
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.pages.try_reserve(1).ok()?;
                self.free_slots.try_reserve(self.pages.len() + 1).ok()?;
                self.pages.push(None);
                self.pages.len() - 1
            }
        };
        self.pages[slot] = Some(page);
        self.live += 1;
        Some(slot as u64)
    }
    fn free(&mut self, block: u64) {
        if let Some(page) = self.pages.get_mut(block as usize) {
            if page.take().is_some() {
                self.live -= 1;
                self.free_slots.push(block as usize);
            }
        }
    }
    fn available(&self) -> usize {
        self.limit - self.live
    }
    fn bytes(&self, block: u64) -> &PageBytes {
        self.pages[block as usize]
            .as_deref()
            .expect("a block of the disk")
    }
    fn bytes_mut(&mut self, block: u64) -> &mut PageBytes {
        self.pages[block as usize]
            .as_deref_mut()
            .expect("a block of the disk")
    }
}

/// One page of a file's reservation: its block, and whether anything was
/// written there (a block never written reads as zero).
#[derive(Clone, Copy)]
struct Block {
    id: u64,
    written: bool,
}

/// One file's stored bytes: a block per page of its reservation (page `i`
/// in `blocks[i]`), taken when the room was reserved.
#[derive(Default)]
struct StoredFile {
    blocks: Vec<Block>,
    len: u64,
    faulty: bool,
}

/// Copies `pages` into `blocks` (as many as there are pages), marking each
/// written.
fn copy_into_blocks(store: &mut dyn DiskBlocks, blocks: &mut [Block], pages: &[&PageBytes]) {
    for (block, page) in blocks.iter_mut().zip(pages) {
        store.bytes_mut(block.id).copy_from_slice(*page);
        block.written = true;
    }
}

/// Longest file (its page list must be addressable; memory bounds it long
/// before).
pub const MAX_FILE_LEN: u64 = 1 << 40;

/// The RAM disk: every file's stored contents, in blocks of `store`.
pub struct RamDisk {
    files: BTreeMap<FileId, StoredFile>,
    store: Box<dyn DiskBlocks + Send + Sync>,
    /// Blocks held, over all files.
    reserved_pages: usize,
}

impl Default for RamDisk {
    /// A disk over [`HeapBlocks`] of [`HOST_DISK_BLOCKS`].
    fn default() -> Self {
        RamDisk::new(Box::new(HeapBlocks::with_limit(HOST_DISK_BLOCKS)))
    }
}

impl RamDisk {
    /// An empty disk keeping its data in `store`.
    pub fn new(store: Box<dyn DiskBlocks + Send + Sync>) -> Self {
        RamDisk {
            files: BTreeMap::new(),
            store,
            reserved_pages: 0,
        }
    }

    /// Whether writes of `file` to the disk fail.
    pub fn is_faulty(&self, file: FileId) -> bool {
        self.files.get(&file).is_some_and(|f| f.faulty)
    }

    /// Stored length of a file.
    pub fn len(&self, file: FileId) -> u64 {
        self.files.get(&file).map_or(0, |f| f.len)
    }

    /// Whether `file` can be `pages` pages long on the disk (what it has
    /// reserved already counts as room for it).
    pub fn has_room(&self, file: FileId, pages: usize) -> bool {
        let own = self.files.get(&file).map_or(0, |f| f.blocks.len());
        pages <= own.saturating_add(self.store.available())
    }

    /// Reserves room for `file` to be `pages` pages long (keeping a larger
    /// reservation it holds): the blocks are taken now, so what is accepted
    /// can always be stored. `false`, with nothing reserved, when memory
    /// cannot hold them.
    pub fn reserve(&mut self, file: FileId, pages: usize) -> bool {
        if !self.has_room(file, pages) {
            return false;
        }
        let Some(stored) = self.files.get_mut(&file) else {
            return false;
        };
        let have = stored.blocks.len();
        if pages <= have {
            return true;
        }
        if stored.blocks.try_reserve(pages - have).is_err() {
            return false;
        }
        while stored.blocks.len() < pages {
            let Some(id) = self.store.alloc() else {
                for b in stored.blocks.drain(have..) {
                    self.store.free(b.id);
                }
                return false;
            };
            stored.blocks.push(Block { id, written: false });
        }
        self.reserved_pages += pages - have;
        true
    }

    /// Sets the reservation of `file` to exactly `pages` pages (its new
    /// length), giving back the blocks past it; `false`, with nothing
    /// changed, when growing it does not fit.
    fn set_reservation(&mut self, file: FileId, pages: usize) -> bool {
        if !self.reserve(file, pages) {
            return false;
        }
        let Some(stored) = self.files.get_mut(&file) else {
            return false;
        };
        for b in stored.blocks.drain(pages..) {
            self.store.free(b.id);
            self.reserved_pages -= 1;
        }
        true
    }

    /// Blocks the store could still give (free memory for files).
    pub fn available_blocks(&self) -> usize {
        self.store.available()
    }

    /// Pages reserved over all files.
    pub fn reserved_pages(&self) -> usize {
        self.reserved_pages
    }

    /// Drops a file and its pages (a file no path names any more).
    pub(crate) fn forget(&mut self, file: FileId) {
        if self.set_len(file, 0).is_ok() {
            self.files.remove(&file);
        }
    }

    /// Stores `data` as the whole content of `file`, which holds nothing
    /// yet (boot image); `false` when memory cannot hold it.
    fn fill(&mut self, file: FileId, data: &[u8]) -> bool {
        if !self.reserve(file, data.len().div_ceil(PAGE)) {
            return false;
        }
        let Some(stored) = self.files.get_mut(&file) else {
            return false;
        };
        stored.len = data.len() as u64;
        for (block, chunk) in stored.blocks.iter_mut().zip(data.chunks(PAGE)) {
            let page = self.store.bytes_mut(block.id);
            page[..chunk.len()].copy_from_slice(chunk);
            page[chunk.len()..].fill(0);
            block.written = true;
        }
        true
    }
}

impl Pager for RamDisk {
    fn read_page(
        &mut self,
        file: FileId,
        page_index: u64,
        dst: &mut PageBytes,
    ) -> Result<(), IoError> {
        let stored = self.files.get(&file).ok_or(IoError)?;
        match stored.blocks.get(page_index as usize) {
            Some(b) if b.written => dst.copy_from_slice(self.store.bytes(b.id)),
            _ => dst.fill(0),
        }
        Ok(())
    }

    fn write_run(
        &mut self,
        file: FileId,
        first_page_index: u64,
        pages: &[&PageBytes],
    ) -> Result<(), IoError> {
        let first = usize::try_from(first_page_index).map_err(|_| IoError)?;
        let end = first.checked_add(pages.len()).ok_or(IoError)?;
        let stored = self.files.get_mut(&file).ok_or(IoError)?;
        if stored.faulty {
            return Err(IoError);
        }
        if end > stored.blocks.len() {
            // Past the file's reservation: blocks are taken first.
            if !self.reserve(file, end) {
                return Err(IoError);
            }
            let stored = self.files.get_mut(&file).ok_or(IoError)?;
            copy_into_blocks(&mut *self.store, &mut stored.blocks[first..end], pages);
            return Ok(());
        }
        // Within the reservation this takes nothing: the blocks are there
        // already, and the file is looked up once.
        copy_into_blocks(&mut *self.store, &mut stored.blocks[first..end], pages);
        Ok(())
    }

    fn set_len(&mut self, file: FileId, len: u64) -> Result<(), IoError> {
        if len > MAX_FILE_LEN {
            return Err(IoError);
        }
        let keep = (len as usize).div_ceil(PAGE);
        if !self.set_reservation(file, keep) {
            return Err(IoError);
        }
        let stored = self.files.get_mut(&file).ok_or(IoError)?;
        stored.len = len;
        // Zero the tail of the last kept page, so growing again reads zeros.
        let tail = len as usize % PAGE;
        if let Some(last) = stored.blocks.last().filter(|b| b.written && tail != 0) {
            self.store.bytes_mut(last.id)[tail..].fill(0);
        }
        Ok(())
    }
}

/// The namespace and the disk under it.
pub struct FileSystem {
    nodes: BTreeMap<String, Node>,
    /// The path of every RAM file, by id (kept through `rename`, and for an
    /// unlinked file until its data goes):
    /// what a maps listing names each file mapping with.
    paths: BTreeMap<FileId, String>,
    /// Entries of `paths` examined by [`FileSystem::path_of`] so far (a
    /// measure of the work listings cost, for tests).
    path_entries_examined: AtomicU64,
    pub disk: Storage,
    next_id: u64,
    /// Files whose last name went while they may still be open or mapped:
    /// their data is freed by [`FileSystem::reap_orphans`] once nothing
    /// refers to them.
    orphans: Vec<FileId>,
    /// The memory system's count of released file objects when the
    /// orphans were last looked at ([`FileSystem::orphans_may_be_free`]).
    releases_seen: u64,
    /// Times the orphans were scanned (tests count them).
    orphan_scans: u64,
    /// Directories open as descriptors (Linux `open` of a directory).
    pub open_dirs: crate::dirs::DirTable,
}

impl Default for FileSystem {
    fn default() -> Self {
        FileSystem::with_disk(RamDisk::default())
    }
}

/// Makes `path` absolute and canonical: no empty, `.` or `..` parts, no
/// trailing slash. Relative paths start at `/`.
pub fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = String::new();
    for p in parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    (out.len() <= 1024).then_some(out)
}

/// The folder normalized `path` is in (`/` for `/` itself).
pub fn parent_dir(path: &str) -> &str {
    parent_of(path)
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

impl FileSystem {
    /// An empty file system with only the root directory, over a host
    /// disk ([`RamDisk::default`]).
    pub fn new() -> Self {
        FileSystem::default()
    }

    /// An empty file system with only the root directory, over `disk`.
    pub fn with_disk(disk: RamDisk) -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert("/".to_string(), Node::Dir);
        FileSystem {
            nodes,
            paths: BTreeMap::new(),
            path_entries_examined: AtomicU64::new(0),
            disk: Storage::over(disk),
            next_id: 0,
            orphans: Vec::new(),
            releases_seen: 0,
            orphan_scans: 0,
            open_dirs: Default::default(),
        }
    }

    /// What `path` names.
    pub fn lookup(&self, path: &str) -> Option<Node> {
        let path = normalize(path)?;
        if let Some(rel) = self.on_home(&path) {
            return self.disk.home_lookup(rel).ok();
        }
        self.nodes.get(&path).copied()
    }

    /// The part of `path` (normalized) below `/home` when a disk is
    /// mounted there.
    fn on_home<'p>(&self, path: &'p str) -> Option<&'p str> {
        below_home(path).filter(|_| self.disk.home_mounted())
    }

    /// Mounts the ext2 volume on `device` at `/home`: what the initial file
    /// system held below `/home` is dropped (the volume holds the home
    /// tree). Fails, changing nothing, when the device holds no usable ext2.
    pub fn mount_home(
        &mut self,
        device: Box<dyn neoos_ext2::BlockDevice + Send>,
    ) -> Result<(), neoos_ext2::Ext2Error> {
        self.disk.mount_home(device)?;
        let below: Vec<String> = self
            .nodes
            .range::<str, _>((Bound::Excluded("/home/"), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with("/home/"))
            .map(|(k, _)| k.clone())
            .collect();
        for path in below {
            if let Some(Node::File(id)) = self.nodes.remove(&path) {
                self.paths.remove(&id);
                self.disk.ram.forget(id);
            }
        }
        self.nodes.insert("/home".to_string(), Node::Dir);
        Ok(())
    }

    fn check_parent(&self, path: &str) -> Result<(), FsError> {
        match self.nodes.get(parent_of(path)) {
            Some(Node::Dir) => Ok(()),
            Some(Node::File(_)) => Err(FsError::NotADirectory),
            None => Err(FsError::NotFound),
        }
    }

    /// The path of a file (one index lookup, however many files there are).
    pub fn path_of(&self, file: FileId) -> Option<Cow<'_, str>> {
        self.path_entries_examined.fetch_add(1, Ordering::Relaxed);
        match self.paths.get(&file) {
            Some(path) => Some(Cow::Borrowed(path.as_str())),
            None => self.disk.home_path(file).map(Cow::Owned),
        }
    }

    /// How many index entries [`FileSystem::path_of`] has examined so far.
    pub fn path_entries_examined(&self) -> u64 {
        self.path_entries_examined.load(Ordering::Relaxed)
    }

    /// Creates a directory.
    pub fn mkdir(&mut self, path: &str) -> Result<(), FsError> {
        let path = normalize(path).ok_or(FsError::Invalid)?;
        if let Some(rel) = self.on_home(&path) {
            return self.disk.home_create(rel, true).map(|_| ());
        }
        if self.nodes.contains_key(&path) {
            return Err(FsError::Exists);
        }
        self.check_parent(&path)?;
        self.nodes.insert(path, Node::Dir);
        Ok(())
    }

    /// Creates an empty file.
    pub fn create(&mut self, path: &str) -> Result<FileId, FsError> {
        let path = normalize(path).ok_or(FsError::Invalid)?;
        if let Some(rel) = self.on_home(&path) {
            return match self.disk.home_create(rel, false)? {
                Node::File(id) => Ok(id),
                Node::Dir => Err(FsError::Exists),
            };
        }
        if self.nodes.contains_key(&path) {
            return Err(FsError::Exists);
        }
        self.check_parent(&path)?;
        if self.nodes.len() >= MAX_NODES {
            return Err(FsError::Full);
        }
        self.next_id += 1;
        let id = FileId(self.next_id);
        let faulty = path == FAULTY_FILE;
        self.disk.ram.files.insert(
            id,
            StoredFile {
                faulty,
                ..Default::default()
            },
        );
        self.paths.insert(id, path.clone());
        self.nodes.insert(path, Node::File(id));
        Ok(id)
    }

    /// Removes the name `path` of a file (`unlink`): the file itself lives
    /// on while it is open or mapped (its id stays valid and its data
    /// stays in its store) until [`Self::reap_orphans`] finds it unused.
    /// A directory is refused (`IsDir`).
    pub fn unlink(&mut self, path: &str) -> Result<FileId, FsError> {
        let path = normalize(path).ok_or(FsError::Invalid)?;
        check_names(&path)?;
        self.orphans.try_reserve(1).map_err(|_| FsError::Full)?;
        if let Some(rel) = self.on_home(&path) {
            if rel == "/" {
                return Err(FsError::Busy);
            }
            let id = self.disk.home_unlink(rel)?;
            self.orphans.push(id);
            return Ok(id);
        }
        match self.nodes.get(&path) {
            Some(Node::File(id)) => {
                let id = *id;
                self.nodes.remove(&path);
                self.orphans.push(id);
                Ok(id)
            }
            Some(Node::Dir) => Err(FsError::IsDir),
            None => {
                self.check_parent(&path)?;
                Err(FsError::NotFound)
            }
        }
    }

    /// Whether normalized `path` is a mount point (no rename or rmdir).
    pub fn is_mount_point(&self, path: &str) -> bool {
        MOUNT_POINTS.contains(&path)
    }

    /// Removes the empty directory `path` (`rmdir`).
    pub fn rmdir(&mut self, path: &str) -> Result<(), FsError> {
        let path = normalize(path).ok_or(FsError::Invalid)?;
        check_names(&path)?;
        if self.is_mount_point(&path) {
            return match self.lookup(&path) {
                Some(_) => Err(FsError::Busy),
                None => Err(FsError::NotFound),
            };
        }
        if let Some(rel) = self.on_home(&path) {
            return match self.disk.home_lookup(rel)? {
                Node::File(_) => Err(FsError::NotADirectory),
                Node::Dir => self.disk.home_rmdir(rel),
            };
        }
        match self.nodes.get(&path) {
            Some(Node::Dir) => {}
            Some(Node::File(_)) => return Err(FsError::NotADirectory),
            None => {
                self.check_parent(&path)?;
                return Err(FsError::NotFound);
            }
        }
        if self.has_entries(&path) {
            return Err(FsError::NotEmpty);
        }
        self.nodes.remove(&path);
        Ok(())
    }

    /// Whether RAM directory `dir` (normalized) holds any entry.
    fn has_entries(&self, dir: &str) -> bool {
        let prefix_len = if dir == "/" { 1 } else { dir.len() + 1 };
        self.nodes
            .range::<str, _>((Bound::Excluded(dir), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(dir))
            .any(|(k, _)| k.len() > prefix_len && k.as_bytes()[prefix_len - 1] == b'/')
    }

    /// Moves `old` to `new` (`rename`): a file replaces a file, a directory
    /// an empty directory; a directory cannot move below itself
    /// (`Invalid`); nothing moves between the volume and RAM
    /// (`CrossDevice`) or takes a mount point (`Busy`). A file replaced
    /// lives on while open, like an unlinked one. Nothing changes on
    /// failure.
    pub fn rename(&mut self, old: &str, new: &str) -> Result<(), FsError> {
        let old = normalize(old).ok_or(FsError::Invalid)?;
        let new = normalize(new).ok_or(FsError::Invalid)?;
        check_names(&old)?;
        check_names(&new)?;
        let moving = self.lookup(&old);
        if moving.is_none() {
            self.lookup(parent_of(&old)).ok_or(FsError::NotFound)?;
        }
        let moving = moving.ok_or(FsError::NotFound)?;
        if self.is_mount_point(&old) || self.is_mount_point(&new) {
            return Err(FsError::Busy);
        }
        if self.on_home(&old).is_some() != self.on_home(&new).is_some() {
            return Err(FsError::CrossDevice);
        }
        if moving == Node::Dir && new != old && is_within(&new, &old) {
            return Err(FsError::Invalid);
        }
        match self.lookup(parent_of(&new)) {
            Some(Node::Dir) => {}
            Some(Node::File(_)) => return Err(FsError::NotADirectory),
            None => return Err(FsError::NotFound),
        }
        let target = self.lookup(&new);
        match (moving, target) {
            (_, Some(t)) if t == moving && moving != Node::Dir => return Ok(()),
            (Node::Dir, Some(Node::File(_))) => return Err(FsError::NotADirectory),
            (Node::File(_), Some(Node::Dir)) => return Err(FsError::IsDir),
            (Node::Dir, Some(Node::Dir)) if old == new => return Ok(()),
            (Node::Dir, Some(Node::Dir)) if self.dir_has_entries(&new)? => {
                return Err(FsError::NotEmpty)
            }
            _ => {}
        }
        self.orphans.try_reserve(1).map_err(|_| FsError::Full)?;
        if let (Some(from), Some(to)) = (self.on_home(&old), self.on_home(&new)) {
            if let Some(replaced) = self.disk.home_rename(from, to)? {
                self.orphans.push(replaced);
            }
            return Ok(());
        }
        self.ram_rename(&old, &new, moving, target)
    }

    /// Whether directory `dir` (normalized) holds any entry.
    fn dir_has_entries(&self, dir: &str) -> Result<bool, FsError> {
        match self.on_home(dir) {
            Some(rel) => Ok(!self.disk.home_list(rel)?.is_empty()),
            None => Ok(self.has_entries(dir)),
        }
    }

    /// [`Self::rename`] in RAM, its checks done: every entry at or below
    /// `old` moves below `new` (the new keys are made before anything
    /// changes).
    fn ram_rename(
        &mut self,
        old: &str,
        new: &str,
        moving: Node,
        target: Option<Node>,
    ) -> Result<(), FsError> {
        let mut moved: Vec<(String, String, Node)> = Vec::new();
        for (k, n) in self
            .nodes
            .range::<str, _>((Bound::Included(old), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(old))
            .filter(|(k, _)| is_within(k, old))
        {
            let mut key = String::new();
            key.try_reserve_exact(new.len() + k.len() - old.len())
                .map_err(|_| FsError::Full)?;
            key.push_str(new);
            key.push_str(&k[old.len()..]);
            moved.try_reserve(1).map_err(|_| FsError::Full)?;
            moved.push((k.clone(), key, *n));
        }
        if let Some(Node::File(id)) = target {
            self.orphans.push(id);
        }
        self.nodes.remove(new);
        for (from, _, _) in &moved {
            self.nodes.remove(from);
        }
        for (_, to, node) in moved {
            if let Node::File(id) = node {
                self.paths.insert(id, to.clone());
            }
            self.nodes.insert(to, node);
        }
        debug_assert!(moving == Node::Dir || self.nodes.get(new) == Some(&moving));
        Ok(())
    }

    /// Frees the data of every orphan (a file whose last name went) that
    /// `in_use` says nothing refers to any more (no descriptor, no
    /// mapping); `freed` hears of each. Orphans still used stay.
    pub fn reap_orphans(&mut self, in_use: &dyn Fn(FileId) -> bool, freed: &mut dyn FnMut(FileId)) {
        self.orphan_scans += 1;
        let mut i = 0;
        while i < self.orphans.len() {
            let id = self.orphans[i];
            if in_use(id) {
                i += 1;
                continue;
            }
            self.orphans.swap_remove(i);
            if crate::mount::is_volume_file(id) {
                // A device error leaves the inode allocated without a name:
                // what e2fsck calls an unattached inode.
                let _ = self.disk.home_release(id);
            } else {
                self.paths.remove(&id);
                self.disk.ram.forget(id);
            }
            freed(id);
        }
    }

    /// Whether `file` is an orphan not freed yet (its last name gone).
    pub fn is_orphan(&self, file: FileId) -> bool {
        self.orphans.contains(&file)
    }

    /// Orphans not freed yet.
    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }

    /// Whether an orphan may have lost its last holder: some orphan exists
    /// and `released` (the memory system's count of file objects gone so
    /// far) moved since the last look. An orphan's data is held by its file
    /// object (every descriptor and mapping of the file references it), so
    /// while that count stands still no orphan can be freed. O(1).
    pub fn orphans_may_be_free(&mut self, released: u64) -> bool {
        let moved = released != self.releases_seen;
        self.releases_seen = released;
        moved && !self.orphans.is_empty()
    }

    /// How many times [`Self::reap_orphans`] has scanned the orphans.
    pub fn orphan_scans(&self) -> u64 {
        self.orphan_scans
    }

    /// A RAM file with no name holding `data` (a `/proc` file's contents
    /// at open), shown as `path` in maps listings; it is an orphan from
    /// the start, freed once nothing refers to it.
    pub fn create_unnamed(&mut self, path: &str, data: &[u8]) -> Result<FileId, FsError> {
        self.orphans.try_reserve(1).map_err(|_| FsError::Full)?;
        let mut name = String::new();
        name.try_reserve_exact(path.len())
            .map_err(|_| FsError::Full)?;
        name.push_str(path);
        self.next_id += 1;
        let id = FileId(self.next_id);
        self.disk.ram.files.insert(id, StoredFile::default());
        if !self.disk.ram.fill(id, data) {
            self.disk.ram.forget(id);
            return Err(FsError::Full);
        }
        self.paths.insert(id, name);
        self.orphans.push(id);
        Ok(id)
    }

    /// The inode of volume path `path` (normalized), `None` off the volume.
    pub fn volume_ino(&self, path: &str) -> Option<u32> {
        self.disk.home_ino(self.on_home(path)?).ok()
    }

    /// Stores `data` as the whole content of a new file (used at boot).
    fn create_with(&mut self, path: &str, data: &[u8]) -> Result<FileId, FsError> {
        let id = self.create(path)?;
        if !self.disk.ram.fill(id, data) {
            return Err(FsError::Full);
        }
        Ok(id)
    }

    /// Names in directory `path`, sorted; directories end with `/`.
    pub fn list(&self, path: &str) -> Result<Vec<String>, FsError> {
        let dir = self.directory(path)?;
        let mut names = Vec::new();
        let mut after = None;
        loop {
            let mut text = Vec::with_capacity(1024);
            match self.list_step(&dir, after.as_deref(), &mut text) {
                Some(last) => after = Some(last),
                None => return Ok(names),
            }
            let text = String::from_utf8(text).map_err(|_| FsError::Invalid)?;
            names.extend(text.lines().map(String::from));
        }
    }

    /// The normalized path of directory `path`.
    pub fn directory(&self, path: &str) -> Result<String, FsError> {
        let path = normalize(path).ok_or(FsError::Invalid)?;
        if let Some(rel) = self.on_home(&path) {
            return match self.disk.home_lookup(rel)? {
                Node::Dir => Ok(path),
                Node::File(_) => Err(FsError::NotADirectory),
            };
        }
        match self.nodes.get(&path) {
            Some(Node::Dir) => Ok(path),
            Some(Node::File(_)) => Err(FsError::NotADirectory),
            None => Err(FsError::NotFound),
        }
    }

    /// One step of the listing of directory `dir` (as [`Self::directory`]
    /// gives it): appends to `out`, within its spare capacity (so without
    /// allocating), the lines `NAME\n` (`NAME/\n` for a directory) of the
    /// entries after path `after` in name order, as many whole lines as
    /// fit; returns the path of the last entry appended, `None` when no
    /// entry was left. A listing of any length needs no more kernel memory
    /// than the caller's buffer, and each entry is visited once.
    pub fn list_step(&self, dir: &str, after: Option<&str>, out: &mut Vec<u8>) -> Option<String> {
        if let Some(rel) = self.on_home(dir) {
            return self.home_list_step(dir, rel, after, out);
        }
        let prefix_len = if dir == "/" { 1 } else { dir.len() + 1 };
        let in_dir = |k: &str| {
            k.len() > prefix_len
                && k.starts_with(dir)
                && k.as_bytes()[prefix_len - 1] == b'/'
                && !k[prefix_len..].contains('/')
        };
        let from = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Included(dir),
        };
        let mut last = None;
        for (k, n) in self
            .nodes
            .range::<str, _>((from, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(dir))
            .filter(|(k, _)| in_dir(k))
        {
            let name = &k[prefix_len..];
            let line = name.len() + usize::from(*n == Node::Dir) + 1;
            if out.capacity() - out.len() < line {
                break;
            }
            out.extend_from_slice(name.as_bytes());
            if *n == Node::Dir {
                out.push(b'/');
            }
            out.push(b'\n');
            last = Some(k);
        }
        last.cloned()
    }

    /// [`Self::list_step`] for directory `dir` of the volume (`rel` below
    /// `/home`): the directory is read again at every step, and the names
    /// after `after`'s are appended in name order.
    fn home_list_step(
        &self,
        dir: &str,
        rel: &str,
        after: Option<&str>,
        out: &mut Vec<u8>,
    ) -> Option<String> {
        let names = self.disk.home_list(rel).ok()?;
        let prefix_len = if dir == "/" { 1 } else { dir.len() + 1 };
        let after_name = after.and_then(|a| a.get(prefix_len..));
        let mut last = None;
        for (name, is_dir) in names
            .iter()
            .filter(|(n, _)| after_name.is_none_or(|a| n.as_str() > a))
        {
            let line = name.len() + usize::from(*is_dir) + 1;
            if out.capacity() - out.len() < line {
                break;
            }
            out.extend_from_slice(name.as_bytes());
            if *is_dir {
                out.push(b'/');
            }
            out.push(b'\n');
            last = Some(name);
        }
        last.map(|name| alloc::format!("{dir}/{name}"))
    }

    /// Fills the file system from a cpio "newc" archive; returns how many
    /// entries it made. Stops at the first entry the file system refuses (a
    /// path made already, a missing parent...) and names it.
    pub fn unpack_cpio(&mut self, archive: &[u8]) -> Result<usize, UnpackError> {
        use UnpackError::Malformed;
        if archive.is_empty() {
            return Err(UnpackError::Empty);
        }
        let mut at = 0;
        let mut count = 0;
        loop {
            let header = archive
                .get(at..at + 110)
                .ok_or(Malformed("truncated cpio header"))?;
            if &header[..6] != b"070701" {
                return Err(Malformed("bad cpio magic"));
            }
            let field = |i: usize| -> Result<usize, UnpackError> {
                let text = core::str::from_utf8(&header[6 + i * 8..14 + i * 8])
                    .map_err(|_| Malformed("bad cpio field"))?;
                usize::from_str_radix(text, 16).map_err(|_| Malformed("bad cpio field"))
            };
            let mode = field(1)?;
            let size = field(6)?;
            let name_len = field(11)?;
            let name_start = at + 110;
            let name = archive
                .get(name_start..name_start + name_len.saturating_sub(1))
                .ok_or(Malformed("truncated name"))?;
            let name = core::str::from_utf8(name).map_err(|_| Malformed("bad name"))?;
            let data_start = (name_start + name_len).next_multiple_of(4);
            let data = archive
                .get(data_start..data_start + size)
                .ok_or(Malformed("truncated data"))?;
            at = (data_start + size).next_multiple_of(4);
            if name == "TRAILER!!!" {
                return Ok(count);
            }
            let path = alloc::format!("/{name}");
            let made = if mode & 0o170000 == 0o040000 {
                self.mkdir(&path).map(|_| ())
            } else {
                self.create_with(&path, data).map(|_| ())
            };
            made.map_err(|why| UnpackError::Refused { path, why })?;
            count += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_platform::cpio;

    /// Pages the host disk of [`FileSystem::new`] can hold.
    const CAPACITY_PAGES: usize = HOST_DISK_BLOCKS;

    #[test]
    fn normalize_makes_paths_absolute_and_canonical() {
        assert_eq!(normalize("a/./b//c/").as_deref(), Some("/a/b/c"));
        assert_eq!(normalize("/a/../../b").as_deref(), Some("/b"));
        assert_eq!(normalize("").as_deref(), Some("/"));
        assert_eq!(normalize(&"x".repeat(2000)), None);
    }

    #[test]
    fn files_need_an_existing_parent_directory() {
        let mut fs = FileSystem::new();
        assert_eq!(fs.create("/d/f"), Err(FsError::NotFound));
        fs.mkdir("/d").unwrap();
        let f = fs.create("/d/f").unwrap();
        assert_eq!(fs.lookup("/d/../d/f"), Some(Node::File(f)));
        assert_eq!(fs.create("/d/f"), Err(FsError::Exists));
        assert_eq!(fs.create("/d/f/g"), Err(FsError::NotADirectory));
        assert_eq!(fs.path_of(f).as_deref(), Some("/d/f"));
    }

    #[test]
    fn list_names_direct_entries_sorted_with_slashes_on_folders() {
        let mut fs = FileSystem::new();
        fs.mkdir("/b").unwrap();
        fs.create("/a").unwrap();
        fs.create("/b/inner").unwrap();
        assert_eq!(fs.list("/").unwrap(), ["a", "b/"]);
        assert_eq!(fs.list("/b").unwrap(), ["inner"]);
        assert_eq!(fs.list("/a"), Err(FsError::NotADirectory));
        assert_eq!(fs.list("/none"), Err(FsError::NotFound));
    }

    #[test]
    fn cpio_unpacks_folders_and_file_contents() {
        let archive = cpio(&[("etc", None), ("etc/motd", Some(b"hi there"))]);
        let mut fs = FileSystem::new();
        assert_eq!(fs.unpack_cpio(&archive), Ok(2));
        let Some(Node::File(id)) = fs.lookup("/etc/motd") else {
            panic!("motd is a file");
        };
        assert_eq!(fs.disk.len(id), 8);
        let mut page = [0u8; PAGE];
        fs.disk.read_page(id, 0, &mut page).unwrap();
        assert_eq!(&page[..9], b"hi there\0");
        assert_eq!(
            fs.unpack_cpio(&archive[..50]),
            Err(UnpackError::Malformed("truncated cpio header"))
        );
    }

    #[test]
    fn cpio_entry_the_file_system_refuses_is_reported_not_dropped() {
        let archive = cpio(&[("etc", None), ("etc", None)]);
        let mut fs = FileSystem::new();
        assert_eq!(
            fs.unpack_cpio(&archive),
            Err(UnpackError::Refused {
                path: "/etc".into(),
                why: FsError::Exists
            })
        );
        let orphan = cpio(&[("none/file", Some(b"x"))]);
        assert!(matches!(
            FileSystem::new().unpack_cpio(&orphan),
            Err(UnpackError::Refused { .. })
        ));
    }

    #[test]
    fn the_disk_refuses_writes_beyond_the_memory_of_its_store() {
        let mut fs = FileSystem::new();
        let a = fs.create("/a").unwrap();
        let b = fs.create("/b").unwrap();
        let page = [7u8; PAGE];
        let half = vec_of_pages(&page, CAPACITY_PAGES / 2);
        fs.disk.write_run(a, 0, &half).unwrap();
        assert!(fs.disk.has_room(b, CAPACITY_PAGES / 2));
        assert!(!fs.disk.has_room(b, CAPACITY_PAGES / 2 + 1));
        assert!(
            fs.disk.has_room(a, CAPACITY_PAGES),
            "a file's own pages count as room"
        );
        fs.disk.write_run(b, 0, &half).unwrap();
        assert_eq!(
            fs.disk.write_run(b, CAPACITY_PAGES as u64 / 2, &[&page]),
            Err(IoError)
        );
        fs.disk.set_len(a, 0).unwrap();
        assert!(fs.disk.has_room(b, CAPACITY_PAGES));
    }

    #[test]
    fn the_faulty_file_fails_every_write() {
        let mut fs = FileSystem::new();
        fs.mkdir("/dev").unwrap();
        let f = fs.create(FAULTY_FILE).unwrap();
        assert!(fs.disk.is_faulty(f));
        assert_eq!(fs.disk.write_run(f, 0, &[&[0u8; PAGE]]), Err(IoError));
    }

    #[test]
    fn shrinking_zeroes_the_tail_of_the_last_page() {
        let mut fs = FileSystem::new();
        let f = fs.create("/f").unwrap();
        fs.disk.write_run(f, 0, &[&[9u8; PAGE]]).unwrap();
        fs.disk.set_len(f, PAGE as u64).unwrap();
        fs.disk.set_len(f, 10).unwrap();
        fs.disk.set_len(f, PAGE as u64).unwrap();
        let mut page = [0u8; PAGE];
        fs.disk.read_page(f, 0, &mut page).unwrap();
        assert_eq!(&page[..10], &[9u8; 10]);
        assert!(page[10..].iter().all(|&b| b == 0));
    }

    #[test]
    fn room_reserved_for_one_file_is_not_promised_to_another() {
        let mut fs = FileSystem::new();
        let a = fs.create("/a").unwrap();
        let b = fs.create("/b").unwrap();
        let most = CAPACITY_PAGES * 9 / 16;
        assert!(
            fs.disk.reserve(a, most),
            "nothing stored yet, room promised"
        );
        assert!(
            !fs.disk.reserve(b, most),
            "a's promise counts though unwritten"
        );
        assert_eq!(fs.disk.reserved_pages(), most);
        assert!(fs.disk.reserve(b, CAPACITY_PAGES - most));
        // Writing back within the reservations always succeeds.
        let page = [1u8; PAGE];
        fs.disk.set_len(a, (most * PAGE) as u64).unwrap();
        fs.disk.write_run(a, 0, &vec_of_pages(&page, most)).unwrap();
        // Truncating gives the room back.
        fs.disk.set_len(a, 0).unwrap();
        assert!(fs.disk.reserve(b, most));
    }

    #[test]
    fn boot_files_hold_room_for_their_length() {
        let archive = cpio(&[("f", Some(&[5u8; 3 * PAGE + 1]))]);
        let mut fs = FileSystem::new();
        fs.unpack_cpio(&archive).unwrap();
        assert_eq!(fs.disk.reserved_pages(), 4);
    }

    #[test]
    fn a_reservation_holds_blocks_of_the_store_and_truncation_gives_them_back() {
        let mut fs = FileSystem::with_disk(RamDisk::new(Box::new(HeapBlocks::with_limit(100))));
        let f = fs.create("/f").unwrap();
        assert!(fs.disk.reserve(f, 60));
        assert_eq!(fs.disk.ram.store.available(), 40, "taken at reservation");
        // Within the reservation, writing takes nothing more.
        let page = [3u8; PAGE];
        fs.disk.write_run(f, 10, &vec_of_pages(&page, 50)).unwrap();
        assert_eq!(fs.disk.ram.store.available(), 40);
        let mut got = [1u8; PAGE];
        fs.disk.read_page(f, 9, &mut got).unwrap();
        assert!(got.iter().all(|&b| b == 0), "an unwritten block reads zero");
        fs.disk.read_page(f, 59, &mut got).unwrap();
        assert_eq!(got, page);
        // Another file cannot have what f holds.
        let g = fs.create("/g").unwrap();
        assert!(!fs.disk.reserve(g, 41));
        assert_eq!(fs.disk.ram.store.available(), 40, "a refusal takes nothing");
        fs.disk.set_len(f, 0).unwrap();
        assert_eq!(fs.disk.ram.store.available(), 100);
        assert!(fs.disk.reserve(g, 100));
    }

    #[test]
    fn a_file_can_outgrow_the_old_32_mib_disk_when_memory_allows() {
        let mut fs = FileSystem::with_disk(RamDisk::new(Box::new(HeapBlocks::with_limit(
            3 * HOST_DISK_BLOCKS,
        ))));
        let f = fs.create("/big").unwrap();
        let pages = 2 * HOST_DISK_BLOCKS + 1;
        let page = [9u8; PAGE];
        fs.disk.set_len(f, (pages * PAGE) as u64).unwrap();
        fs.disk
            .write_run(f, 0, &vec_of_pages(&page, pages))
            .unwrap();
        let mut got = [0u8; PAGE];
        fs.disk.read_page(f, pages as u64 - 1, &mut got).unwrap();
        assert_eq!(got, page);
        assert_eq!(fs.disk.reserved_pages(), pages);
    }

    fn vec_of_pages(page: &PageBytes, n: usize) -> Vec<&PageBytes> {
        (0..n).map(|_| page).collect()
    }
}
