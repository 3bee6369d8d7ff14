//! ext2 against e2fsprogs: images made by `mke2fs -d` read back exactly,
//! and after our writes `e2fsck -fn` is clean and `debugfs cat` returns the
//! bytes we wrote.

mod common;

use common::*;
use neoos_ext2::{Ext2, Ext2Error, FileType, MemDevice, PAGE_SIZE, ROOT_INO};
use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// A source tree with small, empty, sparse and multi-MiB files, a symbolic
/// link, nested directories and a directory of many entries.
fn make_source(dir: &Path) {
    fs::write(dir.join("hello.txt"), b"hello, ext2\n").unwrap();
    fs::write(dir.join("empty"), b"").unwrap();
    fs::create_dir_all(dir.join("a/b/c")).unwrap();
    fs::write(dir.join("a/b/c/deep.bin"), pattern(5000, 1)).unwrap();
    fs::write(dir.join("a/one.bin"), pattern(1024, 2)).unwrap();
    // 3 MiB: past the double-indirect boundary (268 KiB) with 1 KiB blocks.
    fs::write(dir.join("big.bin"), pattern(3 << 20, 3)).unwrap();
    let sparse = fs::File::create(dir.join("sparse.bin")).unwrap();
    sparse.write_all_at(&pattern(3000, 4), 0).unwrap();
    sparse.write_all_at(&pattern(2000, 5), 2 << 20).unwrap();
    sparse.set_len(3 << 20).unwrap();
    fs::set_permissions(dir.join("hello.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("hello.txt", dir.join("link")).unwrap();
    fs::create_dir(dir.join("many")).unwrap();
    for i in 0..150 {
        fs::write(
            dir.join(format!("many/file-with-a-longish-name-{i:04}")),
            format!("{i}"),
        )
        .unwrap();
    }
}

/// Compares directory `host` with inode `ino` recursively.
fn compare_tree(fs: &mut Ext2<FileDevice>, host: &Path, ino: u32) {
    let mut ours: Vec<String> = fs
        .read_dir(ino)
        .unwrap()
        .into_iter()
        .map(|e| String::from_utf8(e.name).unwrap())
        .filter(|n| n != "." && n != ".." && n != "lost+found")
        .collect();
    ours.sort();
    let mut theirs: Vec<String> = fs::read_dir(host)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    theirs.sort();
    assert_eq!(ours, theirs, "entries of {}", host.display());
    for name in theirs {
        let path = host.join(&name);
        let meta = fs::symlink_metadata(&path).unwrap();
        let child = fs.lookup(ino, name.as_bytes()).unwrap();
        let stat = fs.stat(child).unwrap();
        assert_eq!(
            u32::from(stat.mode) & 0o7777,
            meta.mode() & 0o7777,
            "mode of {name}"
        );
        assert_eq!(i64::from(stat.mtime), meta.mtime(), "mtime of {name}");
        if meta.is_dir() {
            assert_eq!(stat.file_type, FileType::Directory);
            compare_tree(fs, &path, child);
        } else if meta.file_type().is_symlink() {
            assert_eq!(stat.file_type, FileType::Symlink);
            assert_eq!(
                stat.size,
                fs::read_link(&path).unwrap().as_os_str().len() as u64
            );
        } else {
            assert_eq!(stat.file_type, FileType::Regular);
            assert_eq!(stat.size, meta.len(), "size of {name}");
            let mut buf = vec![0xAA; meta.len() as usize];
            assert_eq!(fs.read_at(child, 0, &mut buf).unwrap(), buf.len());
            assert!(
                buf == fs::read(&path).unwrap(),
                "contents of {}",
                path.display()
            );
        }
    }
}

fn read_back(block_size: u32) {
    let scratch = Scratch::new("readback");
    let source = scratch.join("src");
    fs::create_dir(&source).unwrap();
    make_source(&source);
    let image = scratch.join("img");
    mke2fs(&image, block_size, 16 << 10, Some(&source), &[]);
    let mut fs = mount(&image);
    assert_eq!(fs.block_size(), block_size);
    compare_tree(&mut fs, &source, ROOT_INO);
    let sparse = fs.lookup_path("/sparse.bin").unwrap();
    let hole = (1u64 << 20) / u64::from(block_size);
    assert_eq!(
        fs.block_map(sparse, hole).unwrap(),
        None,
        "hole stays a hole"
    );
    assert!(fs.block_map(sparse, 0).unwrap().is_some());
    assert!(
        fs.stat(sparse).unwrap().sectors < 3 << 11,
        "sparse file holds few blocks"
    );
}

#[test]
fn mke2fs_image_reads_back_exactly_1k() {
    read_back(1024);
}

#[test]
fn mke2fs_image_reads_back_exactly_2k() {
    read_back(2048);
}

#[test]
fn mke2fs_image_reads_back_exactly_4k() {
    read_back(4096);
}

fn writes_are_fsck_clean(block_size: u32) {
    let scratch = Scratch::new("writes");
    let source = scratch.join("src");
    fs::create_dir(&source).unwrap();
    make_source(&source);
    let image = scratch.join("img");
    mke2fs(&image, block_size, 16 << 10, Some(&source), &[]);
    let mut fs = mount(&image);
    let free_before = (fs.free_blocks(), fs.free_inodes());

    let new = fs.create(ROOT_INO, b"new.txt", 0o644).unwrap();
    let data = pattern(100_000, 10);
    assert_eq!(fs.write_at(new, 0, &data).unwrap(), data.len());
    assert_eq!(
        fs.create(ROOT_INO, b"new.txt", 0o644),
        Err(Ext2Error::Exists)
    );
    let d1 = fs.mkdir(ROOT_INO, b"d1", 0o755).unwrap();
    let d2 = fs.mkdir(d1, b"d2", 0o700).unwrap();
    assert_eq!(fs.stat(d1).unwrap().links, 3);
    let inner = fs.create(d2, b"inner", 0o600).unwrap();
    fs.write_at(inner, 10, b"inner bytes").unwrap();
    fs.rename(ROOT_INO, b"new.txt", d2, b"moved.txt").unwrap();
    fs.rename(d1, b"d2", ROOT_INO, b"d2moved").unwrap();
    assert_eq!(fs.lookup(d2, b"..").unwrap(), ROOT_INO);
    assert_eq!(fs.stat(d1).unwrap().links, 2);
    assert_eq!(
        fs.rename(ROOT_INO, b"d2moved", d2, b"x"),
        Err(Ext2Error::InvalidArgument)
    );
    // Replacing a file: hello.txt's inode goes away.
    assert_eq!(
        fs.rename(ROOT_INO, b"one.bin", ROOT_INO, b"x"),
        Err(Ext2Error::NotFound)
    );
    let a = fs.lookup_path("/a").unwrap();
    fs.rename(a, b"one.bin", ROOT_INO, b"hello.txt").unwrap();
    fs.unlink(ROOT_INO, b"empty").unwrap();
    // A directory replaces an empty directory; a file cannot replace one.
    let e1 = fs.mkdir(ROOT_INO, b"e1", 0o755).unwrap();
    fs.mkdir(d1, b"e2", 0o755).unwrap();
    assert_eq!(
        fs.rename(ROOT_INO, b"hello.txt", d1, b"e2"),
        Err(Ext2Error::IsDir)
    );
    assert_eq!(
        fs.rename(d1, b"e2", ROOT_INO, b"hello.txt"),
        Err(Ext2Error::NotDir)
    );
    fs.rename(ROOT_INO, b"e1", d1, b"e2").unwrap();
    assert_eq!(fs.lookup(d1, b"e2").unwrap(), e1);
    assert_eq!(fs.lookup(e1, b"..").unwrap(), d1);
    fs.rmdir(d1, b"e2").unwrap();
    assert_eq!(fs.unlink(ROOT_INO, b"a"), Err(Ext2Error::IsDir));
    assert_eq!(fs.rmdir(ROOT_INO, b"a"), Err(Ext2Error::NotEmpty));
    fs.rmdir(ROOT_INO, b"d1").unwrap();
    assert_eq!(fs.lookup(ROOT_INO, b"d1"), Err(Ext2Error::NotFound));
    fs.unlink(ROOT_INO, b"link").unwrap();
    // Shrink the big file into its single-indirect range, grow it sparse,
    // then write into the new hole.
    let big = fs.lookup_path("/big.bin").unwrap();
    fs.truncate(big, 200_001).unwrap();
    fs.truncate(big, 5 << 20).unwrap();
    fs.write_at(big, 4 << 20, b"in the hole").unwrap();
    // Many entries removed and added in the multi-block directory.
    let many = fs.lookup_path("/many").unwrap();
    for i in (0..150).step_by(3) {
        fs.unlink(many, format!("file-with-a-longish-name-{i:04}").as_bytes())
            .unwrap();
    }
    for i in 0..40 {
        let f = fs.create(many, format!("n{i}").as_bytes(), 0o644).unwrap();
        fs.write_at(f, 0, format!("new {i}").as_bytes()).unwrap();
    }
    let stat = fs.stat(inner).unwrap();
    assert_eq!(
        (stat.size, stat.mtime, stat.ctime),
        (21, 1_750_000_000, 1_750_000_000)
    );
    assert_ne!((fs.free_blocks(), fs.free_inodes()), free_before);
    drop(fs.into_device().unwrap());

    assert_fsck_clean(&image);
    assert_eq!(debugfs_cat(&image, "/d2moved/moved.txt"), data);
    let mut inner_bytes = vec![0; 10];
    inner_bytes.extend_from_slice(b"inner bytes");
    assert_eq!(debugfs_cat(&image, "/d2moved/inner"), inner_bytes);
    assert_eq!(debugfs_cat(&image, "/hello.txt"), pattern(1024, 2));
    let mut big_expected = pattern(3 << 20, 3);
    big_expected.truncate(200_001);
    big_expected.resize(5 << 20, 0);
    big_expected[4 << 20..(4 << 20) + 11].copy_from_slice(b"in the hole");
    assert!(
        debugfs_cat(&image, "/big.bin") == big_expected,
        "big.bin after truncate and write"
    );
    assert_eq!(debugfs_cat(&image, "/many/n7"), b"new 7");
    assert_eq!(
        debugfs_cat(&image, "/many/file-with-a-longish-name-0001"),
        b"1"
    );
    assert_eq!(
        debugfs_names(&image, "/")
            .iter()
            .filter(|n| !n.starts_with('.'))
            .count(),
        7
    );
    assert!(!debugfs_names(&image, "/").contains(&"d1".to_owned()));
    assert!(debugfs_names(&image, "/many").contains(&"n39".to_owned()));
    assert!(!debugfs_names(&image, "/many").contains(&"file-with-a-longish-name-0003".to_owned()));

    // Our own reading agrees after a remount.
    let mut fs = mount(&image);
    let moved = fs.lookup_path("/d2moved/moved.txt").unwrap();
    let mut buf = vec![0; data.len()];
    fs.read_at(moved, 0, &mut buf).unwrap();
    assert!(buf == data);
}

#[test]
fn writes_renames_and_removals_are_fsck_clean_1k() {
    writes_are_fsck_clean(1024);
}

#[test]
fn writes_renames_and_removals_are_fsck_clean_4k() {
    writes_are_fsck_clean(4096);
}

#[test]
fn triple_indirect_sparse_file_round_trips_1k() {
    let scratch = Scratch::new("triple");
    let image = scratch.join("img");
    mke2fs(&image, 1024, 8 << 10, None, &[]);
    let mut fs = mount(&image);
    let free = fs.free_blocks();
    let file = fs.create(ROOT_INO, b"huge", 0o644).unwrap();
    // With 1 KiB blocks, 12 + 256 + 65536 blocks (64.26 MiB) are mapped
    // without the triple-indirect block; 70 MiB needs it.
    let offset = 70u64 << 20;
    let data = pattern(1024, 7);
    fs.write_at(file, offset, &data).unwrap();
    let block = fs.block_map(file, offset / 1024).unwrap();
    assert!(block.is_some());
    assert_eq!(
        fs.free_blocks(),
        free - 4,
        "data + triple, double and single indirect blocks"
    );
    assert_eq!(fs.stat(file).unwrap().size, offset + 1024);
    let mut hole = vec![1; 4096];
    fs.read_at(file, 60 << 20, &mut hole).unwrap();
    assert!(hole.iter().all(|&b| b == 0));
    drop(fs.into_device().unwrap());
    assert_fsck_clean(&image);
    let cat = debugfs_cat(&image, "/huge");
    assert_eq!(cat.len() as u64, offset + 1024);
    assert!(cat[offset as usize..] == data[..]);
    assert!(cat[..offset as usize].iter().all(|&b| b == 0));

    let mut fs = mount(&image);
    fs.truncate(file, 100).unwrap();
    assert_eq!(
        fs.free_blocks(),
        free,
        "shrinking freed the indirect blocks too"
    );
    fs.truncate(file, 0).unwrap();
    fs.unlink(ROOT_INO, b"huge").unwrap();
    drop(fs.into_device().unwrap());
    assert_fsck_clean(&image);
}

#[test]
fn large_file_past_4_gib_sets_large_file_and_is_fsck_clean_4k() {
    let scratch = Scratch::new("large");
    let image = scratch.join("img");
    mke2fs(&image, 4096, 8 << 10, None, &["-O", "^large_file"]);
    let mut fs = mount(&image);
    let file = fs.create(ROOT_INO, b"big", 0o644).unwrap();
    let offset = (5u64 << 30) + 123;
    fs.write_at(file, offset, b"past four GiB").unwrap();
    let mut buf = [0; 13];
    fs.read_at(file, offset, &mut buf).unwrap();
    assert_eq!(&buf, b"past four GiB");
    drop(fs.into_device().unwrap());
    assert_fsck_clean(&image);
    assert!(debugfs_stat(&image, "/big").contains(&format!("Size: {}", offset + 13)));
}

#[test]
fn running_out_of_space_gives_no_space_and_stays_fsck_clean() {
    let scratch = Scratch::new("full");
    let image = scratch.join("img");
    mke2fs(&image, 1024, 1024, None, &[]);
    let mut fs = mount(&image);
    let file = fs.create(ROOT_INO, b"fill", 0o644).unwrap();
    let chunk = pattern(50_000, 9);
    let mut written = Vec::new();
    let error = loop {
        match fs.write_at(file, written.len() as u64, &chunk) {
            Ok(n) => written.extend_from_slice(&chunk[..n]),
            Err(error) => break error,
        }
    };
    assert_eq!(error, Ext2Error::NoSpace);
    assert_eq!(fs.free_blocks(), 0);
    assert_eq!(fs.stat(file).unwrap().size, written.len() as u64);
    let before = fs.free_inodes();
    assert_eq!(fs.mkdir(ROOT_INO, b"nodir", 0o755), Err(Ext2Error::NoSpace));
    assert_eq!(fs.free_inodes(), before, "a failed mkdir changes nothing");
    drop(fs.into_device().unwrap());
    assert_fsck_clean(&image);
    assert!(debugfs_cat(&image, "/fill") == written);

    let mut fs = mount(&image);
    fs.unlink(ROOT_INO, b"fill").unwrap();
    fs.mkdir(ROOT_INO, b"now", 0o755).unwrap();
    drop(fs.into_device().unwrap());
    assert_fsck_clean(&image);
}

#[test]
fn page_helpers_zero_past_the_end_and_never_extend() {
    let scratch = Scratch::new("pages");
    let image = scratch.join("img");
    mke2fs(&image, 1024, 4096, None, &[]);
    let mut fs = mount(&image);
    let file = fs.create(ROOT_INO, b"p", 0o644).unwrap();
    fs.write_at(file, 0, &pattern(5000, 11)).unwrap();
    let mut pages = vec![0xFF; 2 * PAGE_SIZE];
    fs.read_pages(file, 0, &mut pages).unwrap();
    assert!(pages[..5000] == pattern(5000, 11)[..]);
    assert!(pages[5000..].iter().all(|&b| b == 0));
    fs.write_pages(file, 0, &vec![7; 2 * PAGE_SIZE]).unwrap();
    assert_eq!(fs.stat(file).unwrap().size, 5000);
    assert_eq!(
        fs.read_pages(file, 0, &mut [0; 100]),
        Err(Ext2Error::InvalidArgument)
    );
    drop(fs.into_device().unwrap());
    assert_fsck_clean(&image);
    assert_eq!(debugfs_cat(&image, "/p"), vec![7; 5000]);
}

#[test]
fn mount_refuses_bad_magic_and_unknown_incompat_features() {
    let scratch = Scratch::new("mount");
    let image = scratch.join("img");
    mke2fs(&image, 1024, 1024, None, &[]);
    let bytes = fs::read(&image).unwrap();
    let mut bad = bytes.clone();
    bad[1024 + 56] = 0;
    assert!(matches!(
        Ext2::mount(MemDevice::new(bad), false),
        Err(Ext2Error::Corrupt(_))
    ));
    let mut extents = bytes.clone();
    extents[1024 + 96] |= 0x40;
    assert_eq!(
        Ext2::mount(MemDevice::new(extents), false).err(),
        Some(Ext2Error::Unsupported(
            "incompatible feature extents (ext4)"
        ))
    );
    let mut unknown_ro = bytes.clone();
    unknown_ro[1024 + 103] |= 0x80;
    let mut fs = Ext2::mount(MemDevice::new(unknown_ro), false).unwrap();
    assert!(fs.is_read_only());
    assert_eq!(fs.create(ROOT_INO, b"f", 0o644), Err(Ext2Error::ReadOnly));
    assert_eq!(fs.read_dir(ROOT_INO).unwrap().len(), 3);
    let mut huge_block = bytes;
    huge_block[1024 + 24] = 3;
    assert!(Ext2::mount(MemDevice::new(huge_block), false).is_err());
}

#[test]
fn an_ext4_image_is_refused_by_name() {
    let scratch = Scratch::new("ext4");
    let image = scratch.join("img");
    let output = std::process::Command::new(tool("mke2fs"))
        .args(["-q", "-F", "-t", "ext4"])
        .arg(&image)
        .arg("4096k")
        .output()
        .unwrap();
    assert!(output.status.success());
    let error = Ext2::mount(FileDevice::open(&image), false).err().unwrap();
    assert!(
        matches!(error, Ext2Error::Unsupported(name) if name.starts_with("incompatible feature")),
        "{error}"
    );
}

#[test]
fn names_are_checked() {
    let scratch = Scratch::new("names");
    let image = scratch.join("img");
    mke2fs(&image, 1024, 1024, None, &[]);
    let mut fs = mount(&image);
    assert_eq!(
        fs.create(ROOT_INO, &[b'x'; 256], 0o644),
        Err(Ext2Error::NameTooLong)
    );
    assert_eq!(
        fs.create(ROOT_INO, b"a/b", 0o644),
        Err(Ext2Error::InvalidArgument)
    );
    assert_eq!(
        fs.mkdir(ROOT_INO, b"..", 0o755),
        Err(Ext2Error::InvalidArgument)
    );
    let max = fs.create(ROOT_INO, &[b'y'; 255], 0o644).unwrap();
    assert_eq!(fs.lookup(ROOT_INO, &[b'y'; 255]).unwrap(), max);
    let file = fs.lookup_path("/lost+found").unwrap();
    assert_eq!(fs.read_at(file, 0, &mut [0; 4]), Err(Ext2Error::IsDir));
    assert_eq!(fs.lookup(max, b"x"), Err(Ext2Error::NotDir));
    drop(fs.into_device().unwrap());
    assert_fsck_clean(&image);
}

#[test]
fn unlinking_special_files_frees_no_blocks() {
    let scratch = Scratch::new("special");
    let source = scratch.join("src");
    fs::create_dir(&source).unwrap();
    // A slow symbolic link (its target does not fit in the inode).
    std::os::unix::fs::symlink("t".repeat(200), source.join("long-link")).unwrap();
    std::os::unix::fs::symlink("short", source.join("short-link")).unwrap();
    let image = scratch.join("img");
    mke2fs(&image, 1024, 2048, Some(&source), &[]);
    // A character device whose block array holds the device number 1:3.
    let made = std::process::Command::new(tool("debugfs"))
        .args(["-w", "-R", "mknod null c 1 3"])
        .arg(&image)
        .output()
        .unwrap();
    assert!(made.status.success());
    let mut fs = mount(&image);
    let null = fs.lookup_path("/null").unwrap();
    assert_eq!(fs.stat(null).unwrap().file_type, FileType::CharDevice);
    let free = fs.free_blocks();
    fs.unlink(ROOT_INO, b"null").unwrap();
    fs.unlink(ROOT_INO, b"short-link").unwrap();
    assert_eq!(
        fs.free_blocks(),
        free,
        "no block freed for a device or a short link"
    );
    fs.unlink(ROOT_INO, b"long-link").unwrap();
    assert_eq!(fs.free_blocks(), free + 1, "the long link's block is freed");
    drop(fs.into_device().unwrap());
    assert_fsck_clean(&image);
}

/// A device that counts read requests.
struct CountingDevice {
    inner: MemDevice,
    reads: usize,
}

impl neoos_ext2::BlockDevice for CountingDevice {
    fn sector_count(&self) -> u64 {
        self.inner.sector_count()
    }
    fn read_sectors(&mut self, first: u64, buf: &mut [u8]) -> Result<(), neoos_ext2::DeviceError> {
        self.reads += 1;
        self.inner.read_sectors(first, buf)
    }
    fn write_sectors(&mut self, first: u64, data: &[u8]) -> Result<(), neoos_ext2::DeviceError> {
        self.inner.write_sectors(first, data)
    }
    fn flush(&mut self) -> Result<(), neoos_ext2::DeviceError> {
        Ok(())
    }
}

#[test]
fn reading_a_contiguous_file_takes_few_device_requests() {
    let scratch = Scratch::new("requests");
    let source = scratch.join("src");
    fs::create_dir(&source).unwrap();
    let data = pattern(3 << 20, 21);
    fs::write(source.join("big"), &data).unwrap();
    let image = scratch.join("img");
    mke2fs(&image, 1024, 8 << 10, Some(&source), &[]);
    let device = CountingDevice {
        inner: MemDevice::new(fs::read(&image).unwrap()),
        reads: 0,
    };
    let mut fs = Ext2::mount(device, true).unwrap();
    let big = fs.lookup_path("/big").unwrap();
    let mut buf = vec![0; data.len()];
    let before = fs.into_device().unwrap();
    let reads_before = before.reads;
    let mut fs = Ext2::mount(before, true).unwrap();
    fs.read_at(big, 0, &mut buf).unwrap();
    assert!(buf == data);
    let reads = fs.into_device().unwrap().reads - reads_before;
    // 3072 data blocks: merged into runs between indirect blocks, and each
    // of the 14 indirect blocks read once (plus mount and inode reads).
    assert!(
        reads < 100,
        "{reads} device reads for a 3 MiB contiguous file"
    );
}
