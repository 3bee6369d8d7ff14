//! x86_64 4-level page tables and physical memory access through the direct map.
//!
//! Owns: the kernel's own top-level table (built at run time: a direct map of
//! all RAM at `DIRECT_MAP_BASE` and the kernel image at -2 GiB, both global),
//! and the per-process tables as [`UserPageTable`] values (user half private,
//! kernel half shared), with the entry operations the mapping core needs:
//! map, unmap (returning the hardware dirty and accessed bits), protect,
//! query, clear-dirty, changes to every present entry of a range (walking
//! only present tables), and the release of tables left empty. Entry flags are
//! the `x86_64` crate's [`PageTableFlags`]; the walk is our own (no
//! `OffsetPageTable` per call, no huge pages in user tables).

use core::sync::atomic::{AtomicU64, Ordering};

pub use x86_64::structures::paging::PageTableFlags;

use super::frames::{self, PhysFrame};
use super::smp::RemoteFlush;

/// Where all physical memory is mapped in the kernel half.
pub const DIRECT_MAP_BASE: u64 = 0xffff_8000_0000_0000;
/// Where the kernel image runs.
pub const KERNEL_BASE: u64 = 0xffff_ffff_8000_0000;
pub const PAGE_SIZE: u64 = neoos_abi::PAGE_SIZE as u64;
/// Where the kernel stacks are mapped, page by page (top-level entry 384,
/// whose directory every user root shares): see `context`. Each stack is
/// a physically contiguous heap block, so a buffer on it is too.
pub const KERNEL_STACK_AREA: u64 = 0xffff_c000_0000_0000;
/// Bytes of the kernel-stack area; its page tables are made with the
/// kernel's own and kept for good (so stacks never allocate tables).
pub const KERNEL_STACK_AREA_SIZE: u64 = 8 << 20;
/// End of the lower (user) half of the address space.
const USER_HALF_END: u64 = 1 << 47;
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

const PRESENT: u64 = PageTableFlags::PRESENT.bits();
const WRITABLE: u64 = PageTableFlags::WRITABLE.bits();
const USER: u64 = PageTableFlags::USER_ACCESSIBLE.bits();
const HUGE: u64 = PageTableFlags::HUGE_PAGE.bits();
const GLOBAL: u64 = PageTableFlags::GLOBAL.bits();
const NO_EXECUTE: u64 = PageTableFlags::NO_EXECUTE.bits();

static KERNEL_ROOT: AtomicU64 = AtomicU64::new(0);
/// The physical address where the direct map ends (set with the kernel's tables).
static DIRECT_MAP_END: AtomicU64 = AtomicU64::new(0);

/// The kernel-virtual address of physical address `phys`.
pub fn phys_to_virt(phys: u64) -> u64 {
    DIRECT_MAP_BASE + phys
}

/// The end of the physical range the direct map covers (0 before the
/// kernel's own tables exist).
pub fn direct_map_end() -> u64 {
    DIRECT_MAP_END.load(Ordering::Relaxed)
}

/// The physical address of the kernel's own top-level table (0 before it exists).
pub fn kernel_root() -> u64 {
    KERNEL_ROOT.load(Ordering::Relaxed)
}

/// The physical address of a kernel-image address (statics, the heap arena).
pub fn kernel_image_phys(virt: u64) -> u64 {
    virt - KERNEL_BASE
}

/// The 512 entries of the page-table frame at `phys`.
///
/// # Safety
/// `phys` must be a page-table frame this module owns (a root or a table
/// reached through a present, non-huge entry of one), and no other
/// reference to it may be live while the returned one is used (the kernel
/// runs on one CPU with interrupts off; every use here is short).
unsafe fn table<'a>(phys: u64) -> &'a mut [u64; 512] {
    // SAFETY: the caller's guarantees; tables lie in RAM covered by the
    // direct map and are page aligned.
    unsafe { &mut *(phys_to_virt(phys) as *mut [u64; 512]) }
}

/// A zeroed frame given up to a page table (which owns it from now on).
fn zeroed_table_frame() -> Option<u64> {
    let mut frame = frames::alloc()?;
    frame.zero();
    Some(frame.into_raw())
}

/// Gives a table frame unlinked from every table back to the allocator.
///
/// # Safety
/// `phys` must be a table frame of ours that no entry points to any more.
unsafe fn free_table_frame(phys: u64) {
    // SAFETY: table frames come from `zeroed_table_frame` (into_raw); the
    // caller unlinked this one, so it is re-wrapped once.
    frames::free(unsafe { PhysFrame::from_raw(phys) });
}

fn index(virt: u64, level: u32) -> usize {
    ((virt >> (12 + 9 * level)) & 511) as usize
}

