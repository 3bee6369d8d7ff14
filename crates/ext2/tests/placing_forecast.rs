//! The forecast of what placing (or locating) runs of a file reads
//! (`Ext2::blocks_to_place`, `Ext2::blocks_to_locate`), against
//! e2fsprogs: a sparse file written in scattered runs on a volume just
//! mounted (nothing cached) needs its inode's block, indirect blocks and,
//! for its holes, the allocator's bitmap, group descriptor and superblock
//! blocks; once the forecast's blocks are read into the cache (as the
//! kernel reads them, without the file system), placing reads nothing,
//! and with metadata writes deferred it writes nothing either until the
//! deferred writes are started. An image taken after the data writes and
//! before the metadata writes (a power cut there) is clean, the file still
//! sparse; after them every byte reads back.

mod common;

use common::*;
use neoos_ext2::{BlockDevice, DeviceError, Ext2, MemDevice, PAGE_SIZE, ROOT_INO, SECTOR_SIZE};
use std::fs;
use std::path::Path;

/// A memory device that counts reads and writes.
struct CountingDevice {
    inner: MemDevice,
    reads: u64,
    writes: u64,
}

impl BlockDevice for CountingDevice {
    fn sector_count(&self) -> u64 {
        self.inner.sector_count()
    }
    fn read_sectors(&mut self, first: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.reads += 1;
        self.inner.read_sectors(first, buf)
    }
    fn write_sectors(&mut self, first: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.writes += 1;
        self.inner.write_sectors(first, data)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }
}

fn mounted(image: &Path) -> Ext2<CountingDevice> {
    let device = CountingDevice {
        inner: MemDevice::new(fs::read(image).unwrap()),
        reads: 0,
        writes: 0,
    };
    let mut fs = Ext2::mount(device, false).unwrap();
    fs.set_time(3_000);
    fs
}

fn snapshot(fs: &Ext2<CountingDevice>, image: &Path) {
    fs::write(image, fs.device().inner.bytes()).unwrap();
}

/// Reads `blocks` from the device without the file system and caches
/// them (the kernel's way); the forecast's rounds until it lists nothing
/// (at most 8).
fn read_forecast(
    fs: &mut Ext2<CountingDevice>,
    mut forecast: impl FnMut(&mut Ext2<CountingDevice>) -> Vec<u32>,
) -> usize {
    let size = fs.block_size() as usize;
    for round in 0..8 {
        let blocks = forecast(fs);
        if blocks.is_empty() {
            return round;
        }
        let writes = fs.metadata_writes();
        for block in blocks {
            let mut bytes = vec![0u8; size];
            let sector = fs.block_sector(block).unwrap();
            fs.device_mut().read_sectors(sector, &mut bytes).unwrap();
            assert!(
                fs.cache_read_block(block, bytes, writes),
                "block {block} cached"
            );
        }
    }
    panic!("the forecast never ended");
}

/// Pages of the scattered runs: one page every `stride`, past the direct
/// blocks, so that several indirect blocks (and a double-indirect one)
/// are needed.
fn runs(block_size: u32) -> Vec<(u64, usize)> {
    let per_indirect = u64::from(block_size / 4) * u64::from(block_size) / PAGE_SIZE as u64;
    (1..=12)
        .map(|i| (i * per_indirect / 2 + 3, 1 + (i % 3) as usize))
        .collect()
}

