//! The metadata block cache and the deferred inode times, against
//! e2fsprogs: writing runs of a file whose metadata is cached reads nothing
//! and writes only the data until the flush (which writes the inode once);
//! an image taken at any point between calls (a power cut) is clean to
//! `e2fsck -fn` and reads back every byte written, only the times of files
//! written since the last flush being old.

mod common;

use common::*;
use neoos_ext2::{BlockDevice, Change, DeviceError, Ext2, MemDevice, PAGE_SIZE, ROOT_INO};
use std::fs;
use std::path::Path;

/// A memory device that counts reads, writes and flushes.
#[derive(Default)]
struct CountingDevice {
    inner: Option<MemDevice>,
    reads: u64,
    writes: u64,
    flushes: u64,
}

impl CountingDevice {
    fn over(bytes: Vec<u8>) -> Self {
        CountingDevice {
            inner: Some(MemDevice::new(bytes)),
            ..Default::default()
        }
    }
    fn mem(&self) -> &MemDevice {
        self.inner.as_ref().unwrap()
    }
    fn counts(&self) -> (u64, u64, u64) {
        (self.reads, self.writes, self.flushes)
    }
}

impl BlockDevice for CountingDevice {
    fn sector_count(&self) -> u64 {
        self.mem().sector_count()
    }
    fn read_sectors(&mut self, first: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.reads += 1;
        self.inner.as_mut().unwrap().read_sectors(first, buf)
    }
    fn write_sectors(&mut self, first: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.writes += 1;
        self.inner.as_mut().unwrap().write_sectors(first, data)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        self.flushes += 1;
        Ok(())
    }
}

/// The device's bytes as an image file (what a power cut leaves).
fn snapshot(fs: &Ext2<CountingDevice>, image: &Path) {
    fs::write(image, fs.device().mem().bytes()).unwrap();
}

fn mtime_of(image: &Path, path: &str) -> String {
    let stat = debugfs_stat(image, path);
    let line = stat.lines().find(|l| l.contains("mtime:")).unwrap();
    line.trim().to_string()
}

