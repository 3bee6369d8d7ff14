//! The System V ipc family: `shmget`, `shmat`, `shmdt`, `shmctl`. The
//! mapping core does the memory; [`crate::ipc`] keeps the records that
//! `IPC_STAT` reports.

use neoos_abi::linux::shmid64_ds;
use neoos_abi::shm::{IPC_RMID, IPC_SET, IPC_STAT};
use neoos_abi::shmid_ds;
use neoos_mm::{Errno, ShmId};

use super::{IpcCall, ShmLayout, UserPtr};
use crate::ipc::{shmid64_ds_bytes, shmid_ds_bytes, SHMID_DS_MODE_OFFSET};
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
            IpcCall::ShmCtl {
                id,
                cmd,
                buf,
                layout,
            } => self.shmctl(pid, id, cmd, buf, layout),
        }
    }

    fn shmctl(
        &mut self,
        pid: Pid,
        id: u64,
        cmd: u32,
        buf: UserPtr,
        layout: ShmLayout,
    ) -> Result<i64, Errno> {
        // The buffer is checked before anything changes.
        let new_mode = match cmd {
            IPC_SET => Some(self.shm_mode_in(pid, buf, layout)?),
            IPC_STAT => {
                let size = match layout {
                    ShmLayout::Neo => shmid_ds::SIZE,
                    ShmLayout::Linux => shmid64_ds::SIZE,
                };
                self.check_writable(pid, buf, size)?;
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
                let record = self.segments.get(id);
                match layout {
                    ShmLayout::Neo => self.copy_out(pid, buf, &shmid_ds_bytes(&info, &record))?,
                    ShmLayout::Linux => {
                        self.copy_out(pid, buf, &shmid64_ds_bytes(&info, &record))?
                    }
                }
            }
        }
        Ok(0)
    }

    /// The `shm_perm.mode` an `IPC_SET` gives, read from `buf` in `layout`.
    fn shm_mode_in(&mut self, pid: Pid, buf: UserPtr, layout: ShmLayout) -> Result<u64, Errno> {
        match layout {
            ShmLayout::Neo => {
                let raw = self.copy_in(pid, buf.offset(SHMID_DS_MODE_OFFSET), 8)?;
                Ok(u64::from_le_bytes(
                    raw.try_into().map_err(|_| Errno::Inval)?,
                ))
            }
            ShmLayout::Linux => {
                // The whole structure must be readable, as Linux copies it.
                let raw = self.copy_in(pid, buf, shmid64_ds::SIZE)?;
                let at = shmid64_ds::MODE;
                Ok(u64::from(u16::from_le_bytes([raw[at], raw[at + 1]])))
            }
        }
    }
}
