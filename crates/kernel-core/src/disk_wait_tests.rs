//! Host tests of the read faults that wait for the disk without the kernel
//! lock (`disk_wait.rs`), over a volume whose device holds every started
//! read until the test lets it finish: the fault waits (the same read for
//! a second fault on the page), the page is installed only once the read
//! is done, a failed read ends the fault with a bus error, and a `read`
//! of the file waits the same way and gives `E_IO` on a failure.

extern crate std;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use std::process::Command;
use std::sync::{Arc, Mutex};

use neoos_abi::{mman, nr};
use neoos_ext2::{BlockDevice, DeviceError, MemDevice, Started, StartedRead};
use neoos_mm::{Access, PAGE_SIZE};

use crate::kernel_tests::{peek, poke, put_str, spawn, sys, K, SCRATCH};
use crate::syscall::{SchedulerCall, UserPtr};
use crate::test_platform::kernel;
use crate::Platform;

const PAGE: usize = PAGE_SIZE as usize;
/// Pages of the image's /home/usuario/grande.bin (byte `i`: `byte(i) ^ 0x5a`).
const GRANDE_PAGES: usize = 8;

/// Byte `i` of the test file.
fn byte(i: usize) -> u8 {
    (i / PAGE * 3 + i % 7) as u8
}

/// The device's state: the image, the reads started and not yet let go,
/// those let go (their tag and whether they fail); with `hold_writes`, the
/// writes started and not yet let go, and how many failed.
#[derive(Default)]
struct Held {
    image: Option<MemDevice>,
    started: VecDeque<(u64, u64, usize)>,
    finished: VecDeque<(u64, Result<Vec<u8>, DeviceError>)>,
    hold_writes: bool,
    writes: VecDeque<(u64, Vec<u8>)>,
    /// Started flushes not yet let go (held with the writes).
    flushes: usize,
    /// Reads made at once (`read_sectors`: under the kernel lock).
    reads_at_once: u64,
    /// Writes made at once (`write_sectors`: under the kernel lock).
    writes_at_once: u64,
    failed_writes: u64,
    /// Most requests in flight at once (`None`: no bound); a start beyond
    /// finds the queue full.
    room: Option<usize>,
    /// Most requests seen in flight at once.
    most_in_flight: usize,
}

impl Held {
    /// Whether the queue takes one more request (counted).
    fn take_room(&mut self) -> bool {
        let in_flight = self.started.len() + self.writes.len() + self.flushes;
        if self.room.is_some_and(|room| in_flight >= room) {
            return false;
        }
        self.most_in_flight = self.most_in_flight.max(in_flight + 1);
        true
    }
}

/// A device whose started reads stay in flight until [`HeldReads::finish`].
#[derive(Clone, Default)]
struct HeldReads(Arc<Mutex<Held>>);

impl HeldReads {
    /// Lets every started read finish (`fail`: with an error).
    fn finish(&self, fail: bool) {
        let mut held = self.0.lock().unwrap();
        while let Some((tag, first, len)) = held.started.pop_front() {
            let mut bytes = vec![0u8; len];
            let read = match fail {
                true => Err(DeviceError::Failed),
                false => held
                    .image
                    .as_mut()
                    .unwrap()
                    .read_sectors(first, &mut bytes)
                    .map(|()| bytes),
            };
            held.finished.push_back((tag, read));
        }
    }

    fn in_flight(&self) -> usize {
        self.0.lock().unwrap().started.len()
    }

    /// From now on, at most `room` requests are in flight at once, as on
    /// a virtio queue.
    fn bound_queue(&self, room: usize) {
        self.0.lock().unwrap().room = Some(room);
    }

    fn most_in_flight(&self) -> usize {
        self.0.lock().unwrap().most_in_flight
    }

    /// From now on, started writes stay in flight until
    /// [`HeldReads::finish_writes`].
    fn hold_writes(&self) {
        self.0.lock().unwrap().hold_writes = true;
    }

    /// Lets every started write and flush finish (`fail`: none reaches
    /// the image, each counts as failed).
    fn finish_writes(&self, fail: bool) {
        let mut held = self.0.lock().unwrap();
        let flushes = core::mem::take(&mut held.flushes);
        if fail {
            held.failed_writes += flushes as u64;
        }
        while let Some((first, data)) = held.writes.pop_front() {
            if fail {
                held.failed_writes += 1;
            } else {
                held.image
                    .as_mut()
                    .unwrap()
                    .write_sectors(first, &data)
                    .unwrap();
            }
        }
    }

    fn writes_in_flight(&self) -> usize {
        self.0.lock().unwrap().writes.len()
    }

    fn reads_at_once(&self) -> u64 {
        self.0.lock().unwrap().reads_at_once
    }

    fn writes_at_once(&self) -> u64 {
        self.0.lock().unwrap().writes_at_once
    }

    /// The image as a file system mounted afresh (nothing cached).
    fn remounted(&self) -> neoos_ext2::Ext2<MemDevice> {
        let mut held = self.0.lock().unwrap();
        let image = held.image.as_mut().unwrap();
        let mut all = vec![0u8; image.sector_count() as usize * 512];
        image.read_sectors(0, &mut all).unwrap();
        neoos_ext2::Ext2::mount(MemDevice::new(all), true).unwrap()
    }

    fn flushes_in_flight(&self) -> usize {
        self.0.lock().unwrap().flushes
    }

    /// Whether the image holds `bytes` somewhere.
    fn image_holds(&self, bytes: &[u8]) -> bool {
        let mut held = self.0.lock().unwrap();
        let image = held.image.as_mut().unwrap();
        let mut all = vec![0u8; image.sector_count() as usize * 512];
        image.read_sectors(0, &mut all).unwrap();
        all.windows(bytes.len()).any(|w| w == bytes)
    }
}

impl BlockDevice for HeldReads {
    fn sector_count(&self) -> u64 {
        self.0
            .lock()
            .unwrap()
            .image
            .as_ref()
            .unwrap()
            .sector_count()
    }
    fn read_sectors(&mut self, first: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let mut held = self.0.lock().unwrap();
        held.reads_at_once += 1;
        held.image.as_mut().unwrap().read_sectors(first, buf)
    }
    fn write_sectors(&mut self, first: u64, data: &[u8]) -> Result<(), DeviceError> {
        let mut held = self.0.lock().unwrap();
        held.writes_at_once += 1;
        held.image.as_mut().unwrap().write_sectors(first, data)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }
    fn start_read(&mut self, first: u64, len: usize, tag: u64) -> Result<StartedRead, DeviceError> {
        let mut held = self.0.lock().unwrap();
        if !held.take_room() {
            return Ok(StartedRead::QueueFull);
        }
        held.started.push_back((tag, first, len));
        Ok(StartedRead::InFlight)
    }
    fn take_finished_read(&mut self) -> Option<(u64, Result<Vec<u8>, DeviceError>)> {
        self.0.lock().unwrap().finished.pop_front()
    }
    fn start_write(&mut self, first: u64, data: Vec<u8>) -> Result<Started, DeviceError> {
        let mut held = self.0.lock().unwrap();
        if !held.hold_writes {
            held.image.as_mut().unwrap().write_sectors(first, &data)?;
            return Ok(Started::Done);
        }
        if !held.take_room() {
            return Ok(Started::QueueFull(data));
        }
        held.writes.push_back((first, data));
        Ok(Started::InFlight)
    }
    fn start_flush(&mut self) -> Result<bool, DeviceError> {
        let mut held = self.0.lock().unwrap();
        if held.hold_writes {
            held.flushes += 1;
        }
        Ok(held.hold_writes)
    }
    fn requests_in_flight(&mut self) -> bool {
        self.in_flight() > 0 || self.writes_in_flight() > 0 || self.flushes_in_flight() > 0
    }
    fn take_failed_writes(&mut self) -> u64 {
        core::mem::take(&mut self.0.lock().unwrap().failed_writes)
    }
}

/// A kernel with an ext2 volume at /home holding usuario/datos.bin (4
/// pages), over a device that holds its reads; a process with the file
/// open read-only (descriptor) and mapped shared (address).
fn mounted() -> (K, HeldReads, u32, u64, u64) {
    let (mut k, device, pid) = volume();
    let path = put_str(&mut k, pid, SCRATCH, "/home/usuario/datos.bin");
    let fd = sys(&mut k, pid, nr::OPEN, [path, 0, 0, 0, 0, 0]);
    assert!(fd >= 0);
    let shared = mman::MAP_SHARED as u64;
    let at = sys(
        &mut k,
        pid,
        nr::MMAP,
        [
            0,
            4 * PAGE_SIZE,
            mman::PROT_READ as u64,
            shared,
            fd as u64,
            0,
        ],
    );
    assert!(at > 0);
    (k, device, pid, fd as u64, at as u64)
}

std::thread_local! {
    /// The device of the test's volume ([`volume_cold`]), for [`made`].
    static DEVICE: core::cell::RefCell<Option<HeldReads>> = const { core::cell::RefCell::new(None) };
}

/// Call `number` of `pid` made, after the metadata reads it waits for
/// (each let finish on the test's device, at most 9 times); a wait with
/// no read in flight (for writes) is returned.
fn made(k: &mut K, pid: u32, number: usize, args: [u64; 6]) -> crate::syscall::Dispatched {
    for _ in 0..9 {
        let device = DEVICE.with(|d| d.borrow().clone());
        match k.system_call(pid, number, args) {
            Err((SchedulerCall::AwaitMetadata, _))
                if device.as_ref().is_some_and(|d| d.in_flight() > 0) =>
            {
                if let Some(d) = device.as_ref() {
                    d.finish(false);
                }
                k.disk_step();
            }
            other => return other,
        }
    }
    panic!("call {number} kept waiting for metadata reads");
}

