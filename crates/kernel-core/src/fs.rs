//! The file system: a namespace of directories and files (`FileSystem`) over a
//! RAM disk (`RamDisk`, the backing store the mapping core's page cache pages
//! from and writes back to). It is filled at boot from the cpio ("newc")
//! archive the host tool builds.
//!
//! `/dev/faulty` lives on a disk region whose writes fail: writing to it, or
//! writing back its dirty pages, reports an I/O error, which is how programs
//! exercise E_IO.
//!
//! Room on the disk is reserved before data is accepted: every file holds a
//! reservation of as many pages as its length (holes included), taken when
//! a write that lengthens it is accepted ([`RamDisk::reserve`]) and brought
//! to its stored length by [`Pager::set_len`]. Writing back a file's pages
//! within its length therefore never runs out of room, so what a write or a
//! store through a shared mapping was allowed to change is never lost later
//! for want of space.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::Cell;
use core::ops::Bound;

use neoos_mm::{FileId, IoError, PageBytes, Pager};

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
    /// The file system holds `MAX_NODES` entries already.
    Full,
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

/// One file's stored bytes, page by page (absent pages read as zero).
#[derive(Default)]
struct StoredFile {
    pages: Vec<Option<Box<PageBytes>>>,
    /// Pages of `pages` that are stored (not holes).
    stored: usize,
    /// Pages of the disk kept for this file (at least `stored`).
    reserved: usize,
    len: u64,
    faulty: bool,
}

/// Most bytes of file data the RAM disk holds: its pages live in the kernel
/// heap, which must keep room for everything else. No file is longer.
pub const DISK_CAPACITY: u64 = 32 * 1024 * 1024;
const CAPACITY_PAGES: usize = DISK_CAPACITY as usize / PAGE;

/// The RAM disk: every file's stored contents.
#[derive(Default)]
pub struct RamDisk {
    files: BTreeMap<FileId, StoredFile>,
    /// Pages stored, over all files (holes of sparse files take none).
    stored_pages: usize,
    /// Pages reserved, over all files (never above the capacity).
    reserved_pages: usize,
}

/// A zeroed page for the disk from the heap, or `IoError` when the heap
/// cannot give one (never a panic).
fn new_page() -> Result<Box<PageBytes>, IoError> {
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(PAGE).map_err(|_| IoError)?;
    bytes.resize(PAGE, 0u8);
    bytes.into_boxed_slice().try_into().map_err(|_| IoError)
}

impl RamDisk {
    /// Whether writes of `file` to the disk fail.
    pub fn is_faulty(&self, file: FileId) -> bool {
        self.files.get(&file).is_some_and(|f| f.faulty)
    }

    /// Stored length of a file.
    pub fn len(&self, file: FileId) -> u64 {
        self.files.get(&file).map_or(0, |f| f.len)
    }

    /// Heap bytes the disk has promised to files (reserved) but not yet
    /// stored: its pages live in the kernel heap, so the heap keeps them free.
    pub fn promised_unstored_bytes(&self) -> usize {
        self.reserved_pages.saturating_sub(self.stored_pages) * PAGE
    }

    /// Whether `file` can be `pages` pages long on the disk (what it has
    /// reserved already counts as room for it).
    pub fn has_room(&self, file: FileId, pages: usize) -> bool {
        let own = self.files.get(&file).map_or(0, |f| f.reserved);
        pages <= CAPACITY_PAGES.saturating_sub(self.reserved_pages) + own
    }

    /// Reserves room for `file` to be `pages` pages long (keeping a larger
    /// reservation it holds); `false`, with nothing reserved, when the disk
    /// cannot guarantee it.
    pub fn reserve(&mut self, file: FileId, pages: usize) -> bool {
        if !self.has_room(file, pages) {
            return false;
        }
        let Some(stored) = self.files.get_mut(&file) else {
            return false;
        };
        if pages > stored.reserved {
            self.reserved_pages += pages - stored.reserved;
            stored.reserved = pages;
        }
        true
    }

    /// Sets the reservation of `file` to exactly `pages` pages (its new
    /// length); `false`, with nothing changed, when growing it does not fit.
    fn set_reservation(&mut self, file: FileId, pages: usize) -> bool {
        if !self.has_room(file, pages) {
            return false;
        }
        let Some(stored) = self.files.get_mut(&file) else {
            return false;
        };
        self.reserved_pages = self.reserved_pages - stored.reserved + pages;
        stored.reserved = pages;
        true
    }

    /// Pages reserved over all files.
    pub fn reserved_pages(&self) -> usize {
        self.reserved_pages
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
        match stored
            .pages
            .get(page_index as usize)
            .and_then(|p| p.as_deref())
        {
            Some(page) => dst.copy_from_slice(page),
            None => dst.fill(0),
        }
        Ok(())
    }

