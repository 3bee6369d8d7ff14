//! The memory family: NeoOS `sys_mmap`/`sys_munmap`, POSIX `mmap`, `munmap`,
//! `msync`, `mprotect`, `madvise`, `mincore`, `getpagesize`, and the
//! introspection calls `sys_meminfo` and `sys_maps`.

use alloc::string::String;
use alloc::vec::Vec;

use neoos_abi::layout::{USER_BASE, USER_END};
use neoos_abi::limits::MAPPINGS_MAX;
use neoos_abi::{MEMINFO_FIELDS, PAGE_SIZE};
use neoos_mm::{
    write_maps_line, AsId, DirtyFiles, Errno, FileId, Hw, MapInfo, MapObject, MemorySystem,
};

use super::{heap_room_check, Completion, MemoryCall, UserPtr, CHUNK};
use crate::files::Descriptor;
use crate::kernel::Kernel;
use crate::linux::meta::Touch;
use crate::linux::{address_space_limit, address_space_room_check};
use crate::mount::Storage;
use crate::platform::Platform;
use crate::process::{Pid, Process};

/// Work one `mincore` step does at most ([`Kernel::mincore_step`]): a few
/// milliseconds of the kernel's time.
pub const MINCORE_STEP_WORK: u64 = 16 * 1024;

/// How far a `mincore` call has come: its range `[start, end)`, its vector,
/// and the first page not yet reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MincoreProgress {
    start: u64,
    end: u64,
    vec: UserPtr,
    at: u64,
    /// Bytes of the vector checked writable so far (all before any store).
    vec_checked: u64,
}

/// Mappings listed per batch of `sys_maps`.
pub const MAPS_BATCH: usize = 64;
/// Batches listed per step of `sys_maps` ([`Kernel::maps_step`]): a few
/// milliseconds of the kernel's time.
pub const MAPS_STEP_BATCHES: usize = 4;

/// How far a `sys_maps` call has come: its buffer and length, the bytes of
/// the listing so far, and where the next mapping to list starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapsProgress {
    buf: UserPtr,
    len: usize,
    total: usize,
    from: u64,
}
/// Room for one line of the listing: addresses, permissions and kind (40
/// bytes), a path (at most 256) and two counts (at most 40).
const MAPS_LINE_MAX: usize = 384;

/// A memory call's side of the kernel, split out with one lookup of the
/// caller's process: the mapping core, the machine (frames, heap room),
/// the disk, and the caller's record (address space, page table,
/// descriptors, limits). The system-call entry makes it for the decode
/// (the record says the numbering) and runs the call on it, so a memory
/// call looks its caller up once.
pub(crate) struct MemoryCaller<'a, P: Platform> {
    memory: &'a mut MemorySystem,
    platform: &'a mut P,
    disk: &'a mut Storage,
    pub(crate) process: &'a mut Process<P::PageTable>,
}

/// Whether [`MemoryCaller::run`] carries out `call` (else the kernel
/// does: `sys_meminfo` reads the whole machine, `mincore` and `sys_maps`
/// run in steps, msync changes the times of the files it writes,
/// `sys_munmap` may write back without the kernel lock).
pub(crate) fn runs_on_caller(call: &MemoryCall) -> bool {
    !matches!(
        call,
        MemoryCall::MemInfo { .. }
            | MemoryCall::Mincore { .. }
            | MemoryCall::Maps { .. }
            | MemoryCall::Msync { .. }
            | MemoryCall::NeoMunmap { .. }
    )
}