/// The kernel and device of [`mounted`], and a process; nothing of the
/// volume cached but its superblock and group descriptors.
fn volume_cold() -> (K, HeldReads, u32) {
    let dir = std::env::temp_dir().join(std::format!(
        "neoos-disk-wait-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tree/usuario")).unwrap();
    let data: Vec<u8> = (0..4 * PAGE).map(byte).collect();
    std::fs::write(dir.join("tree/usuario/datos.bin"), &data).unwrap();
    let big: Vec<u8> = (0..GRANDE_PAGES * PAGE).map(|i| byte(i) ^ 0x5a).collect();
    std::fs::write(dir.join("tree/usuario/grande.bin"), &big).unwrap();
    let image = dir.join("img");
    let made = Command::new("/sbin/mke2fs")
        .args(["-q", "-F", "-t", "ext2", "-b", "4096", "-d"])
        .arg(dir.join("tree"))
        .arg(&image)
        .arg("4M")
        .output()
        .unwrap();
    assert!(made.status.success());
    let device = HeldReads::default();
    device.0.lock().unwrap().image = Some(MemDevice::new(std::fs::read(&image).unwrap()));
    DEVICE.with(|d| *d.borrow_mut() = Some(device.clone()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut k = kernel();
    k.fs.mount_home(Box::new(device.clone())).unwrap();
    let pid = spawn(&mut k, None);
    (k, device, pid)
}

/// [`volume_cold`] with the metadata of /home/usuario read (a lookup
/// under the lock): the namespace calls of the tests find it cached and
/// wait for no metadata read.
fn volume() -> (K, HeldReads, u32) {
    let (k, device, pid) = volume_cold();
    assert!(k.fs.lookup("/home/usuario/datos.bin").is_some());
    (k, device, pid)
}

/// Lets the device finish what is in flight (`fail`: failing it) and
/// steps the call with `step` until it ends (its data writes, then its
/// sync's metadata writes and flush, each waited for): its result.
fn settle<R>(
    device: &HeldReads,
    k: &mut K,
    fail: bool,
    mut step: impl FnMut(&mut K) -> Option<R>,
) -> R {
    for _ in 0..8 {
        device.finish_writes(fail);
        k.disk_step();
        if let Some(result) = step(k) {
            return result;
        }
    }
    panic!("the call did not end");
}

/// Lets the device finish what is in flight and runs the flusher's
/// passes until it has nothing in flight.
fn settle_flusher(device: &HeldReads, k: &mut K) {
    for _ in 0..8 {
        device.finish_writes(false);
        k.disk_step();
        k.flush_if_due();
    }
}

#[test]
fn a_read_fault_waits_for_its_read_and_a_second_fault_for_the_same() {
    let (mut k, device, pid, _, at) = mounted();
    let tid = pid;
    assert_eq!(k.resolve_fault_step(pid, tid, at + 10, Access::Read), None);
    assert_eq!(device.in_flight(), 1, "one device read started");
    k.disk_step();
    assert_eq!(k.resolve_fault_step(pid, tid, at + 20, Access::Read), None);
    assert_eq!(
        device.in_flight(),
        1,
        "the second fault waits for the same read"
    );
    let vec = SCRATCH + 512;
    assert_eq!(
        sys(&mut k, pid, nr::MINCORE, [at, PAGE_SIZE, vec, 0, 0, 0]),
        0
    );
    assert_eq!(
        peek(&mut k, pid, vec, 1),
        [0],
        "not installed before the read is done"
    );
    device.finish(false);
    k.disk_step();
    assert_eq!(
        k.resolve_fault_step(pid, tid, at + 10, Access::Read),
        Some(Ok(()))
    );
    assert_eq!(
        peek(&mut k, pid, at, 16),
        (0..16).map(byte).collect::<Vec<_>>()
    );
    assert_eq!(device.in_flight(), 0);
}

#[test]
fn a_failed_read_ends_the_fault_with_a_bus_error_and_the_next_fault_reads_again() {
    let (mut k, device, pid, _, at) = mounted();
    let page = at + PAGE_SIZE;
    assert_eq!(k.resolve_fault_step(pid, pid, page, Access::Read), None);
    device.finish(true);
    k.disk_step();
    let ended = k.resolve_fault_step(pid, pid, page, Access::Read);
    let Some(Err(fatal)) = ended else {
        panic!("a bus error: {ended:?}");
    };
    assert_eq!(fatal.status, neoos_abi::status::BUSERROR);
    assert_eq!(
        k.resolve_fault_step(pid, pid, page, Access::Read),
        None,
        "read again"
    );
    device.finish(false);
    k.disk_step();
    assert_eq!(
        k.resolve_fault_step(pid, pid, page, Access::Read),
        Some(Ok(()))
    );
    assert_eq!(peek(&mut k, pid, page, 1), [byte(PAGE)]);
}

#[test]
fn a_read_of_the_file_waits_window_by_window_and_fails_with_e_io() {
    let (mut k, device, pid, fd, _) = mounted();
    let buf = SCRATCH + 4096;
    let call = k.system_call(pid, nr::READ, [fd, buf, 2 * PAGE_SIZE, 0, 0, 0]);
    let Err((SchedulerCall::FileRead { count, .. }, _)) = call else {
        panic!("a read of a volume file is a scheduler call");
    };
    assert_eq!(count, 2 * PAGE);
    let step = |k: &mut K| k.file_read_step(pid, pid, fd as i64, UserPtr(buf), 2 * PAGE, None);
    assert_eq!(step(&mut k), None);
    assert_eq!(device.in_flight(), 1, "the window's two pages in one read");
    device.finish(true);
    k.disk_step();
    assert_eq!(step(&mut k), Some(Err(neoos_mm::Errno::Io)));
    assert_eq!(step(&mut k), None, "the position did not move: read again");
    device.finish(false);
    k.disk_step();
    assert_eq!(step(&mut k), Some(Ok((2 * PAGE, 2 * PAGE))));
    assert_eq!(
        peek(&mut k, pid, buf, 2 * PAGE),
        (0..2 * PAGE).map(byte).collect::<Vec<_>>()
    );
}

/// A process of [`volume`] with the file open read-write and mapped by
/// `sys_mmap` (4 pages), pages 0 and 2 stored to: the address.
fn mapped_and_stored(k: &mut K, pid: u32) -> u64 {
    let path = put_str(k, pid, SCRATCH, "/home/usuario/datos.bin");
    let rw = neoos_abi::open::O_RDWR as u64;
    let fd = sys(k, pid, nr::OPEN, [path, rw, 0, 0, 0, 0]);
    assert!(fd >= 0);
    let at = sys(k, pid, nr::NEO_MMAP, [fd as u64, 0, 4 * PAGE_SIZE, 0, 0, 0]);
    assert!(at > 0);
    let at = at as u64;
    poke(k, pid, at, b"first store");
    poke(k, pid, at + 2 * PAGE_SIZE, b"third page's store");
    at
}

/// Call `number` of `pid` with `args`: the scheduler call it asks for
/// (the test fails if it is done at once).
fn scheduler_call_of(k: &mut K, pid: u32, number: usize, args: [u64; 6]) -> SchedulerCall {
    match k.system_call(pid, number, args) {
        Err((call, _)) => call,
        Ok(rax) => panic!("call {number} done at once: {rax}"),
    }
}

/// `sys_munmap(at, 4 pages)` of `pid`: its scheduler call.
fn begin_munmap(k: &mut K, pid: u32, at: u64) -> SchedulerCall {
    scheduler_call_of(k, pid, nr::NEO_MUNMAP, [at, 4 * PAGE_SIZE, 0, 0, 0, 0])
}

#[test]
fn a_sys_munmap_writes_without_the_lock_and_its_mapping_stays_reserved_meanwhile() {
    let (mut k, device, pid) = volume();
    let at = mapped_and_stored(&mut k, pid);
    device.hold_writes();
    assert_eq!(begin_munmap(&mut k, pid, at), SchedulerCall::NeoMunmap);
    assert_eq!(k.unmap_step(pid), None, "waits for its writes");
    assert_eq!(device.writes_in_flight(), 2, "one write per dirty run");
    assert!(!device.image_holds(b"third page's store"));
    let rw = (mman::PROT_READ | mman::PROT_WRITE) as u64;
    let fixed = (mman::MAP_SHARED | mman::MAP_FIXED | mman::MAP_ANON) as u64;
    let others = [
        (nr::NEO_MUNMAP, [at, 4 * PAGE_SIZE, 0, 0, 0, 0]),
        (nr::MUNMAP, [at + PAGE_SIZE, PAGE_SIZE, 0, 0, 0, 0]),
        (
            nr::MPROTECT,
            [at, PAGE_SIZE, mman::PROT_READ as u64, 0, 0, 0],
        ),
        (
            nr::MMAP,
            [at + 3 * PAGE_SIZE, PAGE_SIZE, rw, fixed, u64::MAX, 0],
        ),
    ];
    for (number, args) in others {
        let call = k.system_call(pid, number, args);
        assert!(
            matches!(call, Err((SchedulerCall::AwaitUnmap, _))),
            "call {number} waits for the munmap: {call:?}"
        );
    }
    // Stores meanwhile: page 0 again (copied already), page 1 anew.
    poke(&mut k, pid, at, b"FIRST STORE");
    poke(&mut k, pid, at + PAGE_SIZE, b"second page's store");
    assert_eq!(
        settle(&device, &mut k, false, |k| k.unmap_step(pid)),
        Ok(())
    );
    for stored in [
        &b"FIRST STORE"[..],
        b"second page's store",
        b"third page's store",
    ] {
        assert!(device.image_holds(stored), "no store lost");
    }
    let again = sys(&mut k, pid, nr::NEO_MUNMAP, [at, 4 * PAGE_SIZE, 0, 0, 0, 0]);
    assert_eq!(again, neoos_abi::neo::E_INVAL, "the mapping is gone");
    let unmap = sys(&mut k, pid, nr::MUNMAP, [at, PAGE_SIZE, 0, 0, 0, 0]);
    assert_eq!(unmap, 0, "the range is free: no call waits any more");
}

#[test]
fn a_sys_munmap_whose_write_fails_gives_e_io_and_keeps_the_mapping_dirty() {
    let (mut k, device, pid) = volume();
    let at = mapped_and_stored(&mut k, pid);
    device.hold_writes();
    assert_eq!(begin_munmap(&mut k, pid, at), SchedulerCall::NeoMunmap);
    assert_eq!(k.unmap_step(pid), None);
    device.finish_writes(true);
    k.disk_step();
    assert_eq!(k.unmap_step(pid), Some(Err(neoos_mm::Errno::Io)));
    assert_eq!(
        peek(&mut k, pid, at, 11),
        b"first store",
        "the mapping is intact"
    );
    assert!(!device.image_holds(b"third page's store"));
    let rw = (mman::PROT_READ | mman::PROT_WRITE) as u64;
    let protect = sys(&mut k, pid, nr::MPROTECT, [at, 4 * PAGE_SIZE, rw, 0, 0, 0]);
    assert_eq!(protect, 0, "no longer reserved");
    assert_eq!(begin_munmap(&mut k, pid, at), SchedulerCall::NeoMunmap);
    assert_eq!(k.unmap_step(pid), None);
    assert_eq!(device.writes_in_flight(), 2, "its pages are still dirty");
    assert_eq!(
        settle(&device, &mut k, false, |k| k.unmap_step(pid)),
        Ok(())
    );
    assert!(device.image_holds(b"first store"));
    assert!(device.image_holds(b"third page's store"));
}

/// `sys_close(fd)` of `pid`: its scheduler call.
fn begin_close(k: &mut K, pid: u32, fd: u64) -> SchedulerCall {
    scheduler_call_of(k, pid, nr::CLOSE, [fd, 0, 0, 0, 0, 0])
}

/// The file opened read-write by `pid` and its first 4 pages written by
/// `sys_write` (page 1 and 3 starting with a text): the descriptor.
fn written_by_write(k: &mut K, pid: u32) -> u64 {
    let path = put_str(k, pid, SCRATCH, "/home/usuario/datos.bin");
    let rw = neoos_abi::open::O_RDWR as u64;
    let fd = sys(k, pid, nr::OPEN, [path, rw, 0, 0, 0, 0]) as u64;
    let buf = SCRATCH + PAGE_SIZE;
    let texts = [&b""[..], b"written page one", b"", b"written page three"];
    for text in texts {
        let mut page = vec![0u8; PAGE];
        page[..text.len()].copy_from_slice(text);
        poke(k, pid, buf, &page);
        let wrote = sys(k, pid, nr::WRITE, [fd, buf, PAGE_SIZE, 0, 0, 0]);
        assert_eq!(wrote, PAGE as i64);
    }
    fd
}

#[test]
fn the_last_close_writes_the_dirty_pages_without_the_lock_the_descriptor_gone_at_once() {
    let (mut k, device, pid) = volume();
    let fd = written_by_write(&mut k, pid);
    device.hold_writes();
    assert_eq!(begin_close(&mut k, pid, fd), SchedulerCall::WriteBack);
    assert_eq!(k.writeback_step(pid), None, "waits for its writes");
    assert_eq!(device.writes_in_flight(), 1, "one run");
    let again = sys(&mut k, pid, nr::CLOSE, [fd, 0, 0, 0, 0, 0]);
    assert_eq!(
        again,
        neoos_abi::neo::E_INVAL,
        "the descriptor is closed already"
    );
    assert!(!device.image_holds(b"written page three"));
    assert_eq!(
        settle(&device, &mut k, false, |k| k.writeback_step(pid)),
        Ok(())
    );
    assert!(device.image_holds(b"written page one"));
    assert!(device.image_holds(b"written page three"));
    let file = match k.fs.lookup("/home/usuario/datos.bin") {
        Some(crate::fs::Node::File(id)) => id,
        _ => panic!("the file"),
    };
    assert_eq!(k.memory.file_page_dirty(file, 1), None, "the object went");
}

#[test]
fn a_last_close_whose_write_fails_gives_e_io_and_a_close_that_is_not_the_last_writes_nothing() {
    let (mut k, device, pid) = volume();
    let fd = written_by_write(&mut k, pid);
    let path = put_str(&mut k, pid, SCRATCH, "/home/usuario/datos.bin");
    let second = sys(&mut k, pid, nr::OPEN, [path, 0, 0, 0, 0, 0]) as u64;
    device.hold_writes();
    assert_eq!(sys(&mut k, pid, nr::CLOSE, [second, 0, 0, 0, 0, 0]), 0);
    assert_eq!(device.writes_in_flight(), 0, "not the last reference");
    assert_eq!(begin_close(&mut k, pid, fd), SchedulerCall::WriteBack);
    assert_eq!(k.writeback_step(pid), None);
    device.finish_writes(true);
    k.disk_step();
    assert_eq!(k.writeback_step(pid), Some(Err(neoos_mm::Errno::Io)));
}

/// Linux call `number` of `pid`, completed without the scheduler (a
/// call made whose device flush waits for the disk: its result, the
/// flush not waited for).
fn lsys(k: &mut K, pid: u32, number: usize, args: [u64; 6]) -> i64 {
    match made(k, pid, number, args) {
        Ok(rax) => rax,
        Err((SchedulerCall::FlushThen { result }, personality)) => personality.result(result),
        Err((SchedulerCall::FileWrite { fd, buf, count, at }, personality)) => personality.result(
            crate::kernel_tests::write_at_once(k, pid, fd, buf, count, at),
        ),
        Err((call, _)) => panic!("call {number} needs the scheduler: {call:?}"),
    }
}

/// A Linux process of [`volume`] with the file open read-only, its
/// position moved to 100: the kernel, device, process and descriptor.
fn linux_reader() -> (K, HeldReads, u32, u64) {
    let (mut k, device, _) = volume();
    let (pid, fd) = open_linux_reader(&mut k);
    (k, device, pid, fd)
}

/// A new Linux process with the file of [`volume`] open read-only, its
/// position moved to 100: the process and the descriptor.
fn open_linux_reader(k: &mut K) -> (u32, u64) {
    use neoos_abi::linux::nr as lnr;
    let pid = k
        .spawn("/bin/linux", &[b"/bin/linux".to_vec()], None)
        .unwrap();
    let path = put_str(k, pid, SCRATCH, "/home/usuario/datos.bin");
    let fd = lsys(k, pid, lnr::OPEN, [path, 0, 0, 0, 0, 0]);
    assert!(fd >= 0);
    let fd = fd as u64;
    assert_eq!(lsys(k, pid, lnr::LSEEK, [fd, 100, 0, 0, 0, 0]), 100);
    (pid, fd)
}

/// Linux `pread64` of `count` bytes at `offset` of `fd` to `buf`: the
/// scheduler call it is made.
fn begin_pread(k: &mut K, pid: u32, fd: u64, buf: u64, count: usize, offset: u64) -> Option<u64> {
    let args = [fd, buf, count as u64, offset, 0, 0];
    match k.system_call(pid, neoos_abi::linux::nr::PREAD64, args) {
        Err((SchedulerCall::FileRead { count: c, at, .. }, _)) if c == count => at,
        other => panic!("a pread of a volume file is a scheduler call: {other:?}"),
    }
}

/// The descriptor's position, asked by `lseek(fd, 0, SEEK_CUR)`.
fn position(k: &mut K, pid: u32, fd: u64) -> i64 {
    lsys(k, pid, neoos_abi::linux::nr::LSEEK, [fd, 0, 1, 0, 0, 0])
}

#[test]
fn a_pread_waits_without_the_lock_fails_with_eio_and_never_moves_the_position() {
    let (mut k, device, pid, fd) = linux_reader();
    let (buf, offset) = (SCRATCH + 4096, PAGE_SIZE + 5);
    assert_eq!(
        begin_pread(&mut k, pid, fd, buf, 2 * PAGE, offset),
        Some(offset)
    );
    let step =
        |k: &mut K| k.file_read_step(pid, pid, fd as i64, UserPtr(buf), 2 * PAGE, Some(offset));
    assert_eq!(step(&mut k), None, "waits for the disk");
    assert_eq!(device.in_flight(), 1, "pages 1 to 3 in one read");
    device.finish(true);
    k.disk_step();
    assert_eq!(step(&mut k), Some(Err(neoos_mm::Errno::Io)));
    assert_eq!(position(&mut k, pid, fd), 100, "E_IO moved nothing");
    assert_eq!(step(&mut k), None, "nothing installed: read again");
    device.finish(false);
    k.disk_step();
    assert_eq!(step(&mut k), Some(Ok((2 * PAGE, 2 * PAGE))));
    let at = offset as usize;
    assert_eq!(
        peek(&mut k, pid, buf, 2 * PAGE),
        (at..at + 2 * PAGE).map(byte).collect::<Vec<_>>()
    );
    assert_eq!(position(&mut k, pid, fd), 100, "a pread keeps the position");
}

#[test]
fn a_pread_whose_file_is_truncated_while_it_waits_gives_the_bytes_up_to_the_new_end() {
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, pid, fd) = linux_reader();
    let (buf, offset) = (SCRATCH + 4096, PAGE_SIZE + 5);
    begin_pread(&mut k, pid, fd, buf, 2 * PAGE, offset);
    let step =
        |k: &mut K| k.file_read_step(pid, pid, fd as i64, UserPtr(buf), 2 * PAGE, Some(offset));
    assert_eq!(step(&mut k), None);
    let path = put_str(&mut k, pid, SCRATCH, "/home/usuario/datos.bin");
    let writer = lsys(&mut k, pid, lnr::OPEN, [path, 2, 0, 0, 0, 0]);
    assert!(writer >= 0);
    let end = PAGE_SIZE + 100;
    assert_eq!(
        lsys(
            &mut k,
            pid,
            lnr::FTRUNCATE,
            [writer as u64, end, 0, 0, 0, 0]
        ),
        0
    );
    device.finish(false);
    k.disk_step();
    assert_eq!(step(&mut k), Some(Ok((95, 2 * PAGE))), "up to the new end");
    assert_eq!(
        peek(&mut k, pid, buf, 95),
        (offset as usize..end as usize)
            .map(byte)
            .collect::<Vec<_>>()
    );
    assert_eq!(device.in_flight(), 0);
    assert_eq!(position(&mut k, pid, fd), 100);
}

#[test]
fn readv_and_preadv_of_a_volume_file_wait_for_the_disk_buffer_by_buffer() {
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, pid, fd) = linux_reader();
    let (iov, buf) = (SCRATCH + 1024, SCRATCH + 4096);
    let mut vecs = Vec::new();
    for (base, len) in [(buf, 10u64), (0, 0), (buf + 10, 2 * PAGE_SIZE)] {
        vecs.extend_from_slice(&base.to_le_bytes());
        vecs.extend_from_slice(&len.to_le_bytes());
    }
    poke(&mut k, pid, iov, &vecs);
    let readv = k.system_call(pid, lnr::READV, [fd, iov, 3, 0, 0, 0]);
    let Err((
        SchedulerCall::FileReadv {
            at: None, count: 3, ..
        },
        _,
    )) = readv
    else {
        panic!("a readv of a volume file is a scheduler call: {readv:?}");
    };
    let preadv = k.system_call(pid, lnr::PREADV, [fd, iov, 3, PAGE_SIZE, 0, 0]);
    let Err((
        SchedulerCall::FileReadv {
            at: Some(PAGE_SIZE),
            ..
        },
        _,
    )) = preadv
    else {
        panic!("a preadv of a volume file is a scheduler call: {preadv:?}");
    };
    let negative = (-1i64) as u64;
    assert_eq!(
        lsys(&mut k, pid, lnr::PREADV, [fd, iov, 3, negative, 0, 0]),
        -neoos_abi::errno::EINVAL
    );
    let buffers = k.read_buffers(pid, UserPtr(iov), 3).unwrap();
    assert_eq!(
        buffers,
        [(UserPtr(buf), 10), (UserPtr(buf + 10), 2 * PAGE)],
        "the empty buffer left out"
    );
    assert_eq!(
        k.read_buffers(pid, UserPtr(iov), 1025),
        Err(neoos_mm::Errno::Inval),
        "more than IOV_MAX"
    );
    // The kernel steps each buffer as a pread from where the last ended.
    let step = |k: &mut K, (to, len): (UserPtr, usize), from: u64| {
        k.file_read_step(pid, pid, fd as i64, to, len, Some(from))
    };
    assert_eq!(step(&mut k, buffers[0], PAGE_SIZE), None, "waits");
    assert_eq!(device.in_flight(), 1);
    device.finish(false);
    k.disk_step();
    assert_eq!(step(&mut k, buffers[0], PAGE_SIZE), Some(Ok((10, 10))));
    assert_eq!(step(&mut k, buffers[1], PAGE_SIZE + 10), None, "page 3");
    device.finish(false);
    k.disk_step();
    let last = step(&mut k, buffers[1], PAGE_SIZE + 10);
    assert_eq!(last, Some(Ok((2 * PAGE, 2 * PAGE))));
    assert_eq!(
        peek(&mut k, pid, buf, 2 * PAGE + 10),
        (PAGE..3 * PAGE + 10).map(byte).collect::<Vec<_>>()
    );
    assert_eq!(position(&mut k, pid, fd), 100);
}

#[test]
fn a_pread_waiter_killed_while_it_waits_leaves_no_frame_behind() {
    let (mut k, device, _) = volume();
    let free = k.platform.frame_counts().1;
    let (pid, fd) = open_linux_reader(&mut k);
    let buf = SCRATCH + 4096;
    begin_pread(&mut k, pid, fd, buf, 3 * PAGE, 0);
    let waits = k.file_read_step(pid, pid, fd as i64, UserPtr(buf), 3 * PAGE, Some(0));
    assert_eq!(waits, None);
    k.end(pid, neoos_abi::status::KILLED);
    device.finish(false);
    k.disk_step();
    assert_eq!(device.in_flight(), 0);
    assert_eq!(k.platform.frame_counts().1, free, "every frame back");
}

/// The id of the test file.
fn datos(k: &K) -> neoos_mm::FileId {
    match k.fs.lookup("/home/usuario/datos.bin") {
        Some(crate::fs::Node::File(id)) => id,
        _ => panic!("the file"),
    }
}

/// A second process of [`volume`] with the file open read-write, written
/// by `sys_write` ([`written_by_write`]) and mapped shared by POSIX
/// `mmap` with a store on page 2: the process.
fn writer_with_a_shared_mapping(k: &mut K) -> u32 {
    let pid = spawn(k, None);
    let fd = written_by_write(k, pid);
    let rw = (mman::PROT_READ | mman::PROT_WRITE) as u64;
    let shared = mman::MAP_SHARED as u64;
    let at = sys(k, pid, nr::MMAP, [0, 4 * PAGE_SIZE, rw, shared, fd, 0]);
    assert!(at > 0);
    poke(
        k,
        pid,
        at as u64 + 2 * PAGE_SIZE,
        b"stored through the mapping",
    );
    pid
}

#[test]
fn an_exit_leaves_its_dirty_file_to_the_flusher_which_writes_it_without_the_lock() {
    let (mut k, device, _) = volume();
    let free = k.platform.frame_counts().1;
    let pid = writer_with_a_shared_mapping(&mut k);
    device.hold_writes();
    k.end(pid, neoos_abi::status::KILLED);
    assert_eq!(device.writes_in_flight(), 0, "the exit wrote nothing");
    let file = datos(&k);
    assert!(k.memory.file_kept(file), "the object is kept, dirty");
    assert_eq!(k.next_time_work(), 0, "the flusher is due at once");
    k.flush_if_due();
    assert!(
        device.writes_in_flight() > 0,
        "the flusher started its writes"
    );
    assert_eq!(k.next_time_work(), 0, "its pass goes on at the next pass");
    k.flush_if_due();
    assert!(!device.image_holds(b"written page three"));
    settle_flusher(&device, &mut k);
    for stored in [
        &b"written page one"[..],
        b"written page three",
        b"stored through the mapping",
    ] {
        assert!(device.image_holds(stored), "no store lost");
    }
    assert!(!k.memory.file_kept(file));
    assert_eq!(k.memory.file_page_dirty(file, 1), None, "the object went");
    assert_eq!(k.platform.frame_counts().1, free, "every frame back");
}

#[test]
fn a_kept_file_whose_write_fails_stays_dirty_and_is_written_at_the_next_try() {
    let (mut k, device, _) = volume();
    let free = k.platform.frame_counts().1;
    let pid = writer_with_a_shared_mapping(&mut k);
    device.hold_writes();
    k.end(pid, 0);
    k.flush_if_due();
    assert!(device.writes_in_flight() > 0);
    device.finish_writes(true);
    k.disk_step();
    k.flush_if_due();
    let file = datos(&k);
    assert!(k.memory.file_kept(file), "kept after E_IO");
    assert_eq!(k.memory.file_page_dirty(file, 3), Some(true), "still dirty");
    let retry = k.platform.ticks + crate::flusher::KEPT_RETRY_TICKS;
    assert_eq!(k.next_time_work(), retry, "tried again a second later");
    k.flush_if_due();
    assert_eq!(device.writes_in_flight(), 0, "not before");
    k.platform.ticks = retry;
    k.flush_if_due();
    assert!(device.writes_in_flight() > 0, "written again");
    settle_flusher(&device, &mut k);
    assert!(device.image_holds(b"written page three"));
    assert!(device.image_holds(b"stored through the mapping"));
    assert_eq!(k.memory.file_page_dirty(file, 1), None, "the object went");
    assert_eq!(k.platform.frame_counts().1, free, "every frame back");
}

