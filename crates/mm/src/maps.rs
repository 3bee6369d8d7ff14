//! Introspection: a `/proc/PID/maps`-style listing of an address space with
//! resident and dirty page counts per mapping, and its text form.

use crate::hw::{AsId, FileId, ShmId, PAGE_SIZE};
use crate::mapping::{Mapping, Sharing};
use crate::object::ObjectKind;
use crate::system::MemorySystem;
use alloc::string::String;
use core::fmt::Write;

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
        self.spaces
            .get(&id)
            .into_iter()
            .flat_map(move |space| space.mappings.range(from..).map(|(_, m)| m))
            .map(|m| self.map_info(m))
    }

    fn map_info(&self, m: &Mapping) -> MapInfo {
        let object = m.object_id().and_then(|id| self.store.get(id));
        let kind = match object.map(|o| o.kind) {
            Some(ObjectKind::File(f)) => MapObject::File(f.file),
            Some(ObjectKind::Shm(s)) => MapObject::Shm(s.id),
            _ => MapObject::Anonymous,
        };
        let private = m.private_pages.len() as u64;
        let (mut resident, mut dirty) = (private, private);
        if let (Some(obj), Some((_, first, end))) = (object, m.object_pages(m.start, m.end)) {
            for (&index, page) in obj.pages.range(first..end) {
                let va = m.va_of_object_page(index);
                if m.private_pages.contains_key(&(va / PAGE_SIZE)) {
                    continue;
                }
                resident += 1;
                let is_dirty = if obj.is_file() {
                    page.dirty && m.sharing == Sharing::Shared
                } else {
                    true
                };
                dirty += u64::from(is_dirty);
            }
        }
        MapInfo {
            start: m.start,
            end: m.end,
            read: m.prot.read,
            write: m.prot.write,
            exec: m.prot.exec,
            shared: m.sharing == Sharing::Shared,
            object: kind,
            offset: m.backing.as_ref().map_or(0, |b| b.first_page * PAGE_SIZE),
            resident,
            dirty,
        }
    }

    /// Total resident pages of `id` (sum over its mappings).
    pub fn resident_pages(&self, id: AsId) -> u64 {
        self.maps(id).map(|m| m.resident).sum()
    }

    /// Number of mappings of `id`.
    pub fn mapping_count(&self, id: AsId) -> usize {
        self.spaces.get(&id).map_or(0, |s| s.mapping_count())
    }
}

/// Formats a listing, one line per mapping:
/// `start-end rwxp offset object resident=N dirty=N`.
pub fn format_maps(maps: &[MapInfo]) -> String {
    let mut out = String::new();
    for m in maps {
        let object = match m.object {
            MapObject::Anonymous => String::from("anon"),
            MapObject::File(f) => alloc::format!("file:{}", f.0),
            MapObject::Shm(s) => alloc::format!("shm:{}", s.0),
        };
        let _ = writeln!(
            out,
            "{:012x}-{:012x} {}{}{}{} {:08x} {} resident={} dirty={}",
            m.start,
            m.end,
            if m.read { 'r' } else { '-' },
            if m.write { 'w' } else { '-' },
            if m.exec { 'x' } else { '-' },
            if m.shared { 's' } else { 'p' },
            m.offset,
            object,
            m.resident,
            m.dirty
        );
    }
    out
}