/// Builds the kernel's top-level table and switches to it. `max_phys` is
/// the end of RAM. The frames stay the kernel's for good. Only the first
/// call builds anything.
pub fn init_kernel_tables(max_phys: u64) {
    if KERNEL_ROOT.load(Ordering::Relaxed) != 0 {
        return;
    }
    let zeroed = || zeroed_table_frame().expect("frames for the kernel page tables");
    let root = zeroed();
    let set = |t: u64, i: usize, e: u64| {
        // SAFETY: every `t` passed is a frame just allocated and zeroed
        // here, which nothing else refers to yet.
        unsafe { table(t)[i] = e }
    };
    // Direct map: 2 MiB pages over all RAM, in 1 GiB directories.
    let direct_pdpt = zeroed();
    set(root, 256, direct_pdpt | PRESENT | WRITABLE);
    let gigabytes = max_phys.div_ceil(1 << 30).max(4);
    for g in 0..gigabytes.min(512) {
        let pd = zeroed();
        set(direct_pdpt, g as usize, pd | PRESENT | WRITABLE);
        for e in 0..512u64 {
            let phys = (g << 30) | (e << 21);
            set(
                pd,
                e as usize,
                phys | PRESENT | WRITABLE | HUGE | GLOBAL | NO_EXECUTE,
            );
        }
    }
    // Kernel image: the first GiB at -2 GiB.
    let image_pdpt = zeroed();
    let image_pd = zeroed();
    set(root, 511, image_pdpt | PRESENT | WRITABLE);
    set(image_pdpt, 510, image_pd | PRESENT | WRITABLE);
    for e in 0..512u64 {
        set(
            image_pd,
            e as usize,
            (e << 21) | PRESENT | WRITABLE | HUGE | GLOBAL,
        );
    }
    // Pre-create the remaining kernel-half directories, so that every user
    // root (which copies entries 256..512) sees later kernel mappings.
    for slot in 257..511 {
        set(root, slot, zeroed() | PRESENT | WRITABLE);
    }
    let mut covered = KERNEL_STACK_AREA;
    while covered < KERNEL_STACK_AREA + KERNEL_STACK_AREA_SIZE {
        // SAFETY: `root` is the kernel root just built, used by nothing else yet.
        unsafe { walk_kernel_stack_area(root, covered, true) }
            .expect("frames for the kernel-stack page tables");
        covered += 1 << 21;
    }
    KERNEL_ROOT.store(root, Ordering::Relaxed);
    DIRECT_MAP_END.store(gigabytes.min(512) << 30, Ordering::Relaxed);
    // SAFETY: the new table maps the kernel image where it runs and all RAM
    // at the direct-map base, as the boot tables did.
    unsafe { super::cpu::load_root(root) };
}

/// Switches to the kernel's own tables (no user half).
pub fn activate_kernel_tables() {
    let root = KERNEL_ROOT.load(Ordering::Relaxed);
    if root != 0 {
        // SAFETY: the kernel root built by init_kernel_tables maps the kernel.
        unsafe { super::cpu::load_root(root) };
        super::percpu::current()
            .user_root
            .store(0, Ordering::Release);
    }
}

/// Walks the kernel root `root` to the level-1 entry of `virt`, an address
/// of the kernel-stack area, creating missing tables when `create` (not
/// user-accessible). `None` outside the area or without a frame for a table.
///
/// # Safety
/// `root` must be the kernel root; with `create`, nothing else may be
/// walking it (only `init_kernel_tables` creates).
unsafe fn walk_kernel_stack_area(root: u64, virt: u64, create: bool) -> Option<(u64, usize)> {
    let area = KERNEL_STACK_AREA..KERNEL_STACK_AREA + KERNEL_STACK_AREA_SIZE;
    // SAFETY: the caller's guarantees; the area holds no huge entries.
    unsafe { walk(root, virt, area, create, 0) }
}

/// Maps page `virt` of the kernel-stack area to `frame`, writable and not
/// executable. `false` outside the area or when the page is mapped already.
pub fn map_kernel_stack_page(virt: u64, frame: u64) -> bool {
    // SAFETY: the kernel root (its stack-area tables were made with it);
    // nothing is created; the kernel runs its stack bookkeeping on one CPU.
    let Some((t, i)) = (unsafe { walk_kernel_stack_area(kernel_root(), virt, false) }) else {
        return false;
    };
    // SAFETY: `t` is a level-1 table of the stack area, just walked to.
    let entry = unsafe { &mut table(t)[i] };
    if *entry & PRESENT != 0 {
        return false;
    }
    *entry = (frame & ADDRESS_MASK) | PRESENT | WRITABLE | NO_EXECUTE;
    true
}

/// The physical address `virt`, an address of the kernel-stack area, is
/// mapped to, if it is mapped.
pub fn kernel_stack_phys(virt: u64) -> Option<u64> {
    // SAFETY: as in map_kernel_stack_page.
    let (t, i) = unsafe { walk_kernel_stack_area(kernel_root(), virt, false) }?;
    // SAFETY: `t` is a level-1 table of the stack area, just walked to.
    let (frame, _) = decode(unsafe { table(t)[i] })?;
    Some(frame + (virt & (PAGE_SIZE - 1)))
}