impl<P: Platform> MemoryCaller<'_, P> {
    /// Carries out `call` (one [`runs_on_caller`] accepts) for the caller;
    /// with the file it mapped, if any (POSIX lets a mapping mark its file
    /// accessed: the kernel does once the call is done).
    #[inline]
    pub(crate) fn run(&mut self, call: &MemoryCall) -> (Result<i64, Errno>, Option<FileId>) {
        // The mapping-count check runs where the caller's address space is
        // at hand; it, the length and reserve checks all say `NoMem`, so
        // their order is not seen.
        let done = |result: Result<(), Errno>| (result.map(|_| 0), None);
        match *call {
            MemoryCall::NeoMmap { fd, offset, size } => {
                match self.neo_mmap(call, fd, offset, size) {
                    Ok((addr, file)) => (Ok(addr as i64), Some(file)),
                    Err(e) => (Err(e), None),
                }
            }
            MemoryCall::NeoMunmap { addr, size } => {
                done(self.with_hw(|m, s, hw| m.neo_munmap(s, hw, addr, size)))
            }
            MemoryCall::Mmap {
                addr,
                len,
                prot,
                flags,
                fd,
                offset,
            } => match self.posix_mmap(call, addr, len, prot, flags, fd, offset) {
                Ok((addr, file)) => (Ok(addr as i64), file),
                Err(e) => (Err(e), None),
            },
            MemoryCall::Munmap { addr, len } => {
                done(self.split_reserve_check(addr, len).and_then(|_| {
                    self.with_hw(|m, s, hw| {
                        mapping_room_check_for(m, s, call)?;
                        m.munmap(s, hw, addr, len)
                    })
                }))
            }
            MemoryCall::Mprotect { addr, len, prot } => {
                done(self.split_reserve_check(addr, len).and_then(|_| {
                    self.with_hw(|m, s, hw| {
                        mapping_room_check_for(m, s, call)?;
                        m.mprotect(s, hw, addr, len, prot)
                    })
                }))
            }
            MemoryCall::Madvise { addr, len, advice } => {
                done(self.with_hw(|m, s, hw| m.madvise(s, hw, addr, len, advice)))
            }
            MemoryCall::GetPageSize => (Ok(PAGE_SIZE as i64), None),
            // The kernel carries these out (see `runs_on_caller`).
            MemoryCall::MemInfo { .. }
            | MemoryCall::Mincore { .. }
            | MemoryCall::Maps { .. }
            | MemoryCall::Msync { .. } => (Err(Errno::Inval), None),
        }
    }

    /// Whether free frames are low: the kernel reclaims before the call.
    #[inline]
    pub(crate) fn frames_low(&self) -> bool {
        crate::reclaim::frames_low(self.platform)
    }

    /// Runs `f` with the caller's address space and hardware.
    #[inline]
    fn with_hw<R>(
        &mut self,
        f: impl FnOnce(&mut MemorySystem, AsId, &mut Hw) -> Result<R, Errno>,
    ) -> Result<R, Errno> {
        let table = self.process.table.as_mut().ok_or(Errno::Inval)?;
        let mut hw = Hw::new(table, self.platform.frames(), self.disk);
        f(self.memory, self.process.space, &mut hw)
    }

    /// `NoMem` when the kernel heap has no room above its reserve (see
    /// [`Kernel::heap_reserve_check`]).
    #[inline]
    fn heap_reserve_check(&self) -> Result<(), Errno> {
        heap_room_check(self.platform.heap_room())
    }

    /// `NoMem` when the kernel heap is below its reserve and unmapping or
    /// protecting `[addr, addr + len)` would cut a mapping in two (which
    /// needs a new record): memory can always be given back whole.
    #[inline]
    fn split_reserve_check(&self, addr: u64, len: u64) -> Result<(), Errno> {
        if self.platform.heap_room() == 0 && self.memory.would_split(self.process.space, addr, len)
        {
            Err(Errno::NoMem)
        } else {
            Ok(())
        }
    }

    /// NeoOS `sys_mmap` of descriptor `fd`: the address and the file.
    fn neo_mmap(
        &mut self,
        call: &MemoryCall,
        fd: i64,
        offset: i64,
        size: i64,
    ) -> Result<(u64, FileId), Errno> {
        mapping_room_check_for(self.memory, self.process.space, call)?;
        self.heap_reserve_check()?;
        let Descriptor::File(f) = self.process.files.get(fd)? else {
            return Err(Errno::Inval);
        };
        let addr = self.with_hw(|m, s, hw| m.neo_mmap(s, hw, f.file, f.access, offset, size))?;
        Ok((addr, f.file))
    }

    /// POSIX `mmap`: the address and the file mapped, if any.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn posix_mmap(
        &mut self,
        call: &MemoryCall,
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
        fd: i64,
        offset: i64,
    ) -> Result<(u64, Option<FileId>), Errno> {
        let space = self.process.space;
        mapping_room_check_for(self.memory, space, call)?;
        // Longer than the whole user range: no room, whatever the mapping
        // core would say of the number (docs/abi.md; as POSIX and Linux
        // say).
        if len > USER_END - USER_BASE {
            return Err(Errno::NoMem);
        }
        self.heap_reserve_check()?;
        // A Linux process's RLIMIT_AS (nothing to check for others).
        if let Some(limit) = address_space_limit(&self.process.abi) {
            address_space_room_check(self.memory, space, limit, len)?;
        }
        let mut flags = flags;
        let file = if flags & neoos_abi::mman::MAP_ANON != 0 {
            None
        } else {
            match self.process.files.get(fd)? {
                Descriptor::File(f) => Some((f.file, f.access)),
                Descriptor::Console
                | Descriptor::Pipe { .. }
                | Descriptor::Null
                | Descriptor::Dir { .. } => return Err(Errno::NoDev),
                // A mapping of /dev/zero is anonymous memory, private or
                // shared as asked (the offset means nothing).
                Descriptor::Zero => {
                    flags |= neoos_abi::mman::MAP_ANON;
                    None
                }
            }
        };
        let mapped =
            self.with_hw(|m, s, hw| m.mmap(s, hw, addr, len, prot, flags, file, offset))?;
        Ok((mapped, file.map(|(file, _)| file)))
    }
}