#[test]
fn a_posix_munmap_of_the_last_reference_returns_at_once_and_an_open_takes_the_kept_object_up() {
    let (mut k, device, pid) = volume();
    let path = put_str(&mut k, pid, SCRATCH, "/home/usuario/datos.bin");
    let rw_open = neoos_abi::open::O_RDWR as u64;
    let fd = sys(&mut k, pid, nr::OPEN, [path, rw_open, 0, 0, 0, 0]) as u64;
    let rw = (mman::PROT_READ | mman::PROT_WRITE) as u64;
    let shared = mman::MAP_SHARED as u64;
    let at = sys(&mut k, pid, nr::MMAP, [0, 4 * PAGE_SIZE, rw, shared, fd, 0]) as u64;
    assert_eq!(sys(&mut k, pid, nr::CLOSE, [fd, 0, 0, 0, 0, 0]), 0);
    poke(&mut k, pid, at + PAGE_SIZE, b"kept store");
    device.hold_writes();
    let unmapped = sys(&mut k, pid, nr::MUNMAP, [at, 4 * PAGE_SIZE, 0, 0, 0, 0]);
    assert_eq!(unmapped, 0, "munmap returns without waiting");
    assert_eq!(device.writes_in_flight(), 0);
    let file = datos(&k);
    assert!(k.memory.file_kept(file));
    // An open before the flusher came finds the cached bytes, and its
    // last close writes them (the kernel's reference does not count).
    let fd = sys(&mut k, pid, nr::OPEN, [path, 0, 0, 0, 0, 0]) as u64;
    let buf = SCRATCH + 8 * PAGE_SIZE;
    let step = |k: &mut K| k.file_read_step(pid, pid, fd as i64, UserPtr(buf), 2 * PAGE, None);
    assert_eq!(step(&mut k), None, "page 0 is read");
    device.finish(false);
    k.disk_step();
    assert_eq!(step(&mut k), Some(Ok((2 * PAGE, 2 * PAGE))));
    assert_eq!(peek(&mut k, pid, buf + PAGE_SIZE, 10), b"kept store");
    assert_eq!(begin_close(&mut k, pid, fd), SchedulerCall::WriteBack);
    assert_eq!(k.writeback_step(pid), None, "the last close writes");
    assert_eq!(
        settle(&device, &mut k, false, |k| k.writeback_step(pid)),
        Ok(())
    );
    assert!(device.image_holds(b"kept store"));
    assert!(k.memory.file_kept(file), "clean, still kept");
    k.flush_if_due();
    assert_eq!(device.writes_in_flight(), 0, "nothing left to write");
    assert_eq!(k.memory.file_page_dirty(file, 1), None, "the object went");
}

#[test]
fn the_kept_files_are_written_under_the_lock_when_every_program_is_done() {
    let (mut k, device, _) = volume();
    let free = k.platform.frame_counts().1;
    let pid = writer_with_a_shared_mapping(&mut k);
    k.end(pid, 0);
    assert!(!device.image_holds(b"stored through the mapping"));
    k.release_kept_now();
    assert!(device.image_holds(b"written page one"));
    assert!(device.image_holds(b"stored through the mapping"));
    assert_eq!(
        k.memory.file_page_dirty(datos(&k), 1),
        None,
        "the object went"
    );
    assert_eq!(k.platform.frame_counts().1, free, "every frame back");
}

/// `count` bytes of `text` repeated, as `pid`'s buffer at `buf`.
fn put_bytes(k: &mut K, pid: u32, buf: u64, text: &[u8], count: usize) {
    let bytes: Vec<u8> = text.iter().copied().cycle().take(count).collect();
    poke(k, pid, buf, &bytes);
}

/// `sys_write(fd, buf, count)` of `pid`: a scheduler call for a volume
/// file; its step's first answer.
fn begin_write(
    k: &mut K,
    pid: u32,
    fd: u64,
    buf: u64,
    count: usize,
) -> Option<Result<i64, neoos_mm::Errno>> {
    match k.system_call(pid, nr::WRITE, [fd, buf, count as u64, 0, 0, 0]) {
        Err((SchedulerCall::FileWrite { at: None, .. }, _)) => {}
        other => panic!("a write of a volume file is a scheduler call: {other:?}"),
    }
    k.file_write_step(pid, pid, fd as i64, UserPtr(buf), count as i64, None)
}

/// The file's bytes `[from, from + len)` as a new descriptor reads them
/// (through the page cache).
fn file_bytes(k: &mut K, pid: u32, device: &HeldReads, from: usize, len: usize) -> Vec<u8> {
    let path = put_str(k, pid, SCRATCH, "/home/usuario/datos.bin");
    let fd = sys(k, pid, nr::OPEN, [path, 0, 0, 0, 0, 0]);
    let buf = SCRATCH + 5 * PAGE_SIZE;
    let want = from + len;
    let mut got = 0;
    while got < want {
        match k.file_read_step(pid, pid, fd, UserPtr(buf + got as u64), want - got, None) {
            None => {
                device.finish(false);
                k.disk_step();
            }
            Some(Ok((n, _))) if n > 0 => got += n,
            other => panic!("read back: {other:?}"),
        }
    }
    assert_eq!(sys(k, pid, nr::CLOSE, [fd as u64, 0, 0, 0, 0, 0]), 0);
    peek(k, pid, buf + from as u64, len)
}

/// The file opened read-write by `pid` (not cached yet): the descriptor.
fn open_rw(k: &mut K, pid: u32) -> u64 {
    let path = put_str(k, pid, SCRATCH, "/home/usuario/datos.bin");
    let rw = neoos_abi::open::O_RDWR as u64;
    let fd = sys(k, pid, nr::OPEN, [path, rw, 0, 0, 0, 0]);
    assert!(fd >= 0);
    fd as u64
}

#[test]
fn a_partial_write_miss_reads_its_page_without_the_lock_and_a_full_page_reads_nothing() {
    let (mut k, device, pid) = volume();
    let fd = open_rw(&mut k, pid);
    let buf = SCRATCH + PAGE_SIZE;
    put_bytes(&mut k, pid, buf, b"new ", 2 * PAGE);
    // Position 0: page 0 whole, page 1 whole: no read.
    let whole = begin_write(&mut k, pid, fd, buf, 2 * PAGE);
    assert_eq!(whole, Some(Ok(2 * PAGE as i64)), "whole pages read nothing");
    assert_eq!(device.in_flight(), 0);
    // Position 2 pages: 100 bytes of page 2, a miss: read first.
    assert_eq!(
        begin_write(&mut k, pid, fd, buf, 100),
        None,
        "waits for page 2"
    );
    assert_eq!(device.in_flight(), 1, "one read");
    assert_eq!(
        k.file_write_step(pid, pid, fd as i64, UserPtr(buf), 100, None),
        None
    );
    device.finish(false);
    k.disk_step();
    let wrote = k.file_write_step(pid, pid, fd as i64, UserPtr(buf), 100, None);
    assert_eq!(wrote, Some(Ok(100)));
    let back = file_bytes(&mut k, pid, &device, 2 * PAGE, PAGE);
    assert_eq!(&back[..8], b"new new ");
    let original: Vec<u8> = (2 * PAGE + 100..3 * PAGE).map(byte).collect();
    assert_eq!(
        &back[100..],
        &original[..],
        "the rest of the page as it was"
    );
}

#[test]
fn a_write_whose_first_page_read_fails_gives_e_io_with_nothing_written_and_the_position_kept() {
    let (mut k, device, pid) = volume();
    let fd = open_rw(&mut k, pid);
    let buf = SCRATCH + PAGE_SIZE;
    put_bytes(&mut k, pid, buf, b"x", 3 * PAGE);
    let lseek_like = |k: &mut K| match k.descriptor(pid, fd as i64) {
        Ok(crate::files::Descriptor::File(f)) => f.position,
        other => panic!("{other:?}"),
    };
    // 10 bytes into page 0 (a miss): its read fails.
    let step = |k: &mut K| k.file_write_step(pid, pid, fd as i64, UserPtr(buf), 10, None);
    assert_eq!(begin_write(&mut k, pid, fd, buf, 10), None);
    device.finish(true);
    k.disk_step();
    assert_eq!(step(&mut k), Some(Err(neoos_mm::Errno::Io)));
    assert_eq!(lseek_like(&mut k), 0, "the position kept");
    assert_eq!(
        file_bytes(&mut k, pid, &device, 0, 10),
        (0..10).map(byte).collect::<Vec<u8>>()
    );
    // Again, from position 0 to inside page 2: pages 0 and 1 are written
    // whole, page 2's read fails: the bytes before page 2 are written
    // (the short count a read failure there always gave).
    let count = 2 * PAGE + 10;
    let long = |k: &mut K| k.file_write_step(pid, pid, fd as i64, UserPtr(buf), count as i64, None);
    assert_eq!(begin_write(&mut k, pid, fd, buf, count), None, "page 2");
    device.finish(true);
    k.disk_step();
    assert_eq!(long(&mut k), Some(Ok(2 * PAGE as i64)));
    assert_eq!(lseek_like(&mut k), 2 * PAGE_SIZE);
    assert_eq!(
        file_bytes(&mut k, pid, &device, 2 * PAGE - 1, 2),
        [b'x', byte(2 * PAGE)]
    );
}

#[test]
fn a_write_waiter_killed_while_it_waits_writes_nothing_and_leaves_no_frame() {
    let (mut k, device, _) = volume();
    let free = k.platform.frame_counts().1;
    let pid = spawn(&mut k, None);
    let fd = open_rw(&mut k, pid);
    let buf = SCRATCH + PAGE_SIZE;
    put_bytes(&mut k, pid, buf, b"killed", 100);
    assert_eq!(begin_write(&mut k, pid, fd, buf, 100), None);
    k.end(pid, neoos_abi::status::KILLED);
    device.finish(false);
    k.disk_step();
    assert_eq!(device.in_flight(), 0);
    assert_eq!(
        k.memory.file_page_dirty(datos(&k), 0),
        None,
        "the object went"
    );
    assert_eq!(k.platform.frame_counts().1, free, "every frame back");
    let reader = spawn(&mut k, None);
    let back = file_bytes(&mut k, reader, &device, 0, 100);
    assert_eq!(
        back,
        (0..100).map(byte).collect::<Vec<u8>>(),
        "nothing written"
    );
}

#[test]
fn a_linux_pwrite_miss_waits_without_the_lock_and_never_moves_the_position() {
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, _) = volume();
    let pid = k
        .spawn("/bin/linux", &[b"/bin/linux".to_vec()], None)
        .unwrap();
    let path = put_str(&mut k, pid, SCRATCH, "/home/usuario/datos.bin");
    let fd = lsys(&mut k, pid, lnr::OPEN, [path, 2, 0, 0, 0, 0]) as u64;
    assert_eq!(lsys(&mut k, pid, lnr::LSEEK, [fd, 100, 0, 0, 0, 0]), 100);
    let buf = SCRATCH + PAGE_SIZE;
    put_bytes(&mut k, pid, buf, b"pw", 8);
    let at = PAGE_SIZE + 7;
    match k.system_call(pid, lnr::PWRITE64, [fd, buf, 8, at, 0, 0]) {
        Err((SchedulerCall::FileWrite { at: Some(a), .. }, _)) if a == at => {}
        other => panic!("a pwrite64 of a volume file is a scheduler call: {other:?}"),
    }
    let step = |k: &mut K| k.file_write_step(pid, pid, fd as i64, UserPtr(buf), 8, Some(at));
    assert_eq!(step(&mut k), None, "page 1 is read first");
    device.finish(true);
    k.disk_step();
    assert_eq!(step(&mut k), Some(Err(neoos_mm::Errno::Io)));
    assert_eq!(position(&mut k, pid, fd), 100);
    assert_eq!(step(&mut k), None, "read again");
    device.finish(false);
    k.disk_step();
    assert_eq!(step(&mut k), Some(Ok(8)));
    assert_eq!(
        position(&mut k, pid, fd),
        100,
        "pwrite64 keeps the position"
    );
    let reader = spawn(&mut k, None);
    let back = file_bytes(&mut k, reader, &device, PAGE + 6, 10);
    assert_eq!(
        back,
        [
            byte(PAGE + 6),
            b'p',
            b'w',
            b'p',
            b'w',
            b'p',
            b'w',
            b'p',
            b'w',
            byte(PAGE + 15)
        ]
    );
}

#[test]
fn an_exec_leaves_its_dirty_file_to_the_flusher() {
    use neoos_abi::linux::{self as labi, nr as lnr};
    let (mut k, device, _) = volume();
    let pid = k
        .spawn("/bin/linux", &[b"/bin/linux".to_vec()], None)
        .unwrap();
    let path = put_str(&mut k, pid, SCRATCH, "/home/usuario/datos.bin");
    let flags = (neoos_abi::open::O_RDWR | labi::O_CLOEXEC) as u64;
    let fd = lsys(&mut k, pid, lnr::OPEN, [path, flags, 0, 0, 0, 0]) as u64;
    let rw = (mman::PROT_READ | mman::PROT_WRITE) as u64;
    let shared = mman::MAP_SHARED as u64;
    let at = lsys(
        &mut k,
        pid,
        lnr::MMAP,
        [0, 4 * PAGE_SIZE, rw, shared, fd, 0],
    ) as u64;
    poke(&mut k, pid, at + PAGE_SIZE, b"stored before the exec");
    device.hold_writes();
    // execve("/bin/linux", ["/bin/linux"], []): its descriptor closes, its old
    // space is retired in steps.
    let program = put_str(&mut k, pid, SCRATCH + 512, "/bin/linux");
    let (argv, envp) = (SCRATCH + 256, SCRATCH + 264);
    poke(&mut k, pid, argv, &program.to_le_bytes());
    poke(&mut k, pid, envp, &0u64.to_le_bytes());
    let ptr = UserPtr;
    assert!(k.execve(pid, ptr(program), ptr(argv), ptr(envp)).is_ok());
    while !k.exec_retire_step(pid) {}
    assert_eq!(device.writes_in_flight(), 0, "the exec wrote nothing");
    assert!(!device.image_holds(b"stored before the exec"));
    let file = datos(&k);
    assert!(k.memory.file_kept(file));
    k.flush_if_due();
    assert!(device.writes_in_flight() > 0, "the flusher writes it");
    settle_flusher(&device, &mut k);
    assert!(device.image_holds(b"stored before the exec"));
    assert_eq!(k.memory.file_page_dirty(file, 1), None, "the object went");
}

#[test]
fn linux_sync_writes_every_dirty_file_without_the_lock_and_lets_the_kept_ones_go() {
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, _) = volume();
    let free = k.platform.frame_counts().1;
    // A kept file (its writer ended) and a file another process holds
    // open with a page written.
    let ended = writer_with_a_shared_mapping(&mut k);
    k.end(ended, 0);
    let file = datos(&k);
    assert!(k.memory.file_kept(file));
    let pid = k
        .spawn("/bin/linux", &[b"/bin/linux".to_vec()], None)
        .unwrap();
    let path = put_str(&mut k, pid, SCRATCH, "/home/usuario/other.bin");
    let flags = (neoos_abi::open::O_RDWR | neoos_abi::open::O_CREAT) as u64;
    let fd = lsys(&mut k, pid, lnr::OPEN, [path, flags, 0o644, 0, 0, 0]) as u64;
    let buf = SCRATCH + PAGE_SIZE;
    poke(&mut k, pid, buf, b"the other file's bytes");
    assert_eq!(lsys(&mut k, pid, lnr::WRITE, [fd, buf, 22, 0, 0, 0]), 22);
    device.hold_writes();
    match k.system_call(pid, lnr::SYNC, [0; 6]) {
        Err((SchedulerCall::Sync, _)) => {}
        other => panic!("sync is a scheduler call: {other:?}"),
    }
    assert_eq!(k.sync_step(pid, pid), None, "waits for its writes");
    // Its writes, and the reads of the metadata placing the new file's
    // block needs (the allocator's blocks, read without the lock first).
    while device.writes_in_flight() + device.flushes_in_flight() + device.in_flight() > 0 {
        device.finish(false);
        device.finish_writes(false);
        k.disk_step();
        if let Some(done) = k.sync_step(pid, pid) {
            assert_eq!(done, Ok(()));
            break;
        }
    }
    assert!(device.image_holds(b"written page three"));
    assert!(device.image_holds(b"stored through the mapping"));
    assert!(device.image_holds(b"the other file's bytes"));
    assert_eq!(
        k.memory.file_page_dirty(file, 1),
        None,
        "the kept file went"
    );
    assert_eq!(lsys(&mut k, pid, lnr::CLOSE, [fd, 0, 0, 0, 0, 0]), 0);
    k.end(pid, 0);
    assert_eq!(k.platform.frame_counts().1, free, "every frame back");
}

/// `fsync(fd)` of `pid`: its scheduler call.
fn begin_fsync(k: &mut K, pid: u32, fd: u64) -> SchedulerCall {
    scheduler_call_of(k, pid, nr::FSYNC, [fd, 0, 0, 0, 0, 0])
}

/// The closing sync of a write-back waits without the lock too: first
/// for the write of the inode's block (its deferred times), then for the
/// device's flush, started only once that write is done; the pages are
/// clean only after the flush.
#[test]
fn an_fsync_waits_for_its_inode_write_and_then_its_flush_without_the_lock() {
    let (mut k, device, pid) = volume();
    let fd = written_by_write(&mut k, pid);
    let file = datos(&k);
    device.hold_writes();
    assert_eq!(begin_fsync(&mut k, pid, fd), SchedulerCall::WriteBack);
    assert_eq!(k.writeback_step(pid), None, "waits for its data write");
    assert_eq!(
        (device.writes_in_flight(), device.flushes_in_flight()),
        (1, 0)
    );
    device.finish_writes(false);
    k.disk_step();
    assert_eq!(k.writeback_step(pid), None, "waits for the inode's write");
    assert_eq!(
        (device.writes_in_flight(), device.flushes_in_flight()),
        (1, 0),
        "the metadata write alone, no flush before it is done"
    );
    assert_eq!(k.memory.file_page_dirty(file, 1), Some(true));
    device.finish_writes(false);
    k.disk_step();
    assert_eq!(k.writeback_step(pid), None, "waits for the flush");
    assert_eq!(
        (device.writes_in_flight(), device.flushes_in_flight()),
        (0, 1)
    );
    assert_eq!(
        k.memory.file_page_dirty(file, 1),
        Some(true),
        "dirty until the flush is done"
    );
    // Another process's call runs meanwhile, and a read of the volume.
    let other = spawn(&mut k, None);
    let path = put_str(&mut k, other, SCRATCH, "/home/usuario/datos.bin");
    assert!(sys(&mut k, other, nr::OPEN, [path, 0, 0, 0, 0, 0]) >= 0);
    device.finish_writes(false);
    k.disk_step();
    assert_eq!(k.writeback_step(pid), Some(Ok(())));
    assert_eq!(k.memory.file_page_dirty(file, 1), Some(false), "clean");
    assert!(device.image_holds(b"written page three"));
}

