//! The reads a namespace call's change of the volume makes beyond the walk
//! of its paths (issue 12 item 1): the bitmap and inode-table block an
//! allocation picks (a creating `open`, `mkdir`), the indirect blocks,
//! bitmaps and last block a truncate reads (`truncate`, `ftruncate`, an
//! `open` with `O_TRUNC`), those freeing an unlinked file's inode reads,
//! and the group descriptor and superblock blocks of their counts. Once
//! the walk of the call's paths finds everything cached
//! (`crate::metadata_reads`), the change the call will make is looked at
//! the same way, without reading ([`neoos_ext2::Ext2::blocks_to_change`]);
//! the blocks it lists are read with the caller asleep and the call made
//! again, as for the walk's (the same rounds, at most
//! [`crate::metadata_reads::MOST_ROUNDS`]). The look is a forecast from
//! the state when it is made: what changes meanwhile, or what it cannot
//! see (a directory that grows a block), the call reads under the lock
//! as before.

use neoos_abi::open::{O_CREAT, O_TRUNC};
use neoos_ext2::Change;
use neoos_mm::FileId;

use crate::fs::Node;
use crate::kernel::Kernel;
use crate::linux::LinuxCall;
use crate::platform::Platform;

/// The change a call will make, named by its paths (the walk's) or its
/// file, resolved once the walk is cached ([`Kernel::change_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeOf {
    /// The file at the call's first path cut to `size` bytes (when it is
    /// there; created otherwise when `creates`).
    Truncate { size: u64, creates: bool },
    /// A new inode at the call's first path (when nothing is there).
    Create { directory: bool },
    /// What the call's first path names freed, unless something holds it.
    Release,
    /// What the call's second path names freed (a `rename` over it),
    /// unless something holds it.
    ReleaseTarget,
    /// Volume file `file` cut to `size` bytes.
    TruncateFile { file: FileId, size: u64 },
    /// Volume file `file` freed if it is an orphan (its last close).
    ReleaseFile { file: FileId },
}

/// The change a `close` of descriptor `d` may make: freeing its file,
/// when that is an orphan on the volume (its last close frees it).
pub(crate) fn close_change(d: crate::files::Descriptor) -> Option<ChangeOf> {
    match d {
        crate::files::Descriptor::File(f) if crate::mount::is_volume_file(f.file) => {
            Some(ChangeOf::ReleaseFile { file: f.file })
        }
        _ => None,
    }
}

/// The change of a NeoOS `open` with `mode`, if it may make one.
pub(crate) fn neo_open_change(mode: i64) -> Option<ChangeOf> {
    let mode = u32::try_from(mode).ok()?;
    open_change(mode)
}

/// The change of an `open` with `flags` (NeoOS and Linux share the bits).
fn open_change(flags: u32) -> Option<ChangeOf> {
    let creates = flags & O_CREAT != 0;
    match flags & O_TRUNC != 0 {
        true => Some(ChangeOf::Truncate { size: 0, creates }),
        false if creates => Some(ChangeOf::Create { directory: false }),
        false => None,
    }
}

impl<P: Platform> Kernel<P> {
    /// The change Linux call `call` of `pid` makes on the volume, if it
    /// may make one whose reads can be foreseen.
    pub(crate) fn linux_call_change(
        &self,
        pid: crate::process::Pid,
        call: &LinuxCall,
    ) -> Option<ChangeOf> {
        match *call {
            LinuxCall::Open { flags, .. } => open_change(flags),
            LinuxCall::Truncate { len, .. } => Some(ChangeOf::Truncate {
                size: u64::try_from(len).ok()?,
                creates: false,
            }),
            LinuxCall::Mkdir { .. } => Some(ChangeOf::Create { directory: true }),
            LinuxCall::Unlink { .. } => Some(ChangeOf::Release),
            LinuxCall::Rename { .. } => Some(ChangeOf::ReleaseTarget),
            LinuxCall::Ftruncate { fd, len } => match self.descriptor(pid, fd) {
                Ok(crate::files::Descriptor::File(f)) if crate::mount::is_volume_file(f.file) => {
                    Some(ChangeOf::TruncateFile {
                        file: f.file,
                        size: u64::try_from(len).ok()?,
                    })
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// The blocks `change` (of the call naming `paths`) will read that are
    /// not cached (at most `most`): nothing when it makes no change on the
    /// volume or will read nothing.
    pub(crate) fn change_blocks_missing(
        &mut self,
        paths: &[Option<alloc::string::String>; 2],
        change: ChangeOf,
        most: usize,
    ) -> alloc::vec::Vec<u32> {
        let (path, change) = match change {
            ChangeOf::ReleaseTarget => (paths[1].as_deref(), ChangeOf::Release),
            change => (paths[0].as_deref(), change),
        };
        match self.change_of(path, change) {
            Some(change) => self.fs.disk.home_blocks_to_change(change, most),
            None => alloc::vec::Vec::new(),
        }
    }

    /// `change` as the volume's [`Change`], its inodes looked up (the
    /// walk has cached what that reads); `None` when it changes nothing
    /// there.
    fn change_of(&self, path: Option<&str>, change: ChangeOf) -> Option<Change> {
        match change {
            ChangeOf::TruncateFile { file, size } => {
                let ino = crate::mount::home_ino_of(file)?;
                return Some(Change::Truncate { ino, size });
            }
            ChangeOf::ReleaseFile { file } => {
                let ino = crate::mount::home_ino_of(file)?;
                return self.fs.is_orphan(file).then_some(Change::Release { ino });
            }
            _ => {}
        }
        let path = path?;
        crate::mount::below_home(path)?;
        let found = self.fs.lookup(path);
        match (change, found) {
            (ChangeOf::Truncate { size, .. }, Some(Node::File(file))) => Some(Change::Truncate {
                ino: crate::mount::home_ino_of(file)?,
                size,
            }),
            (ChangeOf::Truncate { creates: true, .. }, None) => self.create_change(path, false),
            (ChangeOf::Create { directory }, None) => self.create_change(path, directory),
            (ChangeOf::Release, Some(Node::File(file))) => {
                // Held open or mapped: its inode stays until its last close.
                if self.memory.file_size(file).is_ok() {
                    return None;
                }
                Some(Change::Release {
                    ino: crate::mount::home_ino_of(file)?,
                })
            }
            (ChangeOf::Release, Some(Node::Dir)) => Some(Change::Release {
                ino: self.fs.volume_ino(path)?,
            }),
            _ => None,
        }
    }

    fn create_change(&self, path: &str, directory: bool) -> Option<Change> {
        let dir = self.fs.volume_ino(crate::fs::parent_dir(path))?;
        Some(Change::Create { dir, directory })
    }
}

impl<P: Platform> Kernel<P> {
    /// Before a `close` of descriptor `fd` of `pid` whose file is an
    /// orphan on the volume (the close may free it): the reads freeing it
    /// makes, started, and the wait after which the close is made again.
    /// `None` (the common case: no orphan) makes it now.
    #[inline]
    pub(crate) fn reads_before_close(
        &mut self,
        pid: crate::process::Pid,
        fd: i64,
    ) -> Option<crate::syscall::SchedulerCall> {
        if self.fs.orphan_count() == 0 {
            return None;
        }
        let change = close_change(self.descriptor(pid, fd).ok()?)?;
        self.metadata_reads_for(pid, &[None, None], Some(change))
    }
}
