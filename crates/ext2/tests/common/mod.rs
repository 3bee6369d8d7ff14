//! Host test support: e2fsprogs as the oracle (installed with apt-get when
//! missing and running as root), a file-backed block device, scratch
//! directories, and image building with `mke2fs -d`.
#![allow(dead_code)]

use neoos_ext2::{BlockDevice, DeviceError, Ext2, SECTOR_SIZE};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

/// A block device over an image file.
pub struct FileDevice {
    file: File,
    sectors: u64,
}

impl FileDevice {
    pub fn open(path: &Path) -> Self {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let sectors = file.metadata().unwrap().len() / SECTOR_SIZE as u64;
        FileDevice { file, sectors }
    }

    fn check(&self, first: u64, len: usize) -> Result<u64, DeviceError> {
        if !len.is_multiple_of(SECTOR_SIZE) {
            return Err(DeviceError::Misaligned);
        }
        if first + (len / SECTOR_SIZE) as u64 > self.sectors {
            return Err(DeviceError::OutOfRange);
        }
        Ok(first * SECTOR_SIZE as u64)
    }
}

impl BlockDevice for FileDevice {
    fn sector_count(&self) -> u64 {
        self.sectors
    }
    fn read_sectors(&mut self, first: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let at = self.check(first, buf.len())?;
        self.file
            .read_exact_at(buf, at)
            .map_err(|_| DeviceError::Failed)
    }
    fn write_sectors(&mut self, first: u64, data: &[u8]) -> Result<(), DeviceError> {
        let at = self.check(first, data.len())?;
        self.file
            .write_all_at(data, at)
            .map_err(|_| DeviceError::Failed)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        self.file.sync_data().map_err(|_| DeviceError::Failed)
    }
}

/// Path of an e2fsprogs tool (they live in sbin, often not on PATH).
pub fn tool(name: &str) -> PathBuf {
    ensure_e2fsprogs();
    find_tool(name).unwrap_or_else(|| panic!("{name} not found after installing e2fsprogs"))
}

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| candidate.is_file());
    found
}

/// Installs e2fsprogs once when `mke2fs` is missing (as root, like the host
/// tool does for QEMU); otherwise fails loudly with the command to run.
fn ensure_e2fsprogs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if find_tool("mke2fs").is_some() && find_tool("debugfs").is_some() {
            return;
        }
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
        assert!(
            is_root,
            "e2fsprogs is missing and we are not root: run apt-get install -y e2fsprogs"
        );
        eprintln!("neoos-ext2 tests: installing e2fsprogs (apt-get install -y e2fsprogs)");
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        let status = Command::new("apt-get")
            .args(["install", "-y", "-qq", "e2fsprogs"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .expect("apt-get");
        assert!(status.success(), "apt-get install e2fsprogs failed");
    });
}

/// A fresh scratch directory, removed on drop.
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("neoos-ext2-{}-{tag}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Scratch { path }
    }
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn run(command: &mut Command) -> Output {
    command.output().expect("run e2fsprogs tool")
}

/// Makes an ext2 image of `size_kib` KiB with `block_size`-byte blocks,
/// filled from `source` when given.
pub fn mke2fs(image: &Path, block_size: u32, size_kib: u64, source: Option<&Path>, extra: &[&str]) {
    let mut command = Command::new(tool("mke2fs"));
    command.args(["-q", "-F", "-t", "ext2", "-b", &block_size.to_string()]);
    command.args(extra);
    if let Some(source) = source {
        command.arg("-d").arg(source);
    }
    command.arg(image).arg(format!("{size_kib}k"));
    command.env("E2FSPROGS_FAKE_TIME", "1700000000");
    let output = run(&mut command);
    assert!(
        output.status.success(),
        "mke2fs failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Asserts `e2fsck -fn` finds the image clean.
pub fn assert_fsck_clean(image: &Path) {
    let output = run(Command::new(tool("e2fsck")).arg("-fn").arg(image));
    assert!(
        output.status.success(),
        "e2fsck -fn reports problems (status {:?}):\n{}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The bytes of `path` in the image, as debugfs reads them.
pub fn debugfs_cat(image: &Path, path: &str) -> Vec<u8> {
    let output = run(Command::new(tool("debugfs"))
        .arg("-R")
        .arg(format!("cat {path}"))
        .arg(image));
    assert!(output.status.success(), "debugfs cat {path} failed");
    output.stdout
}

/// debugfs's `stat` text for `path` (to check it exists / read fields).
pub fn debugfs_stat(image: &Path, path: &str) -> String {
    let output = run(Command::new(tool("debugfs"))
        .arg("-R")
        .arg(format!("stat {path}"))
        .arg(image));
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// Names in directory `path` as debugfs lists them (`ls -p`).
pub fn debugfs_names(image: &Path, path: &str) -> Vec<String> {
    let output = run(Command::new(tool("debugfs"))
        .arg("-R")
        .arg(format!("ls -p {path}"))
        .arg(image));
    let text = String::from_utf8_lossy(&output.stdout);
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|line| line.split('/').nth(5).map(str::to_owned))
        .filter(|name| !name.is_empty())
        .collect();
    names.sort();
    names
}

pub fn mount(image: &Path) -> Ext2<FileDevice> {
    let mut fs = Ext2::mount(FileDevice::open(image), false).expect("mount");
    fs.set_time(1_750_000_000);
    fs
}

/// Deterministic test bytes.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}
