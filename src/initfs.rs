//! The initial filesystem image: a cpio archive (the "newc" format) that the
//! kernel unpacks into its RAM filesystem at boot. It holds the programs under
//! /bin, the data file of the seeds' examples and a few text files.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{Result, ToolError};

/// Size of /home/usuario/datos.bin.
pub const DATOS_SIZE: usize = 1024 * 1024;

/// Byte `i` of /home/usuario/datos.bin as the image ships it.
pub fn datos_byte(i: usize) -> u8 {
    (i.wrapping_mul(7).wrapping_add(3) & 0xff) as u8
}

/// An archive being built. Every path is unique and its parent is a
/// directory added before it (what the kernel's file system accepts; it
/// reports any entry it refuses).
#[derive(Default)]
pub struct Image {
    bytes: Vec<u8>,
    inode: u32,
    /// Each path added (without the leading `/`) and whether it is a directory.
    paths: BTreeMap<String, bool>,
}

/// The name of the archive's closing member.
const TRAILER: &str = "TRAILER!!!";
const MODE_DIR: u32 = 0o040755;
const MODE_FILE: u32 = 0o100644;
const MODE_PROGRAM: u32 = 0o100755;
const MODE_CHAR_DEVICE: u32 = 0o020600;

impl Image {
    fn entry(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<()> {
        self.node(path, mode, data, (0, 0))
    }

    /// Records `path`, refusing a path added already or one whose parent is
    /// not a directory of the image.
    fn claim(&mut self, path: &str, mode: u32) -> Result<String> {
        let name = path.trim_start_matches('/');
        if name.is_empty()
            || name
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(ToolError(format!(
                "initial file system: {path:?} is not a plain path"
            )));
        }
        if name == TRAILER {
            return Err(ToolError(format!(
                "initial file system: {TRAILER} ends the archive"
            )));
        }
        if self.paths.contains_key(name) {
            return Err(ToolError(format!(
                "initial file system: /{name} is in the image already"
            )));
        }
        if let Some((parent, _)) = name.rsplit_once('/') {
            if self.paths.get(parent) != Some(&true) {
                return Err(ToolError(format!(
                    "initial file system: /{name} needs the directory /{parent} first"
                )));
            }
        }
        self.paths.insert(name.to_string(), mode == MODE_DIR);
        Ok(name.to_string())
    }

    /// One archive member; `rdev` is (major, minor) for a device node.
    fn node(&mut self, path: &str, mode: u32, data: &[u8], rdev: (u32, u32)) -> Result<()> {
        let name = self.claim(path, mode)?;
        self.header(&name, mode, data, rdev);
        Ok(())
    }

    fn header(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.inode += 1;
        let fields = [
            self.inode,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.bytes.extend_from_slice(b"070701");
        for f in fields {
            self.bytes.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }

    /// Adds a directory.
    pub fn dir(&mut self, path: &str) -> Result<()> {
        self.entry(path, MODE_DIR, &[])
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: &str, data: &[u8]) -> Result<()> {
        self.entry(path, MODE_FILE, data)
    }

    /// Adds a character device node (e.g. `/dev/console`, 5:1, for a Linux
    /// initramfs).
    pub fn char_device(&mut self, path: &str, major: u32, minor: u32) -> Result<()> {
        self.node(path, MODE_CHAR_DEVICE, &[], (major, minor))
    }

    /// Adds an executable read from `binary`.
    pub fn program(&mut self, path: &str, binary: &Path) -> Result<()> {
        let data =
            std::fs::read(binary).map_err(|e| ToolError(format!("{}: {e}", binary.display())))?;
        self.entry(path, MODE_PROGRAM, &data)
    }

    /// Adds Debian's static busybox (installed on the host when missing)
    /// as `/bin/busybox`: a glibc program NeoOS runs as it is.
    pub fn busybox(&mut self) -> Result<()> {
        let host = crate::build::ensure_busybox()?;
        self.program(crate::build::BUSYBOX, &host)
    }

    /// Closes the archive and writes it to `out`.
    pub fn write(mut self, out: &Path) -> Result<()> {
        self.header(TRAILER, 0, &[], (0, 0));
        std::fs::write(out, &self.bytes)?;
        Ok(())
    }
}

/// An image with the standard tree: /bin, /tmp, /home/usuario/datos.bin,
/// /etc/motd and /dev/faulty (a file whose every write to the disk fails with
/// an I/O error, for the E_IO paths), and /dev/shm (where POSIX
/// `shm_open` keeps its objects: the file system is in RAM already).
pub fn standard() -> Result<Image> {
    let mut image = Image::default();
    for d in [
        "/bin",
        "/tmp",
        "/etc",
        "/home",
        "/home/usuario",
        "/dev",
        "/dev/shm",
    ] {
        image.dir(d)?;
    }
    let datos: Vec<u8> = (0..DATOS_SIZE).map(datos_byte).collect();
    image.file("/home/usuario/datos.bin", &datos)?;
    image.file(
        "/etc/motd",
        b"Welcome to NeoOS: a small x86_64 kernel in Rust whose heart is its memory mapping.\n",
    )?;
    image.file("/etc/hostname", b"neoos\n")?;
    // The users Linux programs can look up (getpwent) and become (seteuid).
    image.file(
        "/etc/passwd",
        b"root:x:0:0:root:/:/bin/sh\ndaemon:x:1:1:daemon:/:/bin/false\n",
    )?;
    image.file("/etc/group", b"root:x:0:\ndaemon:x:1:\n")?;
    image.file("/dev/faulty", &[0; FAULTY_PAGES * neoos_abi::PAGE_SIZE])?;
    Ok(image)
}

/// Pages of /dev/faulty.
const FAULTY_PAGES: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_added_twice_is_refused() {
        let mut image = Image::default();
        image.dir("/bin").unwrap();
        image.file("/bin/hello", b"one").unwrap();
        let error = image.file("/bin/hello", b"two").unwrap_err();
        assert!(
            error.0.contains("/bin/hello is in the image already"),
            "{error}"
        );
        assert!(image.dir("/bin").is_err());
    }

    #[test]
    fn an_entry_needs_its_parent_directory_first() {
        let mut image = Image::default();
        assert!(image.file("/user/hello", b"x").is_err());
        image.file("/top", b"x").unwrap();
        assert!(
            image.file("/top/under", b"x").is_err(),
            "a file is no parent"
        );
        image.dir("/user").unwrap();
        image.file("/user/hello", b"x").unwrap();
    }

    #[test]
    fn odd_paths_and_the_trailer_name_are_refused() {
        let mut image = Image::default();
        for path in ["/", "", "/a//b", "/../x", "/./x", "TRAILER!!!"] {
            assert!(image.file(path, b"x").is_err(), "{path:?} accepted");
        }
    }

    #[test]
    fn entries_are_newc_records_with_name_and_data() {
        let mut image = Image::default();
        image.file("/motd", b"hi").unwrap();
        image.header("TRAILER!!!", 0, &[], (0, 0));
        let bytes = &image.bytes;
        assert_eq!(&bytes[..6], b"070701");
        let field = |i: usize| {
            let text = std::str::from_utf8(&bytes[6 + i * 8..14 + i * 8]).unwrap();
            usize::from_str_radix(text, 16).unwrap()
        };
        assert_eq!(field(1), MODE_FILE as usize);
        assert_eq!(field(6), 2, "data size");
        assert_eq!(field(11), "motd".len() + 1, "name size with its NUL");
        assert_eq!(&bytes[110..115], b"motd\0");
        assert_eq!(&bytes[116..118], b"hi", "data after the name, 4-aligned");
    }
}