/// Whether call `number` may be one a [`Kernel::system_call_shared`]
/// makes (POSIX or Linux `mmap`, `munmap`, `mprotect`, Linux `brk` and
/// `mremap`): the others are not tried that way.
#[inline]
pub fn may_run_shared(number: usize) -> bool {
    use neoos_abi::linux::nr as linux;
    use neoos_abi::nr as neo;
    matches!(
        number,
        neo::MMAP
            | neo::MUNMAP
            | neo::MPROTECT
            | linux::MMAP
            | linux::MUNMAP
            | linux::MPROTECT
            | linux::BRK
            | linux::MREMAP
    )
}

/// Whether `flags` are those of a file's `mmap` the shared way takes:
/// exactly `MAP_SHARED` or `MAP_PRIVATE`.
fn is_file_mmap(flags: u32) -> bool {
    use neoos_abi::mman::{MAP_PRIVATE, MAP_SHARED};
    flags == MAP_SHARED || flags == MAP_PRIVATE
}

impl<P: Platform> Kernel<P> {
    /// Call `number` (arguments `regs`) of the thread CPU `cpu` runs, made
    /// with shared access to the kernel (its lock held for reading: faults
    /// and these calls go on on other CPUs at once) when it is `mmap` of
    /// anonymous memory or of a file (shared or private), `munmap` or
    /// `mprotect` of the mappings `neoos_mm`'s `shared_map.rs` takes, a
    /// Linux `brk` that grows the heap in place or shrinks it
    /// (`program_break.rs`) or an `mremap` that grows private memory or
    /// shrinks a mapping (`shared_remap.rs`), and nothing would refuse it
    /// (heap reserve, frames low, mapping count, RLIMIT_AS): its return
    /// value.
    /// `None` changes nothing: the call is then made with
    /// [`Self::system_call`], which reports every error.
    pub fn system_call_shared(&self, cpu: usize, number: usize, regs: [u64; 6]) -> Option<i64> {
        use crate::linux::{LinuxCall, ProgramAbi};
        use neoos_abi::linux::nr as linux;
        let pid = self.processes.running_process_on(cpu)?;
        let p = self.processes.get(pid)?;
        // Each personality's own numbers (a Linux `writev` is NeoOS's mmap).
        let ours = match p.abi {
            ProgramAbi::Neo => {
                use neoos_abi::nr as neo;
                matches!(number, neo::MMAP | neo::MUNMAP | neo::MPROTECT)
            }
            ProgramAbi::Linux(_) => matches!(
                number,
                linux::MMAP | linux::MUNMAP | linux::MPROTECT | linux::BRK | linux::MREMAP
            ),
        };
        if !ours {
            return None;
        }
        let decoded = crate::linux::decode_for(&p.abi, number, regs)?;
        if self.platform.heap_room() == 0 || crate::reclaim::frames_low(&self.platform) {
            return None;
        }
        // Linux `munmap` also unlocks what `mlock` locked there, and a
        // `MAP_FIXED` replaces it: only a range without locks goes this way.
        let unlocked = |addr: u64, len: u64| match &p.abi {
            ProgramAbi::Linux(s) => {
                let end = addr
                    .checked_add(len)?
                    .checked_next_multiple_of(PAGE_SIZE as u64)?;
                (!s.locks.overlaps(addr, end)).then_some(())
            }
            ProgramAbi::Neo => Some(()),
        };
        let call = match decoded.call {
            super::Call::Memory(
                call @ MemoryCall::Mmap {
                    addr, len, flags, ..
                },
            ) => {
                if flags & neoos_abi::mman::MAP_FIXED != 0 {
                    unlocked(addr, len)?;
                }
                call
            }
            super::Call::Memory(call) => call,
            super::Call::Linux(LinuxCall::Munmap { addr, len }) => {
                matches!(p.abi, ProgramAbi::Linux(_)).then_some(())?;
                unlocked(addr, len)?;
                MemoryCall::Munmap { addr, len }
            }
            // The break counts against RLIMIT_AS: under a limit, the
            // writing way.
            super::Call::Linux(LinuxCall::Brk { addr }) => {
                matches!(p.abi, ProgramAbi::Linux(_)).then_some(())?;
                address_space_limit(&p.abi).is_none().then_some(())?;
                let table = p.table.as_ref()?;
                let brk = self.memory.brk_shared(p.space, table, addr, MAPPINGS_MAX)?;
                return Some(decoded.personality.result(Ok(brk as i64)));
            }
            // A locked range moves its lock along: the writing way.
            super::Call::Linux(LinuxCall::Mremap {
                old,
                old_len,
                new_len,
                flags,
                ..
            }) => {
                matches!(p.abi, ProgramAbi::Linux(_)).then_some(())?;
                address_space_limit(&p.abi).is_none().then_some(())?;
                unlocked(old, old_len)?;
                let table = p.table.as_ref()?;
                let lens = (old, old_len, new_len);
                let at = self
                    .memory
                    .mremap_shared(p.space, table, lens, flags, MAPPINGS_MAX)?;
                return Some(decoded.personality.result(Ok(at as i64)));
            }
            _ => return None,
        };
        let value = match call {
            MemoryCall::Mmap {
                addr,
                len,
                prot,
                flags,
                fd,
                offset,
            } if is_file_mmap(flags) && address_space_limit(&p.abi).is_none() => {
                let Ok(Descriptor::File(f)) = p.files.get(fd) else {
                    return None;
                };
                // Room to note the file for its mark, held across the call.
                let mut mapped = self.mapped_shared.try_lock()?;
                mapped.try_reserve(1).ok()?;
                let file = (f.file, f.access);
                let at = self.memory.mmap_shared_file(
                    p.space,
                    addr,
                    len,
                    prot,
                    flags,
                    file,
                    offset,
                    MAPPINGS_MAX,
                )?;
                mapped.push(f.file);
                at
            }
            MemoryCall::Mmap {
                addr,
                len,
                prot,
                flags,
                ..
            } if address_space_limit(&p.abi).is_none() => {
                let table = p.table.as_ref()?;
                self.memory
                    .mmap_shared(p.space, table, addr, len, prot, flags, MAPPINGS_MAX)?
            }
            MemoryCall::Munmap { addr, len } => {
                let table = p.table.as_ref()?;
                self.memory
                    .munmap_shared(p.space, table, addr, len, MAPPINGS_MAX)?;
                0
            }
            MemoryCall::Mprotect { addr, len, prot } => {
                let table = p.table.as_ref()?;
                self.memory
                    .mprotect_shared(p.space, table, addr, len, prot, MAPPINGS_MAX)?;
                0
            }
            _ => return None,
        };
        Some(decoded.personality.result(Ok(value as i64)))
    }