/// Unmaps page `virt` of the kernel-stack area (and drops its translation
/// on this CPU; no other CPU holds one: see `context`'s TLB rule); returns
/// the frame it mapped, if any.
pub fn unmap_kernel_stack_page(virt: u64) -> Option<u64> {
    // SAFETY: as in map_kernel_stack_page.
    let (t, i) = unsafe { walk_kernel_stack_area(kernel_root(), virt, false) }?;
    // SAFETY: `t` is a level-1 table of the stack area, just walked to.
    let entry = unsafe { &mut table(t)[i] };
    let (frame, _) = decode(*entry)?;
    *entry = 0;
    super::cpu::invalidate_page(virt);
    Some(frame)
}

/// What [`UserPageTable::update_present`] does with one present entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafChange {
    /// Leave it.
    Keep,
    /// Replace its permission bits (as [`UserPageTable::set_flags`]).
    SetFlags(PageTableFlags),
    /// Clear it.
    Clear,
}

/// No frame could be had for an intermediate page table.
#[derive(Debug)]
pub struct NoTableMemory;

/// One process's page table: the root frame and every user-half table
/// under it belong to this value; the kernel half is the kernel's, shared.
/// Dropping it frees its tables (after switching away when it is active).
/// Only user-half addresses are accepted: anything else reads as absent.
#[derive(Debug)]
pub struct UserPageTable {
    root: u64,
    /// The CPUs that may cache this table's entries, by CPU number: a bit
    /// is set when a CPU loads the table and cleared (lazily) by a flush
    /// that finds the CPU on another table (`smp::flush_remote`).
    cpus: AtomicU64,
    /// The level-1 table `map` reached last, as (the 2 MiB block it
    /// covers, `virt >> 21`; its frame), or [`NO_LEAF`]: a run of faults
    /// in one block stores through it without walking from the root. A
    /// table stays linked until `release_empty_tables`, which forgets it.
    last_leaf: (u64, u64),
}

/// [`UserPageTable::last_leaf`] naming no table (no user block is this).
const NO_LEAF: (u64, u64) = (u64::MAX, 0);

/// Bits of an address below its level-1 table's block (2 MiB).
const LEAF_BLOCK_SHIFT: u32 = 21;

impl UserPageTable {
    /// A new table with an empty user half, or `None` without memory (or
    /// before the kernel's tables exist).
    pub fn new() -> Option<Self> {
        let kernel_root = KERNEL_ROOT.load(Ordering::Relaxed);
        if kernel_root == 0 {
            return None;
        }
        let root = zeroed_table_frame()?;
        // SAFETY: `root` is ours and fresh; the kernel root is only written
        // by init_kernel_tables, which is done.
        unsafe {
            let kernel = *table(kernel_root);
            table(root)[256..].copy_from_slice(&kernel[256..]);
        }
        Some(UserPageTable {
            root,
            cpus: AtomicU64::new(0),
            last_leaf: NO_LEAF,
        })
    }

    /// Whether the CPU runs on this table.
    pub fn is_active(&self) -> bool {
        super::cpu::current_root() == self.root
    }

    /// Makes this the CPU's table (flushes every non-global TLB entry:
    /// PCIDs are off) and records it as the CPU's (`PerCpu::user_root`)
    /// and the CPU as one of the table's. Called under the kernel lock (as
    /// every flush is), so no flush runs between the two records.
    pub fn activate(&self) {
        let cpu = super::percpu::current();
        self.cpus.fetch_or(1 << cpu.index(), Ordering::AcqRel);
        // SAFETY: the kernel half is the kernel's own mapping (copied at
        // creation; the kernel-half directories never change), so the
        // running code stays mapped; the table lives while active (Drop
        // switches away first; every CPU loads the kernel's tables when it
        // leaves a thread, so only a CPU running a thread of its process
        // has it loaded).
        unsafe { super::cpu::load_root(self.root) };
        cpu.user_root.store(self.root, Ordering::Release);
    }

    /// Drops the cached translation of `va` on every CPU that has this
    /// table loaded (without PCIDs a CPU that has not has none).
    pub fn invalidate(&self, va: u64) {
        self.invalidate_pages(&[va]);
    }

    /// Drops the cached translations of `pages` on every CPU that has this
    /// table loaded: one request to each other CPU for them all.
    pub fn invalidate_pages(&self, pages: &[u64]) {
        if self.is_active() {
            for &va in pages {
                super::cpu::invalidate_page(va);
            }
        }
        super::smp::flush_remote(self.root, &self.cpus, RemoteFlush::Pages(pages));
    }

    /// Drops every cached user translation of this table, on every CPU
    /// that has it loaded.
    pub fn invalidate_all(&self) {
        if self.is_active() {
            self.activate();
        }
        super::smp::flush_remote(self.root, &self.cpus, RemoteFlush::All);
    }

    /// Walks to the level-1 entry of user address `virt` through existing
    /// tables. Returns the table frame and the index of the entry.
    fn walk(&self, virt: u64) -> Option<(u64, usize)> {
        // SAFETY: the root is ours; nothing is created.
        unsafe { walk_from(self.root, virt, false) }
    }

