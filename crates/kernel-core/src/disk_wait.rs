//! Disk requests that run without the kernel lock: the write-backs of
//! `fsync`, `msync(MS_SYNC)`, `sys_munmap`, the last `close` and the
//! flusher, and the reads of page faults, for files on the disk volume.
//! A `sys_munmap` writes its mapping's pages so before the mapping goes
//! ([`Kernel::unmap_step`]), the mapping marked as being unmapped
//! meanwhile: other calls that would change it wait
//! ([`SchedulerCall::AwaitUnmap`]).
//!
//! A write-back goes in batches, each in three steps: under the kernel
//! lock the page cache copies a batch of dirty runs out
//! ([`neoos_mm::MemorySystem::file_gather_dirty`]), the volume places them (holes
//! allocated, their metadata changes left dirty in its cache for the sync;
//! the metadata placing reads, when not cached, read first without the
//! lock: [`Kernel::metadata_to_place_first`]) and the device is given one
//! write per extent, which it keeps with its buffer until done; then the
//! writer waits without the lock (a thread blocks in
//! [`crate::process::ThreadState::WaitingForDisk`] and others run; the
//! flusher simply looks again at the next scheduler pass); once the
//! device has nothing in flight, under the lock again: a failed write
//! fails the write-back (`Io`, every page still dirty), else the next
//! batch starts. After the last, the volume syncs in two more such steps,
//! each started under the lock and waited for without it: the writes of
//! the metadata it deferred (the file's times, the placing's allocations),
//! then the device's flush;
//! only then do the pages not marked dirty again since they were copied
//! become clean ([`neoos_mm::MemorySystem::clean_written`]). The device
//! only counts failed requests; the write-back that started them is told
//! (`DiskFailures`), whichever steps first once the disk is idle.
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
//!
//! Read faults ([`Kernel::resolve_fault_step`]): a fault that misses a
//! page of a volume file gets the mapping core's planned read
//! ([`neoos_mm::PlannedRead`]: the pages marked "being read" in their
//! object), whose device reads are started at once when nothing is in
//! flight, else at the first scheduler pass that finds the disk idle; the
//! faulting thread (and any other that faults on those pages) waits for
//! the disk and then faults again from scratch. When the device gives the
//! last of a run's reads back (collected by [`Kernel::disk_step`]) the
//! pages are installed, or on a failure only unmarked, and each waiting
//! thread gets the error for its retry (a bus error). Reads never run
//! with writes (the ordering rule above), only with other reads. A thread
//! killed while it waits leaves its read to finish for the page cache,
//! and no frame behind: they are taken when the read is installed.

use alloc::collections::BTreeMap;

use alloc::vec::Vec;

use neoos_mm::{Access, DirtyFiles, Errno, FaultError, FileId, GatheredRuns, PlannedRead};

use crate::kernel::{FatalFault, Kernel};
use crate::mount::is_volume_file;
use crate::platform::Platform;
use crate::process::{ProcessTable, Tid};
use crate::syscall::{Completion, SchedulerCall};

/// Most runs one batch carries (the virtio queue's 16 descriptors; 5
/// writes fit on it at once, and the volume's device keeps the rest and
/// sends them as those finish: `crate::device_queue`, docs/design.md,
/// "Requests").
pub const BATCH_RUNS: usize = 16;
/// Most pages one batch carries (1 MiB of buffers).
pub const BATCH_PAGES: usize = 256;
/// Pages one step of a `read` covers (one read-ahead run, 128 KiB).
pub const READ_WINDOW: u64 = neoos_mm::READ_AHEAD_PAGES;
const PAGE: u64 = neoos_mm::PAGE_SIZE;

/// A write-back of one file (or of its pages in a range) under way.
#[derive(Debug)]
pub struct Writeback {
    /// Its number once it has started requests (0: none yet): the
    /// device's failures are counted to it ([`DiskFailures`]).
    id: u64,
    file: FileId,
    /// The page index the next batch is gathered from.
    next: u64,
    /// The page index the write-back ends before.
    end: u64,
    /// The batch whose writes were started, until they are done.
    batch: Option<GatheredRuns>,
    /// The pages of the batches written since the volume last synced:
    /// clean once it has (one sync per write-back, after its last batch;
    /// one between two batches when their objects differ:
    /// [`SyncKind::Between`]).
    unsynced: Option<GatheredRuns>,
    /// The batch written whose pages become [`Self::unsynced`] once the
    /// sync between it and those before is done.
    after_sync: Option<GatheredRuns>,
    /// The write-back's closing sync, once started: its requests wait
    /// without the lock as the batches' writes do.
    syncing: Option<Syncing>,
    /// How many times the next batch waited for the metadata its placing
    /// reads ([`Kernel::metadata_to_place_first`]).
    metadata_rounds: u8,
}

/// Where a write-back's sync is: the volume's deferred metadata writes in
/// flight, then the device's flush.
#[derive(Debug)]
enum Syncing {
    Metadata {
        written: neoos_ext2::MetadataWrites,
        kind: SyncKind,
    },
    Flush(SyncKind),
}

/// What a write-back's sync is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SyncKind {
    /// After its last batch: the metadata writes, the flush, then the
    /// pages written are clean and the write-back is done.
    Closing,
    /// Between two batches, more than [`MIDWAY_DIRTY_BLOCKS`] blocks
    /// dirty: the metadata writes alone, then the batches go on.
    Midway,
    /// Between two batches whose objects differ, or when the heap refused
    /// the longer list of pages to clean (rare): the metadata writes, the
    /// flush, the pages written so far clean, then the batches go on.
    Between,
}

/// Metadata blocks left dirty by the placing of a write-back's batches
/// (holes allocated) beyond which they are written before the next batch
/// (after the data of those before): half the volume's metadata cache (32
/// blocks), whose dirty blocks are never evicted, so that the next
/// placing and its forecast's reads find room (a block the cache has no
/// room for is written at once, under the lock).
const MIDWAY_DIRTY_BLOCKS: usize = 16;

impl Writeback {
    fn of(file: FileId) -> Self {
        Self::of_pages(file, 0, u64::MAX)
    }

    fn of_pages(file: FileId, first: u64, end: u64) -> Self {
        Writeback {
            id: 0,
            file,
            next: first,
            end,
            batch: None,
            unsynced: None,
            after_sync: None,
            syncing: None,
            metadata_rounds: 0,
        }
    }
}