/// A failed flush fails the call with `E_IO`, every page still dirty; the
/// next `fsync` writes them all again and succeeds.
#[test]
fn a_failed_flush_gives_e_io_with_the_pages_dirty_and_the_next_fsync_writes_them() {
    let (mut k, device, pid) = volume();
    let fd = written_by_write(&mut k, pid);
    let file = datos(&k);
    device.hold_writes();
    assert_eq!(begin_fsync(&mut k, pid, fd), SchedulerCall::WriteBack);
    assert_eq!(k.writeback_step(pid), None);
    let mut steps = 0;
    while device.flushes_in_flight() == 0 {
        device.finish_writes(false);
        k.disk_step();
        assert_eq!(k.writeback_step(pid), None, "waits until the flush is done");
        steps += 1;
        assert!(steps < 4, "the flush is started");
    }
    device.finish_writes(true);
    k.disk_step();
    assert_eq!(k.writeback_step(pid), Some(Err(neoos_mm::Errno::Io)));
    assert_eq!(k.memory.file_page_dirty(file, 1), Some(true), "still dirty");
    assert_eq!(k.memory.file_page_dirty(file, 3), Some(true), "still dirty");
    assert_eq!(begin_fsync(&mut k, pid, fd), SchedulerCall::WriteBack);
    assert_eq!(k.writeback_step(pid), None);
    assert_eq!(device.writes_in_flight(), 1, "its run written again");
    assert_eq!(
        settle(&device, &mut k, false, |k| k.writeback_step(pid)),
        Ok(())
    );
    assert_eq!(k.memory.file_page_dirty(file, 1), Some(false));
}

/// A failed write of the inode's block fails the call with `E_IO` before
/// any flush, the pages dirty and the inode's change still pending: the
/// next `fsync` writes the block again, then flushes.
#[test]
fn a_failed_inode_write_gives_e_io_before_any_flush_and_stays_pending() {
    let (mut k, device, pid) = volume();
    let fd = written_by_write(&mut k, pid);
    let file = datos(&k);
    device.hold_writes();
    assert_eq!(begin_fsync(&mut k, pid, fd), SchedulerCall::WriteBack);
    assert_eq!(k.writeback_step(pid), None);
    device.finish_writes(false);
    k.disk_step();
    assert_eq!(k.writeback_step(pid), None);
    assert_eq!(device.writes_in_flight(), 1, "the inode's block");
    device.finish_writes(true);
    k.disk_step();
    assert_eq!(k.writeback_step(pid), Some(Err(neoos_mm::Errno::Io)));
    assert_eq!(
        device.flushes_in_flight(),
        0,
        "no flush after a failed write"
    );
    assert_eq!(k.memory.file_page_dirty(file, 1), Some(true));
    assert_eq!(begin_fsync(&mut k, pid, fd), SchedulerCall::WriteBack);
    assert_eq!(k.writeback_step(pid), None);
    device.finish_writes(false);
    k.disk_step();
    assert_eq!(k.writeback_step(pid), None);
    assert_eq!(
        device.writes_in_flight(),
        1,
        "the inode's block, still pending, written again"
    );
    assert_eq!(
        settle(&device, &mut k, false, |k| k.writeback_step(pid)),
        Ok(())
    );
    assert_eq!(k.memory.file_page_dirty(file, 1), Some(false));
}

/// A thread killed while its flush is in flight leaves it to the device:
/// the record goes, every frame comes back, and the next write-back
/// (the flusher's) is not failed by what the dead one left.
#[test]
fn an_fsync_killed_during_its_flush_leaves_nothing_behind() {
    let (mut k, device, _) = volume();
    let free = k.platform.frame_counts().1;
    let pid = spawn(&mut k, None);
    let fd = written_by_write(&mut k, pid);
    device.hold_writes();
    assert_eq!(begin_fsync(&mut k, pid, fd), SchedulerCall::WriteBack);
    assert_eq!(k.writeback_step(pid), None);
    while device.flushes_in_flight() == 0 {
        device.finish_writes(false);
        k.disk_step();
        assert_eq!(k.writeback_step(pid), None);
    }
    k.end(pid, neoos_abi::status::KILLED);
    device.finish_writes(true);
    k.disk_step();
    settle_flusher(&device, &mut k);
    let file = datos(&k);
    assert_eq!(k.memory.file_page_dirty(file, 1), None, "the object went");
    assert!(device.image_holds(b"written page three"));
    assert_eq!(k.platform.frame_counts().1, free, "every frame back");
}

/// Two write-backs on one disk: the failure of the first one's writes is
/// its own, even when the second steps first after them (and starts its
/// own writes): the first gets `E_IO`, its pages stay dirty, and the
/// second, whose writes succeed, gets `E_OK`.
#[test]
fn a_failed_write_is_reported_to_its_own_write_back_when_another_steps_first() {
    let (mut k, device, pid) = volume();
    let fd = written_by_write(&mut k, pid);
    let other = spawn(&mut k, None);
    let path = put_str(&mut k, other, SCRATCH, "/home/usuario/otro.bin");
    let create = (neoos_abi::open::O_RDWR | neoos_abi::open::O_CREAT) as u64;
    let other_fd = lsys(&mut k, other, nr::OPEN, [path, create, 0, 0, 0, 0]) as u64;
    let buf = SCRATCH + PAGE_SIZE;
    poke(&mut k, other, buf, b"the other file's page");
    assert_eq!(
        sys(&mut k, other, nr::WRITE, [other_fd, buf, 21, 0, 0, 0]),
        21
    );
    device.hold_writes();
    assert_eq!(begin_fsync(&mut k, pid, fd), SchedulerCall::WriteBack);
    assert_eq!(k.writeback_step(pid), None, "its writes in flight");
    assert_eq!(
        begin_fsync(&mut k, other, other_fd),
        SchedulerCall::WriteBack
    );
    assert_eq!(k.writeback_step(other), None, "waits for the disk");
    assert_eq!(device.writes_in_flight(), 1, "the first one's run alone");
    device.finish_writes(true);
    k.disk_step();
    // The second reads the metadata placing its new block needs (without
    // the lock), then starts its writes.
    while k.writeback_step(other).is_none() && device.writes_in_flight() == 0 {
        device.finish(false);
        k.disk_step();
    }
    assert!(
        device.writes_in_flight() > 0,
        "the second starts its writes"
    );
    assert_eq!(k.writeback_step(pid), None, "the first waits for them");
    device.finish_writes(false);
    k.disk_step();
    assert_eq!(
        k.writeback_step(pid),
        Some(Err(neoos_mm::Errno::Io)),
        "the failure is the first one's"
    );
    let file = datos(&k);
    assert_eq!(k.memory.file_page_dirty(file, 1), Some(true), "still dirty");
    let done = settle(&device, &mut k, false, |k| k.writeback_step(other));
    assert_eq!(done, Ok(()), "the second one's writes succeeded");
    assert!(device.image_holds(b"the other file's page"));
}

/// Makes call `number` of `pid` until it is not sent to wait for metadata
/// reads, letting the device finish them (`fail`: failing) between tries:
/// its outcome and how many times it waited.
fn after_metadata_reads(
    k: &mut K,
    device: &HeldReads,
    pid: u32,
    number: usize,
    args: [u64; 6],
    fail: bool,
) -> (crate::syscall::Dispatched, usize) {
    let mut waits = 0;
    loop {
        match k.system_call(pid, number, args) {
            Err((SchedulerCall::AwaitMetadata, _)) => {
                assert!(device.in_flight() > 0, "it waits for reads in flight");
                device.finish(fail);
                k.disk_step();
                waits += 1;
                assert!(waits <= 9, "a call waits a bounded number of times");
            }
            other => return (other, waits),
        }
    }
}

/// A `stat` of a path whose metadata is not cached waits for it without
/// the lock, directory level by directory level (the call made again each
/// time, nothing done before), and is then made reading nothing.
#[test]
fn a_stat_of_an_uncached_path_reads_its_metadata_without_the_lock_then_reads_nothing() {
    let (mut k, device, pid) = volume_cold();
    let path = put_str(&mut k, pid, SCRATCH, "/home/usuario/datos.bin");
    let out = SCRATCH + 1024;
    let args = [path, out, 0, 0, 0, 0];
    let first = k.system_call(pid, nr::STAT, args);
    assert!(
        matches!(first, Err((SchedulerCall::AwaitMetadata, _))),
        "waits for the metadata: {first:?}"
    );
    assert!(device.in_flight() > 0, "its reads started");
    let before = device.reads_at_once();
    device.finish(false);
    k.disk_step();
    let (made, waits) = after_metadata_reads(&mut k, &device, pid, nr::STAT, args, false);
    assert_eq!(made, Ok(0));
    assert!(waits >= 1, "a level at a time: {waits} more waits");
    assert_eq!(device.reads_at_once(), before, "no read under the lock");
    let size = u64::from_le_bytes(peek(&mut k, pid, out + 8, 8).try_into().unwrap());
    assert_eq!(size, 4 * PAGE_SIZE);
    assert_eq!(k.system_call(pid, nr::STAT, args), Ok(0), "cached now");
}

/// An `open` that creates a file changes nothing while it waits for its
/// metadata; reads that fail leave it to read for itself: it is made
/// after a bounded number of waits and creates the file.
#[test]
fn an_open_that_creates_changes_nothing_while_it_waits_and_failed_reads_leave_it_to_read() {
    let (mut k, device, pid) = volume_cold();
    let path = put_str(&mut k, pid, SCRATCH, "/home/usuario/nuevo.bin");
    let create = (neoos_abi::open::O_RDWR | neoos_abi::open::O_CREAT) as u64;
    let args = [path, create, 0, 0, 0, 0];
    let first = k.system_call(pid, nr::OPEN, args);
    assert!(matches!(first, Err((SchedulerCall::AwaitMetadata, _))));
    assert!(!device.image_holds(b"nuevo.bin"), "nothing created yet");
    device.finish(true);
    k.disk_step();
    let (made, waits) = after_metadata_reads(&mut k, &device, pid, nr::OPEN, args, true);
    let Ok(fd) = made else {
        panic!("the open is made: {made:?}");
    };
    assert!(fd >= 0);
    assert!(waits < crate::metadata_reads::MOST_ROUNDS as usize);
    assert!(
        device.image_holds(b"nuevo.bin"),
        "created by the call itself"
    );
}

/// A thread killed while it waits for metadata reads leaves them to
/// finish for the cache; its record goes, and another process's call on
/// the same path then waits less (or not at all).
#[test]
fn a_call_killed_while_it_waits_for_metadata_leaves_its_reads_to_the_cache() {
    let (mut k, device, pid) = volume_cold();
    let path = put_str(&mut k, pid, SCRATCH, "/home/usuario/datos.bin");
    let out = SCRATCH + 1024;
    let args = [path, out, 0, 0, 0, 0];
    let free = k.platform.frame_counts().1;
    let other = spawn(&mut k, None);
    assert_eq!(
        put_str(&mut k, other, SCRATCH, "/home/usuario/datos.bin"),
        path
    );
    let first = k.system_call(other, nr::STAT, args);
    assert!(matches!(first, Err((SchedulerCall::AwaitMetadata, _))));
    k.end(other, neoos_abi::status::KILLED);
    device.finish(false);
    k.disk_step();
    assert_eq!(device.in_flight(), 0);
    assert_eq!(k.writebacks.metadata.waiting_calls(), 0, "its record went");
    let (made, _) = after_metadata_reads(&mut k, &device, pid, nr::STAT, args, false);
    assert_eq!(made, Ok(0));
    assert_eq!(k.platform.frame_counts().1, free, "every frame back");
}

/// A Linux process with datos.bin open read-write at position 100, and an
/// `iovec` array at `SCRATCH + 8 pages` of three buffers (10 bytes, a
/// page, 20 bytes: pages 0 and 1 written in part, never whole): the
/// process, the descriptor, the array and the bytes the buffers hold.
fn writev_of_three(k: &mut K) -> (u32, u64, u64, Vec<u8>) {
    use neoos_abi::linux::nr as lnr;
    let pid = k
        .spawn("/bin/linux", &[b"/bin/linux".to_vec()], None)
        .unwrap();
    let path = put_str(k, pid, SCRATCH, "/home/usuario/datos.bin");
    let fd = lsys(k, pid, lnr::OPEN, [path, 2, 0, 0, 0, 0]) as u64;
    assert_eq!(lsys(k, pid, lnr::LSEEK, [fd, 100, 0, 0, 0, 0]), 100);
    let lens = [10usize, PAGE, 20];
    let bytes: Vec<u8> = (0..lens.iter().sum::<usize>())
        .map(|i| (i * 7 + 1) as u8)
        .collect();
    let data = SCRATCH + 2 * PAGE_SIZE;
    poke(k, pid, data, &bytes);
    let mut iov = Vec::new();
    let mut at = data;
    for len in lens {
        iov.extend_from_slice(&at.to_le_bytes());
        iov.extend_from_slice(&(len as u64).to_le_bytes());
        at += len as u64;
    }
    let iov_at = SCRATCH + 8 * PAGE_SIZE;
    poke(k, pid, iov_at, &iov);
    (pid, fd, iov_at, bytes)
}

/// The bytes of datos.bin from 95 (as `pread64` gives them, the pages
/// cached) against `bytes` written at 100.
fn assert_written_at_100(k: &mut K, pid: u32, fd: u64, bytes: &[u8]) {
    let buf = SCRATCH + 12 * PAGE_SIZE;
    let len = bytes.len() + 10;
    let read = k.file_read_step(pid, pid, fd as i64, UserPtr(buf), len, Some(95));
    assert_eq!(read, Some(Ok((len, len))), "the pages are cached");
    let got = peek(k, pid, buf, len);
    assert_eq!(&got[..5], &(95..100).map(byte).collect::<Vec<_>>()[..]);
    assert_eq!(&got[5..5 + bytes.len()], bytes);
    let after: Vec<u8> = (100 + bytes.len()..105 + bytes.len()).map(byte).collect();
    assert_eq!(
        &got[5 + bytes.len()..],
        &after[..],
        "the rest of page 1 kept"
    );
}

/// A Linux `writev` of a volume file reads the pages its buffers write in
/// part before it is made, waiting without the lock (the call made again
/// after), and then reads nothing under the lock.
#[test]
fn a_linux_writev_reads_the_pages_it_writes_in_part_without_the_lock_first() {
    let (mut k, device, _) = volume();
    let (pid, fd, iov_at, bytes) = writev_of_three(&mut k);
    let args = [fd, iov_at, 3, 0, 0, 0];
    let first = k.system_call(pid, neoos_abi::linux::nr::WRITEV, args);
    assert!(
        matches!(first, Err((SchedulerCall::AwaitMetadata, _))),
        "waits for its reads: {first:?}"
    );
    let before = device.reads_at_once();
    device.finish(false);
    k.disk_step();
    let (made, _) = after_metadata_reads(
        &mut k,
        &device,
        pid,
        neoos_abi::linux::nr::WRITEV,
        args,
        false,
    );
    assert_eq!(made, Ok(bytes.len() as i64));
    assert_eq!(device.reads_at_once(), before, "no read under the lock");
    assert_eq!(position(&mut k, pid, fd), (100 + bytes.len()) as i64);
    assert_written_at_100(&mut k, pid, fd, &bytes);
}

/// Reads that fail leave a `writev` to read for itself, under the lock as
/// before: it is made after a bounded number of waits, whole.
#[test]
fn a_linux_writev_whose_reads_fail_is_made_after_a_bounded_number_of_waits() {
    let (mut k, device, _) = volume();
    let (pid, fd, iov_at, bytes) = writev_of_three(&mut k);
    let args = [fd, iov_at, 3, 0, 0, 0];
    let (made, waits) = after_metadata_reads(
        &mut k,
        &device,
        pid,
        neoos_abi::linux::nr::WRITEV,
        args,
        true,
    );
    assert!(waits >= 1 && waits <= crate::metadata_reads::MOST_ROUNDS as usize);
    assert_eq!(made, Ok(bytes.len() as i64));
    assert_written_at_100(&mut k, pid, fd, &bytes);
}

/// A Linux process of [`volume`] with "/home/usuario/datos.bin" at
/// `SCRATCH`: the process.
fn linux_namer(k: &mut K) -> u32 {
    let pid = k
        .spawn("/bin/linux", &[b"/bin/linux".to_vec()], None)
        .unwrap();
    put_str(k, pid, SCRATCH, "/home/usuario/datos.bin");
    pid
}

/// A Linux `unlink` of a volume file is made under the lock with no
/// write there: the blocks it changed are written without the lock, all
/// started at once, then the device is flushed, and only then the result
/// comes. The name is gone at once for every other call; the disk has it
/// gone once the call returns.
#[test]
fn a_linux_unlink_writes_its_metadata_then_flushes_without_the_lock() {
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, _) = volume();
    let pid = linux_namer(&mut k);
    device.hold_writes();
    let before = device.writes_at_once();
    let call = made(&mut k, pid, lnr::UNLINK, [SCRATCH, 0, 0, 0, 0, 0]);
    assert!(
        matches!(call, Err((SchedulerCall::FlushThen { result: Ok(0) }, _))),
        "made, its writes to wait for: {call:?}"
    );
    assert_eq!(
        device.writes_at_once() - before,
        0,
        "no write under the lock"
    );
    let started = device.writes_in_flight();
    assert!(started >= 3, "directory block, inodes, bitmaps: {started}");
    assert_eq!(device.flushes_in_flight(), 0, "no flush before the writes");
    assert!(
        k.fs.lookup("/home/usuario/datos.bin").is_none(),
        "the name is gone"
    );
    assert!(
        device.remounted().lookup_path("usuario/datos.bin").is_ok(),
        "not on the disk yet"
    );
    assert_eq!(k.flush_step(pid), None, "waits for the writes");
    device.finish_writes(false);
    k.disk_step();
    assert_eq!(k.flush_step(pid), None, "then for the flush");
    assert_eq!(
        (device.writes_in_flight(), device.flushes_in_flight()),
        (0, 1)
    );
    device.finish_writes(false);
    k.disk_step();
    assert_eq!(k.flush_step(pid), Some(Ok(())));
    assert!(
        device.remounted().lookup_path("usuario/datos.bin").is_err(),
        "gone on the disk"
    );
    assert_eq!(device.writes_at_once() - before, 0);
}

