//! The file family: `sys_write`, `sys_read`, `sys_open`, `sys_close`,
//! `sys_stat`, `sys_fsync`, `sys_readdir` and console input.

use alloc::string::String;
use alloc::vec::Vec;

use neoos_abi::limits::PATH_MAX;
use neoos_mm::Errno;

use super::{Completion, FileCall, SchedulerCall, UserPtr, CHUNK};
use crate::files::{Descriptor, OpenFile};
use crate::fs::Node;
use crate::kernel::Kernel;
use crate::linux::meta::Touch;
use crate::platform::Platform;
use crate::process::Pid;

impl<P: Platform> Kernel<P> {
    pub(super) fn file_call(&mut self, pid: Pid, call: FileCall) -> Completion {
        let done = match call {
            FileCall::Read { fd, buf, count }
                if matches!(
                    self.descriptor(pid, fd),
                    Ok(Descriptor::Pipe { write: false, .. })
                ) =>
            {
                return Completion::Scheduler(SchedulerCall::PipeIo {
                    fd,
                    buf,
                    count: count.max(0) as usize,
                    write: false,
                })
            }
            FileCall::Write { fd, buf, count }
                if matches!(
                    self.descriptor(pid, fd),
                    Ok(Descriptor::Pipe { write: true, .. })
                ) =>
            {
                return Completion::Scheduler(SchedulerCall::PipeIo {
                    fd,
                    buf,
                    count: count.max(0) as usize,
                    write: true,
                })
            }
            FileCall::Write { fd, buf, count } => self.write(pid, fd, buf, count),
            FileCall::Read { fd, buf, count } => {
                if self.descriptor(pid, fd) == Ok(Descriptor::Console) {
                    // The console is read like `sys_read_console`, waiting.
                    return match usize::try_from(count) {
                        Ok(0) => Completion::Done(Ok(0)),
                        _ => console_read(buf, count),
                    };
                }
                self.read(pid, fd, buf, count)
            }
            FileCall::ReadConsole { buf, count } => return console_read(buf, count),
            FileCall::Open { path, mode }
                if let Some(wait) = self
                    .path_pages_first(pid, [Some(path), None], PATH_MAX)
                    .or_else(|| {
                        let change = crate::change_reads::neo_open_change(mode);
                        self.metadata_reads_of_path(pid, path, change)
                    }) =>
            {
                return Completion::Scheduler(wait);
            }
            FileCall::Stat { path, .. } | FileCall::ReadDir { path, .. }
                if let Some(wait) = self
                    .path_pages_first(pid, [Some(path), None], PATH_MAX)
                    .or_else(|| self.metadata_reads_of_path(pid, path, None)) =>
            {
                return Completion::Scheduler(wait);
            }
            FileCall::Open { path, mode } if self.open_changes_volume(mode) => {
                return self.call_flushing_after(pid, true, |k| {
                    Completion::Done(k.heap_reserve_check().and_then(|_| k.open(pid, path, mode)))
                });
            }
            FileCall::Open { path, mode } => self
                .heap_reserve_check()
                .and_then(|_| self.open(pid, path, mode)),
            FileCall::Close { fd } if let Some(wait) = self.reads_before_close(pid, fd) => {
                return Completion::Scheduler(wait);
            }
            FileCall::Close { fd } => match self.descriptor(pid, fd) {
                Ok(Descriptor::File(f))
                    if crate::mount::is_volume_file(f.file)
                        && self.memory.file_close_writes(f.file) =>
                {
                    return match self.begin_closing_writeback(pid, fd, f.file) {
                        Ok(call) => Completion::Scheduler(call),
                        Err(e) => Completion::Done(Err(e)),
                    };
                }
                _ => self.close(pid, fd),
            },
            FileCall::Stat { path, out } => self.stat(pid, path, out),
            FileCall::Fsync { fd } => match self.descriptor(pid, fd) {
                Ok(Descriptor::File(f)) if crate::mount::is_volume_file(f.file) => {
                    let mut files = neoos_mm::DirtyFiles::default();
                    files.note(f.file);
                    return Completion::Scheduler(self.begin_writeback(pid, files));
                }
                _ => self.fsync(pid, fd),
            },
            FileCall::ReadDir { path, buf, len } => self.readdir(pid, path, buf, len),
        };
        Completion::Done(done)
    }

