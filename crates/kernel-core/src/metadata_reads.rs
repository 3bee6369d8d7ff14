//! The metadata reads of `/home` namespace calls, made without the kernel
//! lock (issue 12 item 1): before a call that names paths (`open`, `stat`,
//! `mkdir`, `unlink`, `rename`, a directory listing...), the kernel walks
//! its paths on the volume without reading the disk
//! ([`neoos_ext2::Ext2::blocks_to_read`]: the inode and blocks of each
//! directory on the way, then what the path names). When blocks are
//! missing from the volume's metadata cache, the call is not made: the
//! device reads of those blocks are started, the thread waits for the disk
//! without the lock ([`SchedulerCall::AwaitMetadata`], as a fault's read
//! waits), the blocks are cached as they come
//! ([`neoos_ext2::Ext2::cache_read_block`], only when no metadata write
//! came meanwhile) and the call is made again from its registers. Once
//! the walk finds everything cached, the call runs under the lock as it
//! always did, its lookups reading nothing.
//!
//! Nothing is changed before the call is made, so every semantic stays
//! the call's own (its errors, its checks, its atomicity under the lock).
//! The walk is a forecast: what it misses (a block evicted meanwhile, the
//! blocks an allocation picks, a truncate's indirect blocks) the call
//! reads under the lock as before. A call waits at most
//! [`MOST_ROUNDS`] times; then it is made at once, whatever is missing
//! (a directory larger than the cache, a cache thrashed by other calls).
//! A thread killed while it waits leaves its reads to finish for the
//! cache.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use neoos_ext2::MetadataWrites;

use crate::change_reads::ChangeOf;
use crate::kernel::Kernel;
use crate::linux::LinuxCall;
use crate::platform::Platform;
use crate::process::{Pid, Tid};
use crate::syscall::{Completion, SchedulerCall, UserPtr};

/// Most blocks one round reads (half the volume's metadata cache).
pub const MOST_BLOCKS: usize = 16;
/// Most times one call waits for metadata reads before it is made anyway.
pub const MOST_ROUNDS: u8 = 8;
/// Most dirty blocks the volume's metadata cache may hold when a call
/// that defers its writes is made (half the cache: a call changes fewer
/// than the other half, so none of its blocks is written at once for
/// want of room); with more, they are written first, the caller asleep
/// ([`Kernel::room_for_deferred_writes`]).
pub const MOST_DIRTY_BEFORE_A_CALL: usize = 16;

/// The metadata reads in flight and the calls that waited for them.
#[derive(Debug, Default)]
pub struct MetadataReads {
    /// Each device read in flight, by tag: its block, and the volume's
    /// metadata write count when it was started.
    pub(crate) in_flight: BTreeMap<u64, (u32, u64)>,
    /// How many times each thread's call waited so far.
    rounds: BTreeMap<Tid, u8>,
    /// The metadata writes or the device flush each thread's namespace
    /// call started after it was made ([`Kernel::flush_step`]).
    pub(crate) flushes: BTreeMap<Tid, CallSync>,
    /// The descriptor (process, number, file) each thread's `open` with
    /// `O_CREAT` installed, closed again if its writes fail.
    created: BTreeMap<Tid, (Pid, i64, neoos_mm::FileId)>,
    /// How many times each thread's call waited for the dirty blocks to be
    /// written before it ([`Kernel::room_for_deferred_writes`]).
    room_waits: BTreeMap<Tid, u8>,
}

/// Where a namespace call made is in its writes and flush, without the
/// kernel lock ([`Kernel::flush_step`]).
#[derive(Debug)]
pub(crate) struct CallSync {
    /// The number its requests' failures are counted to
    /// ([`Kernel::claim_disk_for`]; 0 until it starts one).
    pub(crate) id: u64,
    stage: Stage,
}

/// A [`CallSync`]'s stage.
#[derive(Debug)]
enum Stage {
    /// Nothing started yet (the disk was busy); `flush`: whether a flush
    /// follows the writes.
    Waiting { flush: bool },
    /// Its metadata writes in flight; `failed`: one failed already (made
    /// at once when the queue was full).
    Writing {
        written: MetadataWrites,
        flush: bool,
        failed: bool,
    },
    /// Its flush in flight.
    Flushing,
}