/// A thread's `sys_munmap` whose mapping's dirty pages are being written
/// ([`Kernel::unmap_step`]): the mapping stays marked as being unmapped
/// until the call ends.
#[derive(Debug)]
struct CallUnmap {
    pid: crate::process::Pid,
    addr: u64,
    size: i64,
    writeback: Writeback,
}

/// A thread's write-back call under way: its files, the one being
/// written, and the first error met.
#[derive(Debug)]
struct CallWriteback {
    files: DirtyFiles,
    done: usize,
    current: Option<Writeback>,
    result: Result<(), Errno>,
    /// A closed descriptor's reference to this file, dropped once the
    /// write-back is over (a last close: [`Kernel::begin_closing_writeback`]).
    closing: Option<FileId>,
}

/// A thread's Linux `sync`: where the next group of dirty files is
/// looked for (after this file).
#[derive(Debug)]
struct CallSync {
    after: Option<FileId>,
}

/// What the next step of a write-back is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritebackStep {
    /// Writes are in flight: wait until the disk has none, then step again.
    WaitForDisk,
    /// Every dirty page of the file has been written.
    Done,
}

/// The write-backs under way: each thread's call, and the flusher's; and
/// the reads of faults.
#[derive(Debug, Default)]
pub struct Writebacks {
    threads: BTreeMap<Tid, CallWriteback>,
    unmaps: BTreeMap<Tid, CallUnmap>,
    syncs: BTreeMap<Tid, CallSync>,
    pub(crate) flusher: Option<Writeback>,
    pub(crate) reads: FaultReads,
    failures: DiskFailures,
    pub(crate) metadata: crate::metadata_reads::MetadataReads,
    /// The calls whose user memory access waits for a page's read
    /// (`crate::user_reads`).
    pub(crate) user_pages: crate::user_reads::UserPageWaits,
}

/// Whose the device's failed started requests are. The device only counts
/// them; the requests in flight are always one write-back's (each starts
/// its requests only when none is in flight), so the count is that
/// write-back's, even when another steps first once the disk is idle
/// and starts its own: the count is then set aside for the first.
#[derive(Debug, Default)]
struct DiskFailures {
    /// The write-back that started the requests in flight (or last).
    owner: u64,
    /// Failures set aside for write-backs that have not looked yet.
    set_aside: BTreeMap<u64, u64>,
    last_id: u64,
}

/// A fault's read of a run of pages, until it is installed.
#[derive(Debug)]
struct RunRead {
    planned: PlannedRead,
    /// The run's bytes, filled as its device reads finish.
    data: Vec<u8>,
    /// Device reads in flight (0 before they are started).
    in_flight: usize,
    started: bool,
    failed: bool,
    /// How many times it waited for the metadata locating its blocks
    /// reads ([`Kernel::metadata_to_locate_first`]).
    metadata_rounds: u8,
    /// The threads whose faults wait for it.
    waiters: Vec<Tid>,
}

/// The reads of faults under way, by read number; the device read tags,
/// to their read and the offset of their bytes; and the errors waiting
/// threads get at their retry.
#[derive(Debug, Default)]
pub(crate) struct FaultReads {
    runs: BTreeMap<u64, RunRead>,
    tags: BTreeMap<u64, (u64, usize)>,
    pub(crate) last_tag: u64,
    pub(crate) failed_waiters: BTreeMap<Tid, FaultError>,
}

impl<P: Platform> Kernel<P> {
    /// Starts the caller's write-back of `files` (`fsync`, `msync`): the
    /// scheduler side steps it ([`Self::writeback_step`]).
    pub(crate) fn begin_writeback(
        &mut self,
        pid: crate::process::Pid,
        files: DirtyFiles,
    ) -> SchedulerCall {
        self.begin_writeback_closing(pid, files, None)
    }

    /// [`Self::begin_writeback`], dropping the file reference `closing`
    /// once it is over.
    fn begin_writeback_closing(
        &mut self,
        pid: crate::process::Pid,
        files: DirtyFiles,
        closing: Option<FileId>,
    ) -> SchedulerCall {
        let tid = self.caller_tid(pid);
        self.writebacks.threads.insert(
            tid,
            CallWriteback {
                files,
                done: 0,
                current: None,
                result: Ok(()),
                closing,
            },
        );
        SchedulerCall::WriteBack
    }

    /// The close of descriptor `fd` of process `pid`, of volume file
    /// `file`, that drops the last reference to its dirty pages: the
    /// descriptor goes now, and the reference once the file is written
    /// back by the scheduler side ([`Self::writeback_step`]) in batches
    /// whose waits hold no lock (the pages stored to meanwhile, if still
    /// the last reference, written under the lock as before).
    pub(crate) fn begin_closing_writeback(
        &mut self,
        pid: crate::process::Pid,
        fd: i64,
        file: FileId,
    ) -> Result<SchedulerCall, Errno> {
        let p = self.processes.get_mut(pid).ok_or(Errno::Inval)?;
        p.files.take(fd)?;
        let mut files = DirtyFiles::default();
        files.note(file);
        Ok(self.begin_writeback_closing(pid, files, Some(file)))
    }

    /// Drops the reference a closing write-back held, as a close does
    /// (the object goes with its last reference).
    fn end_closing(&mut self, file: FileId) -> Result<(), Errno> {
        let closed = self.file_io().close_ref(file);
        self.reap_released_orphans();
        closed
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
        if let Some(file) = call.closing {
            call.result = call.result.and(self.end_closing(file));
        }
        Some(call.result)
    }

    /// Starts the caller's Linux `sync`: the scheduler side steps it
    /// ([`Self::sync_step`]).
    pub(crate) fn begin_sync(&mut self, pid: crate::process::Pid) -> SchedulerCall {
        let tid = self.caller_tid(pid);
        self.writebacks.syncs.insert(tid, CallSync { after: None });
        SchedulerCall::Sync
    }