    /// Descriptor `fd` of process `pid`.
    pub(crate) fn descriptor(&self, pid: Pid, fd: i64) -> Result<Descriptor, Errno> {
        self.processes.get(pid).ok_or(Errno::Inval)?.files.get(fd)
    }

    fn store_position(&mut self, pid: Pid, fd: i64, f: OpenFile) {
        if let Some(p) = self.processes.get_mut(pid) {
            p.files.update(fd, Descriptor::File(f));
        }
    }

    /// `sys_write`: the whole buffer is checked and the disk room reserved
    /// before any byte moves, so a call that fails changes nothing; a
    /// failure after some bytes were written (no memory for the page cache)
    /// reports how many were.
    pub(crate) fn write(
        &mut self,
        pid: Pid,
        fd: i64,
        buf: UserPtr,
        count: i64,
    ) -> Result<i64, Errno> {
        let written = self.write_bytes(pid, fd, buf, count);
        if let (Ok(1..), Ok(Descriptor::File(f))) = (written, self.descriptor(pid, fd)) {
            self.touch_file(f.file, Touch::Modify);
        }
        written
    }

    fn write_bytes(&mut self, pid: Pid, fd: i64, buf: UserPtr, count: i64) -> Result<i64, Errno> {
        let mut d = self.descriptor(pid, fd)?;
        let count = usize::try_from(count).map_err(|_| Errno::Inval)?;
        if let Descriptor::File(f) = &d {
            // Refused for want of room before its buffer is checked page
            // by page: the work a refused write costs does not grow with it.
            self.file_io().check_write_room(f, count)?;
        }
        // Nothing has moved yet: a page of the buffer to read from the
        // disk is waited for without the lock, and the call made again.
        self.check_readable_deferring(pid, buf, count)?;
        if let Descriptor::File(f) = &d {
            self.file_io().reserve_write(f, count)?;
        }
        let mut done = 0;
        while done < count {
            self.reclaim_if_low();
            // Chunks end on page boundaries of the file: a page the write
            // covers whole is never written in part (which reads it first).
            let n =
                (count - done).min(CHUNK - self.write_offset(&d) % neoos_mm::PAGE_SIZE as usize);
            let wrote =
                self.copy_in(pid, buf.offset(done as u64), n)
                    .and_then(|bytes| match &mut d {
                        Descriptor::Console => {
                            self.platform.console_write(&bytes);
                            Ok(n)
                        }
                        Descriptor::Zero | Descriptor::Null => Ok(n),
                        Descriptor::Pipe { .. } => Err(Errno::BadFd),
                        Descriptor::Dir { .. } => Err(Errno::BadFd),
                        Descriptor::File(f) => {
                            let wrote = self.file_io().write(f, &bytes);
                            self.store_position(pid, fd, *f);
                            wrote
                        }
                    });
            match wrote {
                Ok(w) if w == n => done += n,
                Ok(w) => return Ok((done + w) as i64),
                Err(_) if done > 0 => return Ok(done as i64),
                Err(e) => return Err(e),
            }
        }
        Ok(count as i64)
    }

    /// Where the next byte written through `d` goes in its file (its
    /// position, its end with `O_APPEND`); 0 for anything but a file.
    fn write_offset(&self, d: &Descriptor) -> usize {
        match d {
            Descriptor::File(f) if f.append => self.memory.file_size(f.file).unwrap_or(f.position),
            Descriptor::File(f) => f.position,
            _ => 0,
        }
        .try_into()
        .unwrap_or(0)
    }

    pub(crate) fn read(
        &mut self,
        pid: Pid,
        fd: i64,
        buf: UserPtr,
        count: i64,
    ) -> Result<i64, Errno> {
        let read = self.read_bytes(pid, fd, buf, count);
        if let (Ok(_), Ok(Descriptor::File(f))) = (read, self.descriptor(pid, fd)) {
            self.touch_file(f.file, Touch::Access);
        }
        read
    }

