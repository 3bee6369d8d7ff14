//! Introspection: a `/proc/PID/maps`-style listing of an address space with
//! resident and dirty page counts per mapping, and its text form.

use crate::hw::{AsId, FileId, ShmId, PAGE_SIZE};
use crate::mapping::{Mapping, Sharing};
use crate::object::{CachePage, ObjectKind};
use crate::system::MemorySystem;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// Pages [`MemorySystem::for_each_shown_page`] copies out of an object's
/// locked page index at a time.
const PAGES_PER_LOOK: usize = 32;

/// What a mapping shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapObject {
    Anonymous,
    File(FileId),
    Shm(ShmId),
}

/// One line of the listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapInfo {
    pub start: u64,
    pub end: u64,
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub shared: bool,
    pub object: MapObject,
    /// Byte offset in the object.
    pub offset: u64,
    /// Pages of the range present in memory.
    pub resident: u64,
    /// Resident pages that differ from their backing store (dirty file
    /// pages; every private, anonymous or segment page).
    pub dirty: u64,
}

impl MemorySystem {
    /// The mappings of `id`, in address order (nothing is collected: a
    /// listing of many mappings costs no memory).
    pub fn maps(&self, id: AsId) -> impl Iterator<Item = MapInfo> + '_ {
        self.maps_from(id, 0)
    }

    /// The mappings of `id` that start at or above `from`, in address order
    /// (for listing a large space piece by piece).
    pub fn maps_from(&self, id: AsId, from: u64) -> impl Iterator<Item = MapInfo> + '_ {
        // One search per mapping listed: the space's read guard lives in
        // the iterator, which holds no reference into the index.
        let space = self.spaces.space(&id);
        let mut cursor = from;
        core::iter::from_fn(move || {
            let (_, m) = space.as_ref()?.mappings.range(cursor..).next()?;
            cursor = m.start + 1;
            Some(self.map_info(m))
        })
    }

    /// The files that shared mappings of `id` show with dirty pages in the
    /// pages `[start, end)` touches, at most `max` of them (a file shown
    /// twice is listed twice): one search of each mapping's dirty set,
    /// whatever the size of the range or the number of cached pages.
    pub fn dirty_shared_files(&self, id: AsId, start: u64, end: u64, max: usize) -> Vec<FileId> {
        let mut files = Vec::new();
        // A length that ends inside a page covers that page (msync of 1,024
        // bytes syncs the page).
        // Any two values may come here (msync asks before it checks its
        // arguments): an empty or wrapping range names no page.
        let Some(end) = end.checked_next_multiple_of(PAGE_SIZE) else {
            return files;
        };
        if start >= end {
            return files;
        }
        let Some(space) = self.spaces.space(&id) else {
            return files;
        };
        let first = space
            .mappings
            .range(..=start)
            .next_back()
            .filter(|(_, m)| m.end > start)
            .map_or(start, |(&s, _)| s);
        for (_, m) in space.mappings.range(first..end) {
            if files.len() >= max {
                break;
            }
            if m.sharing != Sharing::Shared {
                continue;
            }
            let Some((object, from, to)) = m.object_pages(start.max(m.start), end.min(m.end))
            else {
                continue;
            };
            match self.store.get(object) {
                Some(o) if o.dirty.range(from..to).next().is_some() => {
                    if let ObjectKind::File(f) = o.kind {
                        files.push(f.file);
                    }
                }
                _ => {}
            }
        }
        files
    }

    fn map_info(&self, m: &Mapping) -> MapInfo {
        // What the mapping shows: its object, or for a private view the
        // file at the bottom of its chain (private anonymous memory shows
        // no file).
        let shown = match m.sharing {
            Sharing::Shared => m.object_id(),
            Sharing::Private => m.object_id().and_then(|t| self.store.root_of(t)),
        };
        let kind = match shown.and_then(|id| self.store.get(id)).map(|o| o.kind) {
            Some(ObjectKind::File(f)) => MapObject::File(f.file),
            Some(ObjectKind::Shm(s)) => MapObject::Shm(s.id),
            _ => MapObject::Anonymous,
        };
        let (mut resident, mut dirty) = (0, 0);
        let shared = m.sharing == Sharing::Shared;
        // Only a shared mapping shows file pages that can be dirty.
        let shared_object = match m.sharing {
            Sharing::Shared => m.object_id().and_then(|id| self.store.get(id)),
            Sharing::Private => None,
        };
        self.for_each_shown_page(m, m.start, m.end, |index, is_file, _| {
            resident += 1;
            // Anonymous and segment pages have no backing store: all dirty.
            let file_dirty = shared_object.is_some_and(|o| o.dirty.contains_key(&index));
            dirty += u64::from(!is_file || file_dirty);
        });
        let offset = match shown {
            Some(_) => m.backing.as_ref().map_or(0, |b| b.first_page * PAGE_SIZE),
            None => 0,
        };
        MapInfo {
            start: m.start,
            end: m.end,
            read: m.prot.read,
            write: m.prot.write,
            exec: m.prot.exec,
            shared,
            object: kind,
            offset,
            resident,
            dirty,
        }
    }

    /// Calls `f(index, in_a_file_object, page)` once for every resident
    /// page that `[from, to)` of `m` shows (object page indexes), in no
    /// particular order. Work follows the pages the chain holds.
    pub(crate) fn for_each_shown_page(
        &self,
        m: &Mapping,
        from: u64,
        to: u64,
        mut f: impl FnMut(u64, bool, &CachePage),
    ) {
        let Some((top, first, end)) = m.object_pages(from, to) else {
            return;
        };
        let mut id = top;
        loop {
            let Some(obj) = self.store.get(id) else {
                return;
            };
            // A few pages at a time, copied out of the locked index: the
            // visibility check locks the chain's objects, this one too.
            let mut cursor = first;
            while cursor < end {
                let mut found = [(0, CachePage::new(crate::hw::Frame(0))); PAGES_PER_LOOK];
                let mut n = 0;
                for (slot, (index, page)) in
                    found.iter_mut().zip(obj.pages.lock().range(cursor..end))
                {
                    *slot = (index, *page);
                    n += 1;
                }
                for &(index, page) in &found[..n] {
                    let shown = id == top
                        || self
                            .store
                            .visible_page(top, index)
                            .is_some_and(|(holder, _)| holder == id);
                    if shown {
                        f(index, obj.is_file(), &page);
                    }
                }
                cursor = match found[..n].last() {
                    Some(&(index, _)) if n == PAGES_PER_LOOK => index + 1,
                    _ => end,
                };
            }
            if m.sharing == Sharing::Shared {
                return;
            }
            match self.store.below_of(id) {
                Some((next, _)) => id = next,
                None => return,
            }
        }
    }

    /// Total resident pages of `id` (sum over its mappings).
    pub fn resident_pages(&self, id: AsId) -> u64 {
        self.maps(id).map(|m| m.resident).sum()
    }

    /// Number of mappings of `id`.
    pub fn mapping_count(&self, id: AsId) -> usize {
        self.spaces.space(&id).map_or(0, |s| s.mapping_count())
    }

    /// [`Self::mapping_count`] with the system held exclusively (the
    /// mapping calls' check: no lock word touched).
    #[inline]
    pub fn mappings_held(&mut self, id: AsId) -> usize {
        self.spaces.space_mut(&id).map_or(0, |s| s.mapping_count())
    }
}

