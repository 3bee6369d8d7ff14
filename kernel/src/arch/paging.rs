//! x86_64 4-level page tables and physical memory access through the direct map.
//!
//! Owns: the kernel's own top-level table (built at run time: a direct map of
//! all RAM at `DIRECT_MAP_BASE` and the kernel image at -2 GiB, both global), the
//! per-process top-level tables (user half private, kernel half shared), and the
//! raw entry operations the mapping core needs: map, unmap (returning the
//! hardware dirty and accessed bits), protect, query, clear-dirty.

use core::sync::atomic::{AtomicU64, Ordering};

/// Where all physical memory is mapped in the kernel half.
pub const DIRECT_MAP_BASE: u64 = 0xffff_8000_0000_0000;
/// Where the kernel image runs.
pub const KERNEL_BASE: u64 = 0xffff_ffff_8000_0000;
pub const PAGE_SIZE: u64 = 4096;

pub const PRESENT: u64 = 1 << 0;
pub const WRITABLE: u64 = 1 << 1;
pub const USER: u64 = 1 << 2;
pub const ACCESSED: u64 = 1 << 5;
pub const DIRTY: u64 = 1 << 6;
pub const HUGE: u64 = 1 << 7;
pub const GLOBAL: u64 = 1 << 8;
pub const NO_EXECUTE: u64 = 1 << 63;
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

static KERNEL_ROOT: AtomicU64 = AtomicU64::new(0);

/// The kernel-virtual address of physical address `phys`.
pub fn phys_to_virt(phys: u64) -> u64 {
    DIRECT_MAP_BASE + phys
}

/// The physical address of a kernel-image address (statics, the heap arena).
pub fn kernel_image_phys(virt: u64) -> u64 {
    virt - KERNEL_BASE
}

/// The 4096 bytes of a physical frame.
pub fn frame_bytes(frame: u64) -> &'static [u8; 4096] {
    // SAFETY: every frame handed out by the frame allocator lies in RAM covered
    // by the direct map; frames are page aligned.
    unsafe { &*(phys_to_virt(frame) as *const [u8; 4096]) }
}

/// The 4096 bytes of a physical frame, writable.
#[allow(clippy::mut_from_ref)]
pub fn frame_bytes_mut(frame: u64) -> &'static mut [u8; 4096] {
    // SAFETY: as frame_bytes; the frame allocator gives each frame to one owner,
    // which is the only caller that writes it.
    unsafe { &mut *(phys_to_virt(frame) as *mut [u8; 4096]) }
}

/// Fills a frame with zeros.
///
/// Sixteen-byte SSE stores, 256 bytes per loop step: about 300 instructions
/// a page where `rep stosq` takes 512 steps. The kernel may use SSE registers
/// because every entry from user mode saves the user's with `fxsave`.
pub fn zero_frame(frame: u64) {
    let page = frame_bytes_mut(frame).as_mut_ptr();
    // SAFETY: `page` is the direct-map view of a whole, 4096-byte aligned frame
    // the caller owns (so 16-byte aligned `movaps` stores stay inside it);
    // xmm0 is declared clobbered.
    unsafe {
        core::arch::asm!(
            "xorps xmm0, xmm0",
            "2:",
            "movaps [{p}], xmm0",
            "movaps [{p} + 16], xmm0",
            "movaps [{p} + 32], xmm0",
            "movaps [{p} + 48], xmm0",
            "movaps [{p} + 64], xmm0",
            "movaps [{p} + 80], xmm0",
            "movaps [{p} + 96], xmm0",
            "movaps [{p} + 112], xmm0",
            "movaps [{p} + 128], xmm0",
            "movaps [{p} + 144], xmm0",
            "movaps [{p} + 160], xmm0",
            "movaps [{p} + 176], xmm0",
            "movaps [{p} + 192], xmm0",
            "movaps [{p} + 208], xmm0",
            "movaps [{p} + 224], xmm0",
            "movaps [{p} + 240], xmm0",
            "add {p}, 256",
            "cmp {p}, {end}",
            "jne 2b",
            p = inout(reg) page => _,
            end = in(reg) page.wrapping_add(4096),
            out("xmm0") _,
            options(nostack),
        );
    }
}

