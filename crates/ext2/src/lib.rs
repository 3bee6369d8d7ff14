//! A read-write ext2 file system for NeoOS, written in safe Rust over the
//! [`BlockDevice`] trait, usable without `std`.
//!
//! [`Ext2::mount`] validates the superblock (magic, revision 0 or 1, block
//! size 1, 2 or 4 KiB, group geometry) and refuses incompatible features it
//! does not implement; an unknown read-only-compatible feature makes the
//! mount read-only. Files are addressed by inode number ([`Ext2::lookup_path`]
//! finds one). Every number read from the disk is checked before use: a
//! crafted image yields [`Ext2Error::Corrupt`], never a panic. Free-block and
//! free-inode counts of the superblock and the group descriptors are kept
//! exact, so `e2fsck -fn` finds nothing to fix after our writes.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod blockmap;
mod cache;
mod device;
mod dir;
mod error;
mod file;
mod forecast;
mod foresee;
mod fs;
mod layout;

pub use device::{
    BlockDevice, DeviceCounters, DeviceError, MemDevice, Started, StartedRead, SECTOR_SIZE,
};
pub use dir::DirEntry;
pub use error::{Ext2Error, Result};
pub use file::{Extent, FileType, Placement, Placing, Stat, PAGE_SIZE};
pub use foresee::Change;
pub use fs::{Ext2, MetadataWrites, ROOT_INO};