    /// As `walk`, creating the missing tables (`None` without memory).
    /// Out of line: `map` calls it only when a table is missing.
    #[inline(never)]
    fn walk_creating(&mut self, virt: u64) -> Option<(u64, usize)> {
        // SAFETY: the root is ours, borrowed exclusively.
        unsafe { walk_from(self.root, virt, true) }
    }

    /// The level-1 entry of `virt`, if its tables exist.
    fn leaf(&mut self, virt: u64) -> Option<&mut u64> {
        let (t, i) = self.walk(virt)?;
        // SAFETY: `t` is a level-1 table of ours, just walked to; the
        // exclusive borrow of `self` covers it.
        Some(unsafe { &mut table(t)[i] })
    }

    /// Maps user page `virt` to `frame` with `flags` (PRESENT and
    /// USER_ACCESSIBLE added). Fails when a table frame cannot be had, or
    /// for an address outside the user half.
    pub fn map(
        &mut self,
        virt: u64,
        frame: u64,
        flags: PageTableFlags,
    ) -> Result<(), NoTableMemory> {
        // The last table's block (a run of faults), else through existing
        // tables (no call), else the walk that makes the missing ones.
        let block = virt >> LEAF_BLOCK_SHIFT;
        let t = if self.last_leaf.0 == block {
            self.last_leaf.1
        } else {
            let (t, _) = match self.walk(virt) {
                Some(leaf) => leaf,
                None => self.walk_creating(virt).ok_or(NoTableMemory)?,
            };
            self.last_leaf = (block, t);
            t
        };
        // SAFETY: `t` is a level-1 table of ours covering `virt`: just
        // walked to, or walked to for this block and linked since (only
        // `release_empty_tables` unlinks tables, and it forgets `last_leaf`).
        unsafe {
            table(t)[index(virt, 0)] = (frame & ADDRESS_MASK) | flags.bits() | PRESENT | USER
        };
        Ok(())
    }

    /// Maps user page `virt` to `frame` with `flags` (PRESENT and
    /// USER_ACCESSIBLE added) only if its entry is empty, through a shared
    /// borrow: CPUs faulting in this table at once each install their own
    /// entries. Each entry is read and put in place atomically; a missing
    /// table on the way is made and linked by compare-and-swap (a CPU that
    /// loses the race gives its table back and goes on through the
    /// winner's). `Ok(false)`: an entry was there (or `virt` is not a user
    /// address); nothing changed. Not-present to present needs no flush.
    /// The callers change nothing else in the table meanwhile but entries
    /// of ranges no fault of theirs meets ([`Self::unmap_shared`]): every
    /// other change, and every table's release, is made with the owner
    /// borrowed exclusively (the kernel lock held for writing).
    pub fn map_vacant(
        &self,
        virt: u64,
        frame: u64,
        flags: PageTableFlags,
    ) -> Result<bool, NoTableMemory> {
        if virt >= USER_HALF_END {
            return Ok(false);
        }
        let mut current = self.root;
        for level in (1..4).rev() {
            // SAFETY: `current` is our root or a table linked under it,
            // which stays linked while `self` is borrowed (see above).
            let entry = unsafe { &atomic_table(current)[index(virt, level)] };
            current = match linked_table(entry)? {
                Some(next) => next,
                None => return Ok(false),
            };
        }
        // SAFETY: as above, `current` is a level-1 table of ours.
        let leaf = unsafe { &atomic_table(current)[index(virt, 0)] };
        let new = (frame & ADDRESS_MASK) | flags.bits() | PRESENT | USER;
        Ok(leaf
            .compare_exchange(0, new, Ordering::Release, Ordering::Relaxed)
            .is_ok())
    }

    /// Removes the entries of user pages `pages` (at most 64, in address
    /// order, for one walk per level-1 table) through a shared borrow,
    /// returning which were present and which of those were writable
    /// (bit `i` for `pages[i]`); pages without an entry are passed over. Tables stay linked. The caller (a
    /// `munmap` made under the read side of the kernel lock, `neoos_mm`'s
    /// `shared_map.rs`) holds its address space's lock for writing, so no
    /// fault installs in these pages' range meanwhile, and flushes the
    /// TLBs afterwards.
    pub fn unmap_shared(&self, pages: &[u64]) -> (u64, u64) {
        self.change_shared(pages, |_| 0)
    }

    /// Takes `WRITABLE` (unless `write`) from the present entries of
    /// `pages` and adds `NO_EXECUTE` (unless `exec`), as
    /// [`Self::unmap_shared`] (an `mprotect` made under the read side of
    /// the kernel lock): which changed, and which lost `WRITABLE`.
    pub fn protect_shared(&self, pages: &[u64], write: bool, exec: bool) -> (u64, u64) {
        let take = if write { 0 } else { WRITABLE };
        let add = if exec { 0 } else { NO_EXECUTE };
        self.change_shared(pages, |old| (old & !take) | add)
    }

