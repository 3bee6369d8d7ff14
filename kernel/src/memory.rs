//! The machine under the mapping core: x86_64 page tables ([`HardwarePageTable`])
//! and physical frames ([`KernelFrames`]) implementing `neoos_mm`'s traits.

use neoos_mm::{Errno, Frame, PageBytes, PageTable, Prot, PteInfo, UnmappedPage};

use crate::arch::{cpu, paging};
use crate::frames;

/// Physical frames from the kernel's frame allocator, reached through the
/// direct map.
pub struct KernelFrames;

impl neoos_mm::FrameSource for KernelFrames {
    fn alloc(&mut self) -> Option<Frame> {
        frames::alloc().map(Frame)
    }
    fn free(&mut self, frame: Frame) {
        frames::free(frame.0);
    }
    fn zero(&mut self, frame: Frame) {
        paging::zero_frame(frame.0);
    }
    fn copy(&mut self, src: Frame, dst: Frame) {
        paging::copy_frame(src.0, dst.0);
    }
    fn bytes(&self, frame: Frame) -> &PageBytes {
        paging::frame_bytes(frame.0)
    }
    fn bytes_mut(&mut self, frame: Frame) -> &mut PageBytes {
        paging::frame_bytes_mut(frame.0)
    }
}

/// One process's x86_64 page table, named by the physical address of its root.
pub struct HardwarePageTable {
    pub root: u64,
}

impl HardwarePageTable {
    /// A new table with an empty user half, or `None` without memory.
    pub fn new() -> Option<Self> {
        let frame = frames::alloc()?;
        Some(HardwarePageTable {
            root: paging::new_user_root(frame),
        })
    }

    /// Frees the table's own frames (the mapped pages belong to the mapping core).
    pub fn destroy(self) {
        paging::free_user_tables(self.root, &mut frames::free);
    }

    fn is_active(&self) -> bool {
        cpu::current_root() == self.root
    }
}

fn flags_of(prot: Prot) -> u64 {
    let mut flags = 0;
    if prot.write {
        flags |= paging::WRITABLE;
    }
    if !prot.exec {
        flags |= paging::NO_EXECUTE;
    }
    flags
}

fn prot_of(entry: u64) -> Prot {
    Prot::new(
        true,
        entry & paging::WRITABLE != 0,
        entry & paging::NO_EXECUTE == 0,
    )
}

/// What an entry says, in the mapping core's terms.
fn info_of(entry: u64) -> PteInfo {
    PteInfo {
        frame: Frame(paging::entry_frame(entry)),
        prot: prot_of(entry),
        dirty: entry & paging::DIRTY != 0,
        accessed: entry & paging::ACCESSED != 0,
    }
}

impl PageTable for HardwarePageTable {
    fn map(&mut self, va: u64, frame: Frame, prot: Prot) -> Result<(), Errno> {
        paging::map(self.root, va, frame.0, flags_of(prot), &mut frames::alloc)
            .map_err(|_| Errno::NoMem)
    }
    fn unmap(&mut self, va: u64) -> Option<UnmappedPage> {
        paging::unmap(self.root, va).map(info_of)
    }
    fn protect(&mut self, va: u64, prot: Prot) {
        paging::set_flags(self.root, va, flags_of(prot));
    }
    fn query(&self, va: u64) -> Option<PteInfo> {
        paging::entry(self.root, va).map(info_of)
    }
    fn take_dirty(&mut self, va: u64) -> bool {
        let was_dirty = paging::clear_bits(self.root, va, paging::DIRTY) != 0;
        // A cached translation still says "dirty": the CPU would not set the bit
        // again on the next store, so that store would be lost to writeback.
        if was_dirty && self.is_active() {
            cpu::invalidate_page(va);
        }
        was_dirty
    }
    fn flush_page(&mut self, va: u64) {
        // Without PCIDs, an inactive table has no TLB entries to drop.
        if self.is_active() {
            cpu::invalidate_page(va);
        }
    }
    fn flush_all(&mut self) {
        if self.is_active() {
            cpu::load_root(self.root);
        }
    }
    fn release_tables(&mut self, start: u64, end: u64) {
        let active = self.is_active();
        paging::release_empty_tables(self.root, start, end, active, &mut frames::free);
    }
}
