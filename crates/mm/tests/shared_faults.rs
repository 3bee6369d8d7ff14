//! Faults resolved with shared access to the system (`fault_shared`, the
//! kernel's read-locked fault): threads of one address space take first
//! touches at once, each page gets one frame whoever races for it, every
//! case that is not a private first touch changes nothing and asks for the
//! exclusive way, and the frames and counters come out whole after munmap.
//! The page table here is a map behind a lock (installs from any thread);
//! the frames an arena with a shared live set (a double free or a leak
//! fails the test).

use neoos_abi::mman;
use neoos_mm::testing::{SoftPageTable, SoftPager};
use neoos_mm::{
    Access, AsId, EntryChange, Errno, FileAccess, FileId, Frame, FrameSource, Hw, MemorySystem,
    PageBytes, PageTable, ProgramBreak, Prot, PteInfo, SharedChange, SharedFault, SharedFrames,
    UnmappedPage, VacantMap, PAGE_SIZE,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A page table whose entries any thread may install (`map_vacant`).
#[derive(Default)]
struct LockedTable {
    entries: Mutex<BTreeMap<u64, (Frame, Prot)>>,
    /// Pages invalidated one by one and whole-TLB flushes asked through
    /// `flush_pages_shared`.
    shared_flushes: (AtomicU64, AtomicU64),
    /// The ranges whose emptied tables were to be released.
    released: Vec<(u64, u64)>,
    /// Makes `map_vacant` fail as without table memory.
    no_table_memory: bool,
}

impl LockedTable {
    fn entry(&self, va: u64) -> Option<(Frame, Prot)> {
        self.entries.lock().unwrap().get(&va).copied()
    }
    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

impl PageTable for LockedTable {
    fn map(&mut self, va: u64, frame: Frame, prot: Prot) -> Result<(), Errno> {
        let old = self.entries.get_mut().unwrap().insert(va, (frame, prot));
        assert!(old.is_none(), "mapped over a present entry at {va:#x}");
        Ok(())
    }
    fn map_vacant(&self, va: u64, frame: Frame, prot: Prot) -> VacantMap {
        if self.no_table_memory {
            return VacantMap::NoMem;
        }
        let mut entries = self.entries.lock().unwrap();
        if entries.contains_key(&va) {
            return VacantMap::Occupied;
        }
        entries.insert(va, (frame, prot));
        VacantMap::Installed
    }
    fn changes_shared(&self) -> bool {
        true
    }
    fn unmap_shared(&self, pages: &[u64]) -> SharedChange {
        let mut entries = self.entries.lock().unwrap();
        let mut done = SharedChange::default();
        for (i, va) in pages.iter().enumerate() {
            if let Some((_, p)) = entries.remove(va) {
                done.changed |= 1 << i;
                done.lost_write |= u64::from(p.write) << i;
            }
        }
        done
    }
    fn protect_shared(&self, pages: &[u64], prot: Prot) -> SharedChange {
        let mut entries = self.entries.lock().unwrap();
        let mut done = SharedChange::default();
        for (i, va) in pages.iter().enumerate() {
            if let Some((_, p)) = entries.get_mut(va) {
                let new = p.intersect(prot);
                if new != *p {
                    done.changed |= 1 << i;
                    done.lost_write |= u64::from(p.write && !new.write) << i;
                    *p = new;
                }
            }
        }
        done
    }
    fn flush_pages_shared(&self, pages: Option<&[u64]>) {
        match pages {
            Some(pages) => self
                .shared_flushes
                .0
                .fetch_add(pages.len() as u64, Ordering::Relaxed),
            None => self.shared_flushes.1.fetch_add(1, Ordering::Relaxed),
        };
    }
    fn unmap(&mut self, va: u64) -> Option<UnmappedPage> {
        let (frame, prot) = self.entries.get_mut().unwrap().remove(&va)?;
        Some(UnmappedPage {
            frame,
            prot,
            dirty: false,
            accessed: false,
        })
    }
    fn protect(&mut self, va: u64, prot: Prot) {
        if let Some(e) = self.entries.get_mut().unwrap().get_mut(&va) {
            e.1 = prot;
        }
    }
    fn query(&self, va: u64) -> Option<PteInfo> {
        self.entry(va).map(|(frame, prot)| PteInfo {
            frame,
            prot,
            dirty: false,
            accessed: false,
        })
    }
    fn take_dirty(&mut self, _va: u64) -> bool {
        false
    }
    fn update_range(
        &mut self,
        start: u64,
        end: u64,
        change: &mut dyn FnMut(u64, PteInfo) -> EntryChange,
    ) {
        let entries = self.entries.get_mut().unwrap();
        let present: Vec<_> = entries.range(start..end).map(|(&va, &e)| (va, e)).collect();
        for (va, (frame, prot)) in present {
            let info = PteInfo {
                frame,
                prot,
                dirty: false,
                accessed: false,
            };
            match change(va, info) {
                EntryChange::Keep => {}
                EntryChange::Protect(p) => {
                    entries.insert(va, (frame, p));
                }
                EntryChange::Remove => {
                    entries.remove(&va);
                }
            }
        }
    }
    fn flush_page(&mut self, _va: u64) {}
    fn flush_all(&mut self) {}
    fn release_tables(&mut self, start: u64, end: u64) {
        self.released.push((start, end));
    }
}

/// The one space's table, as the release of a shared `munmap`'s leftovers
/// reaches it.
struct OneTable<'a>(AsId, &'a mut LockedTable);

impl neoos_mm::SpaceTables for OneTable<'_> {
    fn table(&mut self, space: AsId) -> Option<&mut dyn PageTable> {
        (space == self.0).then_some(&mut *self.1 as &mut dyn PageTable)
    }
}

/// Frames in a fixed arena: their bytes for the exclusive paths (file
/// pages are read into them), the free list and the live set behind locks
/// for the shared faults. A frame is zeroed when given back, so every free
/// frame is zero (a shared fault cannot write one through `&self`).
struct Frames {
    pages: Vec<Box<PageBytes>>,
    free: Mutex<Vec<u64>>,
    live: Mutex<BTreeSet<u64>>,
}

const ARENA_FRAMES: u64 = 4096;

impl Default for Frames {
    fn default() -> Self {
        Frames {
            pages: (0..ARENA_FRAMES)
                .map(|_| Box::new([0; PAGE_SIZE as usize]))
                .collect(),
            free: Mutex::new((0..ARENA_FRAMES).rev().collect()),
            live: Mutex::new(BTreeSet::new()),
        }
    }
}

impl Frames {
    fn live(&self) -> usize {
        self.live.lock().unwrap().len()
    }
    fn take(&self) -> Option<Frame> {
        let n = self.free.lock().unwrap().pop()?;
        self.live.lock().unwrap().insert(n);
        Some(Frame(n))
    }
    fn give_back(&self, frame: Frame) {
        assert!(
            self.live.lock().unwrap().remove(&frame.0),
            "frame {frame:?} freed twice or never allocated"
        );
        self.free.lock().unwrap().push(frame.0);
    }
}

impl SharedFrames for Frames {
    fn alloc_zeroed_shared(&self) -> Option<Frame> {
        self.take()
    }
    fn free_shared(&self, frame: Frame) {
        self.give_back(frame)
    }
}

impl FrameSource for Frames {
    fn alloc(&mut self) -> Option<Frame> {
        self.take()
    }
    fn free(&mut self, frame: Frame) {
        self.pages[frame.0 as usize].fill(0);
        self.give_back(frame);
    }
    fn zero(&mut self, frame: Frame) {
        self.pages[frame.0 as usize].fill(0);
    }
    fn copy(&mut self, src: Frame, dst: Frame) {
        let bytes = *self.pages[src.0 as usize];
        *self.pages[dst.0 as usize] = bytes;
    }
    fn bytes(&self, frame: Frame) -> &PageBytes {
        &self.pages[frame.0 as usize]
    }
    fn bytes_mut(&mut self, frame: Frame) -> &mut PageBytes {
        &mut self.pages[frame.0 as usize]
    }
}

struct System {
    vm: MemorySystem,
    space: AsId,
    pt: LockedTable,
    frames: Frames,
    pager: SoftPager,
}

impl System {
    fn new() -> Self {
        let mut vm = MemorySystem::new();
        let space = vm.create_address_space();
        System {
            vm,
            space,
            pt: LockedTable::default(),
            frames: Frames::default(),
            pager: SoftPager::new(),
        }
    }

    /// `pages` of private anonymous memory with `prot`; its first page
    /// faulted in the exclusive way (which makes the top object).
    fn map_private(&mut self, pages: u64, prot: u32) -> u64 {
        let a = self.map(pages, prot, mman::MAP_PRIVATE | mman::MAP_ANON, None);
        self.fault_exclusive(a, Access::Read);
        a
    }

    /// A mapping of `pages` (of `file` when given), nothing faulted in.
    fn map(&mut self, pages: u64, prot: u32, flags: u32, file: Option<FileId>) -> u64 {
        self.map_at(0, pages, prot, flags, file)
    }

