//! The mount layer: which store holds a file. Paths under [`HOME`] live on an
//! ext2 volume over a block device (the disk, once mounted with
//! [`Storage::mount_home`]); every other path lives in the RAM disk. File ids
//! tell the two apart (`HOME_IDS` + inode number for the volume's files), so
//! the page cache's pager requests ([`Pager`]) go to the right store.
//!
//! The volume sits behind a lock of its own so that namespace lookups,
//! which read the disk, keep the `&self` signatures the rest of the kernel
//! calls them with; it is only taken under the kernel lock held for
//! writing and no call re-enters the volume, and a take that would fail is
//! reported as an I/O error, never a wait or a panic.
//!
//! Room on the volume is checked (free blocks against the pages a file
//! grows by), not reserved as on the RAM disk: a write-back that meets a
//! volume filled meanwhile fails with an I/O error and its pages stay dirty.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use neoos_ext2::{
    BlockDevice, DeviceCounters, DeviceError, Ext2, Ext2Error, FileType, MetadataWrites, Placing,
    Started, StartedRead,
};
use neoos_mm::{FileId, IoError, PageBytes, Pager};

use crate::device_queue::VolumeDevice;
use crate::fs::{FsError, Node, RamDisk};

const PAGE: usize = neoos_abi::PAGE_SIZE;

/// Where the volume is mounted.
pub const HOME: &str = "/home";

/// File ids of the volume's files: this plus the inode number (RAM disk ids
/// count up from 1 and never come near it).
const HOME_IDS: u64 = 1 << 48;

/// Most pages one device write carries (the bounce buffer a run of dirty
/// pages is gathered into is at most this long).
pub const MAX_PAGES_PER_REQUEST: usize = 64;

/// A run of pages whose device reads were started
/// ([`Storage::start_run_read`]).
#[derive(Debug)]
pub struct StartedRunRead {
    /// The run's bytes (holes and the extents read at once filled in).
    pub data: Vec<u8>,
    /// The reads in flight: each one's tag, and where its bytes go in `data`.
    pub in_flight: Vec<(u64, usize)>,
    /// Whether an extent could not be read or started (the run fails once
    /// those in flight are collected).
    pub failed: bool,
}

/// The mounted volume and what the kernel remembers of its files.
struct HomeVolume {
    fs: Ext2<VolumeDevice>,
    /// Size of each volume file looked up so far (every change to a volume
    /// file goes through [`Storage`], so this stays exact).
    lens: BTreeMap<FileId, u64>,
    /// Path of each volume file looked up so far (for maps listings).
    paths: BTreeMap<FileId, String>,
}

/// Every file's backing store: the RAM disk and, once mounted, the volume
/// at [`HOME`].
#[derive(Default)]
pub struct Storage {
    pub ram: RamDisk,
    home: Option<spin::Mutex<HomeVolume>>,
    /// While set (a Linux namespace call under way: [`Self::defer_flushes`]),
    /// a call that changes the volume writes its metadata but leaves the
    /// device's flush owed ([`Self::take_owed_flush`]) for its caller to
    /// wait for without the lock. Atomics only so that the kernel state
    /// can be shared under the read side of its lock (which never uses
    /// them).
    defer_flush: AtomicBool,
    flush_owed: AtomicBool,
}

impl Storage {
    /// The RAM disk `ram`, nothing mounted yet.
    pub fn over(ram: RamDisk) -> Self {
        Storage {
            ram,
            home: None,
            defer_flush: AtomicBool::new(false),
            flush_owed: AtomicBool::new(false),
        }
    }
}

/// What a Linux namespace call left to do once made
/// ([`Storage::take_owed_flush`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owed {
    /// Metadata blocks it changed, dirty in the volume's cache.
    pub writes: bool,
    /// The device's flush.
    pub flush: bool,
}

/// Whether `file` lives on the disk volume (not in RAM).
pub fn is_volume_file(file: FileId) -> bool {
    home_inode(file).is_some()
}

/// Whether `file` lives on the volume, and its inode number there.
fn home_inode(file: FileId) -> Option<u32> {
    file.0
        .checked_sub(HOME_IDS)
        .and_then(|ino| u32::try_from(ino).ok())
}

/// The inode of volume file `file` (`None` for any other file).
pub(crate) fn home_ino_of(file: FileId) -> Option<u32> {
    if !is_volume_file(file) {
        return None;
    }
    home_inode(file)
}

/// The part of a normalized path below [`HOME`] (`/` for `/home` itself),
/// `None` for a path outside it.
pub fn below_home(path: &str) -> Option<&str> {
    match path.strip_prefix(HOME)? {
        "" => Some("/"),
        rest if rest.starts_with('/') => Some(rest),
        _ => None,
    }
}

fn fs_error(e: Ext2Error) -> FsError {
    match e {
        Ext2Error::NotFound => FsError::NotFound,
        Ext2Error::Exists => FsError::Exists,
        Ext2Error::NotDir => FsError::NotADirectory,
        Ext2Error::NoSpace => FsError::Full,
        Ext2Error::NotEmpty => FsError::NotEmpty,
        Ext2Error::IsDir => FsError::IsDir,
        Ext2Error::NameTooLong => FsError::NameTooLong,
        Ext2Error::Io(_) | Ext2Error::Corrupt(_) => FsError::Io,
        _ => FsError::Invalid,
    }
}

fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) | None => ("/", path.trim_start_matches('/')),
        Some(i) => (&path[..i], &path[i + 1..]),
    }
}

impl Storage {
    /// Mounts an ext2 volume on `device` at [`HOME`] (read-write). Fails,
    /// mounting nothing, when the device holds no usable ext2 file system.
    pub fn mount_home(&mut self, device: Box<dyn BlockDevice + Send>) -> Result<(), Ext2Error> {
        let fs = Ext2::mount(VolumeDevice::new(device), false)?;
        if fs.is_read_only() {
            return Err(Ext2Error::ReadOnly);
        }
        self.home = Some(spin::Mutex::new(HomeVolume {
            fs,
            lens: BTreeMap::new(),
            paths: BTreeMap::new(),
        }));
        Ok(())
    }

    /// Whether a volume is mounted at [`HOME`].
    pub fn home_mounted(&self) -> bool {
        self.home.is_some()
    }

    /// Sets the clock the volume stamps file times with.
    pub fn set_time(&mut self, unix_seconds: u32) {
        if let Some(home) = &mut self.home {
            home.get_mut().fs.set_time(unix_seconds);
        }
    }

