//! The Linux calls on names and directories: the working directory
//! (`chdir`, `fchdir`, `getcwd`) against which every relative path is
//! resolved, directory descriptors and `getdents64`, `mkdir`, `rmdir`,
//! `unlink`, `rename`, `access`, `chmod`, `truncate`, `readlink`,
//! `utimensat`, `pread64`/`pwrite64`, `time`/`gettimeofday`, and the
//! special files of [`super::procfs`]. Paths are resolved here once,
//! into normalized absolute paths the file system takes.

use alloc::string::String;
use alloc::vec::Vec;

use neoos_abi::linux as abi;
use neoos_abi::TICKS_PER_SECOND;
use neoos_mm::{Errno, FileAccess, FileId, MapObject};

use super::calls::{Fail, LinuxResult};
use super::meta::{FileMeta, Touch};
use super::procfs::{self, MapName, Special};
use super::{LinuxCall, LinuxError};
use crate::dirs::DirPosition;
use crate::files::{Descriptor, OpenFile};
use crate::fs::{normalize, FsError, Node};
use crate::kernel::Kernel;
use crate::platform::Platform;
use crate::process::Pid;
use crate::syscall::UserPtr;

/// Longest path a Linux call takes, before its NUL (Linux's `PATH_MAX`
/// less one); once made absolute and normalized it must also fit the
/// file system's 1,024 bytes.
pub const LINUX_PATH_MAX: usize = 4095;

/// Most bytes one `getdents64` lists names from per step.
const DENTS_STEP: usize = 4096;

/// The `linux_dirent64` header: inode (8), offset (8), record length (2),
/// type (1).
const DIRENT_HEADER: usize = 19;

/// The Linux error of a namespace failure.
pub(super) fn fs_fail(e: FsError) -> Fail {
    match e {
        FsError::NotFound => Errno::NoEnt.into(),
        FsError::Exists => Errno::Exists.into(),
        FsError::NotADirectory => LinuxError::NotDir.into(),
        FsError::Invalid => Errno::Inval.into(),
        FsError::Full => Errno::NoSpace.into(),
        FsError::Io => Errno::Io.into(),
        FsError::NotEmpty => LinuxError::NotEmpty.into(),
        FsError::IsDir => LinuxError::IsDir.into(),
        FsError::NameTooLong => LinuxError::NameTooLong.into(),
        FsError::CrossDevice => LinuxError::CrossDevice.into(),
        FsError::Busy => LinuxError::Busy.into(),
    }
}

/// Whether normalized `path` is in (or is) a folder programs may not
/// change (`/bin`, `/etc`: the built-in image).
pub(super) fn is_read_only(path: &str) -> bool {
    ["/bin", "/etc"]
        .iter()
        .any(|d| crate::fs::is_within(path, d))
}