    /// [`Self::map`] at `hint` if it is free.
    fn map_at(
        &mut self,
        hint: u64,
        pages: u64,
        prot: u32,
        flags: u32,
        file: Option<FileId>,
    ) -> u64 {
        let mut hw = Hw::new(&mut self.pt, &mut self.frames, &mut self.pager);
        let file = file.map(|f| (f, FileAccess::ReadWrite));
        self.vm
            .mmap(
                self.space,
                &mut hw,
                hint,
                pages * PAGE_SIZE,
                prot,
                flags,
                file,
                0,
            )
            .unwrap()
    }

    /// A file of `pages` pages, page `i` filled with byte `i + 1`, open.
    fn file(&mut self, pages: u64) -> FileId {
        let file = FileId(7);
        let bytes: Vec<u8> = (0..pages * PAGE_SIZE)
            .map(|b| (b / PAGE_SIZE + 1) as u8)
            .collect();
        self.pager.files.insert(file, bytes);
        self.vm.file_open_ref(file, pages * PAGE_SIZE);
        file
    }

    fn fault_exclusive(&mut self, addr: u64, access: Access) {
        let mut hw = Hw::new(&mut self.pt, &mut self.frames, &mut self.pager);
        self.vm
            .handle_fault(self.space, &mut hw, addr, access)
            .unwrap();
    }

    fn shared(&self, addr: u64, access: Access) -> SharedFault {
        self.vm
            .fault_shared(self.space, &self.pt, &self.frames, addr, access)
    }

    /// The shared `mmap` of `pages` of private anonymous memory, at
    /// `hint` if it is free.
    fn mmap_shared(&self, hint: u64, pages: u64) -> Option<u64> {
        let flags = mman::MAP_PRIVATE | mman::MAP_ANON;
        self.vm.mmap_shared(
            self.space,
            &self.pt,
            hint,
            pages * PAGE_SIZE,
            RW,
            flags,
            1024,
        )
    }

    fn mprotect_shared(&self, addr: u64, pages: u64, prot: u32) -> Option<()> {
        self.vm
            .mprotect_shared(self.space, &self.pt, addr, pages * PAGE_SIZE, prot, 1024)
    }

    fn mprotect(&mut self, addr: u64, pages: u64, prot: u32) {
        let mut hw = Hw::new(&mut self.pt, &mut self.frames, &mut self.pager);
        self.vm
            .mprotect(self.space, &mut hw, addr, pages * PAGE_SIZE, prot)
            .unwrap();
    }

    fn munmap_shared(&self, addr: u64, pages: u64) -> Option<()> {
        self.vm
            .munmap_shared(self.space, &self.pt, addr, pages * PAGE_SIZE, 1024)
    }

    /// What the kernel does first in each exclusive section.
    fn finish_shared_work(&mut self) {
        if !self.vm.has_shared_work() {
            return;
        }
        let mut tables = OneTable(self.space, &mut self.pt);
        let mut io = neoos_mm::Io {
            frames: &mut self.frames,
            pager: &mut self.pager,
        };
        self.vm.finish_shared_work(&mut io, &mut tables, true);
    }

    /// The mappings (start, end), entries, live frames and counters: all a
    /// call that changes nothing leaves as they were.
    fn snapshot(&self) -> (Vec<(u64, u64)>, usize, usize, neoos_mm::MemStats, usize) {
        let maps = self.vm.maps(self.space).map(|m| (m.start, m.end)).collect();
        let objects = self.vm.object_count();
        (
            maps,
            self.pt.len(),
            self.frames.live(),
            self.vm.stats(),
            objects,
        )
    }

    fn munmap(&mut self, addr: u64, pages: u64) {
        let mut hw = Hw::new(&mut self.pt, &mut self.frames, &mut self.pager);
        self.vm
            .munmap(self.space, &mut hw, addr, pages * PAGE_SIZE)
            .unwrap();
    }
}

const RW: u32 = mman::PROT_READ | mman::PROT_WRITE;
const THREADS: u64 = 4;

#[test]
fn threads_take_first_touches_of_disjoint_pages_of_one_space_at_once() {
    let mut s = System::new();
    let per_thread = 256;
    let a = s.map_private(THREADS * per_thread, RW);
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let s = &s;
            scope.spawn(move || {
                // The first page was faulted in when mapped.
                for i in (t * per_thread).max(1)..(t + 1) * per_thread {
                    let va = a + i * PAGE_SIZE;
                    assert_eq!(s.shared(va + 8, Access::Write), SharedFault::Resolved);
                }
            });
        }
    });
    let pages = (THREADS * per_thread) as usize;
    assert_eq!(s.pt.len(), pages, "every page mapped");
    let frames: BTreeSet<_> = (0..pages as u64)
        .map(|i| s.pt.entry(a + i * PAGE_SIZE).unwrap().0)
        .collect();
    assert_eq!(frames.len(), pages, "a frame of its own for each page");
    assert_eq!(s.frames.live(), pages);
    let stats = s.vm.stats();
    assert_eq!(stats.frames_in_use, pages as u64);
    assert_eq!(stats.faults, pages as u64);
    assert_eq!(s.vm.shared_faults(), pages as u64 - 1);

    s.munmap(a, THREADS * per_thread);
    assert_eq!(s.frames.live(), 0, "munmap gave every frame back");
    assert_eq!(s.vm.stats().frames_in_use, 0);
    assert_eq!(s.pt.len(), 0);
}

#[test]
fn threads_racing_for_the_same_pages_get_one_frame_per_page() {
    let mut s = System::new();
    let pages = 512;
    let a = s.map_private(pages, RW);
    let resolved = AtomicU64::new(0);
    let exclusive = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            let (s, resolved, exclusive) = (&s, &resolved, &exclusive);
            scope.spawn(move || {
                for i in 1..pages {
                    let va = a + i * PAGE_SIZE;
                    match s.shared(va, Access::Write) {
                        SharedFault::Resolved => {
                            resolved.fetch_add(1, Ordering::Relaxed);
                        }
                        SharedFault::NeedsExclusive => exclusive.lock().unwrap().push(va),
                    }
                }
            });
        }
    });
    // Each page was resolved the shared way once; every other attempt
    // found it present and asked for the exclusive way.
    assert_eq!(resolved.load(Ordering::Relaxed), pages - 1);
    let exclusive = exclusive.into_inner().unwrap();
    assert_eq!(exclusive.len() as u64, (THREADS - 1) * (pages - 1));
    let before: Vec<_> = (0..pages).map(|i| s.pt.entry(a + i * PAGE_SIZE)).collect();
    for va in exclusive {
        s.fault_exclusive(va, Access::Write);
    }
    let after: Vec<_> = (0..pages).map(|i| s.pt.entry(a + i * PAGE_SIZE)).collect();
    assert_eq!(
        before, after,
        "the exclusive faults found every page in place"
    );
    assert_eq!(s.frames.live(), pages as usize, "no frame lost or doubled");
    s.munmap(a, pages);
    assert_eq!((s.frames.live(), s.vm.stats().frames_in_use), (0, 0));
}

/// Asserts that a shared fault at `va` asks for the exclusive way and
/// changes nothing.
fn needs_exclusive(s: &System, va: u64, access: Access) {
    let (entries, live, stats) = (s.pt.len(), s.frames.live(), s.vm.stats());
    assert_eq!(s.shared(va, access), SharedFault::NeedsExclusive);
    assert_eq!(
        (s.pt.len(), s.frames.live(), s.vm.stats()),
        (entries, live, stats)
    );
}

#[test]
fn a_page_the_object_has_goes_the_exclusive_way() {
    let mut s = System::new();
    let a = s.map_private(4, RW);
    // Its page is there: a write to it again (here a fault that raced
    // with another CPU's) is the exclusive path's to judge.
    needs_exclusive(&s, a, Access::Write);
}

#[test]
fn a_mapping_without_its_object_yet_goes_the_exclusive_way() {
    let mut s = System::new();
    let mut hw = Hw::new(&mut s.pt, &mut s.frames, &mut s.pager);
    let flags = mman::MAP_PRIVATE | mman::MAP_ANON;
    let a =
        s.vm.mmap(s.space, &mut hw, 0, 4 * PAGE_SIZE, RW, flags, None, 0)
            .unwrap();
    needs_exclusive(&s, a, Access::Read);
}