/// Copies one frame's contents to another.
pub fn copy_frame(src: u64, dst: u64) {
    frame_bytes_mut(dst).copy_from_slice(frame_bytes(src));
}

fn table(phys: u64) -> &'static mut [u64; 512] {
    // SAFETY: `phys` is a page-table frame owned by a page table of ours, mapped
    // by the direct map; the kernel runs on one CPU with interrupts off, so no
    // other reference to it is live during the access.
    unsafe { &mut *(phys_to_virt(phys) as *mut [u64; 512]) }
}

fn index(virt: u64, level: u32) -> usize {
    ((virt >> (12 + 9 * level)) & 511) as usize
}

/// Builds the kernel's top-level table and switches to it. `max_phys` is the
/// end of RAM; `alloc` gives zeroed frames.
pub fn init_kernel_tables(max_phys: u64, alloc: &mut dyn FnMut() -> Option<u64>) {
    let mut zeroed = || {
        let f = alloc().expect("frames for the kernel page tables");
        zero_frame(f);
        f
    };
    let root = zeroed();
    // Direct map: 2 MiB pages over all RAM, in 1 GiB directories.
    let direct_pdpt = zeroed();
    table(root)[256] = direct_pdpt | PRESENT | WRITABLE;
    let gigabytes = max_phys.div_ceil(1 << 30).max(4);
    for g in 0..gigabytes.min(512) {
        let pd = zeroed();
        table(direct_pdpt)[g as usize] = pd | PRESENT | WRITABLE;
        for e in 0..512u64 {
            let phys = (g << 30) | (e << 21);
            table(pd)[e as usize] = phys | PRESENT | WRITABLE | HUGE | GLOBAL | NO_EXECUTE;
        }
    }
    // Kernel image: the first GiB at -2 GiB.
    let image_pdpt = zeroed();
    let image_pd = zeroed();
    table(root)[511] = image_pdpt | PRESENT | WRITABLE;
    table(image_pdpt)[510] = image_pd | PRESENT | WRITABLE;
    for e in 0..512u64 {
        table(image_pd)[e as usize] = (e << 21) | PRESENT | WRITABLE | HUGE | GLOBAL;
    }
    // Pre-create the remaining kernel-half directories, so that every user root
    // (which copies entries 256..512) sees later kernel mappings.
    for slot in 257..511 {
        table(root)[slot] = zeroed() | PRESENT | WRITABLE;
    }
    KERNEL_ROOT.store(root, Ordering::Relaxed);
    super::cpu::load_root(root);
}

/// The kernel's own top-level table.
pub fn kernel_root() -> u64 {
    KERNEL_ROOT.load(Ordering::Relaxed)
}

/// A new top-level table for a process: empty user half, shared kernel half.
pub fn new_user_root(frame: u64) -> u64 {
    zero_frame(frame);
    let kernel = *table(kernel_root());
    table(frame)[256..].copy_from_slice(&kernel[256..]);
    frame
}

/// Walks to the level-1 entry of `virt`, creating tables with `alloc` when
/// given. Returns the table frame and index of the entry.
fn walk(
    root: u64,
    virt: u64,
    mut alloc: Option<&mut dyn FnMut() -> Option<u64>>,
) -> Option<(u64, usize)> {
    let mut current = root;
    for level in (1..4).rev() {
        let entry = &mut table(current)[index(virt, level)];
        if *entry & PRESENT == 0 {
            let make = alloc.as_mut()?;
            let fresh = make()?;
            zero_frame(fresh);
            *entry = fresh | PRESENT | WRITABLE | USER;
        }
        current = *entry & ADDRESS_MASK;
    }
    Some((current, index(virt, 0)))
}

/// No frame could be had for an intermediate page table.
#[derive(Debug)]
pub struct NoTableMemory;

/// Maps the user page `virt` to `frame` with `flags` (PRESENT and USER added).
/// Fails only when a table frame cannot be had.
pub fn map(
    root: u64,
    virt: u64,
    frame: u64,
    flags: u64,
    alloc: &mut dyn FnMut() -> Option<u64>,
) -> Result<(), NoTableMemory> {
    let (t, i) = walk(root, virt, Some(alloc)).ok_or(NoTableMemory)?;
    table(t)[i] = (frame & ADDRESS_MASK) | flags | PRESENT | USER;
    Ok(())
}