impl MetadataReads {
    /// How many threads' calls wait for metadata reads (or did last).
    pub fn waiting_calls(&self) -> usize {
        self.rounds.len()
    }
}

impl<P: Platform> Kernel<P> {
    /// For NeoOS `open`, `stat` or `readdir` of `path` by process `pid`,
    /// when the walk of a volume path needs metadata blocks not cached:
    /// their reads started, the wait after which the call is made again.
    /// `None`: make the call now.
    #[inline(never)]
    pub(crate) fn metadata_reads_of_path(
        &mut self,
        pid: Pid,
        path: UserPtr,
        change: Option<ChangeOf>,
    ) -> Option<SchedulerCall> {
        if !self.fs.disk.home_mounted() {
            return None;
        }
        let path = self
            .copy_string(pid, path, neoos_abi::limits::PATH_MAX)
            .ok();
        let paths = [path.and_then(|p| crate::fs::normalize(&p)), None];
        self.metadata_reads_for(pid, &paths, change)
    }

    /// [`Self::metadata_reads_of_path`] for a Linux call: those that name
    /// paths (`open`, `stat`, `mkdir`, `unlink`, `rename`, ...; the
    /// directory's for `getdents64`).
    #[inline(never)]
    pub(crate) fn linux_metadata_reads(
        &mut self,
        pid: Pid,
        call: &LinuxCall,
    ) -> Option<SchedulerCall> {
        let names_paths = matches!(
            call,
            LinuxCall::Open { .. }
                | LinuxCall::Stat { .. }
                | LinuxCall::FstatAt { .. }
                | LinuxCall::Chdir { .. }
                | LinuxCall::Mkdir { .. }
                | LinuxCall::Unlink { .. }
                | LinuxCall::Rename { .. }
                | LinuxCall::Access { .. }
                | LinuxCall::Chmod { .. }
                | LinuxCall::Truncate { .. }
                | LinuxCall::Readlink { .. }
                | LinuxCall::Utimensat { .. }
                | LinuxCall::Statfs { .. }
                | LinuxCall::Getdents { .. }
                | LinuxCall::Ftruncate { .. }
        );
        if let LinuxCall::Writev { fd, iov, count } = *call {
            return self.writev_reads_first(pid, fd, iov, count);
        }
        if !names_paths || !self.fs.disk.home_mounted() {
            return None;
        }
        let paths = self.linux_call_paths(pid, call);
        let change = self.linux_call_change(pid, call);
        self.metadata_reads_for(pid, &paths, change)
    }

    /// The metadata reads before a call of `pid` naming `paths` and making
    /// `change` (its reads foreseen once the walks are cached:
    /// `crate::change_reads`).
    pub(crate) fn metadata_reads_for(
        &mut self,
        pid: Pid,
        paths: &[Option<String>; 2],
        change: Option<ChangeOf>,
    ) -> Option<SchedulerCall> {
        // Reads finished since the disk was last looked at: cached first.
        if !self.writebacks.metadata.in_flight.is_empty() {
            self.collect_finished_reads();
        }
        let tid = self.caller_tid(pid);
        loop {
            let mut missing = self.blocks_missing(paths);
            if let (true, Some(change)) = (missing.is_empty(), change) {
                missing = self.change_blocks_missing(paths, change, MOST_BLOCKS);
            }
            let rounds = self
                .writebacks
                .metadata
                .rounds
                .get(&tid)
                .copied()
                .unwrap_or(0);
            if missing.is_empty() || rounds >= MOST_ROUNDS {
                self.writebacks.metadata.rounds.remove(&tid);
                return None;
            }
            self.writebacks.metadata.rounds.insert(tid, rounds + 1);
            // Reads start only when the disk has nothing in flight; else
            // the call waits until it has none and looks again.
            if self.fs.disk.requests_in_flight() || self.start_metadata_reads(&missing) {
                return Some(SchedulerCall::AwaitMetadata);
            }
            // Read at once (a device whose reads do not wait): walk again.
        }
    }