#[test]
fn a_mappings_first_shared_fault_gives_it_a_spare_object() {
    let mut s = System::new();
    // No spare object yet: the first touch goes the exclusive way; the
    // next exclusive section is asked for spares.
    let bare = s.mmap_shared(0, 4).unwrap();
    needs_exclusive(&s, bare, Access::Write);
    assert!(s.vm.has_shared_work());
    s.finish_shared_work();
    assert!(!s.vm.has_shared_work());
    assert_eq!(s.vm.object_count(), 0, "spare objects are not counted");
    // A mapping never touched takes none (a fork of many is cheap).
    let untouched = s.mmap_shared(0, 4).unwrap();
    assert_eq!(s.vm.object_count(), 0);
    // Now each mapping's first touch gives it an object: every first touch
    // is a shared fault, each page its own frame.
    let mut made = vec![untouched];
    assert_eq!(s.shared(untouched, Access::Write), SharedFault::Resolved);
    for i in 1..4 {
        assert_eq!(
            s.shared(untouched + i * PAGE_SIZE, Access::Write),
            SharedFault::Resolved
        );
    }
    while let Some(a) = s.mmap_shared(0, 4) {
        if s.shared(a, Access::Write) == SharedFault::NeedsExclusive {
            made.push(a);
            break;
        }
        for i in 1..4 {
            assert_eq!(
                s.shared(a + i * PAGE_SIZE, Access::Write),
                SharedFault::Resolved
            );
        }
        made.push(a);
    }
    let with_objects = made.len() - 1;
    assert_eq!(with_objects, 16, "as many as the exclusive section made");
    assert_eq!(s.vm.object_count(), with_objects);
    assert_eq!(s.frames.live(), with_objects * 4);
    assert!(s.vm.has_shared_work(), "the spares ran low: more asked for");
    // Unmapped with shared access, given back at the next exclusive
    // section, which makes spares again.
    for &a in &made {
        assert_eq!(s.munmap_shared(a, 4), Some(()));
    }
    assert_eq!(s.munmap_shared(bare, 4), Some(()));
    s.finish_shared_work();
    assert_eq!((s.frames.live(), s.vm.stats().frames_in_use), (0, 0));
    assert_eq!(s.vm.object_count(), 0);
    assert_eq!(s.vm.maps(s.space).count(), 0);
    let a = s.mmap_shared(0, 1).unwrap();
    assert_eq!(s.shared(a, Access::Read), SharedFault::Resolved);
}

#[test]
fn an_access_the_mapping_does_not_allow_goes_the_exclusive_way() {
    let mut s = System::new();
    let a = s.map_private(4, mman::PROT_READ);
    needs_exclusive(&s, a + PAGE_SIZE, Access::Write);
    needs_exclusive(&s, a + PAGE_SIZE, Access::Exec);
    assert_eq!(s.shared(a + PAGE_SIZE, Access::Read), SharedFault::Resolved);
    let (frame, prot) = s.pt.entry(a + PAGE_SIZE).unwrap();
    assert!(
        prot.read && !prot.write,
        "mapped with the mapping's protection"
    );
    assert_ne!(frame, s.pt.entry(a).unwrap().0);
}

#[test]
fn an_address_outside_every_mapping_goes_the_exclusive_way() {
    let mut s = System::new();
    let a = s.map_private(4, RW);
    needs_exclusive(&s, a + 4 * PAGE_SIZE, Access::Read);
    needs_exclusive(&s, 0, Access::Read);
    needs_exclusive(&s, !(PAGE_SIZE - 1), Access::Read);
}

#[test]
fn a_shared_anonymous_page_is_made_or_mapped_the_shared_way() {
    let mut s = System::new();
    let flags = mman::MAP_SHARED | mman::MAP_ANON;
    let a = s.map(4, RW, flags, None);
    s.fault_exclusive(a, Access::Write);
    assert_eq!(
        s.shared(a + PAGE_SIZE, Access::Write),
        SharedFault::Resolved
    );
    let (frame, prot) = s.pt.entry(a + PAGE_SIZE).unwrap();
    assert!(
        prot.write,
        "an anonymous shared page is mapped as the mapping allows"
    );
    assert_eq!(
        s.frames.bytes(frame),
        &[0; PAGE_SIZE as usize],
        "a zero page"
    );
    assert_eq!(s.frames.live(), 2);
    // Present now: a fault there again (a race lost) changes nothing.
    needs_exclusive(&s, a + PAGE_SIZE, Access::Write);
    s.munmap(a, 4);
    assert_eq!((s.frames.live(), s.vm.stats().frames_in_use), (0, 0));
}

#[test]
fn a_private_file_page_the_file_has_cached_is_mapped_read_only_for_a_read() {
    let mut s = System::new();
    let file = s.file(4);
    let private = mman::MAP_PRIVATE;
    let cache = s.map(4, mman::PROT_READ, private, Some(file));
    s.fault_exclusive(cache + PAGE_SIZE, Access::Read);
    let a = s.map(4, RW, private, Some(file));
    assert_eq!(s.shared(a + PAGE_SIZE, Access::Read), SharedFault::Resolved);
    let (frame, prot) = s.pt.entry(a + PAGE_SIZE).unwrap();
    assert_eq!(
        frame,
        s.pt.entry(cache + PAGE_SIZE).unwrap().0,
        "the file's page"
    );
    assert!(!prot.write, "read-only: a write copies it up");
    assert_eq!(s.frames.bytes(frame)[0], 2);
    // A write copies: the exclusive way. So does a page not cached.
    needs_exclusive(&s, a + 2 * PAGE_SIZE, Access::Write);
    needs_exclusive(&s, a + 3 * PAGE_SIZE, Access::Read);
    s.fault_exclusive(a + PAGE_SIZE, Access::Write);
    let (copy, prot) = s.pt.entry(a + PAGE_SIZE).unwrap();
    assert!(copy != frame && prot.write);
    assert_eq!(s.frames.bytes(copy)[0], 2);
    s.munmap(a, 4);
    s.munmap(cache, 4);
}

#[test]
fn a_shared_file_page_is_mapped_read_only_and_a_write_goes_the_exclusive_way() {
    let mut s = System::new();
    let file = s.file(4);
    let a = s.map(4, RW, mman::MAP_SHARED, Some(file));
    s.fault_exclusive(a, Access::Read);
    s.fault_exclusive(a + PAGE_SIZE, Access::Read);
    s.munmap(a, 4);
    let a = s.map(4, RW, mman::MAP_SHARED, Some(file));
    assert_eq!(s.shared(a + PAGE_SIZE, Access::Read), SharedFault::Resolved);
    let (frame, prot) = s.pt.entry(a + PAGE_SIZE).unwrap();
    assert!(!prot.write, "writable only once a write marks it dirty");
    assert_eq!(s.frames.bytes(frame)[0], 2);
    needs_exclusive(&s, a, Access::Write);
    needs_exclusive(&s, a + 2 * PAGE_SIZE, Access::Read);
    s.munmap(a, 4);
}

#[test]
fn a_forked_space_whose_object_shadows_another_goes_the_exclusive_way() {
    let mut s = System::new();
    let a = s.map_private(4, RW);
    let hw = Hw::new(&mut s.pt, &mut s.frames, &mut s.pager);
    let mut child_pt = SoftPageTable::default();
    let child = {
        let mut child_hw = Hw::new(&mut child_pt, hw.frames, hw.pager);
        s.vm.fork(s.space, &mut child_hw).unwrap()
    };
    // Both sides' top objects now shadow the hidden one: a page neither
    // has may still be below (here: not, but only the exclusive path
    // walks the chain).
    needs_exclusive(&s, a + PAGE_SIZE, Access::Write);
    assert_eq!(
        s.vm.fault_shared(child, &child_pt, &s.frames, a + PAGE_SIZE, Access::Read),
        SharedFault::NeedsExclusive,
        "the child's top object shadows the hidden one too"
    );
    let mut hw = Hw::new(&mut child_pt, &mut s.frames, &mut s.pager);
    s.vm.destroy_address_space(child, &mut hw).unwrap();
}

#[test]
fn no_table_memory_gives_the_frame_back_and_changes_nothing() {
    let mut s = System::new();
    let a = s.map_private(4, RW);
    s.pt.no_table_memory = true;
    needs_exclusive(&s, a + PAGE_SIZE, Access::Write);
    s.pt.no_table_memory = false;
    assert_eq!(
        s.shared(a + PAGE_SIZE, Access::Write),
        SharedFault::Resolved
    );
}

#[test]
fn an_entry_already_there_gives_the_frame_back_and_changes_nothing() {
    let mut s = System::new();
    let a = s.map_private(4, RW);
    // An entry the object does not list (as no correct kernel leaves):
    // the shared fault must not record a page under it.
    let stray = Frame(u64::MAX);
    s.pt.entries
        .get_mut()
        .unwrap()
        .insert(a + PAGE_SIZE, (stray, Prot::new(true, true, false)));
    needs_exclusive(&s, a + PAGE_SIZE, Access::Write);
    assert_eq!(s.pt.entry(a + PAGE_SIZE).unwrap().0, stray);
    s.pt.entries.get_mut().unwrap().remove(&(a + PAGE_SIZE));
}

/// The kernel lock as the kernel holds it: shared calls and faults under
/// the read side, each falling back to the write side (where the objects
/// the shared `munmap` left are released first) when it does not apply.
fn under_kernel_lock<R>(
    lock: &std::sync::RwLock<System>,
    shared: impl FnOnce(&System) -> Option<R>,
    exclusive: impl FnOnce(&mut System) -> R,
) -> R {
    if let Some(r) = shared(&lock.read().unwrap()) {
        return r;
    }
    let mut s = lock.write().unwrap();
    s.finish_shared_work();
    exclusive(&mut s)
}

