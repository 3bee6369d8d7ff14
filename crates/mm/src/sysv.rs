//! System V shared memory: segments are memory objects that persist until
//! `IPC_RMID` even with nothing attached; a removed segment is freed on its
//! last detach. Segment ids are given out in order and never reused. `shm_nattch` counts the
//! mapping records of the segment (an attach split by `mprotect` counts more
//! than once).

use crate::errno::Errno;
use crate::hw::{is_page_aligned, page_ceil, AsId, Hw, Io, ObjectId, Prot, ShmId};
use crate::mapping::{Backing, Mapping, Origin, Sharing};
use crate::object::{ObjectKind, ShmState};
use crate::system::MemorySystem;
use crate::unmap::remove_range;
use neoos_abi::layout::{USER_BASE, USER_END};
use neoos_abi::{limits, shm};

/// What `IPC_STAT` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShmStat {
    pub key: i64,
    pub size: u64,
    pub attaches: u32,
    pub destroyed: bool,
}

impl MemorySystem {
    /// The object of segment `id` (`Inval` if there is none).
    fn segment_object(&self, id: ShmId) -> Result<ObjectId, Errno> {
        self.store.shm_ids.get(&id).copied().ok_or(Errno::Inval)
    }

    fn segment(&self, id: ShmId) -> Result<ShmState, Errno> {
        let object = self.segment_object(id)?;
        match self.store.get(object).map(|o| o.kind) {
            Some(ObjectKind::Shm(s)) => Ok(s),
            _ => Err(Errno::Inval),
        }
    }

    /// `shmget`: the segment of `key` (created with `IPC_CREAT`; `Exists`
    /// with `IPC_EXCL`; `NoEnt` without `IPC_CREAT`; `Inval` for size 0 on
    /// creation or larger than the existing segment). `IPC_PRIVATE` always
    /// creates.
    pub fn shmget(&mut self, key: i64, size: u64, flags: u32) -> Result<ShmId, Errno> {
        if key != shm::IPC_PRIVATE {
            if let Some(&object) = self.store.shm_keys.get(&key) {
                if flags & shm::IPC_CREAT != 0 && flags & shm::IPC_EXCL != 0 {
                    return Err(Errno::Exists);
                }
                let Some(ObjectKind::Shm(seg)) = self.store.get(object).map(|o| o.kind) else {
                    return Err(Errno::Inval);
                };
                let id = seg.id;
                if size > seg.size {
                    return Err(Errno::Inval);
                }
                return Ok(id);
            }
            if flags & shm::IPC_CREAT == 0 {
                return Err(Errno::NoEnt);
            }
        }
        if size == 0 || size > limits::SHM_MAX {
            return Err(Errno::Inval);
        }
        if self.store.live_segments >= limits::SHM_SEGMENTS_MAX {
            return Err(Errno::NoSpace);
        }
        self.store.live_segments += 1;
        let id = self.store.next_shm_id();
        let state = ShmState {
            id,
            key,
            size,
            destroyed: false,
        };
        let object = self.store.create(ObjectKind::Shm(state), 1);
        self.store.shm_ids.insert(id, object);
        if key != shm::IPC_PRIVATE {
            self.store.shm_keys.insert(key, object);
        }
        Ok(id)
    }

    /// `shmat`: attaches the segment at `addr` (0: chosen by the mm; else
    /// page aligned and free, or `Inval`), read-only with `SHM_RDONLY`.
    pub fn shmat(
        &mut self,
        id: AsId,
        hw: &mut Hw,
        shmid: ShmId,
        addr: u64,
        flags: u32,
    ) -> Result<u64, Errno> {
        let seg = self.segment(shmid)?;
        if seg.destroyed {
            return Err(Errno::Inval);
        }
        let len = page_ceil(seg.size).ok_or(Errno::Inval)?;
        let prot = if flags & shm::SHM_RDONLY != 0 {
            Prot::READ
        } else {
            Prot::READ_WRITE
        };
        let space = self.spaces.space_mut(&id).ok_or(Errno::Inval)?;
        let start = if addr == 0 {
            space.holes.place(len).ok_or(Errno::NoMem)?
        } else {
            let end = addr.checked_add(len).ok_or(Errno::Inval)?;
            if !is_page_aligned(addr)
                || addr < USER_BASE
                || end > USER_END
                || !space.holes.is_free(addr, end)
            {
                return Err(Errno::Inval);
            }
            addr
        };
        let object = self.segment_object(shmid)?;
        let mapping = Mapping {
            start,
            end: start + len,
            prot,
            max_prot: if prot.write {
                Prot::ALL
            } else {
                Prot::READ_EXEC
            },
            sharing: Sharing::Shared,
            backing: self.store.map_ref(object).map(|object| Backing {
                object,
                first_page: 0,
            }),
            origin: Origin::Shm(shmid),
        };
        self.insert_mapping(id, hw, mapping)?;
        Ok(start)
    }

    /// `shmdt`: detaches the attach starting at `addr` (with the pieces an
    /// `mprotect` split off it). The segment's memory stays unless it was
    /// removed and this was its last attach.
    pub fn shmdt(&mut self, id: AsId, hw: &mut Hw, addr: u64) -> Result<ShmId, Errno> {
        let space = self.spaces.space_mut(&id).ok_or(Errno::Inval)?;
        let first = space.mappings.get(&addr).ok_or(Errno::Inval)?;
        let Origin::Shm(shmid) = first.origin else {
            return Err(Errno::Inval);
        };
        if first.backing.as_ref().is_none_or(|b| b.first_page != 0) {
            return Err(Errno::Inval);
        }
        let mut end = first.end;
        while let Some(next) = space.mappings.get(&end) {
            let expected = (end - addr) / crate::hw::PAGE_SIZE;
            let continues = next.origin == Origin::Shm(shmid)
                && next
                    .backing
                    .as_ref()
                    .is_some_and(|b| b.first_page == expected);
            if !continues {
                break;
            }
            end = next.end;
        }
        remove_range(space, &mut self.store, hw, addr, end);
        Ok(shmid)
    }

    /// `shmctl`: `IPC_STAT` reports; `IPC_RMID` removes the segment (its key
    /// is free at once; the memory goes with the last detach); `IPC_SET`
    /// changes nothing here (permissions are the kernel's records). Returns
    /// the state before the command.
    pub fn shmctl(&mut self, io: &mut Io, shmid: ShmId, cmd: u32) -> Result<ShmStat, Errno> {
        let seg = self.segment(shmid)?;
        let object = self.segment_object(shmid)?;
        let attaches = self.store.get(object).map_or(0, |o| o.map_refs());
        let stat = ShmStat {
            key: seg.key,
            size: seg.size,
            attaches,
            destroyed: seg.destroyed,
        };
        match cmd {
            shm::IPC_STAT | shm::IPC_SET => Ok(stat),
            shm::IPC_RMID => {
                if !seg.destroyed {
                    self.mark_destroyed(object, seg);
                    self.store.drop_handle_ref(io, object)?;
                }
                Ok(stat)
            }
            _ => Err(Errno::Inval),
        }
    }

    fn mark_destroyed(&mut self, object: ObjectId, seg: ShmState) {
        self.store.live_segments -= 1;
        if self.store.shm_keys.get(&seg.key) == Some(&object) {
            self.store.shm_keys.remove(&seg.key);
        }
        if let Some(o) = self.store.get_mut(object) {
            o.kind = ObjectKind::Shm(ShmState {
                destroyed: true,
                ..seg
            });
        }
    }
}