/// A Linux `mkdir` and `rename` make no write under the lock either: each
/// result comes once its writes (and flush) are done. What the disk holds
/// then mounts with both.
#[test]
fn a_linux_mkdir_and_rename_write_without_the_lock() {
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, _) = volume();
    let pid = linux_namer(&mut k);
    put_str(&mut k, pid, SCRATCH + 256, "/home/usuario/nueva");
    put_str(&mut k, pid, SCRATCH + 512, "/home/usuario/nueva/movido.bin");
    device.hold_writes();
    let before = device.writes_at_once();
    let call = made(&mut k, pid, lnr::MKDIR, [SCRATCH + 256, 0o755, 0, 0, 0, 0]);
    assert!(matches!(
        call,
        Err((SchedulerCall::FlushThen { result: Ok(0) }, _))
    ));
    assert!(device.writes_in_flight() >= 3);
    assert_eq!(k.flush_step(pid), None, "waits for its writes");
    let result = settle(&device, &mut k, false, |k| k.flush_step(pid));
    assert_eq!(result, Ok(()));
    let rename = [SCRATCH, SCRATCH + 512, 0, 0, 0, 0];
    let call = made(&mut k, pid, lnr::RENAME, rename);
    assert!(matches!(
        call,
        Err((SchedulerCall::FlushThen { result: Ok(0) }, _))
    ));
    let result = settle(&device, &mut k, false, |k| k.flush_step(pid));
    assert_eq!(result, Ok(()));
    assert_eq!(
        device.writes_at_once() - before,
        0,
        "no write under the lock"
    );
    let mut disk = device.remounted();
    assert!(disk.lookup_path("usuario/datos.bin").is_err());
    assert!(disk.lookup_path("usuario/nueva/movido.bin").is_ok());
}

/// A failed metadata write after a `chmod` gives `EIO` with the change
/// made (seen by the next calls) and its block still to write: the next
/// call writes it. A failed flush gives `EIO` too. A thread killed while
/// its writes are in flight leaves nothing, and the next call's are not
/// failed by it.
#[test]
fn a_linux_chmods_failed_write_or_flush_gives_eio_and_a_killed_waiter_leaves_nothing() {
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, _) = volume();
    let pid = linux_namer(&mut k);
    device.hold_writes();
    let mode_on_disk = |device: &HeldReads| {
        let mut disk = device.remounted();
        let ino = disk.lookup_path("usuario/datos.bin").unwrap();
        disk.stat(ino).unwrap().mode & 0o7777
    };
    let old_mode = mode_on_disk(&device);
    let chmod = [SCRATCH, 0o600, 0, 0, 0, 0];
    let call = made(&mut k, pid, lnr::CHMOD, chmod);
    assert!(matches!(
        call,
        Err((SchedulerCall::FlushThen { result: Ok(0) }, _))
    ));
    assert!(device.writes_in_flight() >= 1);
    device.finish_writes(true);
    k.disk_step();
    assert_eq!(k.flush_step(pid), Some(Err(neoos_mm::Errno::Io)));
    assert_eq!(
        device.flushes_in_flight(),
        0,
        "no flush after a failed write"
    );
    assert_eq!(mode_on_disk(&device), old_mode);
    // A failed flush.
    let call = made(&mut k, pid, lnr::CHMOD, chmod);
    assert!(matches!(call, Err((SchedulerCall::FlushThen { .. }, _))));
    device.finish_writes(false);
    k.disk_step();
    assert_eq!(k.flush_step(pid), None, "the flush");
    assert_eq!(
        mode_on_disk(&device),
        0o600,
        "the first chmod's block written"
    );
    device.finish_writes(true);
    k.disk_step();
    assert_eq!(k.flush_step(pid), Some(Err(neoos_mm::Errno::Io)));
    // A killed waiter.
    let other = linux_namer(&mut k);
    let call = made(&mut k, other, lnr::CHMOD, [SCRATCH, 0o644, 0, 0, 0, 0]);
    assert!(matches!(call, Err((SchedulerCall::FlushThen { .. }, _))));
    k.end(other, neoos_abi::status::KILLED);
    device.finish_writes(true);
    k.disk_step();
    assert_eq!(k.writebacks.metadata.flushes.len(), 0, "its record went");
    let call = made(&mut k, pid, lnr::CHMOD, chmod);
    assert!(matches!(call, Err((SchedulerCall::FlushThen { .. }, _))));
    let result = settle(&device, &mut k, false, |k| k.flush_step(pid));
    assert_eq!(result, Ok(()), "not failed by the dead one's");
    assert_eq!(mode_on_disk(&device), 0o600);
}

/// A process of [`volume`] that wrote the file's pages 1 and 3 by
/// `sys_write` (dirty in the cache, shown by no entry), then touched
/// anonymous memory until free frames are below the low-water mark but
/// `above` frames: the process, the file and the next untouched page of
/// the anonymous mapping.
fn dirty_file_then_frames_low(k: &mut K, above: u64) -> (u32, neoos_mm::FileId, u64) {
    let pid = spawn(k, None);
    let fd = written_by_write(k, pid);
    assert_eq!(fd, 3, "the descriptor the tests write through");
    let file = datos(k);
    assert_eq!(k.memory.file_page_dirty(file, 3), Some(true));
    let anon = crate::kernel_tests::map_anon(k, pid, 1000 * PAGE_SIZE);
    let mut page = 0;
    while k.platform.frame_counts().1 > above + 8 {
        poke(k, pid, anon + page * PAGE_SIZE, b"anonymous");
        page += 1;
    }
    assert!(crate::reclaim::frames_low(&k.platform));
    (pid, file, anon + page * PAGE_SIZE)
}

/// Reclaims until the flusher has been handed the file's dirty pages (the
/// clock's first pass only clears the pages' use: second chance).
fn reclaim_until_handed(k: &mut K) {
    for _ in 0..4 {
        k.reclaim_now();
        if !k.flusher.reclaim_spans.is_empty() {
            return;
        }
    }
    panic!("reclaim handed no dirty page to the flusher");
}

/// Reclaim writes no dirty page under the lock: it leaves them dirty for
/// the flusher, which writes them in its unlocked batches at its next
/// pass (due at once) and then evicts them; nothing reaches the disk
/// before, nothing is lost.
#[test]
fn reclaim_leaves_dirty_pages_to_the_flusher_which_writes_them_without_the_lock() {
    let (mut k, device, _) = volume();
    device.hold_writes();
    let (_, file, _) = dirty_file_then_frames_low(&mut k, 150);
    reclaim_until_handed(&mut k);
    assert_eq!(device.writes_in_flight(), 0, "reclaim wrote nothing");
    assert_eq!(
        k.memory.file_page_dirty(file, 3),
        Some(true),
        "still cached"
    );
    assert_eq!(k.reclaim_counts().written_locked, 0);
    assert!(k.reclaim_counts().handed >= 2);
    assert_eq!(k.next_time_work(), 0, "the flusher is due at once");
    k.flush_if_due();
    assert!(device.writes_in_flight() > 0, "the flusher started them");
    assert_eq!(
        k.memory.file_page_dirty(file, 3),
        Some(true),
        "kept meanwhile"
    );
    let free = k.platform.frame_counts().1;
    settle_flusher(&device, &mut k);
    assert!(device.image_holds(b"written page one"));
    assert!(device.image_holds(b"written page three"));
    assert_eq!(
        k.memory.file_page_dirty(file, 1),
        None,
        "evicted once written"
    );
    assert_eq!(
        k.memory.file_page_dirty(file, 3),
        None,
        "evicted once written"
    );
    assert!(k.platform.frame_counts().1 >= free + 2, "their frames back");
    assert!(k.flusher.reclaim_spans.is_empty());
}

/// A failed write of the pages reclaim handed over keeps them dirty and
/// cached (nothing lost); the clock hands them again and the next write
/// reaches the disk.
#[test]
fn reclaims_handed_pages_whose_write_fails_stay_dirty_and_are_written_later() {
    let (mut k, device, _) = volume();
    device.hold_writes();
    let (_, file, _) = dirty_file_then_frames_low(&mut k, 150);
    reclaim_until_handed(&mut k);
    k.flush_if_due();
    assert!(device.writes_in_flight() > 0);
    device.finish_writes(true);
    k.disk_step();
    k.flush_if_due();
    assert!(k.flusher.reclaim_spans.is_empty(), "the span is dropped");
    assert_eq!(
        k.memory.file_page_dirty(file, 3),
        Some(true),
        "E_IO: still dirty"
    );
    assert!(!device.image_holds(b"written page three"));
    reclaim_until_handed(&mut k);
    settle_flusher(&device, &mut k);
    assert!(device.image_holds(b"written page three"));
    assert_eq!(
        k.memory.file_page_dirty(file, 3),
        None,
        "evicted once written"
    );
}

/// Free frames below the critical mark with handed pages unwritten:
/// reclaim writes them itself, under the lock, as before, and evicts them.
#[test]
fn reclaim_writes_handed_pages_itself_when_frames_are_critically_low() {
    let (mut k, device, _) = volume();
    let (pid, file, mut next) = dirty_file_then_frames_low(&mut k, 150);
    reclaim_until_handed(&mut k);
    assert_eq!(k.reclaim_counts().written_locked, 0);
    while k.platform.frame_counts().1 > 40 {
        poke(&mut k, pid, next, b"anonymous");
        next += PAGE_SIZE;
    }
    k.reclaim_if_low();
    assert!(k.reclaim_counts().written_locked >= 2, "written at once");
    assert!(device.image_holds(b"written page three"));
    assert_eq!(k.memory.file_page_dirty(file, 3), None, "evicted");
}

/// The process whose pages reclaim handed over is killed while the
/// flusher writes them: every byte reaches the disk and every frame
/// comes back.
#[test]
fn a_process_killed_while_reclaims_pages_are_written_loses_nothing() {
    let (mut k, device, _) = volume();
    let free = k.platform.frame_counts().1;
    device.hold_writes();
    let (pid, file, _) = dirty_file_then_frames_low(&mut k, 150);
    reclaim_until_handed(&mut k);
    k.flush_if_due();
    assert!(device.writes_in_flight() > 0);
    k.end(pid, neoos_abi::status::KILLED);
    settle_flusher(&device, &mut k);
    assert!(device.image_holds(b"written page one"));
    assert!(device.image_holds(b"written page three"));
    assert_eq!(k.memory.file_page_dirty(file, 3), None);
    assert_eq!(k.platform.frame_counts().1, free, "every frame back");
}

/// Free frames below the critical mark with handed pages unwritten: a page
/// fault's retry and a `write` of a volume file write nothing under the
/// lock; each waits for the disk until the flusher's writes give frames
/// back, then goes on.
#[test]
fn a_fault_and_a_write_wait_without_the_lock_for_reclaims_writes_when_frames_are_critical() {
    let (mut k, device, _) = volume();
    device.hold_writes();
    let (pid, file, mut next) = dirty_file_then_frames_low(&mut k, 150);
    reclaim_until_handed(&mut k);
    while k.resolve_fault_step(pid, pid, next, Access::Write) == Some(Ok(())) {
        next += PAGE_SIZE;
    }
    let critical = crate::reclaim::critical_water(1000);
    assert!(k.platform.frame_counts().1 < critical, "the fault waits");
    let buf = SCRATCH + PAGE_SIZE;
    put_bytes(&mut k, pid, buf, b"written while frames were short", PAGE);
    assert_eq!(
        begin_write(&mut k, pid, 3, buf, PAGE),
        None,
        "the write waits"
    );
    assert_eq!(
        k.reclaim_counts().written_locked,
        0,
        "nothing under the lock"
    );
    assert!(k.reclaim_counts().waits >= 2);
    assert_eq!(device.writes_in_flight(), 0);
    settle_flusher(&device, &mut k);
    assert!(device.image_holds(b"written page three"));
    assert_eq!(
        k.memory.file_page_dirty(file, 3),
        None,
        "evicted once written"
    );
    assert_eq!(
        k.resolve_fault_step(pid, pid, next, Access::Write),
        Some(Ok(()))
    );
    let wrote = k.file_write_step(pid, pid, 3, UserPtr(buf), PAGE as i64, None);
    assert_eq!(wrote, Some(Ok(PAGE as i64)));
}

/// What a failed metadata write left dirty (the call gave `EIO`, nothing
/// else wrote it since) is written when every program is done.
#[test]
fn a_namespace_calls_failed_write_is_written_at_power_off() {
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, _) = volume();
    let pid = linux_namer(&mut k);
    device.hold_writes();
    let call = made(&mut k, pid, lnr::CHMOD, [SCRATCH, 0o600, 0, 0, 0, 0]);
    assert!(matches!(call, Err((SchedulerCall::FlushThen { .. }, _))));
    device.finish_writes(true);
    k.disk_step();
    assert_eq!(k.flush_step(pid), Some(Err(neoos_mm::Errno::Io)));
    let mode = |device: &HeldReads| {
        let mut disk = device.remounted();
        let ino = disk.lookup_path("usuario/datos.bin").unwrap();
        disk.stat(ino).unwrap().mode & 0o7777
    };
    assert_ne!(mode(&device), 0o600, "not on the disk");
    k.release_kept_now();
    assert_eq!(mode(&device), 0o600, "written at power off");
}

/// A Linux `open` with `O_CREAT` that creates its file makes no write
/// under the lock: its result waits for its writes. When they fail it
/// gives `EIO` and its descriptor is closed again (the file is made).
#[test]
fn a_linux_creating_open_writes_without_the_lock_and_a_failed_write_takes_its_descriptor_back() {
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, _) = volume();
    let pid = linux_namer(&mut k);
    put_str(&mut k, pid, SCRATCH + 256, "/home/usuario/nuevo-1");
    put_str(&mut k, pid, SCRATCH + 512, "/home/usuario/nuevo-2");
    device.hold_writes();
    let before = device.writes_at_once();
    let creat = (neoos_abi::open::O_CREAT | 2) as u64;
    let call = made(
        &mut k,
        pid,
        lnr::OPEN,
        [SCRATCH + 256, creat, 0o644, 0, 0, 0],
    );
    let Err((SchedulerCall::FlushThen { result: Ok(fd) }, _)) = call else {
        panic!("made, its writes to wait for: {call:?}");
    };
    assert!(
        device.writes_in_flight() >= 2,
        "directory block, inode, bitmap"
    );
    assert_eq!(
        device.writes_at_once() - before,
        0,
        "no write under the lock"
    );
    let result = settle(&device, &mut k, false, |k| k.flush_step(pid));
    assert_eq!(result, Ok(()));
    assert!(k.descriptor(pid, fd).is_ok(), "its descriptor kept");
    assert!(device.remounted().lookup_path("usuario/nuevo-1").is_ok());

    let call = made(
        &mut k,
        pid,
        lnr::OPEN,
        [SCRATCH + 512, creat, 0o644, 0, 0, 0],
    );
    let Err((SchedulerCall::FlushThen { result: Ok(fd) }, _)) = call else {
        panic!("made, its writes to wait for: {call:?}");
    };
    device.finish_writes(true);
    k.disk_step();
    assert_eq!(k.flush_step(pid), Some(Err(neoos_mm::Errno::Io)));
    assert!(k.descriptor(pid, fd).is_err(), "its descriptor taken back");
    assert!(
        k.fs.lookup("/home/usuario/nuevo-2").is_some(),
        "the file made"
    );
    assert_eq!(device.writes_at_once() - before, 0);
}

/// Pages of `hueco.bin` the hole tests store to: past the direct blocks,
/// under the single-indirect block and under the double-indirect one
/// (4 KiB blocks: 1024 pointers a block).
const HOLE_PAGES: [u64; 3] = [20, 700, 1500];

/// A kernel whose volume holds `usuario/hueco.bin`, 8 MiB with no block
/// (a hole throughout), on a 16 MiB image; its path looked up (cached),
/// nothing else of the volume read but the superblock and the group
/// descriptors. A process has it mapped (`sys_mmap`, read-write) with a
/// store in each of [`HOLE_PAGES`]: the mapping's address and the
/// descriptor.
fn holes_stored() -> (K, HeldReads, u32, u64, u64) {
    holes_stored_in(8 << 20, &HOLE_PAGES)
}

