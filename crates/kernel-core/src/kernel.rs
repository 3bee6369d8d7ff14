//! The kernel state that system calls and faults work on: the mapping core,
//! the file system, the SysV segment records, the process table and the
//! programs still to launch, over a [`Platform`]. Creating, forking, ending
//! and releasing processes live here; switching between them is the
//! kernel's.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use neoos_abi::status;
use neoos_mm::{Access, AsId, Errno, FaultError, Hw, Io, MemorySystem};

use crate::files::{DescriptorTable, FileIo};
use crate::fs::FileSystem;
use crate::ipc::SegmentRecords;
use crate::launch::LaunchEntry;
use crate::linux::{ProgramAbi, UnknownCalls};
use crate::platform::Platform;
use crate::process::{NewProcess, Parent, Pid, ProcessTable, Unwaited};

/// Mappings one step of an exit removes ([`Kernel::exit_step`]): a few
/// milliseconds of work on the emulated machine, well under a tick.
pub const EXIT_STEP_MAPPINGS: usize = 1024;

/// All kernel state, over the machine `P`.
pub struct Kernel<P: Platform> {
    pub platform: P,
    pub(crate) memory: MemorySystem,
    pub(crate) fs: FileSystem,
    pub(crate) segments: SegmentRecords,
    pub(crate) processes: ProcessTable<P::PageTable, P::Context>,
    /// Programs to start, in order, one after another.
    launch: VecDeque<LaunchEntry>,
    /// Unknown Linux call numbers already reported.
    pub(crate) linux_unknown: UnknownCalls,
    /// What the flusher has seen of the cached volume files.
    pub(crate) flusher: crate::flusher::Flusher,
    /// Write-backs whose device writes are under way without the lock.
    pub(crate) writebacks: crate::disk_wait::Writebacks,
    /// Files' permission bits and times (Linux `stat`).
    pub(crate) file_meta: crate::linux::meta::FileMetaTable,
    /// Every pipe.
    pub(crate) pipes: crate::pipes::PipeTable,
    /// Threads asleep in futex waits.
    pub(crate) futexes: crate::futex::FutexTable,
    /// The working directory of each process that left `/` (Linux
    /// `chdir`; inherited by `fork`, kept by `execve`).
    pub(crate) cwds: alloc::collections::BTreeMap<Pid, String>,
    /// A console byte `poll` read to see whether input had come, kept for
    /// the next console read.
    pub(crate) console_ahead: Option<u8>,
    /// Files mapped by `mmap`s made with shared access, to be marked
    /// accessed by the next exclusive section
    /// ([`Kernel::finish_shared_work`]).
    pub(crate) mapped_shared: spin::Mutex<alloc::vec::Vec<neoos_mm::FileId>>,
}

/// How a user page fault that could not be resolved ends its process (or,
/// when [`FatalFault::waits_for_read`] or [`FatalFault::waits_for_copy`],
/// that it is not resolved yet: its page is to be read from the disk, or
/// copied outside the kernel lock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FatalFault {
    /// `segmentation fault`, `bus error` or `out of memory`.
    pub what: &'static str,
    /// Why, in words.
    pub reason: &'static str,
    /// The exit status the process ends with.
    pub status: i64,
    /// The signal a Linux program gets for it, with its `si_code`
    /// (`None`: the process ends, no handler can run).
    pub signal: Option<(u32, i32)>,
    /// Not an end but a wait (status 0, which no end has).
    pub wait: Option<FaultWait>,
}

/// What a fault that is not resolved yet waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultWait {
    /// Its page's read, planned: see [`FatalFault::waits_for_read`].
    Read,
    /// Its copy-on-write copy: see [`FatalFault::waits_for_copy`].
    Copy,
}

impl FatalFault {
    /// Not an end: the page's read is planned, and the fault is resolved
    /// again through [`Kernel::resolve_fault_step`], which starts the read
    /// and waits for it without the kernel lock.
    pub fn waits_for_read(&self) -> bool {
        self.wait == Some(FaultWait::Read)
    }

