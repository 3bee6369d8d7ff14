//! System V shared memory bookkeeping that is not memory: each segment's
//! permission mode, creator, last user and times, as `shmctl(IPC_STAT)`
//! reports them, and the `struct shmid_ds` image of crates/abi. The mapping
//! core owns the segment's pages and attachments; this module owns only these
//! records, one per live segment id.

use alloc::collections::BTreeMap;

use neoos_abi::linux::shmid64_ds;
use neoos_abi::{shmid_ds, TICKS_PER_SECOND};
use neoos_mm::ShmStat;

/// What the kernel remembers of one segment besides its memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentRecord {
    pub mode: u64,
    pub creator: u64,
    pub last_user: u64,
    pub attach_time: u64,
    pub detach_time: u64,
    pub change_time: u64,
}

/// Records of the segments whose ids are valid (created, not yet removed).
#[derive(Default)]
pub struct SegmentRecords {
    by_id: BTreeMap<u64, SegmentRecord>,
}

/// Permission bits kept from `shmget`'s flags and `IPC_SET`'s mode.
const MODE_BITS: u64 = 0o777;

impl SegmentRecords {
    /// Notes a `shmget` that returned `id`: a new id gets a record.
    pub fn got(&mut self, id: u64, flags: u64, pid: u64, now: u64) {
        self.by_id.entry(id).or_insert(SegmentRecord {
            mode: flags & MODE_BITS,
            creator: pid,
            change_time: now,
            ..SegmentRecord::default()
        });
    }

    /// Notes an attach of `id` by `pid`.
    pub fn attached(&mut self, id: u64, pid: u64, now: u64) {
        if let Some(r) = self.by_id.get_mut(&id) {
            r.last_user = pid;
            r.attach_time = now;
        }
    }

    /// Notes a detach of `id` by `pid`.
    pub fn detached(&mut self, id: u64, pid: u64, now: u64) {
        if let Some(r) = self.by_id.get_mut(&id) {
            r.last_user = pid;
            r.detach_time = now;
        }
    }

    /// `IPC_SET`: the new permission bits.
    pub fn set_mode(&mut self, id: u64, mode: u64, now: u64) {
        if let Some(r) = self.by_id.get_mut(&id) {
            r.mode = mode & MODE_BITS;
            r.change_time = now;
        }
    }

    /// `IPC_RMID`: the id is gone.
    pub fn removed(&mut self, id: u64) {
        self.by_id.remove(&id);
    }

    /// The record of `id` (all zero for an unknown id).
    pub fn get(&self, id: u64) -> SegmentRecord {
        self.by_id.get(&id).copied().unwrap_or_default()
    }
}

/// The bytes of `struct shmid_ds` for a segment: what the mapping core knows
/// (`info`) and this module's record.
pub fn shmid_ds_bytes(info: &ShmStat, r: &SegmentRecord) -> [u8; shmid_ds::SIZE] {
    let mut fields = [0u64; shmid_ds::FIELDS];
    fields[shmid_ds::KEY] = info.key as u64;
    fields[shmid_ds::MODE] = r.mode;
    fields[shmid_ds::SEGSZ] = info.size;
    fields[shmid_ds::ATIME] = r.attach_time;
    fields[shmid_ds::DTIME] = r.detach_time;
    fields[shmid_ds::CTIME] = r.change_time;
    fields[shmid_ds::CPID] = r.creator;
    fields[shmid_ds::LPID] = r.last_user;
    fields[shmid_ds::NATTCH] = info.attaches as u64;
    let mut bytes = [0u8; shmid_ds::SIZE];
    for (out, field) in bytes.chunks_exact_mut(8).zip(fields) {
        out.copy_from_slice(&field.to_le_bytes());
    }
    bytes
}

/// The bytes of Linux's `struct shmid64_ds` (x86_64) for a segment: times
/// in seconds of the clock (`time`), owner and creator ids 0 (NeoOS keeps
/// no owner per segment), sequence 0.
pub fn shmid64_ds_bytes(info: &ShmStat, r: &SegmentRecord) -> [u8; shmid64_ds::SIZE] {
    let mut bytes = [0u8; shmid64_ds::SIZE];
    let mut put = |at: usize, field: &[u8]| bytes[at..at + field.len()].copy_from_slice(field);
    put(shmid64_ds::KEY, &(info.key as i32).to_le_bytes());
    put(shmid64_ds::MODE, &(r.mode as u16).to_le_bytes());
    put(shmid64_ds::SEGSZ, &info.size.to_le_bytes());
    let seconds = |ticks: u64| (ticks / TICKS_PER_SECOND).to_le_bytes();
    put(shmid64_ds::ATIME, &seconds(r.attach_time));
    put(shmid64_ds::DTIME, &seconds(r.detach_time));
    put(shmid64_ds::CTIME, &seconds(r.change_time));
    put(shmid64_ds::CPID, &(r.creator as i32).to_le_bytes());
    put(shmid64_ds::LPID, &(r.last_user as i32).to_le_bytes());
    put(shmid64_ds::NATTCH, &u64::from(info.attaches).to_le_bytes());
    bytes
}

/// Where `shm_perm.mode` lies in `struct shmid_ds` (what `IPC_SET` reads).
pub const SHMID_DS_MODE_OFFSET: u64 = (shmid_ds::MODE * 8) as u64;
