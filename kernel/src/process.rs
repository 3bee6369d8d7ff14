//! Processes and the scheduler. Owns the process table, the run queue, the
//! programs to launch at boot, and the one `Kernel` state behind a lock: the
//! memory system (mapping core), the file system and the processes.
//!
//! The scheduler runs on the boot stack: it picks a ready process, switches to
//! its kernel stack and address space, and gets control back when the process
//! yields, blocks, is preempted or ends. A process never holds the kernel lock
//! across a switch.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use spin::Mutex;

use neoos_mm::{Access, AsId, FaultError, Hw, Io, MemorySystem};

use crate::arch::context::{self, KernelStack, MAX_SLOTS};
use crate::arch::cpu;
use crate::files::Descriptor;
use crate::fs::FileSystem;
use crate::memory::{HardwarePageTable, KernelFrames};

/// A process identifier.
pub type Pid = u32;

/// Where a process is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Ready,
    Running,
    /// Waiting for a child to end.
    WaitingForChild,
    /// Ended with this status; waiting to be reaped by its parent.
    Ended(i64),
}

/// Who waits for a process's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parent {
    /// A program the kernel started (from the boot command line).
    Kernel,
    /// A child of this process.
    Process(Pid),
    /// Its parent ended first: the kernel reaps it.
    Gone,
}

/// One process.
pub struct Process {
    pub pid: Pid,
    pub parent: Parent,
    pub path: String,
    pub space: AsId,
    pub table: HardwarePageTable,
    pub stack: Option<KernelStack>,
    pub slot: usize,
    pub state: State,
    pub files: Vec<Option<Descriptor>>,
}

/// All kernel state that system calls and faults work on.
pub struct Kernel {
    pub memory: MemorySystem,
    pub fs: FileSystem,
    pub segments: crate::ipc::SegmentRecords,
    pub processes: BTreeMap<Pid, Process>,
    pub frames: KernelFrames,
    run_queue: VecDeque<Pid>,
    current: Option<Pid>,
    next_pid: Pid,
    free_slots: Vec<usize>,
    /// Programs to start at boot, in order, one after another.
    launch: VecDeque<String>,
}

pub static KERNEL: Mutex<Option<Kernel>> = Mutex::new(None);

/// Runs `f` on the kernel state.
pub fn with_kernel<R>(f: impl FnOnce(&mut Kernel) -> R) -> R {
    let mut guard = KERNEL.lock();
    f(guard.as_mut().expect("kernel state is set up at boot"))
}

impl Kernel {
    /// The kernel state, with the programs to launch.
    pub fn new(fs: FileSystem, launch: VecDeque<String>) -> Self {
        Kernel {
            memory: MemorySystem::new(),
            segments: Default::default(),
            fs,
            processes: BTreeMap::new(),
            frames: KernelFrames::new(),
            run_queue: VecDeque::new(),
            current: None,
            next_pid: 1,
            free_slots: (0..MAX_SLOTS).rev().collect(),
            launch,
        }
    }

    /// The pid of the running process.
    pub fn current_pid(&self) -> Option<Pid> {
        self.current
    }

    /// Splits the state into what a mapping-core file call needs.
    pub fn memory_io(&mut self) -> (&mut MemorySystem, Io<'_>) {
        let io = Io {
            frames: &mut self.frames,
            pager: &mut self.fs.disk,
        };
        (&mut self.memory, io)
    }

    /// Splits the state into what a mapping-core call on process `pid` needs.
    pub fn hw_for(&mut self, pid: Pid) -> Option<(&mut MemorySystem, AsId, Hw<'_>)> {
        let p = self.processes.get_mut(&pid)?;
        let hw = Hw::new(&mut p.table, &mut self.frames, &mut self.fs.disk);
        Some((&mut self.memory, p.space, hw))
    }