    /// Replaces each present entry `e` of `pages` (at most 64) by
    /// `change(e)`, atomically (the CPU may set an entry's accessed and
    /// dirty bits meanwhile: compare-and-swap); which changed, and which
    /// of those lost `WRITABLE`.
    fn change_shared(&self, pages: &[u64], change: impl Fn(u64) -> u64) -> (u64, u64) {
        let mut leaf: Option<(u64, u64)> = None;
        let (mut changed, mut lost_write) = (0, 0);
        for (i, &virt) in pages.iter().enumerate().take(64) {
            let block = virt >> LEAF_BLOCK_SHIFT;
            let table = match leaf {
                Some((b, t)) if b == block => t,
                _ => match self.leaf_table_shared(virt) {
                    Some(t) => {
                        leaf = Some((block, t));
                        t
                    }
                    None => continue,
                },
            };
            // SAFETY: `table` is a level-1 table of ours covering `virt`
            // (walked to for its block just now; tables are released only
            // with the owner borrowed exclusively).
            let entry = unsafe { &atomic_table(table)[index(virt, 0)] };
            let updated = entry.fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| {
                let new = change(old);
                (old & PRESENT != 0 && new != old).then_some(new)
            });
            if let Ok(old) = updated {
                changed |= 1 << i;
                if old & WRITABLE != 0 && change(old) & WRITABLE == 0 {
                    lost_write |= 1 << i;
                }
            }
        }
        (changed, lost_write)
    }

    /// The level-1 table covering user page `virt`, if linked, through a
    /// shared borrow.
    fn leaf_table_shared(&self, virt: u64) -> Option<u64> {
        if virt >= USER_HALF_END {
            return None;
        }
        let mut current = self.root;
        for level in (1..4).rev() {
            // SAFETY: `current` is our root or a table linked under it,
            // which stays linked while `self` is borrowed (tables are
            // released only with the owner borrowed exclusively).
            let e = unsafe { &atomic_table(current)[index(virt, level)] }.load(Ordering::Acquire);
            if e & PRESENT == 0 || e & HUGE != 0 {
                return None;
            }
            current = e & ADDRESS_MASK;
        }
        Some(current)
    }

    /// The present entry of user page `virt`: (frame, flags).
    pub fn entry(&self, virt: u64) -> Option<(u64, PageTableFlags)> {
        let (t, i) = self.walk(virt)?;
        // SAFETY: `t` is a level-1 table of ours, just walked to; read once.
        decode(unsafe { table(t)[i] })
    }

    /// Removes the entry of `virt`; returns what it held.
    pub fn unmap(&mut self, virt: u64) -> Option<(u64, PageTableFlags)> {
        decode(core::mem::replace(self.leaf(virt)?, 0))
    }

    /// Replaces the permission bits of a present entry (keeping its frame
    /// and its accessed and dirty bits); returns whether it existed.
    pub fn set_flags(&mut self, virt: u64, flags: PageTableFlags) -> bool {
        let Some(e) = self.leaf(virt) else {
            return false;
        };
        if *e & PRESENT == 0 {
            return false;
        }
        let kept = PageTableFlags::ACCESSED | PageTableFlags::DIRTY;
        *e = (*e & (ADDRESS_MASK | kept.bits())) | flags.bits() | PRESENT | USER;
        true
    }

    /// Clears `bits` of a present entry; returns which of them were set.
    pub fn clear_flags(&mut self, virt: u64, bits: PageTableFlags) -> PageTableFlags {
        let Some(e) = self.leaf(virt) else {
            return PageTableFlags::empty();
        };
        if *e & PRESENT == 0 {
            return PageTableFlags::empty();
        }
        let was = *e & bits.bits();
        *e &= !bits.bits();
        PageTableFlags::from_bits_truncate(was)
    }

    /// Calls `change` with each present level-1 entry of user range
    /// `[start, end)` (its address and what it holds), in address order,
    /// and applies what it returns. Empty upper-level entries are skipped
    /// whole (one check per 512 GiB, 1 GiB or 2 MiB of nothing). Nothing is
    /// flushed. Returns how many entries were cleared.
    pub fn update_present(
        &mut self,
        start: u64,
        end: u64,
        change: &mut dyn FnMut(u64, (u64, PageTableFlags)) -> LeafChange,
    ) -> usize {
        let end = end.min(USER_HALF_END);
        if start >= end {
            return 0;
        }
        // SAFETY: the root is ours, a level-3 table covering from 0,
        // borrowed exclusively.
        unsafe { update_in(self.root, 3, 0, start, end, change) }
    }

    /// Unlinks and frees the tables (never the root) that cover part of
    /// `[start, end)` and hold no entry: a table goes only when all 512 of
    /// its entries are empty, not only those in the range. Work follows the
    /// present tables the range touches, not its size. The unlinked tables
    /// are freed only after every CPU that may cache a walk through them
    /// has dropped it (`invlpg` of an address a table covered drops the
    /// paging-structure cache entries for that walk): one flush round for
    /// up to [`RELEASE_ROUND`] tables.
    pub fn release_empty_tables(&mut self, start: u64, end: u64) {
        self.last_leaf = NO_LEAF;
        let end = end.min(USER_HALF_END);
        if start >= end {
            return;
        }
        let mut unlinked = UnlinkedTables {
            frames: [0; RELEASE_ROUND],
            covered: [0; RELEASE_ROUND],
            len: 0,
        };
        let mut release = |frame: u64, covered: u64| {
            if unlinked.len == RELEASE_ROUND {
                self.free_unlinked(&mut unlinked);
            }
            unlinked.frames[unlinked.len] = frame;
            unlinked.covered[unlinked.len] = covered;
            unlinked.len += 1;
        };
        // SAFETY: the root is ours, a level-3 table covering from 0.
        unsafe { release_in(self.root, 3, 0, start, end, &mut release) };
        self.free_unlinked(&mut unlinked);
    }

    /// Flushes the walks through `unlinked`'s tables on every CPU that may
    /// cache them (one round), then frees them.
    fn free_unlinked(&self, unlinked: &mut UnlinkedTables) {
        if unlinked.len == 0 {
            return;
        }
        self.invalidate_pages(&unlinked.covered[..unlinked.len]);
        for &frame in &unlinked.frames[..unlinked.len] {
            // SAFETY: release_in unlinked the table, and no CPU caches a
            // walk through it any more.
            unsafe { free_table_frame(frame) };
        }
        unlinked.len = 0;
    }
}

