//! Open files: a process's descriptor table and the NeoOS file operations on
//! an open file. File data always goes through the mapping core's page cache,
//! so what a mapping stores, `sys_read` sees, and what `sys_write` stores, a
//! mapping sees.

use alloc::vec;
use alloc::vec::Vec;

use neoos_abi::PAGE_SIZE;
use neoos_mm::{Errno, FileAccess, FileId, FrameSource, Io, MemorySystem};

use crate::fs::{FileSystem, FsError, Node, MAX_FILE_LEN};

/// What a descriptor refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Descriptor {
    /// The serial console (keyboard in, screen out).
    Console,
    File(OpenFile),
    /// `/dev/zero`: reads give zeros, writes are discarded, a mapping of it
    /// is anonymous memory.
    Zero,
    /// One end of a pipe (`crate::pipes`).
    Pipe {
        id: u32,
        write: bool,
    },
    /// `/dev/null`: reads find the end of the file, writes are discarded.
    Null,
    /// An open directory (`crate::dirs`, in the file system's table).
    Dir {
        id: u32,
    },
}

/// An open file: which file, how it was opened, and the position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFile {
    pub file: FileId,
    pub access: FileAccess,
    pub append: bool,
    pub position: u64,
}

/// Most descriptors a process may hold.
pub const MAX_DESCRIPTORS: usize = 64;

/// A process's descriptors, by number; a closed number is reused first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescriptorTable {
    slots: Vec<Option<Descriptor>>,
    /// The descriptors marked close-on-exec (bit `fd`; at most
    /// [`MAX_DESCRIPTORS`] = 64 of them).
    cloexec: u64,
}

impl DescriptorTable {
    /// Descriptors 0, 1 and 2 on the console.
    pub fn standard() -> Self {
        DescriptorTable {
            slots: vec![Some(Descriptor::Console); 3],
            cloexec: 0,
        }
    }

    /// The descriptor numbered `fd`.
    pub fn get(&self, fd: i64) -> Result<Descriptor, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get(i).copied().flatten())
            .ok_or(Errno::BadFd)
    }

    /// Replaces open descriptor `fd` (its position moved).
    pub fn update(&mut self, fd: i64, d: Descriptor) {
        if let Some(slot @ Some(_)) = usize::try_from(fd).ok().and_then(|i| self.slots.get_mut(i)) {
            *slot = Some(d);
        }
    }

    /// Whether one more descriptor fits.
    pub fn has_room(&self) -> bool {
        self.slots.iter().any(Option::is_none) || self.slots.len() < MAX_DESCRIPTORS
    }

    /// Installs `d` at the lowest free number; `NoMem` when the table is full.
    pub fn install(&mut self, d: Descriptor) -> Result<i64, Errno> {
        if let Some(i) = self.slots.iter().position(Option::is_none) {
            self.slots[i] = Some(d);
            self.cloexec &= !(1 << i);
            return Ok(i as i64);
        }
        if self.slots.len() >= MAX_DESCRIPTORS {
            return Err(Errno::NoMem);
        }
        self.slots.try_reserve(1).map_err(|_| Errno::NoMem)?;
        self.slots.push(Some(d));
        self.cloexec &= !(1 << (self.slots.len() - 1));
        Ok(self.slots.len() as i64 - 1)
    }

    /// The lowest number at or above `min` that holds no descriptor
    /// (`fcntl(F_DUPFD)`), `None` when every one up to the limit is taken.
    pub fn lowest_free_from(&self, min: usize) -> Option<i64> {
        (min..MAX_DESCRIPTORS)
            .find(|&i| self.slots.get(i).is_none_or(Option::is_none))
            .map(|i| i as i64)
    }

    /// Installs `d` as number `fd` (`dup2`), handing back what `fd` held.
    pub fn install_at(&mut self, fd: i64, d: Descriptor) -> Result<Option<Descriptor>, Errno> {
        let i = usize::try_from(fd)
            .ok()
            .filter(|&i| i < MAX_DESCRIPTORS)
            .ok_or(Errno::BadFd)?;
        if i >= self.slots.len() {
            self.slots
                .try_reserve(i + 1 - self.slots.len())
                .map_err(|_| Errno::NoMem)?;
            self.slots.resize(i + 1, None);
        }
        self.cloexec &= !(1 << i);
        Ok(self.slots[i].replace(d))
    }

    /// Whether open descriptor `fd` is marked close-on-exec.
    pub fn close_on_exec(&self, fd: i64) -> bool {
        (0..MAX_DESCRIPTORS as i64).contains(&fd) && self.cloexec & (1 << fd) != 0
    }

    /// Marks open descriptor `fd` close-on-exec or not.
    pub fn set_close_on_exec(&mut self, fd: i64, on: bool) -> Result<(), Errno> {
        self.get(fd)?;
        if on {
            self.cloexec |= 1 << fd;
        } else {
            self.cloexec &= !(1 << fd);
        }
        Ok(())
    }

    /// Takes the lowest open descriptor marked close-on-exec out of the
    /// table (`execve` closes them one by one), `None` when none is left.
    pub fn take_next_close_on_exec(&mut self) -> Option<Descriptor> {
        loop {
            if self.cloexec == 0 {
                return None;
            }
            let fd = self.cloexec.trailing_zeros() as usize;
            self.cloexec &= !(1 << fd);
            if let Some(d) = self.slots.get_mut(fd).and_then(Option::take) {
                return Some(d);
            }
        }
    }

    /// Takes descriptor `fd` out of the table.
    pub fn take(&mut self, fd: i64) -> Result<Descriptor, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
            .and_then(Option::take)
            .ok_or(Errno::BadFd)
    }

    /// Takes every descriptor out (the process ends).
    pub fn take_all(&mut self) -> Vec<Descriptor> {
        core::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .collect()
    }

    /// The open files of the table.
    pub fn open_files(&self) -> impl Iterator<Item = &OpenFile> {
        self.slots.iter().flatten().filter_map(|d| match d {
            Descriptor::File(f) => Some(f),
            _ => None,
        })
    }

    /// The open directories of the table.
    pub fn open_dirs(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots.iter().flatten().filter_map(|d| match *d {
            Descriptor::Dir { id } => Some(id),
            _ => None,
        })
    }

    /// The pipe ends of the table: (pipe, whether the write end).
    pub fn pipe_ends(&self) -> impl Iterator<Item = (u32, bool)> + '_ {
        self.slots.iter().flatten().filter_map(|d| match *d {
            Descriptor::Pipe { id, write } => Some((id, write)),
            _ => None,
        })
    }
}

