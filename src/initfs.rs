//! The initial filesystem image: a cpio archive (the "newc" format) that the
//! kernel unpacks into its RAM filesystem at boot. It holds the programs under
//! /bin, the data file of the seeds' examples and a few text files.

use std::path::Path;

use crate::Result;

/// Size of /home/usuario/datos.bin.
pub const DATOS_SIZE: usize = 1024 * 1024;

/// Byte `i` of /home/usuario/datos.bin as the image ships it.
pub fn datos_byte(i: usize) -> u8 {
    (i.wrapping_mul(7).wrapping_add(3) & 0xff) as u8
}

/// An archive being built.
#[derive(Default)]
pub struct Image {
    bytes: Vec<u8>,
    inode: u32,
}

const MODE_DIR: u32 = 0o040755;
const MODE_FILE: u32 = 0o100644;
const MODE_PROGRAM: u32 = 0o100755;
const MODE_CHAR_DEVICE: u32 = 0o020600;

impl Image {
    fn entry(&mut self, path: &str, mode: u32, data: &[u8]) {
        self.node(path, mode, data, (0, 0));
    }

    /// One archive member; `rdev` is (major, minor) for a device node.
    fn node(&mut self, path: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.inode += 1;
        let name = path.trim_start_matches('/');
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
    pub fn dir(&mut self, path: &str) {
        self.entry(path, MODE_DIR, &[]);
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: &str, data: &[u8]) {
        self.entry(path, MODE_FILE, data);
    }

    /// Adds a character device node (e.g. `/dev/console`, 5:1, for a Linux
    /// initramfs).
    pub fn char_device(&mut self, path: &str, major: u32, minor: u32) {
        self.node(path, MODE_CHAR_DEVICE, &[], (major, minor));
    }

    /// Adds an executable read from `binary`.
    pub fn program(&mut self, path: &str, binary: &Path) -> Result<()> {
        let data = std::fs::read(binary)?;
        self.entry(path, MODE_PROGRAM, &data);
        Ok(())
    }

    /// Closes the archive and writes it to `out`.
    pub fn write(mut self, out: &Path) -> Result<()> {
        self.entry("TRAILER!!!", 0, &[]);
        std::fs::write(out, &self.bytes)?;
        Ok(())
    }
}

/// An image with the standard tree: /bin, /tmp, /home/usuario/datos.bin,
/// /etc/motd and /dev/faulty (a file whose every write to the disk fails with
/// an I/O error, for the E_IO paths).
pub fn standard() -> Image {
    let mut image = Image::default();
    for d in ["/bin", "/tmp", "/etc", "/home", "/home/usuario", "/dev"] {
        image.dir(d);
    }
    let datos: Vec<u8> = (0..DATOS_SIZE).map(datos_byte).collect();
    image.file("/home/usuario/datos.bin", &datos);
    image.file(
        "/etc/motd",
        b"Welcome to NeoOS: a small x86_64 kernel in Rust whose heart is its memory mapping.\n",
    );
    image.file("/etc/hostname", b"neoos\n");
    image.file("/dev/faulty", &[0; 16 * 4096]);
    image
}