/// Most page tables one flush round releases (a batch's most: each is
/// named by one page it covered).
const RELEASE_ROUND: usize = neoos_mm::TLB_BATCH_LIMIT;

/// Tables unlinked and not yet freed, with an address each covered.
struct UnlinkedTables {
    frames: [u64; RELEASE_ROUND],
    covered: [u64; RELEASE_ROUND],
    len: usize,
}

/// Walks from `root` to the level-1 entry of user address `virt`,
/// creating missing tables when `create`.
///
/// # Safety
/// `root` must be the root of a [`UserPageTable`]; with `create`, its
/// owner must be borrowed exclusively.
unsafe fn walk_from(root: u64, virt: u64, create: bool) -> Option<(u64, usize)> {
    // SAFETY: the caller's guarantees; user tables hold no huge entries.
    unsafe { walk(root, virt, 0..USER_HALF_END, create, USER) }
}

/// The one walk of this module: from `root` to the level-1 entry of
/// `virt`, which must lie in `within` (else `None`), through present
/// entries; a missing table is made when `create` (`None` without a
/// frame), linked writable with `user` (0 or [`USER`]) added. Returns the
/// level-1 table and the index of the entry. Inlined, so each caller's
/// copy has its range and bits as constants; the making of a table is
/// out of line, off the path of a walk through existing tables.
///
/// # Safety
/// `root` must be a root this module owns whose tables covering `within`
/// hold no huge entries; with `create`, nothing else may be walking them.
#[inline(always)]
unsafe fn walk(
    root: u64,
    virt: u64,
    within: core::ops::Range<u64>,
    create: bool,
    user: u64,
) -> Option<(u64, usize)> {
    if !within.contains(&virt) {
        return None;
    }
    let mut current = root;
    for level in (1..4).rev() {
        // SAFETY: `current` is the root or a table reached through a
        // present entry, not huge (the caller's guarantee).
        let entry = unsafe { &mut table(current)[index(virt, level)] };
        if *entry & PRESENT == 0 {
            if !create {
                return None;
            }
            *entry = new_table_entry(user)?;
        }
        current = *entry & ADDRESS_MASK;
    }
    Some((current, index(virt, 0)))
}

/// The entries of table `phys` as atomics: what CPUs installing entries
/// at once ([`UserPageTable::map_vacant`]) and the MMU (accessed and dirty
/// bits) reach together.
///
/// # Safety
/// `phys` must be a page-table frame this module owns that stays linked
/// (not freed) while the reference is used.
unsafe fn atomic_table<'a>(phys: u64) -> &'a [AtomicU64; 512] {
    // SAFETY: the caller's guarantees; tables lie in RAM covered by the
    // direct map and are page aligned (AtomicU64 has u64's layout).
    unsafe { &*(phys_to_virt(phys) as *const [AtomicU64; 512]) }
}

/// The table an upper-level user entry links, made and linked with
/// compare-and-swap when it links none (a lost race gives the new table
/// back and takes the winner's). `Ok(None)` for an entry that is not an
/// ordinary table link (a huge entry: user tables hold none).
fn linked_table(entry: &AtomicU64) -> Result<Option<u64>, NoTableMemory> {
    let mut e = entry.load(Ordering::Acquire);
    if e & PRESENT == 0 {
        let new = new_table_entry(USER).ok_or(NoTableMemory)?;
        match entry.compare_exchange(0, new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => e = new,
            Err(found) => {
                // SAFETY: the table was never linked: no entry points to it.
                unsafe { free_table_frame(new & ADDRESS_MASK) };
                e = found;
            }
        }
    }
    Ok((e & PRESENT != 0 && e & HUGE == 0).then_some(e & ADDRESS_MASK))
}

/// An entry linking a new, zeroed table (writable, `user` added), or
/// `None` without a frame. Out of line: the rare step of a walk.
#[cold]
#[inline(never)]
fn new_table_entry(user: u64) -> Option<u64> {
    Some(zeroed_table_frame()? | PRESENT | WRITABLE | user)
}