impl From<FsError> for Errno {
    fn from(e: FsError) -> Self {
        match e {
            FsError::NotFound => Errno::NoEnt,
            FsError::Exists => Errno::Exists,
            FsError::NotADirectory
            | FsError::Invalid
            | FsError::IsDir
            | FsError::NameTooLong
            | FsError::CrossDevice => Errno::Inval,
            FsError::NotEmpty => Errno::Exists,
            FsError::Full => Errno::NoMem,
            FsError::Io => Errno::Io,
            FsError::Busy => Errno::Busy,
        }
    }
}

/// Folders whose files programs may read but not change.
const READ_ONLY_DIRS: &[&str] = &["/bin", "/etc"];

fn is_read_only(path: &str) -> bool {
    let Some(path) = crate::fs::normalize(path) else {
        return false;
    };
    READ_ONLY_DIRS.iter().any(|d| {
        path.strip_prefix(d)
            .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// The file system, the page cache and the frames: what file operations use.
pub struct FileIo<'a, F: FrameSource> {
    pub fs: &'a mut FileSystem,
    pub memory: &'a mut MemorySystem,
    pub frames: &'a mut F,
    pub pipes: &'a mut crate::pipes::PipeTable,
}

impl<F: FrameSource> FileIo<'_, F> {
    fn split(&mut self) -> (&mut MemorySystem, Io<'_>) {
        let io = Io {
            frames: self.frames,
            pager: &mut self.fs.disk,
        };
        (self.memory, io)
    }

    /// A file's size: the page cache's when the file is open, else the disk's.
    pub fn size(&self, id: FileId) -> u64 {
        self.memory
            .file_size(id)
            .unwrap_or_else(|_| self.fs.disk.len(id))
    }

    /// Opens `path` with NeoOS `mode`; returns the descriptor to install.
    pub fn open(&mut self, path: &str, mode: u32) -> Result<Descriptor, Errno> {
        use neoos_abi::open::*;
        if mode & !VALID != 0 || mode & O_ACCMODE == O_ACCMODE {
            return Err(Errno::Inval);
        }
        let access = match mode & O_ACCMODE {
            O_RDONLY => FileAccess::ReadOnly,
            O_WRONLY => FileAccess::WriteOnly,
            _ => FileAccess::ReadWrite,
        };
        if (access.can_write() || mode & O_CREAT != 0) && is_read_only(path) {
            return Err(Errno::Perm);
        }
        let file = match self.fs.lookup(path) {
            Some(Node::Dir) if access.can_write() => return Err(Errno::Perm),
            Some(Node::Dir) => return Err(Errno::Inval),
            Some(Node::File(_)) if mode & O_CREAT != 0 && mode & O_EXCL != 0 => {
                return Err(Errno::Exists)
            }
            Some(Node::File(id)) => id,
            None if mode & O_CREAT != 0 => self.fs.create(path)?,
            None => return Err(Errno::NoEnt),
        };
        self.open_ref(file);
        if mode & O_TRUNC != 0 && access.can_write() {
            let (memory, mut io) = self.split();
            if let Err(e) = memory.file_truncate(&mut io, file, 0) {
                let _ = memory.file_close_ref(&mut io, file);
                return Err(e);
            }
        }
        let position = if mode & O_APPEND != 0 {
            self.memory.file_size(file).unwrap_or(0)
        } else {
            0
        };
        Ok(Descriptor::File(OpenFile {
            file,
            access,
            append: mode & O_APPEND != 0,
            position,
        }))
    }

    /// Takes one more reference to `file` in the page cache (an open or a
    /// duplicated descriptor).
    pub fn open_ref(&mut self, file: FileId) {
        let stored = self.fs.disk.len(file);
        self.memory.file_open_ref(file, stored);
    }

    /// Closes a descriptor; `Io` if flushing its file failed.
    pub fn close(&mut self, d: Descriptor) -> Result<(), Errno> {
        match d {
            Descriptor::Console | Descriptor::Zero | Descriptor::Null => Ok(()),
            Descriptor::Pipe { id, write } => {
                self.pipes.drop_ref(id, write);
                Ok(())
            }
            Descriptor::Dir { id } => {
                self.fs.open_dirs.drop_ref(id);
                Ok(())
            }
            Descriptor::File(f) => self.close_ref(f.file),
        }
    }

    /// Drops one reference to `file` (the last one writes it back).
    pub fn close_ref(&mut self, file: FileId) -> Result<(), Errno> {
        let (memory, mut io) = self.split();
        memory.file_close_ref(&mut io, file)
    }

    /// Reads up to `buf.len()` bytes at the descriptor's position.
    pub fn read(&mut self, f: &mut OpenFile, buf: &mut [u8]) -> Result<usize, Errno> {
        if !f.access.can_read() {
            return Err(Errno::Perm);
        }
        let (memory, mut io) = self.split();
        let n = memory.file_read(&mut io, f.file, f.position, buf)?;
        f.position += n as u64;
        Ok(n)
    }

    /// Accepts a write of `len` bytes at the file's position (at its end
    /// with O_APPEND): reserves the disk room the file needs for its new
    /// length, so that the write, once accepted, can always reach the disk.
    /// `NoMem` when the disk cannot guarantee that room (the whole file,
    /// written back or not, and every other file's reservation count);
    /// `Perm` when the descriptor is not open for writing; `Io` when the
    /// file's disk region fails every write. Nothing changes on failure.
    pub fn reserve_write(&mut self, f: &OpenFile, len: usize) -> Result<(), Errno> {
        let pages = self.write_room(f, len)?;
        if !self.fs.disk.reserve(f.file, pages) {
            return Err(Errno::NoMem);
        }
        Ok(())
    }

    /// Whether [`Self::reserve_write`] would accept a write of `len` bytes
    /// now, reserving nothing: a call checks this before it does work in
    /// proportion to `len` (checking its buffer), so a write that cannot be
    /// accepted costs little.
    pub fn check_write_room(&self, f: &OpenFile, len: usize) -> Result<(), Errno> {
        self.write_room(f, len).map(|_| ())
    }

    /// The pages the file must have room for after writing `len` bytes
    /// through `f`, or why the write is refused.
    fn write_room(&self, f: &OpenFile, len: usize) -> Result<usize, Errno> {
        if !f.access.can_write() {
            return Err(Errno::Perm);
        }
        if self.fs.disk.is_faulty(f.file) {
            return Err(Errno::Io);
        }
        let size = self.memory.file_size(f.file).unwrap_or(0);
        let start = if f.append { size } else { f.position };
        let end = start.checked_add(len as u64).ok_or(Errno::Inval)?;
        let pages =
            usize::try_from(end.max(size).div_ceil(PAGE_SIZE as u64)).map_err(|_| Errno::NoMem)?;
        // The file's store decides (the RAM disk's capacity, the volume's
        // free blocks and largest file).
        if end > MAX_FILE_LEN || !self.fs.disk.has_room(f.file, pages) {
            return Err(Errno::NoMem);
        }
        Ok(pages)
    }

    /// Writes `buf` at the descriptor's position (at the end with O_APPEND).
    /// The caller has accepted the call whole with [`Self::reserve_write`].
    pub fn write(&mut self, f: &mut OpenFile, buf: &[u8]) -> Result<usize, Errno> {
        if !f.access.can_write() {
            return Err(Errno::Perm);
        }
        if self.fs.disk.is_faulty(f.file) {
            return Err(Errno::Io);
        }
        if f.append {
            f.position = self.memory.file_size(f.file).unwrap_or(f.position);
        }
        let (memory, mut io) = self.split();
        let n = memory.file_write(&mut io, f.file, f.position, buf)?;
        f.position += n as u64;
        Ok(n)
    }

    /// Writes the file's dirty pages back.
    pub fn sync(&mut self, file: FileId) -> Result<(), Errno> {
        let (memory, mut io) = self.split();
        memory.file_sync(&mut io, file)
    }
}