    /// The metadata blocks the walks of `paths` need, not cached (those
    /// below the volume's mount point only; at most [`MOST_BLOCKS`]).
    fn blocks_missing(&mut self, paths: &[Option<String>; 2]) -> Vec<u32> {
        let mut missing = Vec::new();
        for path in paths.iter().flatten() {
            let Some(rel) = crate::mount::below_home(path) else {
                continue;
            };
            let most = MOST_BLOCKS.saturating_sub(missing.len());
            for block in self.fs.disk.home_blocks_to_read(rel, most) {
                if !missing.contains(&block) && missing.try_reserve(1).is_ok() {
                    missing.push(block);
                }
            }
        }
        missing
    }

    /// Starts the device reads of `blocks` (the disk has nothing in
    /// flight): whether one is in flight. A block read at once is cached
    /// at once; one the heap has no room to keep for the device's queue
    /// ([`crate::device_queue`]) is left to the call.
    pub(crate) fn start_metadata_reads(&mut self, blocks: &[u32]) -> bool {
        let mut in_flight = false;
        for &block in blocks {
            self.writebacks.reads.last_tag += 1;
            let tag = self.writebacks.reads.last_tag;
            match self.fs.disk.start_metadata_read(block, tag) {
                Ok(Some(writes)) => {
                    self.writebacks
                        .metadata
                        .in_flight
                        .insert(tag, (block, writes));
                    in_flight = true;
                }
                Ok(None) => {}
                Err(_) => break,
            }
        }
        in_flight
    }

    /// The finished metadata read of tag `tag`: its block cached (when no
    /// metadata write came since it started; `None`: it failed, and the
    /// call reads the block itself).
    pub(crate) fn finish_metadata_read(&mut self, tag: u64, read: Option<Vec<u8>>) {
        let Some((block, writes)) = self.writebacks.metadata.in_flight.remove(&tag) else {
            return;
        };
        if let Some(bytes) = read {
            self.fs.disk.cache_metadata_block(block, bytes, writes);
        }
    }

    /// Drops the round counts and flushes of threads gone.
    pub(crate) fn drop_gone_metadata_waiters(&mut self) {
        let metadata = &mut self.writebacks.metadata;
        if metadata.rounds.is_empty()
            && metadata.flushes.is_empty()
            && metadata.created.is_empty()
            && metadata.room_waits.is_empty()
        {
            return;
        }
        let processes = &self.processes;
        metadata
            .rounds
            .retain(|&tid, _| processes.thread(tid).is_some());
        metadata
            .flushes
            .retain(|&tid, _| processes.thread(tid).is_some());
        metadata
            .created
            .retain(|&tid, _| processes.thread(tid).is_some());
        metadata
            .room_waits
            .retain(|&tid, _| processes.thread(tid).is_some());
    }

    /// A Linux call that changes names or attributes on the volume
    /// (`unlink`, `rmdir`, `rename`, `mkdir`, `chmod`, `utimensat`,
    /// `truncate`, an `open` with `O_CREAT` or `O_TRUNC`), made under the
    /// lock as before but for its metadata writes and device flush:
    /// [`Self::call_flushing_after`]. An `open` has its descriptor closed
    /// again when the writes fail (the file is made, or truncated; `EIO`).
    pub(crate) fn linux_call_flushing_after(&mut self, pid: Pid, call: LinuxCall) -> Completion {
        use neoos_abi::open::{O_CREAT, O_TRUNC};
        let opens = matches!(call, LinuxCall::Open { flags, .. }
            if flags & (O_CREAT | O_TRUNC) != 0);
        let changes = opens
            || matches!(
                call,
                LinuxCall::Unlink { .. }
                    | LinuxCall::Rename { .. }
                    | LinuxCall::Mkdir { .. }
                    | LinuxCall::Chmod { .. }
                    | LinuxCall::Fchmod { .. }
                    | LinuxCall::Utimensat { .. }
                    | LinuxCall::Truncate { .. }
                    | LinuxCall::Ftruncate { .. }
            );
        if !changes || !self.fs.disk.home_mounted() {
            return self.linux_call_made(pid, call);
        }
        self.call_flushing_after(pid, opens, |k| k.linux_call_made(pid, call))
    }