    /// Does what the mapping calls made with shared access left
    /// (`neoos_mm::MemorySystem::finish_shared_work`: the objects and
    /// tables the `munmap`s removed, the spare objects the `mmap`s took;
    /// the files their `mmap`s mapped, marked accessed here):
    /// the kernel calls it first in every section with exclusive access.
    #[inline]
    pub fn finish_shared_work(&mut self) {
        if self.memory.has_shared_work() {
            self.finish_shared_work_now();
        }
    }

    #[cold]
    #[inline(never)]
    fn finish_shared_work_now(&mut self) {
        // The files the shared `mmap`s mapped, marked accessed (POSIX lets
        // that happen any time before their `munmap`).
        let mut mapped = core::mem::take(self.mapped_shared.get_mut());
        for file in mapped.drain(..) {
            self.touch_file(file, crate::linux::meta::Touch::Access);
        }
        *self.mapped_shared.get_mut() = mapped;
        let heap_room = self.platform.heap_room() > 0;
        let mut io = neoos_mm::Io {
            frames: self.platform.frames(),
            pager: &mut self.fs.disk,
        };
        let mut tables = crate::reclaim::ProcessTables(&mut self.processes);
        self.memory
            .finish_shared_work(&mut io, &mut tables, heap_room);
    }
    #[inline]
    pub(super) fn memory_call(&mut self, pid: Pid, call: MemoryCall) -> Result<i64, Errno> {
        match call {
            // The kernel completes these in steps (`SchedulerCall`).
            MemoryCall::Mincore { .. } | MemoryCall::Maps { .. } => Err(Errno::Inval),
            MemoryCall::MemInfo { out } => self.meminfo(pid, out),
            // Asks nothing of the caller (answered even without one).
            MemoryCall::GetPageSize => Ok(PAGE_SIZE as i64),
            MemoryCall::Msync { addr, len, flags } => {
                // The files whose mappings held dirty pages in the range
                // (msync's own dirty-set search finds them) are marked
                // modified: POSIX has a store through a mapping update the
                // file's times by the next msync.
                let mut dirty = DirtyFiles::default();
                self.with_space(pid, |m, s, hw| {
                    m.msync_noting(s, hw, addr, len, flags, &mut dirty)
                })?;
                for &file in dirty.as_slice() {
                    self.touch_file(file, Touch::Modify);
                }
                Ok(0)
            }
            _ => {
                let (result, mapped) = self.memory_caller(pid)?.run(&call);
                self.touch_mapped(mapped);
                result
            }
        }
    }