#[test]
fn threads_map_touch_and_unmap_disjoint_ranges_of_one_space_at_once() {
    const PAGES: u64 = 16;
    let lock = std::sync::RwLock::new(System::new());
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let lock = &lock;
            // Each thread's own region (a hint: free each time, since only
            // this thread maps there), so that no other thread's mapping
            // takes the range between this thread's munmap and its look.
            let region = 0x10_0000_0000 + t * 0x1000_0000;
            scope.spawn(move || {
                for round in 0..50u64 {
                    let anon = mman::MAP_PRIVATE | mman::MAP_ANON;
                    let a = under_kernel_lock(
                        lock,
                        |s| s.mmap_shared(region, PAGES),
                        |s| s.map_at(region, PAGES, RW, anon, None),
                    );
                    assert_eq!(a, region);
                    let mut frames = BTreeSet::new();
                    for i in 0..PAGES {
                        let va = a + i * PAGE_SIZE;
                        under_kernel_lock(
                            lock,
                            |s| {
                                (s.shared(va, Access::Write) == SharedFault::Resolved).then_some(())
                            },
                            |s| s.fault_exclusive(va, Access::Write),
                        );
                        let s = lock.read().unwrap();
                        let (frame, prot) = s.pt.entry(va).expect("mapped after its fault");
                        assert!(prot.write, "thread {t} round {round}: writable");
                        frames.insert(frame);
                    }
                    assert_eq!(frames.len() as u64, PAGES, "a frame per page");
                    // Read-only, then writable again: no entry allows a
                    // write once the first mprotect returned.
                    under_kernel_lock(
                        lock,
                        |s| s.mprotect_shared(a, PAGES, mman::PROT_READ),
                        |s| s.mprotect(a, PAGES, mman::PROT_READ),
                    );
                    {
                        let s = lock.read().unwrap();
                        for i in 0..PAGES {
                            let (_, prot) = s.pt.entry(a + i * PAGE_SIZE).unwrap();
                            assert!(prot.read && !prot.write, "thread {t}: read-only");
                        }
                    }
                    under_kernel_lock(
                        lock,
                        |s| s.mprotect_shared(a, PAGES, RW),
                        |s| s.mprotect(a, PAGES, RW),
                    );
                    // Cuts: pages 4..8 read-only, then pages 0..2 unmapped.
                    let cut = a + 4 * PAGE_SIZE;
                    under_kernel_lock(
                        lock,
                        |s| s.mprotect_shared(cut, 4, mman::PROT_READ),
                        |s| s.mprotect(cut, 4, mman::PROT_READ),
                    );
                    under_kernel_lock(lock, |s| s.munmap_shared(a, 2), |s| s.munmap(a, 2));
                    {
                        let s = lock.read().unwrap();
                        for i in 0..PAGES {
                            // (The others stay read-only until written:
                            // mprotect does not upgrade entries.)
                            let entry = s.pt.entry(a + i * PAGE_SIZE);
                            let writable = entry.map(|(_, prot)| prot.write);
                            match i {
                                0..2 => assert_eq!(writable, None, "thread {t} page {i}"),
                                4..8 => assert_eq!(writable, Some(false), "thread {t} page {i}"),
                                _ => assert!(writable.is_some(), "thread {t} page {i}"),
                            }
                        }
                    }
                    under_kernel_lock(lock, |s| s.munmap_shared(a, PAGES), |s| s.munmap(a, PAGES));
                    // Once munmap returned, no entry shows the range.
                    let s = lock.read().unwrap();
                    for i in 0..PAGES {
                        assert!(s.pt.entry(a + i * PAGE_SIZE).is_none());
                    }
                }
            });
        }
    });
    let mut s = lock.into_inner().unwrap();
    let (maps, unmaps, protects) = s.vm.shared_map_calls();
    assert!(
        maps > 0 && unmaps > 0 && protects > 0,
        "the shared calls were made"
    );
    s.finish_shared_work();
    assert_eq!(s.snapshot(), (vec![], 0, 0, s.vm.stats(), 0));
    assert_eq!(s.vm.stats().frames_in_use, 0, "every frame came back");
}

#[test]
fn a_shared_munmap_flushes_before_it_returns_and_frees_at_the_next_exclusive_section() {
    let mut s = System::new();
    let small = s.mmap_shared(0, 8).unwrap();
    let large = s.mmap_shared(0, 40).unwrap();
    for (a, pages) in [(small, 8), (large, 40)] {
        s.fault_exclusive(a, Access::Write);
        for i in 1..pages {
            assert_eq!(
                s.shared(a + i * PAGE_SIZE, Access::Write),
                SharedFault::Resolved
            );
        }
    }
    assert_eq!(s.frames.live(), 48);
    assert_eq!(s.munmap_shared(small, 8), Some(()));
    assert_eq!(s.pt.shared_flushes.0.load(Ordering::Relaxed), 8, "8 pages");
    assert_eq!(s.munmap_shared(large, 40), Some(()));
    assert_eq!(
        s.pt.shared_flushes.1.load(Ordering::Relaxed),
        1,
        "one full flush"
    );
    let stats = s.vm.stats();
    assert_eq!((stats.tlb_single_flushes, stats.tlb_full_flushes), (8, 1));
    assert_eq!(s.pt.len(), 0);
    assert_eq!(s.vm.maps(s.space).count(), 0);
    // The frames and tables wait for the next exclusive section.
    assert_eq!(s.frames.live(), 48);
    s.pt.released.clear();
    s.finish_shared_work();
    assert_eq!(
        s.pt.released,
        [
            (small, small + 8 * PAGE_SIZE),
            (large, large + 40 * PAGE_SIZE)
        ],
        "the ranges' emptied tables released"
    );
    assert_eq!((s.frames.live(), s.vm.stats().frames_in_use), (0, 0));
    assert_eq!(s.vm.object_count(), 0);
    // The range is free again: a new mapping may take it.
    assert!(s.mmap_shared(small, 48).is_some());
}

/// Asserts that the shared `munmap` of `[a, a + pages)` does not apply
/// and changes nothing.
/// A file of 300 pages, all cached, mapped shared with `prot`: more pages
/// than a shared call walks.
fn big_file_mapping(s: &mut System, prot: u32) -> (FileId, u64) {
    let file = s.file(300);
    let big = s.map(300, prot, mman::MAP_SHARED, Some(file));
    for i in 0..300 {
        s.fault_exclusive(big + i * PAGE_SIZE, Access::Read);
    }
    (file, big)
}

fn munmap_needs_exclusive(s: &System, a: u64, pages: u64) {
    let before = s.snapshot();
    assert_eq!(s.munmap_shared(a, pages), None);
    assert_eq!(s.snapshot(), before);
}

#[test]
fn a_shared_munmap_that_does_not_apply_changes_nothing() {
    let mut s = System::new();
    let a = s.map_private(8, RW);
    s.fault_exclusive(a + PAGE_SIZE, Access::Write);
    // Shared memory or a file mapping whose objects hold more pages than a
    // shared call walks, a forked space's memory.
    let shared = s.map(300, RW, mman::MAP_SHARED | mman::MAP_ANON, None);
    for i in 0..300 {
        s.fault_exclusive(shared + i * PAGE_SIZE, Access::Write);
    }
    munmap_needs_exclusive(&s, shared, 300);
    let (file, big) = big_file_mapping(&mut s, mman::PROT_READ);
    munmap_needs_exclusive(&s, big, 300);
    let private = s.map(300, mman::PROT_READ, mman::MAP_PRIVATE, Some(file));
    munmap_needs_exclusive(&s, private, 300);
    let mut hw = Hw::new(&mut s.pt, &mut s.frames, &mut s.pager);
    let child = s.vm.fork(s.space, &mut hw).unwrap();
    munmap_needs_exclusive(&s, a, 8);
    munmap_needs_exclusive(&s, a, 4);
    let mut hw = Hw::new(&mut s.pt, &mut s.frames, &mut s.pager);
    s.vm.destroy_address_space(child, &mut hw).unwrap();
    // Bad ranges: the exclusive way reports them.
    munmap_needs_exclusive(&s, a + 1, 8);
    munmap_needs_exclusive(&s, a, 0);
    munmap_needs_exclusive(&s, 0, 8);
    // A table that cannot change through a shared reference.
    let soft = SoftPageTable::default();
    let before = s.snapshot();
    assert_eq!(
        s.vm.munmap_shared(s.space, &soft, a, 8 * PAGE_SIZE, 1024),
        None
    );
    assert_eq!(s.snapshot(), before);
    // Whole private anonymous mappings do (several at once too).
    let b = s.map_private(2, RW);
    assert_eq!(s.munmap_shared(a, 8), Some(()));
    assert_eq!(s.munmap_shared(b, 2), Some(()));
}

/// The (start, end, writable) of the space's mappings.
fn mappings(s: &System) -> Vec<(u64, u64, bool)> {
    s.vm.maps(s.space)
        .map(|m| (m.start, m.end, m.write))
        .collect()
}

