//! The block-device boundary: the only way the file system touches storage,
//! plus an in-memory device (a RAM disk, and the fuzz tests' image).

use alloc::vec::Vec;

/// Bytes in one device sector; every transfer is a whole number of sectors.
pub const SECTOR_SIZE: usize = 512;

/// Why a device transfer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceError {
    /// The sectors asked for lie (partly) beyond the end of the device.
    OutOfRange,
    /// A buffer whose length is not a whole number of sectors.
    Misaligned,
    /// The device reported a failure.
    Failed,
}

/// What a device has done since it started, as its driver counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceCounters {
    /// Requests sent to the device (reads, writes, flushes).
    pub requests: u64,
    /// Completion interrupts the driver took (0 for a polled device).
    pub interrupts: u64,
    /// Write requests sent with the caller waiting for them
    /// ([`BlockDevice::write_sectors`]: under the kernel lock), not
    /// started ([`BlockDevice::start_write`]).
    pub waited_writes: u64,
    /// Read requests sent with the caller waiting for them
    /// ([`BlockDevice::read_sectors`]: under the kernel lock), not started
    /// ([`BlockDevice::start_read`]).
    pub waited_reads: u64,
}

/// Storage addressed in 512-byte sectors.
pub trait BlockDevice {
    /// Number of sectors on the device.
    fn sector_count(&self) -> u64;
    /// Reads `buf.len() / SECTOR_SIZE` sectors starting at sector `first`.
    fn read_sectors(&mut self, first: u64, buf: &mut [u8]) -> Result<(), DeviceError>;
    /// Writes `data.len() / SECTOR_SIZE` sectors starting at sector `first`.
    fn write_sectors(&mut self, first: u64, data: &[u8]) -> Result<(), DeviceError>;
    /// Makes every completed write durable.
    fn flush(&mut self) -> Result<(), DeviceError>;
    /// What the device has done so far (a device that counts nothing: zeros).
    fn counters(&self) -> DeviceCounters {
        DeviceCounters::default()
    }
    /// Starts a write of `data` (whole sectors) at sector `first` without
    /// waiting for it: the device keeps the buffer until the write is done.
    /// [`Started::QueueFull`] gives `data` back unsent. The default writes
    /// at once ([`Started::Done`]): a device whose writes do not wait.
    fn start_write(&mut self, first: u64, data: Vec<u8>) -> Result<Started, DeviceError> {
        self.write_sectors(first, &data)?;
        Ok(Started::Done)
    }
    /// Starts a read of `len` bytes (whole sectors) from sector `first`
    /// without waiting for it, named `tag`: the device keeps its buffer
    /// until [`BlockDevice::take_finished_read`] gives it back. The default
    /// reads at once ([`StartedRead::Done`]).
    fn start_read(&mut self, first: u64, len: usize, tag: u64) -> Result<StartedRead, DeviceError> {
        let _ = tag;
        let mut data = Vec::new();
        data.try_reserve_exact(len)
            .map_err(|_| DeviceError::Failed)?;
        data.resize(len, 0);
        self.read_sectors(first, &mut data)?;
        Ok(StartedRead::Done(data))
    }
    /// A started read that is done (collected by
    /// [`BlockDevice::requests_in_flight`]): its tag and its bytes, or its
    /// failure.
    fn take_finished_read(&mut self) -> Option<(u64, Result<Vec<u8>, DeviceError>)> {
        None
    }
    /// Collects the started requests (writes and reads) that are done;
    /// whether any is still in flight. Requests of the other calls wait
    /// until none is.
    fn requests_in_flight(&mut self) -> bool {
        false
    }
    /// Starts a flush of the device's write cache without waiting for it:
    /// `Ok(true)` while it is in flight ([`BlockDevice::requests_in_flight`]
    /// says when it is done; a failure counts in
    /// [`BlockDevice::take_failed_writes`]), `Ok(false)` when it was made at
    /// once. It covers the writes completed before it is started, so it is
    /// started only when none is in flight. The default flushes at once.
    fn start_flush(&mut self) -> Result<bool, DeviceError> {
        self.flush()?;
        Ok(false)
    }
    /// How many started writes (and flushes) failed since the last call.
    fn take_failed_writes(&mut self) -> u64 {
        0
    }
}

/// What [`BlockDevice::start_write`] did with a write.
#[derive(Debug)]
pub enum Started {
    /// Written already.
    Done,
    /// Sent; [`BlockDevice::requests_in_flight`] says when it is done.
    InFlight,
    /// Not sent: the device's queue is full (the buffer, given back).
    QueueFull(Vec<u8>),
}

/// What [`BlockDevice::start_read`] did with a read.
#[derive(Debug)]
pub enum StartedRead {
    /// Read already: the bytes.
    Done(Vec<u8>),
    /// Sent; [`BlockDevice::take_finished_read`] gives it back when done.
    InFlight,
    /// Not sent: the device's queue is full.
    QueueFull,
}

/// A device held in memory.
#[derive(Debug, Clone)]
pub struct MemDevice {
    bytes: Vec<u8>,
}

impl MemDevice {
    /// A device over `bytes`; a trailing partial sector is not addressable.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }

    /// The device's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Gives the bytes back.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    fn range(&self, first: u64, len: usize) -> Result<core::ops::Range<usize>, DeviceError> {
        if !len.is_multiple_of(SECTOR_SIZE) {
            return Err(DeviceError::Misaligned);
        }
        let start = first
            .checked_mul(SECTOR_SIZE as u64)
            .ok_or(DeviceError::OutOfRange)?;
        let end = start
            .checked_add(len as u64)
            .ok_or(DeviceError::OutOfRange)?;
        if end > self.sector_count() * SECTOR_SIZE as u64 {
            return Err(DeviceError::OutOfRange);
        }
        Ok(start as usize..end as usize)
    }
}

impl BlockDevice for MemDevice {
    fn sector_count(&self) -> u64 {
        (self.bytes.len() / SECTOR_SIZE) as u64
    }

    fn read_sectors(&mut self, first: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let range = self.range(first, buf.len())?;
        buf.copy_from_slice(&self.bytes[range]);
        Ok(())
    }

    fn write_sectors(&mut self, first: u64, data: &[u8]) -> Result<(), DeviceError> {
        let range = self.range(first, data.len())?;
        self.bytes[range].copy_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }
}
