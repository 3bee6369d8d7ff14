//! Holding a process's other threads off the CPUs: what an `exit_group`
//! (a fatal signal, a fault) and an `execve` do before they take the
//! threads and the address space apart, now that threads of one process
//! run on several CPUs at once. The caller becomes its process's
//! *stopper*; from then on no CPU picks another thread of the process,
//! and the kernel makes the CPUs still on one leave it (it interrupts
//! them; each thread, on its way back to user mode, finds itself held
//! and yields) and waits until none is on a CPU
//! ([`ProcessTable::others_on_cpus`]) before it goes on.

use super::{Pid, ProcessTable, Thread, ThreadState, Tid};

/// What [`ProcessTable::stop_others`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopAsked {
    /// The caller now holds its siblings: the CPUs (bits by number, the
    /// caller's own not among them) still on one of them must be made to
    /// leave it.
    Cpus(u64),
    /// Another thread of the process holds the caller: it must leave its
    /// CPU and wait (it runs again only if that thread's `execve` fails).
    Held,
}

impl<T, C> ProcessTable<T, C> {
    /// Thread `me` of `pid` holds every other thread of `pid` off the CPUs
    /// (until [`Self::end_stop`], or for good once the process ends).
    pub fn stop_others(&mut self, pid: Pid, me: Tid) -> StopAsked {
        let stopper = self.processes.get(&pid).and_then(|p| p.stopper);
        if stopper.is_some_and(|s| s != me && self.is_live_thread(s)) {
            return StopAsked::Held;
        }
        if let Some(p) = self.processes.get_mut(&pid) {
            p.stopper = Some(me);
        }
        StopAsked::Cpus(self.cpus_on_others(pid, me))
    }

    /// The CPUs other than this one on a thread of `pid` other than `me`.
    fn cpus_on_others(&self, pid: Pid, me: Tid) -> u64 {
        let mut cpus = 0;
        for (cpu, on) in self.running.iter().enumerate() {
            let sibling = on.is_some_and(|on| on.tid != me && on.pid == Some(pid));
            if sibling && cpu != self.cpu {
                cpus |= 1 << cpu;
            }
        }
        cpus
    }

    /// Whether a CPU is still on a thread of `pid` other than `me`.
    pub fn others_on_cpus(&self, pid: Pid, me: Tid) -> bool {
        self.cpus_on_others(pid, me) != 0
    }

    /// The hold of [`Self::stop_others`] ends (an `execve` that failed, or
    /// one whose other threads are gone): held threads that are ready may
    /// run again.
    pub fn end_stop(&mut self, pid: Pid) {
        if let Some(p) = self.processes.get_mut(&pid) {
            p.stopper = None;
        }
        // Idle CPUs look at the run queues again.
        self.queues.wake_idle_cpus();
    }

    /// Whether a sibling holds thread `t` off the CPUs.
    pub(super) fn held(&self, t: &Thread<C>) -> bool {
        self.processes
            .get(&t.pid)
            .and_then(|p| p.stopper)
            .is_some_and(|s| s != t.tid)
    }

    /// Whether a sibling holds this CPU's running thread off the CPUs (it
    /// must leave: it yields until the hold ends, or is taken away).
    pub fn current_held(&self) -> bool {
        self.current_thread()
            .and_then(|tid| self.threads.get(&tid))
            .is_some_and(|t| self.held(t))
    }

    fn is_live_thread(&self, tid: Tid) -> bool {
        self.threads
            .get(&tid)
            .is_some_and(|t| !matches!(t.state, ThreadState::Ended(_)))
    }
}
