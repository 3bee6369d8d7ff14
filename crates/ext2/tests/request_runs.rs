//! Device requests of page writeback: whole blocks that lie next to each
//! other on the disk go as one device write, so a run of dirty pages costs
//! one data request (plus metadata), not one per block.

mod common;

use common::*;
use neoos_ext2::{BlockDevice, DeviceError, Ext2, MemDevice, Placement, ROOT_INO};
use std::fs;

/// A memory device that records the length of every write.
struct CountingDevice {
    inner: MemDevice,
    writes: Vec<usize>,
}

impl BlockDevice for CountingDevice {
    fn sector_count(&self) -> u64 {
        self.inner.sector_count()
    }
    fn read_sectors(&mut self, first: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.inner.read_sectors(first, buf)
    }
    fn write_sectors(&mut self, first: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.writes.push(data.len());
        self.inner.write_sectors(first, data)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        self.inner.flush()
    }
}

#[test]
fn a_run_of_pages_is_one_data_write_per_contiguous_extent() {
    for block_size in [1024u32, 4096] {
        let scratch = Scratch::new("runs");
        let image = scratch.join("img");
        mke2fs(&image, block_size, 8192, None, &[]);
        let dev = CountingDevice {
            inner: MemDevice::new(fs::read(&image).unwrap()),
            writes: Vec::new(),
        };
        let mut fs = Ext2::mount(dev, false).unwrap();
        let file = fs.create(ROOT_INO, b"f", 0o644).unwrap();
        let data = pattern(32 * 4096, 9);
        // Filled once (allocating), then rewritten page-wise as a page cache would.
        assert_eq!(fs.write_at(file, 0, &data).unwrap(), data.len());
        let mut dev = fs.into_device().unwrap();
        dev.writes.clear();
        let mut fs = Ext2::mount(dev, false).unwrap();
        fs.write_pages(file, 0, &data).unwrap();
        let dev = fs.into_device().unwrap();
        let big: Vec<usize> = dev.writes.iter().copied().filter(|&n| n > 4096).collect();
        let data_bytes: usize = big.iter().sum();
        assert_eq!(
            data_bytes,
            data.len(),
            "block size {block_size}: {:?}",
            dev.writes
        );
        assert!(
            big.len() <= 2,
            "block size {block_size}: {} data writes for 32 pages: {:?}",
            big.len(),
            dev.writes
        );
        fs::write(&image, dev.inner.bytes()).unwrap();
        assert_fsck_clean(&image);
        assert_eq!(debugfs_cat(&image, "/f"), data);
    }
}

/// Pages placed with `place_pages` and written by the caller straight to
/// the device (as the kernel does without waiting inside the file system)
/// read back, holes allocated on the way, the tail past the end zeroed by
/// the caller: e2fsck is clean and debugfs returns the bytes.
#[test]
fn placed_pages_written_to_the_device_read_back() {
    for block_size in [1024u32, 4096] {
        let scratch = Scratch::new("place");
        let image = scratch.join("img");
        mke2fs(&image, block_size, 8192, None, &[]);
        let mut fs = Ext2::mount(MemDevice::new(fs::read(&image).unwrap()), false).unwrap();
        let file = fs.create(ROOT_INO, b"f", 0o644).unwrap();
        let size = 20 * 4096 + 100;
        fs.truncate(file, size as u64).unwrap();
        let mut expected = vec![0u8; size];
        // Scattered runs of a sparse file: every block a hole at first.
        for (first, pages) in [(0u64, 3usize), (7, 1), (12, 9)] {
            let mut run = pattern(pages * 4096, first as u32 + 1);
            let placed = fs.place_pages(file, first, pages).unwrap();
            run[placed.inside..].fill(0);
            let at = first as usize * 4096;
            let inside = placed.inside;
            expected[at..at + inside].copy_from_slice(&run[..inside]);
            for e in placed.extents {
                let data = run[e.at..e.at + e.len].to_vec();
                fs.device_mut().write_sectors(e.sector, &data).unwrap();
            }
        }
        assert_eq!(fs.place_pages(file, 30, 1).unwrap().extents, vec![]);
        let mut back = vec![0u8; 21 * 4096];
        fs.read_pages(file, 0, &mut back).unwrap();
        assert_eq!(&back[..size], &expected[..], "block size {block_size}");
        fs::write(&image, fs.into_device().unwrap().into_bytes()).unwrap();
        assert_fsck_clean(&image);
        assert_eq!(debugfs_cat(&image, "/f"), expected);
    }
}

