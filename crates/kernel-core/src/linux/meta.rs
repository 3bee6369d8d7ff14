//! What Linux's `struct stat` says of a file beyond its size: permission
//! bits (set when a Linux program creates it, from its mode and umask) and
//! the access, modification and change times, kept per file id. Times are
//! whole seconds of the kernel clock (`CLOCK_REALTIME` counts from boot).
//! A file with no record (made at boot, or by a NeoOS program before any
//! change) reads as mode 0644 at time 0.

use alloc::collections::BTreeMap;

use neoos_abi::TICKS_PER_SECOND;
use neoos_mm::{Errno, FileId};

use crate::kernel::Kernel;
use crate::platform::Platform;

/// Permission bits of a file created without a record.
pub const DEFAULT_PERM: u32 = 0o644;

/// One file's metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileMeta {
    /// Permission bits (`0o7777` at most).
    pub perm: u32,
    /// Owner and group.
    pub uid: u32,
    pub gid: u32,
    pub atime: u64,
    pub mtime: u64,
    pub ctime: u64,
}

impl Default for FileMeta {
    fn default() -> Self {
        FileMeta {
            perm: DEFAULT_PERM,
            uid: 0,
            gid: 0,
            atime: 0,
            mtime: 0,
            ctime: 0,
        }
    }
}

/// What happened to a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    /// Its data was read (or mapped).
    Access,
    /// Its data or length changed.
    Modify,
}

/// Every file's metadata record.
#[derive(Default)]
pub struct FileMetaTable {
    records: BTreeMap<FileId, FileMeta>,
}

impl FileMetaTable {
    /// The metadata of `file`.
    pub fn get(&self, file: FileId) -> FileMeta {
        self.records.get(&file).copied().unwrap_or_default()
    }

    /// The record of `file`, if one was made.
    pub fn find(&self, file: FileId) -> Option<FileMeta> {
        self.records.get(&file).copied()
    }

    /// Forgets the record of `file` (it is gone).
    pub fn remove(&mut self, file: FileId) {
        self.records.remove(&file);
    }

    /// Records `meta` for `file`.
    pub fn set(&mut self, file: FileId, meta: FileMeta) {
        self.records.insert(file, meta);
    }
}

impl<P: Platform> Kernel<P> {
    /// The clock in whole seconds, as `stat` times are.
    pub(crate) fn now_seconds(&self) -> u64 {
        self.platform.ticks() / TICKS_PER_SECOND
    }

    /// Marks `file` read or modified now. The record is only made when the
    /// heap has room above its reserve (a time is not worth failing a call).
    pub(crate) fn touch_file(&mut self, file: FileId, touch: Touch) {
        let now = self.now_seconds();
        let before = self.meta_of(file);
        let mut meta = before;
        match touch {
            Touch::Access => meta.atime = now,
            Touch::Modify => {
                meta.mtime = now;
                meta.ctime = now;
            }
        }
        if before != meta && self.heap_reserve_check().is_ok() {
            self.file_meta.set(file, meta);
        }
    }

    /// Whether a process with effective ids `ids` may open `file` to
    /// read and/or write (root may always).
    pub(crate) fn may_open(
        &self,
        file: FileId,
        ids: &super::Credentials,
        read: bool,
        write: bool,
    ) -> bool {
        if ids.euid() == 0 {
            return true;
        }
        let meta = self.meta_of(file);
        let bits = if meta.uid == ids.euid() {
            meta.perm >> 6
        } else if meta.gid == ids.egid() {
            meta.perm >> 3
        } else {
            meta.perm
        };
        (!read || bits & 4 != 0) && (!write || bits & 2 != 0)
    }

    /// Records the permission bits and owner of a file a Linux program
    /// created.
    pub(crate) fn set_created(
        &mut self,
        file: FileId,
        perm: u32,
        owner: (u32, u32),
    ) -> Result<(), Errno> {
        self.heap_reserve_check()?;
        let now = self.now_seconds();
        if let Some(ino) = self.fs.path_of(file).and_then(|p| self.fs.volume_ino(&p)) {
            // The inode keeps the bits (the owner stays the volume's).
            self.fs.disk.home_set_perm(ino, perm)?;
        }
        self.file_meta.set(
            file,
            FileMeta {
                perm: perm & 0o7777,
                uid: owner.0,
                gid: owner.1,
                atime: now,
                mtime: now,
                ctime: now,
            },
        );
        Ok(())
    }
}
