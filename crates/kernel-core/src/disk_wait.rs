//! Write-backs whose device writes run without the kernel lock: `fsync`,
//! `msync(MS_SYNC)` and the flusher, for files on the disk volume.
//!
//! A write-back goes in batches, each in three steps: under the kernel
//! lock the page cache copies a batch of dirty runs out
//! ([`neoos_mm::MemorySystem::file_gather_dirty`]), the volume places them (holes
//! allocated, metadata written, as before) and the device is given one
//! write per extent, which it keeps with its buffer until done; then the
//! writer waits without the lock (a thread blocks in
//! [`crate::process::ThreadState::WaitingForDisk`] and others run; the
//! flusher simply looks again at the next scheduler pass); once the
//! device has nothing in flight, under the lock again: a failed write
//! fails the write-back (`Io`, every page still dirty), else the volume
//! syncs (the file's times, the device's flush: these two requests still
//! wait with the lock held) and the pages not marked dirty again since
//! they were copied become clean ([`neoos_mm::MemorySystem::clean_written`]).
//!
//! The rule that keeps it sound: a batch is started only when the device
//! has nothing in flight, in the lock section that copied it, and every
//! other request (the volume's own reads and writes, under the lock)
//! waits for the writes in flight first (the driver does). So device
//! writes of a block are never in flight together, and they reach the
//! disk in the order their data was copied: a block freed by a truncate
//! and given to another file is never written by an old batch after its
//! new owner's data, and a page copied twice reaches the disk in its
//! newer version. Nothing is held by a waiting thread (its batch's
//! buffers are the device's until done), so a thread killed while it
//! waits leaves nothing behind but its record here, dropped at the next
//! scheduler pass that finds the thread gone.

use alloc::collections::BTreeMap;

use neoos_mm::{DirtyFiles, Errno, FileId, GatheredRuns, Pager};

use crate::kernel::Kernel;
use crate::mount::is_volume_file;
use crate::platform::Platform;
use crate::process::Tid;
use crate::syscall::SchedulerCall;

/// Most runs one batch carries: the virtio queue's requests in flight
/// (16 descriptors, each request one with indirect descriptors).
pub const BATCH_RUNS: usize = 16;
/// Most pages one batch carries (1 MiB of buffers).
pub const BATCH_PAGES: usize = 256;

/// A write-back of one file under way.
#[derive(Debug)]
pub struct Writeback {
    file: FileId,
    /// The page index the next batch is gathered from.
    next: u64,
    /// The batch whose writes were started, until they are done.
    batch: Option<GatheredRuns>,
}

impl Writeback {
    fn of(file: FileId) -> Self {
        Writeback {
            file,
            next: 0,
            batch: None,
        }
    }
}

/// A thread's write-back call under way: its files, the one being
/// written, and the first error met.
#[derive(Debug)]
struct CallWriteback {
    files: DirtyFiles,
    done: usize,
    current: Option<Writeback>,
    result: Result<(), Errno>,
}

/// What the next step of a write-back is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritebackStep {
    /// Writes are in flight: wait until the disk has none, then step again.
    WaitForDisk,
    /// Every dirty page of the file has been written.
    Done,
}

/// The write-backs under way: each thread's call, and the flusher's.
#[derive(Debug, Default)]
pub struct Writebacks {
    threads: BTreeMap<Tid, CallWriteback>,
    pub(crate) flusher: Option<Writeback>,
}

impl<P: Platform> Kernel<P> {
    /// Starts the caller's write-back of `files` (`fsync`, `msync`): the
    /// scheduler side steps it ([`Self::writeback_step`]).
    pub(crate) fn begin_writeback(
        &mut self,
        pid: crate::process::Pid,
        files: DirtyFiles,
    ) -> SchedulerCall {
        let tid = self.caller_tid(pid);
        self.writebacks.threads.insert(
            tid,
            CallWriteback {
                files,
                done: 0,
                current: None,
                result: Ok(()),
            },
        );
        SchedulerCall::WriteBack
    }