/// Pages located with `locate_pages` and read by the caller straight from
/// the device (as the kernel does without waiting inside the file system)
/// give what `read_pages` gives: holes have no extent and read as zeros,
/// adjacent blocks come as one extent, nothing past the end is named, and
/// nothing is written.
#[test]
fn located_pages_read_from_the_device_give_the_file() {
    for block_size in [1024u32, 4096] {
        let scratch = Scratch::new("locate");
        let image = scratch.join("img");
        mke2fs(&image, block_size, 8192, None, &[]);
        let mut fs = Ext2::mount(MemDevice::new(fs::read(&image).unwrap()), false).unwrap();
        let file = fs.create(ROOT_INO, b"f", 0o644).unwrap();
        let size = 20 * 4096 + 100;
        fs.truncate(file, size as u64).unwrap();
        fs.write_at(file, 0, &pattern(3 * 4096, 1)).unwrap();
        fs.write_at(file, 12 * 4096, &pattern(8 * 4096, 2)).unwrap();
        fs.flush().unwrap();
        let before = fs.device().bytes().to_vec();
        let placed = fs.locate_pages(file, 0, 24).unwrap();
        assert_eq!(placed.inside, size);
        let hole_pages = 3 * 4096..12 * 4096;
        assert!(placed
            .extents
            .iter()
            .all(|e| e.at + e.len <= hole_pages.start || e.at >= hole_pages.end));
        assert!(placed.extents.len() <= 4, "{:?}", placed.extents);
        let mut run = vec![0u8; 24 * 4096];
        for e in &placed.extents {
            fs.device_mut()
                .read_sectors(e.sector, &mut run[e.at..e.at + e.len])
                .unwrap();
        }
        run[placed.inside..].fill(0);
        let mut want = vec![0u8; 24 * 4096];
        fs.read_pages(file, 0, &mut want).unwrap();
        assert_eq!(run, want, "block size {block_size}");
        assert_eq!(fs.locate_pages(file, 30, 1).unwrap(), Placement::default());
        assert_eq!(fs.device().bytes(), &before[..], "nothing written");
    }
}

/// Runs that cross the map's levels and its indirect blocks (1 KiB blocks:
/// direct to 12, single indirect to 268, then one indirect block per 256
/// blocks under the double indirect), over a sparse file whose holes
/// include whole indirect blocks: `locate_pages` names exactly the blocks
/// `read_pages` reads, and `place_pages` allocates the holes on the way
/// (the indirect blocks among them) so that the written runs read back,
/// e2fsck clean.
#[test]
fn runs_across_indirect_blocks_locate_and_place_every_block() {
    let scratch = Scratch::new("levels");
    let image = scratch.join("img");
    mke2fs(&image, 1024, 8192, None, &[]);
    let mut fs = Ext2::mount(MemDevice::new(fs::read(&image).unwrap()), false).unwrap();
    let file = fs.create(ROOT_INO, b"f", 0o644).unwrap();
    let size = 200 * 4096;
    fs.truncate(file, size as u64).unwrap();
    let mut expected = vec![0u8; size];
    // Page 2 is direct, pages 60-66 single indirect, 70-72 and 128-132
    // (blocks 512-531: two indirect blocks) double indirect; the
    // double-indirect range between and past them is holes.
    for (first, pages, seed) in [(2usize, 1usize, 1u32), (60, 7, 2), (70, 3, 3), (128, 5, 4)] {
        let bytes = pattern(pages * 4096, seed);
        fs.write_at(file, (first * 4096) as u64, &bytes).unwrap();
        expected[first * 4096..(first + pages) * 4096].copy_from_slice(&bytes);
    }
    fs.flush().unwrap();
    let located = |fs: &mut Ext2<MemDevice>, first: u64, pages: usize| {
        let placed = fs.locate_pages(file, first, pages).unwrap();
        let mut run = vec![0u8; pages * 4096];
        for e in &placed.extents {
            fs.device_mut()
                .read_sectors(e.sector, &mut run[e.at..e.at + e.len])
                .unwrap();
        }
        run
    };
    let at = |first: usize, pages: usize| first * 4096..(first + pages) * 4096;
    assert_eq!(located(&mut fs, 0, 200), expected, "located before placing");
    // Placed: a run from the direct blocks over the single indirect and
    // into the double indirect's first indirect block, one from a hole
    // into the allocated pages over the next indirect block, and one from
    // that indirect block into one that does not exist yet (blocks
    // 760-799: the indirect block of 780 on is allocated mid-run).
    for (first, pages, seed) in [(1usize, 75usize, 5u32), (120, 20, 6), (190, 10, 7)] {
        let run = pattern(pages * 4096, seed);
        let placed = fs.place_pages(file, first as u64, pages).unwrap();
        assert_eq!(placed.inside, pages * 4096);
        let covered: usize = placed.extents.iter().map(|e| e.len).sum();
        assert_eq!(covered, pages * 4096, "every block of run {first} placed");
        for e in placed.extents {
            fs.device_mut()
                .write_sectors(e.sector, &run[e.at..e.at + e.len])
                .unwrap();
        }
        expected[at(first, pages)].copy_from_slice(&run);
    }
    assert_eq!(located(&mut fs, 0, 200), expected, "located after placing");
    let mut back = vec![0u8; size];
    fs.read_pages(file, 0, &mut back).unwrap();
    assert_eq!(back, expected, "read back");
    fs::write(&image, fs.into_device().unwrap().into_bytes()).unwrap();
    assert_fsck_clean(&image);
    assert_eq!(debugfs_cat(&image, "/f"), expected);
}