#[test]
fn a_shared_munmap_or_mprotect_cuts_the_mappings_reaching_past_its_range() {
    let mut s = System::new();
    let a = s.map_private(16, RW);
    // Every page but 14 faulted in.
    for i in (1..16).filter(|&i| i != 14) {
        s.fault_exclusive(a + i * PAGE_SIZE, Access::Write);
    }
    let page = |i: u64| a + i * PAGE_SIZE;
    let writable = |s: &System, i: u64| s.pt.entry(page(i)).map(|(_, p)| p.write);
    // Pages 4..8 read-only: the mapping in three.
    assert_eq!(s.mprotect_shared(page(4), 4, mman::PROT_READ), Some(()));
    assert_eq!(
        mappings(&s),
        [
            (a, page(4), true),
            (page(4), page(8), false),
            (page(8), page(16), true)
        ]
    );
    for i in (0..16).filter(|&i| i != 14) {
        assert_eq!(writable(&s, i), Some(!(4..8).contains(&i)), "page {i}");
    }
    assert_eq!(s.pt.shared_flushes.0.load(Ordering::Relaxed), 4);
    // Pages 6..10 unmapped: a cut in each of two mappings.
    assert_eq!(s.munmap_shared(page(6), 4), Some(()));
    assert_eq!(
        mappings(&s),
        [
            (a, page(4), true),
            (page(4), page(6), false),
            (page(10), page(16), true)
        ]
    );
    for i in (0..16).filter(|&i| i != 14) {
        assert_eq!(writable(&s, i).is_some(), !(6..10).contains(&i), "page {i}");
    }
    needs_exclusive(&s, page(7), Access::Read);
    assert_eq!(s.munmap_shared(page(12), 1), Some(()));
    assert_eq!(
        s.shared(page(12), Access::Read),
        SharedFault::NeedsExclusive
    );
    // A piece's first touch still goes the shared way (the object is its).
    assert_eq!(s.shared(page(14), Access::Write), SharedFault::Resolved);
    s.finish_shared_work();
    assert_eq!(
        s.frames.live(),
        11,
        "15, the 5 unmapped pages' freed, 1 new"
    );
    assert_eq!(s.vm.object_count(), 1, "the pieces keep their object");
    // Near the bound on mappings, a cut goes the exclusive way, counted as
    // that way counts it: two for an mprotect (even cutting one end only),
    // one for a munmap.
    let count = mappings(&s).len();
    let before = s.snapshot();
    let prot = mman::PROT_READ;
    for at in [page(1), a] {
        assert_eq!(
            s.vm.mprotect_shared(s.space, &s.pt, at, PAGE_SIZE, prot, count + 1),
            None
        );
    }
    assert_eq!(
        s.vm.munmap_shared(s.space, &s.pt, page(1), PAGE_SIZE, count),
        None
    );
    assert_eq!(s.snapshot(), before);
    // The whole range, pieces and holes: every frame and the object back.
    assert_eq!(s.munmap_shared(a, 16), Some(()));
    assert_eq!(mappings(&s), []);
    s.finish_shared_work();
    assert_eq!((s.frames.live(), s.vm.stats().frames_in_use), (0, 0));
    assert_eq!(s.vm.object_count(), 0);
}

#[test]
fn a_shared_mmap_that_does_not_apply_changes_nothing() {
    let s = System::new();
    let before = s.snapshot();
    let anon = mman::MAP_PRIVATE | mman::MAP_ANON;
    let shared = mman::MAP_SHARED | mman::MAP_ANON;
    let fixed = anon | mman::MAP_FIXED;
    let cases = [
        (shared, 0, 4, 64),
        (anon, 0, 0, 64),
        (anon, 0, 4, 0),
        (fixed, 0x4000_0001, 4, 64), // unaligned
        (fixed, 0, 4, 64),           // below the user range
        (fixed, 0x4000_0000, 4, 0),  // no room for a mapping
    ];
    for (flags, hint, len, most) in cases {
        let mapped =
            s.vm.mmap_shared(s.space, &s.pt, hint, len * PAGE_SIZE, RW, flags, most);
        assert_eq!(mapped, None, "flags {flags:#x} len {len} most {most}");
        assert_eq!(s.snapshot(), before);
    }
    assert_eq!(
        s.vm.mmap_shared(s.space, &s.pt, 0, PAGE_SIZE, 0xff, anon, 64),
        None,
        "bad prot"
    );
    assert_eq!(s.snapshot(), before);
}

#[test]
fn a_shared_map_fixed_replaces_what_a_shared_munmap_could_unmap() {
    let mut s = System::new();
    let a = s.map_private(8, RW);
    for i in 1..8 {
        s.fault_exclusive(a + i * PAGE_SIZE, Access::Write);
    }
    let page = |i: u64| a + i * PAGE_SIZE;
    let old: Vec<_> = (0..8).map(|i| s.pt.entry(page(i)).unwrap().0).collect();
    // A first shared fault asks for spare objects, made here.
    let asking = s.mmap_shared(0, 1).unwrap();
    needs_exclusive(&s, asking, Access::Write);
    assert_eq!(s.munmap_shared(asking, 1), Some(()));
    s.finish_shared_work();
    let fixed = mman::MAP_PRIVATE | mman::MAP_ANON | mman::MAP_FIXED;
    let map_fixed = |s: &System, at: u64, pages: u64| {
        s.vm.mmap_shared(s.space, &s.pt, at, pages * PAGE_SIZE, RW, fixed, 1024)
    };
    assert_eq!(map_fixed(&s, page(2), 4), Some(page(2)));
    assert_eq!(
        mappings(&s),
        [
            (a, page(2), true),
            (page(2), page(6), true),
            (page(6), page(8), true)
        ]
    );
    for i in 0..8 {
        let replaced = (2..6).contains(&i);
        assert_eq!(s.pt.entry(page(i)).is_none(), replaced, "page {i}");
    }
    assert_eq!(
        s.pt.shared_flushes.0.load(Ordering::Relaxed),
        4,
        "flushed before return"
    );
    // The new mapping has its own object: a new zero page, the shared way.
    assert_eq!(s.shared(page(3), Access::Write), SharedFault::Resolved);
    assert!(!old.contains(&s.pt.entry(page(3)).unwrap().0));
    s.finish_shared_work();
    assert_eq!(s.frames.live(), 5, "the 4 replaced pages freed, 1 new");
    // Over a range of an empty part and a mapping of more cached file
    // pages than a shared call walks: the exclusive way.
    let (_, shared) = big_file_mapping(&mut s, RW);
    let before = s.snapshot();
    assert_eq!(map_fixed(&s, shared - PAGE_SIZE, 2), None);
    assert_eq!(s.snapshot(), before);
    // Over a free range: no unmap at all.
    let free = page(8) + 0x100_0000;
    assert_eq!(map_fixed(&s, free, 2), Some(free));
    assert_eq!(s.munmap_shared(a, 8), Some(()));
    assert_eq!(s.munmap_shared(free, 2), Some(()));
    s.munmap(shared, 300);
    s.finish_shared_work();
    assert_eq!(s.frames.live(), 300, "the file's pages stay cached");
}

#[test]
fn a_shared_mprotect_takes_from_the_entries_what_it_lacks_and_flushes_them() {
    let mut s = System::new();
    let a = s.map_private(8, RW);
    let b = s.mmap_shared(a + 8 * PAGE_SIZE, 4).unwrap();
    assert_eq!(
        b,
        a + 8 * PAGE_SIZE,
        "placed right after: the two cover one range"
    );
    for i in 1..8 {
        assert_eq!(
            s.shared(a + i * PAGE_SIZE, Access::Write),
            SharedFault::Resolved
        );
    }
    let frames = s.frames.live();
    // Both mappings at once, read-only: 8 entries lose write, one request.
    assert_eq!(s.mprotect_shared(a, 12, mman::PROT_READ), Some(()));
    assert_eq!(s.pt.shared_flushes.0.load(Ordering::Relaxed), 8);
    for i in 0..8 {
        let (_, prot) = s.pt.entry(a + i * PAGE_SIZE).unwrap();
        assert!(prot.read && !prot.write);
    }
    assert!(s.vm.maps(s.space).all(|m| m.read && !m.write));
    // A write fault now is the exclusive path's (not permitted).
    needs_exclusive(&s, a + PAGE_SIZE, Access::Write);
    // Adding a permission changes no entry (faults upgrade them).
    assert_eq!(s.mprotect_shared(a, 8, RW), Some(()));
    assert_eq!(s.pt.shared_flushes.0.load(Ordering::Relaxed), 8);
    // PROT_NONE removes the entries and keeps the pages.
    assert_eq!(s.mprotect_shared(a, 8, mman::PROT_NONE), Some(()));
    assert_eq!(s.pt.len(), 0);
    assert_eq!(s.frames.live(), frames, "the pages stay");
    assert_eq!(s.vm.shared_map_calls().2, 3);
}

#[test]
fn a_shared_mprotect_that_does_not_apply_changes_nothing() {
    let mut s = System::new();
    let a = s.map_private(8, RW);
    s.fault_exclusive(a + PAGE_SIZE, Access::Write);
    // A mapping of more cached file pages than a shared call walks.
    let (_, mapped) = big_file_mapping(&mut s, RW);
    let cases = [
        (a - PAGE_SIZE, 9, mman::PROT_READ),     // a hole
        (a + 4 * PAGE_SIZE, 5, mman::PROT_READ), // a hole past the end
        (a, 8, 0xff),                            // bad protection
        (a + 1, 8, mman::PROT_READ),             // unaligned
        (mapped, 4, mman::PROT_READ),            // a big file mapping
    ];
    for (addr, pages, prot) in cases {
        let before = s.snapshot();
        let look = |s: &System| {
            let entries: Vec<_> = (0..8).map(|i| s.pt.entry(a + i * PAGE_SIZE)).collect();
            let prots: Vec<_> = s.vm.maps(s.space).map(|m| (m.read, m.write)).collect();
            (entries, prots)
        };
        let seen = look(&s);
        assert_eq!(
            s.mprotect_shared(addr, pages, prot),
            None,
            "{addr:#x} {pages} {prot:#x}"
        );
        assert_eq!(s.snapshot(), before);
        assert_eq!(look(&s), seen);
    }
    assert_eq!(s.vm.shared_map_calls().2, 0);
}

