//! The process table: processes (address space, page table, files, signal
//! actions and process-directed pending signals, real-time timer, parent;
//! alive or ended) and their threads (the schedulable contexts: registers
//! and kernel stack `C`, state, thread id, per-thread signal mask,
//! alternate stack, FS base and pending signals, clear-child-tid address),
//! the per-CPU run queues of threads ([`crate::run_queues`]), the thread
//! each CPU runs, and the clock's step
//! (timers fired, sleepers woken). A process's first thread has the
//! process's id as its thread id; thread ids come from the same counter as
//! process ids, so the two never collide.
//!
//! It holds each process's machine parts (`T`: its page table, `C`: a
//! thread's kernel-side execution context) without knowing what they are;
//! the kernel creates and frees them and switches between threads.
//!
//! Per-thread signal mask, alternate stack, `sigsuspend`'s saved mask and
//! FS base live on the thread ([`Thread::part`]) and are read and written
//! there, so threads of one process may run at once with their own.
//!
//! Several CPUs: the table knows the thread each CPU runs, and the CPU of
//! the code using it ([`ProcessTable::set_cpu`], said by the kernel at the
//! start of every section that holds the table; a number, no hardware), so
//! "the running thread" is that CPU's. A thread runs on one CPU at a time:
//! [`ProcessTable::pick_next`] never returns a thread that is still some
//! CPU's (it yielded or blocked, but that CPU has not left it yet), nor a
//! thread another thread of its process holds off the CPUs (`stop`: while
//! an `exit_group` or `execve` waits for its siblings to leave theirs).
//! Threads of one process otherwise run on several CPUs at once.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use neoos_mm::AsId;

use crate::files::DescriptorTable;
use crate::linux::signals::Signals;
use crate::linux::{ProgramAbi, ThreadPart};
use crate::run_queues::RunQueues;
use crate::timers::RealTimer;

mod stop;
pub use stop::StopAsked;

/// A process identifier.
pub type Pid = u32;

/// A thread identifier (the first thread's is its process's pid).
pub type Tid = u32;

/// Most CPUs the table keeps a running thread for.
pub const MAX_CPUS: usize = 64;

/// Where a process is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// At least one of its threads has not ended.
    Live,
    /// Ended with this status; waiting to be reaped by its parent.
    Ended(i64),
}

/// Where a thread is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadState {
    Ready,
    Running,
    /// Waiting for a child process to end.
    WaitingForChild,
    /// Asleep until woken (a futex wake; a signal it takes), or until the
    /// clock reaches `deadline` ticks (`None`: no time limit). Futex
    /// waits, `nanosleep`, `pause` and `sigsuspend` sleep so.
    Blocked {
        deadline: Option<u64>,
    },
    /// Waiting for thread `Tid` of its process to end (`sys_thread_join`).
    Joining(Tid),
    /// Waiting, without the kernel lock, for the disk to finish the writes
    /// in flight (a write-back's, `disk_wait.rs`); no signal ends it.
    WaitingForDisk,
    /// Ended with this status (a NeoOS thread stays until joined).
    Ended(i64),
}

impl ThreadState {
    /// Whether a signal the thread takes ends this wait (the call is then
    /// stepped again: it ends with `EINTR` or is made again).
    pub fn ends_on_signal(self) -> bool {
        matches!(
            self,
            ThreadState::Blocked { .. } | ThreadState::WaitingForChild | ThreadState::Joining(_)
        )
    }
}

/// The wake-up time of a sleep only a signal ends (`pause`, `sigsuspend`).
pub const FOREVER: u64 = u64::MAX;

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

/// One process: what its threads share.
pub struct Process<T> {
    pub pid: Pid,
    pub parent: Parent,
    pub path: String,
    pub space: AsId,
    /// Its page table; taken when the process has ended and no longer runs.
    pub table: Option<T>,
    pub state: State,
    pub files: DescriptorTable,
    /// Its system-call interface (and Linux state).
    pub abi: ProgramAbi,
    /// Thread records of this process in the table (ended NeoOS threads
    /// waiting to be joined, and a thread the CPU has not left, count).
    thread_records: usize,
    /// The address space and table an `execve` replaced, torn down in
    /// steps while the new program waits to start ([`crate::Kernel::exec_retire_step`]).
    pub retired: Option<(AsId, T)>,
    /// The path the kernel started it as, when an `execve` has changed
    /// `path` since: its end is reported under this one (the host tool
    /// waits for the programs it launched by name).
    pub started_as: Option<String>,
    /// Signal actions, process-directed pending signals and their senders
    /// (both personalities).
    pub signals: Signals,
    /// Its `ITIMER_REAL` timer (`alarm`, `setitimer`).
    pub timer: RealTimer,
    /// The thread that holds the others off the CPUs (`stop`).
    stopper: Option<Tid>,
}

impl<T> Process<T> {
    /// Whether the process has ended and the CPU has left all its threads.
    fn is_released(&self) -> bool {
        matches!(self.state, State::Ended(_)) && self.thread_records == 0
    }

    /// The signals thread `t` of this process could take now: sent to the
    /// process or to it, not blocked by its mask.
    fn deliverable_to<C>(&self, t: &Thread<C>) -> u64 {
        (self.signals.pending | t.pending) & !t.part.blocked
    }
}

/// One thread: what the scheduler runs.
pub struct Thread<C> {
    pub tid: Tid,
    /// Its process.
    pub pid: Pid,
    /// Its execution context; taken when it has ended and the CPU left it.
    pub context: Option<C>,
    pub state: ThreadState,
    /// Where its end stores 0 and wakes a futex waiter (Linux
    /// `CLONE_CHILD_CLEARTID`, `set_tid_address`); 0 for none.
    pub clear_child_tid: u64,
    /// Signals sent to this thread alone (`tgkill`), not yet delivered.
    pub pending: u64,
    /// Its own signal mask, alternate stack, `sigsuspend` saved mask and
    /// FS base.
    pub part: ThreadPart,
    /// A NeoOS thread: its end status stays until `sys_thread_join`.
    pub joinable: bool,
    /// A wake-up came while it ran (a wake, a child's end): its next
    /// block does not sleep, so a wake between its check and its block
    /// (another CPU's, between two lock sections) is not lost. A wake-up
    /// it did not need costs one more pass of its wait loop.
    woken: bool,
    /// The CPU it last ran on (or was made on): its queue when readied.
    last_cpu: usize,
}

/// What a new process is made of.
pub struct NewProcess<T, C> {
    pub parent: Parent,
    pub path: String,
    pub space: AsId,
    pub table: T,
    /// Its first thread's context.
    pub context: C,
    pub files: DescriptorTable,
    pub abi: ProgramAbi,
    /// Its first thread's mask, alternate stack and FS base.
    pub thread: ThreadPart,
}

/// What a new thread of an existing process is made of.
pub struct NewThread<C> {
    pub context: C,
    pub part: ThreadPart,
    pub clear_child_tid: u64,
    pub joinable: bool,
}

/// A process that ended with nobody to wait for it, removed from the table:
/// the kernel reports its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unwaited {
    pub pid: Pid,
    pub path: String,
    /// Whether the kernel started it (else its parent ended first).
    pub started_by_kernel: bool,
    pub status: i64,
}