    /// Creates a process running `path` with `argv`; it is ready to run.
    pub fn spawn(
        &mut self,
        path: &str,
        argv: &[Vec<u8>],
        parent: Option<Pid>,
    ) -> Result<Pid, neoos_mm::Errno> {
        let slot = self.free_slots.pop().ok_or(neoos_mm::Errno::NoMem)?;
        let pid = self.next_pid;
        let created = crate::loader::load(self, path, argv);
        let (space, table, frame) = match created {
            Ok(v) => v,
            Err(e) => {
                self.free_slots.push(slot);
                return Err(e);
            }
        };
        self.next_pid += 1;
        let stack = KernelStack::new_for_user(slot, &frame);
        let process = Process {
            pid,
            parent: parent.map_or(Parent::Kernel, Parent::Process),
            path: String::from(path),
            space,
            table,
            stack: Some(stack),
            slot,
            state: State::Ready,
            files: crate::files::standard_descriptors(),
        };
        self.processes.insert(pid, process);
        self.run_queue.push_back(pid);
        Ok(pid)
    }

    /// Ends process `pid` with `status`: removes every mapping (writing back
    /// dirty file pages), closes its descriptors, wakes a waiting parent.
    /// Its kernel stack and page table are freed by the scheduler once it no
    /// longer runs on them.
    pub fn end(&mut self, pid: Pid, status: i64) {
        let Some(p) = self.processes.get_mut(&pid) else {
            return;
        };
        if matches!(p.state, State::Ended(_)) {
            return;
        }
        p.state = State::Ended(status);
        let files = core::mem::take(&mut p.files);
        for d in files.into_iter().flatten() {
            crate::files::close(self, d);
        }
        if let Some((memory, space, mut hw)) = self.hw_for(pid) {
            // A failed writeback (a faulty disk) cannot stop an exit: the
            // mappings go anyway.
            let _ = memory.destroy_address_space(space, &mut hw);
        }
        // Orphans are adopted by nobody: the kernel reaps them.
        let orphans: Vec<Pid> = self
            .processes
            .values()
            .filter(|c| c.parent == Parent::Process(pid))
            .map(|c| c.pid)
            .collect();
        for child in orphans {
            let Some(c) = self.processes.get_mut(&child) else {
                continue;
            };
            c.parent = Parent::Gone;
            // A child that has ended already can no longer be waited for.
            if matches!(c.state, State::Ended(_)) && c.stack.is_none() {
                self.drop_unwaited(child);
            }
        }
        let parent = match self.processes.get(&pid).map(|p| p.parent) {
            Some(Parent::Process(parent)) => self.processes.get_mut(&parent),
            _ => None,
        };
        if let Some(parent) = parent {
            if parent.state == State::WaitingForChild {
                parent.state = State::Ready;
                self.run_queue.push_back(parent.pid);
            }
        }
    }

    /// Creates a copy of process `parent` that resumes in user mode with
    /// `frame`: private memory becomes copy-on-write, shared memory stays
    /// shared, descriptors are duplicated.
    pub fn fork(
        &mut self,
        parent: Pid,
        frame: &crate::arch::traps::TrapFrame,
    ) -> Result<Pid, neoos_mm::Errno> {
        let table = HardwarePageTable::new().ok_or(neoos_mm::Errno::NoMem)?;
        let Some(slot) = self.free_slots.pop() else {
            table.destroy();
            return Err(neoos_mm::Errno::NoMem);
        };
        let forked = match self.hw_for(parent) {
            Some((memory, space, mut hw)) => memory.fork(space, &mut hw),
            None => Err(neoos_mm::Errno::Inval),
        };
        let space = match forked {
            Ok(space) => space,
            Err(e) => {
                self.free_slots.push(slot);
                table.destroy();
                return Err(e);
            }
        };
        let (path, files) = {
            let p = &self.processes[&parent];
            (p.path.clone(), p.files.clone())
        };
        for d in files.iter().flatten() {
            if let crate::files::Descriptor::File(f) = d {
                let size = self.fs.disk.len(f.file);
                self.memory.file_open_ref(f.file, size);
            }
        }
        let pid = self.next_pid;
        self.next_pid += 1;
        let stack = KernelStack::new_for_user(slot, frame);
        self.processes.insert(
            pid,
            Process {
                pid,
                parent: Parent::Process(parent),
                path,
                space,
                table,
                stack: Some(stack),
                slot,
                state: State::Ready,
                files,
            },
        );
        self.run_queue.push_back(pid);
        Ok(pid)
    }

