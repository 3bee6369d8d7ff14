//! The process table: every process's life cycle (ready, running, waiting
//! for a child, asleep, ended), parents and orphans, the run queue and the
//! running process, and each process's signal state and real-time timer. It holds each process's machine parts (`T`: its page table, `C`:
//! its kernel-side execution context) without knowing what they are; the
//! kernel creates and frees them and switches between processes.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

use neoos_mm::AsId;

use crate::files::DescriptorTable;
use crate::linux::signals::Signals;
use crate::linux::ProgramAbi;
use crate::timers::RealTimer;

/// A process identifier.
pub type Pid = u32;

/// Where a process is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Ready,
    Running,
    /// Waiting for a child to end.
    WaitingForChild,
    /// Asleep until the clock reaches `until` ticks ([`FOREVER`]: until a
    /// signal wakes it). A deliverable signal wakes it earlier.
    Sleeping {
        until: u64,
    },
    /// Ended with this status; waiting to be reaped by its parent.
    Ended(i64),
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

/// One process.
pub struct Process<T, C> {
    pub pid: Pid,
    pub parent: Parent,
    pub path: String,
    pub space: AsId,
    /// Its page table; taken when the process has ended and no longer runs.
    pub table: Option<T>,
    /// Its execution context; taken when the process has ended and no
    /// longer runs.
    pub context: Option<C>,
    pub state: State,
    pub files: DescriptorTable,
    /// Its system-call interface (and Linux state).
    pub abi: ProgramAbi,
    /// Signal actions, blocked and pending sets, alternate stack (both
    /// personalities; one thread per process, so per process for now).
    pub signals: Signals,
    /// Its `ITIMER_REAL` timer (`alarm`, `setitimer`).
    pub timer: RealTimer,
}

impl<T, C> Process<T, C> {
    /// Whether the process has ended and the CPU has left it for good.
    fn is_released(&self) -> bool {
        matches!(self.state, State::Ended(_)) && self.context.is_none()
    }
}

/// What a new process is made of.
pub struct NewProcess<T, C> {
    pub parent: Parent,
    pub path: String,
    pub space: AsId,
    pub table: T,
    pub context: C,
    pub files: DescriptorTable,
    pub abi: ProgramAbi,
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
/// address space, and the ended children nobody can wait for any more.
pub struct Ending {
    pub files: DescriptorTable,
    pub space: AsId,
    pub unwaited: Vec<Unwaited>,
}

/// What an ended process held once the CPU has left it.
pub struct Released<T, C> {
    pub table: Option<T>,
    pub context: Option<C>,
    /// Set when the process was dropped from the table (nobody waits for it).
    pub unwaited: Option<Unwaited>,
}

/// All processes.
pub struct ProcessTable<T, C> {
    processes: BTreeMap<Pid, Process<T, C>>,
    run_queue: VecDeque<Pid>,
    current: Option<Pid>,
    next_pid: Pid,
    /// No sleep ends and no timer expires before this tick (a lower bound:
    /// the clock's step scans the table only once it is reached).
    pub(crate) next_deadline: u64,
}

impl<T, C> Default for ProcessTable<T, C> {
    fn default() -> Self {
        ProcessTable {
            processes: BTreeMap::new(),
            run_queue: VecDeque::new(),
            current: None,
            next_pid: 1,
            next_deadline: FOREVER,
        }
    }
}

impl<T, C> ProcessTable<T, C> {
    /// The running process.
    #[inline]
    pub fn current(&self) -> Option<Pid> {
        self.current
    }

    /// Process `pid`.
    #[inline]
    pub fn get(&self, pid: Pid) -> Option<&Process<T, C>> {
        self.processes.get(&pid)
    }

    /// Process `pid`, to change.
    #[inline]
    pub fn get_mut(&mut self, pid: Pid) -> Option<&mut Process<T, C>> {
        self.processes.get_mut(&pid)
    }

    /// Whether no process exists.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }

    /// Number of processes in the table (ended ones not yet reaped count).
    pub fn len(&self) -> usize {
        self.processes.len()
    }

    /// Adds a process, ready to run; returns its pid.
    pub fn insert(&mut self, new: NewProcess<T, C>) -> Pid {
        let pid = self.next_pid;
        self.next_pid += 1;
        self.processes.insert(
            pid,
            Process {
                pid,
                parent: new.parent,
                path: new.path,
                space: new.space,
                table: Some(new.table),
                context: Some(new.context),
                state: State::Ready,
                files: new.files,
                abi: new.abi,
                signals: Signals::default(),
                timer: RealTimer::default(),
            },
        );
        self.run_queue.push_back(pid);
        pid
    }

    /// Every process, to look at.
    pub fn iter(&self) -> impl Iterator<Item = &Process<T, C>> + '_ {
        self.processes.values()
    }