/// The raw entry of user page `virt`, if present.
pub fn entry(root: u64, virt: u64) -> Option<u64> {
    let (t, i) = walk(root, virt, None)?;
    let e = table(t)[i];
    (e & PRESENT != 0).then_some(e)
}

/// Removes the entry of `virt`; returns the old entry.
pub fn unmap(root: u64, virt: u64) -> Option<u64> {
    let (t, i) = walk(root, virt, None)?;
    let e = core::mem::replace(&mut table(t)[i], 0);
    (e & PRESENT != 0).then_some(e)
}

/// Replaces the permission bits of a present entry; returns whether it existed.
pub fn set_flags(root: u64, virt: u64, flags: u64) -> bool {
    let Some((t, i)) = walk(root, virt, None) else {
        return false;
    };
    let e = &mut table(t)[i];
    if *e & PRESENT == 0 {
        return false;
    }
    let keep = *e & (ADDRESS_MASK | ACCESSED | DIRTY);
    *e = keep | flags | PRESENT | USER;
    true
}

/// Clears the bits `bits` of a present entry; returns which of them were set.
pub fn clear_bits(root: u64, virt: u64, bits: u64) -> u64 {
    let Some((t, i)) = walk(root, virt, None) else {
        return 0;
    };
    let e = &mut table(t)[i];
    if *e & PRESENT == 0 {
        return 0;
    }
    let was = *e & bits;
    *e &= !bits;
    was
}

/// The frame of a raw entry.
pub fn entry_frame(e: u64) -> u64 {
    e & ADDRESS_MASK
}

/// Unlinks and frees the user-half tables of `root` (never `root` itself)
/// that cover part of `[start, end)` and hold no entry: a table goes only
/// when all 512 of its entries are empty, not only those in the range. Work
/// follows the present tables the range touches, not its size. Each table
/// is freed right after it is unlinked and, when `root` is the active
/// table, after the cached walk through it is invalidated (`invlpg` of an
/// address it covered drops the paging-structure cache entries).
pub fn release_empty_tables(
    root: u64,
    start: u64,
    end: u64,
    active: bool,
    free: &mut dyn FnMut(u64),
) {
    let end = end.min(USER_HALF_END);
    if start >= end {
        return;
    }
    let mut release = |table: u64, covered: u64| {
        if active {
            super::cpu::invalidate_page(covered);
        }
        free(table);
    };
    release_in(root, 3, 0, start, end, &mut release);
}

/// End of the lower (user) half of the address space.
const USER_HALF_END: u64 = 1 << 47;

/// Bytes one entry of a level-`level` table covers.
fn entry_span(level: u32) -> u64 {
    1 << (12 + 9 * level)
}

/// Visits the entries of table `t` (level `level`, covering from `base`)
/// that overlap `[start, end)`; each child table left empty is unlinked and
/// handed to `release` with the first address it covered.
fn release_in(
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
    let first = ((start.max(base) - base) / span) as usize;
    let last = (((end - 1).min(base + 512 * span - 1) - base) / span) as usize;
    for i in first..=last {
        let e = table(t)[i];
        if e & PRESENT == 0 || e & HUGE != 0 {
            continue;
        }
        let child = e & ADDRESS_MASK;
        let child_base = base + i as u64 * span;
        release_in(child, level - 1, child_base, start, end, release);
        if table(child).iter().all(|&e| e & PRESENT == 0) {
            table(t)[i] = 0;
            release(child, child_base);
        }
    }
}

/// Frees every user-half table frame of `root` and then `root` itself. The
/// leaf pages must already be unmapped (the mapping core owns them).
pub fn free_user_tables(root: u64, free: &mut dyn FnMut(u64)) {
    fn free_level(t: u64, level: u32, free: &mut dyn FnMut(u64)) {
        if level > 0 {
            for &e in table(t).iter() {
                if e & PRESENT != 0 {
                    free_level(e & ADDRESS_MASK, level - 1, free);
                }
            }
        }
        free(t);
    }
    for slot in 0..256 {
        let e = table(root)[slot];
        if e & PRESENT != 0 {
            free_level(e & ADDRESS_MASK, 2, free);
        }
    }
    free(root);
}