    fn read_bytes(&mut self, pid: Pid, fd: i64, buf: UserPtr, count: i64) -> Result<i64, Errno> {
        let d = self.descriptor(pid, fd)?;
        let count = usize::try_from(count).map_err(|_| Errno::Inval)?;
        if d == Descriptor::Zero {
            return self.read_zeros(pid, buf, count);
        }
        if d == Descriptor::Null {
            return Ok(0);
        }
        let Descriptor::File(mut f) = d else {
            return Err(Errno::Inval);
        };
        let mut done = 0;
        let mut chunk = Vec::new();
        while done < count {
            self.reclaim_if_low();
            let want = (count - done).min(CHUNK);
            chunk.clear();
            chunk.try_reserve_exact(want).map_err(|_| Errno::NoMem)?;
            chunk.resize(want, 0);
            let n = self.file_io().read(&mut f, &mut chunk)?;
            // The position moves only by what reached the buffer: a bad
            // buffer fails the call unchanged, or ends it with the count so
            // far. The first chunk's page to read from the disk is waited
            // for without the lock (nothing moved yet), the call made again;
            // a later chunk's too in a volume file's window, which then ends
            // before that chunk and goes on from it after the wait.
            let out = buf.offset(done as u64);
            let copied = match (done, self.writebacks.user_pages.continuable) {
                (0, _) | (_, true) => self.copy_out_deferring(pid, out, &chunk[..n]),
                _ => self.copy_out(pid, out, &chunk[..n]),
            };
            if done > 0 && copied == Err(Errno::WaitForRead) {
                self.writebacks.user_pages.stopped = true;
                break;
            }
            match copied {
                Ok(()) => self.store_position(pid, fd, f),
                Err(_) if done > 0 => break,
                Err(e) => return Err(e),
            }
            done += n;
            if n < want {
                break;
            }
        }
        Ok(done as i64)
    }

    /// A read of `/dev/zero`: `count` zero bytes, the buffer checked whole
    /// first.
    fn read_zeros(&mut self, pid: Pid, buf: UserPtr, count: usize) -> Result<i64, Errno> {
        self.check_writable(pid, buf, count)?;
        let zeros = [0u8; 4096];
        let mut done = 0;
        while done < count {
            let n = (count - done).min(zeros.len());
            self.copy_out(pid, buf.offset(done as u64), &zeros[..n])?;
            done += n;
        }
        Ok(count as i64)
    }

    /// Console input that has already arrived (without waiting), at most
    /// `count` bytes, stored at `buf`: the number of bytes, 0 if none yet.
    /// The kernel repeats it (yielding in between) until it is not 0.
    pub fn read_console_step(
        &mut self,
        pid: Pid,
        buf: UserPtr,
        count: usize,
    ) -> Result<i64, Errno> {
        let mut bytes = Vec::new();
        while bytes.len() < count {
            match self
                .console_ahead
                .take()
                .or_else(|| self.platform.console_read())
            {
                Some(b) => bytes.push(if b == b'\r' { b'\n' } else { b }),
                None => break,
            }
        }
        self.copy_out(pid, buf, &bytes)?;
        Ok(bytes.len() as i64)
    }

    /// Whether console input has arrived that a read would take now (a
    /// byte read to find out is kept for that read).
    pub(crate) fn console_input_waiting(&mut self) -> bool {
        if self.console_ahead.is_none() {
            self.console_ahead = self.platform.console_read();
        }
        self.console_ahead.is_some()
    }

    /// Checks a console-read buffer once, before any waiting.
    pub fn check_console_buffer(
        &mut self,
        pid: Pid,
        buf: UserPtr,
        count: usize,
    ) -> Result<(), Errno> {
        self.check_writable(pid, buf, count)
    }

    /// Whether a `sys_open` with `mode` may change the volume (it creates
    /// or truncates): its metadata writes then wait without the lock
    /// ([`Self::call_flushing_after`]).
    fn open_changes_volume(&self, mode: i64) -> bool {
        use neoos_abi::open::{O_CREAT, O_TRUNC};
        mode & i64::from(O_CREAT | O_TRUNC) != 0 && self.fs.disk.home_mounted()
    }

