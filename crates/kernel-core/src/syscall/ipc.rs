//! The System V ipc family: `shmget`, `shmat`, `shmdt`, `shmctl`. The
//! mapping core does the memory; [`crate::ipc`] keeps the records that
//! `IPC_STAT` reports.

use neoos_abi::shm::{IPC_RMID, IPC_SET, IPC_STAT};
use neoos_abi::shmid_ds;
use neoos_mm::{Errno, ShmId};

use super::{IpcCall, UserPtr};
use crate::ipc::{shmid_ds_bytes, SHMID_DS_MODE_OFFSET};
use crate::kernel::Kernel;
use crate::platform::Platform;
use crate::process::Pid;

impl<P: Platform> Kernel<P> {
    pub(super) fn ipc_call(&mut self, pid: Pid, call: IpcCall) -> Result<i64, Errno> {
        let now = self.platform.ticks();
        match call {
            IpcCall::ShmGet { key, size, flags } => {
                self.heap_reserve_check()?;
                let id = self.memory.shmget(key, size, flags as u32)?;
                self.segments.got(id.0, flags, pid as u64, now);
                Ok(id.0 as i64)
            }
            IpcCall::ShmAt { id, addr, flags } => {
                self.heap_reserve_check()?;
                self.mapping_room_check(pid, 1)?;
                let at = self.with_space(pid, |m, s, hw| m.shmat(s, hw, ShmId(id), addr, flags))?;
                self.segments.attached(id, pid as u64, now);
                Ok(at as i64)
            }
            IpcCall::ShmDt { addr } => {
                let id = self.with_space(pid, |m, s, hw| m.shmdt(s, hw, addr))?;
                self.segments.detached(id.0, pid as u64, now);
                Ok(0)
            }
            IpcCall::ShmCtl { id, cmd, buf } => self.shmctl(pid, id, cmd, buf),
        }
    }

    fn shmctl(&mut self, pid: Pid, id: u64, cmd: u32, buf: UserPtr) -> Result<i64, Errno> {
        // The buffer is checked before anything changes.
        let new_mode = match cmd {
            IPC_SET => {
                let raw = self.copy_in(pid, buf.offset(SHMID_DS_MODE_OFFSET), 8)?;
                Some(u64::from_le_bytes(
                    raw.try_into().map_err(|_| Errno::Inval)?,
                ))
            }
            IPC_STAT => {
                self.check_writable(pid, buf, shmid_ds::SIZE)?;
                None
            }
            _ => None,
        };
        let (memory, mut io) = self.memory_io();
        let info = memory.shmctl(&mut io, ShmId(id), cmd)?;
        let now = self.platform.ticks();
        match cmd {
            IPC_SET => self.segments.set_mode(id, new_mode.unwrap_or(0), now),
            IPC_RMID => self.segments.removed(id),
            _ => {
                let bytes = shmid_ds_bytes(&info, &self.segments.get(id));
                self.copy_out(pid, buf, &bytes)?;
            }
        }
        Ok(0)
    }
}