    fn volume(&self) -> Result<spin::MutexGuard<'_, HomeVolume>, FsError> {
        self.home
            .as_ref()
            .ok_or(FsError::NotFound)?
            .try_lock()
            .ok_or(FsError::Io)
    }

    /// What `rel` (a path below [`HOME`], normalized) names on the volume;
    /// a regular file is remembered with its size and its full path.
    pub(crate) fn home_lookup(&self, rel: &str) -> Result<Node, FsError> {
        let mut home = self.volume()?;
        let ino = home.fs.lookup_path(rel).map_err(fs_error)?;
        let stat = home.fs.stat(ino).map_err(fs_error)?;
        match stat.file_type {
            FileType::Directory => Ok(Node::Dir),
            FileType::Regular => {
                let id = FileId(HOME_IDS + u64::from(ino));
                home.lens.insert(id, stat.size);
                home.paths.entry(id).or_insert_with(|| {
                    let mut path = String::from(HOME);
                    if rel != "/" {
                        path.push_str(rel);
                    }
                    path
                });
                Ok(Node::File(id))
            }
            _ => Err(FsError::Invalid),
        }
    }

    /// Creates a regular file (`dir == false`) or directory at `rel` below
    /// [`HOME`]; its parent must exist.
    pub(crate) fn home_create(&self, rel: &str, dir: bool) -> Result<Node, FsError> {
        let (parent, name) = split_parent(rel);
        if name.is_empty() {
            return Err(FsError::Exists);
        }
        {
            let mut home = self.volume()?;
            let parent_ino = home.fs.lookup_path(parent).map_err(fs_error)?;
            if dir {
                home.fs
                    .mkdir(parent_ino, name.as_bytes(), 0o755)
                    .map_err(fs_error)?;
            } else {
                home.fs
                    .create(parent_ino, name.as_bytes(), 0o644)
                    .map_err(fs_error)?;
            }
        }
        self.home_lookup(rel)
    }

    /// The names in volume directory `rel`, sorted, directories marked
    /// (without `.` and `..`).
    pub(crate) fn home_list(&self, rel: &str) -> Result<Vec<(String, bool)>, FsError> {
        let mut home = self.volume()?;
        let ino = home.fs.lookup_path(rel).map_err(fs_error)?;
        let entries = home.fs.read_dir(ino).map_err(fs_error)?;
        let mut names = Vec::new();
        names
            .try_reserve_exact(entries.len())
            .map_err(|_| FsError::Full)?;
        for e in entries {
            if e.name == b"." || e.name == b".." {
                continue;
            }
            let Ok(name) = String::from_utf8(e.name) else {
                continue;
            };
            names.push((name, e.file_type == FileType::Directory));
        }
        names.sort_unstable();
        Ok(names)
    }

    /// The inode number of what `rel` names on the volume.
    pub(crate) fn home_ino(&self, rel: &str) -> Result<u32, FsError> {
        self.volume()?.fs.lookup_path(rel).map_err(fs_error)
    }

    /// The attributes of inode `ino` of the volume (mode, owner, times).
    pub(crate) fn home_stat(&self, ino: u32) -> Result<neoos_ext2::Stat, FsError> {
        self.volume()?.fs.stat(ino).map_err(fs_error)
    }

    /// The attributes of volume file `file`.
    pub fn home_file_stat(&self, file: FileId) -> Option<neoos_ext2::Stat> {
        self.home_stat(home_inode(file)?).ok()
    }

    /// From now until [`Self::take_owed_flush`], the calls that change the
    /// volume leave its device flush owed instead of waiting for it,
    /// and their metadata changes are left in the volume's cache, dirty
    /// ([`Ext2::defer_metadata_writes`]), for the caller to write without
    /// the lock too.
    pub(crate) fn defer_flushes(&self) {
        self.defer_flush.store(true, Ordering::Relaxed);
        self.flush_owed.store(false, Ordering::Relaxed);
        if let Ok(mut home) = self.volume() {
            home.fs.defer_metadata_writes();
        }
    }

    /// Whether [`Self::defer_flushes`] is in force (until
    /// [`Self::take_owed_flush`]).
    pub(crate) fn defers_flushes(&self) -> bool {
        self.defer_flush.load(Ordering::Relaxed)
    }

    /// Ends [`Self::defer_flushes`]: what is owed.
    pub(crate) fn take_owed_flush(&self) -> Owed {
        self.defer_flush.store(false, Ordering::Relaxed);
        let flush = self.flush_owed.swap(false, Ordering::Relaxed);
        let writes = self
            .volume()
            .is_ok_and(|mut home| home.fs.end_deferred_writes());
        Owed { writes, flush }
    }

    /// How many of the volume's cached metadata blocks are dirty (0 with
    /// no volume).
    pub(crate) fn dirty_metadata_blocks(&self) -> usize {
        self.volume()
            .map_or(0, |home| home.fs.dirty_metadata_blocks())
    }

    /// Writes the volume's dirty metadata and flushes its device now
    /// (waited for under the lock).
    pub(crate) fn flush_device(&self) -> Result<(), IoError> {
        let mut home = self.volume().map_err(|_| IoError)?;
        home.fs.flush().map_err(|_| IoError)
    }

    /// Writes and flushes what the volume's cache holds that the disk has
    /// not seen (a namespace call's blocks whose write failed), if any:
    /// at power off, when nothing else will.
    pub(crate) fn flush_dirty_metadata(&self) -> Result<(), IoError> {
        let mut home = self.volume().map_err(|_| IoError)?;
        if !home.fs.has_dirty_metadata() {
            return Ok(());
        }
        home.fs.flush().map_err(|_| IoError)
    }

    /// Makes what the volume's calls changed durable: the deferred
    /// metadata written and the device flushed, or, while flushes are
    /// deferred, the flush owed (the metadata left dirty in the cache,
    /// written by the caller before the flush).
    fn flush_changes(&self, home: &mut HomeVolume) -> Result<(), FsError> {
        if !self.defer_flush.load(Ordering::Relaxed) {
            return home.fs.flush().map_err(fs_error);
        }
        self.flush_owed.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Starts the writes of every metadata block the volume holds dirty
    /// ([`Ext2::start_metadata_writes_queued`]; the disk has nothing in
    /// flight) that fit on the device's queue, for [`Self::end_sync_writes`]
    /// once none is in flight; the others are left dirty
    /// ([`MetadataWrites::more`]), for the next start.
    pub(crate) fn start_dirty_metadata_writes(&mut self) -> (MetadataWrites, Result<(), IoError>) {
        match self.volume() {
            Ok(mut home) => {
                let (started, result) = home.fs.start_metadata_writes_queued();
                (started, result.map_err(|_| IoError))
            }
            Err(_) => (MetadataWrites::default(), Err(IoError)),
        }
    }

    /// Sets the permission bits of inode `ino` of the volume.
    pub(crate) fn home_set_perm(&self, ino: u32, perm: u32) -> Result<(), FsError> {
        let mut home = self.volume()?;
        home.fs
            .set_permissions(ino, (perm & 0o7777) as u16)
            .map_err(fs_error)?;
        self.flush_changes(&mut home)
    }

    /// Sets the access and/or modification time of inode `ino`.
    pub(crate) fn home_set_times(
        &self,
        ino: u32,
        atime: Option<u32>,
        mtime: Option<u32>,
    ) -> Result<(), FsError> {
        let mut home = self.volume()?;
        home.fs.set_times(ino, atime, mtime).map_err(fs_error)?;
        self.flush_changes(&mut home)
    }

    /// The volume file id of inode `ino`.
    pub(crate) fn home_file_id(ino: u32) -> FileId {
        FileId(HOME_IDS + u64::from(ino))
    }

    /// Removes the name `rel` of a regular file on the volume. The inode is
    /// held first: it stays allocated, data and all, until
    /// [`Self::home_release`] (the file may be open or mapped). Returns its
    /// file id.
    pub(crate) fn home_unlink(&self, rel: &str) -> Result<FileId, FsError> {
        let (parent, name) = split_parent(rel);
        let mut home = self.volume()?;
        let dir = home.fs.lookup_path(parent).map_err(fs_error)?;
        let ino = home.fs.lookup(dir, name.as_bytes()).map_err(fs_error)?;
        if home.fs.stat(ino).map_err(fs_error)?.file_type == FileType::Directory {
            return Err(FsError::IsDir);
        }
        home.fs.hold(ino).map_err(fs_error)?;
        let removed = home.fs.unlink(dir, name.as_bytes()).map_err(fs_error);
        let flushed = removed.and_then(|()| self.flush_changes(&mut home));
        let id = Self::home_file_id(ino);
        if let Err(e) = flushed {
            let _ = home.fs.release(ino);
            return Err(e);
        }
        home.paths.remove(&id);
        Ok(id)
    }

    /// Removes the empty directory `rel` of the volume.
    pub(crate) fn home_rmdir(&self, rel: &str) -> Result<(), FsError> {
        let (parent, name) = split_parent(rel);
        let mut home = self.volume()?;
        let dir = home.fs.lookup_path(parent).map_err(fs_error)?;
        home.fs.rmdir(dir, name.as_bytes()).map_err(fs_error)?;
        self.flush_changes(&mut home)
    }

    /// Moves `old` to `new` (both below [`HOME`], checked by the caller for
    /// kinds and emptiness as ext2 checks them again). A regular file `new`
    /// named is held first and its id returned (it may be open: its data
    /// lives until [`Self::home_release`]).
    pub(crate) fn home_rename(&self, old: &str, new: &str) -> Result<Option<FileId>, FsError> {
        let (old_parent, old_name) = split_parent(old);
        let (new_parent, new_name) = split_parent(new);
        let mut home = self.volume()?;
        let from = home.fs.lookup_path(old_parent).map_err(fs_error)?;
        let to = home.fs.lookup_path(new_parent).map_err(fs_error)?;
        let moving = home
            .fs
            .lookup(from, old_name.as_bytes())
            .map_err(fs_error)?;
        let replaced = match home.fs.lookup(to, new_name.as_bytes()) {
            Ok(ino) if ino != moving => {
                let regular = home.fs.stat(ino).map_err(fs_error)?.file_type == FileType::Regular;
                if regular {
                    home.fs.hold(ino).map_err(fs_error)?;
                }
                regular.then_some(ino)
            }
            _ => None,
        };
        let moved = home
            .fs
            .rename(from, old_name.as_bytes(), to, new_name.as_bytes())
            .map_err(fs_error)
            .and_then(|()| self.flush_changes(&mut home));
        if let Err(e) = moved {
            if let Some(ino) = replaced {
                let _ = home.fs.release(ino);
            }
            return Err(e);
        }
        // Remembered paths below the old name are no longer right.
        let old_full = alloc::format!("{HOME}{old}");
        home.paths.retain(|_, p| {
            p.as_str() != old_full
                && !(p.starts_with(old_full.as_str())
                    && p.as_bytes().get(old_full.len()) == Some(&b'/'))
        });
        let replaced = replaced.map(Self::home_file_id);
        if let Some(id) = replaced {
            home.paths.remove(&id);
        }
        Ok(replaced)
    }

    /// Ends the hold on volume file `file` ([`Self::home_unlink`]): freed
    /// now when no name is left.
    pub(crate) fn home_release(&self, file: FileId) -> Result<(), FsError> {
        let ino = home_inode(file).ok_or(FsError::Invalid)?;
        let mut home = self.volume()?;
        home.fs.release(ino).map_err(fs_error)?;
        home.lens.remove(&file);
        home.paths.remove(&file);
        self.flush_changes(&mut home)
    }

    /// Sets the clock the volume stamps changes with, if one is mounted.
    pub(crate) fn home_set_clock(&self, unix_seconds: u32) {
        if let Ok(mut home) = self.volume() {
            home.fs.set_time(unix_seconds);
        }
    }

    /// The path of a volume file looked up before.
    pub(crate) fn home_path(&self, file: FileId) -> Option<String> {
        home_inode(file)?;
        let home = self.home.as_ref()?.try_lock()?;
        home.paths.get(&file).cloned()
    }

    /// Whether writes of `file` to its store fail by design (`/dev/faulty`).
    pub fn is_faulty(&self, file: FileId) -> bool {
        home_inode(file).is_none() && self.ram.is_faulty(file)
    }

    /// Stored length of a file.
    pub fn len(&self, file: FileId) -> u64 {
        if home_inode(file).is_none() {
            return self.ram.len(file);
        }
        self.volume()
            .ok()
            .and_then(|home| home.lens.get(&file).copied())
            .unwrap_or(0)
    }

    /// Whether `file` can be `pages` pages long in its store.
    pub fn has_room(&self, file: FileId, pages: usize) -> bool {
        if home_inode(file).is_none() {
            return self.ram.has_room(file, pages);
        }
        let Ok(home) = self.volume() else {
            return false;
        };
        let want = (pages as u64).saturating_mul(PAGE as u64);
        if want > home.fs.max_file_size() {
            return false;
        }
        let have = home.lens.get(&file).copied().unwrap_or(0);
        let growth = want.saturating_sub(have);
        growth <= u64::from(home.fs.free_blocks()) * u64::from(home.fs.block_size())
    }

    /// Starts the device writes of runs of whole pages of volume file
    /// `file` (each its first page and its bytes, gathered by the page
    /// cache) without waiting for them: the blocks are placed (holes
    /// allocated, their metadata changes left dirty in the volume's cache
    /// for the write-back's sync to write after the data,
    /// [`Ext2::defer_metadata_writes`]; the inode read once and stored
    /// once for all the runs), the bytes past the end of the file
    /// zeroed, and each extent of adjacent blocks sent as one write that
    /// the device keeps until done ([`Self::requests_in_flight`]). An extent
    /// the device's queue has no room for is kept and sent as the writes
    /// before it finish ([`crate::device_queue`]; written at once, after
    /// them, only when the heap refuses the room to keep it). The writes are durable only
    /// after [`Pager::sync`]. Only for volume files (others: `IoError`;
    /// their write-backs never wait). On an error the runs before the
    /// failed one are started.
    pub fn start_run_writes(
        &mut self,
        file: FileId,
        runs: Vec<(u64, Vec<u8>)>,
    ) -> Result<(), IoError> {
        let ino = home_inode(file).ok_or(IoError)?;
        let mut home = self.volume().map_err(|_| IoError)?;
        let fs = &mut home.fs;
        // The metadata placing changes (holes allocated) stays dirty in the
        // volume's cache, written by the write-back's sync after the data
        // (`Self::start_sync_writes`), without the lock.
        let deferring = fs.deferring_metadata_writes();
        if !deferring {
            fs.defer_metadata_writes();
        }
        let placed = Self::place_and_start(fs, ino, runs);
        if !deferring {
            fs.end_deferred_writes();
        }
        placed
    }

    /// The placing and the starts of [`Self::start_run_writes`].
    fn place_and_start(
        fs: &mut Ext2<VolumeDevice>,
        ino: u32,
        runs: Vec<(u64, Vec<u8>)>,
    ) -> Result<(), IoError> {
        let mut placing = fs.begin_placing(ino).map_err(|_| IoError)?;
        let mut started = Ok(());
        for (first, data) in runs {
            started = start_placed_run(fs, &mut placing, first, data);
            if started.is_err() {
                break;
            }
        }
        let ended = fs.end_placing(placing).map_err(|_| IoError);
        started.and(ended)
    }

    /// The metadata blocks not cached that placing `runs` (each its first
    /// page and its bytes) of volume file `file` would read
    /// ([`Ext2::blocks_to_place`], at most `most`); reads nothing. Empty
    /// for other files, and when the heap refuses the list of runs.
    pub fn blocks_to_place(&self, file: FileId, runs: &[(u64, Vec<u8>)], most: usize) -> Vec<u32> {
        let (Some(ino), Ok(mut home)) = (home_inode(file), self.volume()) else {
            return Vec::new();
        };
        let mut shape = Vec::new();
        if shape.try_reserve_exact(runs.len()).is_err() {
            return Vec::new();
        }
        shape.extend(runs.iter().map(|(first, data)| (*first, data.len() / PAGE)));
        home.fs.blocks_to_place(ino, &shape, most)
    }

    /// The metadata blocks not cached that locating pages
    /// `first..first + count` of volume file `file` would read
    /// ([`Ext2::blocks_to_locate`], at most `most`); reads nothing.
    pub fn blocks_to_locate(
        &self,
        file: FileId,
        first: u64,
        count: usize,
        most: usize,
    ) -> Vec<u32> {
        match (home_inode(file), self.volume()) {
            (Some(ino), Ok(mut home)) => home.fs.blocks_to_locate(ino, first, count, most),
            _ => Vec::new(),
        }
    }

    /// Starts the device reads of pages `first..first + count` of volume
    /// file `file` without waiting for them: the blocks are found (the
    /// metadata they need read here and now), each extent of adjacent
    /// blocks is sent as one read named by a new tag (from `next_tag`),
    /// which the device keeps until done
    /// ([`Self::take_finished_read`]). Holes read as zeros; an extent the
    /// device's queue has no room for is kept and sent as room frees
    /// ([`crate::device_queue`]; read at once, after the requests before
    /// it, only when the heap refuses the room to keep it). Gives the run's buffer (the extents read at once in it)
    /// and the tags in flight with the offset of their bytes in it; a
    /// failure after some reads were started is reported with them.
    pub fn start_run_read(
        &mut self,
        file: FileId,
        first: u64,
        count: usize,
        next_tag: &mut u64,
    ) -> Result<StartedRunRead, IoError> {
        let ino = home_inode(file).ok_or(IoError)?;
        let mut home = self.volume().map_err(|_| IoError)?;
        let placed = home
            .fs
            .locate_pages(ino, first, count)
            .map_err(|_| IoError)?;
        let mut run = StartedRunRead {
            data: Vec::new(),
            in_flight: Vec::new(),
            failed: false,
        };
        let len = count.checked_mul(PAGE).ok_or(IoError)?;
        run.data.try_reserve_exact(len).map_err(|_| IoError)?;
        run.data.resize(len, 0);
        run.in_flight
            .try_reserve_exact(placed.extents.len())
            .map_err(|_| IoError)?;
        let device = home.fs.device_mut();
        for extent in placed.extents {
            let bytes = &mut run.data[extent.at..extent.at + extent.len];
            *next_tag += 1;
            let done = match device.start_read(extent.sector, extent.len, *next_tag) {
                Ok(StartedRead::InFlight) => {
                    run.in_flight.push((*next_tag, extent.at));
                    Ok(())
                }
                Ok(StartedRead::Done(read)) if read.len() == bytes.len() => {
                    bytes.copy_from_slice(&read);
                    Ok(())
                }
                Ok(StartedRead::QueueFull) => device.read_sectors(extent.sector, bytes),
                Ok(StartedRead::Done(_)) | Err(_) => Err(DeviceError::Failed),
            };
            // The reads started are the caller's to collect all the same.
            if done.is_err() {
                run.failed = true;
                break;
            }
        }
        Ok(run)
    }

    /// A started read the device is done with: its tag and its bytes
    /// (`Err`: it failed).
    pub fn take_finished_read(&mut self) -> Option<(u64, Result<Vec<u8>, IoError>)> {
        let mut home = self.volume().ok()?;
        let (tag, read) = home.fs.device_mut().take_finished_read()?;
        Some((tag, read.map_err(|_| IoError)))
    }

    /// Whether the volume's device has started requests still in flight
    /// (those done are collected).
    pub fn requests_in_flight(&mut self) -> bool {
        self.volume()
            .is_ok_and(|mut home| home.fs.device_mut().requests_in_flight())
    }

    /// Starts the first half of the sync of volume file `file` without
    /// waiting: the writes of the metadata the volume deferred (the
    /// written files' times, the blocks its placing allocated;
    /// [`Ext2::start_metadata_writes_queued`]: as many as the device's
    /// queue takes, the rest left dirty, [`MetadataWrites::more`], for the
    /// next start). Once the device has none in flight,
    /// [`Self::end_sync_writes`] and then [`Self::start_flush`] make them
    /// and the data before durable. The writes started are given back
    /// even when one failed to start.
    pub fn start_sync_writes(&mut self, file: FileId) -> (MetadataWrites, Result<(), IoError>) {
        if home_inode(file).is_none() {
            return (MetadataWrites::default(), Err(IoError));
        }
        match self.volume() {
            Ok(mut home) => {
                let (started, result) = home.fs.start_metadata_writes_queued();
                (started, result.map_err(|_| IoError))
            }
            Err(_) => (MetadataWrites::default(), Err(IoError)),
        }
    }

    /// Ends the metadata writes of [`Self::start_sync_writes`] (the device
    /// has none in flight): clean when `succeeded`, else still pending.
    pub fn end_sync_writes(&mut self, written: MetadataWrites, succeeded: bool) {
        if let Ok(mut home) = self.volume() {
            home.fs.end_metadata_writes(written, succeeded);
        }
    }

    /// Starts the flush of the volume's device (started only when nothing
    /// is in flight): `Ok(true)` while it is in flight (a failure counts
    /// in [`Self::take_failed_writes`]), `Ok(false)` when it was made at
    /// once.
    pub fn start_flush(&mut self) -> Result<bool, IoError> {
        let mut home = self.volume().map_err(|_| IoError)?;
        home.fs.device_mut().start_flush().map_err(|_| IoError)
    }

    /// The metadata blocks a call on volume path `rel` needs that are not
    /// cached ([`Ext2::blocks_to_read`], at most `most`); reads nothing.
    pub(crate) fn home_blocks_to_read(&self, rel: &str, most: usize) -> Vec<u32> {
        match self.volume() {
            Ok(mut home) => home.fs.blocks_to_read(rel, most),
            Err(_) => Vec::new(),
        }
    }

    /// The blocks `change` will read that are not cached
    /// ([`Ext2::blocks_to_change`], at most `most`); reads nothing.
    pub(crate) fn home_blocks_to_change(
        &self,
        change: neoos_ext2::Change,
        most: usize,
    ) -> Vec<u32> {
        match self.volume() {
            Ok(mut home) => home.fs.blocks_to_change(change, most),
            Err(_) => Vec::new(),
        }
    }

    /// Starts the device read of metadata block `block`, named `tag`,
    /// without waiting (the device has nothing in flight): the volume's
    /// metadata write count to give [`Self::cache_metadata_block`] with
    /// its bytes. `None` when it was read at once (and cached) or the
    /// queue has no room (nothing read).
    pub(crate) fn start_metadata_read(
        &mut self,
        block: u32,
        tag: u64,
    ) -> Result<Option<u64>, IoError> {
        let mut home = self.volume().map_err(|_| IoError)?;
        let sector = home.fs.block_sector(block).map_err(|_| IoError)?;
        let len = home.fs.block_size() as usize;
        let writes = home.fs.metadata_writes();
        match home.fs.device_mut().start_read(sector, len, tag) {
            Ok(StartedRead::InFlight) => Ok(Some(writes)),
            Ok(StartedRead::Done(bytes)) => {
                home.fs.cache_read_block(block, bytes, writes);
                Ok(None)
            }
            Ok(StartedRead::QueueFull) => Ok(None),
            Err(_) => Err(IoError),
        }
    }

    /// Caches metadata block `block` read without the lock, its read
    /// started when the metadata write count was `writes` (dropped if a
    /// metadata write came since).
    pub(crate) fn cache_metadata_block(&mut self, block: u32, bytes: Vec<u8>, writes: u64) {
        if let Ok(mut home) = self.volume() {
            home.fs.cache_read_block(block, bytes, writes);
        }
    }

    /// How many started writes (and flushes) failed since the last call.
    pub fn take_failed_writes(&mut self) -> u64 {
        self.volume()
            .map(|mut home| home.fs.device_mut().take_failed_writes())
            .unwrap_or(0)
    }

    /// Reserves room for `file` to be `pages` pages long (on the volume:
    /// checks it, see the module comment).
    pub fn reserve(&mut self, file: FileId, pages: usize) -> bool {
        if home_inode(file).is_none() {
            return self.ram.reserve(file, pages);
        }
        self.has_room(file, pages)
    }

    /// What the volume's device has done (zeros without a volume).
    pub fn device_counters(&self) -> DeviceCounters {
        self.volume()
            .map(|home| home.fs.device().counters())
            .unwrap_or_default()
    }

    /// Pages reserved on the RAM disk over all files.
    pub fn reserved_pages(&self) -> usize {
        self.ram.reserved_pages()
    }

    /// Writes the pages of a run to the volume in requests of at most
    /// [`MAX_PAGES_PER_REQUEST`] pages, gathered into one buffer each. Not
    /// durable until [`Pager::sync`] (the file's times, the flush).
    fn home_write_run(
        home: &mut HomeVolume,
        ino: u32,
        first: u64,
        pages: &[&PageBytes],
    ) -> Result<(), IoError> {
        let mut buffer: Vec<u8> = Vec::new();
        let most = pages.len().min(MAX_PAGES_PER_REQUEST) * PAGE;
        buffer.try_reserve_exact(most).map_err(|_| IoError)?;
        let mut index = first;
        for chunk in pages.chunks(MAX_PAGES_PER_REQUEST) {
            buffer.clear();
            for page in chunk {
                buffer.extend_from_slice(&page[..]);
            }
            home.fs
                .write_pages(ino, index, &buffer)
                .map_err(|_| IoError)?;
            index += chunk.len() as u64;
        }
        Ok(())
    }
}