    /// The caller's side of a memory call (see [`MemoryCaller`]); `Inval`
    /// for no such process.
    #[inline]
    pub(crate) fn memory_caller(&mut self, pid: Pid) -> Result<MemoryCaller<'_, P>, Errno> {
        let process = self.processes.get_mut(pid).ok_or(Errno::Inval)?;
        Ok(MemoryCaller {
            memory: &mut self.memory,
            platform: &mut self.platform,
            disk: &mut self.fs.disk,
            process,
        })
    }

    /// Marks `mapped`, the file a memory call mapped if any, accessed.
    #[inline]
    pub(crate) fn touch_mapped(&mut self, mapped: Option<FileId>) {
        if let Some(file) = mapped {
            self.touch_file(file, Touch::Access);
        }
    }

    /// `msync` with `MS_SYNC`: the range's entries are write-protected
    /// here (as for `MS_ASYNC`), and the dirty volume files' pages are
    /// written back by the scheduler side, whose waits for the disk hold
    /// no lock (`disk_wait.rs`; it writes each file's dirty pages, those
    /// of the range among them). When a RAM file is among them, or more
    /// files than are noted, the range is written back here, as before.
    pub(super) fn msync_sync(&mut self, pid: Pid, addr: u64, len: u64, flags: u32) -> Completion {
        let mut dirty = DirtyFiles::default();
        let protect_only = flags & !neoos_abi::mman::MS_SYNC;
        let protected = self.with_space(pid, |m, s, hw| {
            m.msync_noting(s, hw, addr, len, protect_only, &mut dirty)
        });
        if let Err(e) = protected {
            return Completion::Done(Err(e));
        }
        let files = dirty.as_slice();
        if files.len() == DirtyFiles::CAPACITY
            || files.iter().any(|&f| !crate::mount::is_volume_file(f))
        {
            return Completion::Done(self.memory_call(pid, MemoryCall::Msync { addr, len, flags }));
        }
        for &file in files {
            self.touch_file(file, Touch::Modify);
        }
        if files.is_empty() {
            return Completion::Done(Ok(0));
        }
        Completion::Scheduler(self.begin_writeback(pid, dirty))
    }

    /// `NoMem` when adding `added` mappings could take the caller beyond
    /// [`MAPPINGS_MAX`] (each mapping costs kernel heap: docs/abi.md,
    /// Limits).
    pub(crate) fn mapping_room_check(&self, pid: Pid, added: usize) -> Result<(), Errno> {
        if added == 0 {
            return Ok(());
        }
        let count = self.memory.mapping_count(self.space_of(pid)?);
        if count + added > MAPPINGS_MAX {
            Err(Errno::NoMem)
        } else {
            Ok(())
        }
    }

    /// Runs `f` with the caller's address space and hardware.
    #[inline]
    pub(crate) fn with_space<R>(
        &mut self,
        pid: Pid,
        f: impl FnOnce(&mut MemorySystem, AsId, &mut Hw) -> Result<R, Errno>,
    ) -> Result<R, Errno> {
        let (memory, space, mut hw) = self.hw_for(pid).ok_or(Errno::Inval)?;
        f(memory, space, &mut hw)
    }

    pub(crate) fn space_of(&self, pid: Pid) -> Result<AsId, Errno> {
        self.processes.get(pid).map(|p| p.space).ok_or(Errno::Inval)
    }

    /// Starts POSIX `mincore`: checks the range whole; the kernel completes
    /// it with [`Kernel::mincore_step`]s, giving other processes the CPU
    /// between steps (docs/abi.md, Limits, "Long calls").
    pub fn mincore_begin(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        vec: UserPtr,
    ) -> Result<MincoreProgress, Errno> {
        let space = self.space_of(pid)?;
        if !addr.is_multiple_of(PAGE_SIZE as u64) || (len as i64) < 0 {
            return Err(Errno::Inval);
        }
        if len == 0 {
            return Ok(MincoreProgress {
                start: addr,
                end: addr,
                vec,
                at: addr,
                vec_checked: 0,
            });
        }
        let end = addr
            .checked_add(len.div_ceil(PAGE_SIZE as u64) * PAGE_SIZE as u64)
            .ok_or(Errno::Inval)?;
        self.check_fully_mapped(space, addr, end)?;
        let pages = (end - addr) / PAGE_SIZE as u64;
        // The vector is checked in the first steps, before any is stored.
        usize::try_from(pages).map_err(|_| Errno::Fault)?;
        vec.addr().checked_add(pages).ok_or(Errno::Fault)?;
        Ok(MincoreProgress {
            start: addr,
            end,
            vec,
            at: addr,
            vec_checked: 0,
        })
    }

    /// One step of `mincore`: the first steps check the vector writable
    /// (1,024 of its pages a step; nothing is stored before all of it is
    /// checked, so an error changes nothing), the next report pages from
    /// `progress.at` on, a kernel
    /// buffer of [`CHUNK`] pages at a time, until [`MINCORE_STEP_WORK`]
    /// units of work are done (a page asked of the mapping core is one; a
    /// page of a mapping with nothing resident, reported without asking, is
    /// 1/64). `true` when the whole range is reported. Should another
    /// process change the range between steps (truncating a file it maps),
    /// the step fails as `mincore` would have at the start.
    pub fn mincore_step(
        &mut self,
        pid: Pid,
        progress: &mut MincoreProgress,
    ) -> Result<bool, Errno> {
        let space = self.space_of(pid)?;
        let vec_len = (progress.end - progress.start) / PAGE_SIZE as u64;
        if progress.vec_checked < vec_len {
            // Bringing in a page of the vector is a unit of work too.
            let n = (vec_len - progress.vec_checked).min(MINCORE_STEP_WORK * PAGE_SIZE as u64 / 16);
            let at = progress.vec.offset(progress.vec_checked);
            self.check_writable(pid, at, n as usize)?;
            progress.vec_checked += n;
            return Ok(false);
        }
        let mut buf = crate::buffer::zeroed(CHUNK)?;
        let mut work = 0u64;
        while progress.at < progress.end {
            if work >= MINCORE_STEP_WORK {
                return Ok(false);
            }
            let at = progress.at;
            let (mapping_end, resident) = self
                .memory
                .maps_from(space, self.mapping_start(space, at)?)
                .next()
                .map(|m| (m.end, m.resident))
                .ok_or(Errno::NoMem)?;
            let step = (mapping_end.min(progress.end) - at).min((CHUNK * PAGE_SIZE) as u64);
            let n = (step / PAGE_SIZE as u64) as usize;
            if resident == 0 {
                buf[..n].fill(0);
                work += n as u64 / 64 + 1;
            } else {
                self.memory.mincore(space, at, step, &mut buf[..n])?;
                work += n as u64;
            }
            let index = (at - progress.start) / PAGE_SIZE as u64;
            self.copy_out(pid, progress.vec.offset(index), &buf[..n])?;
            progress.at += step;
        }
        Ok(true)
    }

    /// Where the mapping holding `addr` starts; `NoMem` if none does.
    fn mapping_start(&self, space: AsId, addr: u64) -> Result<u64, Errno> {
        self.memory
            .mapping_at(space, addr)
            .map(|m| m.start)
            .ok_or(Errno::NoMem)
    }

    /// `NoMem` unless `[start, end)` lies in the user range and mappings
    /// cover it with no hole (one step per mapping).
    pub(crate) fn check_fully_mapped(
        &self,
        space: AsId,
        start: u64,
        end: u64,
    ) -> Result<(), Errno> {
        if start < USER_BASE || end > USER_END {
            return Err(Errno::NoMem);
        }
        let mut at = start;
        while at < end {
            at = self
                .memory
                .mapping_at(space, at)
                .map(|m| m.end)
                .ok_or(Errno::NoMem)?;
        }
        Ok(())
    }

    fn meminfo(&mut self, pid: Pid, out: UserPtr) -> Result<i64, Errno> {
        let (total, free) = self.platform.frame_counts();
        let stats = self.memory.stats();
        let disk = self.fs.disk.device_counters();
        let ipis = self.platform.ipi_counters();
        let space = self.space_of(pid)?;
        let fields: [u64; MEMINFO_FIELDS] = [
            total,
            free,
            self.memory.mapping_count(space) as u64,
            self.memory.resident_pages(space),
            stats.writeback_requests,
            stats.writeback_bytes,
            stats.tlb_single_flushes,
            stats.tlb_full_flushes,
            disk.requests,
            disk.interrupts,
            ipis.tlb_shootdown_ipis,
            ipis.remote_page_invalidations,
            ipis.remote_full_flushes,
            ipis.wakeup_ipis,
        ];
        let mut bytes = [0u8; MEMINFO_FIELDS * 8];
        for (out, field) in bytes.chunks_exact_mut(8).zip(fields) {
            out.copy_from_slice(&field.to_le_bytes());
        }
        self.copy_out(pid, out, &bytes)?;
        Ok(0)
    }

    /// Starts `sys_maps`; the kernel completes it with
    /// [`Kernel::maps_step`]s, giving other processes the CPU between
    /// steps (docs/abi.md, Limits, "Long calls").
    pub fn maps_begin(&mut self, pid: Pid, buf: UserPtr, len: i64) -> Result<MapsProgress, Errno> {
        let len = usize::try_from(len).map_err(|_| Errno::Inval)?;
        self.space_of(pid)?;
        Ok(MapsProgress {
            buf,
            len,
            total: 0,
            from: 0,
        })
    }

    /// One step of `sys_maps`: lists up to [`MAPS_STEP_BATCHES`] batches of
    /// [`MAPS_BATCH`] mappings from `progress` on, in kernel buffers
    /// allocated (fallibly) once per step and copied out once per batch;
    /// each batch starts with one tree lookup, and each file is named by
    /// one index lookup, so the cost follows the mappings. The length of
    /// the whole listing once it is done, `None` before.
    pub fn maps_step(
        &mut self,
        pid: Pid,
        progress: &mut MapsProgress,
    ) -> Result<Option<i64>, Errno> {
        let space = self.space_of(pid)?;
        let mut batch = Vec::new();
        let mut line = String::new();
        let mut text = Vec::new();
        batch
            .try_reserve_exact(MAPS_BATCH)
            .and_then(|_| line.try_reserve_exact(MAPS_LINE_MAX))
            .and_then(|_| text.try_reserve_exact(MAPS_BATCH * MAPS_LINE_MAX))
            .map_err(|_| Errno::NoMem)?;
        for _ in 0..MAPS_STEP_BATCHES {
            batch.clear();
            batch.extend(self.memory.maps_from(space, progress.from).take(MAPS_BATCH));
            let Some(last) = batch.last() else {
                return Ok(Some(progress.total as i64));
            };
            progress.from = last.end;
            text.clear();
            for m in &batch {
                line.clear();
                self.maps_line(m, &mut line);
                text.extend_from_slice(line.as_bytes());
            }
            let (total, len) = (progress.total, progress.len);
            if total < len {
                let n = text.len().min(len - total);
                self.copy_out(pid, progress.buf.offset(total as u64), &text[..n])?;
            }
            progress.total += text.len();
        }
        Ok(None)
    }

    /// One line of the `sys_maps` listing (docs/abi.md).
    fn maps_line(&self, m: &MapInfo, text: &mut String) {
        let path = match m.object {
            MapObject::File(f) => self.fs.path_of(f),
            _ => None,
        };
        let _ = write_maps_line(text, m, path.as_deref());
    }
}