    /// One step of thread `tid`'s (of process `pid`) Linux `sync`: the
    /// cached files with dirty pages are written back in groups of
    /// [`DirtyFiles::CAPACITY`] in file order, each group as `fsync`
    /// writes its file (volume files in batches whose waits hold no lock:
    /// `None` while writes are in flight). A file dirtied again behind the
    /// walk is not visited again (it was written when `sync` passed it, or
    /// is newer than the call). Then the kept files now clean are let go.
    /// Errors are not reported (Linux's `sync` reports none): the pages of
    /// a failed write stay dirty.
    pub fn sync_step(&mut self, pid: crate::process::Pid, tid: Tid) -> Option<Result<(), Errno>> {
        loop {
            if self.writebacks.threads.contains_key(&tid) {
                let _ = self.writeback_step(tid)?;
            }
            let Some(call) = self.writebacks.syncs.get_mut(&tid) else {
                return Some(Err(Errno::Inval));
            };
            let mut files = DirtyFiles::default();
            let mut after = call.after;
            while files.as_slice().len() < DirtyFiles::CAPACITY {
                let Some((file, _)) = self.memory.next_cached_file(after) else {
                    break;
                };
                after = Some(file);
                if self.memory.file_has_dirty(file) {
                    files.note(file);
                }
            }
            call.after = after;
            if files.as_slice().is_empty() {
                self.writebacks.syncs.remove(&tid);
                self.release_clean_kept();
                return Some(Ok(()));
            }
            self.begin_writeback(pid, files);
        }
    }

    /// Lets go every kept file that is clean (or held elsewhere).
    fn release_clean_kept(&mut self) {
        let mut after = None;
        while self.memory.kept_file_count() > 0 {
            let Some((file, _)) = self.memory.next_cached_file(after) else {
                break;
            };
            after = Some(file);
            if self.memory.file_kept(file) {
                let (memory, mut io) = self.memory_io();
                let _ = memory.file_release_kept(&mut io, file);
            }
        }
        self.reap_released_orphans();
    }

    /// Moves `writeback` on: finishes its batch once the disk is done
    /// with it, then starts the next one; after the last, its sync (the
    /// deferred metadata writes, then the device's flush), each started
    /// and waited for as a batch is.
    fn advance(&mut self, writeback: &mut Writeback) -> Result<WritebackStep, Errno> {
        loop {
            if self.fs.disk.requests_in_flight() {
                return Ok(WritebackStep::WaitForDisk);
            }
            if let Some(syncing) = writeback.syncing.take() {
                if self.volume_sync_step(writeback, syncing)? {
                    return Ok(WritebackStep::Done);
                }
                continue;
            }
            if let Some(batch) = writeback.batch.take() {
                self.finish_batch(writeback, batch)?;
                if writeback.syncing.is_some() {
                    continue;
                }
            }
            if self.fs.disk.dirty_metadata_blocks() > MIDWAY_DIRTY_BLOCKS {
                self.start_metadata_writes_of(writeback, SyncKind::Midway)?;
                continue;
            }
            // The inode's block first: gathering stores a grown length
            // (`Pager::set_len`), which reads it.
            if self.metadata_to_place_first(writeback, &[]) {
                return Ok(WritebackStep::WaitForDisk);
            }
            // A grown length's changes (the inode, the superblock's
            // large-file flag) stay dirty for the sync, its flush too.
            let defers = !self.fs.disk.defers_flushes();
            if defers {
                self.fs.disk.defer_flushes();
            }
            let (memory, mut io) = self.memory_io();
            let gathered = memory.file_gather_dirty(
                &mut io,
                writeback.file,
                (writeback.next, writeback.end),
                BATCH_RUNS,
                BATCH_PAGES,
            );
            if defers {
                // Owed to the sync that follows the batch.
                self.fs.disk.take_owed_flush();
            }
            let mut batch = match gathered {
                Ok(Some(batch)) => batch,
                Ok(None) if writeback.unsynced.is_none() => return Ok(WritebackStep::Done),
                Ok(None) => {
                    self.start_metadata_writes_of(writeback, SyncKind::Closing)?;
                    continue;
                }
                // No heap for the buffers: written the old way, which needs none.
                Err(Errno::NoMem) => {
                    let (memory, mut io) = self.memory_io();
                    return memory
                        .file_sync(&mut io, writeback.file)
                        .map(|()| WritebackStep::Done);
                }
                Err(e) => return Err(e),
            };
            if self.metadata_to_place_first(writeback, &batch.runs) {
                // The batch goes (nothing was marked): gathered again,
                // as the pages are then, once the metadata is cached.
                return Ok(WritebackStep::WaitForDisk);
            }
            writeback.metadata_rounds = 0;
            self.claim_disk(writeback);
            self.fs
                .disk
                .start_run_writes(writeback.file, core::mem::take(&mut batch.runs))
                .map_err(|_| Errno::Io)?;
            writeback.next = batch.next;
            writeback.batch = Some(batch);
            return Ok(WritebackStep::WaitForDisk);
        }
    }

    /// Whether placing the batch `runs` of `writeback` (the disk has
    /// nothing in flight) waits for metadata blocks first: those its
    /// placing would read that are not cached ([`crate::mount::Storage::blocks_to_place`])
    /// have their device reads started (cached as they finish, as a
    /// namespace call's: `crate::metadata_reads`), and the write-back
    /// waits for the disk without the lock, then gathers its batch again.
    /// At most [`crate::metadata_reads::MOST_ROUNDS`] times a batch; then
    /// it is placed as it is, what is missing read under the lock as
    /// before. `false`: place it now.
    fn metadata_to_place_first(
        &mut self,
        writeback: &mut Writeback,
        runs: &[(u64, Vec<u8>)],
    ) -> bool {
        use crate::metadata_reads::{MOST_BLOCKS, MOST_ROUNDS};
        while writeback.metadata_rounds < MOST_ROUNDS {
            let missing = self
                .fs
                .disk
                .blocks_to_place(writeback.file, runs, MOST_BLOCKS);
            if missing.is_empty() {
                return false;
            }
            writeback.metadata_rounds += 1;
            if self.start_metadata_reads(&missing) {
                return true;
            }
            // Read at once (a device whose reads do not wait): look again.
        }
        false
    }

    /// `writeback` is to start requests (the disk has none in flight): the
    /// failures of the requests before are set aside for their write-back
    /// (dropped when it is gone), and those to come are this one's.
    fn claim_disk(&mut self, writeback: &mut Writeback) {
        self.claim_disk_for(&mut writeback.id);
    }

