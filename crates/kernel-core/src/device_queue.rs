//! The volume's device as the volume holds it ([`VolumeDevice`]): any block
//! device, and the started requests its queue had no room for. A virtio
//! queue of 16 descriptors takes 5 reads or writes at once; a write-back
//! batch of 16 runs, or a fault's read of a file in 16 pieces, asks for
//! more. The requests beyond are kept here, in the order they came, and
//! sent as the device's requests finish ([`BlockDevice::requests_in_flight`]
//! sends them), so the caller waits for them as it waits for those in
//! flight: without the kernel lock. Until the last is sent the device
//! counts as busy, so the rule that a caller starts requests only when
//! none is in flight still holds for the requests kept here. A request
//! made at once (read, write or flush while the caller waits) sends the
//! kept ones first, at once, in order: a block's requests never overtake
//! one another.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use neoos_ext2::{BlockDevice, DeviceCounters, DeviceError, Started, StartedRead};

/// A started request the device's queue had no room for.
enum Kept {
    Write { first: u64, data: Vec<u8> },
    Read { first: u64, len: usize, tag: u64 },
}

/// A block device of any kind, with the started requests kept until its
/// queue takes them (module comment).
pub struct VolumeDevice {
    device: Box<dyn BlockDevice + Send>,
    kept: VecDeque<Kept>,
    /// Kept reads done (made at once, or failed to start): their tags and
    /// bytes, until [`BlockDevice::take_finished_read`] gives them. Its
    /// room covers every kept read as well (reserved as each is kept),
    /// so a kept read's end never allocates.
    finished: VecDeque<(u64, Result<Vec<u8>, DeviceError>)>,
    kept_reads: usize,
    /// Kept writes that failed to start or failed made at once.
    failed_writes: u64,
}

impl VolumeDevice {
    pub fn new(device: Box<dyn BlockDevice + Send>) -> Self {
        Self {
            device,
            kept: VecDeque::new(),
            finished: VecDeque::new(),
            kept_reads: 0,
            failed_writes: 0,
        }
    }

    /// Keeps `request` for later; `Err` gives it back when the heap
    /// refuses the room.
    fn keep(&mut self, request: Kept) -> Result<(), Kept> {
        if self.kept.try_reserve(1).is_err() {
            return Err(request);
        }
        if let Kept::Read { .. } = request {
            if self.finished.try_reserve(self.kept_reads + 1).is_err() {
                return Err(request);
            }
            self.kept_reads += 1;
        }
        self.kept.push_back(request);
        Ok(())
    }

    /// Sends the kept requests, in order, while the device's queue takes
    /// them.
    fn send_kept(&mut self) {
        while let Some(request) = self.kept.pop_front() {
            if let Err(request) = self.send(request) {
                // Popped just now: its room is there.
                self.kept.push_front(request);
                return;
            }
        }
    }

    /// Sends one kept request; `Err` gives it back when the queue is full.
    fn send(&mut self, request: Kept) -> Result<(), Kept> {
        match request {
            Kept::Write { first, data } => match self.device.start_write(first, data) {
                Ok(Started::Done | Started::InFlight) => {}
                Ok(Started::QueueFull(data)) => return Err(Kept::Write { first, data }),
                Err(_) => self.failed_writes += 1,
            },
            Kept::Read { first, len, tag } => {
                let done = match self.device.start_read(first, len, tag) {
                    Ok(StartedRead::InFlight) => None,
                    Ok(StartedRead::Done(bytes)) => Some(Ok(bytes)),
                    Ok(StartedRead::QueueFull) => return Err(Kept::Read { first, len, tag }),
                    Err(e) => Some(Err(e)),
                };
                self.kept_reads -= 1;
                if let Some(read) = done {
                    self.finished.push_back((tag, read));
                }
            }
        }
        Ok(())
    }

