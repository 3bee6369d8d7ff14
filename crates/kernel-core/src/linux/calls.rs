//! The Linux-only calls: `arch_prctl`, `set_tid_address`, `brk`,
//! `open`/`openat` with Linux flags, `readv`/`writev` (over the file
//! family's read and write), `lseek`, `ioctl` on the console, the `stat`
//! family with Linux's `struct stat`, identity calls (one root user),
//! `getppid`, `uname`, `clock_gettime`, `getrandom`; and `ENOSYS` for the
//! rest, an unknown number logged once.

use alloc::vec::Vec;

use neoos_abi::layout::USER_END;
use neoos_abi::linux::{self as abi, stat as st};
use neoos_abi::mman::{MAP_ANON, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use neoos_abi::TICKS_PER_SECOND;
use neoos_mm::{BreakMove, Errno, ProgramBreak};

use super::{decode_linux, LinuxCall, LinuxError, LinuxState, ProgramAbi};
use crate::files::Descriptor;
use crate::fs::Node;
use crate::kernel::Kernel;
use crate::platform::Platform;
use crate::process::{Parent, Pid};
use crate::syscall::{decode_neo, Call, Completion, Decoded, FileCall, UserPtr};

/// Most `iovec`s one `readv`/`writev` takes (Linux's `IOV_MAX`).
const IOV_MAX: i64 = 1024;
/// Most bytes one `writev` moves (Linux's `MAX_RW_COUNT`: 2 GiB less a page).
const MAX_RW_COUNT: u64 = 0x7fff_f000;
/// Most bytes one `getrandom` call fills (a larger request gets fewer, as
/// Linux allows).
const GETRANDOM_MAX: usize = 64 * 1024;
/// What `TIOCGWINSZ` reports for the serial console: rows, columns.
const CONSOLE_SIZE: (u16, u16) = (24, 80);
/// The console's device number (`ttyS0`: major 4, minor 64).
const CONSOLE_RDEV: u64 = (4 << 8) | 64;
/// The file type of a pipe in `st_mode`.
const S_IFIFO: u32 = 0o010000;
/// `/dev/null`'s device number (major 1, minor 3).
const NULL_RDEV: u64 = (1 << 8) | 3;
/// `/dev/zero`'s device number (major 1, minor 5).
const ZERO_RDEV: u64 = (1 << 8) | 5;
/// The path of the zero device (no file-system node: the Linux open and
/// stat calls know it by name).
pub const DEV_ZERO: &str = "/dev/zero";

/// Why a Linux call failed: an error of the mapping core, or one only
/// Linux names.
pub(super) enum Fail {
    Errno(Errno),
    Linux(LinuxError),
}

impl From<Errno> for Fail {
    fn from(e: Errno) -> Self {
        Fail::Errno(e)
    }
}

impl From<LinuxError> for Fail {
    fn from(e: LinuxError) -> Self {
        Fail::Linux(e)
    }
}

pub(super) type LinuxResult = Result<i64, Fail>;

fn complete(result: LinuxResult) -> Completion {
    match result {
        Ok(v) => Completion::Done(Ok(v)),
        Err(Fail::Errno(e)) => Completion::Done(Err(e)),
        Err(Fail::Linux(e)) => Completion::LinuxError(e),
    }
}

/// What a `struct stat` describes.
enum StatOf {
    Console,
    /// `/dev/zero` (character device 1:5).
    Zero,
    /// `/dev/null` (character device 1:3).
    Null,
    Pipe {
        id: u32,
    },
    File {
        id: u64,
        size: u64,
        meta: super::meta::FileMeta,
    },
    Dir {
        ino: u64,
        meta: super::meta::FileMeta,
    },
}

/// Decodes call `number` by the numbering of `program`; `None` for a
/// NeoOS number that is no call.
#[inline]
pub(crate) fn decode_for(program: &ProgramAbi, number: usize, regs: [u64; 6]) -> Option<Decoded> {
    match program {
        ProgramAbi::Neo => decode_neo(number, regs),
        ProgramAbi::Linux(_) => Some(decode_linux(number, regs)),
    }
}

impl<P: Platform> Kernel<P> {
    /// Decodes call `number` of process `pid` by the numbering of its
    /// program; `None` for a NeoOS number that is no call (or no such
    /// process).
    pub fn decode(&self, pid: Pid, number: usize, regs: [u64; 6]) -> Option<Decoded> {
        decode_for(&self.processes.get(pid)?.abi, number, regs)
    }

    /// The FS base the calling thread of `pid` runs with (the kernel loads
    /// a thread's when it switches to it).
    pub fn fs_base_of(&self, pid: Pid) -> u64 {
        self.caller_part(pid).map_or(0, |t| t.fs_base)
    }

    // Kept out of line: inlined, the Linux handlers' locals would join the
    // frame of every system call (the kernel stack is 32 KiB).
    #[inline(never)]
    pub(crate) fn linux_call(&mut self, pid: Pid, call: LinuxCall) -> Completion {
        // Its path strings first: a page of one to read from the disk is
        // waited for without the lock, the call made again.
        let paths = crate::user_reads::linux_path_args(&call);
        if paths[0].is_some() {
            let max = super::namespace::LINUX_PATH_MAX;
            if let Some(wait) = self.path_pages_first(pid, paths, max) {
                return Completion::Scheduler(wait);
            }
        }
        if let Some(wait) = self.linux_metadata_reads(pid, &call) {
            return Completion::Scheduler(wait);
        }
        self.linux_call_flushing_after(pid, call)
    }

    /// [`Self::linux_call`], made.
    pub(crate) fn linux_call_made(&mut self, pid: Pid, call: LinuxCall) -> Completion {
        let result = match call {
            LinuxCall::ArchPrctl { code, addr } => self.arch_prctl(pid, code, addr),
            LinuxCall::SetTidAddress { tidptr } => Ok(self.set_tid_address(pid, tidptr)),
            LinuxCall::Brk { addr } => self.brk(pid, addr),
            LinuxCall::Open {
                dirfd,
                path,
                flags,
                perm,
            } => self.linux_open(pid, dirfd, path, flags, perm),
            LinuxCall::Writev { fd, iov, count }
                if matches!(self.descriptor(pid, fd), Ok(Descriptor::Pipe { .. })) =>
            {
                return self.first_buffer_to_pipe(pid, fd, iov, count);
            }
            LinuxCall::Writev { fd, iov, count } => self.writev(pid, fd, iov, count),
            LinuxCall::Readv {
                fd,
                iov,
                count,
                at: None,
            } => return self.readv(pid, fd, iov, count),
            LinuxCall::Readv {
                fd,
                iov,
                count,
                at: Some(offset),
            } => self.preadv(pid, fd, iov, count, offset),
            LinuxCall::Lseek { fd, offset, whence } => self.lseek(pid, fd, offset, whence),
            LinuxCall::Ioctl { fd, request, arg } => self.ioctl(pid, fd, request, arg),
            LinuxCall::Fstat { fd, out } => self.fstat(pid, fd, out),
            LinuxCall::Stat { path, out } => self.stat_path(pid, abi::AT_FDCWD, path, out),
            LinuxCall::FstatAt {
                dirfd,
                path,
                out,
                flags,
            } => self.fstatat(pid, dirfd, path, out, flags),
            LinuxCall::Identity { which } => self.identity(pid, which),
            LinuxCall::GetPpid => Ok(self.parent_pid(pid)),
            LinuxCall::Uname { buf } => self.uname(pid, buf),
            LinuxCall::SchedGetAffinity {
                pid: target,
                len,
                mask,
            } => self.sched_getaffinity(pid, target, len, mask),
            LinuxCall::Sync => return Completion::Scheduler(self.begin_sync(pid)),
            LinuxCall::ClockGetTime { clock, out } => self.clock_gettime(pid, clock, out),
            LinuxCall::GetRandom { buf, len, flags } => self.getrandom(pid, buf, len, flags),
            LinuxCall::PreadWrite {
                fd,
                buf,
                count,
                offset,
                write,
            } => self.pread_write(pid, fd, buf, count, offset, write),
            LinuxCall::Getdents { fd, buf, count } => self.getdents(pid, fd, buf, count),
            LinuxCall::Getcwd { buf, size } => self.getcwd(pid, buf, size),
            LinuxCall::Chdir { path } => self.chdir(pid, path),
            LinuxCall::Fchdir { fd } => self.fchdir(pid, fd),
            LinuxCall::Mkdir { dirfd, path, mode } => self.mkdir(pid, dirfd, path, mode),
            LinuxCall::Unlink { dirfd, path, flags } => self.unlink_at(pid, dirfd, path, flags),
            LinuxCall::Rename {
                old_dirfd,
                old,
                new_dirfd,
                new,
                flags,
            } => self.rename(pid, (old_dirfd, old), (new_dirfd, new), flags),
            LinuxCall::Access {
                dirfd,
                path,
                mode,
                flags,
            } => self.access(pid, dirfd, path, mode, flags),
            LinuxCall::Chmod { dirfd, path, mode } => self.chmod(pid, dirfd, path, mode),
            LinuxCall::Fchmod { fd, mode } => self.fchmod(pid, fd, mode),
            LinuxCall::Truncate { path, len } => self.truncate(pid, path, len),
            LinuxCall::Readlink {
                dirfd,
                path,
                buf,
                size,
            } => self.readlink(pid, dirfd, path, buf, size),
            LinuxCall::Time { out } => self.time(pid, out),
            LinuxCall::GetTimeOfDay { tv, tz } => self.gettimeofday(pid, tv, tz),
            LinuxCall::Utimensat {
                dirfd,
                path,
                times,
                flags,
            } => self.utimensat(pid, dirfd, path, times, flags),
            LinuxCall::NotProvided => Err(LinuxError::NoSys.into()),
            LinuxCall::Unknown { number } => {
                self.log_unknown_once(pid, number);
                Err(LinuxError::NoSys.into())
            }
            other => return self.more_linux_call(pid, other),
        };
        complete(result)
    }

    pub(super) fn linux_state(&mut self, pid: Pid) -> Result<&mut LinuxState, Errno> {
        match self.processes.get_mut(pid).map(|p| &mut p.abi) {
            Some(ProgramAbi::Linux(state)) => Ok(state),
            _ => Err(Errno::Inval),
        }
    }

    fn arch_prctl(&mut self, pid: Pid, code: u64, addr: u64) -> LinuxResult {
        match code {
            abi::ARCH_SET_FS => {
                if addr >= USER_END {
                    return Err(Errno::Perm.into());
                }
                self.linux_state(pid)?;
                self.caller_part_mut(pid)?.fs_base = addr;
                self.platform.set_user_fs_base(addr);
                Ok(0)
            }
            abi::ARCH_GET_FS => {
                self.linux_state(pid)?;
                let base = self.caller_part_mut(pid)?.fs_base;
                self.copy_out(pid, UserPtr(addr), &base.to_le_bytes())?;
                Ok(0)
            }
            _ => Err(Errno::Inval.into()),
        }
    }

    /// `brk`: moves the program break, mapping or unmapping the pages
    /// between the old and new break (private, anonymous, read-write). It
    /// returns the new break, or the old one when the break cannot move
    /// (below its start, into another mapping, out of memory).
    fn brk(&mut self, pid: Pid, addr: u64) -> LinuxResult {
        self.linux_state(pid)?;
        let space = self.processes.get(pid).ok_or(Errno::Inval)?.space;
        let brk = self.memory.program_break(space).ok_or(Errno::Inval)?;
        let moved = match brk.move_to(addr) {
            BreakMove::Stays => return Ok(brk.end as i64),
            BreakMove::Within => Ok(()),
            BreakMove::Grows { old_end, new_end } => {
                self.grow_break(pid, (brk.start, old_end), new_end)
            }
            BreakMove::Shrinks { new_end, old_end } => {
                self.with_space(pid, |m, s, hw| m.munmap(s, hw, new_end, old_end - new_end))
            }
        };
        if moved.is_err() {
            return Ok(brk.end as i64);
        }
        let end = addr;
        self.memory
            .set_program_break(space, ProgramBreak { end, ..brk });
        Ok(addr as i64)
    }

    /// Maps the break's growth `[old_end, new_end)`: the heap's mapping
    /// (at or above `start`, the break's start) grows in place when it
    /// ends at the old break and can (`MemorySystem::grow_anonymous`: so
    /// page-by-page growth never runs into the bound on mappings, as on
    /// Linux), else the growth is a mapping of its own.
    fn grow_break(
        &mut self,
        pid: Pid,
        (start, old_end): (u64, u64),
        new_end: u64,
    ) -> Result<(), Errno> {
        self.heap_reserve_check()?;
        self.address_space_check(pid, new_end - old_end)?;
        let space = self.processes.get(pid).ok_or(Errno::Inval)?.space;
        let rw = PROT_READ | PROT_WRITE;
        if self
            .memory
            .grow_anonymous(space, (start, old_end), new_end, rw)
        {
            return Ok(());
        }
        self.mapping_room_check(pid, 1)?;
        // A mapping across the old end, or one starting before the new end.
        let across = self.memory.would_split(space, old_end, 0);
        let taken = across
            || self
                .memory
                .maps_from(space, old_end)
                .next()
                .is_some_and(|m| m.start < new_end);
        if taken {
            return Err(Errno::NoMem);
        }
        self.with_space(pid, |m, s, hw| {
            m.mmap(
                s,
                hw,
                old_end,
                new_end - old_end,
                rw,
                MAP_PRIVATE | MAP_ANON | MAP_FIXED,
                None,
                0,
            )
        })
        .map(|_| ())
    }

    /// `open`/`openat`: Linux's access modes, `O_CREAT`, `O_EXCL`,
    /// `O_TRUNC` and `O_APPEND` have NeoOS's values; `O_NOCTTY`,
    /// `O_LARGEFILE` and `O_CLOEXEC` change nothing here; any other flag is
    /// refused (`EINVAL`). The permission bits are ignored (one user).
    fn linux_open(
        &mut self,
        pid: Pid,
        dirfd: i64,
        path: UserPtr,
        flags: u32,
        perm: u32,
    ) -> LinuxResult {
        self.heap_reserve_check()?;
        if !self.has_descriptor_room(pid) {
            return Err(LinuxError::TooManyFiles.into());
        }
        let ignored = abi::O_NOCTTY
            | abi::O_LARGEFILE
            | abi::O_CLOEXEC
            | abi::O_NOFOLLOW
            | abi::O_NONBLOCK
            | abi::O_DIRECTORY;
        let mode = flags & !ignored;
        if mode & !neoos_abi::open::VALID != 0 {
            return Err(Errno::Inval.into());
        }
        let path = self.resolve_path(pid, dirfd, path)?;
        let access = mode & neoos_abi::open::O_ACCMODE;
        if let Some(what) = self.special_of(pid, &path) {
            if flags & abi::O_DIRECTORY != 0 && what != super::procfs::Special::ProcDir {
                return Err(LinuxError::NotDir.into());
            }
            if mode & neoos_abi::open::O_CREAT != 0 && mode & neoos_abi::open::O_EXCL != 0 {
                return Err(Errno::Exists.into());
            }
            let fd = self.open_special(pid, what, access)?;
            if let Some(p) = self.processes.get_mut(pid) {
                p.files.set_close_on_exec(fd, flags & abi::O_CLOEXEC != 0)?;
            }
            return Ok(fd);
        }
        let node = self.fs.lookup(&path);
        if node == Some(Node::Dir)
            && access == neoos_abi::open::O_RDONLY
            && mode & neoos_abi::open::O_CREAT == 0
        {
            let fd = self.open_dir(pid, path)?;
            if let Some(p) = self.processes.get_mut(pid) {
                p.files.set_close_on_exec(fd, flags & abi::O_CLOEXEC != 0)?;
            }
            return Ok(fd);
        }
        if flags & abi::O_DIRECTORY != 0 && node != Some(Node::Dir) {
            return Err(match node {
                None => Fail::Errno(Errno::NoEnt),
                Some(_) => LinuxError::NotDir.into(),
            });
        }
        if node == Some(Node::Dir) {
            return Err(LinuxError::IsDir.into());
        }
        if let Some(Node::File(id)) = node {
            let ids = self.linux_state(pid)?.ids;
            let access = mode & neoos_abi::open::O_ACCMODE;
            let read = access != neoos_abi::open::O_WRONLY;
            let write = access != neoos_abi::open::O_RDONLY || mode & neoos_abi::open::O_TRUNC != 0;
            if !self.may_open(id, &ids, read, write) {
                return Err(Errno::Access.into());
            }
        }
        if node.is_none() && is_read_only_path(&path) && mode & neoos_abi::open::O_CREAT != 0 {
            return Err(Errno::Perm.into());
        }
        let fd = self.open_path(pid, &path, mode)?;
        if node.is_none() {
            if let Ok(Descriptor::File(f)) = self.descriptor(pid, fd) {
                let (umask, ids) = self
                    .linux_state(pid)
                    .map_or((0o022, Default::default()), |s| (s.umask, s.ids));
                // A record that cannot be made leaves the defaults.
                let _ = self.set_created(f.file, perm & !umask, (ids.euid(), ids.egid()));
            }
        }
        if let Some(p) = self.processes.get_mut(pid) {
            p.files.set_close_on_exec(fd, flags & abi::O_CLOEXEC != 0)?;
        }
        Ok(fd)
    }

    /// The `(base, len)` pairs of `count` iovecs at `iov`, after checking
    /// the count and that the lengths add up to at most `i64::MAX`.
    fn iovecs(&mut self, pid: Pid, iov: UserPtr, count: i64) -> Result<Vec<u8>, Errno> {
        if !(0..=IOV_MAX).contains(&count) {
            return Err(Errno::Inval);
        }
        let raw = self.copy_in(pid, iov, count as usize * 16)?;
        let mut total: u64 = 0;
        for pair in raw.chunks_exact(16) {
            total = total
                .checked_add(field(pair, 8))
                .filter(|&t| t <= i64::MAX as u64)
                .ok_or(Errno::Inval)?;
        }
        Ok(raw)
    }

    /// `writev`: at most `MAX_RW_COUNT` bytes in all (as Linux: the rest
    /// is not written); a file refuses what its disk cannot hold before any
    /// buffer is looked at; then every buffer is checked, so a bad one fails
    /// the call before anything is written; then each goes out through the
    /// file family's write, stopping at a short write.
    fn writev(&mut self, pid: Pid, fd: i64, iov: UserPtr, count: i64) -> LinuxResult {
        let descriptor = self.descriptor(pid, fd)?;
        let raw = self.iovecs(pid, iov, count)?;
        let lens = clamped_lengths(&raw, MAX_RW_COUNT);
        if let Descriptor::File(f) = &descriptor {
            self.file_io()
                .check_write_room(f, lens.iter().sum::<u64>() as usize)?;
        }
        for (pair, &len) in raw.chunks_exact(16).zip(&lens) {
            self.check_readable_deferring(pid, UserPtr(field(pair, 0)), len as usize)?;
        }
        let mut done: i64 = 0;
        for (pair, &len) in raw.chunks_exact(16).zip(&lens) {
            let (buf, len) = (UserPtr(field(pair, 0)), len as i64);
            if len == 0 {
                continue;
            }
            let write = Call::Files(FileCall::Write {
                fd,
                buf,
                count: len,
            });
            // Bytes may have moved already: its accesses do not wait.
            match self.without_user_read_waits(|k| k.call(pid, write)) {
                Completion::Done(Ok(n)) => {
                    done += n;
                    if n < len {
                        break;
                    }
                }
                Completion::Done(Err(e)) if done == 0 => return Err(e.into()),
                _ => break,
            }
        }
        Ok(done)
    }

    /// `writev` to a pipe: the first non-empty buffer goes, waiting while
    /// the pipe is full (a short count: the caller writes the rest).
    fn first_buffer_to_pipe(&mut self, pid: Pid, fd: i64, iov: UserPtr, count: i64) -> Completion {
        let raw = match self.iovecs(pid, iov, count) {
            Ok(raw) => raw,
            Err(e) => return Completion::Done(Err(e)),
        };
        let first = raw.chunks_exact(16).find(|pair| field(pair, 8) != 0);
        match first {
            None => Completion::Done(Ok(0)),
            Some(pair) => Completion::Scheduler(crate::syscall::SchedulerCall::PipeIo {
                fd,
                buf: UserPtr(field(pair, 0)),
                count: field(pair, 8).min(MAX_RW_COUNT) as usize,
                write: true,
            }),
        }
    }

    /// `readv`: reads into each buffer in turn through the file family's
    /// read, stopping at a short read. On the console or a pipe it reads
    /// into the first non-empty buffer only, waiting like `read`.
    fn readv(&mut self, pid: Pid, fd: i64, iov: UserPtr, count: i64) -> Completion {
        let raw = match self
            .descriptor(pid, fd)
            .and_then(|_| self.iovecs(pid, iov, count))
        {
            Ok(raw) => raw,
            Err(e) => return Completion::Done(Err(e)),
        };
        // The console and pipes wait for input: the first non-empty buffer
        // gets what one read gives.
        let console = matches!(
            self.descriptor(pid, fd),
            Ok(Descriptor::Console | Descriptor::Pipe { .. })
        );
        let mut done: i64 = 0;
        for pair in raw.chunks_exact(16) {
            let (buf, len) = (UserPtr(field(pair, 0)), field(pair, 8) as i64);
            if len == 0 {
                continue;
            }
            let read = Call::Files(FileCall::Read {
                fd,
                buf,
                count: len,
            });
            if console {
                return self.call(pid, read);
            }
            // Bytes may have moved already: its accesses do not wait.
            match self.without_user_read_waits(|k| k.call(pid, read)) {
                Completion::Done(Ok(n)) => {
                    done += n;
                    if n < len {
                        break;
                    }
                }
                Completion::Done(Err(e)) if done == 0 => return Completion::Done(Err(e)),
                _ => break,
            }
        }
        Completion::Done(Ok(done))
    }

    /// `preadv`: `readv` from `offset`, the descriptor's position kept
    /// (`EISDIR` on a folder, `ESPIPE` on anything else but a file).
    fn preadv(&mut self, pid: Pid, fd: i64, iov: UserPtr, count: i64, offset: i64) -> LinuxResult {
        let f = match self.descriptor(pid, fd)? {
            Descriptor::File(f) => f,
            Descriptor::Dir { .. } => return Err(LinuxError::IsDir.into()),
            _ => return Err(LinuxError::IllegalSeek.into()),
        };
        let offset = u64::try_from(offset).map_err(|_| Errno::Inval)?;
        let read = self.at_offset(pid, fd, f, offset, |k| match k.readv(pid, fd, iov, count) {
            Completion::Done(r) => r,
            _ => Err(Errno::Inval),
        });
        Ok(read?)
    }

    /// The buffers of `count` `iovec`s at `iov` (checked as `readv` checks
    /// them: `EINVAL` for more than `IOV_MAX` or a total past `i64::MAX`),
    /// the empty ones left out.
    pub fn read_buffers(
        &mut self,
        pid: Pid,
        iov: UserPtr,
        count: i64,
    ) -> Result<Vec<(UserPtr, usize)>, Errno> {
        let raw = self.iovecs(pid, iov, count)?;
        let mut buffers = Vec::new();
        buffers
            .try_reserve_exact(raw.len() / 16)
            .map_err(|_| Errno::NoMem)?;
        for pair in raw.chunks_exact(16) {
            if field(pair, 8) != 0 {
                buffers.push((UserPtr(field(pair, 0)), field(pair, 8) as usize));
            }
        }
        Ok(buffers)
    }

    fn lseek(&mut self, pid: Pid, fd: i64, offset: i64, whence: u32) -> LinuxResult {
        let mut f = match self.descriptor(pid, fd)? {
            Descriptor::File(f) => f,
            Descriptor::Dir { id } => return self.seek_dir(id, offset, whence),
            Descriptor::Null | Descriptor::Zero => return Ok(0),
            _ => return Err(LinuxError::IllegalSeek.into()),
        };
        let base = match whence {
            abi::SEEK_SET => 0,
            abi::SEEK_CUR => f.position,
            abi::SEEK_END => self.file_io().size(f.file),
            _ => return Err(Errno::Inval.into()),
        };
        let position = i64::try_from(base)
            .ok()
            .and_then(|b| b.checked_add(offset))
            .filter(|&p| p >= 0)
            .ok_or(Errno::Inval)?;
        f.position = position as u64;
        let p = self.processes.get_mut(pid).ok_or(Errno::Inval)?;
        p.files.update(fd, Descriptor::File(f));
        Ok(position)
    }

    /// `ioctl`: the console answers `TCGETS` (a terminal in canonical mode
    /// at 38400 baud, 8 bits) and `TIOCGWINSZ` (24 x 80); anything else,
    /// and any request on a file, is `ENOTTY`.
    fn ioctl(&mut self, pid: Pid, fd: i64, request: u64, arg: UserPtr) -> LinuxResult {
        if self.descriptor(pid, fd)? != Descriptor::Console {
            return Err(LinuxError::NotTty.into());
        }
        match request {
            abi::TIOCGWINSZ => {
                let mut ws = [0u8; abi::WINSIZE_SIZE];
                ws[0..2].copy_from_slice(&CONSOLE_SIZE.0.to_le_bytes());
                ws[2..4].copy_from_slice(&CONSOLE_SIZE.1.to_le_bytes());
                self.copy_out(pid, arg, &ws)?;
                Ok(0)
            }
            abi::TCGETS => {
                self.copy_out(pid, arg, &console_termios())?;
                Ok(0)
            }
            _ => Err(LinuxError::NotTty.into()),
        }
    }

    fn fstat(&mut self, pid: Pid, fd: i64, out: UserPtr) -> LinuxResult {
        let what = match self.descriptor(pid, fd)? {
            Descriptor::Console => StatOf::Console,
            Descriptor::Zero => StatOf::Zero,
            Descriptor::Null => StatOf::Null,
            Descriptor::Pipe { id, .. } => StatOf::Pipe { id },
            Descriptor::File(f) => StatOf::File {
                id: f.file.0,
                size: self.file_io().size(f.file),
                meta: self.meta_of(f.file),
            },
            Descriptor::Dir { id } => {
                let path = self.fs.open_dirs.get(id).ok_or(Errno::BadFd)?.path.clone();
                StatOf::Dir {
                    ino: super::namespace::dir_ino(&path),
                    meta: self.dir_meta(&path),
                }
            }
        };
        self.copy_out(pid, out, &stat_record(&what))?;
        Ok(0)
    }

    fn stat_path(&mut self, pid: Pid, dirfd: i64, path: UserPtr, out: UserPtr) -> LinuxResult {
        let mut path = self.resolve_path(pid, dirfd, path)?;
        use super::procfs::Special;
        match self.special_of(pid, &path) {
            Some(Special::Exe) => path = self.path_of(pid),
            Some(Special::Maps | Special::Meminfo) => {
                let mut r = stat_record(&StatOf::Dir {
                    ino: super::namespace::dir_ino(&path),
                    meta: Default::default(),
                });
                r[st::MODE..st::MODE + 4].copy_from_slice(&(st::S_IFREG | 0o444).to_le_bytes());
                self.copy_out(pid, out, &r)?;
                return Ok(0);
            }
            _ => {}
        }
        let what = match (self.special_of(pid, &path), self.fs.lookup(&path)) {
            (Some(Special::Zero), _) => StatOf::Zero,
            (Some(Special::Null), _) => StatOf::Null,
            (Some(Special::ProcDir), _) | (_, Some(Node::Dir)) => StatOf::Dir {
                ino: super::namespace::dir_ino(&path),
                meta: self.dir_meta(&path),
            },
            (_, Some(Node::File(id))) => StatOf::File {
                id: id.0,
                size: self.file_io().size(id),
                meta: self.meta_of(id),
            },
            (_, None) => return Err(Errno::NoEnt.into()),
        };
        self.copy_out(pid, out, &stat_record(&what))?;
        Ok(0)
    }

    /// `newfstatat`: with `AT_EMPTY_PATH` and an empty path, the
    /// descriptor itself; else the path (symbolic links do not exist, so
    /// `AT_SYMLINK_NOFOLLOW` changes nothing).
    fn fstatat(
        &mut self,
        pid: Pid,
        dirfd: i64,
        path: UserPtr,
        out: UserPtr,
        flags: u32,
    ) -> LinuxResult {
        const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
        if flags & !(abi::AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
            return Err(Errno::Inval.into());
        }
        if flags & abi::AT_EMPTY_PATH != 0 && self.copy_in(pid, path, 1)? == [0] {
            return self.fstat(pid, dirfd, out);
        }
        self.stat_path(pid, dirfd, path, out)
    }

    fn identity(&mut self, pid: Pid, which: super::IdWhich) -> LinuxResult {
        let ids = self.linux_state(pid)?.ids;
        Ok(i64::from(match which {
            super::IdWhich::Uid => ids.uid[0],
            super::IdWhich::Euid => ids.uid[1],
            super::IdWhich::Gid => ids.gid[0],
            super::IdWhich::Egid => ids.gid[1],
        }))
    }

    fn parent_pid(&self, pid: Pid) -> i64 {
        match self.processes.get(pid).map(|p| p.parent) {
            Some(Parent::Process(parent)) => parent as i64,
            _ => 0,
        }
    }

    /// `uname`: system `NeoOS`, a Linux-style release number (C libraries
    /// compare it with the oldest kernel they support), machine `x86_64`.
    fn uname(&mut self, pid: Pid, buf: UserPtr) -> LinuxResult {
        let fields: [&[u8]; 6] = [
            b"NeoOS",
            b"neoos",
            b"6.1.0-neoos",
            b"NeoOS",
            b"x86_64",
            b"(none)",
        ];
        let mut record = [0u8; 6 * abi::UTSNAME_FIELD];
        for (slot, text) in record.chunks_exact_mut(abi::UTSNAME_FIELD).zip(fields) {
            slot[..text.len()].copy_from_slice(text);
        }
        self.copy_out(pid, buf, &record)?;
        Ok(0)
    }

    /// `sched_getaffinity`: every thread may run on every online CPU (NeoOS
    /// pins none), so the mask has a bit for each, in the kernel's mask
    /// size (whole 8-byte words for its CPUs); that size is the result.
    /// `EINVAL` for a `len` shorter than that or not a whole number of
    /// words, `ESRCH` for no such thread or process, `EFAULT` for a bad
    /// `mask`.
    fn sched_getaffinity(&mut self, pid: Pid, target: i64, len: u64, mask: UserPtr) -> LinuxResult {
        let cpus = self.platform.cpus_online().clamp(1, 64);
        let size = u64::from(cpus.div_ceil(64) * 8);
        if len < size || !len.is_multiple_of(8) {
            return Err(Errno::Inval.into());
        }
        let exists = target == 0
            || u32::try_from(target).is_ok_and(|id| {
                self.processes.get(id).is_some()
                    || self
                        .processes
                        .thread(id)
                        .is_some_and(|t| !matches!(t.state, crate::process::ThreadState::Ended(_)))
            });
        if !exists {
            return Err(LinuxError::NoProcess.into());
        }
        let bits = if cpus == 64 {
            u64::MAX
        } else {
            (1u64 << cpus) - 1
        };
        self.copy_out(pid, mask, &bits.to_le_bytes()[..size as usize])?;
        Ok(size as i64)
    }

    /// `clock_gettime`: every clock counts timer ticks since boot (NeoOS
    /// has no wall clock: `CLOCK_REALTIME` starts at the epoch).
    fn clock_gettime(&mut self, pid: Pid, clock: u32, out: UserPtr) -> LinuxResult {
        if clock > abi::CLOCK_BOOTTIME {
            return Err(Errno::Inval.into());
        }
        let ticks = self.platform.ticks();
        let seconds = ticks / TICKS_PER_SECOND;
        let nanos = (ticks % TICKS_PER_SECOND) * (1_000_000_000 / TICKS_PER_SECOND);
        let mut ts = [0u8; 16];
        ts[..8].copy_from_slice(&seconds.to_le_bytes());
        ts[8..].copy_from_slice(&nanos.to_le_bytes());
        self.copy_out(pid, out, &ts)?;
        Ok(0)
    }

    /// `getrandom`: bytes from the platform's random source; at most
    /// [`GETRANDOM_MAX`] per call. The buffer is checked before it is filled.
    fn getrandom(&mut self, pid: Pid, buf: UserPtr, len: u64, flags: u32) -> LinuxResult {
        const GRND_INSECURE: u32 = 4;
        if flags & !(abi::GRND_NONBLOCK | abi::GRND_RANDOM | GRND_INSECURE) != 0 {
            return Err(Errno::Inval.into());
        }
        let len = len.min(GETRANDOM_MAX as u64) as usize;
        self.check_writable(pid, buf, len)?;
        let mut chunk = [0u8; 256];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(chunk.len());
            for word in chunk[..n].chunks_mut(8) {
                let r = self.platform.random_u64().to_le_bytes();
                word.copy_from_slice(&r[..word.len()]);
            }
            self.copy_out(pid, buf.offset(done as u64), &chunk[..n])?;
            done += n;
        }
        Ok(len as i64)
    }

    /// Logs the first use of each unknown Linux call number.
    fn log_unknown_once(&mut self, pid: Pid, number: usize) {
        if !self.linux_unknown.first_time(number) {
            return;
        }
        let path = self.path_of(pid);
        self.platform.report(format_args!(
            "{} (pid {}): Linux call {} is not implemented (ENOSYS; reported once)",
            path, pid, number
        ));
    }
}

