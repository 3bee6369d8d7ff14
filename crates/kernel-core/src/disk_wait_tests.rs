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
use neoos_ext2::{BlockDevice, DeviceError, MemDevice, StartedRead};
use neoos_mm::{Access, PAGE_SIZE};

use crate::kernel_tests::{peek, put_str, spawn, sys, K, SCRATCH};
use crate::syscall::{SchedulerCall, UserPtr};
use crate::test_platform::kernel;

const PAGE: usize = PAGE_SIZE as usize;

/// Byte `i` of the test file.
fn byte(i: usize) -> u8 {
    (i / PAGE * 3 + i % 7) as u8
}

/// The device's state: the image, the reads started and not yet let go,
/// those let go (their tag and whether they fail).
#[derive(Default)]
struct Held {
    image: Option<MemDevice>,
    started: VecDeque<(u64, u64, usize)>,
    finished: VecDeque<(u64, Result<Vec<u8>, DeviceError>)>,
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
        held.image.as_mut().unwrap().read_sectors(first, buf)
    }
    fn write_sectors(&mut self, first: u64, data: &[u8]) -> Result<(), DeviceError> {
        let mut held = self.0.lock().unwrap();
        held.image.as_mut().unwrap().write_sectors(first, data)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }
    fn start_read(&mut self, first: u64, len: usize, tag: u64) -> Result<StartedRead, DeviceError> {
        self.0.lock().unwrap().started.push_back((tag, first, len));
        Ok(StartedRead::InFlight)
    }
    fn take_finished_read(&mut self) -> Option<(u64, Result<Vec<u8>, DeviceError>)> {
        self.0.lock().unwrap().finished.pop_front()
    }
    fn requests_in_flight(&mut self) -> bool {
        self.in_flight() > 0
    }
}

/// A kernel with an ext2 volume at /home holding usuario/datos.bin (4
/// pages), over a device that holds its reads; a process with the file
/// open read-only (descriptor) and mapped shared (address).
fn mounted() -> (K, HeldReads, u32, u64, u64) {
    let dir = std::env::temp_dir().join(std::format!(
        "neoos-disk-wait-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tree/usuario")).unwrap();
    let data: Vec<u8> = (0..4 * PAGE).map(byte).collect();
    std::fs::write(dir.join("tree/usuario/datos.bin"), &data).unwrap();
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
    let _ = std::fs::remove_dir_all(&dir);
    let mut k = kernel();
    k.fs.mount_home(Box::new(device.clone())).unwrap();
    let pid = spawn(&mut k, None);
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
    let step = |k: &mut K| k.file_read_step(pid, pid, fd as i64, UserPtr(buf), 2 * PAGE);
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