    fn write_run(
        &mut self,
        file: FileId,
        first_page_index: u64,
        pages: &[&PageBytes],
    ) -> Result<(), IoError> {
        if self.is_faulty(file) {
            return Err(IoError);
        }
        let first = first_page_index as usize;
        let end = first.checked_add(pages.len()).ok_or(IoError)?;
        if end > CAPACITY_PAGES || !self.reserve(file, end) {
            return Err(IoError);
        }
        let stored = self.files.get_mut(&file).ok_or(IoError)?;
        let have = stored.pages.len();
        let new_pages = stored.pages[first.min(have)..end.min(have)]
            .iter()
            .filter(|p| p.is_none())
            .count()
            + end.saturating_sub(have.max(first));
        if new_pages > CAPACITY_PAGES.saturating_sub(self.stored_pages) {
            return Err(IoError); // the disk is full
        }
        // Every allocation before any change: a heap that cannot hold the
        // run fails the write whole (the pages stay dirty in the cache).
        let mut fresh = Vec::new();
        fresh.try_reserve_exact(new_pages).map_err(|_| IoError)?;
        for _ in 0..new_pages {
            fresh.push(new_page()?);
        }
        stored
            .pages
            .try_reserve(end.saturating_sub(have))
            .map_err(|_| IoError)?;
        self.stored_pages += new_pages;
        stored.stored += new_pages;
        if have < end {
            stored.pages.resize_with(end, || None);
        }
        for (slot, page) in stored.pages[first..end].iter_mut().zip(pages) {
            match slot {
                Some(existing) => existing.copy_from_slice(*page),
                None => {
                    let mut frame = fresh.pop().ok_or(IoError)?;
                    frame.copy_from_slice(*page);
                    *slot = Some(frame);
                }
            }
        }
        Ok(())
    }

    fn set_len(&mut self, file: FileId, len: u64) -> Result<(), IoError> {
        if len > DISK_CAPACITY {
            return Err(IoError);
        }
        let keep = (len as usize).div_ceil(PAGE);
        if !self.set_reservation(file, keep) {
            return Err(IoError);
        }
        let stored = self.files.get_mut(&file).ok_or(IoError)?;
        stored.len = len;
        let dropped = stored
            .pages
            .iter()
            .skip(keep)
            .filter(|p| p.is_some())
            .count();
        self.stored_pages -= dropped;
        stored.stored -= dropped;
        stored.pages.truncate(keep);
        // Zero the tail of the last kept page, so growing again reads zeros.
        if let Some(Some(last)) = stored.pages.last_mut() {
            let tail = len as usize % PAGE;
            if tail != 0 {
                last[tail..].fill(0);
            }
        }
        Ok(())
    }
}

/// The namespace and the disk under it.
#[derive(Default)]
pub struct FileSystem {
    nodes: BTreeMap<String, Node>,
    /// The path of every file, by id (files are never removed or renamed):
    /// what a maps listing names each file mapping with.
    paths: BTreeMap<FileId, String>,
    /// Entries of `paths` examined by [`FileSystem::path_of`] so far (a
    /// measure of the work listings cost, for tests).
    path_entries_examined: Cell<u64>,
    pub disk: RamDisk,
    next_id: u64,
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

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

impl FileSystem {
    /// An empty file system with only the root directory.
    pub fn new() -> Self {
        let mut fs = FileSystem::default();
        fs.nodes.insert("/".to_string(), Node::Dir);
        fs
    }

    /// What `path` names.
    pub fn lookup(&self, path: &str) -> Option<Node> {
        self.nodes.get(&normalize(path)?).copied()
    }

    fn check_parent(&self, path: &str) -> Result<(), FsError> {
        match self.nodes.get(parent_of(path)) {
            Some(Node::Dir) => Ok(()),
            Some(Node::File(_)) => Err(FsError::NotADirectory),
            None => Err(FsError::NotFound),
        }
    }

    /// The path of a file (one index lookup, however many files there are).
    pub fn path_of(&self, file: FileId) -> Option<&str> {
        self.path_entries_examined
            .set(self.path_entries_examined.get() + 1);
        self.paths.get(&file).map(String::as_str)
    }

    /// How many index entries [`FileSystem::path_of`] has examined so far.
    pub fn path_entries_examined(&self) -> u64 {
        self.path_entries_examined.get()
    }

    /// Creates a directory.
    pub fn mkdir(&mut self, path: &str) -> Result<(), FsError> {
        let path = normalize(path).ok_or(FsError::Invalid)?;
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
        self.disk.files.insert(
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
    /// on while it is open or mapped (its id stays valid; its stored pages
    /// are kept until the machine stops). A directory is refused.
    pub fn unlink(&mut self, path: &str) -> Result<FileId, FsError> {
        let path = normalize(path).ok_or(FsError::Invalid)?;
        match self.nodes.get(&path) {
            Some(Node::File(id)) => {
                let id = *id;
                self.nodes.remove(&path);
                Ok(id)
            }
            Some(Node::Dir) => Err(FsError::Invalid),
            None => Err(FsError::NotFound),
        }
    }

    /// Stores `data` as the whole content of a new file (used at boot).
    fn create_with(&mut self, path: &str, data: &[u8]) -> Result<FileId, FsError> {
        let id = self.create(path)?;
        if !self.disk.reserve(id, data.len().div_ceil(PAGE)) {
            return Err(FsError::Full);
        }
        let stored = self.disk.files.get_mut(&id).ok_or(FsError::NotFound)?;
        stored.len = data.len() as u64;
        for chunk in data.chunks(PAGE) {
            let mut page = Box::new([0u8; PAGE]);
            page[..chunk.len()].copy_from_slice(chunk);
            stored.pages.push(Some(page));
            stored.stored += 1;
            self.disk.stored_pages += 1;
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
        assert_eq!(fs.path_of(f), Some("/d/f"));
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
    fn the_disk_refuses_writes_beyond_its_capacity() {
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

    fn vec_of_pages(page: &PageBytes, n: usize) -> Vec<&PageBytes> {
        (0..n).map(|_| page).collect()
    }
}