    /// Not an end: the page is to be copied from the frame
    /// [`Kernel::copy_waited_for`] names, with the kernel lock not held,
    /// and the fault resolved again through [`Kernel::resolve_fault_step`]
    /// (which makes copies at once, using the copy made beforehand if the
    /// frame source can vouch for it: `neoos_mm::FrameSource::copy_of`).
    pub fn waits_for_copy(&self) -> bool {
        self.wait == Some(FaultWait::Copy)
    }

    // Out of line: a resolved fault (the common case) then costs one
    // compare, not the table of every outcome.
    #[cold]
    #[inline(never)]
    pub(crate) fn of(error: FaultError) -> Self {
        use crate::linux::signals::{BUS_ADRERR, SEGV_ACCERR, SEGV_MAPERR, SIGBUS, SIGSEGV};
        let (what, status, reason, signal) = match error {
            FaultError::NotMapped => (
                "segmentation fault",
                status::SEGFAULT,
                "not mapped",
                Some((SIGSEGV, SEGV_MAPERR)),
            ),
            FaultError::NotPermitted => (
                "segmentation fault",
                status::SEGFAULT,
                "not permitted",
                Some((SIGSEGV, SEGV_ACCERR)),
            ),
            FaultError::BeyondEndOfFile => (
                "bus error",
                status::BUSERROR,
                "past the end of the file",
                Some((SIGBUS, BUS_ADRERR)),
            ),
            FaultError::WaitForRead => (
                "waiting for a read",
                0,
                "the page is being read from the disk",
                None,
            ),
            FaultError::Io => (
                "bus error",
                status::BUSERROR,
                "the file could not be read",
                Some((SIGBUS, BUS_ADRERR)),
            ),
            FaultError::WaitForCopy => (
                "waiting for a copy",
                0,
                "the page is being copied outside the kernel lock",
                None,
            ),
            FaultError::NoMem => ("out of memory", status::KILLED, "no free memory", None),
        };
        let wait = match error {
            FaultError::WaitForRead => Some(FaultWait::Read),
            FaultError::WaitForCopy => Some(FaultWait::Copy),
            _ => None,
        };
        FatalFault {
            what,
            reason,
            status,
            signal,
            wait,
        }
    }
}

impl<P: Platform> Kernel<P> {
    /// The kernel state over `platform`, with file system `fs` and the
    /// programs to launch.
    pub fn new(platform: P, fs: FileSystem, launch: VecDeque<LaunchEntry>) -> Self {
        // Objects whose last reference goes with dirty pages are written
        // by the flusher, without the lock (`flusher.rs`).
        let mut memory = MemorySystem::new();
        memory.set_keep_released(true);
        Kernel {
            platform,
            memory,
            fs,
            segments: SegmentRecords::default(),
            processes: ProcessTable::default(),
            launch,
            linux_unknown: UnknownCalls::default(),
            flusher: crate::flusher::Flusher::default(),
            writebacks: crate::disk_wait::Writebacks::default(),
            file_meta: Default::default(),
            pipes: Default::default(),
            futexes: Default::default(),
            cwds: Default::default(),
            console_ahead: None,
            mapped_shared: Default::default(),
        }
    }

    /// The process table.
    pub fn processes(&self) -> &ProcessTable<P::PageTable, P::Context> {
        &self.processes
    }

    /// The process table, to schedule.
    pub fn processes_mut(&mut self) -> &mut ProcessTable<P::PageTable, P::Context> {
        &mut self.processes
    }

    /// The mapping core.
    pub fn memory(&self) -> &MemorySystem {
        &self.memory
    }

    /// The file system.
    pub fn fs(&self) -> &FileSystem {
        &self.fs
    }

    /// Whether no program is left to launch.
    pub fn nothing_to_launch(&self) -> bool {
        self.launch.is_empty()
    }

    /// The path of process `pid` (empty for an unknown pid).
    pub fn path_of(&self, pid: Pid) -> String {
        self.processes
            .get(pid)
            .map(|p| p.path.clone())
            .unwrap_or_default()
    }