/// The Linux call numbers already reported as unknown.
#[derive(Default)]
pub struct UnknownCalls {
    below: [u64; abi::nr::LOGGED_BELOW / 64],
    /// Whether a number at or above the table's end was reported (they are
    /// reported once together).
    beyond: bool,
}

impl UnknownCalls {
    /// Records `number`; whether it was not recorded before.
    pub fn first_time(&mut self, number: usize) -> bool {
        let Some(word) = self.below.get_mut(number / 64) else {
            return !core::mem::replace(&mut self.beyond, true);
        };
        let bit = 1u64 << (number % 64);
        let first = *word & bit == 0;
        *word |= bit;
        first
    }
}

/// The `u64` at byte `at` of `bytes`.
fn field(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

/// A `struct stat` (x86_64 layout) for `what`. Files have no times in
/// NeoOS: they read as the epoch.
fn stat_record(what: &StatOf) -> [u8; st::SIZE] {
    let mut times = [0u64; 3];
    let (dev, ino, nlink, mode, rdev, size, blksize) = match *what {
        StatOf::Console => (0, 1, 1, st::S_IFCHR | 0o620, CONSOLE_RDEV, 0, 1024),
        StatOf::Zero => (0, 2, 1, st::S_IFCHR | 0o666, ZERO_RDEV, 0, 4096),
        StatOf::Null => (0, 3, 1, st::S_IFCHR | 0o666, NULL_RDEV, 0, 4096),
        StatOf::Pipe { id } => (2, u64::from(id), 1, S_IFIFO | 0o600, 0, 0, 4096),
        StatOf::File { id, size, meta } => {
            times = [meta.atime, meta.mtime, meta.ctime];
            (1, id + 2, 1, st::S_IFREG | meta.perm, 0, size, 4096)
        }
        StatOf::Dir { ino, meta } => {
            times = [meta.atime, meta.mtime, meta.ctime];
            (1, ino, 2, st::S_IFDIR | meta.perm, 0, 0, 4096)
        }
    };
    let mut r = [0u8; st::SIZE];
    let mut put = |at: usize, bytes: &[u8]| r[at..at + bytes.len()].copy_from_slice(bytes);
    put(st::DEV, &(dev as u64).to_le_bytes());
    put(st::INO, &ino.to_le_bytes());
    put(st::NLINK, &(nlink as u64).to_le_bytes());
    put(st::MODE, &mode.to_le_bytes());
    let (uid, gid) = match *what {
        StatOf::File { meta, .. } | StatOf::Dir { meta, .. } => (meta.uid, meta.gid),
        _ => (0, 0),
    };
    put(st::UID, &uid.to_le_bytes());
    put(st::GID, &gid.to_le_bytes());
    put(st::RDEV, &rdev.to_le_bytes());
    put(st::SIZE_FIELD, &size.to_le_bytes());
    put(st::BLKSIZE, &(blksize as u64).to_le_bytes());
    put(st::BLOCKS, &size.div_ceil(512).to_le_bytes());
    for (i, t) in times.into_iter().enumerate() {
        // st_atim, st_mtim, st_ctim: seconds, then nanoseconds (0).
        put(st::ATIME + 16 * i, &t.to_le_bytes());
    }
    r
}

/// The termios of the console: `ICRNL` in, `OPOST | ONLCR` out, 38400
/// baud, 8 bits, receiver on; canonical mode with echo; Linux's default
/// control characters.
fn console_termios() -> [u8; abi::TERMIOS_SIZE] {
    const ICRNL: u32 = 0o400;
    const OPOST: u32 = 0o1;
    const ONLCR: u32 = 0o4;
    const B38400: u32 = 0o17;
    const CS8: u32 = 0o60;
    const CREAD: u32 = 0o200;
    const ISIG: u32 = 0o1;
    const ICANON: u32 = 0o2;
    const ECHO: u32 = 0o10;
    // VINTR ^C, VQUIT ^\, VERASE DEL, VKILL ^U, VEOF ^D, VTIME 0, VMIN 1.
    const CC: [u8; 7] = [3, 0x1c, 0x7f, 0x15, 4, 0, 1];
    let mut t = [0u8; abi::TERMIOS_SIZE];
    let flags = [
        ICRNL,
        OPOST | ONLCR,
        B38400 | CS8 | CREAD,
        ISIG | ICANON | ECHO,
    ];
    for (slot, flag) in t.chunks_exact_mut(4).zip(flags) {
        slot.copy_from_slice(&flag.to_le_bytes());
    }
    // c_line at 16, c_cc from 17.
    t[17..17 + CC.len()].copy_from_slice(&CC);
    t
}

/// Whether normalized `path` is in a folder programs may not change.
fn is_read_only_path(path: &str) -> bool {
    super::namespace::is_read_only(path)
}

/// The lengths of the iovecs in `raw`, cut so that they add up to at most
/// `budget` (the iovecs past it get 0).
fn clamped_lengths(raw: &[u8], mut budget: u64) -> Vec<u64> {
    raw.chunks_exact(16)
        .map(|pair| {
            let len = field(pair, 8).min(budget);
            budget -= len;
            len
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_unknown_number_is_reported_once() {
        let mut u = UnknownCalls::default();
        assert!(u.first_time(56));
        assert!(!u.first_time(56));
        assert!(u.first_time(57));
        assert!(u.first_time(100_000));
        assert!(
            !u.first_time(usize::MAX),
            "numbers past the table share one report"
        );
    }

    #[test]
    fn stat_records_follow_the_x86_64_layout() {
        let meta = super::super::meta::FileMeta {
            mtime: 77,
            ..Default::default()
        };
        let r = stat_record(&StatOf::File {
            id: 5,
            size: 1000,
            meta,
        });
        assert_eq!(field(&r, st::ATIME + 16), 77, "st_mtime");
        assert_eq!(field(&r, st::SIZE_FIELD), 1000);
        assert_eq!(field(&r, st::BLOCKS), 2);
        assert_eq!(field(&r, st::INO), 7);
        let mode = u32::from_le_bytes(r[st::MODE..st::MODE + 4].try_into().unwrap());
        assert_eq!(mode, st::S_IFREG | 0o644);
        let c = stat_record(&StatOf::Console);
        let mode = u32::from_le_bytes(c[st::MODE..st::MODE + 4].try_into().unwrap());
        assert_eq!(mode & 0o170000, st::S_IFCHR);
        assert_eq!(field(&c, st::RDEV), CONSOLE_RDEV);
    }
}