impl Pager for Storage {
    fn read_page(
        &mut self,
        file: FileId,
        page_index: u64,
        dst: &mut PageBytes,
    ) -> Result<(), IoError> {
        let Some(ino) = home_inode(file) else {
            return self.ram.read_page(file, page_index, dst);
        };
        let mut home = self.volume().map_err(|_| IoError)?;
        home.fs
            .read_pages(ino, page_index, &mut dst[..])
            .map_err(|_| IoError)
    }

    fn read_pages(
        &mut self,
        file: FileId,
        first_page_index: u64,
        buf: &mut [u8],
    ) -> Result<(), IoError> {
        let Some(ino) = home_inode(file) else {
            for (i, chunk) in buf.chunks_exact_mut(PAGE).enumerate() {
                let page: &mut PageBytes = chunk.try_into().map_err(|_| IoError)?;
                self.ram
                    .read_page(file, first_page_index + i as u64, page)?;
            }
            return Ok(());
        };
        let mut home = self.volume().map_err(|_| IoError)?;
        home.fs
            .read_pages(ino, first_page_index, buf)
            .map_err(|_| IoError)
    }

    fn write_run(
        &mut self,
        file: FileId,
        first_page_index: u64,
        pages: &[&PageBytes],
    ) -> Result<(), IoError> {
        let Some(ino) = home_inode(file) else {
            return self.ram.write_run(file, first_page_index, pages);
        };
        let mut home = self.volume().map_err(|_| IoError)?;
        Self::home_write_run(&mut home, ino, first_page_index, pages)
    }

