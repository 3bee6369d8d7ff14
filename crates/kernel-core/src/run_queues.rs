//! Per-CPU run queues: the ready threads, each in the queue of one CPU
//! (a number; no hardware), which CPUs found nothing to run (idle), and
//! which idle CPUs were given a thread since the kernel last asked (it
//! interrupts them).
//!
//! A CPU takes the first thread of its own queue that it may run (round
//! robin: a thread that yields goes to the back); when its own queue has
//! none, or another queue is longer than its own by two or more (so the
//! queues are evened out), it steals the first it may run from the
//! longest other queue. A thread made ready goes to the queue of the CPU
//! it last ran on, unless that CPU is busy and another is idle: then to
//! the idle one's. Which thread a CPU may run is the process table's
//! rule, passed in as `fits`.
//!
//! Costs: queuing is O(1); finding a CPU's next thread is O(number of
//! CPUs) (the queues' lengths are compared), plus one step per thread
//! passed over (one the rule says this CPU may not run yet).

use alloc::collections::VecDeque;

use crate::process::{Tid, MAX_CPUS};

/// Where a thread waits: (queue's CPU, index in it).
pub type Place = (usize, usize);

/// The ready threads of every CPU.
pub struct RunQueues {
    queues: [VecDeque<Tid>; MAX_CPUS],
    /// CPUs whose queue has had a thread (the highest number plus one):
    /// the queues a steal looks at.
    cpus: usize,
    /// Threads in all queues.
    queued: usize,
    /// CPUs whose last look found nothing to run (bit per CPU).
    idle: u64,
    /// Idle CPUs given a thread since [`Self::take_cpus_to_wake`].
    to_wake: u64,
}

impl Default for RunQueues {
    fn default() -> Self {
        RunQueues {
            queues: [const { VecDeque::new() }; MAX_CPUS],
            cpus: 1,
            queued: 0,
            idle: 0,
            to_wake: 0,
        }
    }
}

fn bit(cpu: usize) -> u64 {
    1 << cpu
}

impl RunQueues {
    /// Puts `tid` at the back of CPU `cpu`'s queue.
    fn push_on(&mut self, cpu: usize, tid: Tid) {
        self.cpus = self.cpus.max(cpu + 1);
        self.queued += 1;
        self.queues[cpu].push_back(tid);
    }

    /// Queues thread `tid`, just made ready, which last ran on (or was
    /// made on) CPU `last`: on `last`'s queue, unless `last` is busy and
    /// another CPU idle, then on that one's. An idle CPU given a thread is
    /// no longer idle and is to be woken.
    pub fn push(&mut self, tid: Tid, last: usize) {
        let cpu = if self.idle == 0 || self.idle & bit(last) != 0 {
            last
        } else {
            self.idle.trailing_zeros() as usize
        };
        self.wake_if_idle(cpu);
        self.push_on(cpu, tid);
    }

    /// Queues thread `tid`, which yielded on CPU `cpu`, at the back of
    /// `cpu`'s queue; an idle CPU is woken to look (it may steal it once
    /// `cpu` has left it).
    pub fn push_yielded(&mut self, tid: Tid, cpu: usize) {
        self.push_on(cpu, tid);
        if self.idle != 0 {
            self.wake_if_idle(self.idle.trailing_zeros() as usize);
        }
    }

    fn wake_if_idle(&mut self, cpu: usize) {
        if self.idle & bit(cpu) != 0 {
            self.idle &= !bit(cpu);
            self.to_wake |= bit(cpu);
        }
    }

    /// Where CPU `cpu`'s next thread is: the first of its own queue that
    /// `fits`, else the first that fits in the longest other queue having
    /// one. Queues are evened out too: when another queue is longer than
    /// this CPU's by two or more, the steal comes first.
    pub fn find(&self, cpu: usize, fits: impl Fn(Tid) -> bool) -> Option<Place> {
        let own = self.queues[cpu].len();
        let steal = || self.steal(cpu, &fits);
        let longest = self.queues[..self.cpus].iter().map(VecDeque::len).max();
        if longest.unwrap_or(0) >= own + 2 {
            if let Some(place) = steal() {
                return Some(place);
            }
        }
        match self.queues[cpu].iter().position(|&tid| fits(tid)) {
            Some(i) => Some((cpu, i)),
            None => steal(),
        }
    }

    /// The first thread that `fits` in the longest queue other than
    /// `cpu`'s having one.
    fn steal(&self, cpu: usize, fits: &impl Fn(Tid) -> bool) -> Option<Place> {
        let mut best: Option<Place> = None;
        for (q, queue) in self.queues[..self.cpus].iter().enumerate() {
            let longer = best.is_none_or(|(b, _)| queue.len() > self.queues[b].len());
            if q == cpu || !longer {
                continue;
            }
            if let Some(i) = queue.iter().position(|&tid| fits(tid)) {
                best = Some((q, i));
            }
        }
        best
    }

    /// Takes the thread at `place` (from [`Self::find`]) off its queue.
    pub fn take(&mut self, (cpu, i): Place) -> Option<Tid> {
        let tid = self.queues[cpu].remove(i)?;
        self.queued -= 1;
        Some(tid)
    }