#[test]
fn a_shared_read_of_a_cached_file_page_maps_its_fault_around_window_too() {
    let mut s = System::new();
    let file = s.file(20);
    // Every page but 7 cached; the cache's own mapping gone again.
    let cache = s.map(20, mman::PROT_READ, mman::MAP_SHARED, Some(file));
    for i in (0..20).filter(|&i| i != 7) {
        s.fault_exclusive(cache + i * PAGE_SIZE, Access::Read);
    }
    s.munmap(cache, 20);
    let window = 0x4000_0000;
    for flags in [mman::MAP_SHARED, mman::MAP_PRIVATE] {
        let a = s.map_at(window, 20, RW, flags, Some(file));
        assert_eq!(a, window);
        if flags == mman::MAP_PRIVATE {
            // The mapping's own copy of page 9, its entry taken away (a
            // whole-mapping PROT_NONE and back): the window leaves it.
            s.fault_exclusive(a + 9 * PAGE_SIZE, Access::Write);
            s.mprotect(a, 20, mman::PROT_NONE);
            s.mprotect(a, 20, RW);
        }
        assert_eq!(
            s.shared(a + 3 * PAGE_SIZE, Access::Read),
            SharedFault::Resolved
        );
        let present: Vec<u64> = (0..20)
            .filter(|&i| s.pt.entry(a + i * PAGE_SIZE).is_some())
            .collect();
        let mut want: Vec<u64> = (0..16).filter(|&i| i != 7).collect();
        if flags == mman::MAP_PRIVATE {
            want.retain(|&i| i != 9);
        }
        assert_eq!(present, want, "flags {flags:#x}");
        for &i in &want {
            let (frame, prot) = s.pt.entry(a + i * PAGE_SIZE).unwrap();
            assert!(!prot.write);
            assert_eq!(s.frames.bytes(frame)[0], i as u8 + 1);
        }
        s.munmap(a, 20);
    }
}

#[test]
fn a_shared_munmap_removes_read_only_shared_and_private_file_mappings() {
    let mut s = System::new();
    let file = s.file(8);
    let shared = s.map(8, mman::PROT_READ, mman::MAP_SHARED, Some(file));
    let private = s.map(8, RW, mman::MAP_PRIVATE, Some(file));
    // Every file page cached and shown read-only by both; the private
    // mapping's own copy of page 2.
    for i in 0..8 {
        s.fault_exclusive(shared + i * PAGE_SIZE, Access::Read);
        s.fault_exclusive(private + i * PAGE_SIZE, Access::Read);
    }
    s.fault_exclusive(private + 2 * PAGE_SIZE, Access::Write);
    assert_eq!(s.pt.len(), 16);
    let (frames, objects) = (s.frames.live(), s.vm.object_count());
    assert_eq!(frames, 9, "8 file pages and the copy");
    // The private mapping's middle: cut in three, pages 2..4 gone (the
    // copy and the file's page 3), page 2 of the file still cached.
    assert_eq!(s.munmap_shared(private + 2 * PAGE_SIZE, 2), Some(()));
    assert!(s.pt.entry(private + 2 * PAGE_SIZE).is_none());
    assert!(s.pt.entry(private + 3 * PAGE_SIZE).is_none());
    assert_eq!(s.pt.len(), 14);
    assert_eq!(
        mappings(&s).len(),
        3,
        "the shared mapping and two pieces of the private one"
    );
    s.finish_shared_work();
    assert_eq!(s.frames.live(), 8, "the copy freed, the file's pages kept");
    // The read-only shared mapping, whole, and the private pieces.
    assert_eq!(s.munmap_shared(shared, 8), Some(()));
    assert_eq!(s.munmap_shared(private, 8), Some(()));
    assert_eq!(s.pt.len(), 0);
    assert_eq!(mappings(&s), []);
    s.finish_shared_work();
    assert_eq!(s.frames.live(), 8, "the file stays cached");
    assert_eq!(s.vm.object_count(), objects - 1, "the private top went");
    // The file reads back right through a new mapping.
    let again = s.map(8, mman::PROT_READ, mman::MAP_SHARED, Some(file));
    assert_eq!(
        s.shared(again + 2 * PAGE_SIZE, Access::Read),
        SharedFault::Resolved
    );
    let (frame, _) = s.pt.entry(again + 2 * PAGE_SIZE).unwrap();
    assert_eq!(s.frames.bytes(frame)[0], 3);
    s.munmap(again, 8);
}

#[test]
fn a_shared_mprotect_of_a_read_only_file_mapping_removes_or_keeps_its_entries() {
    let mut s = System::new();
    let file = s.file(4);
    let a = s.map(4, mman::PROT_READ, mman::MAP_SHARED, Some(file));
    for i in 0..4 {
        s.fault_exclusive(a + i * PAGE_SIZE, Access::Read);
    }
    assert_eq!(s.mprotect_shared(a, 2, mman::PROT_NONE), Some(()));
    assert!(s.pt.entry(a).is_none() && s.pt.entry(a + PAGE_SIZE).is_none());
    assert!(s.pt.entry(a + 2 * PAGE_SIZE).is_some());
    // Write permission added: the entries stay read-only (a write marks
    // the page dirty the exclusive way).
    assert_eq!(s.mprotect_shared(a + 2 * PAGE_SIZE, 2, RW), Some(()));
    assert!(!s.pt.entry(a + 2 * PAGE_SIZE).unwrap().1.write);
    needs_exclusive(&s, a + 2 * PAGE_SIZE, Access::Write);
    s.finish_shared_work();
    s.munmap(a, 4);
}

#[test]
fn a_shared_munmap_or_mprotect_of_shared_anonymous_memory_keeps_its_pages_for_its_object() {
    let mut s = System::new();
    let a = s.map(8, RW, mman::MAP_SHARED | mman::MAP_ANON, None);
    for i in 0..8 {
        s.fault_exclusive(a + i * PAGE_SIZE, Access::Write);
        let (frame, _) = s.pt.entry(a + i * PAGE_SIZE).unwrap();
        s.frames.bytes_mut(frame)[0] = 40 + i as u8;
    }
    let objects = s.vm.object_count();
    // Read-only: every entry loses its write permission, none goes.
    assert_eq!(s.mprotect_shared(a, 8, mman::PROT_READ), Some(()));
    assert_eq!(s.pt.len(), 8);
    assert!((0..8).all(|i| !s.pt.entry(a + i * PAGE_SIZE).unwrap().1.write));
    assert_eq!(s.mprotect_shared(a, 8, RW), Some(()));
    // The middle unmapped: cut in two, its entries gone, the object's
    // pages kept (shared memory lives as long as its object).
    assert_eq!(s.munmap_shared(a + 2 * PAGE_SIZE, 4), Some(()));
    assert_eq!(s.pt.len(), 4);
    assert!((2..6).all(|i| s.pt.entry(a + i * PAGE_SIZE).is_none()));
    assert_eq!(mappings(&s).len(), 2);
    s.finish_shared_work();
    assert_eq!(s.frames.live(), 8);
    assert_eq!(s.vm.object_count(), objects);
    let (frame, _) = s.pt.entry(a + 7 * PAGE_SIZE).unwrap();
    assert_eq!(s.frames.bytes(frame)[0], 47, "the pieces still show it");
    // The pieces unmapped: the object goes with its last mapping.
    assert_eq!(s.munmap_shared(a, 2), Some(()));
    assert_eq!(s.munmap_shared(a + 6 * PAGE_SIZE, 2), Some(()));
    assert_eq!(s.pt.len(), 0);
    s.finish_shared_work();
    assert_eq!((s.frames.live(), s.vm.stats().frames_in_use), (0, 0));
    assert_eq!(s.vm.object_count(), objects - 1);
}

#[test]
fn a_shared_mmap_of_shared_anonymous_memory_takes_a_spare_object_or_goes_the_exclusive_way() {
    let mut s = System::new();
    let flags = mman::MAP_SHARED | mman::MAP_ANON;
    let map = |s: &System| {
        s.vm.mmap_shared(s.space, &s.pt, 0, 4 * PAGE_SIZE, RW, flags, 1024)
    };
    // No spare object yet: the exclusive way, nothing changed.
    let before = s.snapshot();
    assert_eq!(map(&s), None);
    assert_eq!(s.snapshot(), before);
    s.finish_shared_work();
    // Each takes a spare: its own object at once, as the exclusive way
    // makes one (a fork shares it), a zero page on its first touch.
    let a = map(&s).unwrap();
    let b = map(&s).unwrap();
    assert_eq!(s.vm.object_count(), 2);
    assert_eq!(s.shared(a, Access::Write), SharedFault::Resolved);
    assert_eq!(s.shared(b, Access::Write), SharedFault::Resolved);
    let (fa, prot) = s.pt.entry(a).unwrap();
    assert!(prot.write);
    assert_ne!(fa, s.pt.entry(b).unwrap().0, "two objects, two pages");
    assert_eq!(s.frames.bytes(fa), &[0; PAGE_SIZE as usize]);
    // A bound of mappings reached: the exclusive way decides.
    let full = s.vm.mmap_shared(s.space, &s.pt, 0, PAGE_SIZE, RW, flags, 2);
    assert_eq!(full, None);
    // The spares run out: the exclusive way again.
    let mut made = vec![a, b];
    while let Some(c) = map(&s) {
        made.push(c);
    }
    assert_eq!(made.len(), 16, "as many as the exclusive section made");
    for a in made {
        assert_eq!(s.munmap_shared(a, 4), Some(()));
    }
    s.finish_shared_work();
    assert_eq!((s.frames.live(), s.vm.object_count()), (0, 0));
}

