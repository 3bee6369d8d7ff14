//! The disk NeoOS mounts at /home: an ext2 image made on the host with
//! e2fsprogs (`mke2fs -t ext2 -d`), attached to QEMU as a virtio-blk device,
//! optionally under QEMU's blkdebug driver (fault injection); and the
//! e2fsprogs oracle that checks what NeoOS left on it (`e2fsck -fn`,
//! `debugfs -R 'cat PATH'`). The image's root is /home: NeoOS's
//! /home/usuario/datos.bin is the image's /usuario/datos.bin.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{build, initfs, out_dir, Result, ToolError};

/// Size of a new image (a sparse file on the host).
pub const IMAGE_SIZE: &str = "64M";
/// Block size of a new image: one 4 KiB page is one block.
pub const IMAGE_BLOCK_SIZE: u32 = 4096;

/// The disk of a boot.
#[derive(Clone, Debug, Default)]
pub struct DiskOptions {
    /// The ext2 image to attach (none: no disk, /home stays in RAM).
    pub image: Option<PathBuf>,
    /// A blkdebug rules file to put under the disk.
    pub blkdebug: Option<PathBuf>,
    /// The guest's RAM (QEMU's `-m`), e.g. `64M`.
    pub memory: Option<String>,
    /// Kill QEMU (a power cut: no shutdown, nothing flushed by the guest)
    /// as soon as the console shows this line.
    pub cut_power_at: Option<String>,
}

impl DiskOptions {
    /// QEMU's arguments for the disk.
    pub fn qemu_args(&self) -> Vec<String> {
        let Some(image) = &self.image else {
            return Vec::new();
        };
        let file = match &self.blkdebug {
            Some(rules) => format!("blkdebug:{}:{}", rules.display(), image.display()),
            None => image.display().to_string(),
        };
        vec![
            "-drive".into(),
            format!("file={file},if=none,id=home,format=raw,cache=writeback"),
            "-device".into(),
            "virtio-blk-pci,drive=home".into(),
        ]
    }
}

/// Least guest RAM NeoOS is made for: the kernel's heap is 3/16 of RAM
/// (12 MiB of 64), the rest frames for programs and the page cache.
pub const MIN_MEMORY_MIB: u64 = 64;

/// Checks a `--memory` size as QEMU's `-m` takes it (a number of MiB, or
/// with a suffix K, M, G or T); `Err` says why it will not do.
pub fn check_memory(size: &str) -> Result<()> {
    let (digits, unit) = match size.trim().char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&size[..i], c.to_ascii_uppercase()),
        _ => (size.trim(), 'M'),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| ToolError(format!("--memory {size}: not a size (e.g. 512M, 1G)")))?;
    let mib = match unit {
        'K' => value / 1024,
        'M' => value,
        'G' => value.saturating_mul(1024),
        'T' => value.saturating_mul(1024 * 1024),
        _ => return Err(ToolError(format!("--memory {size}: unknown unit {unit}"))),
    };
    if mib < MIN_MEMORY_MIB {
        return Err(ToolError(format!(
            "--memory {size}: NeoOS needs at least {MIN_MEMORY_MIB}M"
        )));
    }
    Ok(())
}