/// What an ending process leaves to be torn down: its descriptors, its
/// address space, the contexts of its threads the CPU is not on, and the
/// ended children nobody can wait for any more.
pub struct Ending<C> {
    pub files: DescriptorTable,
    pub space: AsId,
    pub unwaited: Vec<Unwaited>,
    /// Contexts of its threads that were not running (free them now).
    pub contexts: Vec<C>,
    /// Thread ids that left the table (their futex waits go too).
    pub threads: Vec<Tid>,
}

/// What an ended process held once the CPU has left it.
pub struct Released<T, C> {
    pub table: Option<T>,
    pub context: Option<C>,
    /// Set when the process was dropped from the table (nobody waits for it).
    pub unwaited: Option<Unwaited>,
}

/// What one ending thread (not its process's last) leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadEnding {
    pub pid: Pid,
    /// Where 0 is stored and a futex waiter woken (0: nowhere).
    pub clear_child_tid: u64,
}

/// All processes and threads.
pub struct ProcessTable<T, C> {
    /// Boxed: a process record is large, and a B-tree node of unboxed
    /// records made the insert and remove frames several KiB each on the
    /// kernel stack (they overflowed its 32 KiB in a spawn).
    processes: BTreeMap<Pid, Box<Process<T>>>,
    threads: BTreeMap<Tid, Thread<C>>,
    /// The ready threads, by CPU.
    queues: RunQueues,
    /// The thread each CPU runs and its process (set by `pick_next`,
    /// cleared once the CPU has left it: `take_current`).
    running: [Option<OnCpu>; MAX_CPUS],
    /// The CPU of the code now using the table.
    cpu: usize,
    next_pid: Pid,
    /// No sleep ends and no timer expires before this tick (a lower bound:
    /// the clock's step scans the table only once it is reached).
    pub(crate) next_deadline: u64,
}

/// The thread a CPU is on, with its process kept beside it, so that
/// finding the running process (every system call and fault) needs no
/// search of the thread table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OnCpu {
    tid: Tid,
    /// The thread's process while the thread's record is in the table
    /// (`None` once it left while its CPU was still on it: see
    /// [`ProcessTable::remove_thread`]).
    pid: Option<Pid>,
}

impl<T, C> Default for ProcessTable<T, C> {
    fn default() -> Self {
        ProcessTable {
            processes: BTreeMap::new(),
            threads: BTreeMap::new(),
            queues: RunQueues::default(),
            running: [None; MAX_CPUS],
            cpu: 0,
            next_pid: 1,
            next_deadline: FOREVER,
        }
    }
}

impl<T, C> ProcessTable<T, C> {
    /// Says which CPU the code using the table from now on runs on (each
    /// lock section of the kernel starts with it). A number past
    /// [`MAX_CPUS`] is taken as the last.
    #[inline]
    pub fn set_cpu(&mut self, cpu: usize) {
        self.cpu = cpu.min(MAX_CPUS - 1);
    }

    /// The CPU of the code using the table.
    #[inline]
    pub fn cpu(&self) -> usize {
        self.cpu
    }

    /// The idle CPUs given a thread since the last call, one bit per CPU
    /// (the kernel interrupts them; see [`crate::run_queues`]).
    #[inline]
    pub fn take_cpus_to_wake(&mut self) -> u64 {
        self.queues.take_cpus_to_wake()
    }

    /// The process of the thread this CPU runs.
    #[inline]
    pub fn current(&self) -> Option<Pid> {
        self.running[self.cpu].and_then(|on| on.pid)
    }

    /// The thread this CPU runs.
    #[inline]
    pub fn current_thread(&self) -> Option<Tid> {
        self.running[self.cpu].map(|on| on.tid)
    }

    /// Whether thread `tid` is some CPU's (running, or left by its CPU
    /// not yet).
    fn on_a_cpu(&self, tid: Tid) -> bool {
        self.running.iter().flatten().any(|on| on.tid == tid)
    }

    /// The process whose address space is `space`.
    pub fn of_space(&self, space: AsId) -> Option<&Process<T>> {
        self.processes
            .values()
            .map(|p| &**p)
            .find(|p| p.space == space)
    }

    /// The page table of address space `space`: a process's own, or the
    /// one an `execve` replaced and has not torn down yet.
    pub fn table_of_space(&mut self, space: AsId) -> Option<&mut T> {
        self.processes
            .values_mut()
            .find_map(|p| match &mut p.retired {
                _ if p.space == space => p.table.as_mut(),
                Some((old, table)) if *old == space => Some(table),
                _ => None,
            })
    }

    /// Process `pid`.
    #[inline]
    pub fn get(&self, pid: Pid) -> Option<&Process<T>> {
        self.processes.get(&pid).map(|p| &**p)
    }

    /// Process `pid`, to change.
    #[inline]
    pub fn get_mut(&mut self, pid: Pid) -> Option<&mut Process<T>> {
        self.processes.get_mut(&pid).map(|p| &mut **p)
    }

    /// Thread `tid`.
    #[inline]
    pub fn thread(&self, tid: Tid) -> Option<&Thread<C>> {
        self.threads.get(&tid)
    }

    /// Thread `tid`, to change.
    #[inline]
    pub fn thread_mut(&mut self, tid: Tid) -> Option<&mut Thread<C>> {
        self.threads.get_mut(&tid)
    }

