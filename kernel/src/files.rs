//! Open files: the descriptors of a process and the NeoOS file calls on them.
//! File data always goes through the mapping core's page cache, so what a
//! mapping stores, `sys_read` sees, and what `sys_write` stores, a mapping sees.

use alloc::vec;
use alloc::vec::Vec;

use neoos_abi::neo;
use neoos_mm::{FileAccess, FileId};

use crate::fs::{FsError, Node};
use crate::process::Kernel;

/// What a descriptor refers to.
#[derive(Clone, Copy, Debug)]
pub enum Descriptor {
    /// The serial console (keyboard in, screen out).
    Console,
    File(OpenFile),
}

/// An open file: which file, how it was opened, and the position.
#[derive(Clone, Copy, Debug)]
pub struct OpenFile {
    pub file: FileId,
    pub access: FileAccess,
    pub append: bool,
    pub position: u64,
}

/// Descriptors 0, 1 and 2: the console.
pub fn standard_descriptors() -> Vec<Option<Descriptor>> {
    vec![Some(Descriptor::Console); 3]
}

/// Most descriptors a process may hold.
pub const MAX_DESCRIPTORS: usize = 64;

fn fs_code(e: FsError) -> i64 {
    match e {
        FsError::NotFound => neo::E_NOENT,
        FsError::Exists => neo::E_EXISTS,
        FsError::NotADirectory | FsError::Invalid => neo::E_INVAL,
        FsError::Full => neo::E_NOMEM,
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

/// Opens `path` with NeoOS `mode`; returns the descriptor to install.
pub fn open(k: &mut Kernel, path: &str, mode: u32) -> Result<Descriptor, i64> {
    use neoos_abi::open::*;
    if mode & !VALID != 0 || mode & O_ACCMODE == O_ACCMODE {
        return Err(neo::E_INVAL);
    }
    let access = match mode & O_ACCMODE {
        O_RDONLY => FileAccess::ReadOnly,
        O_WRONLY => FileAccess::WriteOnly,
        _ => FileAccess::ReadWrite,
    };
    if (access.can_write() || mode & O_CREAT != 0) && is_read_only(path) {
        return Err(neo::E_PERM);
    }
    let file = match k.fs.lookup(path) {
        Some(Node::Dir) => {
            return Err(if access.can_write() {
                neo::E_PERM
            } else {
                neo::E_INVAL
            })
        }
        Some(Node::File(_)) if mode & O_CREAT != 0 && mode & O_EXCL != 0 => {
            return Err(neo::E_EXISTS)
        }
        Some(Node::File(id)) => id,
        None if mode & O_CREAT != 0 => k.fs.create(path).map_err(fs_code)?,
        None => return Err(neo::E_NOENT),
    };
    let stored = k.fs.disk.len(file);
    k.memory.file_open_ref(file, stored);
    if mode & O_TRUNC != 0 && access.can_write() {
        let (memory, mut io) = k.memory_io();
        if let Err(e) = memory.file_truncate(&mut io, file, 0) {
            let _ = memory.file_close_ref(&mut io, file);
            return Err(e.neo_code());
        }
    }
    let position = if mode & O_APPEND != 0 {
        k.memory.file_size(file).unwrap_or(0)
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

/// Closes a descriptor; E_IO if flushing its file failed.
pub fn close(k: &mut Kernel, d: Descriptor) -> i64 {
    match d {
        Descriptor::Console => neo::E_OK,
        Descriptor::File(f) => {
            let (memory, mut io) = k.memory_io();
            match memory.file_close_ref(&mut io, f.file) {
                Ok(()) => neo::E_OK,
                Err(e) => e.neo_code(),
            }
        }
    }
}

/// Reads up to `buf.len()` bytes at the descriptor's position.
pub fn read(k: &mut Kernel, f: &mut OpenFile, buf: &mut [u8]) -> Result<usize, i64> {
    if !f.access.can_read() {
        return Err(neo::E_PERM);
    }
    let (memory, mut io) = k.memory_io();
    let n = memory
        .file_read(&mut io, f.file, f.position, buf)
        .map_err(|e| e.neo_code())?;
    f.position += n as u64;
    Ok(n)
}

/// `E_NOMEM` when writing `len` bytes at the file's position would make it
/// longer than the disk can hold (counting the whole file, written back or
/// not, against the disk's free pages plus the pages it stores already).
pub fn check_disk_room(k: &Kernel, f: &OpenFile, len: usize) -> Result<(), i64> {
    const PAGE: u64 = 4096;
    let size = k.memory.file_size(f.file).unwrap_or(0);
    let start = if f.append { size } else { f.position };
    let end = start.checked_add(len as u64).ok_or(neo::E_INVAL)?;
    let pages = end.max(size).div_ceil(PAGE) as usize;
    if end > crate::fs::DISK_CAPACITY || !k.fs.disk.has_room(f.file, pages) {
        return Err(neo::E_NOMEM);
    }
    Ok(())
}

/// Writes `buf` at the descriptor's position (at the end with O_APPEND). The
/// caller has checked the disk's room for the whole call
/// ([`check_disk_room`]).
pub fn write(k: &mut Kernel, f: &mut OpenFile, buf: &[u8]) -> Result<usize, i64> {
    if !f.access.can_write() {
        return Err(neo::E_PERM);
    }
    if k.fs.disk.is_faulty(f.file) {
        return Err(neo::E_IO);
    }
    if f.append {
        f.position = k.memory.file_size(f.file).unwrap_or(f.position);
    }
    let (memory, mut io) = k.memory_io();
    let n = memory
        .file_write(&mut io, f.file, f.position, buf)
        .map_err(|e| e.neo_code())?;
    f.position += n as u64;
    Ok(n)
}