    fn open(&mut self, pid: Pid, path: UserPtr, mode: i64) -> Result<i64, Errno> {
        let path = self.copy_string(pid, path, PATH_MAX)?;
        self.open_path(pid, &path, mode as u32)
    }

    /// Opens `path` with NeoOS `mode` and installs the descriptor.
    pub(crate) fn open_path(&mut self, pid: Pid, path: &str, mode: u32) -> Result<i64, Errno> {
        let p = self.processes.get(pid).ok_or(Errno::Inval)?;
        if !p.files.has_room() {
            return Err(Errno::NoMem);
        }
        let d = self.file_io().open(path, mode)?;
        let installed = self
            .processes
            .get_mut(pid)
            .ok_or(Errno::Inval)
            .and_then(|p| p.files.install(d));
        if installed.is_err() {
            let _ = self.file_io().close(d);
        }
        installed
    }

    /// Closes descriptor `fd` of process `pid`.
    pub(crate) fn close(&mut self, pid: Pid, fd: i64) -> Result<i64, Errno> {
        let p = self.processes.get_mut(pid).ok_or(Errno::Inval)?;
        let d = p.files.take(fd)?;
        self.file_io().close(d).map(|_| 0)
    }

    fn stat(&mut self, pid: Pid, path: UserPtr, out: UserPtr) -> Result<i64, Errno> {
        let path = self.copy_string(pid, path, PATH_MAX)?;
        let (kind, size) = match self.fs.lookup(&path) {
            Some(Node::Dir) => (neoos_abi::stat::KIND_DIR, 0),
            Some(Node::File(id)) => (neoos_abi::stat::KIND_FILE, self.file_io().size(id)),
            None => return Err(Errno::NoEnt),
        };
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&kind.to_le_bytes());
        bytes[8..].copy_from_slice(&size.to_le_bytes());
        self.copy_out(pid, out, &bytes)?;
        Ok(0)
    }

    fn fsync(&mut self, pid: Pid, fd: i64) -> Result<i64, Errno> {
        match self.descriptor(pid, fd)? {
            Descriptor::Console | Descriptor::Zero | Descriptor::Null | Descriptor::Dir { .. } => {
                Ok(0)
            }
            Descriptor::Pipe { .. } => Err(Errno::Inval),
            Descriptor::File(f) => self.file_io().sync(f.file).map(|_| 0),
        }
    }

    /// `sys_readdir`: the listing is made a kernel buffer at a time
    /// ([`CHUNK`] bytes, allocated fallibly), never whole, so a folder of
    /// many long names costs the kernel no more memory than that.
    fn readdir(&mut self, pid: Pid, path: UserPtr, buf: UserPtr, len: i64) -> Result<i64, Errno> {
        let len = usize::try_from(len).map_err(|_| Errno::Inval)?;
        let path = self.copy_string(pid, path, PATH_MAX)?;
        let dir = self.fs.directory(&path)?;
        let mut text = Vec::new();
        text.try_reserve_exact(CHUNK).map_err(|_| Errno::NoMem)?;
        let mut total = 0usize;
        let mut after: Option<String> = None;
        loop {
            text.clear();
            let Some(last) = self.fs.list_step(&dir, after.as_deref(), &mut text) else {
                return Ok(total as i64);
            };
            if total < len {
                let n = text.len().min(len - total);
                self.copy_out(pid, buf.offset(total as u64), &text[..n])?;
            }
            total += text.len();
            after = Some(last);
        }
    }
}

/// A console read of `count` bytes: refused unless `count > 0`, at most a
/// chunk per call.
fn console_read(buf: UserPtr, count: i64) -> Completion {
    match usize::try_from(count) {
        Ok(n) if n > 0 => Completion::Scheduler(SchedulerCall::ReadConsole {
            buf,
            count: n.min(CHUNK),
        }),
        _ => Completion::Done(Err(Errno::Inval)),
    }
}