    /// Makes every kept request at once, in order (a request made at once
    /// comes after them).
    fn make_kept_at_once(&mut self) {
        while let Some(request) = self.kept.pop_front() {
            match request {
                Kept::Write { first, data } => {
                    if self.device.write_sectors(first, &data).is_err() {
                        self.failed_writes += 1;
                    }
                }
                Kept::Read { first, len, tag } => {
                    self.kept_reads -= 1;
                    let mut bytes = Vec::new();
                    let read = match bytes.try_reserve_exact(len) {
                        Ok(()) => {
                            bytes.resize(len, 0);
                            self.device.read_sectors(first, &mut bytes).map(|()| bytes)
                        }
                        Err(_) => Err(DeviceError::Failed),
                    };
                    self.finished.push_back((tag, read));
                }
            }
        }
    }
}

impl BlockDevice for VolumeDevice {
    fn sector_count(&self) -> u64 {
        self.device.sector_count()
    }
    fn read_sectors(&mut self, first: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.make_kept_at_once();
        self.device.read_sectors(first, buf)
    }
    fn write_sectors(&mut self, first: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.make_kept_at_once();
        self.device.write_sectors(first, data)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        self.make_kept_at_once();
        self.device.flush()
    }
    fn counters(&self) -> DeviceCounters {
        self.device.counters()
    }
    fn start_write(&mut self, first: u64, data: Vec<u8>) -> Result<Started, DeviceError> {
        let data = match self.kept.is_empty() {
            true => match self.device.start_write(first, data)? {
                Started::QueueFull(data) => data,
                started => return Ok(started),
            },
            false => data,
        };
        match self.keep(Kept::Write { first, data }) {
            Ok(()) => Ok(Started::InFlight),
            // No room to keep it: the caller writes it at once.
            Err(Kept::Write { data, .. }) => Ok(Started::QueueFull(data)),
            Err(Kept::Read { .. }) => Err(DeviceError::Failed),
        }
    }
    fn start_read(&mut self, first: u64, len: usize, tag: u64) -> Result<StartedRead, DeviceError> {
        if self.kept.is_empty() {
            match self.device.start_read(first, len, tag)? {
                StartedRead::QueueFull => {}
                started => return Ok(started),
            }
        }
        match self.keep(Kept::Read { first, len, tag }) {
            Ok(()) => Ok(StartedRead::InFlight),
            // No room to keep it: the caller reads it at once.
            Err(_) => Ok(StartedRead::QueueFull),
        }
    }
    fn take_finished_read(&mut self) -> Option<(u64, Result<Vec<u8>, DeviceError>)> {
        self.finished
            .pop_front()
            .or_else(|| self.device.take_finished_read())
    }
    fn requests_in_flight(&mut self) -> bool {
        let in_flight = self.device.requests_in_flight();
        if self.kept.is_empty() {
            return in_flight;
        }
        self.send_kept();
        // Kept requests still unsent are in flight as far as the caller
        // knows: it waits for them as for the rest.
        !self.kept.is_empty() || self.device.requests_in_flight()
    }
    fn start_flush(&mut self) -> Result<bool, DeviceError> {
        // Callers start a flush only once nothing is in flight; a flush
        // covers only writes done before it.
        self.make_kept_at_once();
        self.device.start_flush()
    }
    fn take_failed_writes(&mut self) -> u64 {
        core::mem::take(&mut self.failed_writes) + self.device.take_failed_writes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use std::sync::{Arc, Mutex};

    extern crate std;

    /// A device whose queue takes `room` requests; those started stay in
    /// flight until [`Queue::finish`]. Requests made at once wait for
    /// them first, as the virtio driver's do.
    #[derive(Default)]
    struct Queue {
        image: Vec<u8>,
        room: usize,
        writes: Vec<(u64, Vec<u8>)>,
        reads: Vec<(u64, u64, usize)>,
        finished: VecDeque<(u64, Result<Vec<u8>, DeviceError>)>,
        /// Sectors whose started writes fail.
        failing: Option<u64>,
        failed: u64,
        /// What reached the image, in order: (sector, made at once).
        log: Vec<(u64, bool)>,
    }

    #[derive(Clone)]
    struct Shared(Arc<Mutex<Queue>>);

    impl Shared {
        fn new(room: usize) -> Self {
            Self(Arc::new(Mutex::new(Queue {
                image: vec![0; 64 * 512],
                room,
                ..Queue::default()
            })))
        }
        fn finish(&self) {
            let mut q = self.0.lock().unwrap();
            for (first, data) in core::mem::take(&mut q.writes) {
                if q.failing == Some(first) {
                    q.failed += 1;
                    continue;
                }
                let at = first as usize * 512;
                q.image[at..at + data.len()].copy_from_slice(&data);
                q.log.push((first, false));
            }
            for (tag, first, len) in core::mem::take(&mut q.reads) {
                let at = first as usize * 512;
                let bytes = q.image[at..at + len].to_vec();
                q.finished.push_back((tag, Ok(bytes)));
            }
        }
        fn in_flight(&self) -> usize {
            let q = self.0.lock().unwrap();
            q.writes.len() + q.reads.len()
        }
        fn log(&self) -> Vec<(u64, bool)> {
            self.0.lock().unwrap().log.clone()
        }
    }

    impl BlockDevice for Shared {
        fn sector_count(&self) -> u64 {
            64
        }
        fn read_sectors(&mut self, first: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
            self.finish();
            let q = self.0.lock().unwrap();
            let at = first as usize * 512;
            buf.copy_from_slice(&q.image[at..at + buf.len()]);
            Ok(())
        }
        fn write_sectors(&mut self, first: u64, data: &[u8]) -> Result<(), DeviceError> {
            self.finish();
            let mut q = self.0.lock().unwrap();
            let at = first as usize * 512;
            q.image[at..at + data.len()].copy_from_slice(data);
            q.log.push((first, true));
            Ok(())
        }
        fn flush(&mut self) -> Result<(), DeviceError> {
            self.finish();
            Ok(())
        }
        fn start_write(&mut self, first: u64, data: Vec<u8>) -> Result<Started, DeviceError> {
            let mut q = self.0.lock().unwrap();
            if q.writes.len() + q.reads.len() == q.room {
                return Ok(Started::QueueFull(data));
            }
            q.writes.push((first, data));
            Ok(Started::InFlight)
        }
        fn start_read(
            &mut self,
            first: u64,
            len: usize,
            tag: u64,
        ) -> Result<StartedRead, DeviceError> {
            let mut q = self.0.lock().unwrap();
            if q.writes.len() + q.reads.len() == q.room {
                return Ok(StartedRead::QueueFull);
            }
            q.reads.push((tag, first, len));
            Ok(StartedRead::InFlight)
        }
        fn take_finished_read(&mut self) -> Option<(u64, Result<Vec<u8>, DeviceError>)> {
            self.0.lock().unwrap().finished.pop_front()
        }
        fn requests_in_flight(&mut self) -> bool {
            self.in_flight() > 0
        }
        fn start_flush(&mut self) -> Result<bool, DeviceError> {
            self.finish();
            Ok(false)
        }
        fn take_failed_writes(&mut self) -> u64 {
            core::mem::take(&mut self.0.lock().unwrap().failed)
        }
    }

    fn over(room: usize) -> (VolumeDevice, Shared) {
        let shared = Shared::new(room);
        (VolumeDevice::new(Box::new(shared.clone())), shared)
    }

    fn sector_of(byte: u8) -> Vec<u8> {
        vec![byte; 512]
    }

    #[test]
    fn writes_beyond_the_queue_are_kept_and_sent_in_order_as_room_frees() {
        let (mut device, queue) = over(2);
        for sector in 0..5u64 {
            let started = device.start_write(sector, sector_of(sector as u8 + 1));
            assert!(matches!(started, Ok(Started::InFlight)), "{started:?}");
        }
        assert_eq!(queue.in_flight(), 2, "the queue's room, no more");
        let mut rounds = 0;
        while device.requests_in_flight() {
            queue.finish();
            rounds += 1;
            assert!(rounds <= 3, "sent as room frees");
        }
        assert_eq!(rounds, 3, "2 + 2 + 1");
        let log = queue.log();
        assert_eq!(log, (0..5).map(|s| (s, false)).collect::<Vec<_>>());
        let mut back = vec![0u8; 5 * 512];
        device.read_sectors(0, &mut back).unwrap();
        for sector in 0..5 {
            assert!(back[sector * 512..(sector + 1) * 512]
                .iter()
                .all(|&b| b == sector as u8 + 1));
        }
    }

    #[test]
    fn a_request_made_at_once_comes_after_the_kept_ones() {
        let (mut device, queue) = over(1);
        device.start_write(3, sector_of(7)).unwrap();
        device.start_write(4, sector_of(8)).unwrap();
        device.start_write(3, sector_of(9)).unwrap();
        let mut back = vec![0u8; 512];
        device.read_sectors(3, &mut back).unwrap();
        assert!(back.iter().all(|&b| b == 9), "the newest copy, read after");
        assert_eq!(queue.log(), vec![(3, false), (4, true), (3, true)]);
        assert!(!device.requests_in_flight(), "nothing kept any more");
        device.write_sectors(5, &sector_of(1)).unwrap();
        device.start_write(6, sector_of(2)).unwrap();
        device.start_write(7, sector_of(3)).unwrap();
        assert!(!device.start_flush().unwrap(), "made at once");
        assert_eq!(queue.log()[3..], [(5, true), (6, false), (7, true)]);
    }

    #[test]
    fn reads_beyond_the_queue_are_kept_and_given_back_by_tag() {
        let (mut device, queue) = over(2);
        for sector in 0..4u64 {
            device
                .write_sectors(sector, &sector_of(sector as u8 + 10))
                .unwrap();
        }
        for tag in 0..4u64 {
            let started = device.start_read(tag, 512, 100 + tag);
            assert!(matches!(started, Ok(StartedRead::InFlight)));
        }
        let mut got = Vec::new();
        while device.requests_in_flight() {
            queue.finish();
            while let Some((tag, read)) = device.take_finished_read() {
                got.push((tag, read.unwrap()[0]));
            }
        }
        while let Some((tag, read)) = device.take_finished_read() {
            got.push((tag, read.unwrap()[0]));
        }
        assert_eq!(got, vec![(100, 10), (101, 11), (102, 12), (103, 13)]);
    }

    #[test]
    fn a_kept_read_made_at_once_is_given_back_like_a_started_one() {
        let (mut device, _queue) = over(1);
        device.write_sectors(2, &sector_of(5)).unwrap();
        device.start_read(0, 512, 1).unwrap();
        device.start_read(2, 512, 2).unwrap();
        device.flush().unwrap();
        let mut tags = Vec::new();
        device.requests_in_flight();
        while let Some((tag, read)) = device.take_finished_read() {
            tags.push((tag, read.unwrap()[0]));
        }
        tags.sort();
        assert_eq!(tags, vec![(1, 0), (2, 5)]);
    }

    #[test]
    fn a_kept_write_that_fails_counts_as_a_failed_started_write() {
        let (mut device, queue) = over(1);
        queue.0.lock().unwrap().failing = Some(9);
        device.start_write(8, sector_of(1)).unwrap();
        device.start_write(9, sector_of(2)).unwrap();
        device.start_write(10, sector_of(3)).unwrap();
        while device.requests_in_flight() {
            queue.finish();
        }
        assert_eq!(device.take_failed_writes(), 1);
        assert_eq!(device.take_failed_writes(), 0);
        assert_eq!(queue.log(), vec![(8, false), (10, false)]);
    }
}