    /// The threads of process `pid` in the table (ended ones not yet
    /// released or joined included).
    pub fn threads_of(&self, pid: Pid) -> impl Iterator<Item = &Thread<C>> + '_ {
        self.threads.values().filter(move |t| t.pid == pid)
    }

    /// Threads of `pid` that have not ended.
    pub fn live_threads(&self, pid: Pid) -> usize {
        self.threads_of(pid)
            .filter(|t| !matches!(t.state, ThreadState::Ended(_)))
            .count()
    }

    /// The signal mask, alternate stack and FS base of thread `tid`.
    pub fn thread_part(&self, tid: Tid) -> Option<ThreadPart> {
        self.threads.get(&tid).map(|t| t.part)
    }

    /// Thread `tid`'s mask, alternate stack and FS base, to change.
    pub fn thread_part_mut(&mut self, tid: Tid) -> Option<&mut ThreadPart> {
        self.threads.get_mut(&tid).map(|t| &mut t.part)
    }

    /// Every thread as (its id, its process, its state, whether it is
    /// marked woken, the CPU it last ran on): the kernel's state report.
    pub fn thread_states(&self) -> impl Iterator<Item = (Tid, Pid, ThreadState, bool, usize)> + '_ {
        self.threads
            .values()
            .map(|t| (t.tid, t.pid, t.state, t.woken, t.last_cpu))
    }

    /// The process of the thread CPU `cpu` runs, if any.
    pub fn running_process_on(&self, cpu: usize) -> Option<Pid> {
        self.running.get(cpu)?.and_then(|on| on.pid)
    }

    /// The thread CPU `cpu` runs, if any.
    pub fn running_on(&self, cpu: usize) -> Option<Tid> {
        self.running.get(cpu)?.map(|on| on.tid)
    }

    /// The ready threads in CPU `cpu`'s queue, front first.
    pub fn queued_on(&self, cpu: usize) -> impl Iterator<Item = Tid> + '_ {
        self.queues.queue(cpu.min(MAX_CPUS - 1))
    }

    /// Whether no process exists.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }

    /// Number of processes in the table (ended ones not yet reaped count).
    pub fn len(&self) -> usize {
        self.processes.len()
    }

    fn new_id(&mut self) -> u32 {
        let id = self.next_pid;
        self.next_pid += 1;
        id
    }

    /// Adds a process with its first thread, ready to run; returns its pid
    /// (also the thread's id).
    pub fn insert(&mut self, new: NewProcess<T, C>) -> Pid {
        let pid = self.new_id();
        self.processes.insert(
            pid,
            Box::new(Process {
                pid,
                parent: new.parent,
                path: new.path,
                space: new.space,
                table: Some(new.table),
                state: State::Live,
                files: new.files,
                abi: new.abi,
                thread_records: 1,
                retired: None,
                started_as: None,
                signals: Signals::default(),
                timer: RealTimer::default(),
                stopper: None,
            }),
        );
        self.add_thread(pid, pid, new.context, new.thread, 0, false);
        pid
    }

    /// Gives `child`, just made by a fork of `parent`, the parent's signal
    /// state with nothing pending (POSIX): copied from one record to the
    /// other in the heap, not through the kernel stack (the state is about
    /// 3 KiB). Nothing happens unless both exist and differ.
    pub fn inherit_signals(&mut self, parent: Pid, child: Pid) {
        let (low, high) = (parent.min(child), parent.max(child));
        let mut records = self.processes.range_mut(low..=high);
        let (Some((&first, a)), Some((&last, b))) = (records.next(), records.next_back()) else {
            return;
        };
        if (first, last) != (low, high) {
            return;
        }
        let (from, to) = if parent == low { (a, b) } else { (b, a) };
        to.signals = from.signals;
        to.signals.pending = 0;
    }

    /// Adds a thread to live process `pid`, ready to run; its id, or the
    /// context back when the process has ended or does not exist.
    pub fn insert_thread(&mut self, pid: Pid, new: NewThread<C>) -> Result<Tid, C> {
        if !self
            .processes
            .get(&pid)
            .is_some_and(|p| p.state == State::Live)
        {
            return Err(new.context);
        }
        let tid = self.new_id();
        if let Some(p) = self.processes.get_mut(&pid) {
            p.thread_records += 1;
        }
        self.add_thread(
            pid,
            tid,
            new.context,
            new.part,
            new.clear_child_tid,
            new.joinable,
        );
        Ok(tid)
    }

    fn add_thread(
        &mut self,
        pid: Pid,
        tid: Tid,
        context: C,
        part: ThreadPart,
        clear_child_tid: u64,
        joinable: bool,
    ) {
        self.threads.insert(
            tid,
            Thread {
                tid,
                pid,
                context: Some(context),
                state: ThreadState::Ready,
                clear_child_tid,
                pending: 0,
                part,
                joinable,
                woken: false,
                last_cpu: self.cpu,
            },
        );
        self.queues.push(tid, self.cpu);
    }

    /// Every process, to look at.
    pub fn iter(&self) -> impl Iterator<Item = &Process<T>> + '_ {
        self.processes.values().map(|p| &**p)
    }

    /// The clock's step at tick `now`: fires due timers of processes
    /// (SIGALRM made pending), wakes threads whose sleep is over and
    /// sleeping or child-waiting threads with a signal to take. Scans the
    /// table only once a deadline has come. `true` when a signal was made
    /// pending.
    pub(crate) fn clock_step(&mut self, now: u64) -> bool {
        if now < self.next_deadline {
            return false;
        }
        let mut next = FOREVER;
        let mut posted = false;
        for p in self.processes.values_mut() {
            if p.timer.fire_if_due(now)
                && p.signals.post_from(
                    crate::linux::signals::SIGALRM,
                    crate::linux::signals::SignalOrigin {
                        code: crate::linux::signals::SI_KERNEL,
                        ..Default::default()
                    },
                )
            {
                posted = true;
            }
            if p.timer.armed() {
                next = next.min(p.timer.expires);
            }
        }
        for t in self.threads.values_mut() {
            let takes_signal = || {
                self.processes
                    .get(&t.pid)
                    .is_some_and(|p| p.deliverable_to(t) != 0)
            };
            let wake = match t.state {
                ThreadState::Blocked { deadline } => {
                    deadline.is_some_and(|d| d <= now) || takes_signal()
                }
                ThreadState::WaitingForChild | ThreadState::Joining(_) => takes_signal(),
                _ => false,
            };
            if wake {
                t.state = ThreadState::Ready;
                self.queues.push(t.tid, t.last_cpu);
            } else if let ThreadState::Blocked {
                deadline: Some(deadline),
            } = t.state
            {
                next = next.min(deadline);
            }
        }
        self.next_deadline = next;
        posted
    }

    /// Notes that something happens at tick `at` (a sleep ends, a timer
    /// expires): the clock's step looks then.
    pub(crate) fn note_deadline(&mut self, at: u64) {
        self.next_deadline = self.next_deadline.min(at);
    }

    /// The running thread sleeps until the clock reaches `until` ticks
    /// ([`FOREVER`]: until a signal), or a signal it takes wakes it.
    pub fn block_current_sleeping(&mut self, until: u64) {
        self.block_current((until != FOREVER).then_some(until));
    }

    /// The signals thread `tid` could take now (sent to its process or to
    /// it, not blocked by its mask); 0 when it does not exist.
    pub fn deliverable_to(&self, tid: Tid) -> u64 {
        self.threads
            .get(&tid)
            .and_then(|t| Some(self.processes.get(&t.pid)?.deliverable_to(t)))
            .unwrap_or(0)
    }

    /// Whether this CPU may run thread `t` (ready, left by its last CPU,
    /// and not held off the CPUs by a sibling: see the module's doc).
    fn may_run_here(&self, t: &Thread<C>) -> bool {
        t.state == ThreadState::Ready && !self.on_a_cpu(t.tid) && !self.held(t)
    }

    /// [`Self::may_run_here`] by thread id (`false` for no such thread).
    fn fits_here(&self, tid: Tid) -> bool {
        self.threads.get(&tid).is_some_and(|t| self.may_run_here(t))
    }

    /// Whether a ready thread waits that this CPU could run instead of its
    /// running one, in its own queue or one it may steal from (a
    /// preemption with none changes nothing).
    pub fn others_wait_here(&self) -> bool {
        self.queues
            .find(self.cpu, |tid| self.fits_here(tid))
            .is_some()
    }

    /// Whether any signal waits to be taken (sent to a process or to a
    /// thread, blocked or not) or a thread's `rt_sigsuspend` mask waits to
    /// be put back: without either, a return to user mode has no signal
    /// work (the kernel's lock-free hint).
    pub fn signal_work_anywhere(&self) -> bool {
        self.processes.values().any(|p| p.signals.pending != 0)
            || self
                .threads
                .values()
                .any(|t| t.pending != 0 || t.part.saved_mask.is_some())
    }

    /// Whether a ready thread waits that no CPU is on: some CPU could run
    /// it instead of its own (the kernel's lock-free hint for
    /// preemptions; a thread that yielded stays off it until its CPU has
    /// left it).
    pub fn others_wait_anywhere(&self) -> bool {
        // Every lock section asks: the empty queues' answer is the common
        // one, without setting up a queue's two-slice iterator.
        !self.queues.is_empty()
            && self.queues.any(|tid| {
                self.threads
                    .get(&tid)
                    .is_some_and(|t| t.state == ThreadState::Ready && !self.on_a_cpu(tid))
            })
    }

    /// Takes the next ready thread this CPU may run off the run queues
    /// (its own first, else one stolen from the longest other queue; see
    /// [`crate::run_queues`]) and makes it this CPU's running one. Passed
    /// over (left in place): a thread another CPU has not left yet, and a
    /// thread a sibling holds off the CPUs (see the module's doc). `None`
    /// when this CPU runs a thread still (the kernel takes it first) or
    /// none fits: the CPU is then idle until it picks again.
    pub fn pick_next(&mut self) -> Option<Tid> {
        if self.running[self.cpu].is_some() {
            return None;
        }
        self.pick_where(None)
    }

    /// Test helper: makes ready thread `tid` this CPU's running one, as a
    /// pick that chose it would. `None` when it may not run here.
    #[cfg(test)]
    pub(crate) fn pick_this(&mut self, tid: Tid) -> Option<Tid> {
        if self.running[self.cpu].is_some() {
            return None;
        }
        self.pick_where(Some(tid))
    }

    /// [`Self::pick_next`] of the first queued thread that may run here
    /// (and is `only`, when given).
    fn pick_where(&mut self, only: Option<Tid>) -> Option<Tid> {
        let found = self.queues.find(self.cpu, |tid| {
            only.is_none_or(|only| only == tid) && self.fits_here(tid)
        });
        let Some(tid) = found.and_then(|place| self.queues.take(place)) else {
            self.queues.set_idle(self.cpu, true);
            return None;
        };
        let t = self.threads.get_mut(&tid)?;
        t.state = ThreadState::Running;
        t.last_cpu = self.cpu;
        self.running[self.cpu] = Some(OnCpu {
            tid,
            pid: Some(t.pid),
        });
        self.queues.set_idle(self.cpu, false);
        Some(tid)
    }

    /// The running thread gives up the CPU but stays ready (at the back of
    /// this CPU's queue).
    pub fn yield_current(&mut self) {
        let Some(tid) = self.current_thread() else {
            return;
        };
        if let Some(t) = self.threads.get_mut(&tid) {
            if t.state == ThreadState::Running {
                t.state = ThreadState::Ready;
                self.queues.push_yielded(tid, self.cpu);
            }
        }
    }

    /// The timer fired while this CPU's thread ran: it yields if another
    /// thread could have the CPU. With none in this CPU's own queue, the
    /// one a pick would steal is moved to its front first, so the pick
    /// after the yield takes it, not the yielded thread: threads are
    /// shared round robin across CPUs too. `true` when it yielded.
    pub fn preempt_current(&mut self) -> bool {
        let Some(place) = self.queues.find(self.cpu, |tid| self.fits_here(tid)) else {
            return false;
        };
        if place.0 != self.cpu {
            self.queues.move_to_front(place, self.cpu);
        }
        self.yield_current();
        true
    }

    /// Sets the running thread's state to `state` (it leaves the CPU
    /// next), unless a wake-up came while it ran or it has a signal to take
    /// (every blocked state ends on one): then it stays running, and its
    /// call looks again.
    fn block_current_as(&mut self, state: ThreadState) {
        let Some(tid) = self.current_thread() else {
            return;
        };
        let signalled = self.deliverable_to(tid) != 0;
        if let Some(t) = self.threads.get_mut(&tid) {
            if t.state == ThreadState::Running && !core::mem::take(&mut t.woken) && !signalled {
                t.state = state;
            }
        }
    }

    /// Forgets a wake-up the running thread got while it ran (before a
    /// wait whose own wake-ups are all to come: a futex wait just entered).
    pub fn forget_wake_up(&mut self) {
        if let Some(t) = self
            .current_thread()
            .and_then(|tid| self.threads.get_mut(&tid))
        {
            t.woken = false;
        }
    }

    /// Whether the running thread of this CPU is still running (its block
    /// did not take: it must not switch away as if it slept).
    pub fn current_runs(&self) -> bool {
        self.current_thread()
            .and_then(|tid| self.threads.get(&tid))
            .is_some_and(|t| t.state == ThreadState::Running)
    }

    /// The running thread waits for a child to end.
    pub fn block_current_for_child(&mut self) {
        self.block_current_as(ThreadState::WaitingForChild);
    }

    /// The running thread sleeps until [`Self::wake`], a signal it takes
    /// ([`Self::wake_for_signal`], the clock's step) or the clock reaches
    /// `deadline` (the clock's step, [`Self::wake_expired`]).
    pub fn block_current(&mut self, deadline: Option<u64>) {
        self.block_current_as(ThreadState::Blocked { deadline });
        if let Some(at) = deadline {
            self.note_deadline(at);
        }
    }

    /// The running thread waits until the disk has no write in flight
    /// ([`Self::wake_disk_waiters`]). It blocks even with a signal to take
    /// (the wait is short and ends by itself; the signal is taken after
    /// the call) and needs no wake-up record: the check and the block are
    /// made in one lock section, and only the clock's work wakes it.
    pub fn block_current_for_disk(&mut self) {
        if let Some(t) = self
            .current_thread()
            .and_then(|tid| self.threads.get_mut(&tid))
            .filter(|t| t.state == ThreadState::Running)
        {
            t.state = ThreadState::WaitingForDisk;
        }
    }

    /// Whether a thread waits for the disk.
    pub fn any_waiting_for_disk(&self) -> bool {
        self.threads
            .values()
            .any(|t| t.state == ThreadState::WaitingForDisk)
    }

    /// Readies every thread waiting for the disk (it has nothing in
    /// flight any more).
    pub fn wake_disk_waiters(&mut self) {
        for t in self.threads.values_mut() {
            if t.state == ThreadState::WaitingForDisk {
                t.state = ThreadState::Ready;
                self.queues.push(t.tid, t.last_cpu);
            }
        }
    }

    /// The running thread waits for thread `target` to be released.
    pub fn block_current_for_join(&mut self, target: Tid) {
        self.block_current_as(ThreadState::Joining(target));
    }

    /// Readies blocked or joining thread `tid` (a futex wake, a signal, the
    /// end of the thread it joins). `false` when it was not waiting so.
    pub fn wake(&mut self, tid: Tid) -> bool {
        let Some(t) = self.threads.get_mut(&tid) else {
            return false;
        };
        if t.state == ThreadState::Running {
            t.woken = true;
            return false;
        }
        if !matches!(
            t.state,
            ThreadState::Blocked { .. } | ThreadState::Joining(_)
        ) {
            return false;
        }
        t.state = ThreadState::Ready;
        self.queues.push(tid, t.last_cpu);
        true
    }

    /// Readies thread `tid` if it sleeps, waits for a child or joins a
    /// thread (a signal it takes came): it steps its call again, which
    /// ends or restarts it. `false` when it was not waiting so.
    pub fn wake_for_signal(&mut self, tid: Tid) -> bool {
        let Some(t) = self.threads.get_mut(&tid) else {
            return false;
        };
        if !t.state.ends_on_signal() {
            return false;
        }
        t.state = ThreadState::Ready;
        self.queues.push(tid, t.last_cpu);
        true
    }

    /// Readies every blocked thread whose deadline is at or before `now`.
    pub fn wake_expired(&mut self, now: u64) {
        for t in self.threads.values_mut() {
            if let ThreadState::Blocked {
                deadline: Some(deadline),
            } = t.state
            {
                if deadline <= now {
                    t.state = ThreadState::Ready;
                    self.queues.push(t.tid, t.last_cpu);
                }
            }
        }
    }

    /// This CPU has come back from its running thread: it runs no more.
    pub fn take_current(&mut self) -> Option<Tid> {
        self.running[self.cpu].take().map(|on| on.tid)
    }

    /// Marks `pid` ended with `status`, and every thread of it: those the
    /// CPU is not on leave the table (their contexts are handed back);
    /// orphans its children (ended ones nobody can wait for any more leave
    /// the table), wakes a waiting parent, and hands back what must be torn
    /// down. `None` when `pid` does not exist or has ended already.
    pub fn end(&mut self, pid: Pid, status: i64) -> Option<Ending<C>> {
        let p = self.processes.get_mut(&pid)?;
        if matches!(p.state, State::Ended(_)) {
            return None;
        }
        p.state = State::Ended(status);
        let files = core::mem::take(&mut p.files);
        let (space, parent) = (p.space, p.parent);
        let (contexts, threads) = self.remove_threads(pid, None);
        for on in self.running.into_iter().flatten() {
            if let Some(t) = self.threads.get_mut(&on.tid).filter(|t| t.pid == pid) {
                t.state = ThreadState::Ended(status);
            }
        }
        let unwaited = self.orphan_children_of(pid);
        if let Parent::Process(parent) = parent {
            self.wake_if_waiting(parent);
        }
        Some(Ending {
            files,
            space,
            unwaited,
            contexts,
            threads,
        })
    }

    /// Removes every thread of `pid` but `keep` and those a CPU is on from
    /// the table (off the run queue): their contexts and ids.
    fn remove_threads(&mut self, pid: Pid, keep: Option<Tid>) -> (Vec<C>, Vec<Tid>) {
        let gone: Vec<Tid> = self
            .threads_of(pid)
            .map(|t| t.tid)
            .filter(|&tid| Some(tid) != keep && !self.on_a_cpu(tid))
            .collect();
        let mut contexts = Vec::new();
        for tid in &gone {
            if let Some(t) = self.threads.remove(tid) {
                contexts.extend(t.context);
            }
        }
        if let Some(p) = self.processes.get_mut(&pid) {
            p.thread_records -= gone.len();
        }
        let threads = &self.threads;
        self.queues.retain(|q| threads.contains_key(&q));
        (contexts, gone)
    }

    /// Every thread of live process `pid` but `keep` (the caller of
    /// `exit_group` or `execve`) leaves the table: their contexts and ids.
    /// No CPU may be on any of them (the kernel stops them first:
    /// [`Self::stop_others`]); one still on a CPU stays.
    pub fn end_other_threads(&mut self, pid: Pid, keep: Tid) -> (Vec<C>, Vec<Tid>) {
        self.remove_threads(pid, Some(keep))
    }

    /// Ends thread `tid` (not its process) with `status`: what the kernel
    /// still does for it. `None` when it does not exist, has ended, or its
    /// process has.
    pub fn end_thread(&mut self, tid: Tid, status: i64) -> Option<ThreadEnding> {
        let t = self.threads.get_mut(&tid)?;
        if matches!(t.state, ThreadState::Ended(_)) {
            return None;
        }
        let pid = t.pid;
        if self.processes.get(&pid)?.state != State::Live {
            return None;
        }
        t.state = ThreadState::Ended(status);
        let clear_child_tid = core::mem::take(&mut t.clear_child_tid);
        self.queues.retain(|q| q != tid);
        Some(ThreadEnding {
            pid,
            clear_child_tid,
        })
    }

    /// Takes thread `tid`'s record out of the table. A CPU still on it
    /// keeps the thread id but no longer its process: as when the process
    /// was found through the record, `current` says `None` from now on.
    fn remove_thread(&mut self, tid: Tid) {
        self.threads.remove(&tid);
        for on in self.running.iter_mut().flatten() {
            if on.tid == tid {
                on.pid = None;
            }
        }
    }

    /// Takes the context of ended thread `tid` of a live process once the
    /// CPU has left it; the record goes unless a join will take its
    /// status, and threads joining it wake. `None` when it has not ended
    /// or its process has (see [`Self::release`]).
    pub fn release_thread(&mut self, tid: Tid) -> Option<C> {
        let t = self.threads.get_mut(&tid)?;
        let ThreadState::Ended(_) = t.state else {
            return None;
        };
        let pid = t.pid;
        if self.processes.get(&pid)?.state != State::Live {
            return None;
        }
        let context = t.context.take();
        if !t.joinable {
            self.remove_thread(tid);
            if let Some(p) = self.processes.get_mut(&pid) {
                p.thread_records -= 1;
            }
        }
        let mut joiners = Vec::new();
        for t in self.threads.values_mut().filter(|t| t.pid == pid) {
            match t.state {
                ThreadState::Joining(target) if target == tid => joiners.push(t.tid),
                // Maybe between its join's step and its block (lock
                // sections of another CPU): that block must not sleep.
                ThreadState::Running => t.woken = true,
                _ => {}
            }
        }
        for j in joiners {
            self.wake(j);
        }
        context
    }

    /// One step of `sys_thread_join(target)` by thread `me` of `pid`: the
    /// status of the ended, released NeoOS thread `target` (its record
    /// goes), `Ok(None)` while it runs, `NoEnt` for no such thread of the
    /// process, `Inval` for itself or a thread that cannot be joined.
    pub fn join_step(
        &mut self,
        pid: Pid,
        me: Tid,
        target: Tid,
    ) -> Result<Option<i64>, neoos_mm::Errno> {
        use neoos_mm::Errno;
        let t = self
            .threads
            .get(&target)
            .filter(|t| t.pid == pid)
            .ok_or(Errno::NoEnt)?;
        if target == me || !t.joinable {
            return Err(Errno::Inval);
        }
        match t.state {
            ThreadState::Ended(status) if t.context.is_none() => {
                self.remove_thread(target);
                if let Some(p) = self.processes.get_mut(&pid) {
                    p.thread_records -= 1;
                }
                Ok(Some(status))
            }
            _ => Ok(None),
        }
    }

    /// Children of `pid` lose their parent; those that have ended already
    /// can no longer be waited for and leave the table.
    fn orphan_children_of(&mut self, pid: Pid) -> Vec<Unwaited> {
        let mut unwaited = Vec::new();
        let children: Vec<Pid> = self
            .processes
            .values()
            .filter(|c| c.parent == Parent::Process(pid))
            .map(|c| c.pid)
            .collect();
        for child in children {
            let Some(c) = self.processes.get_mut(&child) else {
                continue;
            };
            c.parent = Parent::Gone;
            if c.is_released() {
                unwaited.extend(self.drop_unwaited(child));
            }
        }
        unwaited
    }

    /// Child `pid` is reaped by the kernel, not waited for (its parent
    /// ignores SIGCHLD): it leaves the table once the CPU has left it
    /// (returned here if that is now).
    pub(crate) fn auto_reap(&mut self, pid: Pid) -> Option<Unwaited> {
        let p = self.processes.get_mut(&pid)?;
        p.parent = Parent::Gone;
        if p.is_released() {
            self.drop_unwaited(pid)
        } else {
            None
        }
    }

    /// Readies the threads of `pid` waiting for a child.
    fn wake_if_waiting(&mut self, pid: Pid) {
        for t in self.threads.values_mut().filter(|t| t.pid == pid) {
            match t.state {
                ThreadState::WaitingForChild => {
                    t.state = ThreadState::Ready;
                    self.queues.push(t.tid, t.last_cpu);
                }
                ThreadState::Running => t.woken = true,
                _ => {}
            }
        }
    }

    /// Takes what ended process `pid` still held once the CPU has left it
    /// (its table, the context of the thread that ended it) and wakes its
    /// waiting parent again; a process nobody waits for leaves the table.
    /// `None` when `pid` has not ended.
    pub fn release(&mut self, pid: Pid) -> Option<Released<T, C>> {
        let p = self.processes.get_mut(&pid)?;
        let State::Ended(_) = p.state else {
            return None;
        };
        let table = p.table.take();
        let (contexts, _) = self.remove_threads(pid, None);
        let context = contexts.into_iter().next();
        let p = self.processes.get(&pid)?;
        let unwaited = if let Parent::Process(parent) = p.parent {
            // It can be reaped from now on: a parent that looked (on
            // another CPU) while this CPU was still on it waits again.
            self.wake_if_waiting(parent);
            None
        } else {
            self.drop_unwaited(pid)
        };
        Some(Released {
            table,
            context,
            unwaited,
        })
    }

    fn drop_unwaited(&mut self, pid: Pid) -> Option<Unwaited> {
        let p = self.processes.remove(&pid)?;
        let State::Ended(status) = p.state else {
            return None;
        };
        Some(Unwaited {
            pid,
            path: p.started_as.unwrap_or(p.path),
            started_by_kernel: p.parent == Parent::Kernel,
            status,
        })
    }

    /// Takes an ended child of `parent`, if any: (pid, status).
    pub fn reap_child(&mut self, parent: Pid) -> Option<(Pid, i64)> {
        let (pid, status) = self.processes.values().find_map(|p| match p.state {
            State::Ended(s) if p.parent == Parent::Process(parent) && p.is_released() => {
                Some((p.pid, s))
            }
            _ => None,
        })?;
        self.processes.remove(&pid);
        Some((pid, status))
    }

    /// The children of `parent`: (pid, whether it has ended and can be
    /// reaped).
    pub fn children_of(&self, parent: Pid) -> impl Iterator<Item = (Pid, bool)> + '_ {
        self.processes
            .values()
            .filter(move |p| p.parent == Parent::Process(parent))
            .map(|p| (p.pid, p.is_released()))
    }

    /// Takes ended child `child` of `parent`: (pid, status).
    pub fn reap(&mut self, parent: Pid, child: Pid) -> Option<(Pid, i64)> {
        let p = self.processes.get(&child)?;
        let State::Ended(status) = p.state else {
            return None;
        };
        if p.parent != Parent::Process(parent) || !p.is_released() {
            return None;
        }
        self.processes.remove(&child);
        Some((child, status))
    }

    /// Whether `parent` has any child at all.
    pub fn has_children(&self, parent: Pid) -> bool {
        self.processes
            .values()
            .any(|p| p.parent == Parent::Process(parent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Table = ProcessTable<(), ()>;

    fn add(t: &mut Table, parent: Parent) -> Pid {
        t.insert(NewProcess {
            parent,
            path: String::from("/bin/p"),
            space: AsId(0),
            table: (),
            context: (),
            files: DescriptorTable::standard(),
            abi: ProgramAbi::Neo,
            thread: ThreadPart::default(),
        })
    }

    /// Runs `pid` (which must be next in line) and ends it with `status`,
    /// as the scheduler does: the CPU leaves it, then it is released.
    fn run_and_end(t: &mut Table, pid: Pid, status: i64) -> Vec<Unwaited> {
        assert_eq!(t.pick_next(), Some(pid));
        let mut unwaited = t.end(pid, status).unwrap().unwaited;
        assert_eq!(t.take_current(), Some(pid));
        unwaited.extend(t.release(pid).unwrap().unwaited);
        unwaited
    }

    #[test]
    fn pids_start_at_one_and_processes_start_ready() {
        let mut t = Table::default();
        let a = add(&mut t, Parent::Kernel);
        let b = add(&mut t, Parent::Kernel);
        assert_eq!((a, b), (1, 2));
        assert_eq!(t.thread(a).unwrap().state, ThreadState::Ready);
    }

    #[test]
    fn run_queue_is_first_in_first_out_and_yield_goes_to_the_back() {
        let mut t = Table::default();
        let a = add(&mut t, Parent::Kernel);
        let b = add(&mut t, Parent::Kernel);
        assert_eq!(t.pick_next(), Some(a));
        assert_eq!(t.thread(a).unwrap().state, ThreadState::Running);
        t.yield_current();
        t.take_current();
        assert_eq!(t.pick_next(), Some(b));
        t.yield_current();
        t.take_current();
        assert_eq!(t.pick_next(), Some(a));
    }

    #[test]
    fn a_waiting_parent_is_not_scheduled_until_its_child_ends() {
        let mut t = Table::default();
        let parent = add(&mut t, Parent::Kernel);
        assert_eq!(t.pick_next(), Some(parent));
        let child = add(&mut t, Parent::Process(parent));
        t.block_current_for_child();
        t.take_current();
        assert_eq!(
            t.thread(parent).unwrap().state,
            ThreadState::WaitingForChild
        );
        assert!(t.reap_child(parent).is_none());
        assert!(t.has_children(parent));
        assert!(run_and_end(&mut t, child, 3).is_empty());
        assert_eq!(t.pick_next(), Some(parent), "the child's end woke it");
        assert_eq!(t.reap_child(parent), Some((child, 3)));
        assert!(!t.has_children(parent));
        assert!(t.get(child).is_none(), "reaping removes the child");
    }

    #[test]
    fn an_ended_child_is_not_reaped_while_the_cpu_is_still_on_it() {
        let mut t = Table::default();
        let parent = add(&mut t, Parent::Kernel);
        let child = add(&mut t, Parent::Process(parent));
        t.pick_next();
        t.take_current();
        assert_eq!(t.pick_next(), Some(child));
        t.end(child, 0).unwrap();
        assert_eq!(t.reap_child(parent), None);
        t.take_current();
        t.release(child).unwrap();
        assert_eq!(t.reap_child(parent), Some((child, 0)));
    }

    #[test]
    fn a_kernel_started_program_leaves_the_table_with_its_report() {
        let mut t = Table::default();
        let a = add(&mut t, Parent::Kernel);
        let reports = run_and_end(&mut t, a, 7);
        assert_eq!(
            reports,
            [Unwaited {
                pid: a,
                path: String::from("/bin/p"),
                started_by_kernel: true,
                status: 7
            }]
        );
        assert!(t.is_empty());
    }

    #[test]
    fn a_parent_ending_with_ended_children_reaps_them() {
        let mut t = Table::default();
        let parent = add(&mut t, Parent::Kernel);
        let c1 = add(&mut t, Parent::Process(parent));
        let c2 = add(&mut t, Parent::Process(parent));
        t.pick_next();
        t.yield_current();
        t.take_current();
        assert!(run_and_end(&mut t, c1, 1).is_empty());
        assert!(run_and_end(&mut t, c2, 2).is_empty());
        let reports = run_and_end(&mut t, parent, 0);
        let pids: Vec<_> = reports
            .iter()
            .map(|u| (u.pid, u.started_by_kernel))
            .collect();
        assert_eq!(pids, [(c1, false), (c2, false), (parent, true)]);
        assert!(t.is_empty(), "no ended child is left behind");
    }

    #[test]
    fn a_running_orphan_is_dropped_when_it_ends() {
        let mut t = Table::default();
        let parent = add(&mut t, Parent::Kernel);
        let child = add(&mut t, Parent::Process(parent));
        t.pick_next();
        t.yield_current();
        t.take_current();
        assert_eq!(t.pick_next(), Some(child));
        t.yield_current();
        t.take_current();
        run_and_end(&mut t, parent, 0);
        assert_eq!(t.get(child).unwrap().parent, Parent::Gone);
        let reports = run_and_end(&mut t, child, 5);
        assert_eq!(reports.len(), 1);
        assert!(!reports[0].started_by_kernel);
        assert!(t.is_empty());
    }

    #[test]
    fn a_thread_that_leaves_the_table_while_its_cpu_is_on_it_has_no_process() {
        let mut t = Table::default();
        let pid = add(&mut t, Parent::Kernel);
        let new = NewThread {
            context: (),
            part: ThreadPart::default(),
            clear_child_tid: 0,
            joinable: false,
        };
        let tid = t.insert_thread(pid, new).unwrap();
        assert_eq!(t.pick_next(), Some(pid));
        assert_eq!(t.current(), Some(pid));
        t.yield_current();
        t.take_current();
        assert_eq!(t.pick_next(), Some(tid));
        assert_eq!((t.current_thread(), t.current()), (Some(tid), Some(pid)));
        t.end_thread(tid, 0).unwrap();
        assert_eq!(t.current(), Some(pid), "its record stays once ended");
        t.release_thread(tid);
        assert!(t.thread(tid).is_none(), "not joinable: the record went");
        assert_eq!((t.current_thread(), t.current()), (Some(tid), None));
        assert_eq!(t.take_current(), Some(tid));
        assert_eq!(t.pick_next(), Some(pid), "the process runs on");
        assert_eq!(t.current(), Some(pid));
    }

    #[test]
    fn ending_twice_does_nothing_the_second_time() {
        let mut t = Table::default();
        let a = add(&mut t, Parent::Kernel);
        assert!(t.end(a, 1).is_some());
        assert!(t.end(a, 2).is_none());
        assert_eq!(t.get(a).unwrap().state, State::Ended(1));
    }

    #[test]
    fn an_ended_process_is_taken_off_the_run_queue() {
        let mut t = Table::default();
        let a = add(&mut t, Parent::Kernel);
        let b = add(&mut t, Parent::Kernel);
        t.end(a, 137).unwrap();
        t.release(a).unwrap();
        assert_eq!(t.pick_next(), Some(b));
        assert_eq!(t.pick_next(), None);
    }

    #[test]
    fn release_hands_back_the_machine_parts_once() {
        let mut t: ProcessTable<u8, u16> = ProcessTable::default();
        let parent = t.insert(NewProcess {
            parent: Parent::Kernel,
            path: String::new(),
            space: AsId(0),
            table: 1,
            context: 2,
            files: DescriptorTable::default(),
            abi: ProgramAbi::Neo,
            thread: ThreadPart::default(),
        });
        let child = t.insert(NewProcess {
            parent: Parent::Process(parent),
            path: String::new(),
            space: AsId(1),
            table: 3,
            context: 4,
            files: DescriptorTable::default(),
            abi: ProgramAbi::Neo,
            thread: ThreadPart::default(),
        });
        assert!(t.release(child).is_none(), "a live process keeps its parts");
        let ending = t.end(child, 0).unwrap();
        assert_eq!(
            ending.contexts,
            [4],
            "the CPU is not on it: its context comes back at once"
        );
        let r = t.release(child).unwrap();
        assert_eq!((r.table, r.context, r.unwaited), (Some(3), None, None));
        let again = t.release(child).unwrap();
        assert_eq!((again.table, again.context), (None, None));
    }
}

/// Scheduling on several simulated CPUs: per-CPU queues, stealing, wake-up
/// placement, fairness, and a thread never on two CPUs.
#[cfg(test)]
mod scheduling_tests {
    use super::*;

    type Table = ProcessTable<(), ()>;

    /// A new process made on CPU `cpu`: its first thread's id.
    fn add_on(t: &mut Table, cpu: usize) -> Tid {
        t.set_cpu(cpu);
        t.insert(NewProcess {
            parent: Parent::Kernel,
            path: String::from("/bin/p"),
            space: AsId(0),
            table: (),
            context: (),
            files: DescriptorTable::default(),
            abi: ProgramAbi::Neo,
            thread: ThreadPart::default(),
        })
    }

    fn add_thread(t: &mut Table, pid: Pid) -> Tid {
        t.insert_thread(
            pid,
            NewThread {
                context: (),
                part: ThreadPart::default(),
                clear_child_tid: 0,
                joinable: false,
            },
        )
        .unwrap_or_else(|_| panic!("process {pid} is live"))
    }

    fn queued(t: &Table, cpu: usize) -> Vec<Tid> {
        t.queued_on(cpu).collect()
    }

    /// CPU `cpu` leaves its thread and picks the next.
    fn switch(t: &mut Table, cpu: usize) -> Option<Tid> {
        t.set_cpu(cpu);
        t.take_current();
        t.pick_next()
    }

    #[test]
    fn a_cpu_runs_its_own_queue_first_and_an_empty_one_steals_from_the_longest() {
        let mut t = Table::default();
        let (a, b) = (add_on(&mut t, 0), add_on(&mut t, 0));
        let d = add_on(&mut t, 1);
        assert_eq!(queued(&t, 0), [a, b]);
        assert_eq!(queued(&t, 1), [d]);
        assert_eq!(switch(&mut t, 1), Some(d), "its own queue first");
        assert_eq!(
            switch(&mut t, 2),
            Some(a),
            "stolen from CPU 0's, the longest"
        );
        assert_eq!(t.thread(a).unwrap().last_cpu, 2, "it runs on CPU 2 now");
        assert_eq!(switch(&mut t, 0), Some(b));
        // A queue two longer than this CPU's is stolen from first.
        let (e, f, g) = (add_on(&mut t, 0), add_on(&mut t, 0), add_on(&mut t, 1));
        t.set_cpu(1);
        t.yield_current();
        assert_eq!(
            (queued(&t, 0), queued(&t, 1)),
            ([e, f].into(), [g, d].into())
        );
        assert_eq!(switch(&mut t, 1), Some(g), "not two longer: its own");
        let (h, i) = (add_on(&mut t, 0), add_on(&mut t, 0));
        t.set_cpu(1);
        t.yield_current();
        assert_eq!(queued(&t, 1), [d, g]);
        assert_eq!(switch(&mut t, 1), Some(e), "four against two: stolen");
        assert_eq!(queued(&t, 0), [f, h, i]);
    }

    #[test]
    fn a_woken_thread_goes_back_to_its_cpu_or_to_an_idle_one_which_is_woken() {
        let mut t = Table::default();
        let a = add_on(&mut t, 0);
        let b = add_on(&mut t, 0);
        let c = add_on(&mut t, 0);
        assert_eq!(switch(&mut t, 0), Some(a));
        assert_eq!(switch(&mut t, 1), Some(b));
        assert_eq!(switch(&mut t, 2), Some(c));
        // b sleeps on CPU 1, which goes idle; CPU 0 wakes it: back to CPU 1.
        t.set_cpu(1);
        t.block_current(None);
        assert_eq!(switch(&mut t, 1), None);
        t.set_cpu(0);
        assert!(t.wake(b));
        assert_eq!(queued(&t, 1), [b]);
        assert_eq!(t.take_cpus_to_wake(), 1 << 1, "CPU 1 was idle");
        assert_eq!(switch(&mut t, 1), Some(b));
        // b sleeps again; CPU 2 goes idle meanwhile, CPU 1 busy: to CPU 2.
        t.block_current(None);
        let d = add_on(&mut t, 1);
        assert_eq!(switch(&mut t, 1), Some(d));
        t.set_cpu(2);
        t.block_current(None);
        assert_eq!(switch(&mut t, 2), None);
        t.set_cpu(0);
        assert!(t.wake(b));
        assert_eq!(queued(&t, 2), [b]);
        assert_eq!(t.take_cpus_to_wake(), 1 << 2);
        // No CPU idle: its own CPU's queue, nobody woken.
        assert_eq!(switch(&mut t, 2), Some(b));
        t.block_current(None);
        t.set_cpu(3);
        assert!(t.wake(c));
        t.set_cpu(2);
        let e = add_on(&mut t, 2);
        assert_eq!(switch(&mut t, 2), Some(c), "c ran on CPU 2 last");
        assert!(t.wake(b));
        assert_eq!(queued(&t, 2), [e, b]);
        assert_eq!(t.take_cpus_to_wake(), 0);
    }

    #[test]
    fn more_threads_than_cpus_share_them_round_robin_and_none_starves() {
        let mut t = Table::default();
        let threads: Vec<Tid> = (0..5).map(|_| add_on(&mut t, 0)).collect();
        let mut ran = BTreeMap::<Tid, u32>::new();
        for cpu in 0..2 {
            switch(&mut t, cpu);
        }
        for _ in 0..1000 {
            for cpu in 0..2 {
                t.set_cpu(cpu);
                *ran.entry(t.current_thread().unwrap()).or_default() += 1;
                if t.preempt_current() {
                    assert!(switch(&mut t, cpu).is_some());
                }
            }
        }
        // Five threads on two CPUs: three share one, two the other.
        let counts: Vec<u32> = threads.iter().map(|tid| ran[tid]).collect();
        let (least, most) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert_eq!(counts.iter().sum::<u32>(), 2000);
        assert!(*least >= 2000 / 3 / 2 - 1, "ticks per thread: {counts:?}");
        assert!(*most <= 2000 / 2 / 2 + 1, "ticks per thread: {counts:?}");
    }

    #[test]
    fn threads_made_on_one_cpu_are_spread_over_the_others_by_stealing() {
        let mut t = Table::default();
        for _ in 0..9 {
            add_on(&mut t, 0);
        }
        for cpu in 0..3 {
            assert!(switch(&mut t, cpu).is_some());
        }
        for _ in 0..4 {
            for cpu in 0..3 {
                t.set_cpu(cpu);
                if t.preempt_current() {
                    switch(&mut t, cpu);
                }
            }
        }
        let lengths: Vec<usize> = (0..3).map(|cpu| queued(&t, cpu).len()).collect();
        assert_eq!(lengths, [2, 2, 2], "six waiting, two per CPU");
    }

    #[test]
    fn a_lone_thread_keeps_its_cpu_through_a_preemption() {
        let mut t = Table::default();
        let a = add_on(&mut t, 0);
        assert_eq!(switch(&mut t, 0), Some(a));
        assert!(!t.preempt_current(), "nobody else waits");
        assert_eq!(t.current_thread(), Some(a));
    }

    /// A small deterministic generator for the random schedule.
    fn next(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    /// Checks that no thread is on two CPUs and every ready thread is
    /// queued exactly once.
    fn check_invariants(t: &Table, cpus: usize) {
        let running: Vec<Tid> = t.running.iter().flatten().map(|on| on.tid).collect();
        for (i, tid) in running.iter().enumerate() {
            assert!(!running[i + 1..].contains(tid), "{tid} on two CPUs");
        }
        let all: Vec<Tid> = (0..cpus).flat_map(|cpu| queued(t, cpu)).collect();
        for th in t.threads.values() {
            let on_a_cpu = running.contains(&th.tid);
            assert_eq!(th.state == ThreadState::Running, on_a_cpu, "{}", th.tid);
            let times = all.iter().filter(|&&q| q == th.tid).count();
            let ready = th.state == ThreadState::Ready;
            assert_eq!(
                times,
                usize::from(ready),
                "thread {} queued {times}",
                th.tid
            );
        }
    }

    #[test]
    fn a_random_schedule_on_four_cpus_never_puts_a_thread_on_two_cpus() {
        const CPUS: usize = 4;
        let mut t = Table::default();
        let mut all = Vec::new();
        for p in 0..4 {
            let pid = add_on(&mut t, p % CPUS);
            all.extend([pid, add_thread(&mut t, pid), add_thread(&mut t, pid)]);
        }
        let mut ran = BTreeMap::<Tid, u32>::new();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let cpu = (next(&mut seed) % CPUS as u64) as usize;
            t.set_cpu(cpu);
            match next(&mut seed) % 5 {
                _ if t.current_thread().is_none() => {
                    if let Some(tid) = t.pick_next() {
                        *ran.entry(tid).or_default() += 1;
                    }
                }
                0 => {
                    t.block_current(None);
                    if !t.current_runs() {
                        t.take_current();
                    }
                }
                1 => {
                    t.yield_current();
                    t.take_current();
                }
                2 => {
                    if t.preempt_current() {
                        t.take_current();
                    }
                }
                _ => {
                    let tid = all[(next(&mut seed) % all.len() as u64) as usize];
                    t.wake(tid);
                }
            }
            check_invariants(&t, CPUS);
        }
        for tid in &all {
            assert!(
                ran.get(tid).copied().unwrap_or(0) > 100,
                "{tid} starved: {ran:?}"
            );
        }
    }
}
