//! Hostile images, crafted with debugfs's write mode on images made by
//! mke2fs: a bad superblock, loops in the directory tree, block numbers past
//! the end of the disk. Each operation must return an error (never panic,
//! never hang), and a sound part of the image stays usable.

mod common;

use common::*;
use neoos_ext2::{Ext2, Ext2Error, MemDevice, ROOT_INO};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A 1 KiB-block image with /small (10 bytes), /big (60000 bytes: direct
/// and single-indirect blocks) and /dir/sub.
fn base(scratch: &Scratch) -> PathBuf {
    let source = scratch.join("src");
    fs::create_dir_all(source.join("dir/sub")).unwrap();
    fs::write(source.join("small"), b"small file").unwrap();
    fs::write(source.join("big"), pattern(60_000, 3)).unwrap();
    let image = scratch.join("img");
    mke2fs(&image, 1024, 2048, Some(&source), &[]);
    image
}

/// Runs debugfs -w with `request` on `image`.
fn debugfs_write(image: &Path, request: &str) {
    let out = Command::new(tool("debugfs"))
        .args(["-w", "-R", request])
        .arg(image)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = said
        .lines()
        .filter(|l| !l.starts_with("debugfs "))
        .collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "debugfs -w -R {request:?} failed: {complaints:?}"
    );
}

fn mount_bytes(image: &Path) -> Result<Ext2<MemDevice>, Ext2Error> {
    Ext2::mount(MemDevice::new(fs::read(image).unwrap()), false)
}

#[test]
fn a_bad_superblock_is_refused_at_mount() {
    let scratch = Scratch::new("badmagic");
    let image = base(&scratch);
    let mut bytes = fs::read(&image).unwrap();
    bytes[1080] = 0x34; // s_magic (superblock at 1024, magic at +56)
    assert!(matches!(
        Ext2::mount(MemDevice::new(bytes), false),
        Err(Ext2Error::Corrupt(_))
    ));
    for (field, value) in [
        ("log_block_size", "9"),
        ("blocks_per_group", "0"),
        ("inodes_per_group", "0"),
        ("first_data_block", "0"),
        ("rev_level", "7"),
    ] {
        let scratch = Scratch::new("badsb");
        let image = base(&scratch);
        debugfs_write(&image, &format!("ssv {field} {value}"));
        assert!(
            mount_bytes(&image).is_err(),
            "mount accepted a superblock with {field} = {value}"
        );
    }
}

#[test]
fn an_image_shorter_than_its_superblock_says_is_refused() {
    let scratch = Scratch::new("short");
    let image = base(&scratch);
    let bytes = fs::read(&image).unwrap();
    let cut = Ext2::mount(MemDevice::new(bytes[..bytes.len() / 2].to_vec()), false);
    assert!(cut.is_err(), "a half image mounted");
}

#[test]
fn directory_loops_give_errors_or_finite_answers() {
    let scratch = Scratch::new("loop");
    let image = base(&scratch);
    // /dir/sub/up names /dir (a hard link to a directory: a cycle), and
    // /dir/sub's ".." names /dir/sub itself (a parent chain that loops).
    debugfs_write(&image, "link /dir /dir/sub/up");
    debugfs_write(&image, "unlink /dir/sub/..");
    debugfs_write(&image, "link /dir/sub /dir/sub/..");
    let mut fs = mount_bytes(&image).unwrap();
    let deep = "/dir/sub/up/sub/up/sub/up/sub";
    let sub = fs.lookup_path("/dir/sub").unwrap();
    assert_eq!(
        fs.lookup_path(deep).unwrap(),
        sub,
        "a cyclic path is still a finite walk"
    );
    assert!(fs.read_dir(sub).is_ok());
    let dir = fs.lookup_path("/dir").unwrap();
    // Moving /dir into /dir/sub must walk sub's parent chain, which loops.
    let moved = fs.rename(ROOT_INO, b"dir", sub, b"moved");
    assert!(
        moved.is_err(),
        "rename through a looping parent chain: {moved:?}"
    );
    assert_eq!(
        fs.lookup_path("/dir").unwrap(),
        dir,
        "the failed rename moved nothing"
    );
    let small = fs.lookup_path("/small").unwrap();
    assert_eq!(fs.read_at(small, 0, &mut [0; 10]).unwrap(), 10);
}

#[test]
fn block_numbers_past_the_end_give_corrupt_not_a_panic() {
    let scratch = Scratch::new("pastend");
    let image = base(&scratch);
    debugfs_write(&image, "sif /small block[0] 4000000");
    debugfs_write(&image, "sif /big block[IND] 3999999");
    debugfs_write(&image, "sif /dir block[0] 123456789");
    let mut fs = mount_bytes(&image).unwrap();
    let small = fs.lookup_path("/small").unwrap();
    let big = fs.lookup_path("/big").unwrap();
    let mut buf = vec![0u8; 60_000];
    assert!(matches!(
        fs.read_at(small, 0, &mut buf[..10]),
        Err(Ext2Error::Corrupt(_))
    ));
    // The direct blocks still read; the indirect one is refused.
    assert_eq!(fs.read_at(big, 0, &mut buf[..4096]).unwrap(), 4096);
    assert_eq!(&buf[..4096], &pattern(60_000, 3)[..4096]);
    assert!(matches!(
        fs.read_at(big, 20_000, &mut buf[..4096]),
        Err(Ext2Error::Corrupt(_))
    ));
    assert!(fs.write_pages(big, 5, &[7u8; 4096]).is_err());
    assert!(fs.truncate(big, 0).is_err() || fs.stat(big).is_ok());
    assert!(fs.lookup_path("/dir/sub").is_err());
    let dir = fs.lookup_path("/dir").unwrap();
    assert!(fs.create(dir, b"new", 0o644).is_err());
    assert!(fs.read_dir(ROOT_INO).is_ok(), "the sound root still lists");
}

#[test]
fn a_bitmap_past_the_end_is_refused_at_mount() {
    let scratch = Scratch::new("bitmap");
    let image = base(&scratch);
    debugfs_write(&image, "set_bg 0 block_bitmap 5000000");
    assert!(mount_bytes(&image).is_err());
}