/// [`holes_stored`] of a file of `size` bytes with a store in each of
/// `pages`.
fn holes_stored_in(size: u64, pages: &[u64]) -> (K, HeldReads, u32, u64, u64) {
    let dir = std::env::temp_dir().join(std::format!(
        "neoos-disk-holes-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tree/usuario")).unwrap();
    let file = std::fs::File::create(dir.join("tree/usuario/hueco.bin")).unwrap();
    file.set_len(size).unwrap();
    let image = dir.join("img");
    let made = Command::new("/sbin/mke2fs")
        .args(["-q", "-F", "-t", "ext2", "-b", "4096", "-d"])
        .arg(dir.join("tree"))
        .arg(&image)
        .arg("16M")
        .output()
        .unwrap();
    assert!(made.status.success());
    let device = HeldReads::default();
    device.0.lock().unwrap().image = Some(MemDevice::new(std::fs::read(&image).unwrap()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut k = kernel();
    k.fs.mount_home(Box::new(device.clone())).unwrap();
    let pid = spawn(&mut k, None);
    assert!(k.fs.lookup("/home/usuario/hueco.bin").is_some());
    let path = put_str(&mut k, pid, SCRATCH, "/home/usuario/hueco.bin");
    let rw = neoos_abi::open::O_RDWR as u64;
    let fd = sys(&mut k, pid, nr::OPEN, [path, rw, 0, 0, 0, 0]);
    assert!(fd >= 0);
    let at = sys(&mut k, pid, nr::NEO_MMAP, [fd as u64, 0, size, 0, 0, 0]);
    assert!(at > 0);
    let at = at as u64;
    for &page in pages {
        poke(&mut k, pid, at + page * PAGE_SIZE, &hole_store(page));
    }
    (k, device, pid, at, fd as u64)
}

/// What the hole tests store at the start of page `page`.
fn hole_store(page: u64) -> Vec<u8> {
    std::format!("store in the hole at page {page:04}").into_bytes()
}

/// Steps `step` to its end, letting the device finish what is in flight
/// each time (`fail_writes`: failing its writes and flushes), reads
/// included: its result, and how many times reads were in flight.
fn settle_with_reads<R>(
    device: &HeldReads,
    k: &mut K,
    fail_writes: bool,
    mut step: impl FnMut(&mut K) -> Option<R>,
) -> (R, usize) {
    let mut read_rounds = 0;
    for _ in 0..24 {
        read_rounds += usize::from(device.in_flight() > 0);
        device.finish(false);
        device.finish_writes(fail_writes);
        k.disk_step();
        if let Some(result) = step(k) {
            return (result, read_rounds);
        }
    }
    panic!("the call did not end");
}

/// The image as a file, checked by `e2fsck -fn`.
fn assert_image_clean(device: &HeldReads) {
    let path = std::env::temp_dir().join(std::format!(
        "neoos-disk-holes-fsck-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let bytes = {
        let mut held = device.0.lock().unwrap();
        let image = held.image.as_mut().unwrap();
        let mut all = vec![0u8; image.sector_count() as usize * 512];
        image.read_sectors(0, &mut all).unwrap();
        all
    };
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("/sbin/e2fsck")
        .arg("-fn")
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "e2fsck -fn: {}",
        std::string::String::from_utf8_lossy(&out.stdout)
    );
}

/// Whether the image's `hueco.bin` holds each store of [`HOLE_PAGES`].
fn holes_on_disk(device: &HeldReads) -> bool {
    holes_on_disk_at(device, &HOLE_PAGES)
}

/// Whether the image's `hueco.bin` holds the store of each of `pages`.
fn holes_on_disk_at(device: &HeldReads, pages: &[u64]) -> bool {
    let mut disk = device.remounted();
    let ino = disk.lookup_path("usuario/hueco.bin").unwrap();
    pages.iter().all(|&page| {
        let want = hole_store(page);
        let mut got = vec![0u8; want.len()];
        disk.read_at(ino, page * PAGE_SIZE, &mut got).unwrap();
        got == want
    })
}

/// A `sys_munmap` of a mapping with stores in holes of its file (blocks
/// and indirect blocks to allocate, the bitmap, group descriptor and
/// superblock blocks not cached) reads that metadata without the lock
/// first (the call waits for its reads, nothing written meanwhile), then
/// places its runs with the allocations left dirty in the volume's cache
/// and writes the data, then that metadata, then the flush: no device
/// request under the lock from start to end; the image is clean and
/// holds the stores.
#[test]
fn a_sys_munmap_filling_holes_reads_and_writes_its_metadata_without_the_lock() {
    let (mut k, device, pid, at, _) = holes_stored();
    device.hold_writes();
    let (reads, writes) = (device.reads_at_once(), device.writes_at_once());
    let size = 8 << 20;
    let call = scheduler_call_of(&mut k, pid, nr::NEO_MUNMAP, [at, size, 0, 0, 0, 0]);
    assert_eq!(call, SchedulerCall::NeoMunmap);
    assert_eq!(k.unmap_step(pid), None, "waits");
    assert!(device.in_flight() > 0, "metadata reads first");
    assert_eq!(device.writes_in_flight(), 0, "no data write before them");
    let (result, read_rounds) = settle_with_reads(&device, &mut k, false, |k| k.unmap_step(pid));
    assert_eq!(result, Ok(()));
    assert!(read_rounds >= 1);
    assert_eq!(device.reads_at_once() - reads, 0, "no read under the lock");
    assert_eq!(
        device.writes_at_once() - writes,
        0,
        "no write under the lock"
    );
    assert!(holes_on_disk(&device), "the stores are on the disk");
    assert_image_clean(&device);
}

/// The same write-back (an `fsync`) whose data writes fail: `E_IO`, the
/// pages still dirty; whose metadata writes fail: `E_IO` before any
/// flush. The next `fsync` writes everything; the image is clean and
/// holds the stores, with no request under the lock.
#[test]
fn a_write_back_filling_holes_that_fails_gives_e_io_and_the_next_writes_it_all() {
    let (mut k, device, pid, _, fd) = holes_stored();
    device.hold_writes();
    let (reads, writes) = (device.reads_at_once(), device.writes_at_once());
    // Fails the `fail_round`th round of writes in flight (1: the data,
    // 2: the metadata): the `fsync`'s result.
    let fsync_failing = |k: &mut K, fail_round: usize| {
        assert_eq!(begin_fsync(k, pid, fd), SchedulerCall::WriteBack);
        let mut round = 0;
        for _ in 0..24 {
            if let Some(result) = k.writeback_step(pid) {
                return (result, round);
            }
            device.finish(false);
            if device.writes_in_flight() > 0 {
                round += 1;
                device.finish_writes(round == fail_round);
            } else {
                device.finish_writes(false);
            }
            k.disk_step();
        }
        panic!("the fsync did not end");
    };
    assert_eq!(fsync_failing(&mut k, 1), (Err(neoos_mm::Errno::Io), 1));
    assert!(!holes_on_disk(&device));
    assert_eq!(fsync_failing(&mut k, 2), (Err(neoos_mm::Errno::Io), 2));
    assert!(!holes_on_disk(&device), "the metadata not on the disk");
    assert_eq!(device.flushes_in_flight(), 0);
    let (result, _) = fsync_failing(&mut k, 0);
    assert_eq!(result, Ok(()));
    assert!(holes_on_disk(&device));
    assert_image_clean(&device);
    assert_eq!(device.reads_at_once() - reads, 0, "no read under the lock");
    assert_eq!(
        device.writes_at_once() - writes,
        0,
        "no write under the lock"
    );
}

/// A fault on a page whose block is mapped through indirect blocks not
/// cached (a volume just mounted) reads them without the lock first, then
/// the page: nothing read under the lock.
#[test]
fn a_fault_whose_indirect_blocks_are_not_cached_reads_them_without_the_lock() {
    let (mut k, device, pid, at, _) = holes_stored();
    let (result, _) = {
        let call = scheduler_call_of(&mut k, pid, nr::NEO_MUNMAP, [at, 8 << 20, 0, 0, 0, 0]);
        assert_eq!(call, SchedulerCall::NeoMunmap);
        settle_with_reads(&device, &mut k, false, |k| k.unmap_step(pid))
    };
    assert_eq!(result, Ok(()));
    let (mut k, device, pid, at) = hueco_mapped_afresh(&device, 8 << 20);
    let reads = device.reads_at_once();
    for page in [1500u64, 700] {
        let waits = read_fault_settled(&mut k, &device, pid, at + page * PAGE_SIZE);
        assert!(waits >= 2, "its indirect blocks, then its page: {waits}");
        assert_eq!(
            peek(&mut k, pid, at + page * PAGE_SIZE, 30),
            hole_store(page)[..30]
        );
    }
    assert_eq!(device.reads_at_once() - reads, 0, "no read under the lock");
}

/// The image of `device` mounted afresh (nothing cached) by a new
/// kernel, over a new device; a process with hueco.bin (`size` bytes)
/// mapped shared read-only: the kernel, device, process and address.
fn hueco_mapped_afresh(device: &HeldReads, size: u64) -> (K, HeldReads, u32, u64) {
    let image = {
        let mut held = device.0.lock().unwrap();
        let image = held.image.as_mut().unwrap();
        let mut all = vec![0u8; image.sector_count() as usize * 512];
        image.read_sectors(0, &mut all).unwrap();
        all
    };
    let device = HeldReads::default();
    device.0.lock().unwrap().image = Some(MemDevice::new(image));
    let mut k = kernel();
    k.fs.mount_home(Box::new(device.clone())).unwrap();
    let pid = spawn(&mut k, None);
    assert!(k.fs.lookup("/home/usuario/hueco.bin").is_some());
    let path = put_str(&mut k, pid, SCRATCH, "/home/usuario/hueco.bin");
    let fd = sys(&mut k, pid, nr::OPEN, [path, 0, 0, 0, 0, 0]);
    let shared = mman::MAP_SHARED as u64;
    let read = mman::PROT_READ as u64;
    let at = sys(&mut k, pid, nr::MMAP, [0, size, read, shared, fd as u64, 0]);
    assert!(at > 0);
    (k, device, pid, at as u64)
}

/// A read fault of `pid` at `address` stepped to its end, the device's
/// reads let finish at each wait: how many waits it took.
fn read_fault_settled(k: &mut K, device: &HeldReads, pid: u32, address: u64) -> usize {
    let mut waits = 0;
    loop {
        match k.resolve_fault_step(pid, pid, address, Access::Read) {
            None => {
                waits += 1;
                assert!(waits < 12, "a bounded number of waits");
                device.finish(false);
                k.disk_step();
            }
            Some(result) => {
                assert_eq!(result, Ok(()));
                return waits;
            }
        }
    }
}

/// Pages of a 1 MiB hueco.bin that hold a store each, a hole between
/// two: 8 runs to write, 8 pieces to read in one read-ahead window.
const STRIPED_PAGES: [u64; 8] = [0, 2, 4, 6, 8, 10, 12, 14];

/// A `sys_munmap` whose runs outnumber what the device's queue takes
/// (room for 2 requests, 8 runs): the writes beyond are kept by the
/// volume's device and sent as the ones before finish, all without the
/// lock, never more than the queue takes in flight. A fault's read-ahead
/// window of the file in 7 pieces, on a volume mounted afresh, the queue
/// bound alike, is read the same way. Before, what the queue had no room for
/// was written, or read, at once under the lock.
#[test]
fn requests_beyond_the_device_queue_wait_without_the_lock_for_room() {
    let (mut k, device, pid, at, _) = holes_stored_in(1 << 20, &STRIPED_PAGES);
    device.hold_writes();
    device.bound_queue(2);
    let (reads, writes) = (device.reads_at_once(), device.writes_at_once());
    let call = scheduler_call_of(&mut k, pid, nr::NEO_MUNMAP, [at, 1 << 20, 0, 0, 0, 0]);
    assert_eq!(call, SchedulerCall::NeoMunmap);
    let (result, _) = settle_with_reads(&device, &mut k, false, |k| k.unmap_step(pid));
    assert_eq!(result, Ok(()));
    assert_eq!(device.most_in_flight(), 2, "the queue full, never beyond");
    assert_eq!(device.reads_at_once() - reads, 0, "no read under the lock");
    assert_eq!(
        device.writes_at_once() - writes,
        0,
        "no write under the lock"
    );
    assert!(holes_on_disk_at(&device, &STRIPED_PAGES));
    assert_image_clean(&device);

    let (mut k, device, pid, at) = hueco_mapped_afresh(&device, 1 << 20);
    device.bound_queue(2);
    let reads = device.reads_at_once();
    read_fault_settled(&mut k, &device, pid, at);
    // A sequential miss: the read-ahead window, 7 pieces among holes.
    let waits = read_fault_settled(&mut k, &device, pid, at + PAGE_SIZE);
    assert!(waits >= 4, "7 pieces, 2 at a time: {waits} waits");
    assert_eq!(device.most_in_flight(), 2);
    for page in STRIPED_PAGES {
        let address = at + page * PAGE_SIZE;
        let stored = hole_store(page);
        assert_eq!(peek(&mut k, pid, address, stored.len()), stored);
        assert_eq!(
            peek(&mut k, pid, address + PAGE_SIZE, 8),
            [0; 8],
            "the hole after it"
        );
    }
    assert_eq!(device.reads_at_once() - reads, 0, "no read under the lock");
}

/// A write-back filling holes under many indirect blocks (40 pages 4 MiB
/// apart: 40 indirect blocks to allocate, in 3 batches) writes the
/// metadata its batches left dirty between two batches once more than
/// half the volume's metadata cache is dirty (after the data of those
/// batches): no block finds the cache full, so nothing is written under
/// the lock (without the midway writes the second batch's placing wrote
/// about 10 at once).
#[test]
fn a_write_back_filling_holes_under_many_indirect_blocks_writes_its_metadata_midway() {
    let pages: Vec<u64> = (0..40).map(|i| i * 1024 + 512).collect();
    let (mut k, device, pid, at, _) = holes_stored_in(160 << 20, &pages);
    device.hold_writes();
    let (reads, writes) = (device.reads_at_once(), device.writes_at_once());
    let call = scheduler_call_of(&mut k, pid, nr::NEO_MUNMAP, [at, 160 << 20, 0, 0, 0, 0]);
    assert_eq!(call, SchedulerCall::NeoMunmap);
    let mut most_dirty = 0;
    let mut write_rounds = 0;
    let mut ended = None;
    for _ in 0..40 {
        ended = k.unmap_step(pid);
        if ended.is_some() {
            break;
        }
        most_dirty = most_dirty.max(k.fs.disk.dirty_metadata_blocks());
        write_rounds += usize::from(device.writes_in_flight() > 0);
        device.finish(false);
        device.finish_writes(false);
        k.disk_step();
    }
    assert_eq!(ended, Some(Ok(())), "the munmap ended");
    assert!(most_dirty <= 32, "at most {most_dirty} dirty");
    assert!(
        write_rounds >= 5,
        "3 batches, a midway and a closing write: {write_rounds}"
    );
    assert_eq!(device.reads_at_once() - reads, 0, "no read under the lock");
    assert_eq!(
        device.writes_at_once() - writes,
        0,
        "no write under the lock"
    );
    assert!(holes_on_disk_at(&device, &pages));
    assert_image_clean(&device);
}

/// An `fsync` of a file extended by `write` (its stored length grown at
/// the write-back, its new blocks allocated) sends nothing under the lock:
/// the grown length's inode change stays dirty with the placing's, written
/// after the data, then the flush. The image is clean and holds the bytes
/// and the length.
#[test]
fn an_fsync_of_a_file_extended_by_write_sends_nothing_under_the_lock() {
    let (mut k, device, pid) = volume();
    let fd = written_by_write(&mut k, pid);
    let buf = SCRATCH + PAGE_SIZE;
    // Past the end of the 4-page file: pages 4 and 5, in part.
    poke(&mut k, pid, buf, b"appended past the old end");
    assert_eq!(sys(&mut k, pid, nr::WRITE, [fd, buf, 6000, 0, 0, 0]), 6000);
    device.hold_writes();
    let (reads, writes) = (device.reads_at_once(), device.writes_at_once());
    assert_eq!(begin_fsync(&mut k, pid, fd), SchedulerCall::WriteBack);
    let (result, _) = settle_with_reads(&device, &mut k, false, |k| k.writeback_step(pid));
    assert_eq!(result, Ok(()));
    assert_eq!(device.reads_at_once() - reads, 0, "no read under the lock");
    assert_eq!(
        device.writes_at_once() - writes,
        0,
        "no write under the lock"
    );
    assert!(device.image_holds(b"appended past the old end"));
    let mut disk = device.remounted();
    let ino = disk.lookup_path("usuario/datos.bin").unwrap();
    assert_eq!(disk.stat(ino).unwrap().size, 4 * PAGE_SIZE + 6000);
    assert_image_clean(&device);
}

/// The flusher's write-back of a file whose object changes between two
/// batches (the file truncated, closed, its object gone, opened and
/// written again while the first batch is in flight) syncs the batches
/// before the change without the lock (metadata writes, then the flush),
/// then goes on: nothing under the lock from the change on; the image
/// holds the new bytes and is clean.
#[test]
fn a_write_back_whose_object_changes_between_batches_syncs_without_the_lock() {
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, _) = volume();
    let pid = linux_namer(&mut k);
    put_str(&mut k, pid, SCRATCH, "/home/usuario/mover.bin");
    let buf = SCRATCH + PAGE_SIZE;
    // 40 runs of a page (every other page): 3 batches.
    let write_pages = |k: &mut K, fd: u64, text: &str| {
        for i in 0..40u64 {
            let bytes = std::format!("{text} {i:02}");
            poke(k, pid, buf, bytes.as_bytes());
            let at = 2 * i * PAGE_SIZE;
            let wrote = lsys(k, pid, lnr::PWRITE64, [fd, buf, PAGE_SIZE, at, 0, 0]);
            assert_eq!(wrote, PAGE as i64);
        }
    };
    let create = (neoos_abi::open::O_CREAT | 2) as u64;
    let fd = lsys(&mut k, pid, lnr::OPEN, [SCRATCH, create, 0o644, 0, 0, 0]) as u64;
    write_pages(&mut k, fd, "old object's page");
    let Some(crate::fs::Node::File(file)) = k.fs.lookup("/home/usuario/mover.bin") else {
        panic!("the file");
    };
    device.hold_writes();
    let mut steps = 0;
    while device.writes_in_flight() == 0 {
        assert_eq!(k.flusher_step(file), Ok(false));
        device.finish(false);
        k.disk_step();
        steps += 1;
        assert!(steps < 8, "the first batch starts");
    }
    // The object goes while its first batch is in flight: truncated,
    // closed; a new one is opened and written.
    let trunc = (neoos_abi::open::O_TRUNC | 2) as u64;
    let other = lsys(&mut k, pid, lnr::OPEN, [SCRATCH, trunc, 0, 0, 0, 0]) as u64;
    assert_eq!(lsys(&mut k, pid, lnr::CLOSE, [other, 0, 0, 0, 0, 0]), 0);
    assert_eq!(lsys(&mut k, pid, lnr::CLOSE, [fd, 0, 0, 0, 0, 0]), 0);
    device.finish_writes(false);
    k.disk_step();
    let fd = lsys(&mut k, pid, lnr::OPEN, [SCRATCH, 2, 0, 0, 0, 0]) as u64;
    write_pages(&mut k, fd, "new object's page");
    let (reads, writes) = (device.reads_at_once(), device.writes_at_once());
    let mut flushes = 0;
    let mut done = false;
    for _ in 0..40 {
        if k.flusher_step(file) == Ok(true) {
            done = true;
            break;
        }
        flushes += device.flushes_in_flight();
        device.finish(false);
        device.finish_writes(false);
        k.disk_step();
    }
    assert!(done, "the write-back ended");
    assert!(
        flushes >= 2,
        "a sync between the objects, and the closing one: {flushes}"
    );
    assert_eq!(device.reads_at_once() - reads, 0, "no read under the lock");
    assert_eq!(
        device.writes_at_once() - writes,
        0,
        "no write under the lock"
    );
    // The pages past the first batch's are on the disk (those before it
    // are the next write-back's).
    assert!(device.image_holds(b"new object's page 39"));
    assert_image_clean(&device);
}

/// The size of `usuario/datos.bin` on the disk (mounted afresh).
fn size_on_disk(device: &HeldReads) -> u64 {
    let mut disk = device.remounted();
    let ino = disk.lookup_path("usuario/datos.bin").unwrap();
    disk.stat(ino).unwrap().size
}

/// A Linux `open` with `O_TRUNC` makes no write under the lock: the
/// truncation's blocks (inode, bitmaps) are written without it, then the
/// flush, and only then its descriptor comes. When they fail it gives
/// `EIO` and its descriptor is closed again (the file is truncated).
#[test]
fn a_linux_truncating_open_writes_without_the_lock_and_a_failed_write_takes_its_descriptor_back() {
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, _) = volume();
    let pid = linux_namer(&mut k);
    device.hold_writes();
    let before = device.writes_at_once();
    let trunc = (neoos_abi::open::O_TRUNC | 2) as u64;
    let call = made(&mut k, pid, lnr::OPEN, [SCRATCH, trunc, 0, 0, 0, 0]);
    let Err((SchedulerCall::FlushThen { result: Ok(fd) }, _)) = call else {
        panic!("made, its writes to wait for: {call:?}");
    };
    assert!(device.writes_in_flight() >= 2, "inode, bitmap");
    assert_eq!(
        device.writes_at_once() - before,
        0,
        "no write under the lock"
    );
    assert_eq!(size_on_disk(&device), 4 * PAGE_SIZE, "not on the disk yet");
    let result = settle(&device, &mut k, false, |k| k.flush_step(pid));
    assert_eq!(result, Ok(()));
    assert!(k.descriptor(pid, fd).is_ok(), "its descriptor kept");
    assert_eq!(size_on_disk(&device), 0, "truncated on the disk");
    // A second truncating open whose writes fail: written into the file
    // first, so that the truncation has blocks to free.
    lsys(&mut k, pid, lnr::WRITE, [fd as u64, SCRATCH, 16, 0, 0, 0]);
    let call = k.system_call(pid, lnr::FSYNC, [fd as u64, 0, 0, 0, 0, 0]);
    assert!(matches!(call, Err((SchedulerCall::WriteBack, _))));
    let settled = settle(&device, &mut k, false, |k| k.writeback_step(pid));
    assert_eq!(settled, Ok(()));
    assert_eq!(size_on_disk(&device), 16);
    // (The write-back's placing of the new block wrote under the lock.)
    let before = device.writes_at_once();
    let call = made(&mut k, pid, lnr::OPEN, [SCRATCH, trunc, 0, 0, 0, 0]);
    let Err((SchedulerCall::FlushThen { result: Ok(second) }, _)) = call else {
        panic!("made, its writes to wait for: {call:?}");
    };
    device.finish_writes(true);
    k.disk_step();
    assert_eq!(k.flush_step(pid), Some(Err(neoos_mm::Errno::Io)));
    assert!(
        k.descriptor(pid, second).is_err(),
        "its descriptor taken back"
    );
    assert!(k.descriptor(pid, fd).is_ok(), "the first one kept");
    let file = datos(&k);
    assert_eq!(k.file_io().size(file), 0, "the file truncated");
    assert_eq!(device.writes_at_once() - before, 0);
    k.release_kept_now();
    assert_eq!(size_on_disk(&device), 0, "its blocks written later");
}