#[test]
fn a_shared_munmap_or_mprotect_of_a_writable_shared_file_mapping_settles_its_writers() {
    let mut s = System::new();
    let file = s.file(8);
    let a = s.map(8, RW, mman::MAP_SHARED, Some(file));
    for i in 0..8 {
        s.fault_exclusive(a + i * PAGE_SIZE, Access::Write);
        let (frame, _) = s.pt.entry(a + i * PAGE_SIZE).unwrap();
        s.frames.bytes_mut(frame)[0] = 0xa0 + i as u8;
    }
    // A second writable mapping of the file keeps pages 6 and 7 written.
    let b = s.map(8, RW, mman::MAP_SHARED, Some(file));
    for i in [6, 7] {
        s.fault_exclusive(b + i * PAGE_SIZE, Access::Write);
    }
    let sync = |s: &mut System| {
        let mut hw = Hw::new(&mut s.pt, &mut s.frames, &mut s.pager);
        s.vm.file_sync(&mut hw.io(), file).unwrap();
        let dirty: Vec<u64> = (0..8)
            .filter(|&i| s.vm.file_page_dirty(file, i) == Some(true))
            .collect();
        dirty
    };
    // Pages 0..2 read-only, pages 2..8 unmapped, both the shared way; the
    // exclusive section settles the writers before anything reads them.
    assert_eq!(s.mprotect_shared(a, 2, mman::PROT_READ), Some(()));
    assert!(!s.pt.entry(a).unwrap().1.write);
    assert_eq!(s.munmap_shared(a + 2 * PAGE_SIZE, 6), Some(()));
    assert!((2..8).all(|i| s.pt.entry(a + i * PAGE_SIZE).is_none()));
    s.finish_shared_work();
    assert_eq!(sync(&mut s), [6, 7], "still writable through the other");
    let written = s.pager.contents(file);
    for i in 0..8u64 {
        assert_eq!(written[(i * PAGE_SIZE) as usize], 0xa0 + i as u8);
    }
    // The other mapping goes too: every page can be made clean.
    assert_eq!(s.munmap_shared(b, 8), Some(()));
    s.finish_shared_work();
    assert_eq!(sync(&mut s), [], "no writable entry left");
    assert_eq!(s.munmap_shared(a, 2), Some(()));
    s.finish_shared_work();
    assert_eq!(s.frames.live(), 8, "the file stays cached");
}

#[test]
fn a_shared_mmap_of_a_file_takes_a_reference_to_its_object_or_goes_the_exclusive_way() {
    let mut s = System::new();
    let file = s.file(8);
    let read_only = FileAccess::ReadOnly;
    let map = |s: &System, prot: u32, access: FileAccess, offset: i64| {
        s.vm.mmap_shared_file(
            s.space,
            0,
            4 * PAGE_SIZE,
            prot,
            mman::MAP_SHARED,
            (file, access),
            offset,
            1024,
        )
    };
    // Not its case: nothing changed (the exclusive way reports each).
    let before = s.snapshot();
    assert_eq!(map(&s, RW, read_only, 0), None, "write on a read-only file");
    assert_eq!(
        map(&s, mman::PROT_READ, read_only, 5),
        None,
        "unaligned offset"
    );
    let other = s.vm.mmap_shared_file(
        s.space,
        0,
        PAGE_SIZE,
        RW,
        mman::MAP_SHARED,
        (FileId(99), FileAccess::ReadWrite),
        0,
        1024,
    );
    assert_eq!(other, None, "a file without its object");
    assert_eq!(s.snapshot(), before);
    // The file cached (through a mapping made and gone the exclusive way),
    // then its pages 2..6 read through the shared way.
    let cache = s.map(8, mman::PROT_READ, mman::MAP_SHARED, Some(file));
    for i in 0..8 {
        s.fault_exclusive(cache + i * PAGE_SIZE, Access::Read);
    }
    s.munmap(cache, 8);
    let a = map(&s, mman::PROT_READ, read_only, 2 * PAGE_SIZE as i64).unwrap();
    assert!(
        s.vm.has_shared_work(),
        "the exclusive section is asked to run"
    );
    // One fault maps the window's cached pages (fault-around).
    assert_eq!(s.shared(a, Access::Read), SharedFault::Resolved);
    for i in 0..4 {
        let (frame, prot) = s.pt.entry(a + i * PAGE_SIZE).unwrap();
        assert!(!prot.write);
        assert_eq!(s.frames.bytes(frame)[0], 3 + i as u8, "the file's page");
    }
    // Writable where the descriptor allows: a write marks the page dirty
    // the exclusive way.
    let w = map(&s, RW, FileAccess::ReadWrite, 0).unwrap();
    needs_exclusive(&s, w, Access::Write);
    s.fault_exclusive(w, Access::Write);
    assert_eq!(s.vm.file_page_dirty(file, 0), Some(true));
    assert_eq!(s.munmap_shared(a, 4), Some(()));
    assert_eq!(s.munmap_shared(w, 4), Some(()));
    s.finish_shared_work();
    assert_eq!(s.vm.maps(s.space).count(), 0);
    assert_eq!(
        s.vm.object_count(),
        1,
        "the file's object stays (its descriptor)"
    );
}

#[test]
fn a_private_mmap_of_a_file_shows_a_spare_object_over_it_or_goes_the_exclusive_way() {
    let mut s = System::new();
    let file = s.file(8);
    // The file cached (through a mapping made and gone the exclusive way).
    let cache = s.map(8, mman::PROT_READ, mman::MAP_SHARED, Some(file));
    for i in 0..8 {
        s.fault_exclusive(cache + i * PAGE_SIZE, Access::Read);
    }
    s.munmap(cache, 8);
    s.finish_shared_work();
    let map = |s: &System, flags: u32, offset: i64| {
        let access = (file, FileAccess::ReadOnly);
        s.vm.mmap_shared_file(s.space, 0, 4 * PAGE_SIZE, RW, flags, access, offset, 1024)
    };
    // Not its case, or no spare object yet: nothing changed.
    let before = s.snapshot();
    let private = mman::MAP_PRIVATE;
    assert_eq!(map(&s, private | mman::MAP_FIXED, 0), None, "fixed");
    assert_eq!(map(&s, private, 5), None, "unaligned offset");
    assert_eq!(map(&s, private, 0), None, "no spare object");
    assert_eq!(s.snapshot(), before);
    s.finish_shared_work();
    // Writable with a read-only descriptor (a private view), from page 1.
    let a = map(&s, private, PAGE_SIZE as i64).unwrap();
    assert!(s.vm.has_shared_work(), "asked to mark the file accessed");
    assert_eq!(s.vm.object_count(), 2, "the file and the view's top");
    // A read shows the file's page, read-only.
    assert_eq!(s.shared(a, Access::Read), SharedFault::Resolved);
    let (file_page, prot) = s.pt.entry(a).unwrap();
    assert!(!prot.write);
    assert_eq!(s.frames.bytes(file_page)[0], 2, "the file's page 1");
    // A write copies it the exclusive way; the file keeps its page.
    needs_exclusive(&s, a + PAGE_SIZE, Access::Write);
    s.fault_exclusive(a + PAGE_SIZE, Access::Write);
    let (copy, prot) = s.pt.entry(a + PAGE_SIZE).unwrap();
    assert!(prot.write);
    assert_eq!(s.frames.bytes(copy)[0], 3, "a copy of page 2");
    s.frames.bytes_mut(copy)[0] = 0xee;
    let b = map(&s, private, 2 * PAGE_SIZE as i64).unwrap();
    assert_eq!(s.shared(b, Access::Read), SharedFault::Resolved);
    let (frame, _) = s.pt.entry(b).unwrap();
    assert_ne!(frame, copy);
    assert_eq!(s.frames.bytes(frame)[0], 3, "the file still has its own");
    assert_eq!(s.munmap_shared(a, 4), Some(()));
    assert_eq!(s.munmap_shared(b, 4), Some(()));
    s.finish_shared_work();
    assert_eq!(s.vm.maps(s.space).count(), 0);
    assert_eq!(s.frames.live(), 8, "the copy freed, the file cached");
    // Every reference given back: the file's object goes with its close.
    let mut hw = Hw::new(&mut s.pt, &mut s.frames, &mut s.pager);
    s.vm.file_close_ref(&mut hw.io(), file).unwrap();
    assert_eq!((s.vm.object_count(), s.frames.live()), (0, 0));
}