/// A raw entry as (frame, flags), if present.
fn decode(e: u64) -> Option<(u64, PageTableFlags)> {
    (e & PRESENT != 0).then(|| (e & ADDRESS_MASK, PageTableFlags::from_bits_truncate(e)))
}

/// Bytes one entry of a level-`level` table covers.
fn entry_span(level: u32) -> u64 {
    1 << (12 + 9 * level)
}

/// The first and last index of the entries of a level-`level` table
/// covering from `base` that overlap `[start, end)` (which must meet it).
fn overlap(level: u32, base: u64, start: u64, end: u64) -> (usize, usize) {
    let span = entry_span(level);
    let first = ((start.max(base) - base) / span) as usize;
    let last = (((end - 1).min(base + 512 * span - 1) - base) / span) as usize;
    (first, last)
}

/// Whether any of the entries of `block` is present. The entries are ORed
/// sixteen bytes at a time (SSE2, part of every x86_64 CPU; the kernel
/// saves user SSE state on entry), so empty entries cost about half an
/// instruction each: a block on a 16-byte boundary (every block of 8 or
/// more entries of a page-aligned table that starts at a multiple of 8) is
/// ORed straight from memory, one instruction per two entries.
fn any_present<const N: usize>(block: &[u64; N]) -> bool {
    use core::arch::x86_64::{
        __m128i, _mm_cvtsi128_si64, _mm_load_si128, _mm_loadu_si128, _mm_or_si128,
        _mm_setzero_si128, _mm_unpackhi_epi64,
    };
    let vectors = block.as_ptr().cast::<__m128i>();
    let aligned = vectors.is_aligned();
    // SAFETY: SSE2 is part of x86_64, so every CPU we run on has these
    // instructions; vector `k` is entries 2k and 2k+1 of `block` (N is
    // even at every use), inside it; the aligned load is used only when
    // `vectors` is on a 16-byte boundary (checked just above).
    unsafe {
        let mut any = _mm_setzero_si128();
        for k in 0..N / 2 {
            let v = if aligned {
                _mm_load_si128(vectors.add(k))
            } else {
                _mm_loadu_si128(vectors.add(k))
            };
            any = _mm_or_si128(any, v);
        }
        let low = _mm_cvtsi128_si64(any) as u64;
        let high = _mm_cvtsi128_si64(_mm_unpackhi_epi64(any, any)) as u64;
        (low | high) & PRESENT != 0
    }
}

/// ORs the entries of the block at `$at` into the low quadword it gives:
/// `movdqa` of the first 16 bytes (two entries), then one `por` straight
/// from memory per 16 bytes at each `$offset`. Expands to an `asm!` that
/// the caller wraps in `unsafe`: `$at` must be on a 16-byte boundary and
/// every offset inside the block.
macro_rules! or_entries {
    ($at:expr, $($offset:literal)*) => {{
        let ored: u64;
        core::arch::asm!(
            "movdqa {v}, [{p}]",
            $(concat!("por {v}, [{p} + ", $offset, "]"),)*
            "pshufd {w}, {v}, 0xee",
            "por {v}, {w}",
            "movq {r}, {v}",
            p = in(reg) $at,
            v = out(xmm_reg) _,
            w = out(xmm_reg) _,
            r = out(reg) ored,
            options(nostack, readonly, preserves_flags),
        );
        ored
    }};
}

/// Whether the `N` entries from `i` (a multiple of `N`, with `i + N` at
/// most 512) hold a present one.
fn block_present<const N: usize>(entries: &[u64; 512], i: usize) -> bool {
    let Ok(block) = <&[u64; N]>::try_from(&entries[i..i + N]) else {
        return false;
    };
    let at = block.as_ptr();
    if !at.cast::<u128>().is_aligned() {
        return any_present(block);
    }
    // SAFETY: `at` is on a 16-byte boundary (checked above), as `por` with
    // a memory operand needs; each arm's offsets stay inside its `N`
    // entries (8 bytes each); SSE2 is part of x86_64 (the kernel saves
    // user SSE state on entry).
    let ored = unsafe {
        match N {
            64 => {
                or_entries!(at, 16 32 48 64 80 96 112 128 144 160 176 192 208 224 240 256 272 288 304 320 336 352 368 384 400 416 432 448 464 480 496)
            }
            8 => or_entries!(at, 16 32 48),
            _ => return any_present(block),
        }
    };
    ored & PRESENT != 0
}