/// NeoOS `sys_open` with `O_CREAT` (a new file) and with `O_TRUNC` makes
/// no write under the lock: its result waits for its writes and flush.
/// A failed write gives `E_IO` and takes the descriptor back.
#[test]
fn a_neo_creating_or_truncating_open_writes_without_the_lock() {
    let (mut k, device, pid) = volume();
    put_str(&mut k, pid, SCRATCH, "/home/usuario/datos.bin");
    put_str(&mut k, pid, SCRATCH + 256, "/home/usuario/nuevo-neo");
    device.hold_writes();
    let before = device.writes_at_once();
    let creat = (neoos_abi::open::O_CREAT | neoos_abi::open::O_RDWR) as u64;
    let call = made(&mut k, pid, nr::OPEN, [SCRATCH + 256, creat, 0, 0, 0, 0]);
    let Err((SchedulerCall::FlushThen { result: Ok(fd) }, _)) = call else {
        panic!("made, its writes to wait for: {call:?}");
    };
    assert!(device.writes_in_flight() >= 2, "directory block, inode");
    assert!(device.remounted().lookup_path("usuario/nuevo-neo").is_err());
    let result = settle(&device, &mut k, false, |k| k.flush_step(pid));
    assert_eq!(result, Ok(()));
    assert!(k.descriptor(pid, fd).is_ok());
    assert!(device.remounted().lookup_path("usuario/nuevo-neo").is_ok());

    let trunc = (neoos_abi::open::O_TRUNC | neoos_abi::open::O_RDWR) as u64;
    let call = made(&mut k, pid, nr::OPEN, [SCRATCH, trunc, 0, 0, 0, 0]);
    let Err((SchedulerCall::FlushThen { result: Ok(fd) }, _)) = call else {
        panic!("made, its writes to wait for: {call:?}");
    };
    assert_eq!(size_on_disk(&device), 4 * PAGE_SIZE);
    device.finish_writes(true);
    k.disk_step();
    assert_eq!(k.flush_step(pid), Some(Err(neoos_mm::Errno::Io)));
    assert!(k.descriptor(pid, fd).is_err(), "its descriptor taken back");
    let file = datos(&k);
    assert_eq!(k.file_io().size(file), 0, "the file truncated");
    // What the failed writes left dirty goes with the next call's writes.
    let call = made(&mut k, pid, nr::OPEN, [SCRATCH, trunc, 0, 0, 0, 0]);
    assert!(matches!(call, Err((SchedulerCall::FlushThen { .. }, _))));
    let result = settle(&device, &mut k, false, |k| k.flush_step(pid));
    assert_eq!(result, Ok(()));
    assert_eq!(size_on_disk(&device), 0);
    assert_eq!(device.writes_at_once() - before, 0, "none under the lock");
}

/// The last close of a file unlinked while open frees its inode and
/// blocks with no read or write under the lock: what freeing them reads
/// is read first, the caller asleep; the close's result waits for their
/// writes and the flush.
#[test]
fn a_last_close_that_reaps_an_orphan_writes_without_the_lock() {
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, _) = volume();
    let pid = linux_namer(&mut k);
    let fd = lsys(&mut k, pid, lnr::OPEN, [SCRATCH, 0, 0, 0, 0, 0]);
    assert!(fd >= 0);
    assert_eq!(lsys(&mut k, pid, lnr::UNLINK, [SCRATCH, 0, 0, 0, 0, 0]), 0);
    let free = device.remounted().free_blocks();
    device.hold_writes();
    let before = device.writes_at_once();
    let reads = device.reads_at_once();
    let first = k.system_call(pid, lnr::CLOSE, [fd as u64, 0, 0, 0, 0, 0]);
    assert!(
        matches!(first, Err((SchedulerCall::AwaitMetadata, _))),
        "reads what freeing it reads first: {first:?}"
    );
    assert!(k.descriptor(pid, fd).is_ok(), "not closed while it waits");
    let call = made(&mut k, pid, lnr::CLOSE, [fd as u64, 0, 0, 0, 0, 0]);
    assert_eq!(device.reads_at_once(), reads, "no read under the lock");
    assert!(
        matches!(call, Err((SchedulerCall::FlushThen { result: Ok(0) }, _))),
        "closed, the orphan's writes to wait for: {call:?}"
    );
    assert_eq!(
        device.writes_at_once() - before,
        0,
        "no write under the lock"
    );
    assert!(device.writes_in_flight() >= 2, "inode, bitmaps");
    assert!(
        k.descriptor(pid, fd).is_err(),
        "the descriptor gone at once"
    );
    assert_eq!(
        device.remounted().free_blocks(),
        free,
        "not freed on disk yet"
    );
    let result = settle(&device, &mut k, false, |k| k.flush_step(pid));
    assert_eq!(result, Ok(()));
    assert_eq!(
        device.remounted().free_blocks(),
        free + 4,
        "its 4 blocks freed on the disk"
    );
}

/// A Linux `truncate` to a length inside a block zeroes that block's tail
/// with no write under the lock (a file's data too): the zeros reach the
/// disk before its result, and a later extension reads them back.
#[test]
fn a_truncates_zeroed_tail_is_written_without_the_lock() {
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, _) = volume();
    let pid = linux_namer(&mut k);
    device.hold_writes();
    let before = device.writes_at_once();
    let cut = PAGE as u64 + 100;
    let call = made(&mut k, pid, lnr::TRUNCATE, [SCRATCH, cut, 0, 0, 0, 0]);
    assert!(
        matches!(call, Err((SchedulerCall::FlushThen { result: Ok(0) }, _))),
        "made, its writes to wait for: {call:?}"
    );
    assert_eq!(
        device.writes_at_once() - before,
        0,
        "no write under the lock"
    );
    let result = settle(&device, &mut k, false, |k| k.flush_step(pid));
    assert_eq!(result, Ok(()));
    assert_eq!(size_on_disk(&device), cut);
    let mut disk = device.remounted();
    let ino = disk.lookup_path("usuario/datos.bin").unwrap();
    let mut page = vec![0u8; PAGE];
    disk.read_pages(ino, 1, &mut page).unwrap();
    let expected: Vec<u8> = (PAGE..PAGE + 100).map(byte).collect();
    assert_eq!(&page[..100], &expected[..]);
    // Extended again, the bytes past the cut read as zeros.
    let call = made(
        &mut k,
        pid,
        lnr::TRUNCATE,
        [SCRATCH, 2 * PAGE as u64, 0, 0, 0, 0],
    );
    assert!(matches!(call, Err((SchedulerCall::FlushThen { .. }, _))));
    assert_eq!(
        settle(&device, &mut k, false, |k| k.flush_step(pid)),
        Ok(())
    );
    let mut disk = device.remounted();
    disk.read_pages(ino, 1, &mut page).unwrap();
    assert!(
        page[100..].iter().all(|&b| b == 0),
        "the tail zeroed on the disk"
    );
    assert_eq!(device.writes_at_once() - before, 0);
}

/// Makes Linux call `number` of `pid` until it is not sent to wait for
/// metadata reads, then settles its writes: its result, how many times
/// it waited, and the device reads made under the lock meanwhile.
fn linux_call_reading_first(
    k: &mut K,
    device: &HeldReads,
    pid: u32,
    number: usize,
    args: [u64; 6],
) -> (Result<i64, neoos_mm::Errno>, usize, u64) {
    let before = device.reads_at_once();
    let (made, waits) = after_metadata_reads(k, device, pid, number, args, false);
    let result = match made {
        Ok(value) => Ok(value),
        Err((SchedulerCall::FlushThen { result }, _)) => {
            let synced = settle(device, k, false, |k| k.flush_step(pid));
            result.and_then(|v| synced.map(|()| v))
        }
        Err((call, _)) => panic!("call {number}: {call:?}"),
    };
    (result, waits, device.reads_at_once() - before)
}

/// The reads a namespace call's change makes beyond its paths' walk (the
/// bitmap and inode-table block an allocation picks, a truncate's last
/// block and bitmap, those freeing an unlinked file) are made before it,
/// with the caller asleep: the call is made again after and reads nothing
/// under the lock.
#[test]
fn a_namespace_calls_change_reads_its_blocks_without_the_lock_first() {
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, _) = volume();
    let pid = linux_namer(&mut k);
    device.hold_writes();
    put_str(&mut k, pid, SCRATCH + 256, "/home/usuario/nuevo-1");
    put_str(&mut k, pid, SCRATCH + 512, "/home/usuario/carpeta");
    let cut = PAGE as u64 + 100;
    let truncate = [SCRATCH, cut, 0, 0, 0, 0];
    let (result, waits, locked) =
        linux_call_reading_first(&mut k, &device, pid, lnr::TRUNCATE, truncate);
    assert_eq!(result, Ok(0));
    assert!(waits >= 1, "the truncate waited for its last block");
    assert_eq!(locked, 0, "the truncate read nothing under the lock");
    assert_eq!(size_on_disk(&device), cut);

    let creat = (neoos_abi::open::O_CREAT | 2) as u64;
    let open = [SCRATCH + 256, creat, 0o644, 0, 0, 0];
    let (result, waits, locked) = linux_call_reading_first(&mut k, &device, pid, lnr::OPEN, open);
    assert!(result.is_ok_and(|fd| fd >= 0));
    assert!(waits >= 1, "the open waited for the inode bitmap");
    assert_eq!(locked, 0, "the creating open read nothing under the lock");

    let mkdir = [SCRATCH + 512, 0o755, 0, 0, 0, 0];
    let (result, _, locked) = linux_call_reading_first(&mut k, &device, pid, lnr::MKDIR, mkdir);
    assert_eq!(result, Ok(0));
    assert_eq!(locked, 0, "mkdir read nothing under the lock");

    // Another process's cache: cold again for the unlink's release.
    let (mut k, device, _) = volume();
    let pid = linux_namer(&mut k);
    device.hold_writes();
    let free = device.remounted().free_blocks();
    let unlink = [SCRATCH, 0, 0, 0, 0, 0];
    let (result, waits, locked) =
        linux_call_reading_first(&mut k, &device, pid, lnr::UNLINK, unlink);
    assert_eq!(result, Ok(0));
    assert!(waits >= 1, "the unlink waited for the bitmaps");
    assert_eq!(locked, 0, "the unlink read nothing under the lock");
    assert_eq!(
        device.remounted().free_blocks(),
        free + 4,
        "freed on the disk"
    );
}

/// A call that defers its writes finds the volume's cache with more dirty
/// blocks than [`crate::metadata_reads::MOST_DIRTY_BEFORE_A_CALL`] (writes
/// that failed): they are written first, the caller asleep, and the call
/// is made after with none of its blocks written under the lock for want
/// of room. With the disk failing them, it waits a bounded number of times.
#[test]
fn a_call_finding_the_cache_full_of_dirty_blocks_waits_for_their_writes_first() {
    use crate::metadata_reads::{MOST_DIRTY_BEFORE_A_CALL, MOST_ROUNDS};
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, _) = volume();
    let pid = linux_namer(&mut k);
    device.hold_writes();
    let dirty = |k: &K| k.fs.disk.dirty_metadata_blocks();
    let mut n = 0;
    // New directories whose writes fail: a new dirty block each.
    while dirty(&k) <= MOST_DIRTY_BEFORE_A_CALL {
        let path = std::format!("/home/usuario/carpeta-{n:02}");
        put_str(&mut k, pid, SCRATCH + 256, &path);
        let call = made(&mut k, pid, lnr::MKDIR, [SCRATCH + 256, 0o755, 0, 0, 0, 0]);
        assert!(matches!(call, Err((SchedulerCall::FlushThen { .. }, _))));
        let result = settle(&device, &mut k, true, |k| k.flush_step(pid));
        assert_eq!(result, Err(neoos_mm::Errno::Io));
        n += 1;
        assert!(n < 32, "dirty blocks: {}", dirty(&k));
    }
    let before = device.writes_at_once();
    put_str(&mut k, pid, SCRATCH + 256, "/home/usuario/la-ultima");
    let mkdir = [SCRATCH + 256, 0o755, 0, 0, 0, 0];
    let call = made(&mut k, pid, lnr::MKDIR, mkdir);
    assert!(
        matches!(call, Err((SchedulerCall::AwaitMetadata, _))),
        "waits for the dirty blocks first: {call:?}"
    );
    assert!(device.writes_in_flight() > 0, "their writes started");
    assert!(
        k.fs.lookup("/home/usuario/la-ultima").is_none(),
        "not made yet"
    );
    device.finish_writes(false);
    k.disk_step();
    let call = made(&mut k, pid, lnr::MKDIR, mkdir);
    assert!(
        matches!(call, Err((SchedulerCall::FlushThen { result: Ok(0) }, _))),
        "made: {call:?}"
    );
    assert_eq!(
        settle(&device, &mut k, false, |k| k.flush_step(pid)),
        Ok(())
    );
    assert_eq!(device.writes_at_once(), before, "nothing written at once");
    assert_eq!(dirty(&k), 0);
    let mut disk = device.remounted();
    assert!(disk.lookup_path("usuario/la-ultima").is_ok());
    assert!(disk.lookup_path("usuario/carpeta-00").is_ok());

    // A disk that fails them: the call waits at most MOST_ROUNDS times.
    while dirty(&k) <= MOST_DIRTY_BEFORE_A_CALL {
        let path = std::format!("/home/usuario/otra-{n:02}");
        put_str(&mut k, pid, SCRATCH + 256, &path);
        let call = made(&mut k, pid, lnr::MKDIR, [SCRATCH + 256, 0o755, 0, 0, 0, 0]);
        assert!(matches!(call, Err((SchedulerCall::FlushThen { .. }, _))));
        assert_eq!(
            settle(&device, &mut k, true, |k| k.flush_step(pid)),
            Err(neoos_mm::Errno::Io)
        );
        n += 1;
    }
    put_str(&mut k, pid, SCRATCH + 256, "/home/usuario/tras-fallos");
    let mut waits = 0;
    let call = loop {
        match made(&mut k, pid, lnr::MKDIR, mkdir) {
            Err((SchedulerCall::AwaitMetadata, _)) => {
                device.finish_writes(true);
                k.disk_step();
                waits += 1;
                assert!(waits <= MOST_ROUNDS as usize, "bounded");
            }
            other => break other,
        }
    };
    assert!(waits >= 1);
    assert!(
        matches!(call, Err((SchedulerCall::FlushThen { .. }, _))),
        "{call:?}"
    );
    assert_eq!(
        settle(&device, &mut k, false, |k| k.flush_step(pid)),
        Ok(())
    );
    assert!(device
        .remounted()
        .lookup_path("usuario/tras-fallos")
        .is_ok());
}

/// A `rename` over a file nothing holds frees it: what that reads (its
/// block bitmap) is read first, asleep, and the rename reads nothing under
/// the lock.
#[test]
fn a_rename_over_a_file_reads_what_freeing_it_reads_first() {
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, _) = volume();
    let pid = linux_namer(&mut k);
    put_str(&mut k, pid, SCRATCH + 256, "/home/usuario/nuevo");
    let creat = (neoos_abi::open::O_CREAT | 2) as u64;
    let fd = lsys(
        &mut k,
        pid,
        lnr::OPEN,
        [SCRATCH + 256, creat, 0o644, 0, 0, 0],
    );
    assert!(fd >= 0);
    assert_eq!(lsys(&mut k, pid, lnr::CLOSE, [fd as u64, 0, 0, 0, 0, 0]), 0);
    let free = device.remounted().free_blocks();
    device.hold_writes();
    let rename = [SCRATCH + 256, SCRATCH, 0, 0, 0, 0];
    let (result, waits, locked) =
        linux_call_reading_first(&mut k, &device, pid, lnr::RENAME, rename);
    assert_eq!(result, Ok(0));
    assert!(waits >= 1, "the rename waited for the block bitmap");
    assert_eq!(locked, 0, "the rename read nothing under the lock");
    let mut disk = device.remounted();
    assert_eq!(disk.free_blocks(), free + 4, "datos.bin's blocks freed");
    assert!(disk.lookup_path("usuario/nuevo").is_err());
}