    /// Makes call `make` of `pid`, one that may change the volume (a
    /// namespace call of either personality, a close that frees an
    /// orphan), under the lock as before but for its metadata writes and
    /// device flush: the blocks it changed are left dirty in the volume's
    /// cache ([`neoos_ext2::Ext2::defer_metadata_writes`]), and its result
    /// waits without the lock ([`SchedulerCall::FlushThen`],
    /// [`Self::flush_step`]) for their writes, then for the flush it owes,
    /// `EIO` if either fails (the call is made all the same: its blocks
    /// stay dirty, written by the next sync). `opens`: the call's result
    /// is a descriptor, closed again when the writes fail. A call that
    /// fails (with an error only Linux names; an `Errno` one waits as a
    /// success does) changed nothing to make durable: it returns at once,
    /// whatever it left dirty written by the next sync.
    pub(crate) fn call_flushing_after(
        &mut self,
        pid: Pid,
        opens: bool,
        make: impl FnOnce(&mut Self) -> Completion,
    ) -> Completion {
        if let Some(wait) = self.room_for_deferred_writes(pid) {
            return Completion::Scheduler(wait);
        }
        self.made_flushing_after(pid, opens, make)
    }

    /// [`Self::call_flushing_after`] without the wait for room first: for
    /// what cannot be made again (the reaping after a call already made).
    pub(crate) fn made_flushing_after(
        &mut self,
        pid: Pid,
        opens: bool,
        make: impl FnOnce(&mut Self) -> Completion,
    ) -> Completion {
        self.fs.disk.defer_flushes();
        let done = make(self);
        let owed = self.fs.disk.take_owed_flush();
        if !owed.writes && !owed.flush {
            return done;
        }
        let Completion::Done(result) = done else {
            // Failed with an error only Linux names (nothing to make
            // durable), or a scheduler call (none of those defers).
            return done;
        };
        let tid = self.caller_tid(pid);
        if opens {
            if let Ok(fd) = result {
                if let Ok(crate::files::Descriptor::File(f)) = self.descriptor(pid, fd) {
                    self.writebacks
                        .metadata
                        .created
                        .insert(tid, (pid, fd, f.file));
                }
            }
        }
        let sync = CallSync {
            id: 0,
            stage: Stage::Waiting { flush: owed.flush },
        };
        self.writebacks.metadata.flushes.insert(tid, sync);
        match self.flush_step(tid) {
            // Written and flushed at once (a device that does not wait).
            Some(synced) => Completion::Done(result.and_then(|v| synced.map(|()| v))),
            None => Completion::Scheduler(SchedulerCall::FlushThen { result }),
        }
    }

    /// Before a call of `pid` that defers its writes: when the volume's
    /// cache holds more than [`MOST_DIRTY_BEFORE_A_CALL`] dirty blocks
    /// (writes that failed, other calls' not written yet), their writes
    /// started (no flush: the call's own comes after) and the wait after
    /// which the call is made again, as for a metadata read (the same
    /// rounds: after [`MOST_ROUNDS`] it is made as it is, a block with no
    /// room written at once). The writes of the last try collected first.
    /// `None`: make it now.
    fn room_for_deferred_writes(&mut self, pid: Pid) -> Option<SchedulerCall> {
        let tid = self.caller_tid(pid);
        if self.writebacks.metadata.flushes.contains_key(&tid) && self.call_sync_step(tid).is_none()
        {
            // Still in flight (a wait ended early): wait again.
            return Some(SchedulerCall::AwaitMetadata);
        }
        let waits = &mut self.writebacks.metadata.room_waits;
        let waited = waits.get(&tid).copied().unwrap_or(0);
        if self.fs.disk.dirty_metadata_blocks() <= MOST_DIRTY_BEFORE_A_CALL || waited >= MOST_ROUNDS
        {
            waits.remove(&tid);
            return None;
        }
        let sync = CallSync {
            id: 0,
            stage: Stage::Waiting { flush: false },
        };
        self.writebacks.metadata.flushes.insert(tid, sync);
        if self.call_sync_step(tid).is_some() {
            // Written at once (or failed at once): no wait.
            self.writebacks.metadata.room_waits.remove(&tid);
            return None;
        }
        self.writebacks.metadata.room_waits.insert(tid, waited + 1);
        Some(SchedulerCall::AwaitMetadata)
    }

