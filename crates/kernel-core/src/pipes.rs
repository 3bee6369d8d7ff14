//! Pipes: a bounded byte queue per pipe with counts of its open read and
//! write ends. Reading an empty pipe whose write ends are all closed gives
//! end of file; writing to a pipe with no read end left is refused
//! (`EPIPE`). The calls that wait (an empty pipe to read, a full one to
//! write) are stepped by the kernel, which gives the CPU away between
//! steps. A pipe cannot be mapped (`ENODEV`).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use neoos_mm::Errno;

/// Bytes a pipe holds (Linux's default capacity).
pub const PIPE_CAPACITY: usize = 64 * 1024;
/// Most pipes alive at once (each may hold [`PIPE_CAPACITY`] of heap).
pub const MAX_PIPES: usize = 64;

/// One pipe.
#[derive(Default)]
struct Pipe {
    data: VecDeque<u8>,
    readers: u32,
    writers: u32,
}

/// What one read step got.
#[derive(Debug, PartialEq, Eq)]
pub enum PipeRead {
    Data(Vec<u8>),
    /// Empty, and no write end is open.
    EndOfFile,
    /// Empty: wait for a writer.
    Empty,
}

/// What one write step did.
#[derive(Debug, PartialEq, Eq)]
pub enum PipeWrite {
    Wrote(usize),
    /// Full: wait for a reader.
    Full,
    /// No read end is open.
    Broken,
}

/// Every pipe, by id.
#[derive(Default)]
pub struct PipeTable {
    pipes: BTreeMap<u32, Pipe>,
    next: u32,
}

impl PipeTable {
    /// A new pipe with one read end and one write end.
    pub fn create(&mut self) -> Result<u32, Errno> {
        if self.pipes.len() >= MAX_PIPES {
            return Err(Errno::NoSpace);
        }
        let mut data = VecDeque::new();
        data.try_reserve(PIPE_CAPACITY).map_err(|_| Errno::NoMem)?;
        self.next = self.next.wrapping_add(1);
        while self.pipes.contains_key(&self.next) {
            self.next = self.next.wrapping_add(1);
        }
        self.pipes.insert(
            self.next,
            Pipe {
                data,
                readers: 1,
                writers: 1,
            },
        );
        Ok(self.next)
    }

    /// One more open end (a duplicated descriptor, a fork).
    pub fn add_ref(&mut self, id: u32, write: bool) {
        if let Some(p) = self.pipes.get_mut(&id) {
            if write {
                p.writers += 1;
            } else {
                p.readers += 1;
            }
        }
    }

    /// One end closed; the pipe goes when no end is left.
    pub fn drop_ref(&mut self, id: u32, write: bool) {
        let Some(p) = self.pipes.get_mut(&id) else {
            return;
        };
        if write {
            p.writers = p.writers.saturating_sub(1);
        } else {
            p.readers = p.readers.saturating_sub(1);
        }
        if p.readers == 0 && p.writers == 0 {
            self.pipes.remove(&id);
        }
    }

    /// What an end of pipe `id` can do now, as `poll` bits: the read end
    /// `POLLIN` with data, `POLLHUP` once no write end is open; the write
    /// end `POLLOUT` with room, `POLLERR` once no read end is open.
    pub fn poll_events(&self, id: u32, write: bool) -> u16 {
        use neoos_abi::linux::poll::*;
        let Some(p) = self.pipes.get(&id) else {
            return POLLNVAL;
        };
        match write {
            false => {
                let data = if p.data.is_empty() {
                    0
                } else {
                    POLLIN | POLLRDNORM
                };
                let hangup = if p.writers == 0 { POLLHUP } else { 0 };
                data | hangup
            }
            true if p.readers == 0 => POLLERR,
            true if p.data.len() < PIPE_CAPACITY => POLLOUT | POLLWRNORM,
            true => 0,
        }
    }

    /// Takes up to `max` bytes.
    pub fn read(&mut self, id: u32, max: usize) -> Result<PipeRead, Errno> {
        let p = self.pipes.get_mut(&id).ok_or(Errno::BadFd)?;
        if p.data.is_empty() {
            return Ok(if p.writers == 0 {
                PipeRead::EndOfFile
            } else {
                PipeRead::Empty
            });
        }
        let n = max.min(p.data.len());
        let mut out = Vec::new();
        out.try_reserve_exact(n).map_err(|_| Errno::NoMem)?;
        out.extend(p.data.drain(..n));
        Ok(PipeRead::Data(out))
    }

    /// The room left in pipe `id` (0 when it has no reader: see
    /// [`Self::write`]).
    pub fn room(&self, id: u32) -> usize {
        self.pipes
            .get(&id)
            .map_or(0, |p| PIPE_CAPACITY - p.data.len())
    }

    /// Appends as much of `bytes` as fits.
    pub fn write(&mut self, id: u32, bytes: &[u8]) -> Result<PipeWrite, Errno> {
        let p = self.pipes.get_mut(&id).ok_or(Errno::BadFd)?;
        if p.readers == 0 {
            return Ok(PipeWrite::Broken);
        }
        let n = bytes.len().min(PIPE_CAPACITY - p.data.len());
        if n == 0 && !bytes.is_empty() {
            return Ok(PipeWrite::Full);
        }
        p.data.extend(&bytes[..n]);
        Ok(PipeWrite::Wrote(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_come_out_in_order_then_end_of_file() {
        let mut t = PipeTable::default();
        let id = t.create().unwrap();
        assert_eq!(t.read(id, 4).unwrap(), PipeRead::Empty);
        assert_eq!(t.write(id, b"hello").unwrap(), PipeWrite::Wrote(5));
        assert_eq!(t.read(id, 3).unwrap(), PipeRead::Data(b"hel".to_vec()));
        t.drop_ref(id, true);
        assert_eq!(t.read(id, 9).unwrap(), PipeRead::Data(b"lo".to_vec()));
        assert_eq!(t.read(id, 9).unwrap(), PipeRead::EndOfFile);
        t.drop_ref(id, false);
        assert!(t.read(id, 1).is_err(), "the pipe is gone");
    }

    #[test]
    fn a_full_pipe_waits_and_one_without_readers_is_broken() {
        let mut t = PipeTable::default();
        let id = t.create().unwrap();
        let big = alloc::vec![7u8; PIPE_CAPACITY + 10];
        assert_eq!(t.write(id, &big).unwrap(), PipeWrite::Wrote(PIPE_CAPACITY));
        assert_eq!(t.write(id, b"x").unwrap(), PipeWrite::Full);
        t.drop_ref(id, false);
        assert_eq!(t.write(id, b"x").unwrap(), PipeWrite::Broken);
    }
}