#[test]
fn placing_holes_reads_only_what_the_forecast_read_and_defers_its_writes() {
    for block_size in [1024u32, 4096] {
        let scratch = Scratch::new("place-forecast");
        let image = scratch.join("img");
        mke2fs(&image, block_size, 65536, None, &[]);
        let runs = runs(block_size);
        let size = (runs.last().unwrap().0 + 8) * PAGE_SIZE as u64;
        let ino = {
            let mut fs = mounted(&image);
            let ino = fs.create(ROOT_INO, b"sparse", 0o644).unwrap();
            fs.truncate(ino, size).unwrap();
            fs.flush().unwrap();
            snapshot(&fs, &image);
            ino
        };
        // Just mounted: nothing cached.
        let mut fs = mounted(&image);
        let first = fs.blocks_to_place(ino, &runs, 16);
        assert!(!first.is_empty(), "the inode's block is missing");
        let rounds = read_forecast(&mut fs, |fs| fs.blocks_to_place(ino, &runs, 16));
        assert!(rounds >= 2, "inode first, then the rest: {rounds} rounds");
        let (reads, writes) = (fs.device().reads, fs.device().writes);

        fs.defer_metadata_writes();
        let mut placing = fs.begin_placing(ino).unwrap();
        let mut data = Vec::new();
        for (i, &(page, pages)) in runs.iter().enumerate() {
            let placed = fs.place_run(&mut placing, page, pages).unwrap();
            let bytes = pattern(pages * PAGE_SIZE, i as u32 + 1);
            data.push((page, bytes.clone(), placed));
        }
        fs.end_placing(placing).unwrap();
        assert!(fs.end_deferred_writes(), "allocations deferred");
        assert_eq!(
            fs.device().reads,
            reads,
            "placing read nothing ({block_size})"
        );
        assert_eq!(
            fs.device().writes,
            writes,
            "placing wrote nothing ({block_size})"
        );
        assert!(fs.dirty_metadata_blocks() > 0);

        // The data first, as the kernel writes it; a power cut now leaves
        // the file as it was.
        for (_, bytes, placed) in &data {
            for extent in &placed.extents {
                let part = &bytes[extent.at..extent.at + extent.len];
                fs.device_mut().write_sectors(extent.sector, part).unwrap();
            }
        }
        snapshot(&fs, &image);
        assert_fsck_clean(&image);
        assert_eq!(debugfs_cat(&image, "/sparse"), vec![0; size as usize]);

        // The new indirect blocks first, alone: a cut after them leaves
        // the file as it was too.
        let dirty = fs.dirty_metadata_blocks();
        let (written, result) = fs.start_metadata_writes_queued();
        result.unwrap();
        assert!(
            written.more(),
            "the others wait for the new indirect blocks"
        );
        fs.end_metadata_writes(written, true);
        let fresh = dirty - fs.dirty_metadata_blocks();
        assert!(fresh >= 2 && fresh < dirty, "{fresh} of {dirty} first");
        snapshot(&fs, &image);
        assert_fsck_clean(&image);
        assert_eq!(debugfs_cat(&image, "/sparse"), vec![0; size as usize]);
        loop {
            let (written, result) = fs.start_metadata_writes_queued();
            result.unwrap();
            let more = written.more();
            fs.end_metadata_writes(written, true);
            if !more {
                break;
            }
        }
        assert_eq!(fs.dirty_metadata_blocks(), 0);
        snapshot(&fs, &image);
        assert_fsck_clean(&image);
        let mut model = vec![0u8; size as usize];
        for (page, bytes, _) in &data {
            let at = *page as usize * PAGE_SIZE;
            model[at..at + bytes.len()].copy_from_slice(bytes);
        }
        assert_eq!(debugfs_cat(&image, "/sparse"), model, "{block_size}");

        // Locating the runs on a volume just mounted: the inode's block and
        // the indirect blocks, then nothing read.
        let mut fs = mounted(&image);
        for &(page, pages) in &runs {
            read_forecast(&mut fs, |fs| fs.blocks_to_locate(ino, page, pages, 16));
        }
        let reads = fs.device().reads;
        for (page, bytes, _) in &data {
            let placed = fs
                .locate_pages(ino, *page, bytes.len() / PAGE_SIZE)
                .unwrap();
            let mut read = vec![0u8; bytes.len()];
            for extent in &placed.extents {
                let sectors = extent.len / SECTOR_SIZE;
                assert!(sectors > 0);
                fs.device_mut()
                    .inner
                    .read_sectors(extent.sector, &mut read[extent.at..extent.at + extent.len])
                    .unwrap();
            }
            assert_eq!(&read, bytes);
        }
        assert_eq!(
            fs.device().reads,
            reads,
            "locating read nothing ({block_size})"
        );
    }
}

/// A forecast lists no more than asked, and nothing for runs past the end
/// of the file or for a file whose metadata is cached.
#[test]
fn the_forecast_is_bounded_and_empty_when_nothing_is_missing() {
    let scratch = Scratch::new("place-bounded");
    let image = scratch.join("img");
    mke2fs(&image, 1024, 65536, None, &[]);
    let runs = runs(1024);
    let ino = {
        let mut fs = mounted(&image);
        let ino = fs.create(ROOT_INO, b"f", 0o644).unwrap();
        fs.truncate(ino, 64 << 20).unwrap();
        fs.write_at(ino, 0, &pattern(PAGE_SIZE, 9)).unwrap();
        for &(page, _) in &runs {
            fs.write_at(ino, page * PAGE_SIZE as u64, &pattern(PAGE_SIZE, 5))
                .unwrap();
        }
        fs.flush().unwrap();
        snapshot(&fs, &image);
        ino
    };
    let mut fs = mounted(&image);
    read_forecast(&mut fs, |fs| fs.blocks_to_place(ino, &[(0, 1)], 16));
    let missing = fs.blocks_to_place(ino, &runs, 2);
    assert_eq!(missing.len(), 2, "bounded: {missing:?}");
    assert!(
        fs.blocks_to_place(ino, &[(1 << 20, 4)], 16).is_empty(),
        "past the end"
    );
    read_forecast(&mut fs, |fs| fs.blocks_to_place(ino, &runs, 16));
    assert!(fs.blocks_to_place(ino, &runs, 16).is_empty());
    assert!(fs.blocks_to_locate(ino, runs[3].0, 1, 16).is_empty());
}
