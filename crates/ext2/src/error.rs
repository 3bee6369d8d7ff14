//! The file system's error type.

use crate::device::DeviceError;
use core::fmt;

/// Everything an ext2 operation can fail with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ext2Error {
    /// No such file or directory.
    NotFound,
    /// A path component or the target is not a directory.
    NotDir,
    /// A directory where a non-directory was needed.
    IsDir,
    /// The name is already taken.
    Exists,
    /// The directory still has entries.
    NotEmpty,
    /// No free block or inode left.
    NoSpace,
    /// A name longer than 255 bytes.
    NameTooLong,
    /// The file system is mounted read-only.
    ReadOnly,
    /// An argument the operation cannot accept (bad name, moving a
    /// directory into itself, an operation on the wrong kind of file).
    InvalidArgument,
    /// The file would exceed the largest size ext2 can map.
    FileTooBig,
    /// The image uses a feature this implementation does not have.
    Unsupported(&'static str),
    /// An on-disk structure is inconsistent; says which.
    Corrupt(&'static str),
    /// The block device failed.
    Io(DeviceError),
    /// A walk that may not read the device ([`crate::Ext2::blocks_to_read`])
    /// needs this block, not cached.
    WouldRead(u32),
}

impl From<DeviceError> for Ext2Error {
    fn from(error: DeviceError) -> Self {
        Ext2Error::Io(error)
    }
}

impl fmt::Display for Ext2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ext2Error::Unsupported(what) => write!(f, "unsupported ext2 feature: {what}"),
            Ext2Error::Corrupt(what) => write!(f, "corrupt ext2 image: {what}"),
            Ext2Error::Io(error) => write!(f, "block device error: {error:?}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Result of an ext2 operation.
pub type Result<T> = core::result::Result<T, Ext2Error>;
