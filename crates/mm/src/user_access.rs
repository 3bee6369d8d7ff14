//! Kernel access to user memory (system-call arguments, ELF loading):
//! resolving each page through the page table and the mappings, faulting
//! pages in as the CPU would. Writes to shared file pages go through write
//! faults, so they mark the pages dirty.
//!
//! A miss on a page of a disk file is read there and then (under the
//! kernel's lock), unless the access is made through
//! [`MemorySystem::deferring_user_reads`]: then it plans the read as a
//! user fault's first attempt does (`reads_in_flight.rs`) and fails with
//! [`Errno::WaitForRead`], and the kernel waits for the read without its
//! lock. The copies themselves are the same code either way: the choice
//! is made only on the fault path, past the page-table lookup.

use crate::errno::Errno;
use crate::hw::{page_floor, Access, AsId, Frame, Hw, PAGE_SIZE};
use crate::system::MemorySystem;
use alloc::vec::Vec;
use neoos_abi::layout::{USER_BASE, USER_END};

impl MemorySystem {
    /// The frame showing user page `va` for `access`, faulting it in.
    fn user_frame(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        va: u64,
        access: Access,
        force: bool,
    ) -> Result<Frame, Errno> {
        if let Some(pte) = hw.pt.query(va) {
            if pte.prot.allows(access) {
                return Ok(pte.frame);
            }
        }
        if force {
            let allowed = self
                .mapping_at(id, va)
                .ok_or(Errno::Fault)?
                .prot
                .allows(access);
            return self
                .fault_in(id, hw, va, access, !allowed)
                .map_err(|e| e.to_errno());
        }
        self.fault_in(id, hw, va, access, false)
            .map_err(|e| e.to_errno())
    }

    /// Runs `access` (user accesses of this module, nothing else) with the
    /// disk reads of its faults deferred: a miss on a page of a disk file
    /// below its stored end plans the page's read (or joins one under way)
    /// and the access fails with [`Errno::WaitForRead`]
    /// ([`Self::read_waited_for`], [`Self::take_planned_read`]). The pages
    /// before it were faulted in as usual; nothing else is changed.
    /// Copy-on-write copies are made at once, as before.
    pub fn deferring_user_reads<R>(&mut self, access: impl FnOnce(&mut Self) -> R) -> R {
        self.store.reads.defer = true;
        self.store.copies.again = true;
        let result = access(self);
        self.store.reads.defer = false;
        self.store.copies.again = false;
        result
    }

    /// Copies `buf.len()` bytes from user address `addr`. `Fault` if any
    /// byte is unmapped or unreadable.
    pub fn copy_from_user(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        addr: u64,
        buf: &mut [u8],
    ) -> Result<(), Errno> {
        check_user_range(addr, buf.len())?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = addr + done as u64;
            let frame = self.user_frame(id, hw, page_floor(pos), Access::Read, false)?;
            let in_page = (pos % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - in_page).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&hw.frames.bytes(frame)[in_page..in_page + n]);
            done += n;
        }
        Ok(())
    }

    /// Copies `buf` to user address `addr`. With `force` the mapping's write
    /// protection is ignored (loading read-only program text; private
    /// mappings get private copies, the file is never changed through a
    /// private mapping). `Fault` if any byte is unmapped or not writable.
    pub fn copy_to_user(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        addr: u64,
        buf: &[u8],
        force: bool,
    ) -> Result<(), Errno> {
        check_user_range(addr, buf.len())?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = addr + done as u64;
            let frame = self.user_frame(id, hw, page_floor(pos), Access::Write, force)?;
            let in_page = (pos % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - in_page).min(buf.len() - done);
            hw.frames.bytes_mut(frame)[in_page..in_page + n].copy_from_slice(&buf[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// Checks that every byte of `[addr, addr + len)` is mapped writable,
    /// faulting the pages in, without storing anything. A call that blocks
    /// before it has data (console input) checks its buffer this way first,
    /// so a bad buffer is an error at once, not after the wait.
    pub fn check_user_writable(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        addr: u64,
        len: usize,
    ) -> Result<(), Errno> {
        check_user_range(addr, len)?;
        if len == 0 {
            return Ok(());
        }
        let last = page_floor(addr + len as u64 - 1);
        let mut page = page_floor(addr);
        while page <= last {
            self.user_frame(id, hw, page, Access::Write, false)?;
            page += PAGE_SIZE;
        }
        Ok(())
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the
    /// NUL) from user address `addr`. `Inval` if no NUL comes within `max`.
    pub fn read_user_cstr(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        addr: u64,
        max: usize,
    ) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut pos = addr;
        loop {
            if !(USER_BASE..USER_END).contains(&pos) {
                return Err(Errno::Fault);
            }
            let frame = self.user_frame(id, hw, page_floor(pos), Access::Read, false)?;
            let page = hw.frames.bytes(frame);
            let in_page = (pos % PAGE_SIZE) as usize;
            for &b in &page[in_page..] {
                if b == 0 {
                    return Ok(out);
                }
                if out.len() >= max {
                    return Err(Errno::Inval);
                }
                out.push(b);
            }
            pos = page_floor(pos) + PAGE_SIZE;
        }
    }
}

/// `Fault` unless `[addr, addr + len)` lies in the user range.
fn check_user_range(addr: u64, len: usize) -> Result<(), Errno> {
    let end = addr.checked_add(len as u64).ok_or(Errno::Fault)?;
    if len > 0 && (addr < USER_BASE || end > USER_END) {
        return Err(Errno::Fault);
    }
    Ok(())
}
