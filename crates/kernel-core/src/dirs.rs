//! Directories open as descriptors (a Linux program's `open` of a
//! directory, for `getdents64`, `fchdir` and the `*at` calls): each is its
//! normalized path and a read position, shared by the descriptors `dup` and
//! `fork` copy (one open file description, as POSIX has it), counted like
//! pipe ends and gone with its last descriptor.

use alloc::collections::BTreeMap;
use alloc::string::String;

/// Most directories open at once, over all processes.
pub const MAX_OPEN_DIRS: usize = 1024;

/// Where the next `getdents64` of an open directory starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DirPosition {
    /// At the start: `.` comes next.
    #[default]
    Start,
    /// `.` was read: `..` comes next.
    AfterDot,
    /// `.` and `..` were read: the first entry comes next.
    AfterDotDot,
    /// After the entry with this full path (entries come in name order).
    After(String),
    /// Every entry was read.
    End,
}

/// One open directory.
#[derive(Clone, Debug)]
pub struct OpenDir {
    /// Its normalized absolute path.
    pub path: String,
    pub position: DirPosition,
    /// Entries read so far (what `d_off` counts).
    pub read: u64,
    refs: u32,
}

/// Every open directory, by id.
#[derive(Default)]
pub struct DirTable {
    dirs: BTreeMap<u32, OpenDir>,
    next: u32,
}

impl DirTable {
    /// Opens directory `path` (normalized) with one reference; `None` when
    /// [`MAX_OPEN_DIRS`] are open.
    pub fn open(&mut self, path: String) -> Option<u32> {
        if self.dirs.len() >= MAX_OPEN_DIRS {
            return None;
        }
        let mut id = self.next;
        while self.dirs.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.next = id.wrapping_add(1);
        self.dirs.insert(
            id,
            OpenDir {
                path,
                position: DirPosition::Start,
                read: 0,
                refs: 1,
            },
        );
        Some(id)
    }

    /// The open directory `id`.
    pub fn get(&self, id: u32) -> Option<&OpenDir> {
        self.dirs.get(&id)
    }

    /// The open directory `id`, to move its position.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut OpenDir> {
        self.dirs.get_mut(&id)
    }

    /// One more descriptor refers to `id` (`dup`, `fork`).
    pub fn add_ref(&mut self, id: u32) {
        if let Some(d) = self.dirs.get_mut(&id) {
            d.refs += 1;
        }
    }

    /// A descriptor of `id` closed: the last one closes the directory.
    pub fn drop_ref(&mut self, id: u32) {
        if let Some(d) = self.dirs.get_mut(&id) {
            d.refs -= 1;
            if d.refs == 0 {
                self.dirs.remove(&id);
            }
        }
    }

    /// How many directories are open.
    pub fn len(&self) -> usize {
        self.dirs.len()
    }

    /// Whether no directory is open.
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_reference_closes_a_directory() {
        let mut t = DirTable::default();
        let id = t.open("/tmp".into()).unwrap();
        t.add_ref(id);
        t.drop_ref(id);
        assert_eq!(t.get(id).map(|d| d.path.as_str()), Some("/tmp"));
        t.drop_ref(id);
        assert!(t.get(id).is_none());
        assert!(t.is_empty());
    }

    #[test]
    fn at_most_max_open_dirs_are_open() {
        let mut t = DirTable::default();
        for _ in 0..MAX_OPEN_DIRS {
            assert!(t.open("/".into()).is_some());
        }
        assert_eq!(t.open("/".into()), None);
    }
}