/// The last close of an orphan when the cache holds many dirty blocks is
/// not made twice: the close is done when its reaping defers its writes,
/// so no wait for room (which makes the call again) comes after it.
#[test]
fn a_close_reaping_an_orphan_is_never_made_again_for_room() {
    use crate::metadata_reads::MOST_DIRTY_BEFORE_A_CALL;
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, _) = volume();
    let pid = linux_namer(&mut k);
    let fd = lsys(&mut k, pid, lnr::OPEN, [SCRATCH, 0, 0, 0, 0, 0]);
    assert!(fd >= 0);
    assert_eq!(lsys(&mut k, pid, lnr::UNLINK, [SCRATCH, 0, 0, 0, 0, 0]), 0);
    device.hold_writes();
    let mut n = 0;
    while k.fs.disk.dirty_metadata_blocks() <= MOST_DIRTY_BEFORE_A_CALL {
        let path = std::format!("/home/usuario/carpeta-{n:02}");
        put_str(&mut k, pid, SCRATCH + 256, &path);
        let call = made(&mut k, pid, lnr::MKDIR, [SCRATCH + 256, 0o755, 0, 0, 0, 0]);
        assert!(matches!(call, Err((SchedulerCall::FlushThen { .. }, _))));
        let result = settle(&device, &mut k, true, |k| k.flush_step(pid));
        assert_eq!(result, Err(neoos_mm::Errno::Io));
        n += 1;
        assert!(n < 32);
    }
    let call = made(&mut k, pid, lnr::CLOSE, [fd as u64, 0, 0, 0, 0, 0]);
    assert!(
        matches!(call, Err((SchedulerCall::FlushThen { result: Ok(0) }, _))),
        "closed, its writes to wait for: {call:?}"
    );
    assert_eq!(
        settle(&device, &mut k, false, |k| k.flush_step(pid)),
        Ok(())
    );
    assert_eq!(k.fs.orphan_count(), 0, "the orphan freed by the one close");
}

/// `/tmp/salida` opened by `pid` (`rw`: read-write, made if missing):
/// the descriptor.
fn open_tmp(k: &mut K, pid: u32, rw: bool) -> u64 {
    let path = put_str(k, pid, SCRATCH, "/tmp/salida");
    let mode = match rw {
        true => (neoos_abi::open::O_RDWR | neoos_abi::open::O_CREAT) as u64,
        false => 0,
    };
    let fd = sys(k, pid, nr::OPEN, [path, mode, 0, 0, 0, 0]);
    assert!(fd >= 0);
    fd as u64
}

/// The position of NeoOS descriptor `fd` of `pid`.
fn neo_position(k: &K, pid: u32, fd: u64) -> u64 {
    match k.descriptor(pid, fd as i64) {
        Ok(crate::files::Descriptor::File(f)) => f.position,
        other => panic!("{other:?}"),
    }
}

/// `/tmp/salida`'s first `len` bytes, read through a new descriptor.
fn tmp_bytes(k: &mut K, pid: u32, len: usize) -> Vec<u8> {
    let fd = open_tmp(k, pid, false);
    let buf = SCRATCH + 6 * PAGE_SIZE;
    let n = sys(k, pid, nr::READ, [fd, buf, len as u64 + 10, 0, 0, 0]);
    assert_eq!(n, len as i64, "the file's length");
    assert_eq!(sys(k, pid, nr::CLOSE, [fd, 0, 0, 0, 0, 0]), 0);
    peek(k, pid, buf, len)
}

/// A `write` whose buffer lies in an uncached page of a shared mapping of
/// a volume file (to a `/tmp` file): the page is read without the lock,
/// the call made again once it is in, its bytes moved once.
#[test]
fn a_write_from_an_uncached_mapped_volume_page_waits_without_the_lock_and_writes_once() {
    let (mut k, device, pid, _, at) = mounted();
    let out = open_tmp(&mut k, pid, true);
    let before = device.reads_at_once();
    let args = [out, at + PAGE_SIZE + 8, 100, 0, 0, 0];
    let first = k.system_call(pid, nr::WRITE, args);
    assert!(
        matches!(first, Err((SchedulerCall::AwaitUserRead, _))),
        "waits for the buffer's page: {first:?}"
    );
    assert_eq!(device.in_flight(), 1, "its read started");
    assert_eq!(device.reads_at_once(), before, "no read under the lock");
    assert_eq!(neo_position(&k, pid, out), 0, "nothing written");
    device.finish(false);
    k.disk_step();
    assert_eq!(k.user_page_read_result(pid), None, "made again");
    assert_eq!(k.system_call(pid, nr::WRITE, args), Ok(100));
    assert_eq!(device.reads_at_once(), before, "no read under the lock");
    assert_eq!(neo_position(&k, pid, out), 100, "written once");
    let want: Vec<u8> = (PAGE + 8..PAGE + 108).map(byte).collect();
    assert_eq!(tmp_bytes(&mut k, pid, 100), want);
    assert_eq!(k.writebacks.user_pages.waits(), 1);
}

/// The buffer's page read fails: the call gives `E_IO` with nothing
/// written (as the read under the lock gave); made again, it reads again.
#[test]
fn a_write_whose_buffer_page_read_fails_gives_e_io_with_nothing_written() {
    let (mut k, device, pid, _, at) = mounted();
    let out = open_tmp(&mut k, pid, true);
    let args = [out, at + 2 * PAGE_SIZE, 50, 0, 0, 0];
    let first = k.system_call(pid, nr::WRITE, args);
    assert!(matches!(first, Err((SchedulerCall::AwaitUserRead, _))));
    device.finish(true);
    k.disk_step();
    assert_eq!(k.user_page_read_result(pid), Some(neoos_mm::Errno::Io));
    assert_eq!(neo_position(&k, pid, out), 0, "nothing written");
    let again = k.system_call(pid, nr::WRITE, args);
    assert!(matches!(again, Err((SchedulerCall::AwaitUserRead, _))));
    device.finish(false);
    k.disk_step();
    assert_eq!(k.user_page_read_result(pid), None);
    assert_eq!(k.system_call(pid, nr::WRITE, args), Ok(50));
    let want: Vec<u8> = (2 * PAGE..2 * PAGE + 50).map(byte).collect();
    assert_eq!(tmp_bytes(&mut k, pid, 50), want);
}

/// A `write` of a volume file from an uncached page of a mapping of it:
/// its step waits for the buffer's page, then writes once.
#[test]
fn a_volume_write_from_an_uncached_mapped_page_waits_in_its_step() {
    let (mut k, device, pid, _, at) = mounted();
    let fd = open_rw(&mut k, pid);
    let before = device.reads_at_once();
    let buf = at + 2 * PAGE_SIZE;
    assert_eq!(begin_write(&mut k, pid, fd, buf, PAGE), None, "waits");
    assert_eq!(device.in_flight(), 1);
    assert_eq!(neo_position(&k, pid, fd), 0);
    device.finish(false);
    k.disk_step();
    let step = k.file_write_step(pid, pid, fd as i64, UserPtr(buf), PAGE as i64, None);
    assert_eq!(step, Some(Ok(PAGE as i64)));
    assert_eq!(device.reads_at_once(), before, "no read under the lock");
    assert_eq!(neo_position(&k, pid, fd), PAGE as u64);
    let want: Vec<u8> = (2 * PAGE..3 * PAGE).map(byte).collect();
    assert_eq!(file_bytes(&mut k, pid, &device, 0, PAGE), want);
}

/// A `read` into an uncached page of a private writable mapping of a
/// volume file: the page is read without the lock, then the call made
/// again; the position moves once.
#[test]
fn a_read_into_an_uncached_private_mapped_page_waits_without_the_lock() {
    let (mut k, device, pid, fd, _) = mounted();
    let private = mman::MAP_PRIVATE as u64;
    let rw = (mman::PROT_READ | mman::PROT_WRITE) as u64;
    let at = sys(&mut k, pid, nr::MMAP, [0, PAGE_SIZE, rw, private, fd, 0]);
    assert!(at > 0);
    let at = at as u64;
    let out = open_tmp(&mut k, pid, true);
    let data: Vec<u8> = (0..50).map(|i| 200 - i).collect();
    poke(&mut k, pid, SCRATCH + PAGE_SIZE, &data);
    let wrote = sys(
        &mut k,
        pid,
        nr::WRITE,
        [out, SCRATCH + PAGE_SIZE, 50, 0, 0, 0],
    );
    assert_eq!(wrote, 50);
    let input = open_tmp(&mut k, pid, false);
    let before = device.reads_at_once();
    let args = [input, at + 16, 50, 0, 0, 0];
    let first = k.system_call(pid, nr::READ, args);
    assert!(
        matches!(first, Err((SchedulerCall::AwaitUserRead, _))),
        "waits for the buffer's page: {first:?}"
    );
    assert_eq!(device.in_flight(), 1);
    assert_eq!(neo_position(&k, pid, input), 0, "nothing read");
    device.finish(false);
    k.disk_step();
    assert_eq!(k.user_page_read_result(pid), None);
    assert_eq!(k.system_call(pid, nr::READ, args), Ok(50));
    assert_eq!(device.reads_at_once(), before, "no read under the lock");
    assert_eq!(neo_position(&k, pid, input), 50, "read once");
    let page = peek(&mut k, pid, at, 66);
    assert_eq!(&page[..16], &(0..16).map(byte).collect::<Vec<_>>()[..]);
    assert_eq!(&page[16..], &data[..]);
}

/// A thread killed while its call waits for its buffer's page leaves its
/// read to the cache, no record and every frame.
#[test]
fn a_call_killed_while_it_waits_for_its_buffer_page_leaves_nothing() {
    let (mut k, device, _) = volume();
    let free = k.platform.frame_counts().1;
    let (pid, fd) = open_linux_reader(&mut k);
    let shared = mman::MAP_SHARED as u64;
    let read = mman::PROT_READ as u64;
    let args = [0, PAGE_SIZE, read, shared, fd, 0];
    let at = lsys(&mut k, pid, neoos_abi::linux::nr::MMAP, args) as u64;
    let args = [1, at, 10, 0, 0, 0];
    let first = k.system_call(pid, neoos_abi::linux::nr::WRITE, args);
    assert!(matches!(first, Err((SchedulerCall::AwaitUserRead, _))));
    k.end(pid, neoos_abi::status::KILLED);
    device.finish(false);
    k.disk_step();
    assert_eq!(device.in_flight(), 0);
    assert_eq!(k.user_page_read_result(pid), None);
    assert_eq!(k.writebacks.user_pages.calls(), 0, "its record gone");
    assert_eq!(k.platform.frame_counts().1, free, "every frame back");
}

/// A forked child's `pwrite64` from an uncached page of a shared mapping
/// its parent made waits for the page's read as its parent's would.
#[test]
fn a_forked_childs_pwrite_from_an_uncached_mapped_page_waits_then_writes() {
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, _) = volume();
    let (parent, fd) = open_linux_reader(&mut k);
    let shared = mman::MAP_SHARED as u64;
    let read = mman::PROT_READ as u64;
    let at = lsys(
        &mut k,
        parent,
        lnr::MMAP,
        [0, 4 * PAGE_SIZE, read, shared, fd, 0],
    ) as u64;
    let frame = crate::test_platform::TestFrame { entry: 1, stack: 2 };
    let child = k.fork(parent, &frame).unwrap();
    let path = put_str(&mut k, child, SCRATCH, "/tmp/hijo");
    let creat = (neoos_abi::open::O_RDWR | neoos_abi::open::O_CREAT) as u64;
    let out = lsys(&mut k, child, lnr::OPEN, [path, creat, 0o644, 0, 0, 0]);
    assert!(out >= 0);
    let args = [out as u64, at + 3 * PAGE_SIZE, PAGE_SIZE, 0, 0, 0];
    let first = k.system_call(child, lnr::PWRITE64, args);
    assert!(
        matches!(first, Err((SchedulerCall::AwaitUserRead, _))),
        "{first:?}"
    );
    device.finish(false);
    k.disk_step();
    assert_eq!(k.user_page_read_result(child), None);
    assert_eq!(k.system_call(child, lnr::PWRITE64, args), Ok(PAGE as i64));
}

/// A `stat` whose path string lies in an uncached page of a mapping of a
/// volume file: the page is read without the lock before the call is
/// made; then it is made as before (its own result for the string, empty
/// here), reading nothing under the lock.
#[test]
fn a_path_in_an_uncached_mapped_page_is_read_without_the_lock_before_the_call() {
    let (mut k, device, pid, _, at) = mounted();
    let before = device.reads_at_once();
    let out = SCRATCH + 2 * PAGE_SIZE;
    let args = [at, out, 0, 0, 0, 0];
    let first = k.system_call(pid, nr::STAT, args);
    assert!(
        matches!(first, Err((SchedulerCall::AwaitUserRead, _))),
        "waits for the path's page: {first:?}"
    );
    assert_eq!(device.in_flight(), 1);
    device.finish(false);
    k.disk_step();
    assert_eq!(k.user_page_read_result(pid), None);
    let made = k.system_call(pid, nr::STAT, args);
    assert!(made.is_ok(), "made at once: {made:?}");
    assert_eq!(device.reads_at_once(), before, "no read under the lock");
}

/// A Linux `writev` whose buffers past the 16th write pages in part that
/// the cache lacks: those are read before it too, without the lock, a
/// queue's worth per round; then it is made reading nothing under it.
#[test]
fn a_linux_writev_reads_the_pages_of_its_buffers_past_the_16th_without_the_lock() {
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, _) = volume();
    let (pid, fd, iov_at, _) = writev_of_three(&mut k);
    // 16 buffers of 10 bytes in page 0 from 100, then one of 2 pages
    // (from 260: page 2 in part) and one of a page (page 3 in part).
    let mut lens = vec![10usize; 16];
    lens.extend([2 * PAGE, PAGE]);
    let total: usize = lens.iter().sum();
    let bytes: Vec<u8> = (0..total).map(|i| (i * 5 + 2) as u8).collect();
    let data = SCRATCH + 2 * PAGE_SIZE;
    poke(&mut k, pid, data, &bytes);
    let mut iov = Vec::new();
    let mut at = data;
    for &len in &lens {
        iov.extend_from_slice(&at.to_le_bytes());
        iov.extend_from_slice(&(len as u64).to_le_bytes());
        at += len as u64;
    }
    poke(&mut k, pid, iov_at, &iov);
    let before = device.reads_at_once();
    let args = [fd, iov_at, lens.len() as u64, 0, 0, 0];
    let (made, waits) = after_metadata_reads(&mut k, &device, pid, lnr::WRITEV, args, false);
    assert_eq!(made, Ok(total as i64));
    assert!(waits >= 1, "it waited for its reads");
    assert_eq!(device.reads_at_once(), before, "no read under the lock");
    assert_written_at_100(&mut k, pid, fd, &bytes);
}

/// A volume `read` whose buffer's second chunk lies in an uncached page of
/// a private mapping of a volume file: the window is copied up to that
/// chunk, the call goes on from there once the page is read without the
/// lock; every byte moved once, nothing read under the lock.
#[test]
fn a_volume_reads_later_chunk_into_an_uncached_mapped_page_waits_and_goes_on() {
    use neoos_abi::linux::nr as lnr;
    let (mut k, device, _) = volume();
    let (pid, datos_fd) = open_linux_reader(&mut k);
    let path = put_str(&mut k, pid, SCRATCH, "/home/usuario/grande.bin");
    let fd = lsys(&mut k, pid, lnr::OPEN, [path, 0, 0, 0, 0, 0]) as u64;
    let len = GRANDE_PAGES * PAGE;
    // The source cached first (one read of it, waited for).
    let warm = SCRATCH + PAGE_SIZE;
    let cached = |k: &mut K| k.file_read_step(pid, pid, fd as i64, UserPtr(warm), PAGE, Some(0));
    while cached(&mut k).is_none() {
        device.finish(false);
        k.disk_step();
    }
    let mut got = 0;
    while got < len {
        let step = k.file_read_step(
            pid,
            pid,
            fd as i64,
            UserPtr(warm),
            len - got,
            Some(got as u64),
        );
        match step {
            None => {
                device.finish(false);
                k.disk_step();
            }
            Some(Ok((n, _))) => got += n,
            other => panic!("{other:?}"),
        }
    }
    // 8 pages: 4 anonymous, then 4 of datos.bin, private, not cached.
    let anon = (mman::MAP_PRIVATE | mman::MAP_ANON) as u64;
    let rw = (mman::PROT_READ | mman::PROT_WRITE) as u64;
    let no_fd = u64::MAX;
    let buf = lsys(&mut k, pid, lnr::MMAP, [0, len as u64, rw, anon, no_fd, 0]) as u64;
    let fixed = (mman::MAP_PRIVATE | mman::MAP_FIXED) as u64;
    let file_half = buf + 4 * PAGE_SIZE;
    let args = [file_half, 4 * PAGE_SIZE, rw, fixed, datos_fd, 0];
    assert_eq!(lsys(&mut k, pid, lnr::MMAP, args) as u64, file_half);
    let before = device.reads_at_once();
    let step = |k: &mut K, done: usize| {
        let at = Some(done as u64);
        k.file_read_step(
            pid,
            pid,
            fd as i64,
            UserPtr(buf + done as u64),
            len - done,
            at,
        )
    };
    assert_eq!(
        step(&mut k, 0),
        Some(Ok((4 * PAGE, 4 * PAGE))),
        "the window ends before the chunk whose page is read"
    );
    assert_eq!(device.in_flight(), 1, "its read started");
    assert_eq!(step(&mut k, 4 * PAGE), None, "the rest waits for it");
    // Its page, then the read-ahead of the pages after it.
    let mut waits = 1;
    let rest = loop {
        device.finish(false);
        k.disk_step();
        match step(&mut k, 4 * PAGE) {
            None => waits += 1,
            Some(done) => break done,
        }
        assert!(waits <= 4);
    };
    assert_eq!(rest, Ok((4 * PAGE, 4 * PAGE)));
    assert_eq!(device.reads_at_once(), before, "no read under the lock");
    let want: Vec<u8> = (0..len).map(|i| byte(i) ^ 0x5a).collect();
    assert_eq!(peek(&mut k, pid, buf, len), want);
}

/// A write whose last page, covered in part, was read without the lock
/// keeps it while frames are low: the reclaim of its step and of its
/// chunk leave it, and the write reads nothing under the lock.
#[test]
fn a_write_keeps_the_page_it_read_first_from_its_own_reclaim() {
    let (mut k, device, pid) = volume();
    let fd = open_rw(&mut k, pid);
    let buf = SCRATCH + PAGE_SIZE;
    let count = 3 * PAGE + 200;
    put_bytes(&mut k, pid, buf, b"kept ", count);
    // From 0: pages 0-2 whole, page 3 in part (read first).
    assert_eq!(begin_write(&mut k, pid, fd, buf, count), None);
    device.finish(false);
    k.disk_step();
    let anon = crate::kernel_tests::map_anon(&mut k, pid, 1000 * PAGE_SIZE);
    let mut page = 0;
    while !crate::reclaim::frames_low(&k.platform) {
        poke(&mut k, pid, anon + page * PAGE_SIZE, b"anonymous");
        page += 1;
    }
    let before = device.reads_at_once();
    let step = k.file_write_step(pid, pid, fd as i64, UserPtr(buf), count as i64, None);
    assert_eq!(step, Some(Ok(count as i64)), "made, nothing to read again");
    assert_eq!(device.reads_at_once(), before, "no read under the lock");
    assert_eq!(device.in_flight(), 0);
    let file = datos(&k);
    assert!(!k.memory.file_page_to_read(file, 3), "the page stays");
}