    /// Writes the metadata the volume deferred (the written files' times)
    /// and flushes the device: the runs written before are then durable.
    fn sync(&mut self, file: FileId) -> Result<(), IoError> {
        if home_inode(file).is_none() {
            return Ok(());
        }
        let mut home = self.volume().map_err(|_| IoError)?;
        home.fs.flush().map_err(|_| IoError)
    }

    /// Pages of the volume's files may leave RAM (they are read again from
    /// the disk); the RAM disk's (`/bin`, `/etc`, `/tmp`) may not: their
    /// other copy is in RAM too, so dropping one gains little, and a `/tmp`
    /// file has no disk behind it.
    fn evictable(&self, file: FileId) -> bool {
        is_volume_file(file)
    }

    fn set_len(&mut self, file: FileId, len: u64) -> Result<(), IoError> {
        let Some(ino) = home_inode(file) else {
            return self.ram.set_len(file, len);
        };
        let mut home = self.volume().map_err(|_| IoError)?;
        home.fs.truncate(ino, len).map_err(|_| IoError)?;
        self.flush_changes(&mut home).map_err(|_| IoError)?;
        home.lens.insert(file, len);
        Ok(())
    }
}

/// Places one run of a [`Placing`] and starts its device writes
/// ([`Storage::start_run_writes`]).
fn start_placed_run<D: BlockDevice>(
    fs: &mut Ext2<D>,
    placing: &mut Placing,
    first: u64,
    mut data: Vec<u8>,
) -> Result<(), IoError> {
    let pages = data.len() / PAGE;
    let placed = fs.place_run(placing, first, pages).map_err(|_| IoError)?;
    data[placed.inside..].fill(0);
    let device = fs.device_mut();
    let whole = placed.extents.len() == 1;
    for extent in placed.extents {
        let bytes = if whole && extent.at == 0 {
            data.truncate(extent.len);
            core::mem::take(&mut data)
        } else {
            let mut part = Vec::new();
            part.try_reserve_exact(extent.len).map_err(|_| IoError)?;
            part.extend_from_slice(&data[extent.at..extent.at + extent.len]);
            part
        };
        match device.start_write(extent.sector, bytes) {
            Ok(Started::Done | Started::InFlight) => {}
            Ok(Started::QueueFull(bytes)) => device
                .write_sectors(extent.sector, &bytes)
                .map_err(|_| IoError)?,
            Err(_) => return Err(IoError),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::FileSystem;
    use crate::test_platform::cpio;
    use neoos_ext2::MemDevice;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::{Arc, Mutex};

    /// A memory device the test keeps a handle to, that can be made to
    /// fail every write.
    #[derive(Clone)]
    struct SharedDevice {
        inner: Arc<Mutex<MemDevice>>,
        failing: Arc<Mutex<bool>>,
        /// Reads, writes and flushes asked of the device.
        requests: Arc<Mutex<u64>>,
    }

    impl SharedDevice {
        fn count_request(&self) {
            *self.requests.lock().unwrap() += 1;
        }
    }

    impl BlockDevice for SharedDevice {
        fn sector_count(&self) -> u64 {
            self.inner.lock().unwrap().sector_count()
        }
        fn read_sectors(&mut self, first: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
            self.count_request();
            self.inner.lock().unwrap().read_sectors(first, buf)
        }
        fn write_sectors(&mut self, first: u64, data: &[u8]) -> Result<(), DeviceError> {
            self.count_request();
            if *self.failing.lock().unwrap() {
                return Err(DeviceError::Failed);
            }
            self.inner.lock().unwrap().write_sectors(first, data)
        }
        fn flush(&mut self) -> Result<(), DeviceError> {
            self.count_request();
            Ok(())
        }
        fn counters(&self) -> DeviceCounters {
            DeviceCounters {
                requests: *self.requests.lock().unwrap(),
                ..DeviceCounters::default()
            }
        }
    }

    fn e2fsprogs(name: &str) -> PathBuf {
        ["/usr/sbin", "/sbin", "/usr/bin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{name} missing: apt-get install -y e2fsprogs"))
    }

    /// An image made by mke2fs -d holding usuario/datos.bin (3 bytes).
    fn home_image(tag: &str) -> (PathBuf, Vec<u8>) {
        let dir =
            std::env::temp_dir().join(std::format!("neoos-mount-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tree/usuario")).unwrap();
        std::fs::write(dir.join("tree/usuario/datos.bin"), b"abc").unwrap();
        let image = dir.join("img");
        let made = Command::new(e2fsprogs("mke2fs"))
            .args(["-q", "-F", "-t", "ext2", "-b", "4096", "-d"])
            .arg(dir.join("tree"))
            .arg(&image)
            .arg("4M")
            .status()
            .unwrap();
        assert!(made.success());
        let bytes = std::fs::read(&image).unwrap();
        (image, bytes)
    }

    /// A file system whose initial image has /home/old and /tmp, with the
    /// image mounted at /home.
    fn mounted(bytes: Vec<u8>) -> (FileSystem, SharedDevice) {
        let mut fs = FileSystem::new();
        let initfs = cpio(&[("home", None), ("home/old", Some(b"ram")), ("tmp", None)]);
        fs.unpack_cpio(&initfs).unwrap();
        let dev = SharedDevice {
            inner: Arc::new(Mutex::new(MemDevice::new(bytes))),
            failing: Arc::new(Mutex::new(false)),
            requests: Arc::new(Mutex::new(0)),
        };
        fs.mount_home(Box::new(dev.clone())).unwrap();
        (fs, dev)
    }

    #[test]
    fn home_is_the_volume_and_tmp_stays_in_ram() {
        let (_, bytes) = home_image("ns");
        let (mut fs, _) = mounted(bytes);
        assert_eq!(fs.lookup("/home/old"), None, "the RAM /home is gone");
        assert_eq!(fs.lookup("/home/usuario"), Some(Node::Dir));
        let Some(Node::File(datos)) = fs.lookup("/home/usuario/datos.bin") else {
            panic!("datos.bin is a file on the volume");
        };
        assert_eq!(fs.disk.len(datos), 3);
        assert_eq!(
            fs.path_of(datos).as_deref(),
            Some("/home/usuario/datos.bin")
        );
        let mut page = [9u8; PAGE];
        fs.disk.read_page(datos, 0, &mut page).unwrap();
        assert_eq!(&page[..4], b"abc\0");
        assert_eq!(fs.list("/home").unwrap(), ["lost+found/", "usuario/"]);
        fs.mkdir("/home/usuario/d").unwrap();
        assert_eq!(fs.list("/home/usuario").unwrap(), ["d/", "datos.bin"]);
        assert_eq!(fs.create("/home/usuario/datos.bin"), Err(FsError::Exists));
        assert_eq!(fs.create("/home/none/x"), Err(FsError::NotFound));
        let tmp = fs.create("/tmp/x").unwrap();
        assert_eq!(home_inode(tmp), None, "/tmp files live in RAM");
        assert_eq!(fs.list("/").unwrap(), ["home/", "tmp/"]);
    }

    #[test]
    fn pages_written_through_the_pager_reach_the_image() {
        let (image, bytes) = home_image("pager");
        let (mut fs, dev) = mounted(bytes);
        let new = fs.create("/home/usuario/new").unwrap();
        fs.disk.set_len(new, 5000).unwrap();
        let (a, b) = ([1u8; PAGE], [2u8; PAGE]);
        fs.disk.write_run(new, 0, &[&a, &b]).unwrap();
        assert_eq!(fs.disk.len(new), 5000);
        std::fs::write(&image, dev.inner.lock().unwrap().bytes()).unwrap();
        let fsck = Command::new(e2fsprogs("e2fsck"))
            .arg("-fn")
            .arg(&image)
            .output()
            .unwrap();
        assert!(
            fsck.status.success(),
            "{}",
            String::from_utf8_lossy(&fsck.stdout)
        );
        let cat = Command::new(e2fsprogs("debugfs"))
            .args(["-R", "cat /usuario/new"])
            .arg(&image)
            .output()
            .unwrap();
        let mut want = alloc::vec![1u8; PAGE];
        want.extend_from_slice(&[2u8; 5000 - PAGE]);
        assert_eq!(cat.stdout, want);
    }

    /// The device's own counts reach `Storage::device_counters` (what
    /// sys_meminfo reports), and a run of adjacent pages whose blocks are
    /// adjacent costs the device what a run of one page does: requests
    /// follow the runs, not the pages. Twelve pages of 4 KiB blocks: the
    /// inode's direct blocks, which a fresh file gets next to each other
    /// (the thirteenth would follow its indirect block, breaking the run).
    #[test]
    fn device_requests_follow_runs_not_pages() {
        let (_, bytes) = home_image("runs");
        let (mut fs, dev) = mounted(bytes);
        let file = fs.create("/home/usuario/runs").unwrap();
        fs.disk.set_len(file, 12 * PAGE as u64).unwrap();
        let pages: Vec<[u8; PAGE]> = (0..12u8).map(|i| [i; PAGE]).collect();
        let all: Vec<&PageBytes> = pages.iter().collect();
        fs.disk.write_run(file, 0, &all).unwrap();
        let requests = |fs: &FileSystem| fs.disk.device_counters().requests;
        assert_eq!(requests(&fs), *dev.requests.lock().unwrap());
        let before = requests(&fs);
        fs.disk.write_run(file, 3, &all[..1]).unwrap();
        let one_page = requests(&fs) - before;
        let before = requests(&fs);
        fs.disk.write_run(file, 0, &all).unwrap();
        let twelve_pages = requests(&fs) - before;
        assert!(one_page > 0);
        assert_eq!(twelve_pages, one_page);
        let empty = Storage::default();
        assert_eq!(empty.device_counters(), DeviceCounters::default());
    }

    /// With the file's metadata cached, a write-back of R runs costs the
    /// device R data writes, then the sync's two requests: the inode (its
    /// times, deferred) and the flush. No request reads anything. 300 pages
    /// of 4 KiB blocks: direct, single and double indirect blocks.
    #[test]
    fn a_writeback_of_r_runs_costs_r_writes_and_one_inode_write_and_one_flush() {
        let (image, bytes) = home_image("r-runs");
        let (mut fs, dev) = mounted(bytes);
        let file = fs.create("/home/usuario/r-runs").unwrap();
        const PAGES: usize = 300;
        fs.disk.set_len(file, (PAGES * PAGE) as u64).unwrap();
        let pages: Vec<[u8; PAGE]> = (0..PAGES).map(|i| [i as u8; PAGE]).collect();
        let all: Vec<&PageBytes> = pages.iter().collect();
        for (i, chunk) in all.chunks(MAX_PAGES_PER_REQUEST).enumerate() {
            let first = (i * MAX_PAGES_PER_REQUEST) as u64;
            fs.disk.write_run(file, first, chunk).unwrap();
        }
        fs.disk.sync(file).unwrap();
        let requests = || *dev.requests.lock().unwrap();
        for runs in [1u64, 5, 40] {
            fs.disk.home_set_clock(1_000_000 + runs as u32);
            let before = requests();
            let step = PAGES as u64 / runs;
            for run in 0..runs {
                let first = run * step;
                fs.disk.write_run(file, first, &all[..2]).unwrap();
            }
            assert_eq!(requests() - before, runs, "{runs} runs before the sync");
            fs.disk.sync(file).unwrap();
            assert_eq!(requests() - before, runs + 2, "{runs} runs and the sync");
        }
        std::fs::write(&image, dev.inner.lock().unwrap().bytes()).unwrap();
        e2fsck_clean(&image);
        let stat = debugfs(&image, "stat /usuario/r-runs");
        assert!(
            stat.contains("mtime: 0x000f4268"),
            "the last sync wrote the file's time: {stat}"
        );
    }

    /// The time a data write defers reaches the disk only with the sync; a
    /// sync that fails keeps it pending, and the next one writes it.
    #[test]
    fn a_failed_sync_keeps_the_deferred_inode_write_for_the_next() {
        let (image, bytes) = home_image("sync-fail");
        let (mut fs, dev) = mounted(bytes);
        let Some(Node::File(datos)) = fs.lookup("/home/usuario/datos.bin") else {
            panic!("datos.bin is a file");
        };
        fs.disk.home_set_clock(0x1234_5678);
        fs.disk.write_run(datos, 0, &[&[7u8; PAGE]]).unwrap();
        let stat_on_disk = || {
            std::fs::write(&image, dev.inner.lock().unwrap().bytes()).unwrap();
            debugfs(&image, "stat /usuario/datos.bin")
        };
        assert!(!stat_on_disk().contains("mtime: 0x12345678"));
        *dev.failing.lock().unwrap() = true;
        assert_eq!(fs.disk.sync(datos), Err(IoError));
        *dev.failing.lock().unwrap() = false;
        assert!(!stat_on_disk().contains("mtime: 0x12345678"));
        fs.disk.sync(datos).unwrap();
        assert!(stat_on_disk().contains("mtime: 0x12345678"));
        e2fsck_clean(&image);
    }

    #[test]
    fn a_device_that_fails_writes_fails_the_pager_call() {
        let (_, bytes) = home_image("fail");
        let (mut fs, dev) = mounted(bytes);
        let Some(Node::File(datos)) = fs.lookup("/home/usuario/datos.bin") else {
            panic!("datos.bin is a file");
        };
        *dev.failing.lock().unwrap() = true;
        assert_eq!(fs.disk.write_run(datos, 0, &[&[5u8; PAGE]]), Err(IoError));
        assert_eq!(fs.disk.set_len(datos, 1), Err(IoError));
        assert_eq!(fs.disk.len(datos), 3, "a failed call changes nothing");
        *dev.failing.lock().unwrap() = false;
        fs.disk.write_run(datos, 0, &[&[5u8; PAGE]]).unwrap();
        let mut page = [0u8; PAGE];
        fs.disk.read_page(datos, 0, &mut page).unwrap();
        assert_eq!(&page[..4], &[5, 5, 5, 0]);
    }

    #[test]
    fn a_device_without_ext2_is_not_mounted() {
        let mut fs = FileSystem::new();
        fs.mkdir("/home").unwrap();
        let blank = MemDevice::new(alloc::vec![0u8; 1 << 20]);
        assert!(fs.mount_home(Box::new(blank)).is_err());
        assert!(!fs.disk.home_mounted());
        assert!(fs.create("/home/x").is_ok(), "/home stays in RAM");
    }

    fn e2fsck_clean(image: &Path) {
        let fsck = Command::new(e2fsprogs("e2fsck"))
            .arg("-fn")
            .arg(image)
            .output()
            .unwrap();
        assert!(
            fsck.status.success(),
            "{}",
            String::from_utf8_lossy(&fsck.stdout)
        );
    }

    fn debugfs(image: &Path, request: &str) -> String {
        let out = Command::new(e2fsprogs("debugfs"))
            .args(["-R", request])
            .arg(image)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn namespace_operations_on_the_volume_leave_a_clean_image() {
        let (image, bytes) = home_image("ns-ops");
        let (mut fs, dev) = mounted(bytes);
        fs.mkdir("/home/a").unwrap();
        fs.mkdir("/home/a/b").unwrap();
        let f = fs.create("/home/a/b/f").unwrap();
        fs.disk.set_len(f, 5).unwrap();
        fs.disk.write_run(f, 0, &[&[b'z'; PAGE]]).unwrap();
        fs.create("/home/gone").unwrap();
        // Refusals change nothing.
        assert_eq!(fs.rmdir("/home/a"), Err(FsError::NotEmpty));
        assert_eq!(fs.rename("/home/a", "/home/a/b/c"), Err(FsError::Invalid));
        assert_eq!(
            fs.rename("/home/a/b/f", "/tmp/f"),
            Err(FsError::CrossDevice)
        );
        assert_eq!(
            fs.rename("/home/a", "/home/usuario"),
            Err(FsError::NotEmpty)
        );
        assert_eq!(fs.rename("/home/gone", "/home/a"), Err(FsError::IsDir));
        assert_eq!(fs.rmdir("/home"), Err(FsError::Busy));
        assert_eq!(fs.rmdir("/home/gone"), Err(FsError::NotADirectory));
        assert_eq!(fs.unlink("/home/a"), Err(FsError::IsDir));
        assert_eq!(fs.mkdir("/home/a"), Err(FsError::Exists));
        // A tree moves; a file is replaced; an open file outlives its name.
        fs.rename("/home/a", "/home/moved").unwrap();
        assert_eq!(fs.lookup("/home/moved/b/f"), Some(Node::File(f)));
        fs.rename("/home/moved/b/f", "/home/gone").unwrap();
        assert_eq!(fs.lookup("/home/gone"), Some(Node::File(f)));
        assert_eq!(fs.unlink("/home/gone"), Ok(f));
        assert_eq!(fs.orphan_count(), 2, "the replaced file and f");
        fs.reap_orphans(&|id| id == f, &mut |_| {});
        assert_eq!(fs.orphan_count(), 1, "f is still open");
        let mut page = [0u8; PAGE];
        fs.disk.read_page(f, 0, &mut page).unwrap();
        assert_eq!(&page[..6], b"zzzzz\0", "its data is still there");
        std::fs::write(&image, dev.inner.lock().unwrap().bytes()).unwrap();
        assert!(!debugfs(&image, "ls -l /").contains("gone"));
        let mut freed = Vec::new();
        fs.reap_orphans(&|_| false, &mut |id| freed.push(id));
        assert_eq!(freed, [f]);
        fs.rmdir("/home/moved/b").unwrap();
        fs.mkdir("/home/new").unwrap();
        std::fs::write(&image, dev.inner.lock().unwrap().bytes()).unwrap();
        e2fsck_clean(&image);
        let root = debugfs(&image, "ls -p /");
        for name in ["/moved/", "/new/", "/usuario/"] {
            assert!(root.contains(name), "{name} in {root}");
        }
        assert!(!root.contains("/a/") && !root.contains("/gone/"), "{root}");
        let moved = debugfs(&image, "ls -p /moved");
        assert!(!moved.contains("/b/"), "{moved}");
    }

    #[test]
    fn paths_below_home_are_split_off() {
        assert_eq!(below_home("/home"), Some("/"));
        assert_eq!(below_home("/home/usuario/x"), Some("/usuario/x"));
        assert_eq!(below_home("/homework"), None);
        assert_eq!(below_home("/tmp/home"), None);
    }

    #[test]
    fn volume_ids_do_not_meet_ram_ids() {
        assert_eq!(home_inode(FileId(5)), None);
        assert_eq!(home_inode(FileId(HOME_IDS + 12)), Some(12));
    }
}