    /// [`Self::claim_disk`] for the requests numbered `*id` (a number
    /// given when 0).
    pub(crate) fn claim_disk_for(&mut self, id: &mut u64) {
        let failures = &mut self.writebacks.failures;
        if *id == 0 {
            failures.last_id += 1;
            *id = failures.last_id;
        }
        let failed = self.fs.disk.take_failed_writes();
        if failed != 0 && failures.owner != *id {
            *failures.set_aside.entry(failures.owner).or_default() += failed;
        }
        failures.owner = *id;
    }

    /// Whether a request `writeback` started failed (the disk has none in
    /// flight): its failures are taken.
    fn requests_failed(&mut self, writeback: &Writeback) -> bool {
        self.requests_failed_for(writeback.id)
    }

    /// [`Self::requests_failed`] for the requests numbered `id`.
    pub(crate) fn requests_failed_for(&mut self, id: u64) -> bool {
        let failed = self.fs.disk.take_failed_writes();
        let failures = &mut self.writebacks.failures;
        if failed != 0 && failures.owner != id {
            *failures.set_aside.entry(failures.owner).or_default() += failed;
        }
        let own = if failures.owner == id { failed } else { 0 };
        let aside = failures.set_aside.remove(&id).unwrap_or(0);
        id != 0 && own + aside != 0
    }

    /// Drops the failures set aside for write-backs that are gone.
    fn drop_gone_failures(&mut self) {
        let w = &mut self.writebacks;
        if w.failures.set_aside.is_empty() {
            return;
        }
        let (threads, unmaps, flusher) = (&w.threads, &w.unmaps, &w.flusher);
        let flushes = &w.metadata.flushes;
        let live = |id: &u64| {
            let mut writebacks = threads.values().filter_map(|c| c.current.as_ref());
            writebacks.any(|wb| wb.id == *id)
                || unmaps.values().any(|c| c.writeback.id == *id)
                || flusher.as_ref().is_some_and(|wb| wb.id == *id)
                || flushes.values().any(|flush| flush.id == *id)
        };
        w.failures.set_aside.retain(|id, _| live(id));
    }

    /// Starts a sync of `writeback` of `kind` (the disk has nothing in
    /// flight): the volume's deferred metadata writes (those the queue
    /// takes).
    fn start_metadata_writes_of(
        &mut self,
        writeback: &mut Writeback,
        kind: SyncKind,
    ) -> Result<(), Errno> {
        self.claim_disk(writeback);
        let (written, result) = self.fs.disk.start_sync_writes(writeback.file);
        writeback.syncing = Some(Syncing::Metadata { written, kind });
        result.map_err(|_| Errno::Io)
    }

    /// The next step of `writeback`'s sync, the requests of the last one
    /// done (the disk has nothing in flight): once the metadata is
    /// written, the device's flush is started (not midway); once that is
    /// done, the pages written are clean (`Ok(true)` after the closing
    /// one; between two batches the pages of the batch after become those
    /// to clean next). A failed request fails the write-back with `Io`,
    /// every page of it still dirty (and the metadata still pending).
    fn volume_sync_step(
        &mut self,
        writeback: &mut Writeback,
        syncing: Syncing,
    ) -> Result<bool, Errno> {
        let failed = self.requests_failed(writeback);
        match syncing {
            Syncing::Metadata { written, kind } => {
                let (more, none) = (written.more(), written.is_empty());
                self.fs.disk.end_sync_writes(written, !failed);
                if failed {
                    return Err(Errno::Io);
                }
                if more && !none {
                    // The blocks the device had no room to keep (the
                    // heap refused: `crate::device_queue`).
                    self.start_metadata_writes_of(writeback, kind)?;
                    return Ok(false);
                }
                if more {
                    // No room with nothing in flight: written at once.
                    self.fs.disk.flush_dirty_metadata().map_err(|_| Errno::Io)?;
                }
                if kind == SyncKind::Midway {
                    return Ok(false);
                }
                writeback.syncing = Some(Syncing::Flush(kind));
                self.claim_disk(writeback);
                self.fs.disk.start_flush().map_err(|_| Errno::Io)?;
                Ok(false)
            }
            Syncing::Flush(_) if failed => Err(Errno::Io),
            Syncing::Flush(kind) => {
                if let Some(written) = writeback.unsynced.take() {
                    self.memory.clean_written(&written);
                }
                writeback.unsynced = writeback.after_sync.take();
                Ok(kind == SyncKind::Closing)
            }
        }
    }

    /// NeoOS `sys_munmap(addr, size)` of process `pid`: made at once
    /// unless its mapping shows a volume file with dirty pages in it; then
    /// the mapping is marked as being unmapped and its pages are written
    /// by the scheduler side ([`Self::unmap_step`]) in batches whose waits
    /// hold no lock, before it goes.
    pub(crate) fn neo_munmap_call(
        &mut self,
        pid: crate::process::Pid,
        addr: u64,
        size: i64,
    ) -> Completion {
        let begun = self.with_space(pid, |m, s, hw| {
            m.neo_munmap_begin(s, hw, addr, size, is_volume_file)
        });
        let write = match begun {
            Ok(Some(write)) => write,
            Ok(None) => return Completion::Done(Ok(0)),
            Err(Errno::BeingUnmapped) => return Completion::Scheduler(SchedulerCall::AwaitUnmap),
            Err(e) => return Completion::Done(Err(e)),
        };
        let tid = self.caller_tid(pid);
        let writeback = Writeback::of_pages(write.file, write.first_page, write.end_page);
        let call = CallUnmap {
            pid,
            addr,
            size,
            writeback,
        };
        self.writebacks.unmaps.insert(tid, call);
        Completion::Scheduler(SchedulerCall::NeoMunmap)
    }

    /// One step of thread `tid`'s `sys_munmap` ([`Self::neo_munmap_call`]):
    /// `None` while writes are in flight (the thread blocks for the disk
    /// in the same lock section and steps again once woken); else its
    /// result: once the pages are written, the mapping goes under the lock
    /// (the pages stored to meanwhile written there first); on a failed
    /// write `Io`, the mapping left as it was with its unwritten pages
    /// dirty.
    pub fn unmap_step(&mut self, tid: Tid) -> Option<Result<(), Errno>> {
        let Some(mut call) = self.writebacks.unmaps.remove(&tid) else {
            return Some(Err(Errno::Inval));
        };
        let result = match self.advance(&mut call.writeback) {
            Ok(WritebackStep::WaitForDisk) => {
                self.writebacks.unmaps.insert(tid, call);
                return None;
            }
            Ok(WritebackStep::Done) => self.with_space(call.pid, |m, s, hw| {
                m.neo_munmap_finish(s, hw, call.addr, call.size)
            }),
            Err(e) => {
                self.abandon_unmap(&call);
                Err(e)
            }
        };
        self.reap_released_orphans();
        Some(result)
    }