    /// The clock's step at tick `now`: fires due timers (SIGALRM made
    /// pending), wakes sleepers whose time is over and sleepers or waiters
    /// with a signal to take. Scans the table only once a deadline has
    /// come. `true` when a signal was made pending.
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
            let wake = match p.state {
                State::Sleeping { until } => until <= now || p.signals.has_deliverable(),
                State::WaitingForChild => p.signals.has_deliverable(),
                _ => false,
            };
            if wake {
                p.state = State::Ready;
                self.run_queue.push_back(p.pid);
            } else if let State::Sleeping { until } = p.state {
                next = next.min(until);
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

    /// The running process sleeps until the clock reaches `until` ticks
    /// ([`FOREVER`]: until a signal), or a deliverable signal wakes it.
    pub fn block_current_sleeping(&mut self, until: u64) {
        let Some(p) = self.current.and_then(|pid| self.processes.get_mut(&pid)) else {
            return;
        };
        p.state = State::Sleeping { until };
        self.note_deadline(until);
    }

    /// Makes `pid` ready if it sleeps or waits for a child (a signal came,
    /// or its sleep is over): it steps its call again.
    pub fn wake(&mut self, pid: Pid) {
        let Some(p) = self.processes.get_mut(&pid) else {
            return;
        };
        if matches!(p.state, State::Sleeping { .. } | State::WaitingForChild) {
            p.state = State::Ready;
            self.run_queue.push_back(pid);
        }
    }

    /// Takes the next ready process off the run queue and makes it the
    /// running one.
    pub fn pick_next(&mut self) -> Option<Pid> {
        while let Some(pid) = self.run_queue.pop_front() {
            let Some(p) = self.processes.get_mut(&pid) else {
                continue;
            };
            if p.state != State::Ready {
                continue;
            }
            p.state = State::Running;
            self.current = Some(pid);
            return Some(pid);
        }
        None
    }

    /// The running process gives up the CPU but stays ready.
    pub fn yield_current(&mut self) {
        let Some(pid) = self.current else { return };
        if let Some(p) = self.processes.get_mut(&pid) {
            if p.state == State::Running {
                p.state = State::Ready;
                self.run_queue.push_back(pid);
            }
        }
    }

    /// The running process waits for a child to end.
    pub fn block_current_for_child(&mut self) {
        if let Some(p) = self.current.and_then(|pid| self.processes.get_mut(&pid)) {
            p.state = State::WaitingForChild;
        }
    }

    /// The CPU has come back from the running process: it runs no more.
    pub fn take_current(&mut self) -> Option<Pid> {
        self.current.take()
    }

    /// Marks `pid` ended with `status`: orphans its children (ended ones
    /// nobody can wait for any more leave the table), wakes a waiting
    /// parent, and hands back what must be torn down. `None` when `pid` does
    /// not exist or has ended already.
    pub fn end(&mut self, pid: Pid, status: i64) -> Option<Ending> {
        let p = self.processes.get_mut(&pid)?;
        if matches!(p.state, State::Ended(_)) {
            return None;
        }
        p.state = State::Ended(status);
        let files = core::mem::take(&mut p.files);
        let (space, parent) = (p.space, p.parent);
        self.run_queue.retain(|&q| q != pid);
        let unwaited = self.orphan_children_of(pid);
        if let Parent::Process(parent) = parent {
            self.wake_if_waiting(parent);
        }
        Some(Ending {
            files,
            space,
            unwaited,
        })
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

    fn wake_if_waiting(&mut self, pid: Pid) {
        if let Some(p) = self.processes.get_mut(&pid) {
            if p.state == State::WaitingForChild {
                p.state = State::Ready;
                self.run_queue.push_back(pid);
            }
        }
    }

    /// Takes what ended process `pid` still held once the CPU has left it;
    /// a process nobody waits for leaves the table. `None` when `pid` has
    /// not ended.
    pub fn release(&mut self, pid: Pid) -> Option<Released<T, C>> {
        let p = self.processes.get_mut(&pid)?;
        let State::Ended(_) = p.state else {
            return None;
        };
        let context = p.context.take();
        let table = p.table.take();
        let unwaited = if matches!(p.parent, Parent::Process(_)) {
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
            path: p.path,
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
            .map(|p| (p.pid, matches!(p.state, State::Ended(_)) && p.is_released()))
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
        assert_eq!(t.get(a).unwrap().state, State::Ready);
    }

    #[test]
    fn run_queue_is_first_in_first_out_and_yield_goes_to_the_back() {
        let mut t = Table::default();
        let a = add(&mut t, Parent::Kernel);
        let b = add(&mut t, Parent::Kernel);
        assert_eq!(t.pick_next(), Some(a));
        assert_eq!(t.get(a).unwrap().state, State::Running);
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
        assert_eq!(t.get(parent).unwrap().state, State::WaitingForChild);
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
        });
        let child = t.insert(NewProcess {
            parent: Parent::Process(parent),
            path: String::new(),
            space: AsId(1),
            table: 3,
            context: 4,
            files: DescriptorTable::default(),
            abi: ProgramAbi::Neo,
        });
        assert!(t.release(child).is_none(), "a live process keeps its parts");
        t.end(child, 0).unwrap();
        let r = t.release(child).unwrap();
        assert_eq!((r.table, r.context, r.unwaited), (Some(3), Some(4), None));
        let again = t.release(child).unwrap();
        assert_eq!((again.table, again.context), (None, None));
    }
}