    /// Splits the state into what a mapping-core file call needs.
    pub(crate) fn memory_io(&mut self) -> (&mut MemorySystem, Io<'_>) {
        let io = Io {
            frames: self.platform.frames(),
            pager: &mut self.fs.disk,
        };
        (&mut self.memory, io)
    }

    /// The file system, page cache and frames, for file operations.
    pub(crate) fn file_io(&mut self) -> FileIo<'_, P::Frames> {
        FileIo {
            fs: &mut self.fs,
            memory: &mut self.memory,
            frames: self.platform.frames(),
            pipes: &mut self.pipes,
        }
    }

    /// Heap bytes calls may still take for kernel data: above the kernel's
    /// reserve. (The RAM disk keeps file data in frames it takes when room
    /// is reserved, so writeback needs no heap.)
    pub(crate) fn heap_room(&self) -> usize {
        self.platform.heap_room()
    }

    /// Splits the state into what a mapping-core call on process `pid` needs.
    #[inline]
    pub(crate) fn hw_for(&mut self, pid: Pid) -> Option<(&mut MemorySystem, AsId, Hw<'_>)> {
        let p = self.processes.get_mut(pid)?;
        let table = p.table.as_mut()?;
        let hw = Hw::new(table, self.platform.frames(), &mut self.fs.disk);
        Some((&mut self.memory, p.space, hw))
    }

    /// Starts the next program to launch with its argv, reporting those
    /// that cannot start (a malformed launch entry among them).
    pub fn launch_next(&mut self) {
        while let Some(entry) = self.launch.pop_front() {
            let path = match entry {
                Ok(launch) => match self.spawn(&launch.path, &launch.argv, None) {
                    Ok(_) => return,
                    Err(e) => {
                        self.platform
                            .report(format_args!("cannot start {}: {:?}", launch.path, e));
                        launch.path
                    }
                },
                Err(bad) => {
                    self.platform.report(format_args!(
                        "cannot start {}: malformed launch entry: {}",
                        bad.entry, bad.error
                    ));
                    bad.entry
                }
            };
            self.platform.report(format_args!(
                "program {} (pid 0) ended with status 127",
                path
            ));
        }
    }

    /// Creates a process running `path` with `argv`; it is ready to run.
    pub fn spawn(
        &mut self,
        path: &str,
        argv: &[Vec<u8>],
        parent: Option<Pid>,
    ) -> Result<Pid, Errno> {
        let loaded = self.load(path, argv)?;
        self.admit(path, loaded, parent)
    }

    /// The second half of `spawn`: a context and a process for the image
    /// `loaded`. Not inlined, so that `spawn`'s frame (under the loader's
    /// on the kernel stack) does not also hold the new process's record.
    #[inline(never)]
    fn admit(
        &mut self,
        path: &str,
        loaded: crate::loader::Loaded<P>,
        parent: Option<Pid>,
    ) -> Result<Pid, Errno> {
        let Some(context) = self.platform.new_context(&loaded.frame) else {
            self.discard(loaded.space, loaded.table);
            return Err(Errno::NoMem);
        };
        let pid = self.processes.insert(NewProcess {
            parent: parent.map_or(Parent::Kernel, Parent::Process),
            path: String::from(path),
            space: loaded.space,
            table: loaded.table,
            context,
            files: DescriptorTable::standard(),
            abi: loaded.abi,
            thread: Default::default(),
        });
        // A new program starts in `/`.
        self.cwds.remove(&pid);
        Ok(pid)
    }

    /// Tears down an address space and its table that no process got.
    fn discard(&mut self, space: AsId, mut table: P::PageTable) {
        let mut hw = Hw::new(&mut table, self.platform.frames(), &mut self.fs.disk);
        let _ = self.memory.destroy_address_space(space, &mut hw);
        self.platform.free_page_table(table);
    }

    /// Creates a copy of process `parent` that resumes in user mode with
    /// `frame`: private memory becomes copy-on-write, shared memory stays
    /// shared, descriptors are duplicated.
    pub fn fork(&mut self, parent: Pid, frame: &P::UserFrame) -> Result<Pid, Errno> {
        // The child's mapping records go into ordered maps, whose inserts
        // cannot fail softly: refuse a fork whose bound the heap cannot hold.
        let parent_space = self.processes.get(parent).ok_or(Errno::Inval)?.space;
        if self.memory.fork_metadata_bytes(parent_space) > self.heap_room() {
            return Err(Errno::NoMem);
        }
        let table = self.platform.new_page_table().ok_or(Errno::NoMem)?;
        let forked = match self.hw_for(parent) {
            Some((memory, space, mut hw)) => memory.fork(space, &mut hw),
            None => Err(Errno::Inval),
        };
        let space = match forked {
            Ok(space) => space,
            Err(e) => {
                self.platform.free_page_table(table);
                return Err(e);
            }
        };
        let Some(context) = self.platform.new_context(frame) else {
            self.discard(space, table);
            return Err(Errno::NoMem);
        };
        let (path, files, abi) = match self.processes.get(parent) {
            Some(p) => (p.path.clone(), p.files.clone(), p.abi),
            None => (String::new(), DescriptorTable::default(), ProgramAbi::Neo),
        };
        // The child's thread has the caller's mask, alternate stack and FS
        // base, and no sigsuspend in progress.
        let mut thread = self.caller_part(parent).unwrap_or_default();
        thread.saved_mask = None;
        let ends: Vec<_> = files.pipe_ends().collect();
        for (id, write) in ends {
            self.pipes.add_ref(id, write);
        }
        let dirs: Vec<_> = files.open_dirs().collect();
        for id in dirs {
            self.fs.open_dirs.add_ref(id);
        }
        let opened: Vec<_> = files.open_files().map(|f| f.file).collect();
        let mut file_io = self.file_io();
        for file in opened {
            file_io.open_ref(file);
        }
        // The child's working directory is its parent's (a copy made
        // before the child exists; none is `/`).
        let cwd = self.cwds.get(&parent).and_then(|c| {
            let mut copy = String::new();
            copy.try_reserve_exact(c.len()).ok()?;
            copy.push_str(c);
            Some(copy)
        });
        let child = self.processes.insert(NewProcess {
            parent: Parent::Process(parent),
            path,
            space,
            table,
            context,
            files,
            abi,
            thread,
        });
        // No signal pending and no timer (POSIX).
        self.processes.inherit_signals(parent, child);
        match cwd {
            Some(cwd) => {
                self.cwds.insert(child, cwd);
            }
            None => {
                self.cwds.remove(&child);
            }
        }
        Ok(child)
    }

    /// Ends process `pid` with `status`, every thread of it: removes every
    /// mapping (writing back dirty file pages), closes its descriptors,
    /// frees the contexts of its threads the CPU is not on, wakes a waiting
    /// parent, reaps ended children. The context of the thread the CPU is
    /// on and the page table are freed by [`Self::release_ended`] once the
    /// CPU has left it.
    pub fn end(&mut self, pid: Pid, status: i64) {
        // An exec's old space still being torn down goes first (its table
        // is not the running one).
        self.finish_retired(pid);
        let parent = self.processes.get(pid).map(|p| p.parent);
        let Some(mut ending) = self.processes.end(pid, status) else {
            return;
        };
        for context in ending.contexts.drain(..) {
            self.platform.free_context(context);
        }
        for tid in ending.threads.drain(..) {
            self.futexes.remove(tid);
        }
        if let Some(Parent::Process(parent)) = parent {
            if let Some(u) = self.notify_parent(parent, pid, status) {
                self.report_unwaited(&u);
            }
        }
        let mut files = self.file_io();
        for d in ending.files.take_all() {
            // A failed writeback (a faulty disk) cannot stop an exit.
            let _ = files.close(d);
        }
        if let Some((memory, space, mut hw)) = self.hw_for(pid) {
            debug_assert_eq!(space, ending.space);
            let _ = memory.destroy_address_space(space, &mut hw);
        }
        self.cwds.remove(&pid);
        self.reap_released_orphans();
        for u in ending.unwaited {
            self.report_unwaited(&u);
        }
    }

    /// One step of process `pid`'s exit, taken before [`Self::end`] while
    /// it still runs: removes up to [`EXIT_STEP_MAPPINGS`] of its lowest
    /// mappings (writing back dirty file pages), so the teardown of a big
    /// address space does not stop the other processes. `true` once none is
    /// left.
    pub fn exit_step(&mut self, pid: Pid) -> bool {
        match self.hw_for(pid) {
            Some((memory, space, mut hw)) => memory
                .unmap_lowest(space, &mut hw, EXIT_STEP_MAPPINGS)
                .unwrap_or(true),
            None => true,
        }
    }

    /// Ends process `pid` at another process's request: SIGKILL, which
    /// it takes in its own context (woken if it sleeps or waits) on its
    /// way back to user mode, its exit stepped there like any other, so a
    /// big address space does not stop the killer or anyone else. `false`
    /// when there is no such live process.
    pub fn kill(&mut self, pid: Pid) -> bool {
        self.send_signal(pid, crate::linux::signals::SIGKILL)
            .is_ok()
    }

    /// Frees what an ended process still held once the CPU has left it.
    pub fn release_ended(&mut self, pid: Pid) {
        let Some(released) = self.processes.release(pid) else {
            return;
        };
        if let Some(context) = released.context {
            self.platform.free_context(context);
        }
        if let Some(table) = released.table {
            self.platform.free_page_table(table);
        }
        if let Some(u) = released.unwaited {
            self.report_unwaited(&u);
        }
    }

    /// Reports the end of a process nobody waits for: `program ...` for the
    /// programs the kernel started (the host tool reads these lines),
    /// `orphan ...` for children whose parent went first.
    fn report_unwaited(&mut self, u: &Unwaited) {
        let what = if u.started_by_kernel {
            "program"
        } else {
            "orphan"
        };
        self.platform.report(format_args!(
            "{} {} (pid {}) ended with status {}",
            what, u.path, u.pid, u.status
        ));
    }

    /// Resolves a page fault of process `pid` at `address`; on failure, how
    /// the process ends, or that the page is to be read from the disk
    /// ([`FatalFault::waits_for_read`]: its read planned, not started).
    #[inline]
    pub fn resolve_fault(
        &mut self,
        pid: Pid,
        address: u64,
        access: Access,
    ) -> Result<(), FatalFault> {
        self.reclaim_if_low();
        let Some((memory, space, mut hw)) = self.hw_for(pid) else {
            return Ok(());
        };
        memory
            .handle_fault_deferring_reads(space, &mut hw, address, access)
            .map_err(FatalFault::of)
    }

    /// Resolves the fault of the thread CPU `cpu` runs at `address` with
    /// shared access to the kernel (its lock held for reading: faults go on
    /// on other CPUs at once) when it only fills an empty entry (a private
    /// page's first touch, a cached file page: `neoos_mm`'s `fault_shared`)
    /// and frames are not low: `true` once the page is mapped. `false`
    /// leaves the page as it was: the fault is then made with
    /// [`Self::resolve_fault`].
    pub fn resolve_fault_shared(&self, cpu: usize, address: u64, access: Access) -> bool {
        let Some(frames) = self.platform.shared_frames() else {
            return false;
        };
        if crate::reclaim::frames_low(&self.platform) {
            return false;
        }
        let running = self.processes.running_process_on(cpu);
        let Some(p) = running.and_then(|pid| self.processes.get(pid)) else {
            return false;
        };
        let Some(table) = p.table.as_ref() else {
            return false;
        };
        let fault = self
            .memory
            .fault_shared(p.space, table, frames, address, access);
        fault == neoos_mm::SharedFault::Resolved
    }

    /// The frame the last fault that ended in `waits_for_copy` is to copy
    /// (once).
    pub fn copy_waited_for(&mut self) -> Option<neoos_mm::Frame> {
        self.memory.copy_waited_for()
    }

    /// Whether user faults leave their copy-on-write copies to be made
    /// outside the kernel lock (the kernel says so when several CPUs run).
    pub fn set_copies_deferred(&mut self, on: bool) {
        self.memory.set_copies_deferred(on);
    }
}