#[test]
fn a_shared_mremap_grows_private_memory_in_place_moves_it_shrinks_it_or_goes_the_exclusive_way() {
    let mut s = System::new();
    let remap = |s: &System, at: u64, (pages, new_pages): (u64, u64), flags: u32| {
        let lens = (at, pages * PAGE_SIZE, new_pages * PAGE_SIZE);
        s.vm.mremap_shared(s.space, &s.pt, lens, flags, 1024)
    };
    let word = |s: &System, va: u64| s.frames.bytes(s.pt.entry(va).unwrap().0)[0];
    let anon = mman::MAP_PRIVATE | mman::MAP_ANON;
    let a = s.map_at(0x1000_0000, 2, RW, anon, None);
    assert_eq!(a, 0x1000_0000);
    for i in 0..2 {
        s.fault_exclusive(a + i * PAGE_SIZE, Access::Write);
        let (frame, _) = s.pt.entry(a + i * PAGE_SIZE).unwrap();
        s.frames.bytes_mut(frame)[0] = 0x60 + i as u8;
    }
    // The range after it free: it grows in place, its pages kept, the new
    // ones zero on their first touch.
    assert_eq!(remap(&s, a, (2, 4), 0), Some(a));
    assert_eq!(s.vm.shared_remap_calls(), 1);
    let maps: Vec<(u64, u64)> = s.vm.maps(s.space).map(|m| (m.start, m.end)).collect();
    assert_eq!(maps, [(a, a + 4 * PAGE_SIZE)]);
    assert_eq!((word(&s, a), word(&s, a + PAGE_SIZE)), (0x60, 0x61));
    assert_eq!(
        s.shared(a + 3 * PAGE_SIZE, Access::Write),
        SharedFault::Resolved
    );
    assert_eq!(word(&s, a + 3 * PAGE_SIZE), 0);
    // A neighbour right after: without MREMAP_MAYMOVE the exclusive way
    // (which refuses); with it, the mapping moves.
    let b = s.map_at(a + 4 * PAGE_SIZE, 1, RW, anon, None);
    assert_eq!(b, a + 4 * PAGE_SIZE);
    let before = s.snapshot();
    assert_eq!(remap(&s, a, (4, 8), 0), None);
    assert_eq!(s.snapshot(), before);
    let live = s.frames.live();
    let c = remap(&s, a, (4, 8), mman::MREMAP_MAYMOVE).unwrap();
    assert_ne!(c, a);
    assert!(
        (0..4).all(|i| s.pt.entry(a + i * PAGE_SIZE).is_none()),
        "old entries gone"
    );
    assert_eq!(s.frames.live(), live, "the pages stay with the object");
    let maps: Vec<(u64, u64)> = s.vm.maps(s.space).map(|m| (m.start, m.end)).collect();
    assert!(maps.contains(&(c, c + 8 * PAGE_SIZE)) && !maps.iter().any(|m| m.0 == a));
    for (i, expected) in [(0, 0x60), (1, 0x61), (3, 0)] {
        s.fault_exclusive(c + i * PAGE_SIZE, Access::Read);
        assert_eq!(word(&s, c + i * PAGE_SIZE), expected, "page {i} moved");
    }
    s.finish_shared_work();
    // Not its case: nothing changed (the exclusive way decides each).
    let file = s.file(4);
    let private_file = s.map(4, RW, mman::MAP_PRIVATE, Some(file));
    let shared = s.map(4, RW, mman::MAP_SHARED | mman::MAP_ANON, None);
    let before = s.snapshot();
    let fixed = mman::MREMAP_MAYMOVE | mman::MREMAP_FIXED;
    assert_eq!(remap(&s, c, (2, 4), mman::MREMAP_MAYMOVE), None, "a part");
    assert_eq!(remap(&s, c, (8, 8), 0), None, "the same length");
    assert_eq!(remap(&s, c, (8, 9), fixed), None, "fixed");
    assert_eq!(remap(&s, private_file, (4, 8), mman::MREMAP_MAYMOVE), None);
    assert_eq!(remap(&s, shared, (4, 8), mman::MREMAP_MAYMOVE), None);
    // Hostile lengths and flags: nothing changed.
    let hostile = |s: &System, lens: (u64, u64, u64), flags: u32| {
        s.vm.mremap_shared(s.space, &s.pt, lens, flags, 1024)
    };
    let maymove = mman::MREMAP_MAYMOVE;
    let huge = 8 * PAGE_SIZE;
    assert_eq!(hostile(&s, (c, huge, u64::MAX), maymove), None, "overflow");
    assert_eq!(hostile(&s, (c, huge, u64::MAX - PAGE_SIZE), maymove), None);
    assert_eq!(
        hostile(&s, (c, huge, 1 << 62), maymove),
        None,
        "past user space"
    );
    assert_eq!(
        hostile(&s, (c, u64::MAX, huge), 0),
        None,
        "old length overflows"
    );
    assert_eq!(hostile(&s, (c, 0, huge), maymove), None, "no old length");
    assert_eq!(
        hostile(&s, (c + 1, huge, 2 * huge), maymove),
        None,
        "unaligned"
    );
    assert_eq!(
        hostile(&s, (c, huge, 2 * huge), 0xff),
        None,
        "unknown flags"
    );
    assert_eq!(hostile(&s, (!0xfff, huge, 2 * huge), maymove), None);
    assert_eq!(s.snapshot(), before);
    // A shrink unmaps the tail (its entries at once, its pages at the next
    // exclusive section), as munmap would.
    s.fault_exclusive(c + 7 * PAGE_SIZE, Access::Write);
    let live = s.frames.live();
    assert_eq!(remap(&s, c, (8, 6), 0), Some(c));
    assert!(s.pt.entry(c + 7 * PAGE_SIZE).is_none());
    s.finish_shared_work();
    assert_eq!(s.frames.live(), live - 1);
    let maps: Vec<(u64, u64)> = s.vm.maps(s.space).map(|m| (m.start, m.end)).collect();
    assert!(maps.contains(&(c, c + 6 * PAGE_SIZE)));
    // A cut mapping: its pieces share the object, whose pages past a
    // piece's end another piece shows.
    assert_eq!(s.munmap_shared(c + 2 * PAGE_SIZE, 1), Some(()));
    s.finish_shared_work();
    assert_eq!(remap(&s, c, (2, 4), mman::MREMAP_MAYMOVE), None, "a piece");
    for (at, pages) in [
        (c, 2),
        (c + 3 * PAGE_SIZE, 3),
        (b, 1),
        (private_file, 4),
        (shared, 4),
    ] {
        s.munmap(at, pages);
    }
    s.finish_shared_work();
    let mut hw = Hw::new(&mut s.pt, &mut s.frames, &mut s.pager);
    s.vm.file_close_ref(&mut hw.io(), file).unwrap();
    assert_eq!(
        (s.pt.len(), s.frames.live(), s.vm.object_count()),
        (0, 0, 0)
    );
}

#[test]
fn a_shared_brk_grows_the_heap_in_place_and_shrinks_it_or_goes_the_exclusive_way() {
    let mut s = System::new();
    let start = 0x2000_0000;
    let brk = |s: &System, addr: u64| s.vm.brk_shared(s.space, &s.pt, addr, 1024);
    let at = |end: u64| ProgramBreak { start, end };
    assert!(s.vm.set_program_break(s.space, at(start)));
    // No heap mapping yet: its first growth makes one the exclusive way.
    let before = s.snapshot();
    assert_eq!(brk(&s, start + PAGE_SIZE), None);
    assert_eq!(s.snapshot(), before);
    let anon = mman::MAP_PRIVATE | mman::MAP_ANON;
    assert_eq!(s.map_at(start, 1, RW, anon, None), start);
    assert!(s.vm.set_program_break(s.space, at(start + PAGE_SIZE)));
    // Grown in place, asked, kept below its start and past user space.
    let grown = start + 3 * PAGE_SIZE + 5;
    assert_eq!(brk(&s, grown), Some(grown));
    assert_eq!(brk(&s, 0), Some(grown));
    assert_eq!(brk(&s, start - 1), Some(grown));
    assert_eq!(brk(&s, u64::MAX), Some(grown));
    let maps: Vec<(u64, u64)> = s.vm.maps(s.space).map(|m| (m.start, m.end)).collect();
    assert_eq!(maps, [(start, start + 4 * PAGE_SIZE)], "one heap mapping");
    for i in 0..4 {
        s.fault_exclusive(start + i * PAGE_SIZE, Access::Write);
    }
    // Shrunk: the pages past the new end unmapped (entries gone at once,
    // frames at the next exclusive section), the break moved with them.
    let live = s.frames.live();
    assert_eq!(brk(&s, start + PAGE_SIZE + 1), Some(start + PAGE_SIZE + 1));
    assert!((2..4).all(|i| s.pt.entry(start + i * PAGE_SIZE).is_none()));
    assert!(s.pt.entry(start + PAGE_SIZE).is_some(), "its page end kept");
    assert_eq!(s.vm.program_break(s.space), Some(at(start + PAGE_SIZE + 1)));
    s.finish_shared_work();
    assert_eq!(s.frames.live(), live - 2);
    assert_eq!(s.vm.shared_brk_calls(), 5);
    // Another mapping in the way of a growth: the exclusive way decides.
    s.map_at(start + 3 * PAGE_SIZE, 1, RW, anon, None);
    let before = s.snapshot();
    assert_eq!(brk(&s, start + 4 * PAGE_SIZE), None);
    assert_eq!(s.snapshot(), before);
    assert_eq!(s.vm.program_break(s.space), Some(at(start + PAGE_SIZE + 1)));
}
