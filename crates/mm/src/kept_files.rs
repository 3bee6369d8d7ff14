//! Kept file objects: a file object of the disk ([`crate::Pager::evictable`])
//! whose last reference goes while it has dirty pages (the closes and the
//! mapping teardown of an exit or an exec, a POSIX `munmap` of the last
//! mapping of a file no descriptor holds) is not written back there, under
//! the kernel's lock, when the kernel asks so
//! ([`MemorySystem::set_keep_released`]): it keeps one handle reference,
//! the kernel's ([`crate::object::FileState::kept`]), and stays in the
//! page cache, where every call finds it as before (an `open` of the file
//! takes it up again, `fsync` writes it). The kernel writes such objects
//! back in its own time without the lock and then lets them go
//! ([`MemorySystem::file_release_kept`]); a failed write leaves them
//! kept, their pages dirty, for the next try. Nothing is lost and nobody
//! waits with the lock held.

use crate::errno::Errno;
use crate::hw::{FileId, Io};
use crate::object::{ObjectKind, ObjectStore};
use crate::system::MemorySystem;
use crate::tlb::free_frames;
use crate::ObjectId;
use alloc::vec::Vec;

impl ObjectStore {
    /// Object `id` has just lost its last reference: when keeping is on
    /// and it is a disk file object with dirty pages, it takes the
    /// kernel's reference instead of going (`true`).
    pub(crate) fn keep_if_dirty(&mut self, io: &Io, id: ObjectId) -> bool {
        if !self.keep_released {
            return false;
        }
        let Some(o) = self.objects.get_mut(&id) else {
            return false;
        };
        let dirty = !o.dirty.is_empty();
        let ObjectKind::File(f) = &mut o.kind else {
            return false;
        };
        if !dirty || f.kept || !io.pager.evictable(f.file) {
            return false;
        }
        f.kept = true;
        o.handle_refs += 1;
        self.kept_files += 1;
        true
    }

    /// Whether the pages of object `id` an exit leaves dirty may stay so
    /// for the kernel to write later (keeping is on and it is a disk
    /// file object): the exit does not write them itself.
    pub(crate) fn writes_later(&self, io: &Io, id: ObjectId) -> bool {
        self.keep_released
            && self
                .get(id)
                .and_then(|o| o.file())
                .is_some_and(|f| io.pager.evictable(f.file))
    }

    /// Drops the kernel's reference to kept object `id` (the object goes
    /// if it was the last, writing what is dirty as any last release
    /// does).
    fn unkeep(&mut self, io: &mut Io, id: ObjectId) -> Result<(), Errno> {
        let Some(o) = self.objects.get_mut(&id) else {
            return Ok(());
        };
        let ObjectKind::File(f) = &mut o.kind else {
            return Ok(());
        };
        if !f.kept {
            return Ok(());
        }
        f.kept = false;
        crate::object::count_down(&mut o.handle_refs, "handle references");
        self.kept_files = self.kept_files.saturating_sub(1);
        let mut frees = Vec::new();
        let result = self.release_if_unused(io, id, &mut frees);
        free_frames(&mut frees, io.frames, self.frames_in_use.get_mut());
        result
    }
}

impl MemorySystem {
    /// Whether a disk file object that loses its last reference with dirty
    /// pages is kept for the caller to write back (`true`: the kernel,
    /// which writes them without its lock held) or written at once
    /// (`false`, the default). Turning it off does not release the objects
    /// kept so far ([`Self::release_kept_now`] does).
    pub fn set_keep_released(&mut self, keep: bool) {
        self.store.keep_released = keep;
    }

    /// How many file objects are kept.
    pub fn kept_file_count(&self) -> usize {
        self.store.kept_files
    }

    /// Whether `file`'s object is kept (it holds the kernel's reference).
    pub fn file_kept(&self, file: FileId) -> bool {
        self.store
            .cached_file(file)
            .and_then(|o| o.file())
            .is_some_and(|f| f.kept)
    }

    /// After a write-back of kept `file`: drops the kernel's reference
    /// unless it is the last and the object still has dirty pages (stored
    /// meanwhile through a descriptor or mapping since closed, or a write
    /// that failed): `Ok(true)` when dropped (the object gone if nothing
    /// else holds it; a file not kept counts as dropped), `Ok(false)` when
    /// it is to be written again.
    pub fn file_release_kept(&mut self, io: &mut Io, file: FileId) -> Result<bool, Errno> {
        let Ok(id) = self.store.file_object(file) else {
            return Ok(true);
        };
        let Some(o) = self.store.get(id) else {
            return Ok(true);
        };
        let held_elsewhere =
            o.handle_refs > 1 || o.map_refs() > 0 || o.children.iter().any(Option::is_some);
        if !held_elsewhere && !o.dirty.is_empty() {
            return Ok(false);
        }
        self.store.unkeep(io, id).map(|()| true)
    }

    /// Lets every kept object go now, writing its dirty pages under the
    /// caller's lock as a release did before keeping (the kernel's last
    /// act before it stops: nothing else runs). Keeping is turned off
    /// first, so none is kept again. The first error met; every object
    /// goes all the same.
    pub fn release_kept_now(&mut self, io: &mut Io) -> Result<(), Errno> {
        self.store.keep_released = false;
        let mut result = Ok(());
        let mut after = None;
        while let Some((file, id)) = self.next_cached_file(after) {
            after = Some(file);
            if self.file_kept(file) {
                result = result.and(self.store.unkeep(io, id));
            }
        }
        result
    }
}