    /// One step of thread `tid`'s write-back call: its result once every
    /// file is written (the first error met; a file that fails does not
    /// stop the others), `None` while writes are in flight: in the same
    /// lock section the thread is then to block for the disk, and step
    /// again once woken. Volume files are written in batches whose device
    /// writes run without the lock; others at once, under it.
    pub fn writeback_step(&mut self, tid: Tid) -> Option<Result<(), Errno>> {
        let Some(mut call) = self.writebacks.threads.remove(&tid) else {
            return Some(Err(Errno::Inval));
        };
        while let Some(&file) = call.files.as_slice().get(call.done) {
            let written = if is_volume_file(file) {
                let mut writeback = call.current.take().unwrap_or_else(|| Writeback::of(file));
                let step = self.advance(&mut writeback);
                if step == Ok(WritebackStep::WaitForDisk) {
                    call.current = Some(writeback);
                    self.writebacks.threads.insert(tid, call);
                    return None;
                }
                step.map(|_| ())
            } else {
                let (memory, mut io) = self.memory_io();
                memory.file_sync(&mut io, file)
            };
            call.result = call.result.and(written);
            call.done += 1;
        }
        Some(call.result)
    }

    /// Moves `writeback` on: finishes its batch once the disk is done
    /// with it, then starts the next one.
    fn advance(&mut self, writeback: &mut Writeback) -> Result<WritebackStep, Errno> {
        if self.fs.disk.writes_in_flight() {
            return Ok(WritebackStep::WaitForDisk);
        }
        if let Some(batch) = writeback.batch.take() {
            self.finish_batch(writeback.file, &batch)?;
        }
        let (memory, mut io) = self.memory_io();
        let gathered = memory.file_gather_dirty(
            &mut io,
            writeback.file,
            writeback.next,
            BATCH_RUNS,
            BATCH_PAGES,
        );
        let mut batch = match gathered {
            Ok(Some(batch)) => batch,
            Ok(None) => return Ok(WritebackStep::Done),
            // No heap for the buffers: written the old way, which needs none.
            Err(Errno::NoMem) => {
                return memory
                    .file_sync(&mut io, writeback.file)
                    .map(|()| WritebackStep::Done)
            }
            Err(e) => return Err(e),
        };
        // Failures of a batch whose writer is gone are not this one's.
        self.fs.disk.take_failed_writes();
        for (first, data) in core::mem::take(&mut batch.runs) {
            self.fs
                .disk
                .start_run_write(writeback.file, first, data)
                .map_err(|_| Errno::Io)?;
        }
        writeback.next = batch.next;
        writeback.batch = Some(batch);
        Ok(WritebackStep::WaitForDisk)
    }

    /// After a batch's writes are done: `Io` if one failed (its pages stay
    /// dirty), else the volume's sync, then the pages clean.
    fn finish_batch(&mut self, file: FileId, batch: &GatheredRuns) -> Result<(), Errno> {
        if self.fs.disk.take_failed_writes() != 0 {
            return Err(Errno::Io);
        }
        self.fs.disk.sync(file).map_err(|_| Errno::Io)?;
        self.memory.clean_written(batch);
        Ok(())
    }

    /// The clock's work for the disk (every scheduler pass): once the disk
    /// has no write in flight, the threads waiting for it are readied, and
    /// records of threads gone are dropped.
    pub fn disk_step(&mut self) {
        if !self.writebacks.threads.is_empty() {
            let processes = &self.processes;
            self.writebacks
                .threads
                .retain(|&tid, _| processes.thread(tid).is_some());
        }
        if self.processes.any_waiting_for_disk() && !self.fs.disk.writes_in_flight() {
            self.processes.wake_disk_waiters();
        }
    }

    /// One step of the flusher's write-back of `file`: `Ok(true)` once it is
    /// written whole (the flusher moves on), `Ok(false)` while its writes
    /// are in flight (the flusher looks again at the next pass).
    pub(crate) fn flusher_step(&mut self, file: FileId) -> Result<bool, Errno> {
        let mut writeback = match self.writebacks.flusher.take() {
            Some(w) if w.file == file => w,
            _ => Writeback::of(file),
        };
        let step = self.advance(&mut writeback);
        if step == Ok(WritebackStep::WaitForDisk) {
            self.writebacks.flusher = Some(writeback);
        }
        step.map(|s| s == WritebackStep::Done)
    }
}
