//! Crafted images never make the file system panic: bytes of a valid image
//! (made by mke2fs) are overwritten at random, biased towards the metadata
//! at the start, and then every operation is run on the result. Errors are
//! expected; a panic (including an arithmetic overflow, since tests build
//! with overflow checks) fails the test.

mod common;

use common::*;
use neoos_ext2::{Ext2, MemDevice, ROOT_INO};
use proptest::prelude::*;
use std::fs;
use std::sync::OnceLock;

fn base_image(block_size: u32) -> Vec<u8> {
    let scratch = Scratch::new("fuzzbase");
    let source = scratch.join("src");
    fs::create_dir_all(source.join("dir/sub")).unwrap();
    fs::write(source.join("small"), b"small file").unwrap();
    fs::write(source.join("dir/mid"), pattern(40_000, 1)).unwrap();
    fs::write(source.join("dir/sub/x"), pattern(300, 2)).unwrap();
    for i in 0..30 {
        fs::write(source.join(format!("dir/f{i}")), b"f").unwrap();
    }
    std::os::unix::fs::symlink("small", source.join("link")).unwrap();
    let image = scratch.join("img");
    mke2fs(&image, block_size, 512, Some(&source), &["-N", "64"]);
    fs::read(&image).unwrap()
}

fn image(block_size: u32) -> &'static [u8] {
    static ONE_K: OnceLock<Vec<u8>> = OnceLock::new();
    static FOUR_K: OnceLock<Vec<u8>> = OnceLock::new();
    let cell = if block_size == 1024 { &ONE_K } else { &FOUR_K };
    cell.get_or_init(|| base_image(block_size))
}

/// Runs every kind of operation, ignoring the (expected) errors.
fn exercise(bytes: Vec<u8>) {
    let Ok(mut fs) = Ext2::mount(MemDevice::new(bytes), false) else {
        return;
    };
    fs.set_time(1);
    let mut buf = vec![0; 70_000];
    for path in [
        "/",
        "/small",
        "/dir",
        "/dir/mid",
        "/dir/sub",
        "/dir/sub/x",
        "/link",
        "/lost+found",
    ] {
        if let Ok(ino) = fs.lookup_path(path) {
            let _ = fs.stat(ino);
            let _ = fs.read_dir(ino);
            let _ = fs.read_at(ino, 0, &mut buf);
            let _ = fs.read_at(ino, 1 << 40, &mut buf[..10]);
            let _ = fs.block_map(ino, 300);
            let _ = fs.read_pages(ino, 0, &mut buf[..8192]);
        }
    }
    let _ = fs.stat(u32::MAX);
    let _ = fs.read_dir(0);
    if let Ok(ino) = fs.lookup_path("/dir/mid") {
        let _ = fs.write_at(ino, 5, &buf[..3000]);
        let _ = fs.write_at(ino, 300 << 10, b"far");
        let _ = fs.truncate(ino, 1000);
        let _ = fs.write_pages(ino, 0, &buf[..4096]);
    }
    if let Ok(ino) = fs.create(ROOT_INO, b"new", 0o644) {
        let _ = fs.write_at(ino, 0, &buf[..20_000]);
    }
    let _ = fs.mkdir(ROOT_INO, b"newdir", 0o755);
    if let Ok(dir) = fs.lookup_path("/dir") {
        let _ = fs.create(dir, b"another", 0o644);
        let _ = fs.unlink(dir, b"f3");
        let _ = fs.rename(dir, b"f4", ROOT_INO, b"small");
        let _ = fs.rename(ROOT_INO, b"newdir", dir, b"moved");
        let _ = fs.rename(dir, b"sub", ROOT_INO, b"sub");
    }
    let _ = fs.unlink(ROOT_INO, b"link");
    let _ = fs.rmdir(ROOT_INO, b"sub");
    let _ = fs.rmdir(ROOT_INO, b"dir");
    let _ = fs.unlink(ROOT_INO, b"small");
    let _ = fs.into_device();
}

fn mutations() -> impl Strategy<Value = Vec<(bool, usize, u8)>> {
    prop::collection::vec((any::<bool>(), any::<usize>(), any::<u8>()), 1..24)
}

fn mutate(base: &[u8], changes: &[(bool, usize, u8)]) -> Vec<u8> {
    let mut bytes = base.to_vec();
    // Half the changes land in the first 40 KiB: superblock, group
    // descriptors, bitmaps, inode table, root and early directory blocks.
    let metadata = bytes.len().min(40 << 10);
    for &(in_metadata, position, value) in changes {
        let limit = if in_metadata { metadata } else { bytes.len() };
        bytes[position % limit] = value;
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn mutated_1k_images_never_panic(changes in mutations()) {
        exercise(mutate(image(1024), &changes));
    }

    #[test]
    fn mutated_4k_images_never_panic(changes in mutations()) {
        exercise(mutate(image(4096), &changes));
    }
}

#[test]
fn the_unmutated_image_supports_every_operation() {
    let mut fs = Ext2::mount(MemDevice::new(image(1024).to_vec()), false).unwrap();
    let mid = fs.lookup_path("/dir/mid").unwrap();
    let mut buf = vec![0; 40_000];
    assert_eq!(fs.read_at(mid, 0, &mut buf).unwrap(), 40_000);
    assert_eq!(buf, pattern(40_000, 1));
    exercise(image(1024).to_vec());
}
