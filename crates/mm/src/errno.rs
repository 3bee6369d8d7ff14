//! The mapping core's error vocabulary: [`Errno`] for calls and
//! [`FaultError`] for page faults, with the conversions the kernel applies at
//! the system-call boundary (NeoOS result codes and POSIX `errno` values).

use neoos_abi::{errno, neo};

/// Why an mm call failed. The kernel converts it with [`Errno::neo_code`] for
/// the NeoOS personality or [`Errno::posix_errno`] for the POSIX one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Errno {
    /// An argument is invalid (alignment, range, flags, unknown mapping).
    Inval,
    /// Out of memory or out of address space.
    NoMem,
    /// The descriptor's access mode forbids the request (NeoOS `E_PERM`).
    Perm,
    /// The protection asked for exceeds the descriptor's access (POSIX `EACCES`).
    Access,
    /// The pager failed.
    Io,
    /// A user address is not mapped or not accessible.
    Fault,
    /// No such file object or segment.
    NoEnt,
    /// The segment key already exists (`IPC_CREAT | IPC_EXCL`).
    Exists,
    /// The object is in use in a way that forbids the request (truncating a
    /// mapped file below its mapped size).
    Busy,
    /// The file handle is not usable for mapping (not open).
    BadFd,
    /// The object cannot be mapped this way.
    NoDev,
    /// A system-wide table is full (System V segment ids).
    NoSpace,
    /// The range meets a mapping another thread's `sys_munmap` is writing
    /// back ([`crate::address_space::AddressSpace::being_unmapped`]): the kernel makes
    /// the call again once that munmap is over; never a program's result.
    BeingUnmapped,
    /// A kernel access to user memory that defers its disk reads
    /// ([`crate::MemorySystem::deferring_user_reads`]) met a page of a disk
    /// file that is not cached: its read is planned or under way
    /// ([`crate::MemorySystem::read_waited_for`]); the kernel waits for it
    /// without its lock and makes the call again; never a program's result.
    WaitForRead,
}

impl Errno {
    /// The NeoOS result code (`error.h`, negative).
    pub fn neo_code(self) -> i64 {
        match self {
            Errno::Inval | Errno::Fault | Errno::BadFd => neo::E_INVAL,
            Errno::NoMem => neo::E_NOMEM,
            Errno::Perm | Errno::Access => neo::E_PERM,
            Errno::Io => neo::E_IO,
            Errno::NoEnt => neo::E_NOENT,
            Errno::Exists => neo::E_EXISTS,
            Errno::Busy => neo::E_BUSY,
            Errno::NoDev => neo::E_NOT_SUPPORTED,
            Errno::NoSpace => neo::E_NOMEM,
            Errno::BeingUnmapped | Errno::WaitForRead => neo::E_BUSY,
        }
    }

    /// The POSIX `errno` value (positive; the kernel returns its negation).
    /// `Busy` maps to `EAGAIN` because the ABI has no `EBUSY`.
    pub fn posix_errno(self) -> i64 {
        match self {
            Errno::Inval => errno::EINVAL,
            Errno::NoMem => errno::ENOMEM,
            Errno::Perm => errno::EPERM,
            Errno::Access => errno::EACCES,
            Errno::Io => errno::EIO,
            Errno::Fault => errno::EFAULT,
            Errno::NoEnt => errno::ENOENT,
            Errno::Exists => errno::EEXIST,
            Errno::Busy => errno::EAGAIN,
            Errno::BadFd => errno::EBADF,
            Errno::NoDev => errno::ENODEV,
            Errno::NoSpace => errno::ENOSPC,
            Errno::BeingUnmapped | Errno::WaitForRead => errno::EAGAIN,
        }
    }
}

/// Why a page fault could not be resolved. The kernel kills the process:
/// `NotMapped`/`NotPermitted` with a segmentation fault, `BeyondEndOfFile`
/// and `Io` with a bus error, `NoMem` as it sees fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultError {
    /// No mapping covers the address.
    NotMapped,
    /// A mapping covers the address but forbids this access.
    NotPermitted,
    /// The page lies past the end of the mapped file.
    BeyondEndOfFile,
    /// The pager could not read the page.
    Io,
    /// No frame (or page-table memory) was available.
    NoMem,
    /// The page is being read from the disk: the caller waits for the
    /// read ([`crate::MemorySystem::read_waited_for`]) and faults again.
    /// Only a fault that defers its reads
    /// ([`crate::MemorySystem::handle_fault_deferring_reads`]) gives it.
    /// (No payload: every fault's result stays one byte.)
    WaitForRead,
    /// The page is to be copied (a copy-on-write break) and the fault
    /// defers its copies: the caller copies the frame named by
    /// [`crate::MemorySystem::copy_waited_for`] outside its locks and
    /// faults again, offering the copy through
    /// [`crate::FrameSource::copy_of`]. Nothing was changed. Only the
    /// first attempt of [`crate::MemorySystem::handle_fault_deferring_reads`]
    /// gives it, when copies are deferred
    /// ([`crate::MemorySystem::set_copies_deferred`]).
    WaitForCopy,
}

impl FaultError {
    /// The error a user-memory copy reports for this fault.
    pub fn to_errno(self) -> Errno {
        match self {
            FaultError::NotMapped | FaultError::NotPermitted | FaultError::BeyondEndOfFile => {
                Errno::Fault
            }
            FaultError::Io | FaultError::WaitForCopy => Errno::Io,
            FaultError::WaitForRead => Errno::WaitForRead,
            FaultError::NoMem => Errno::NoMem,
        }
    }
}

/// Failure to obtain a page of an object (internal to fault resolution).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PageError {
    BeyondEndOfFile,
    Io,
    NoMem,
    /// Being read: see [`FaultError::WaitForRead`].
    Reading,
    /// To be copied outside the caller's locks: see
    /// [`FaultError::WaitForCopy`].
    Copying,
}

impl From<PageError> for FaultError {
    fn from(e: PageError) -> Self {
        match e {
            PageError::BeyondEndOfFile => FaultError::BeyondEndOfFile,
            PageError::Io => FaultError::Io,
            PageError::NoMem => FaultError::NoMem,
            PageError::Reading => FaultError::WaitForRead,
            PageError::Copying => FaultError::WaitForCopy,
        }
    }
}

impl From<PageError> for Errno {
    fn from(e: PageError) -> Self {
        match e {
            PageError::BeyondEndOfFile => Errno::Fault,
            PageError::Io | PageError::Reading | PageError::Copying => Errno::Io,
            PageError::NoMem => Errno::NoMem,
        }
    }
}