    /// One step of thread `tid`'s wait for the metadata writes and device
    /// flush its call owes (`SchedulerCall::FlushThen`): `None` while the
    /// disk has requests in flight (the next ones are started once it has
    /// none, and the thread waits for them); then `Io` if a write or the
    /// flush failed. The writes are those of every metadata block dirty
    /// then (the call's, and any other's not written yet), started at
    /// once; the flush only once they are done (a flush covers only the
    /// writes completed before it).
    pub fn flush_step(&mut self, tid: Tid) -> Option<Result<(), neoos_mm::Errno>> {
        let synced = self.call_sync_step(tid)?;
        if let Some((pid, fd, file)) = self.writebacks.metadata.created.remove(&tid) {
            let same = matches!(self.descriptor(pid, fd),
                Ok(crate::files::Descriptor::File(f)) if f.file == file);
            if synced.is_err() && same {
                // Taken back: the call fails, its descriptor with it.
                let _ = self.close(pid, fd);
            }
        }
        Some(synced)
    }

    /// [`Self::flush_step`] but for the descriptor of a creating `open`.
    fn call_sync_step(&mut self, tid: Tid) -> Option<Result<(), neoos_mm::Errno>> {
        if self.fs.disk.requests_in_flight() {
            return None;
        }
        let io = Err(neoos_mm::Errno::Io);
        let sync = self.writebacks.metadata.flushes.remove(&tid);
        let (mut id, stage) = match sync {
            Some(sync) => (sync.id, sync.stage),
            None => (0, Stage::Waiting { flush: true }),
        };
        match stage {
            Stage::Waiting { flush } => {
                self.claim_disk_for(&mut id);
                let (written, result) = self.fs.disk.start_dirty_metadata_writes();
                if !written.is_empty() {
                    let failed = result.is_err();
                    let stage = Stage::Writing {
                        written,
                        flush,
                        failed,
                    };
                    let sync = CallSync { id, stage };
                    self.writebacks.metadata.flushes.insert(tid, sync);
                    return None;
                }
                if written.more() {
                    // No room with nothing in flight: written (and
                    // flushed) at once, as under the lock before.
                    return Some(self.fs.disk.flush_device().map_err(|_| neoos_mm::Errno::Io));
                }
                match (result, flush) {
                    (Err(_), _) => Some(io),
                    (Ok(()), false) => Some(Ok(())),
                    (Ok(()), true) => self.start_call_flush(tid, id),
                }
            }
            Stage::Writing {
                written,
                flush,
                failed,
            } => {
                let failed = self.requests_failed_for(id) || failed;
                let more = written.more();
                self.fs.disk.end_sync_writes(written, !failed);
                if more && !failed {
                    // The blocks the queue had no room for.
                    let stage = Stage::Waiting { flush };
                    self.writebacks
                        .metadata
                        .flushes
                        .insert(tid, CallSync { id, stage });
                    return self.call_sync_step(tid);
                }
                match (failed, flush) {
                    (true, _) => Some(io),
                    (false, false) => Some(Ok(())),
                    (false, true) => self.start_call_flush(tid, id),
                }
            }
            Stage::Flushing => match self.requests_failed_for(id) {
                true => Some(io),
                false => Some(Ok(())),
            },
        }
    }

    /// Starts the device flush of thread `tid`'s call (the disk has
    /// nothing in flight), its failures counted to `id`.
    fn start_call_flush(&mut self, tid: Tid, mut id: u64) -> Option<Result<(), neoos_mm::Errno>> {
        self.claim_disk_for(&mut id);
        match self.fs.disk.start_flush() {
            Ok(true) => {
                let sync = CallSync {
                    id,
                    stage: Stage::Flushing,
                };
                self.writebacks.metadata.flushes.insert(tid, sync);
                None
            }
            Ok(false) => Some(Ok(())),
            Err(_) => Some(Err(neoos_mm::Errno::Io)),
        }
    }
}