/// Makes sure mke2fs, e2fsck and debugfs are there (e2fsprogs).
pub fn ensure_e2fsprogs() -> Result<()> {
    build::ensure_installed("mke2fs", "e2fsprogs", || {
        Command::new("mke2fs")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Creates the standard image at `path`: /usuario/datos.bin (the seeds'
/// file, [`initfs::DATOS_SIZE`] bytes of [`initfs::datos_byte`]).
pub fn create_image(path: &Path) -> Result<()> {
    create_image_with(path, IMAGE_SIZE, |_| Ok(()))
}

/// [`create_image`] of `size` (as mke2fs takes it, e.g. `320M`), with what
/// `add` writes into the image's root (a directory on the host, holding
/// `usuario/` already) besides.
pub fn create_image_with(
    path: &Path,
    size: &str,
    add: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    ensure_e2fsprogs()?;
    let staging = path.with_extension("tree");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(staging.join("usuario"))?;
    let datos: Vec<u8> = (0..initfs::DATOS_SIZE).map(initfs::datos_byte).collect();
    std::fs::write(staging.join("usuario/datos.bin"), datos)?;
    if let Err(e) = add(&staging) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let made = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2", "-b"])
        .arg(IMAGE_BLOCK_SIZE.to_string())
        .arg("-d")
        .arg(&staging)
        .arg(path)
        .arg(size)
        .output()?;
    let _ = std::fs::remove_dir_all(&staging);
    if !made.status.success() {
        return Err(ToolError(format!(
            "mke2fs {}: {}",
            path.display(),
            String::from_utf8_lossy(&made.stderr)
        )));
    }
    Ok(())
}

/// A new standard image under target/neoos/disks, unique to this process
/// and call (parallel runs never share one).
pub fn fresh_image() -> Result<PathBuf> {
    let path = fresh_image_path()?;
    create_image(&path)?;
    Ok(path)
}

/// A path for a new image under target/neoos/disks, unique to this process
/// and call (nothing made there yet).
pub fn fresh_image_path() -> Result<PathBuf> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = out_dir().join("disks");
    std::fs::create_dir_all(&dir)?;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Ok(dir.join(format!("fresh-{}-{n}.img", std::process::id())))
}

/// `e2fsck -fn IMAGE`: `Ok` when it finds nothing to fix, else its report.
pub fn e2fsck_clean(image: &Path) -> std::result::Result<(), String> {
    let out = Command::new("e2fsck")
        .arg("-fn")
        .arg(image)
        .output()
        .map_err(|e| format!("cannot run e2fsck: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "e2fsck -fn {} exited with {:?}:\n{}{}",
            image.display(),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `debugfs -R 'cat PATH' IMAGE`: the bytes of `path` on the image.
pub fn debugfs_cat(image: &Path, path: &str) -> Result<Vec<u8>> {
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(format!("cat {path}"))
        .arg(image)
        .output()?;
    if !out.status.success() {
        return Err(ToolError(format!("debugfs cat {path} failed")));
    }
    Ok(out.stdout)
}

/// `debugfs -R REQUEST IMAGE`: what debugfs prints (`ls -p /tree`, `stat
/// /f`...).
pub fn debugfs_request(image: &Path, request: &str) -> Result<String> {
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(request)
        .arg(image)
        .output()?;
    if !out.status.success() {
        return Err(ToolError(format!("debugfs {request} failed")));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The disk block holding logical block `index` of `path` on the image
/// (`debugfs -R 'bmap PATH INDEX'`); 0 for a hole.
pub fn debugfs_bmap(image: &Path, path: &str, index: u64) -> Result<u64> {
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(format!("bmap {path} {index}"))
        .arg(image)
        .output()?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| ToolError(format!("debugfs bmap {path} {index}: no block number")))
}

/// A blkdebug rule failing with EIO, once, the first request after
/// `event` (`read_aio`, `write_aio`) that touches sector `sector`.
pub fn fail_once_rule(event: &str, sector: u64) -> String {
    format!(
        "[inject-error]\nevent = \"{event}\"\nerrno = \"5\"\nsector = \"{sector}\"\nonce = \"on\"\n\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_are_checked_against_the_kernels_need() {
        assert!(check_memory("512M").is_ok());
        assert!(check_memory("1G").is_ok());
        assert!(check_memory("256").is_ok());
        assert!(check_memory("64M").is_ok());
        assert!(check_memory("32M").is_err());
        assert!(check_memory("131072K").is_ok());
        assert!(check_memory("lots").is_err());
    }

    #[test]
    fn blkdebug_goes_under_the_image() {
        let o = DiskOptions {
            image: Some("/x/d.img".into()),
            blkdebug: Some("/x/rules".into()),
            memory: None,
            cut_power_at: None,
        };
        let args = o.qemu_args();
        assert!(args[1].starts_with("file=blkdebug:/x/rules:/x/d.img,"));
        assert_eq!(args[3], "virtio-blk-pci,drive=home");
        assert!(DiskOptions::default().qemu_args().is_empty());
    }
}