    /// The mapping of `call` is no longer being unmapped.
    fn abandon_unmap(&mut self, call: &CallUnmap) {
        if let Ok(space) = self.space_of(call.pid) {
            self.memory.neo_munmap_abandon(space, call.addr);
        }
    }

    /// After a batch's writes are done: `Io` if one failed (its pages
    /// stay dirty, and those of the batches before it not synced yet),
    /// else its pages join those to clean at the sync. The batches before
    /// are synced first when the heap refuses the longer list, or when the
    /// file's object changed meanwhile: that sync is started
    /// ([`SyncKind::Between`]) and waited for as the closing one.
    fn finish_batch(
        &mut self,
        writeback: &mut Writeback,
        batch: GatheredRuns,
    ) -> Result<(), Errno> {
        if self.requests_failed(writeback) {
            return Err(Errno::Io);
        }
        if let Some(unsynced) = &mut writeback.unsynced {
            let joins = unsynced.object == batch.object
                && unsynced.pages.try_reserve(batch.pages.len()).is_ok();
            if joins {
                unsynced.pages.extend_from_slice(&batch.pages);
                return Ok(());
            }
            // The batches before synced first, without the lock: this
            // one's pages are to clean after the next sync.
            writeback.after_sync = Some(batch);
            return self.start_metadata_writes_of(writeback, SyncKind::Between);
        }
        writeback.unsynced = Some(batch);
        Ok(())
    }

    /// The clock's work for the disk (every scheduler pass): once the disk
    /// has no write in flight, the threads waiting for it are readied, and
    /// records of threads gone are dropped.
    pub fn disk_step(&mut self) {
        while let Some(tid) = gone_thread(&self.processes, &self.writebacks.threads) {
            let call = self.writebacks.threads.remove(&tid);
            if let Some(file) = call.and_then(|c| c.closing) {
                let _ = self.end_closing(file);
            }
        }
        while let Some(tid) = gone_thread(&self.processes, &self.writebacks.syncs) {
            self.writebacks.syncs.remove(&tid);
        }
        while let Some(tid) = gone_thread(&self.processes, &self.writebacks.unmaps) {
            if let Some(call) = self.writebacks.unmaps.remove(&tid) {
                self.abandon_unmap(&call);
            }
        }
        if !self.writebacks.reads.failed_waiters.is_empty() {
            let processes = &self.processes;
            self.writebacks
                .reads
                .failed_waiters
                .retain(|&tid, _| processes.thread(tid).is_some());
        }
        self.drop_gone_failures();
        self.drop_gone_metadata_waiters();
        self.drop_gone_user_page_waits();
        self.collect_finished_reads();
        let reads_to_start = !self.writebacks.reads.runs.is_empty();
        let waiting = self.processes.any_waiting_for_disk();
        if !(waiting || reads_to_start) || self.fs.disk.requests_in_flight() {
            return;
        }
        if waiting {
            self.processes.wake_disk_waiters();
        }
        self.start_waiting_reads();
    }

    /// Resolves a page fault of process `pid` (thread `tid`) at `address`,
    /// its disk reads deferred: `None` when the thread is to wait for the
    /// disk (in the same lock section) and fault again once woken; else
    /// the fault's end, a read that failed while it waited included.
    #[inline]
    pub fn resolve_fault_step(
        &mut self,
        pid: crate::process::Pid,
        tid: Tid,
        address: u64,
        access: Access,
    ) -> Option<Result<(), FatalFault>> {
        // Twice at most: a read done at once (nothing in flight on the
        // device, or a run of holes) is installed before the retry.
        for _ in 0..2 {
            if !self.writebacks.reads.failed_waiters.is_empty() {
                if let Some(error) = self.writebacks.reads.failed_waiters.remove(&tid) {
                    return Some(Err(FatalFault::of(error)));
                }
            }
            // Waits while only the flusher's writes of reclaim's dirty
            // pages can give frames back (`reclaim.rs`).
            if crate::reclaim::frames_low(&self.platform) && self.reclaim_or_wait(0) {
                return None;
            }
            let Some((memory, space, mut hw)) = self.hw_for(pid) else {
                return Some(Ok(()));
            };
            let read =
                match memory.handle_fault_deferring_reads_again(space, &mut hw, address, access) {
                    Ok(()) => return Some(Ok(())),
                    Err(FaultError::WaitForRead) => memory.read_waited_for(),
                    Err(error) => return Some(Err(FatalFault::of(error))),
                };
            if let Some(planned) = self.memory.take_planned_read() {
                self.begin_read(planned);
            }
            match self.join_read(read, tid) {
                Ok(true) => return None,
                Ok(false) => continue,
                Err(error) => return Some(Err(FatalFault::of(error))),
            }
        }
        None
    }

    /// Thread `tid` waits for read `read`: `Ok(false)` when it is over
    /// already (installed at once: look again now).
    pub(crate) fn join_read(&mut self, read: u64, tid: Tid) -> Result<bool, FaultError> {
        let Some(run) = self.writebacks.reads.runs.get_mut(&read) else {
            return Ok(false);
        };
        if !run.waiters.contains(&tid) {
            run.waiters.try_reserve(1).map_err(|_| FaultError::NoMem)?;
            run.waiters.push(tid);
        }
        Ok(true)
    }