    /// Moves the thread at `place` to the back of CPU `cpu`'s queue.
    pub fn move_to_back(&mut self, place: Place, cpu: usize) {
        if let Some(tid) = self.take(place) {
            self.push_on(cpu, tid);
        }
    }

    /// The thread at index `i` of CPU `cpu`'s queue.
    pub fn at(&self, cpu: usize, i: usize) -> Option<Tid> {
        self.queues[cpu].get(i).copied()
    }

    /// Moves the thread at `place` to the front of CPU `cpu`'s queue (a
    /// steal before a preemption: it runs next there).
    pub fn move_to_front(&mut self, place: Place, cpu: usize) {
        if let Some(tid) = self.take(place) {
            self.push_on(cpu, tid);
            self.queues[cpu].rotate_right(1);
        }
    }

    /// Marks CPU `cpu` idle (it found nothing to run) or busy.
    pub fn set_idle(&mut self, cpu: usize, idle: bool) {
        if idle {
            self.idle |= bit(cpu);
        } else {
            self.idle &= !bit(cpu);
        }
    }

    /// Every idle CPU is to be woken: threads it passed over may fit now
    /// (a hold on them ended).
    pub fn wake_idle_cpus(&mut self) {
        self.to_wake |= self.idle;
        self.idle = 0;
    }

    /// The idle CPUs given a thread since the last call (bit per CPU): the
    /// kernel interrupts them.
    pub fn take_cpus_to_wake(&mut self) -> u64 {
        core::mem::take(&mut self.to_wake)
    }

    /// Whether no thread is queued.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Whether any queued thread satisfies `f`.
    pub fn any(&self, f: impl Fn(Tid) -> bool) -> bool {
        self.queues[..self.cpus]
            .iter()
            .any(|q| q.iter().any(|&tid| f(tid)))
    }

    /// Keeps only the queued threads that satisfy `f`.
    pub fn retain(&mut self, mut f: impl FnMut(Tid) -> bool) {
        for q in &mut self.queues[..self.cpus] {
            q.retain(|&tid| f(tid));
        }
        self.queued = self.queues.iter().map(VecDeque::len).sum();
    }

    /// The queue of CPU `cpu`, front first.
    pub fn queue(&self, cpu: usize) -> impl Iterator<Item = Tid> + '_ {
        self.queues[cpu].iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn queued(q: &RunQueues, cpu: usize) -> Vec<Tid> {
        q.queue(cpu).collect()
    }

    #[test]
    fn a_cpu_takes_its_own_queue_first_in_order() {
        let mut q = RunQueues::default();
        q.push(1, 0);
        q.push(2, 1);
        q.push(3, 0);
        assert_eq!(q.find(0, |_| true), Some((0, 0)));
        assert_eq!(q.find(1, |_| true), Some((1, 0)));
        assert_eq!(q.find(0, |t| t != 1), Some((0, 1)), "passes over 1");
    }

    #[test]
    fn an_empty_queue_steals_from_the_longest_other_queue_that_has_a_fit() {
        let mut q = RunQueues::default();
        q.push(1, 0);
        q.push(2, 1);
        q.push(3, 1);
        q.push(4, 2);
        q.push(5, 2);
        q.push(6, 2);
        assert_eq!(q.find(3, |_| true), Some((2, 0)), "the longest");
        assert_eq!(q.find(3, |t| t < 4), Some((1, 0)), "the longest with a fit");
        assert_eq!(q.find(3, |t| t > 6), None);
        q.move_to_front((2, 1), 3);
        assert_eq!(queued(&q, 3), [5]);
        assert_eq!(queued(&q, 2), [4, 6]);
    }

    #[test]
    fn a_woken_thread_goes_to_its_cpu_unless_that_is_busy_and_another_idle() {
        let mut q = RunQueues::default();
        q.push(1, 1);
        assert_eq!(queued(&q, 1), [1], "no CPU idle: its last CPU");
        assert_eq!(q.take_cpus_to_wake(), 0);
        q.set_idle(2, true);
        q.push(2, 1);
        assert_eq!(queued(&q, 2), [2], "CPU 1 busy, CPU 2 idle");
        assert_eq!(q.take_cpus_to_wake(), 0b100);
        q.push(3, 1);
        assert_eq!(queued(&q, 1), [1, 3], "CPU 2 was woken: busy now");
        q.set_idle(1, true);
        q.set_idle(2, true);
        q.push(4, 1);
        assert_eq!(queued(&q, 1), [1, 3, 4], "its own CPU, idle");
        assert_eq!(q.take_cpus_to_wake(), 0b10);
        assert_eq!(q.take_cpus_to_wake(), 0, "asked once");
    }

    #[test]
    fn a_yield_stays_on_its_cpu_and_wakes_an_idle_one_to_look() {
        let mut q = RunQueues::default();
        q.push_yielded(7, 0);
        assert_eq!(q.take_cpus_to_wake(), 0);
        q.set_idle(1, true);
        q.push_yielded(8, 0);
        assert_eq!(queued(&q, 0), [7, 8]);
        assert_eq!(q.take_cpus_to_wake(), 0b10);
    }
}