/// Formats a listing, one line per mapping, as [`write_maps_line`] does
/// (without paths: the mapping core does not know file names).
pub fn format_maps(maps: &[MapInfo]) -> String {
    let mut out = String::new();
    for m in maps {
        let _ = write_maps_line(&mut out, m, None);
    }
    out
}

/// Writes the line of `m` in the `sys_maps` listing (docs/abi.md):
/// `START-END PERM KIND [PATH] resident=N dirty=N`, START and END as 16
/// lowercase hex digits, PERM `r`/`-`, `w`/`-`, `x`/`-`, then `s` or `p`,
/// KIND `anon`, `file` or `shm`, PATH the file's name when `path` is given.
pub fn write_maps_line(out: &mut impl Write, m: &MapInfo, path: Option<&str>) -> core::fmt::Result {
    let kind = match m.object {
        MapObject::Anonymous => "anon",
        MapObject::File(_) => "file",
        MapObject::Shm(_) => "shm",
    };
    write!(
        out,
        "{:016x}-{:016x} {}{}{}{} {}",
        m.start,
        m.end,
        if m.read { 'r' } else { '-' },
        if m.write { 'w' } else { '-' },
        if m.exec { 'x' } else { '-' },
        if m.shared { 's' } else { 'p' },
        kind
    )?;
    if let Some(path) = path.filter(|p| !p.is_empty()) {
        write!(out, " {path}")?;
    }
    writeln!(out, " resident={} dirty={}", m.resident, m.dirty)
}