    /// One step of thread `tid`'s `read` of descriptor `fd` of process
    /// `pid` (a volume file; `count` bytes to `buf`; from its position,
    /// or from offset `at` for a `pread64`, the position then kept): at
    /// most the bytes up to the end of the [`READ_WINDOW`] pages from
    /// there. `None` when a page of them is to be read first: the thread
    /// waits for the disk (in the same lock section) and steps again once
    /// woken. Else the bytes read (copied as a `read` copies, under the
    /// lock) and how many were asked in this step (fewer read: the end of
    /// the file).
    pub fn file_read_step(
        &mut self,
        pid: crate::process::Pid,
        tid: Tid,
        fd: i64,
        buf: crate::syscall::UserPtr,
        count: usize,
        at: Option<u64>,
    ) -> Option<Result<(usize, usize), Errno>> {
        let file = match self.descriptor(pid, fd) {
            Ok(crate::files::Descriptor::File(f)) => Some(f),
            _ => None,
        };
        let from = file.map(|f| at.unwrap_or(f.position));
        if let Some(error) = self.user_page_read_result(tid) {
            return Some(Err(error));
        }
        for _ in 0..2 {
            if let Some(error) = self.writebacks.reads.failed_waiters.remove(&tid) {
                return Some(Err(error.to_errno()));
            }
            let want = read_window(from, count);
            let read = match self.plan_file_reads(pid, fd, from, want) {
                Ok(Some(read)) => read,
                Ok(None) => break,
                Err(error) => return Some(Err(error)),
            };
            match self.join_read(read, tid) {
                Ok(true) => return None,
                Ok(false) => continue,
                Err(error) => return Some(Err(error.to_errno())),
            }
        }
        let want = read_window(from, count);
        self.writebacks.user_pages.continuable = true;
        let read = match (file, at) {
            (Some(f), Some(offset)) => {
                self.at_offset(pid, fd, f, offset, |k| k.read(pid, fd, buf, want as i64))
            }
            _ => self.read(pid, fd, buf, want as i64),
        };
        self.writebacks.user_pages.continuable = false;
        let stopped = core::mem::take(&mut self.writebacks.user_pages.stopped);
        // A page of the buffer is being read (`crate::user_reads`): wait;
        // or, the window copied up to a chunk whose page is, go on from
        // there (the next step waits for it).
        match read {
            Err(Errno::WaitForRead) => None,
            Ok(n) if stopped => Some(Ok((n as usize, n as usize))),
            read => Some(read.map(|n| (n as usize, want))),
        }
    }

    /// One step of thread `tid`'s `write` of `count` bytes from `buf` to
    /// descriptor `fd` of process `pid` (a volume file; from its position,
    /// its end with `O_APPEND`, or from offset `at` for a `pwrite64`, the
    /// position then kept): `None` while a page the write covers only in
    /// part (its first or its last) is being read from the disk: the
    /// thread waits (in the same lock section) and steps again once woken.
    /// Else the write's result, made under the lock as a `write` always
    /// was (the pages it covers whole are not read). A failed read of the
    /// first such page gives `Io` with nothing written and the position
    /// kept; of the last, the bytes before that page are written (the
    /// short count the read's failure under the lock gave). Reclaim leaves
    /// those pages while the step runs (its own reclaim, the write's
    /// chunks'), so the write never reads one again under the lock.
    pub fn file_write_step(
        &mut self,
        pid: crate::process::Pid,
        tid: Tid,
        fd: i64,
        buf: crate::syscall::UserPtr,
        count: i64,
        at: Option<u64>,
    ) -> Option<Result<i64, Errno>> {
        let partial = self.partial_write_pages(pid, fd, count, at);
        if let Some((file, _, pages)) = partial {
            self.memory.keep_for_write(file, pages);
        }
        let step = self.file_write_step_kept(pid, tid, fd, buf, count, at, partial);
        self.memory.release_kept_for_write();
        step
    }

    /// [`Self::file_write_step`], the pages it covers in part (`partial`)
    /// kept from reclaim.
    #[allow(clippy::too_many_arguments)]
    fn file_write_step_kept(
        &mut self,
        pid: crate::process::Pid,
        tid: Tid,
        fd: i64,
        buf: crate::syscall::UserPtr,
        count: i64,
        at: Option<u64>,
        partial: Option<(FileId, u64, [Option<u64>; 2])>,
    ) -> Option<Result<i64, Errno>> {
        // The write's chunks reclaim under the lock: with the flusher
        // writing reclaim's dirty pages and too few frames for the write
        // above the critical mark, it waits for the disk first (`reclaim.rs`).
        let pages = u64::try_from(count).unwrap_or(0) / PAGE + 2;
        let pages = pages.min(crate::reclaim::RECLAIM_BATCH as u64);
        if crate::reclaim::frames_low(&self.platform) && self.reclaim_or_wait(pages) {
            return None;
        }
        if let Some(error) = self.user_page_read_result(tid) {
            return Some(Err(error));
        }
        if let Some(error) = self.writebacks.reads.failed_waiters.remove(&tid) {
            if let Some((file, start, [first, last])) = partial {
                let unread = |p: Option<u64>| p.filter(|&p| self.memory.file_page_to_read(file, p));
                if unread(first).is_some() {
                    return Some(Err(error.to_errno()));
                }
                if let Some(page) = unread(last) {
                    let before = (page * PAGE).saturating_sub(start);
                    return match before {
                        0 => Some(Err(error.to_errno())),
                        n => waiting_for_user_page(self.write_now(pid, fd, buf, n as i64, at)),
                    };
                }
            }
        } else if let Some((file, _, pages)) = partial {
            let mut waits = false;
            for page in pages.into_iter().flatten() {
                let read = match self.plan_page_read(file, page) {
                    Ok(Some(read)) => read,
                    // Cached (or read at once), or a read that cannot be
                    // planned: the write itself reads it, under the lock.
                    Ok(None) | Err(_) => continue,
                };
                // `false`: read and installed at once.
                match self.join_read(read, tid) {
                    Ok(joined) => waits |= joined,
                    Err(error) => return Some(Err(error.to_errno())),
                }
            }
            if waits {
                return None;
            }
        }
        waiting_for_user_page(self.write_now(pid, fd, buf, count, at))
    }

    /// The file a `write` of `count` bytes through descriptor `fd` of
    /// `pid` (at `at`, else where the descriptor writes) goes to, where it
    /// starts, and the pages it covers only in part (its first, its last):
    /// `None` when it is no write of a volume file that could be accepted
    /// (it then reads nothing first).
    fn partial_write_pages(
        &mut self,
        pid: crate::process::Pid,
        fd: i64,
        count: i64,
        at: Option<u64>,
    ) -> Option<(FileId, u64, [Option<u64>; 2])> {
        let Ok(crate::files::Descriptor::File(f)) = self.descriptor(pid, fd) else {
            return None;
        };
        let count = u64::try_from(count).ok().filter(|&c| c > 0)?;
        let f = match at {
            Some(offset) => crate::files::OpenFile {
                position: offset,
                append: false,
                ..f
            },
            None => f,
        };
        if !is_volume_file(f.file) || self.file_io().check_write_room(&f, count as usize).is_err() {
            return None;
        }
        let start = match f.append {
            true => self.memory.file_size(f.file).unwrap_or(f.position),
            false => f.position,
        };
        Some((f.file, start, pages_in_part(start, count)?))
    }