/// The index of the first present entry among `entries[from..=last]`.
/// Entries up to the next multiple of 8 are tested one by one; from there
/// aligned runs of 64, then 8, empty entries are skipped with one
/// [`block_present`] each, and only an 8-entry block that holds a present
/// entry is searched entry by entry. Each entry is read about once per
/// call: a table with a few present entries costs about its 512 entries
/// at half an instruction each, plus a few dozen per present entry.
fn next_present(entries: &[u64; 512], from: usize, last: usize) -> Option<usize> {
    let end = last + 1;
    let mut i = from;
    while i < end && !i.is_multiple_of(8) {
        if entries[i] & PRESENT != 0 {
            return Some(i);
        }
        i += 1;
    }
    while i + 8 <= end {
        if i.is_multiple_of(64) && i + 64 <= end && !block_present::<64>(entries, i) {
            i += 64;
            continue;
        }
        if block_present::<8>(entries, i) {
            return (i..i + 8).find(|&j| entries[j] & PRESENT != 0);
        }
        i += 8;
    }
    (i..end).find(|&j| entries[j] & PRESENT != 0)
}

/// Applies `change` to the present level-1 entries under table `t` (level
/// `level`, covering from `base`) that lie in `[start, end)`, descending
/// only through present entries; returns how many were cleared.
///
/// # Safety
/// `t` must be a user table of ours at `level`, covering from `base`, and
/// its owner borrowed exclusively.
unsafe fn update_in(
    t: u64,
    level: u32,
    base: u64,
    start: u64,
    end: u64,
    change: &mut dyn FnMut(u64, (u64, PageTableFlags)) -> LeafChange,
) -> usize {
    let (first, last) = overlap(level, base, start, end);
    let span = entry_span(level);
    let mut cleared = 0;
    // SAFETY: `t` is ours (caller), not otherwise referenced while this
    // borrow lives (children are other frames).
    let entries = unsafe { table(t) };
    let mut next = first;
    while let Some(i) = next_present(entries, next, last) {
        next = i + 1;
        let e = entries[i];
        let va = base + i as u64 * span;
        if level > 0 {
            // SAFETY: a present entry of a user table of ours (user tables
            // hold no huge entries) points to our table one level down.
            cleared += unsafe { update_in(e & ADDRESS_MASK, level - 1, va, start, end, change) };
            continue;
        }
        match change(
            va,
            (e & ADDRESS_MASK, PageTableFlags::from_bits_truncate(e)),
        ) {
            LeafChange::Keep => {}
            LeafChange::SetFlags(flags) => {
                let kept = PageTableFlags::ACCESSED | PageTableFlags::DIRTY;
                entries[i] = (e & (ADDRESS_MASK | kept.bits())) | flags.bits() | PRESENT | USER;
            }
            LeafChange::Clear => {
                entries[i] = 0;
                cleared += 1;
            }
        }
    }
    cleared
}

/// Visits the entries of table `t` (level `level`, covering from `base`)
/// that overlap `[start, end)`; each child table left empty is unlinked and
/// handed to `release` with the first address it covered.
///
/// # Safety
/// `t` must be a user table of ours at `level`, covering from `base`.
unsafe fn release_in(
    t: u64,
    level: u32,
    base: u64,
    start: u64,
    end: u64,
    release: &mut dyn FnMut(u64, u64),
) {
    if level == 0 {
        return;
    }
    let span = entry_span(level);
    let (first, last) = overlap(level, base, start, end);
    let mut next = first;
    // SAFETY: `t` is ours (caller); the reference is not kept across the
    // recursive call below.
    while let Some(i) = next_present(unsafe { table(t) }, next, last) {
        next = i + 1;
        // SAFETY: as above.
        let e = unsafe { table(t)[i] };
        if e & HUGE != 0 {
            continue;
        }
        let child = e & ADDRESS_MASK;
        let child_base = base + i as u64 * span;
        // SAFETY: a present, non-huge entry of a user table of ours points
        // to a table of ours one level down, covering from `child_base`.
        unsafe {
            release_in(child, level - 1, child_base, start, end, release);
            if !(0..512)
                .step_by(64)
                .any(|i| block_present::<64>(table(child), i))
            {
                table(t)[i] = 0;
                release(child, child_base);
            }
        }
    }
}

impl Drop for UserPageTable {
    /// Frees every user-half table and then the root. Pages still mapped
    /// are not freed (their frames belong to the mapping core).
    fn drop(&mut self) {
        if self.is_active() {
            activate_kernel_tables();
        }
        /// # Safety
        /// `t` must be a user table of ours at `level`, unlinked or about
        /// to be dropped with its parent.
        unsafe fn free_level(t: u64, level: u32) {
            if level > 0 {
                for i in 0..512 {
                    // SAFETY: `t` is ours (caller).
                    let e = unsafe { table(t)[i] };
                    if e & PRESENT != 0 && e & HUGE == 0 {
                        // SAFETY: a present entry of a user table of ours.
                        unsafe { free_level(e & ADDRESS_MASK, level - 1) };
                    }
                }
            }
            // SAFETY: the caller gives up `t`.
            unsafe { free_table_frame(t) };
        }
        for slot in 0..256 {
            // SAFETY: the root is ours; its user half holds our tables.
            unsafe {
                let e = table(self.root)[slot];
                if e & PRESENT != 0 {
                    free_level(e & ADDRESS_MASK, 2);
                }
            }
        }
        // SAFETY: the root is ours and no longer the CPU's table.
        unsafe { free_table_frame(self.root) };
    }
}