#[test]
fn runs_of_a_cached_file_read_nothing_and_write_the_inode_once_at_the_flush() {
    for block_size in [1024u32, 4096] {
        let scratch = Scratch::new("meta-runs");
        let image = scratch.join("img");
        mke2fs(&image, block_size, 16384, None, &[]);
        let mut fs = Ext2::mount(CountingDevice::over(fs::read(&image).unwrap()), false).unwrap();
        fs.set_time(1_000);
        // 300 pages: past the single-indirect range of 1 KiB blocks and
        // well into that of 4 KiB ones.
        const PAGES: u64 = 300;
        let file = fs.create(ROOT_INO, b"f", 0o644).unwrap();
        let mut model = pattern(PAGES as usize * PAGE_SIZE, 3);
        assert_eq!(fs.write_at(file, 0, &model).unwrap(), model.len());
        fs.flush().unwrap();
        // Warm: one page at each place the runs will touch.
        for page in (0..PAGES).step_by(7) {
            let at = page as usize * PAGE_SIZE;
            fs.write_pages(file, page, &model[at..at + PAGE_SIZE])
                .unwrap();
        }
        fs.flush().unwrap();
        fs.set_time(2_000);
        let before = fs.device().counts();
        let mut runs = 0;
        for page in (0..PAGES).step_by(7) {
            let at = page as usize * PAGE_SIZE;
            model[at..at + PAGE_SIZE].fill(page as u8);
            fs.write_pages(file, page, &model[at..at + PAGE_SIZE])
                .unwrap();
            runs += 1;
        }
        let after_runs = fs.device().counts();
        assert_eq!(after_runs.0, before.0, "block size {block_size}: no reads");
        assert_eq!(
            after_runs.1 - before.1,
            runs,
            "block size {block_size}: data writes only"
        );
        assert_eq!(after_runs.2, before.2, "no flush before the sync");
        snapshot(&fs, &image);
        assert_fsck_clean(&image);
        assert_eq!(
            debugfs_cat(&image, "/f"),
            model,
            "the data is readable before the flush"
        );
        assert!(
            mtime_of(&image, "/f").contains("0x000003e8"),
            "the time waits for the flush"
        );
        fs.flush().unwrap();
        let after_flush = fs.device().counts();
        assert_eq!(after_flush.0, before.0);
        assert_eq!(after_flush.1 - after_runs.1, 1, "the inode, once");
        assert_eq!(after_flush.2 - after_runs.2, 1);
        snapshot(&fs, &image);
        assert_fsck_clean(&image);
        assert!(mtime_of(&image, "/f").contains("0x000007d0"));
        assert_eq!(fs.stat(file).unwrap().mtime, 2_000);
    }
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Random page writes, byte writes, truncations, unlinks and creations of
/// a few files, with flushes at random points and images taken at random
/// points between calls: every image is clean to `e2fsck -fn` and holds
/// the model's bytes (nothing the cache keeps back is needed to read the
/// data); after a flush the times are on the disk too.
#[test]
fn images_taken_between_random_calls_are_clean_and_hold_the_data() {
    for (block_size, seed) in [(1024u32, 0x9e37_79b9u64), (4096, 0x1234_5678_9abc)] {
        let scratch = Scratch::new("meta-random");
        let image = scratch.join("img");
        mke2fs(&image, block_size, 8192, None, &[]);
        let mut fs = Ext2::mount(CountingDevice::over(fs::read(&image).unwrap()), false).unwrap();
        let mut rng = Rng(seed);
        let names: [&[u8]; 3] = [b"a", b"b", b"c"];
        let mut model: Vec<Option<(u32, Vec<u8>)>> = vec![None, None, None];
        for step in 0..300u32 {
            fs.set_time(10_000 + step);
            let which = rng.below(3) as usize;
            let name = names[which];
            match (&mut model[which], rng.below(8)) {
                (None, _) => {
                    let ino = fs.create(ROOT_INO, name, 0o644).unwrap();
                    model[which] = Some((ino, Vec::new()));
                }
                (Some((ino, bytes)), 0..=2) if !bytes.is_empty() => {
                    let pages = bytes.len().div_ceil(PAGE_SIZE) as u64;
                    let first = rng.below(pages);
                    let count = 1 + rng.below(pages - first).min(3);
                    let at = first as usize * PAGE_SIZE;
                    let end = (at + count as usize * PAGE_SIZE).min(bytes.len());
                    let mut data = vec![0u8; count as usize * PAGE_SIZE];
                    for (i, b) in data.iter_mut().enumerate() {
                        *b = (i as u64 + step as u64 * 13) as u8;
                    }
                    bytes[at..end].copy_from_slice(&data[..end - at]);
                    fs.write_pages(*ino, first, &data).unwrap();
                }
                (Some((ino, bytes)), 3..=4) => {
                    let at = rng.below((bytes.len() as u64).min(400_000) + 20_000) as usize;
                    let len = 1 + rng.below(30_000) as usize;
                    let data = pattern(len, step);
                    if bytes.len() < at + len {
                        bytes.resize(at + len, 0);
                    }
                    bytes[at..at + len].copy_from_slice(&data);
                    assert_eq!(fs.write_at(*ino, at as u64, &data).unwrap(), len);
                }
                (Some((ino, bytes)), 5) => {
                    let size = rng.below(bytes.len() as u64 + 1) as usize;
                    bytes.truncate(size);
                    fs.truncate(*ino, size as u64).unwrap();
                }
                (Some(_), 6) => {
                    fs.unlink(ROOT_INO, name).unwrap();
                    model[which] = None;
                }
                _ => fs.flush().unwrap(),
            }
            if rng.below(25) == 0 {
                snapshot(&fs, &image);
                assert_fsck_clean(&image);
                for (name, entry) in names.iter().zip(&model) {
                    if let Some((_, bytes)) = entry {
                        let path = format!("/{}", std::str::from_utf8(name).unwrap());
                        assert_eq!(&debugfs_cat(&image, &path), bytes, "step {step} {path}");
                    }
                }
            }
        }
        fs.flush().unwrap();
        snapshot(&fs, &image);
        assert_fsck_clean(&image);
        for (name, entry) in names.iter().zip(&model) {
            if let Some((ino, bytes)) = entry {
                let path = format!("/{}", std::str::from_utf8(name).unwrap());
                assert_eq!(&debugfs_cat(&image, &path), bytes);
                let on_disk = mtime_of(&image, &path);
                let mtime = fs.stat(*ino).unwrap().mtime;
                assert!(
                    on_disk.contains(&format!("{mtime:#010x}")),
                    "{on_disk} vs {mtime}"
                );
            }
        }
    }
}

/// Reads `blocks` the way the kernel does for a namespace call (from the
/// device, without the file system) and gives them to the cache as read
/// when the file system had made `writes` metadata writes.
fn read_into_cache(fs: &mut Ext2<CountingDevice>, blocks: &[u32], writes: u64) -> usize {
    let size = fs.block_size() as usize;
    let mut cached = 0;
    for &block in blocks {
        let mut bytes = vec![0u8; size];
        let sector = fs.block_sector(block).unwrap();
        fs.device_mut().read_sectors(sector, &mut bytes).unwrap();
        cached += usize::from(fs.cache_read_block(block, bytes, writes));
    }
    cached
}

/// A walk that may not read finds the blocks a path's lookups need, level
/// by level; once they are cached the lookups, listing and creation that
/// follow read nothing from the device, and the image stays clean. A block
/// read before a metadata write is not cached after it.
#[test]
fn blocks_to_read_lists_a_walks_missing_blocks_and_once_cached_the_calls_read_nothing() {
    let scratch = Scratch::new("meta-walk");
    let tree = scratch.join("tree");
    fs::create_dir_all(tree.join("a/b")).unwrap();
    for i in 0..40 {
        fs::write(tree.join(format!("a/b/file-with-a-long-name-{i:03}")), b"x").unwrap();
    }
    let image = scratch.join("img");
    mke2fs(&image, 1024, 4096, Some(&tree), &[]);
    let mut fs = Ext2::mount(CountingDevice::over(fs::read(&image).unwrap()), false).unwrap();
    let mut rounds = 0;
    loop {
        let before = fs.device().counts();
        let missing = fs.blocks_to_read("/a/b/new", 16);
        assert_eq!(fs.device().counts(), before, "the walk reads nothing");
        if missing.is_empty() {
            break;
        }
        let writes = fs.metadata_writes();
        assert_eq!(read_into_cache(&mut fs, &missing, writes), missing.len());
        rounds += 1;
        assert!(rounds < 8, "each round caches a level: {missing:?}");
    }
    assert!(rounds >= 3, "the root, a, then b's blocks: {rounds} rounds");
    let before = fs.device().counts();
    let b = fs.lookup_path("/a/b").unwrap();
    assert_eq!(fs.read_dir(b).unwrap().len(), 42);
    assert!(matches!(
        fs.lookup(b, b"new"),
        Err(neoos_ext2::Ext2Error::NotFound)
    ));
    assert_eq!(fs.device().counts().0, before.0, "the lookups read nothing");
    fs.create(b, b"new", 0o644).unwrap();
    fs.flush().unwrap();
    assert!(fs.blocks_to_read("/a/b/new", 16).is_empty());
    // A block read, then a metadata write, then the read given: refused.
    let mut cold = Ext2::mount(
        CountingDevice::over(fs.device().mem().bytes().to_vec()),
        false,
    )
    .unwrap();
    let missing = cold.blocks_to_read("/a", 16);
    assert!(!missing.is_empty());
    let writes = cold.metadata_writes();
    cold.mkdir(ROOT_INO, b"c", 0o755).unwrap();
    assert_eq!(
        read_into_cache(&mut cold, &missing, writes),
        0,
        "stale: not cached"
    );
    cold.flush().unwrap();
    fs::write(&image, cold.device().mem().bytes()).unwrap();
    assert_fsck_clean(&image);
    assert!(debugfs_names(&image, "/a/b").contains(&"new".to_string()));
}

/// A directory of more blocks than a walk may read ahead is not read
/// ahead (its first blocks would be evicted by its last): the walk stops
/// there with nothing to read, and the lookup reads it itself.
#[test]
fn blocks_to_read_leaves_a_directory_larger_than_it_may_read_to_the_call() {
    let scratch = Scratch::new("meta-big-dir");
    let tree = scratch.join("tree");
    fs::create_dir_all(tree.join("big")).unwrap();
    // 1,000 entries: 36 blocks of 1 KiB, more than the 16 a walk reads.
    for i in 0..1000 {
        fs::write(
            tree.join(format!("big/a-rather-long-file-name-{i:04}")),
            b"x",
        )
        .unwrap();
    }
    let image = scratch.join("img");
    mke2fs(&image, 1024, 16384, Some(&tree), &[]);
    let mut fs = Ext2::mount(CountingDevice::over(fs::read(&image).unwrap()), false).unwrap();
    let mut rounds = 0;
    loop {
        let missing = fs.blocks_to_read("/big/a-rather-long-file-name-0999", 16);
        if missing.is_empty() {
            break;
        }
        let writes = fs.metadata_writes();
        read_into_cache(&mut fs, &missing, writes);
        rounds += 1;
        assert!(rounds < 4, "the root and big's inode only: {missing:?}");
    }
    let big = fs.lookup_path("/big").unwrap();
    let before = fs.device().counts().0;
    fs.lookup(big, b"a-rather-long-file-name-0999").unwrap();
    assert!(
        fs.device().counts().0 > before,
        "the lookup read big's blocks itself"
    );
}

/// While writes are deferred, namespace changes write nothing: the image
/// stays as it was (clean), every lookup sees the changes; the queued
/// start then writes them and the image is clean with the new tree.
#[test]
fn deferred_namespace_changes_write_nothing_until_started_and_then_leave_a_clean_image() {
    for block_size in [1024u32, 4096] {
        let scratch = Scratch::new("meta-deferred");
        let image = scratch.join("img");
        mke2fs(&image, block_size, 8192, None, &[]);
        let mut fs = Ext2::mount(CountingDevice::over(fs::read(&image).unwrap()), false).unwrap();
        fs.set_time(2_000);
        let kept = fs.create(ROOT_INO, b"kept", 0o644).unwrap();
        fs.create(ROOT_INO, b"gone", 0o644).unwrap();
        fs.create(ROOT_INO, b"moved", 0o644).unwrap();
        fs.flush().unwrap();
        let before = fs.device().counts().1;
        let synchronous = fs.synchronous_writes();

        fs.defer_metadata_writes();
        let dir = fs.mkdir(ROOT_INO, b"nueva", 0o755).unwrap();
        fs.create(dir, b"dentro", 0o644).unwrap();
        fs.unlink(ROOT_INO, b"gone").unwrap();
        fs.rename(ROOT_INO, b"moved", dir, b"movido").unwrap();
        fs.set_permissions(kept, 0o600).unwrap();
        assert!(fs.end_deferred_writes(), "changes were deferred");
        assert_eq!(fs.device().counts().1, before, "nothing written");
        assert_eq!(fs.synchronous_writes(), synchronous);
        assert!(fs.lookup_path("gone").is_err());
        assert!(fs.lookup_path("nueva/movido").is_ok());
        assert!(fs.lookup_path("nueva/dentro").is_ok());
        snapshot(&fs, &image);
        assert_fsck_clean(&image);
        assert!(debugfs_names(&image, "/").contains(&"gone".to_string()));

        let mut rounds = 0;
        loop {
            let (written, result) = fs.start_metadata_writes_queued();
            result.unwrap();
            let more = written.more();
            fs.end_metadata_writes(written, true);
            rounds += 1;
            if !more {
                break;
            }
        }
        assert_eq!(rounds, 1, "a device that writes at once has room");
        assert!(fs.device().counts().1 > before, "written once started");
        assert_eq!(fs.synchronous_writes(), synchronous, "none at once");
        snapshot(&fs, &image);
        assert_fsck_clean(&image);
        let root = debugfs_names(&image, "/");
        assert!(!root.contains(&"gone".to_string()) && root.contains(&"nueva".to_string()));
        let mut inside = debugfs_names(&image, "/nueva");
        inside.sort();
        assert!(inside.contains(&"dentro".to_string()) && inside.contains(&"movido".to_string()));
        assert!(debugfs_stat(&image, "/kept").contains("0600"));
    }
}

/// A truncate inside a block while writes are deferred zeroes the block's
/// tail in the cache, not on the disk: nothing is written until the
/// queued start writes it with the metadata; a read of the block before
/// that (the file grown again meanwhile) writes it first and reads zeros.
#[test]
fn a_deferred_truncates_zeroed_tail_is_written_with_the_metadata_or_before_a_read() {
    for block_size in [1024u32, 4096] {
        let scratch = Scratch::new("meta-tail");
        let image = scratch.join("img");
        mke2fs(&image, block_size, 8192, None, &[]);
        let mut fs = Ext2::mount(CountingDevice::over(fs::read(&image).unwrap()), false).unwrap();
        let ino = fs.create(ROOT_INO, b"datos", 0o644).unwrap();
        let data: Vec<u8> = (0..3 * block_size).map(|i| (i % 251 + 1) as u8).collect();
        fs.write_at(ino, 0, &data).unwrap();
        fs.flush().unwrap();
        let cut = u64::from(block_size) + 100;
        for read_first in [false, true] {
            fs.write_at(ino, 0, &data).unwrap();
            fs.flush().unwrap();
            let before = fs.device().counts().1;
            let synchronous = fs.synchronous_writes();
            fs.defer_metadata_writes();
            fs.truncate(ino, cut).unwrap();
            fs.truncate(ino, 2 * u64::from(block_size)).unwrap();
            assert!(fs.end_deferred_writes());
            assert_eq!(fs.device().counts().1, before, "nothing written");
            assert_eq!(fs.synchronous_writes(), synchronous);
            if !read_first {
                let (written, result) = fs.start_metadata_writes_queued();
                result.unwrap();
                fs.end_metadata_writes(written, true);
                assert_eq!(fs.synchronous_writes(), synchronous, "none at once");
            }
            let mut back = vec![0xffu8; 2 * block_size as usize];
            assert_eq!(fs.read_at(ino, 0, &mut back).unwrap(), back.len());
            assert_eq!(&back[..cut as usize], &data[..cut as usize]);
            assert!(
                back[cut as usize..].iter().all(|&b| b == 0),
                "the tail reads zeros"
            );
            if read_first {
                assert_eq!(
                    fs.synchronous_writes(),
                    synchronous + 1,
                    "the tail written before the read"
                );
            }
            fs.flush().unwrap();
            snapshot(&fs, &image);
            assert_fsck_clean(&image);
        }
    }
}

/// Reads what `change` will read, as the kernel does, until the look
/// lists nothing (at most 8 rounds): the rounds it took.
fn read_for_change(fs: &mut Ext2<CountingDevice>, change: Change) -> usize {
    for round in 0..8 {
        let reads = fs.device().counts().0;
        let missing = fs.blocks_to_change(change, 16);
        assert_eq!(fs.device().counts().0, reads, "the look read nothing");
        if missing.is_empty() {
            return round;
        }
        let writes = fs.metadata_writes();
        assert!(
            read_into_cache(fs, &missing, writes) > 0,
            "cached: {missing:?}"
        );
    }
    panic!("the look kept listing blocks");
}

/// The look at what a change will read ([`Ext2::blocks_to_change`])
/// reads nothing; once what it lists is cached, the change made with its
/// writes deferred, as the kernel makes it (a creation,
/// a new directory, a truncate inside a block of a file with indirect
/// blocks, the release of an unlinked file) reads nothing from the device,
/// and the image is clean.
#[test]
fn blocks_to_change_lists_what_a_change_reads_and_once_cached_it_reads_nothing() {
    for block_size in [1024u32, 4096] {
        let scratch = Scratch::new("meta-change");
        let image = scratch.join("img");
        mke2fs(&image, block_size, 8192, None, &[]);
        let mut fs = Ext2::mount(CountingDevice::over(fs::read(&image).unwrap()), false).unwrap();
        let dir = fs.mkdir(ROOT_INO, b"d", 0o755).unwrap();
        let big = fs.create(dir, b"big", 0o644).unwrap();
        let data: Vec<u8> = (0..40 * block_size).map(|i| (i % 251 + 1) as u8).collect();
        fs.write_at(big, 0, &data).unwrap();
        let gone = fs.create(dir, b"gone", 0o644).unwrap();
        fs.write_at(gone, 0, &data[..20 * block_size as usize])
            .unwrap();
        fs.flush().unwrap();
        let bytes = fs.into_device().unwrap().mem().bytes().to_vec();

        let mut fs = Ext2::mount(CountingDevice::over(bytes), false).unwrap();
        assert_eq!(fs.lookup_path("d/big").unwrap(), big);
        assert_eq!(fs.lookup_path("d/gone").unwrap(), gone);
        let changes = [
            Change::Create {
                dir,
                directory: false,
            },
            Change::Create {
                dir,
                directory: true,
            },
            Change::Truncate {
                ino: big,
                size: 13 * u64::from(block_size) + 7,
            },
            Change::Release { ino: gone },
        ];
        for change in changes {
            let rounds = read_for_change(&mut fs, change);
            assert!(rounds >= 1, "{change:?} had blocks to read");
            let reads_made = fs.device().counts().0;
            // As the kernel makes it: its writes deferred.
            fs.defer_metadata_writes();
            match change {
                Change::Create {
                    directory: false, ..
                } => {
                    fs.create(dir, b"nuevo", 0o644).unwrap();
                }
                Change::Create { .. } => {
                    fs.mkdir(dir, b"nueva", 0o755).unwrap();
                }
                Change::Truncate { ino, size } => fs.truncate(ino, size).unwrap(),
                Change::Release { ino } => {
                    fs.hold(ino).unwrap();
                    fs.unlink(dir, b"gone").unwrap();
                    fs.release(ino).unwrap();
                }
            }
            assert_eq!(
                fs.device().counts().0,
                reads_made,
                "{change:?} read nothing (block size {block_size})"
            );
            fs.end_deferred_writes();
            fs.flush().unwrap();
        }
        fs.flush().unwrap();
        snapshot(&fs, &image);
        assert_fsck_clean(&image);
    }
}

/// A file's block read by a caller (a truncate's last block that
/// `blocks_to_change` listed) is not cached when the block was placed for
/// a data write meanwhile: the disk may hold newer bytes than were read.
#[test]
fn a_data_block_read_before_it_was_placed_for_a_write_is_not_cached() {
    let scratch = Scratch::new("meta-placed");
    let image = scratch.join("img");
    mke2fs(&image, 4096, 8192, None, &[]);
    let mut fs = Ext2::mount(CountingDevice::over(fs::read(&image).unwrap()), false).unwrap();
    let ino = fs.create(ROOT_INO, b"datos", 0o644).unwrap();
    fs.write_at(ino, 0, &[7u8; 3 * PAGE_SIZE]).unwrap();
    fs.flush().unwrap();
    let missing = fs.blocks_to_change(Change::Truncate { ino, size: 100 }, 16);
    assert!(!missing.is_empty(), "the last block to read");
    let writes = fs.metadata_writes();
    fs.place_pages(ino, 0, 1).unwrap();
    assert_eq!(read_into_cache(&mut fs, &missing, writes), 0, "refused");
    let writes = fs.metadata_writes();
    assert!(
        read_into_cache(&mut fs, &missing, writes) > 0,
        "read again: cached"
    );
}