    /// Linux `writev` of `count` buffers at `iov` to descriptor `fd` of
    /// process `pid`, when it is a volume file: the pages its buffers
    /// write in part (each buffer is one `write`, [`Self::file_write_step`]'s
    /// first and last pages) that the cache lacks are read first, the
    /// caller waiting for the disk without the lock, and the call is made
    /// again ([`SchedulerCall::AwaitMetadata`]): at most
    /// [`WRITEV_READS_PER_ROUND`] a round, the rounds bounded by progress
    /// ([`Self::writev_wait`]). `None`: make it now (a page read meanwhile
    /// by no one, or after the rounds that lacked no fewer pages, read
    /// under the lock as before). A `writev` that would be refused reads
    /// nothing.
    pub(crate) fn writev_reads_first(
        &mut self,
        pid: crate::process::Pid,
        fd: i64,
        iov: crate::syscall::UserPtr,
        count: i64,
    ) -> Option<SchedulerCall> {
        let Ok(crate::files::Descriptor::File(f)) = self.descriptor(pid, fd) else {
            return None;
        };
        if !is_volume_file(f.file) || !f.access.can_write() {
            return None;
        }
        let buffers = self.read_buffers(pid, iov, count).ok()?;
        let total = buffers
            .iter()
            .fold(0usize, |sum, &(_, len)| sum.saturating_add(len));
        if self.file_io().check_write_room(&f, total).is_err() {
            return None;
        }
        let mut at = match f.append {
            true => self.memory.file_size(f.file).unwrap_or(f.position),
            false => f.position,
        };
        // Every buffer's pages; at most a queue's worth planned per round
        // (the rounds bound the call's work; "Requests").
        let (mut missing, mut planned, mut last) = (0usize, 0usize, None);
        for &(_, len) in buffers.iter() {
            let len = len as u64;
            for page in pages_in_part(at, len).into_iter().flatten().flatten() {
                if last == Some(page) || !self.memory.file_page_to_read(f.file, page) {
                    continue;
                }
                last = Some(page);
                missing += 1;
                if planned < WRITEV_READS_PER_ROUND
                    && matches!(self.plan_page_read(f.file, page), Ok(Some(_)))
                {
                    planned += 1;
                }
            }
            at = at.saturating_add(len);
        }
        let tid = self.caller_tid(pid);
        self.writev_wait(tid, planned > 0, missing)
    }

    /// Plans (and starts) the read of page `page` of volume file `file`
    /// unless it is cached: the read to wait for.
    fn plan_page_read(&mut self, file: FileId, page: u64) -> Result<Option<u64>, Errno> {
        loop {
            let (memory, mut io) = self.memory_io();
            let wait = memory.file_plan_read(&mut io, file, page * PAGE, 1)?;
            match self.memory.take_planned_read() {
                Some(planned) => self.begin_read(planned),
                None => return Ok(wait),
            }
        }
    }

    /// The write of a [`Self::file_write_step`], under the lock.
    fn write_now(
        &mut self,
        pid: crate::process::Pid,
        fd: i64,
        buf: crate::syscall::UserPtr,
        count: i64,
        at: Option<u64>,
    ) -> Result<i64, Errno> {
        match (self.descriptor(pid, fd), at) {
            (Ok(crate::files::Descriptor::File(f)), Some(offset)) => {
                self.at_offset(pid, fd, f, offset, |k| k.write(pid, fd, buf, count))
            }
            _ => self.write(pid, fd, buf, count),
        }
    }

    /// Plans (and starts) the reads of the absent pages of the `len` bytes
    /// from `from` of descriptor `fd` of a volume file: a read to wait
    /// for, or `None` when they are cached (or the descriptor is no such
    /// file).
    fn plan_file_reads(
        &mut self,
        pid: crate::process::Pid,
        fd: i64,
        from: Option<u64>,
        len: usize,
    ) -> Result<Option<u64>, Errno> {
        let (Ok(crate::files::Descriptor::File(f)), Some(from)) = (self.descriptor(pid, fd), from)
        else {
            return Ok(None);
        };
        if !is_volume_file(f.file) || !f.access.can_read() {
            return Ok(None);
        }
        loop {
            let (memory, mut io) = self.memory_io();
            let wait = memory.file_plan_read(&mut io, f.file, from, len as u64)?;
            match self.memory.take_planned_read() {
                Some(planned) => self.begin_read(planned),
                None => return Ok(wait),
            }
        }
    }

    /// Records a fault's planned read and starts it if the disk has
    /// nothing in flight (else [`Self::disk_step`] starts it once so).
    pub(crate) fn begin_read(&mut self, planned: PlannedRead) {
        let run = RunRead {
            planned,
            data: Vec::new(),
            in_flight: 0,
            started: false,
            failed: false,
            metadata_rounds: 0,
            waiters: Vec::new(),
        };
        self.writebacks.reads.runs.insert(planned.read, run);
        if !self.fs.disk.requests_in_flight() {
            self.start_read(planned.read);
        }
    }

    /// Starts the device reads of run `read`; installs it at once when
    /// none is left in flight (all read at once, or nothing to read).
    fn start_read(&mut self, read: u64) {
        if self.metadata_to_locate_first(read) {
            return;
        }
        let reads = &mut self.writebacks.reads;
        let Some(run) = reads.runs.get_mut(&read) else {
            return;
        };
        run.started = true;
        let p = run.planned;
        match self
            .fs
            .disk
            .start_run_read(p.file, p.first, p.count as usize, &mut reads.last_tag)
        {
            Ok(started) => {
                run.data = started.data;
                run.failed = started.failed;
                run.in_flight = started.in_flight.len();
                for (tag, at) in started.in_flight {
                    reads.tags.insert(tag, (read, at));
                }
            }
            Err(_) => run.failed = true,
        }
        if run.in_flight == 0 {
            self.install_read(read);
        }
    }