/// Several runs of one file placed under one `Placing` (the inode read
/// once, stored once at the end, the indirect block shared by runs kept)
/// name the blocks separate `place_pages` calls would and allocate the
/// same holes: on two copies of one image, the runs written to each read
/// back alike, e2fsck clean; a run past the end places nothing; the
/// file's modification time is set once something was placed.
#[test]
fn runs_placed_under_one_placing_match_separate_placements() {
    let scratch = Scratch::new("placing");
    let image = scratch.join("img");
    mke2fs(&image, 1024, 8192, None, &[]);
    let mut base = Ext2::mount(MemDevice::new(fs::read(&image).unwrap()), false).unwrap();
    let file = base.create(ROOT_INO, b"f", 0o644).unwrap();
    base.truncate(file, 200 * 4096).unwrap();
    base.write_at(file, 60 * 4096, &pattern(7 * 4096, 1))
        .unwrap();
    base.write_at(file, 128 * 4096, &pattern(5 * 4096, 2))
        .unwrap();
    let bytes = base.into_device().unwrap().into_bytes();
    // Every 9th page from 1 (direct, single, double indirect; holes and
    // written pages), pairs from 126 over an indirect block's end, and one
    // past the end of the file.
    let runs: Vec<(u64, usize)> = (1..200)
        .step_by(9)
        .map(|p| (p, 1))
        .chain([(126, 2), (130, 3), (205, 1)])
        .collect();
    let mut separate = Ext2::mount(MemDevice::new(bytes.clone()), false).unwrap();
    let mut together = Ext2::mount(MemDevice::new(bytes), false).unwrap();
    together.set_time(1_000_000);
    let mut placing = together.begin_placing(file).unwrap();
    for (n, &(first, pages)) in runs.iter().enumerate() {
        let run = pattern(pages * 4096, 10 + n as u32);
        let one = separate.place_pages(file, first, pages).unwrap();
        let many = together.place_run(&mut placing, first, pages).unwrap();
        assert_eq!(one.inside, many.inside, "run at {first}");
        for (fs, placed) in [(&mut separate, one), (&mut together, many)] {
            for e in placed.extents {
                fs.device_mut()
                    .write_sectors(e.sector, &run[e.at..e.at + e.len])
                    .unwrap();
            }
        }
    }
    together.end_placing(placing).unwrap();
    assert_eq!(together.stat(file).unwrap().mtime, 1_000_000);
    let mut a = vec![0u8; 200 * 4096];
    let mut b = vec![0u8; 200 * 4096];
    separate.read_pages(file, 0, &mut a).unwrap();
    together.read_pages(file, 0, &mut b).unwrap();
    assert!(a == b, "the same bytes either way");
    assert_eq!(
        separate.stat(file).unwrap().sectors,
        together.stat(file).unwrap().sectors,
        "the same blocks allocated"
    );
    for (name, fs) in [("separate", separate), ("together", together)] {
        let out = scratch.join(name);
        fs::write(&out, fs.into_device().unwrap().into_bytes()).unwrap();
        assert_fsck_clean(&out);
        assert_eq!(debugfs_cat(&out, "/f"), b, "{name}");
    }
}