    /// Takes an ended child of `parent`, if any: (pid, status).
    pub fn reap_child(&mut self, parent: Pid) -> Option<(Pid, i64)> {
        let (pid, status) = self.processes.values().find_map(|p| match p.state {
            State::Ended(s) if p.parent == Parent::Process(parent) && p.stack.is_none() => {
                Some((p.pid, s))
            }
            _ => None,
        })?;
        self.processes.remove(&pid);
        Some((pid, status))
    }

    /// Whether `parent` has any child at all.
    pub fn has_children(&self, parent: Pid) -> bool {
        self.processes
            .values()
            .any(|p| p.parent == Parent::Process(parent))
    }

    /// Ends process `pid` at another process's request.
    pub fn kill(&mut self, pid: Pid) -> bool {
        match self.processes.get(&pid).map(|p| p.state) {
            Some(State::Ended(_)) | None => false,
            Some(_) => {
                self.end(pid, neoos_abi::status::KILLED);
                self.run_queue.retain(|&q| q != pid);
                self.release_ended(pid);
                true
            }
        }
    }

    /// Frees what an ended process still held once the CPU has left it.
    fn release_ended(&mut self, pid: Pid) {
        let Some(p) = self.processes.get_mut(&pid) else {
            return;
        };
        let State::Ended(_) = p.state else {
            return;
        };
        p.stack = None;
        self.free_slots.push(p.slot);
        core::mem::replace(&mut p.table, HardwarePageTable::empty()).destroy();
        if !matches!(p.parent, Parent::Process(_)) {
            self.drop_unwaited(pid);
        }
    }

    /// Reports the end of an ended process nobody will wait for and drops
    /// it: `program ...` for the programs the kernel started (the host tool
    /// reads these lines), `orphan ...` for children whose parent went first.
    fn drop_unwaited(&mut self, pid: Pid) {
        if let Some(p) = self.processes.remove(&pid) {
            if let State::Ended(status) = p.state {
                let what = if p.parent == Parent::Kernel {
                    "program"
                } else {
                    "orphan"
                };
                kprintln!(
                    "{} {} (pid {}) ended with status {}",
                    what,
                    p.path,
                    pid,
                    status
                );
            }
        }
    }
}

/// The scheduler loop: runs until every program has ended and none is left
/// to launch.
pub fn run_scheduler() {
    loop {
        let next = with_kernel(|k| {
            if k.processes.is_empty() {
                launch_next(k);
            }
            while let Some(pid) = k.run_queue.pop_front() {
                let Some(p) = k.processes.get_mut(&pid) else {
                    continue;
                };
                if p.state != State::Ready {
                    continue;
                }
                p.state = State::Running;
                k.current = Some(pid);
                p.table.activate();
                return Some(Some(p.slot));
            }
            if k.processes.is_empty() && k.launch.is_empty() {
                return None;
            }
            Some(None)
        });
        match next {
            None => return,
            Some(None) => cpu::wait_for_interrupt(),
            Some(Some(slot)) => {
                context::run_slot(slot);
                with_kernel(|k| {
                    if let Some(pid) = k.current.take() {
                        k.release_ended(pid);
                    }
                });
            }
        }
    }
}