/// `NoMem` when `call` could take address space `space` beyond [`MAPPINGS_MAX`]: a
/// new mapping adds one; one placed with `MAP_FIXED` inside another
/// also cuts that one in two; unmapping the middle of a mapping leaves
/// two, protecting it leaves three. Whether an unmap or protect cuts a
/// mapping is only looked up when the count is that close to the bound.
#[inline]
fn mapping_room_check_for(
    memory: &mut MemorySystem,
    space: AsId,
    call: &MemoryCall,
) -> Result<(), Errno> {
    let (most, cuts) = match *call {
        // Empty requests add nothing: the mapping core refuses them
        // with `Inval`, whatever the count.
        MemoryCall::NeoMmap { size, .. } if size <= 0 => return Ok(()),
        MemoryCall::Mmap { len: 0, .. } => return Ok(()),
        MemoryCall::NeoMmap { .. } => (1, None),
        MemoryCall::Mmap { flags, .. } if flags & neoos_abi::mman::MAP_FIXED != 0 => (2, None),
        MemoryCall::Mmap { .. } => (1, None),
        MemoryCall::Munmap { addr, len } => (1, Some((addr, len))),
        MemoryCall::Mprotect { addr, len, .. } => (2, Some((addr, len))),
        _ => return Ok(()),
    };
    let count = memory.mappings_held(space);
    if count + most <= MAPPINGS_MAX {
        return Ok(());
    }
    let added = match cuts {
        Some((addr, len)) if !memory.would_split(space, addr, len) => 0,
        _ => most,
    };
    if count + added > MAPPINGS_MAX {
        Err(Errno::NoMem)
    } else {
        Ok(())
    }
}