    /// Whether run `read` waits for metadata blocks before its reads are
    /// started: those locating its blocks would read that are not cached
    /// ([`crate::mount::Storage::blocks_to_locate`]: the inode's block,
    /// indirect blocks) have their device reads started (cached as they
    /// finish), and the run is left unstarted, for
    /// [`Self::start_waiting_reads`] once the disk is idle. At most
    /// [`crate::metadata_reads::MOST_ROUNDS`] times; then its blocks are
    /// located as they are, what is missing read under the lock as before.
    fn metadata_to_locate_first(&mut self, read: u64) -> bool {
        use crate::metadata_reads::{MOST_BLOCKS, MOST_ROUNDS};
        loop {
            let Some(run) = self.writebacks.reads.runs.get_mut(&read) else {
                return false;
            };
            if run.metadata_rounds >= MOST_ROUNDS {
                return false;
            }
            let p = run.planned;
            let missing =
                self.fs
                    .disk
                    .blocks_to_locate(p.file, p.first, p.count as usize, MOST_BLOCKS);
            if missing.is_empty() {
                return false;
            }
            run.metadata_rounds += 1;
            if self.start_metadata_reads(&missing) {
                return true;
            }
            // Read at once (a device whose reads do not wait): look again.
        }
    }

    /// Starts the reads planned while the disk was busy (it is idle now).
    fn start_waiting_reads(&mut self) {
        let waiting: Vec<u64> = self
            .writebacks
            .reads
            .runs
            .iter()
            .filter(|(_, run)| !run.started)
            .map(|(&read, _)| read)
            .collect();
        for read in waiting {
            self.start_read(read);
        }
    }

    /// Takes the device reads that finished into their runs, and installs
    /// each run whose last read that was.
    pub(crate) fn collect_finished_reads(&mut self) {
        if self.writebacks.reads.tags.is_empty() && self.writebacks.metadata.in_flight.is_empty() {
            return;
        }
        while let Some((tag, result)) = self.fs.disk.take_finished_read() {
            if self.writebacks.metadata.in_flight.contains_key(&tag) {
                self.finish_metadata_read(tag, result.ok());
                continue;
            }
            let reads = &mut self.writebacks.reads;
            let Some((read, at)) = reads.tags.remove(&tag) else {
                continue;
            };
            let Some(run) = reads.runs.get_mut(&read) else {
                continue;
            };
            match result {
                Ok(bytes) => match run.data.get_mut(at..at + bytes.len()) {
                    Some(place) => place.copy_from_slice(&bytes),
                    None => run.failed = true,
                },
                Err(_) => run.failed = true,
            }
            run.in_flight = run.in_flight.saturating_sub(1);
            if run.in_flight == 0 {
                self.install_read(read);
            }
        }
    }

    /// Ends run `read`: its pages installed (or, failed, only unmarked),
    /// its waiters told of a failure.
    fn install_read(&mut self, read: u64) {
        let Some(run) = self.writebacks.reads.runs.remove(&read) else {
            return;
        };
        let data = (!run.failed).then_some(&run.data[..]);
        let (memory, mut io) = self.memory_io();
        let installed = memory.finish_read(&mut io, &run.planned, data);
        let error = match (run.failed, installed) {
            (true, _) => FaultError::Io,
            (false, Err(error)) => error,
            (false, Ok(())) => return,
        };
        for tid in run.waiters {
            self.writebacks.reads.failed_waiters.insert(tid, error);
        }
    }

    /// One step of the flusher's write-back of `file`: `Ok(true)` once it is
    /// written whole (the flusher moves on), `Ok(false)` while its writes
    /// are in flight (the flusher looks again at the next pass).
    pub(crate) fn flusher_step(&mut self, file: FileId) -> Result<bool, Errno> {
        self.flusher_step_pages(file, 0, u64::MAX)
    }

    /// [`Self::flusher_step`] for pages `first..end` of `file` only (the
    /// pages reclaim left dirty: `reclaim.rs`).
    pub(crate) fn flusher_step_pages(
        &mut self,
        file: FileId,
        first: u64,
        end: u64,
    ) -> Result<bool, Errno> {
        let mut writeback = match self.writebacks.flusher.take() {
            Some(w) if w.file == file && w.end == end => w,
            _ => Writeback::of_pages(file, first, end),
        };
        let step = self.advance(&mut writeback);
        if step == Ok(WritebackStep::WaitForDisk) {
            self.writebacks.flusher = Some(writeback);
        }
        step.map(|s| s == WritebackStep::Done)
    }
}

/// A step's `result`, or `None` when its access to user memory waits
/// for a page's read (`crate::user_reads`: nothing done, the step made
/// again once it is in).
fn waiting_for_user_page<T>(result: Result<T, Errno>) -> Option<Result<T, Errno>> {
    match result {
        Err(Errno::WaitForRead) => None,
        result => Some(result),
    }
}

/// Most pages a `writev`'s round reads before it is made again
/// ([`Kernel::writev_reads_first`]): the device requests that fit on the
/// virtio queue at once (the rounds bound the call's work; reads beyond
/// the queue would wait in the volume's device, `crate::device_queue`).
const WRITEV_READS_PER_ROUND: usize = 5;

/// The pages a write of `count` bytes from byte `start` covers only in
/// part: its first, its last (`None` for a page it covers whole, and for
/// an empty write or one past the largest offset).
fn pages_in_part(start: u64, count: u64) -> Option<[Option<u64>; 2]> {
    let end = start.checked_add(count).filter(|_| count > 0)?;
    let (first, last) = (start / PAGE, (end - 1) / PAGE);
    let first_partial = !start.is_multiple_of(PAGE) || (first == last && !end.is_multiple_of(PAGE));
    let last_partial = !end.is_multiple_of(PAGE) && last != first;
    Some([first_partial.then_some(first), last_partial.then_some(last)])
}

/// The bytes of a read of `count` bytes from `from` (a file's; `None`:
/// no file) one step covers: up to the end of the [`READ_WINDOW`] pages
/// from there.
fn read_window(from: Option<u64>, count: usize) -> usize {
    match from {
        Some(from) => {
            let window_end = (from / PAGE + READ_WINDOW).saturating_mul(PAGE);
            count.min(window_end.saturating_sub(from) as usize)
        }
        None => count,
    }
}

/// A thread of `calls` that is gone (killed while it waited): its record
/// is to be dropped, and what it held given back.
fn gone_thread<T, C, R>(processes: &ProcessTable<T, C>, calls: &BTreeMap<Tid, R>) -> Option<Tid> {
    let mut tids = calls.keys();
    tids.find(|&&tid| processes.thread(tid).is_none()).copied()
}