fn launch_next(k: &mut Kernel) {
    while let Some(path) = k.launch.pop_front() {
        let argv = [path.clone().into_bytes()];
        match k.spawn(&path, &argv, None) {
            Ok(_) => return,
            Err(e) => {
                kprintln!("cannot start {}: {:?}", path, e);
                kprintln!("program {} (pid 0) ended with status 127", path);
            }
        }
    }
}

/// Gives the CPU back to the scheduler from the running process; returns
/// when the process is scheduled again.
fn switch_to_scheduler() {
    let slot = with_kernel(|k| {
        k.current
            .and_then(|pid| k.processes.get(&pid))
            .map(|p| p.slot)
    });
    if let Some(slot) = slot {
        context::return_to_scheduler(slot);
    }
}

/// The running process gives up the CPU but stays ready.
pub fn yield_now() {
    with_kernel(|k| {
        if let Some(pid) = k.current {
            if let Some(p) = k.processes.get_mut(&pid) {
                if p.state == State::Running {
                    p.state = State::Ready;
                    k.run_queue.push_back(pid);
                }
            }
        }
    });
    switch_to_scheduler();
}

/// The timer fired while a process ran.
pub fn preempt() {
    yield_now();
}

/// The running process blocks until a child ends.
pub fn block_for_child() {
    with_kernel(|k| {
        if let Some(p) = k.current.and_then(|pid| k.processes.get_mut(&pid)) {
            p.state = State::WaitingForChild;
        }
    });
    switch_to_scheduler();
}

/// Ends the running process with `status` and never returns to it.
pub fn exit_current(status: i64) -> ! {
    with_kernel(|k| {
        if let Some(pid) = k.current {
            k.end(pid, status);
        }
    });
    switch_to_scheduler();
    unreachable!("an ended process is never scheduled again");
}

/// Resolves a user page fault through the mapping core, or ends the process.
pub fn resolve_fault(address: u64, access: Access) {
    let outcome = with_kernel(|k| {
        let pid = k.current?;
        let (memory, space, mut hw) = k.hw_for(pid)?;
        Some((pid, memory.handle_fault(space, &mut hw, address, access)))
    });
    let Some((pid, result)) = outcome else { return };
    let Err(error) = result else { return };
    let kind = match access {
        Access::Read => "read",
        Access::Write => "write",
        Access::Exec => "execute",
    };
    let (what, status) = match error {
        FaultError::NotMapped => ("segmentation fault", neoos_abi::status::SEGFAULT),
        FaultError::NotPermitted => ("segmentation fault", neoos_abi::status::SEGFAULT),
        FaultError::BeyondEndOfFile => ("bus error", neoos_abi::status::BUSERROR),
        FaultError::Io => ("bus error", neoos_abi::status::BUSERROR),
        FaultError::NoMem => ("out of memory", neoos_abi::status::KILLED),
    };
    let reason = match error {
        FaultError::NotMapped => "not mapped",
        FaultError::NotPermitted => "not permitted",
        FaultError::BeyondEndOfFile => "past the end of the file",
        FaultError::Io => "the file could not be read",
        FaultError::NoMem => "no free memory",
    };
    let path = with_kernel(|k| k.processes.get(&pid).map(|p| p.path.clone())).unwrap_or_default();
    kprintln!(
        "{} (pid {}): {} at {:#x} ({} access, {})",
        path,
        pid,
        what,
        address,
        kind,
        reason
    );
    exit_current(status);
}

/// Ends the running process for a CPU exception other than a page fault.
pub fn end_current_for_exception(vector: u64, rip: u64) {
    let (pid, path) = with_kernel(|k| {
        let pid = k.current.unwrap_or(0);
        (
            pid,
            k.processes
                .get(&pid)
                .map(|p| p.path.clone())
                .unwrap_or_default(),
        )
    });
    kprintln!(
        "{} (pid {}): killed by CPU exception {} at {:#x}",
        path,
        pid,
        vector,
        rip
    );
    exit_current(neoos_abi::status::CRASHED);
}