/// A stable inode number for a directory (directories have no file id).
pub(super) fn dir_ino(path: &str) -> u64 {
    path.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The key a RAM directory's metadata is kept under (apart from every
/// file id: the top bits are set).
pub(super) fn dir_key(path: &str) -> FileId {
    FileId((3 << 62) | (dir_ino(path) >> 2))
}

/// The inode number `stat` and `getdents64` give file `id`.
pub(super) fn file_ino(id: FileId) -> u64 {
    id.0 + 2
}

impl<P: Platform> Kernel<P> {
    /// The working directory of `pid` (`/` unless it moved).
    pub(crate) fn cwd(&self, pid: Pid) -> &str {
        self.cwds.get(&pid).map_or("/", String::as_str)
    }

    /// Copies the path at `path` (at most [`LINUX_PATH_MAX`] bytes):
    /// `ENAMETOOLONG` beyond, `EFAULT` for a bad pointer.
    fn copy_path(&mut self, pid: Pid, path: UserPtr) -> Result<String, Fail> {
        let (memory, space, mut hw) = self.hw_for(pid).ok_or(Errno::Inval)?;
        let bytes = match memory.read_user_cstr(space, &mut hw, path.0, LINUX_PATH_MAX) {
            Ok(b) => b,
            Err(Errno::Inval) => return Err(LinuxError::NameTooLong.into()),
            Err(e) => return Err(e.into()),
        };
        String::from_utf8(bytes).map_err(|_| Errno::Inval.into())
    }

    /// The normalized absolute path a Linux call names with `dirfd` and
    /// the string at `path`: absolute paths as they are, relative ones
    /// from the working directory (`AT_FDCWD`) or from directory
    /// descriptor `dirfd`; `.` and `..` resolved.
    pub(super) fn resolve_path(
        &mut self,
        pid: Pid,
        dirfd: i64,
        path: UserPtr,
    ) -> Result<String, Fail> {
        let raw = self.copy_path(pid, path)?;
        self.resolve_str(pid, dirfd, &raw)
    }

    /// The paths Linux call `call` of `pid` names (normalized; two for a
    /// rename, the directory's for `getdents64`), for the metadata reads
    /// made before it (`crate::metadata_reads`): `None` for one that
    /// cannot be resolved (the call reports why) or a call that names none.
    pub(crate) fn linux_call_paths(&mut self, pid: Pid, call: &LinuxCall) -> [Option<String>; 2] {
        let at_cwd = abi::AT_FDCWD;
        let (first, second) = match *call {
            LinuxCall::Open { dirfd, path, .. }
            | LinuxCall::FstatAt { dirfd, path, .. }
            | LinuxCall::Mkdir { dirfd, path, .. }
            | LinuxCall::Unlink { dirfd, path, .. }
            | LinuxCall::Access { dirfd, path, .. }
            | LinuxCall::Chmod { dirfd, path, .. }
            | LinuxCall::Readlink { dirfd, path, .. }
            | LinuxCall::Utimensat { dirfd, path, .. } => ((dirfd, path), None),
            LinuxCall::Stat { path, .. }
            | LinuxCall::Chdir { path }
            | LinuxCall::Truncate { path, .. }
            | LinuxCall::Statfs { path, .. } => ((at_cwd, path), None),
            LinuxCall::Rename {
                old_dirfd,
                old,
                new_dirfd,
                new,
                ..
            } => ((old_dirfd, old), Some((new_dirfd, new))),
            LinuxCall::Getdents { fd, .. } => {
                let dir = match self.descriptor(pid, fd) {
                    Ok(Descriptor::Dir { id }) => self.fs.open_dirs.get(id).map(|d| d.path.clone()),
                    _ => None,
                };
                return [dir, None];
            }
            _ => return [None, None],
        };
        let mut resolve = |(dirfd, path): (i64, UserPtr)| self.resolve_path(pid, dirfd, path).ok();
        let first = resolve(first);
        [first, second.and_then(resolve)]
    }

    /// [`Self::resolve_path`] of a path already copied in.
    pub(super) fn resolve_str(&mut self, pid: Pid, dirfd: i64, raw: &str) -> Result<String, Fail> {
        if raw.is_empty() {
            return Err(Errno::NoEnt.into());
        }
        let base: &str = if raw.starts_with('/') {
            ""
        } else if dirfd == abi::AT_FDCWD {
            self.cwd(pid)
        } else {
            match self.descriptor(pid, dirfd)? {
                Descriptor::Dir { id } => {
                    self.fs.open_dirs.get(id).map_or("/", |d| d.path.as_str())
                }
                _ => return Err(LinuxError::NotDir.into()),
            }
        };
        let mut joined = String::new();
        joined
            .try_reserve_exact(base.len() + 1 + raw.len())
            .map_err(|_| Errno::NoMem)?;
        joined.push_str(base);
        joined.push('/');
        joined.push_str(raw);
        let path = normalize(&joined).ok_or(LinuxError::NameTooLong)?;
        crate::fs::check_names(&path).map_err(fs_fail)?;
        Ok(path)
    }

    /// The special file `path` names for `pid`, if any.
    pub(crate) fn special_of(&self, pid: Pid, path: &str) -> Option<Special> {
        procfs::special(path, pid)
    }

    /// What `path` names, a special file counting as a file.
    fn exists(&self, pid: Pid, path: &str) -> bool {
        self.special_of(pid, path).is_some() || self.fs.lookup(path).is_some()
    }

    /// What `stat` says of file `id`: on the volume, its inode's mode and
    /// owner, and its times unless the kernel has newer ones; in RAM, the
    /// kernel's record.
    pub(crate) fn meta_of(&self, id: FileId) -> FileMeta {
        let kept = self.file_meta.find(id);
        let Some(inode) = self.fs.disk.home_file_stat(id) else {
            return kept.unwrap_or_default();
        };
        let (atime, mtime, ctime) = match kept {
            Some(k) => (k.atime, k.mtime, k.ctime),
            None => (
                u64::from(inode.atime),
                u64::from(inode.mtime),
                u64::from(inode.ctime),
            ),
        };
        FileMeta {
            perm: u32::from(inode.mode) & 0o7777,
            uid: inode.uid,
            gid: inode.gid,
            atime,
            mtime,
            ctime,
        }
    }

    /// The metadata of directory `path` (normalized).
    pub(crate) fn dir_meta(&self, path: &str) -> FileMeta {
        if let Some(ino) = self.fs.volume_ino(path) {
            if let Ok(s) = self.fs.disk.home_stat(ino) {
                return FileMeta {
                    perm: u32::from(s.mode) & 0o7777,
                    uid: s.uid,
                    gid: s.gid,
                    atime: u64::from(s.atime),
                    mtime: u64::from(s.mtime),
                    ctime: u64::from(s.ctime),
                };
            }
        }
        self.file_meta.find(dir_key(path)).unwrap_or(FileMeta {
            perm: 0o755,
            ..FileMeta::default()
        })
    }

    /// Stamps the volume's clock with the kernel's before it changes.
    fn stamp_volume(&mut self) {
        let now = self.now_seconds().min(u64::from(u32::MAX)) as u32;
        self.fs.disk.home_set_clock(now);
    }

    /// [`Self::reap_orphans`] when a file object went since the last look
    /// (the last descriptor or mapping of some file was let go): the check
    /// made after a call, at exit and when an exec's old space is gone.
    /// O(1) while no file object goes, so calls that hold no file (and
    /// every call while no unlinked file is open) never see the orphans.
    #[inline]
    pub(crate) fn reap_released_orphans(&mut self) {
        if self.fs.orphans_may_be_free(self.memory.files_released()) {
            self.reap_orphans();
        }
    }

    /// Frees the data of unlinked files nothing refers to any more (no
    /// descriptor, no mapping), and their metadata records. O(orphans): run
    /// when a name went (`unlink`, `rename` over a file; the file may have
    /// been held by nothing) and by [`Self::reap_released_orphans`].
    #[inline(never)]
    pub(crate) fn reap_orphans(&mut self) {
        if self.fs.orphan_count() == 0 {
            return;
        }
        self.stamp_volume();
        let memory = &self.memory;
        let meta = &mut self.file_meta;
        self.fs
            .reap_orphans(&|id| memory.file_size(id).is_ok(), &mut |id| {
                meta.remove(id)
            });
    }

    /// `EPERM` for a change to read-only `path` (in `/bin` or `/etc`, or
    /// a special file), after what Linux checks first: that the folders on
    /// the way exist and are folders.
    fn read_only_check(&self, pid: Pid, path: &str) -> Result<(), Fail> {
        if !is_read_only(path) && self.special_of(pid, path).is_none() {
            return Ok(());
        }
        match self.fs.lookup(crate::fs::parent_dir(path)) {
            Some(Node::Dir) => Err(Errno::Perm.into()),
            Some(Node::File(_)) => Err(LinuxError::NotDir.into()),
            None if self.special_of(pid, path).is_some() => Err(Errno::Perm.into()),
            None => Err(Errno::NoEnt.into()),
        }
    }

    /// `EPERM` unless `pid` may change file or directory `meta`'s
    /// attributes (its owner, or root).
    fn owner_check(&mut self, pid: Pid, meta: &FileMeta) -> Result<(), Fail> {
        let euid = self.linux_state(pid).map_or(0, |s| s.ids.euid());
        if euid != 0 && euid != meta.uid {
            return Err(Errno::Perm.into());
        }
        Ok(())
    }

    // ---- the working directory ----

    pub(super) fn chdir(&mut self, pid: Pid, path: UserPtr) -> LinuxResult {
        let path = self.resolve_path(pid, abi::AT_FDCWD, path)?;
        self.enter_dir(pid, path)
    }

    pub(super) fn fchdir(&mut self, pid: Pid, fd: i64) -> LinuxResult {
        let Descriptor::Dir { id } = self.descriptor(pid, fd)? else {
            return Err(LinuxError::NotDir.into());
        };
        let path = self.fs.open_dirs.get(id).ok_or(Errno::BadFd)?.path.clone();
        self.enter_dir(pid, path)
    }

    fn enter_dir(&mut self, pid: Pid, path: String) -> LinuxResult {
        match self.fs.lookup(&path) {
            Some(Node::Dir) => {}
            Some(Node::File(_)) => return Err(LinuxError::NotDir.into()),
            None => return Err(Errno::NoEnt.into()),
        }
        self.heap_reserve_check()?;
        if path == "/" {
            self.cwds.remove(&pid);
        } else {
            self.cwds.insert(pid, path);
        }
        Ok(0)
    }

    /// `getcwd`: the path and its NUL; `ERANGE` when `size` is too small.
    pub(super) fn getcwd(&mut self, pid: Pid, buf: UserPtr, size: u64) -> LinuxResult {
        let cwd = self.cwd(pid);
        let mut bytes = Vec::new();
        bytes
            .try_reserve_exact(cwd.len() + 1)
            .map_err(|_| Errno::NoMem)?;
        bytes.extend_from_slice(cwd.as_bytes());
        bytes.push(0);
        if (bytes.len() as u64) > size {
            return Err(LinuxError::Range.into());
        }
        self.copy_out(pid, buf, &bytes)?;
        Ok(bytes.len() as i64)
    }

    // ---- directories ----

    /// Opens directory `path` as a descriptor (read-only, as Linux
    /// requires).
    pub(super) fn open_dir(&mut self, pid: Pid, path: String) -> LinuxResult {
        let id = self
            .fs
            .open_dirs
            .open(path)
            .ok_or(LinuxError::TooManyFiles)?;
        let installed = self
            .processes
            .get_mut(pid)
            .ok_or(Errno::Inval)
            .and_then(|p| p.files.install(Descriptor::Dir { id }));
        if installed.is_err() {
            self.fs.open_dirs.drop_ref(id);
        }
        Ok(installed?)
    }

    pub(super) fn mkdir(&mut self, pid: Pid, dirfd: i64, path: UserPtr, mode: u32) -> LinuxResult {
        let path = self.resolve_path(pid, dirfd, path)?;
        if self.exists(pid, &path) {
            return Err(Errno::Exists.into());
        }
        self.read_only_check(pid, &path)?;
        self.heap_reserve_check()?;
        self.stamp_volume();
        self.fs.mkdir(&path).map_err(fs_fail)?;
        let (umask, ids) = self
            .linux_state(pid)
            .map_or((0o022, Default::default()), |s| (s.umask, s.ids));
        let perm = mode & !umask & 0o7777;
        match self.fs.volume_ino(&path) {
            Some(ino) => {
                let _ = self.fs.disk.home_set_perm(ino, perm);
            }
            None => {
                let now = self.now_seconds();
                self.file_meta.set(
                    dir_key(&path),
                    FileMeta {
                        perm,
                        uid: ids.euid(),
                        gid: ids.egid(),
                        atime: now,
                        mtime: now,
                        ctime: now,
                    },
                );
            }
        }
        Ok(0)
    }

    /// `unlink`/`unlinkat` (`AT_REMOVEDIR`: `rmdir`). A file's data lives
    /// on while it is open or mapped.
    pub(super) fn unlink_at(
        &mut self,
        pid: Pid,
        dirfd: i64,
        path: UserPtr,
        flags: u32,
    ) -> LinuxResult {
        if flags & !abi::AT_REMOVEDIR != 0 {
            return Err(Errno::Inval.into());
        }
        let path = self.resolve_path(pid, dirfd, path)?;
        self.read_only_check(pid, &path)?;
        self.stamp_volume();
        if flags & abi::AT_REMOVEDIR != 0 {
            self.fs.rmdir(&path).map_err(fs_fail)?;
            self.file_meta.remove(dir_key(&path));
            return Ok(0);
        }
        match self.fs.lookup(&path) {
            Some(Node::Dir) => Err(LinuxError::IsDir.into()),
            None => {
                // ENOTDIR when a folder on the way is a file.
                self.fs.unlink(&path).map_err(fs_fail)?;
                Err(Errno::NoEnt.into())
            }
            Some(Node::File(id)) => {
                // /tmp and /dev/shm are sticky (1777): only a file's owner
                // (or root) removes it.
                let meta = self.meta_of(id);
                self.owner_check(pid, &meta)?;
                self.fs.unlink(&path).map_err(fs_fail)?;
                self.reap_orphans();
                Ok(0)
            }
        }
    }

    /// `rename`/`renameat`/`renameat2` (flags 0 only).
    pub(super) fn rename(
        &mut self,
        pid: Pid,
        olds: (i64, UserPtr),
        news: (i64, UserPtr),
        flags: u32,
    ) -> LinuxResult {
        if flags != 0 {
            return Err(Errno::Inval.into());
        }
        let old = self.resolve_path(pid, olds.0, olds.1)?;
        let new = self.resolve_path(pid, news.0, news.1)?;
        self.read_only_check(pid, &old)?;
        self.read_only_check(pid, &new)?;
        self.heap_reserve_check()?;
        self.stamp_volume();
        self.fs.rename(&old, &new).map_err(fs_fail)?;
        // A file the new name replaced may be held by nothing.
        self.reap_orphans();
        Ok(0)
    }

    /// `getdents64`: `linux_dirent64` records from the descriptor's
    /// position (`.` and `..` first, then the entries in name order), as
    /// many whole records as `count` bytes hold; 0 at the end. `EINVAL`
    /// when not even one record fits.
    pub(super) fn getdents(&mut self, pid: Pid, fd: i64, buf: UserPtr, count: u64) -> LinuxResult {
        let Descriptor::Dir { id } = self.descriptor(pid, fd)? else {
            return Err(LinuxError::NotDir.into());
        };
        let open = self.fs.open_dirs.get(id).ok_or(Errno::BadFd)?.clone();
        let count = count.min(crate::syscall::CHUNK as u64) as usize;
        self.check_writable(pid, buf, count)?;
        let mut out: Vec<u8> = Vec::new();
        out.try_reserve_exact(count).map_err(|_| Errno::NoMem)?;
        let mut position = open.position.clone();
        let mut read = open.read;
        let parent = normalize(&alloc::format!("{}/..", open.path)).unwrap_or_default();
        loop {
            let (name, ino, next) = match &position {
                DirPosition::Start => (".", dir_ino(&open.path), DirPosition::AfterDot),
                DirPosition::AfterDot => ("..", dir_ino(&parent), DirPosition::AfterDotDot),
                DirPosition::End => break,
                DirPosition::AfterDotDot | DirPosition::After(_) => {
                    let (after, end) =
                        self.next_entries(&open.path, &position, &mut out, count, &mut read)?;
                    if end {
                        position = DirPosition::End;
                    } else if let Some(after) = after {
                        position = DirPosition::After(after);
                    }
                    break;
                }
            };
            if !put_dirent(&mut out, count, ino, read + 1, abi::DT_DIR, name.as_bytes()) {
                break;
            }
            read += 1;
            position = next;
        }
        if out.is_empty() && position != DirPosition::End {
            // Not even one record fits.
            return Err(Errno::Inval.into());
        }
        self.copy_out(pid, buf, &out)?;
        if let Some(d) = self.fs.open_dirs.get_mut(id) {
            d.position = position;
            d.read = read;
        }
        Ok(out.len() as i64)
    }

    /// Appends the records of the entries after `position` in directory
    /// `dir` to `out` (within `count`); returns the path of the last one
    /// appended and whether the listing ended.
    fn next_entries(
        &mut self,
        dir: &str,
        position: &DirPosition,
        out: &mut Vec<u8>,
        count: usize,
        read: &mut u64,
    ) -> Result<(Option<String>, bool), Fail> {
        let mut after = match position {
            DirPosition::After(p) => Some(p.clone()),
            _ => None,
        };
        let mut text: Vec<u8> = Vec::new();
        text.try_reserve_exact(DENTS_STEP)
            .map_err(|_| Errno::NoMem)?;
        let mut end = false;
        'steps: loop {
            text.clear();
            let Some(_) = self.fs.list_step(dir, after.as_deref(), &mut text) else {
                end = true;
                break;
            };
            let lines = core::str::from_utf8(&text).map_err(|_| Errno::Io)?;
            for line in lines.lines() {
                let (name, is_dir) = match line.strip_suffix('/') {
                    Some(n) => (n, true),
                    None => (line, false),
                };
                let full = if dir == "/" {
                    alloc::format!("/{name}")
                } else {
                    alloc::format!("{dir}/{name}")
                };
                let (ino, kind) = if is_dir {
                    (dir_ino(&full), abi::DT_DIR)
                } else {
                    match self.fs.lookup(&full) {
                        Some(Node::File(id)) => (file_ino(id), abi::DT_REG),
                        _ => (dir_ino(&full), abi::DT_DIR),
                    }
                };
                if !put_dirent(out, count, ino, *read + 1, kind, name.as_bytes()) {
                    break 'steps;
                }
                *read += 1;
                after = Some(full);
            }
        }
        Ok((after, end))
    }

    /// `lseek` on a directory: only back to its start (`rewinddir`).
    pub(super) fn seek_dir(&mut self, id: u32, offset: i64, whence: u32) -> LinuxResult {
        if whence != abi::SEEK_SET || offset != 0 {
            return Err(Errno::Inval.into());
        }
        let d = self.fs.open_dirs.get_mut(id).ok_or(Errno::BadFd)?;
        d.position = DirPosition::Start;
        d.read = 0;
        Ok(0)
    }

    // ---- attributes ----

    /// `access`/`faccessat`: whether the caller (its real ids, or the
    /// effective ones with `AT_EACCESS`) may read, write or run `path`.
    pub(super) fn access(
        &mut self,
        pid: Pid,
        dirfd: i64,
        path: UserPtr,
        mode: u32,
        flags: u32,
    ) -> LinuxResult {
        let known = abi::AT_EACCESS | abi::AT_SYMLINK_NOFOLLOW | abi::AT_EMPTY_PATH;
        if mode & !(abi::R_OK | abi::W_OK | abi::X_OK) != 0 || flags & !known != 0 {
            return Err(Errno::Inval.into());
        }
        let path = self.resolve_path(pid, dirfd, path)?;
        let (meta, is_dir) = match (self.special_of(pid, &path), self.fs.lookup(&path)) {
            (Some(Special::ProcDir), _) | (_, Some(Node::Dir)) => (self.dir_meta(&path), true),
            (Some(_), _) => (
                FileMeta {
                    perm: 0o666,
                    ..FileMeta::default()
                },
                false,
            ),
            (None, Some(Node::File(id))) => (self.meta_of(id), false),
            (None, None) => return Err(Errno::NoEnt.into()),
        };
        if mode == abi::F_OK {
            return Ok(0);
        }
        if mode & abi::W_OK != 0 && is_read_only(&path) {
            return Err(Errno::Access.into());
        }
        let ids = self.linux_state(pid).map(|s| s.ids).unwrap_or_default();
        let (uid, gid) = if flags & abi::AT_EACCESS != 0 {
            (ids.euid(), ids.egid())
        } else {
            (ids.uid[0], ids.gid[0])
        };
        let allowed = if uid == 0 {
            // Root reads and writes anything; runs what has an x bit.
            let x = is_dir || meta.perm & 0o111 != 0;
            mode & abi::X_OK == 0 || x
        } else {
            let bits = if meta.uid == uid {
                meta.perm >> 6
            } else if meta.gid == gid {
                meta.perm >> 3
            } else {
                meta.perm
            } & 7;
            mode & !bits == 0
        };
        if !allowed {
            return Err(Errno::Access.into());
        }
        Ok(0)
    }

    /// `chmod`/`fchmodat`: the owner (or root) sets the permission bits.
    pub(super) fn chmod(&mut self, pid: Pid, dirfd: i64, path: UserPtr, mode: u32) -> LinuxResult {
        let path = self.resolve_path(pid, dirfd, path)?;
        self.read_only_check(pid, &path)?;
        match self.fs.lookup(&path) {
            Some(Node::File(id)) => self.chmod_file(pid, id, mode),
            Some(Node::Dir) => self.chmod_dir(pid, &path, mode),
            None => Err(Errno::NoEnt.into()),
        }
    }

    /// `fchmod`: as `chmod`, on an open file or directory.
    pub(super) fn fchmod(&mut self, pid: Pid, fd: i64, mode: u32) -> LinuxResult {
        match self.descriptor(pid, fd)? {
            Descriptor::File(f) => {
                let read_only = self.fs.path_of(f.file).is_some_and(|p| is_read_only(&p));
                if read_only {
                    return Err(Errno::Perm.into());
                }
                self.chmod_file(pid, f.file, mode)
            }
            Descriptor::Dir { id } => {
                let path = self.fs.open_dirs.get(id).ok_or(Errno::BadFd)?.path.clone();
                if is_read_only(&path) {
                    return Err(Errno::Perm.into());
                }
                self.chmod_dir(pid, &path, mode)
            }
            _ => Err(Errno::Inval.into()),
        }
    }

    fn chmod_file(&mut self, pid: Pid, id: FileId, mode: u32) -> LinuxResult {
        let mut meta = self.meta_of(id);
        self.owner_check(pid, &meta)?;
        self.heap_reserve_check()?;
        meta.perm = mode & 0o7777;
        meta.ctime = self.now_seconds();
        if crate::mount::is_volume_file(id) {
            self.stamp_volume();
            let ino = (id.0 - (1 << 48)) as u32;
            self.fs
                .disk
                .home_set_perm(ino, meta.perm)
                .map_err(fs_fail)?;
        }
        self.file_meta.set(id, meta);
        Ok(0)
    }

    fn chmod_dir(&mut self, pid: Pid, path: &str, mode: u32) -> LinuxResult {
        let mut meta = self.dir_meta(path);
        self.owner_check(pid, &meta)?;
        self.heap_reserve_check()?;
        meta.perm = mode & 0o7777;
        meta.ctime = self.now_seconds();
        match self.fs.volume_ino(path) {
            Some(ino) => {
                self.stamp_volume();
                self.fs
                    .disk
                    .home_set_perm(ino, meta.perm)
                    .map_err(fs_fail)?;
            }
            None => self.file_meta.set(dir_key(path), meta),
        }
        Ok(0)
    }

    /// `truncate`: the file at `path` gets length `len` (as `ftruncate`
    /// through a descriptor the call opens and closes).
    pub(super) fn truncate(&mut self, pid: Pid, path: UserPtr, len: i64) -> LinuxResult {
        let path = self.resolve_path(pid, abi::AT_FDCWD, path)?;
        if len < 0 {
            return Err(Errno::Inval.into());
        }
        let id = match self.fs.lookup(&path) {
            Some(Node::File(id)) => id,
            Some(Node::Dir) => return Err(LinuxError::IsDir.into()),
            None if self.special_of(pid, &path).is_some() => return Err(Errno::Inval.into()),
            None => return Err(Errno::NoEnt.into()),
        };
        if is_read_only(&path) {
            return Err(Errno::Perm.into());
        }
        let ids = self.linux_state(pid).map(|s| s.ids).unwrap_or_default();
        if !self.may_open(id, &ids, false, true) {
            return Err(Errno::Access.into());
        }
        if len as u64 > crate::fs::MAX_FILE_LEN {
            return Err(Errno::Inval.into());
        }
        let pages = (len as u64).div_ceil(neoos_abi::PAGE_SIZE as u64) as usize;
        if !self.fs.disk.has_room(id, pages) {
            return Err(Errno::NoSpace.into());
        }
        self.file_io().open_ref(id);
        let truncated = {
            let (memory, mut io) = self.memory_io();
            memory.file_truncate(&mut io, id, len as u64)
        };
        let closed = self.file_io().close_ref(id);
        truncated?;
        closed?;
        self.touch_file(id, Touch::Modify);
        Ok(0)
    }

    /// `readlink`/`readlinkat`: `/proc/self/exe` names the program; no
    /// other path is a link (`EINVAL`, or `ENOENT` when nothing is there).
    pub(super) fn readlink(
        &mut self,
        pid: Pid,
        dirfd: i64,
        path: UserPtr,
        buf: UserPtr,
        size: i64,
    ) -> LinuxResult {
        if size <= 0 {
            return Err(Errno::Inval.into());
        }
        let path = self.resolve_path(pid, dirfd, path)?;
        if self.special_of(pid, &path) != Some(Special::Exe) {
            if !self.exists(pid, &path) {
                return Err(Errno::NoEnt.into());
            }
            return Err(Errno::Inval.into());
        }
        let target = self.path_of(pid);
        let n = target.len().min(size as usize);
        self.copy_out(pid, buf, &target.as_bytes()[..n])?;
        Ok(n as i64)
    }

    /// `utimensat`: sets a file's access and modification times (now with
    /// no `times`, or per `UTIME_NOW`/`UTIME_OMIT`); a null `path` means
    /// descriptor `dirfd` itself.
    pub(super) fn utimensat(
        &mut self,
        pid: Pid,
        dirfd: i64,
        path: UserPtr,
        times: UserPtr,
        flags: u32,
    ) -> LinuxResult {
        if flags & !(abi::AT_SYMLINK_NOFOLLOW | abi::AT_EMPTY_PATH) != 0 {
            return Err(Errno::Inval.into());
        }
        let now = self.now_seconds();
        let (atime, mtime) = if times.is_null() {
            (Some(now), Some(now))
        } else {
            let raw = self.copy_in(pid, times, 32)?;
            let word =
                |i: usize| i64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
            let pick = |sec: i64, nsec: i64| -> Result<Option<u64>, Fail> {
                match nsec {
                    abi::UTIME_NOW => Ok(Some(now)),
                    abi::UTIME_OMIT => Ok(None),
                    0..=999_999_999 if sec >= 0 => Ok(Some(sec as u64)),
                    _ => Err(Errno::Inval.into()),
                }
            };
            (pick(word(0), word(1))?, pick(word(2), word(3))?)
        };
        let target = if path.is_null() {
            match self.descriptor(pid, dirfd)? {
                Descriptor::File(f) => Node::File(f.file),
                _ => return Err(Errno::Inval.into()),
            }
        } else {
            let path = self.resolve_path(pid, dirfd, path)?;
            if is_read_only(&path) {
                return Err(Errno::Perm.into());
            }
            self.fs.lookup(&path).ok_or(Errno::NoEnt)?
        };
        let Node::File(id) = target else {
            // Directories keep no times of their own in RAM.
            return Ok(0);
        };
        self.heap_reserve_check()?;
        let mut meta = self.meta_of(id);
        if let Some(a) = atime {
            meta.atime = a;
        }
        if let Some(m) = mtime {
            meta.mtime = m;
        }
        meta.ctime = now;
        if crate::mount::is_volume_file(id) {
            self.stamp_volume();
            let ino = (id.0 - (1 << 48)) as u32;
            let clamp = |t: Option<u64>| t.map(|t| t.min(u64::from(u32::MAX)) as u32);
            self.fs
                .disk
                .home_set_times(ino, clamp(atime), clamp(mtime))
                .map_err(fs_fail)?;
        }
        self.file_meta.set(id, meta);
        Ok(0)
    }

    // ---- I/O at an offset, clocks ----

    /// `pread64`/`pwrite64`: a read or write at `offset` that leaves the
    /// descriptor's position where it was (`ESPIPE` on a pipe or the
    /// console).
    pub(super) fn pread_write(
        &mut self,
        pid: Pid,
        fd: i64,
        buf: UserPtr,
        count: i64,
        offset: i64,
        write: bool,
    ) -> LinuxResult {
        let d = self.descriptor(pid, fd)?;
        let f = match d {
            Descriptor::File(f) => f,
            Descriptor::Dir { .. } => return Err(LinuxError::IsDir.into()),
            Descriptor::Zero | Descriptor::Null => {
                let call = if write {
                    crate::syscall::FileCall::Write { fd, buf, count }
                } else {
                    crate::syscall::FileCall::Read { fd, buf, count }
                };
                let done = self.call(pid, crate::syscall::Call::Files(call));
                return Ok(crate::user_reads::nested_result(done)?);
            }
            _ => return Err(LinuxError::IllegalSeek.into()),
        };
        if offset < 0 {
            return Err(Errno::Inval.into());
        }
        let call = if write {
            crate::syscall::FileCall::Write { fd, buf, count }
        } else {
            crate::syscall::FileCall::Read { fd, buf, count }
        };
        let result = self.at_offset(pid, fd, f, offset as u64, |k| {
            crate::user_reads::nested_result(k.call(pid, crate::syscall::Call::Files(call)))
        });
        Ok(result?)
    }

    /// Runs `io`, a read or write of descriptor `fd` (open file `f`), at
    /// `offset`: the descriptor's own position and append mode are the
    /// same after it, whatever `io` did.
    pub(crate) fn at_offset(
        &mut self,
        pid: Pid,
        fd: i64,
        f: OpenFile,
        offset: u64,
        io: impl FnOnce(&mut Self) -> Result<i64, Errno>,
    ) -> Result<i64, Errno> {
        let at = OpenFile {
            position: offset,
            // pwrite writes at the offset even with O_APPEND (as POSIX
            // says; Linux appends, which POSIX calls a bug).
            append: false,
            ..f
        };
        if let Some(p) = self.processes.get_mut(pid) {
            p.files.update(fd, Descriptor::File(at));
        }
        let result = io(self);
        // The descriptor's own position (and append mode) come back.
        if let Some(p) = self.processes.get_mut(pid) {
            if let Ok(Descriptor::File(now)) = p.files.get(fd) {
                if now.file == f.file {
                    p.files.update(fd, Descriptor::File(f));
                }
            }
        }
        result
    }

    /// `time`: seconds of the clock (which starts at boot).
    pub(super) fn time(&mut self, pid: Pid, out: UserPtr) -> LinuxResult {
        let now = self.now_seconds();
        if !out.is_null() {
            self.copy_out(pid, out, &now.to_le_bytes())?;
        }
        Ok(now as i64)
    }

    /// `gettimeofday`: seconds and microseconds of the clock; a time zone
    /// asked for is UTC (zero minutes west, no daylight saving).
    pub(super) fn gettimeofday(&mut self, pid: Pid, tv: UserPtr, tz: UserPtr) -> LinuxResult {
        if !tv.is_null() {
            self.check_writable(pid, tv, 16)?;
        }
        if !tz.is_null() {
            self.check_writable(pid, tz, 8)?;
        }
        let ticks = self.platform.ticks();
        let seconds = ticks / TICKS_PER_SECOND;
        let micros = (ticks % TICKS_PER_SECOND) * (1_000_000 / TICKS_PER_SECOND);
        if !tv.is_null() {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&seconds.to_le_bytes());
            b[8..].copy_from_slice(&micros.to_le_bytes());
            self.copy_out(pid, tv, &b)?;
        }
        if !tz.is_null() {
            self.copy_out(pid, tz, &[0u8; 8])?;
        }
        Ok(0)
    }

    // ---- special files ----

    /// Opens special file `what` for `pid` with Linux access mode `access`
    /// (0 read, 1 write, 2 both).
    pub(super) fn open_special(&mut self, pid: Pid, what: Special, access: u32) -> LinuxResult {
        let descriptor = match what {
            Special::Null => Descriptor::Null,
            Special::Zero => Descriptor::Zero,
            Special::ProcDir => return Err(Errno::Access.into()),
            Special::Exe => {
                // The link leads to the program's file.
                let path = self.path_of(pid);
                return self.open_path(pid, &path, access).map_err(Fail::from);
            }
            Special::Maps | Special::Meminfo => {
                if access != 0 {
                    return Err(Errno::Access.into());
                }
                let (name, text) = match what {
                    Special::Maps => (procfs::SELF_MAPS, self.maps_text(pid)?),
                    _ => (procfs::MEMINFO, self.meminfo_text()),
                };
                let file = self
                    .fs
                    .create_unnamed(name, text.as_bytes())
                    .map_err(fs_fail)?;
                self.file_io().open_ref(file);
                Descriptor::File(OpenFile {
                    file,
                    access: FileAccess::ReadOnly,
                    append: false,
                    position: 0,
                })
            }
        };
        let installed = self
            .processes
            .get_mut(pid)
            .ok_or(Errno::Inval)
            .and_then(|p| p.files.install(descriptor));
        if installed.is_err() {
            let _ = self.file_io().close(descriptor);
            self.reap_released_orphans();
        }
        Ok(installed?)
    }

    /// The text of `/proc/PID/maps` for `pid`.
    fn maps_text(&self, pid: Pid) -> Result<String, Fail> {
        let space = self.space_of(pid)?;
        let brk = match self.processes.get(pid).map(|p| p.abi) {
            Some(super::ProgramAbi::Linux(_)) => self.memory.program_break(space),
            _ => None,
        };
        let stack_low = neoos_abi::layout::STACK_TOP - neoos_abi::layout::STACK_SIZE;
        let mut out = String::new();
        for m in self.memory.maps(space) {
            if out.try_reserve(160).is_err() {
                return Err(Errno::NoMem.into());
            }
            match m.object {
                MapObject::File(id) => {
                    let path = self.fs.path_of(id);
                    let path = path.as_deref().unwrap_or("");
                    let deleted = self.fs.lookup(path) != Some(Node::File(id));
                    let name = MapName::Path { path, deleted };
                    procfs::maps_line(&mut out, &m, (0, 1), file_ino(id), name);
                }
                MapObject::Shm(shm) => {
                    procfs::maps_line(&mut out, &m, (0, 1), 0, MapName::SysV(shm.0))
                }
                MapObject::Anonymous => {
                    let label = if m.start < neoos_abi::layout::STACK_TOP && m.end > stack_low {
                        MapName::Label("[stack]")
                    } else if brk
                        .is_some_and(|b| m.start >= b.start && m.start < b.end.max(b.start + 1))
                    {
                        MapName::Label("[heap]")
                    } else {
                        MapName::None
                    };
                    procfs::maps_line(&mut out, &m, (0, 0), 0, label);
                }
            }
        }
        Ok(out)
    }

    /// The text of `/proc/meminfo`.
    fn meminfo_text(&self) -> String {
        let (total, free) = self.platform.frame_counts();
        let cached = self.fs.disk.reserved_pages() as u64;
        let disk = self.fs.disk.device_counters();
        procfs::meminfo(
            total,
            free,
            cached,
            disk,
            self.platform.ipi_counters(),
            self.platform.copy_counters(),
            crate::platform::SharedFaultCounters {
                resolved: self.memory.shared_faults(),
                at_once: self.platform.faults_at_once(),
                map_calls: self.memory.shared_map_calls(),
                brk_calls: self.memory.shared_brk_calls(),
                remap_calls: self.memory.shared_remap_calls(),
            },
        )
    }
}

/// Appends one `linux_dirent64` record to `out` if it fits in `count`
/// bytes; whether it did.
fn put_dirent(out: &mut Vec<u8>, count: usize, ino: u64, off: u64, kind: u8, name: &[u8]) -> bool {
    let len = (DIRENT_HEADER + name.len() + 1).next_multiple_of(8);
    if out.len() + len > count {
        return false;
    }
    out.extend_from_slice(&ino.to_le_bytes());
    out.extend_from_slice(&off.to_le_bytes());
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(name);
    out.resize(out.len() + len - DIRENT_HEADER - name.len(), 0);
    true
}
