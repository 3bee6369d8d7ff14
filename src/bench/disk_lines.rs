//! The benchmark's disk lines (issue 12): `mm_bench.c disk` on 64 MiB files
//! of an ext2 image made on the host (`mke2fs -t ext2 -d`, a fresh one per
//! boot), attached as the same virtio-blk device to NeoOS and to Linux. Owns
//! that image and where each file lies on it, Linux's modules for it (found
//! in the installed package through its `modules.dep`), and the device
//! requests QEMU traces (`-trace virtio_blk_handle_*`), counted per file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Measured;
use crate::{disk, initfs, Result, ToolError};

/// The benchmark's files, under `/bench` on the image (`/home/bench` in both
/// guests), one per case so that the requests touching each can be told
/// apart.
const FILES: [&str; 4] = [
    "read.dat",
    "munmap_scattered.dat",
    "msync_munmap_scattered.dat",
    "munmap_contiguous.dat",
];
/// Each file's size (mm_bench.c's BIG_FILE_LEN).
const FILE_LEN: usize = 64 << 20;
/// The image: the four files, datos.bin and room for ext2's own blocks.
const IMAGE_SIZE: &str = "320M";
/// QEMU's trace events of the guest's requests (one per virtio request, read
/// or write, before QEMU merges any).
const TRACE_EVENTS: &str = "virtio_blk_handle_*";
const WRITE_EVENT: &str = "virtio_blk_handle_write";
const READ_EVENT: &str = "virtio_blk_handle_read";
/// The sector of QEMU's trace (and virtio's).
const SECTOR_SIZE: u64 = 512;

/// The modules Linux needs for the disk, in order: the PCI transport, the
/// block driver, the crc32c that ext4 asks the crypto API for when it mounts
/// (modules.softdep: `ext4 pre: crypto-crc32c`, which crc32c_generic
/// provides), and ext4 (which serves ext2 in Debian's kernel:
/// CONFIG_EXT4_USE_FOR_EXT2); their dependencies come from modules.dep.
pub const LINUX_MODULES: [&str; 4] = ["virtio_pci", "virtio_blk", "crc32c_generic", "ext4"];
/// Where the initramfs holds the modules, and the list /init loads in order.
const MODULE_DIR: &str = "/modules";
const MODULE_LIST: &str = "/modules/load";

/// A line counted on the host: the requests of one kind touching one file,
/// divided by the calls mm_bench.c reports for its case (`<case>_calls`).
struct Counted {
    name: &'static str,
    file: &'static str,
    write: bool,
    /// The case whose calls divide the count (none: the whole count).
    per_call_of: Option<&'static str>,
}

const COUNTED: [Counted; 4] = [
    Counted {
        name: "disk_read_requests_64m",
        file: "read.dat",
        write: false,
        per_call_of: None,
    },
    Counted {
        name: "disk_requests_per_munmap_64_scattered",
        file: "munmap_scattered.dat",
        write: true,
        per_call_of: Some("disk_munmap_64_scattered"),
    },
    Counted {
        name: "disk_requests_per_msync_munmap_64_scattered",
        file: "msync_munmap_scattered.dat",
        write: true,
        per_call_of: Some("disk_msync_munmap_64_scattered"),
    },
    Counted {
        name: "disk_requests_per_munmap_64_contiguous",
        file: "munmap_contiguous.dat",
        write: true,
        per_call_of: Some("disk_munmap_64_contiguous"),
    },
];

/// A fresh image with the benchmark's files, and the sectors each holds.
pub struct BenchImage {
    pub path: PathBuf,
    /// Each file's data blocks as sorted, merged sector ranges.
    extents: BTreeMap<&'static str, Vec<Range<u64>>>,
}

impl BenchImage {
    /// Makes the image under target/neoos/disks (every page of every file
    /// non-zero: mke2fs -d leaves zero blocks out, as holes).
    pub fn create() -> Result<BenchImage> {
        let path = disk::fresh_image_path()?;
        disk::create_image_with(&path, IMAGE_SIZE, |root| {
            let dir = root.join("bench");
            std::fs::create_dir_all(&dir)?;
            let contents = file_contents();
            for file in FILES {
                std::fs::write(dir.join(file), &contents)?;
            }
            Ok(())
        })?;
        let mut extents = BTreeMap::new();
        for file in FILES {
            let blocks = disk::debugfs_request(&path, &format!("blocks /bench/{file}"))?;
            let ranges = sector_ranges(&blocks, u64::from(disk::IMAGE_BLOCK_SIZE))?;
            extents.insert(file, ranges);
        }
        Ok(BenchImage { path, extents })
    }

    /// Adds the host-counted lines to `m`, from the text of QEMU's trace.
    pub fn count_requests(&self, trace: &str, m: &mut Measured) {
        let requests = parse_trace(trace);
        for c in &COUNTED {
            let count = count_touching(&requests, &self.extents[c.file], c.write) as f64;
            let value = match c.per_call_of {
                None => Some(count),
                Some(case) => m
                    .get(&format!("{case}_calls"))
                    .filter(|&calls| calls > 0.0)
                    .map(|calls| count / calls),
            };
            if let Some(v) = value {
                m.values.push((c.name.to_string(), round2(v)));
            }
        }
    }
}

impl Drop for BenchImage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// QEMU's arguments that write the trace of the guest's requests to `file`.
pub fn trace_args(file: &Path) -> Vec<String> {
    vec![
        "-trace".into(),
        format!("enable={TRACE_EVENTS},file={}", file.display()),
    ]
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A file's bytes: page `i` filled with `i % 255 + 1`.
fn file_contents() -> Vec<u8> {
    (0..FILE_LEN)
        .map(|i| ((i / 4096) % 255 + 1) as u8)
        .collect()
}

/// The sectors of the blocks debugfs's `blocks` printed (block numbers
/// separated by white space), merged into sorted ranges.
fn sector_ranges(blocks: &str, block_size: u64) -> Result<Vec<Range<u64>>> {
    let per_block = block_size / SECTOR_SIZE;
    let mut numbers = blocks
        .split_whitespace()
        .map(|b| {
            b.parse::<u64>()
                .map_err(|_| ToolError(format!("debugfs blocks: {b:?} is not a block number")))
        })
        .collect::<Result<Vec<u64>>>()?;
    if numbers.is_empty() {
        return Err(ToolError("debugfs blocks: no block listed".into()));
    }
    numbers.sort_unstable();
    let mut ranges: Vec<Range<u64>> = Vec::new();
    for b in numbers {
        let sectors = b * per_block..(b + 1) * per_block;
        match ranges.last_mut() {
            Some(last) if last.end == sectors.start => last.end = sectors.end,
            _ => ranges.push(sectors),
        }
    }
    Ok(ranges)
}

/// One request of the guest as QEMU traced it.
#[derive(Debug, PartialEq)]
struct DeviceRequest {
    write: bool,
    sectors: Range<u64>,
}

/// The read and write requests of a trace (QEMU's log backend: one line per
/// event, `[pid@time:]virtio_blk_handle_write vdev .. req .. sector S
/// nsectors N`); other lines are skipped.
fn parse_trace(text: &str) -> Vec<DeviceRequest> {
    text.lines().filter_map(parse_trace_line).collect()
}

fn parse_trace_line(line: &str) -> Option<DeviceRequest> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let event = words.first()?;
    let write = if event.ends_with(WRITE_EVENT) {
        true
    } else if event.ends_with(READ_EVENT) {
        false
    } else {
        return None;
    };
    let field = |name: &str| -> Option<u64> {
        let at = words.iter().position(|w| *w == name)?;
        words.get(at + 1)?.parse().ok()
    };
    let first = field("sector")?;
    let count = field("nsectors")?;
    Some(DeviceRequest {
        write,
        sectors: first..first.checked_add(count)?,
    })
}

/// How many requests of the kind (`write` or read) touch `extents` (sorted,
/// disjoint): O(requests × log extents).
fn count_touching(requests: &[DeviceRequest], extents: &[Range<u64>], write: bool) -> usize {
    requests
        .iter()
        .filter(|r| r.write == write)
        .filter(|r| {
            // The first extent ending after the request's start.
            let i = extents.partition_point(|e| e.end <= r.sectors.start);
            extents.get(i).is_some_and(|e| e.start < r.sectors.end)
        })
        .count()
}

/// The modules (paths relative to the modules directory) to load for
/// `wanted` (module names), each after its dependencies, from the text of
/// `modules.dep` (`path: dependency paths`).
fn load_order(modules_dep: &str, wanted: &[&str]) -> Result<Vec<String>> {
    let mut deps: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut by_name: HashMap<String, &str> = HashMap::new();
    for line in modules_dep.lines() {
        let Some((path, rest)) = line.split_once(':') else {
            continue;
        };
        let path = path.trim();
        deps.insert(path, rest.split_whitespace().collect());
        by_name.insert(module_name(path), path);
    }
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for name in wanted {
        let path = by_name
            .get(&name.replace('-', "_"))
            .ok_or_else(|| ToolError(format!("module {name} is not in modules.dep")))?;
        visit(path, &deps, &mut seen, &mut order);
    }
    Ok(order)
}

/// Puts `path` into `order` after its dependencies (each once).
fn visit<'a>(
    path: &'a str,
    deps: &HashMap<&'a str, Vec<&'a str>>,
    seen: &mut BTreeSet<&'a str>,
    order: &mut Vec<String>,
) {
    if !seen.insert(path) {
        return;
    }
    for dep in deps.get(path).into_iter().flatten() {
        visit(dep, deps, seen, order);
    }
    order.push(path.to_string());
}

/// A module's name from its path: `kernel/fs/ext4/ext4.ko.xz` is `ext4`
/// (dashes read as underscores, as modprobe does).
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let name = file.split(".ko").next().unwrap_or(file);
    name.replace('-', "_")
}

/// A module file's contents, decompressed when it is `.ko.xz`, `.ko.zst` or
/// `.ko.gz` (finit_module takes the plain ELF file).
fn module_bytes(path: &Path) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let tool = [(".xz", "xz"), (".zst", "zstd"), (".gz", "gzip")]
        .into_iter()
        .find(|(ext, _)| name.ends_with(ext))
        .map(|(_, tool)| tool);
    let Some(tool) = tool else {
        return Ok(std::fs::read(path)?);
    };
    let out = Command::new(tool)
        .arg("-dc")
        .arg(path)
        .output()
        .map_err(|e| ToolError(format!("cannot start {tool}: {e}")))?;
    if !out.status.success() {
        return Err(ToolError(format!("{tool} -dc {name} failed")));
    }
    Ok(out.stdout)
}

/// Adds to `image` the modules of [`LINUX_MODULES`] for the kernel `release`
/// (from /lib/modules/RELEASE) and the list /init loads; returns their
/// paths under the modules directory, in load order.
pub fn add_linux_modules(image: &mut initfs::Image, release: &str) -> Result<Vec<String>> {
    let root = Path::new("/lib/modules").join(release);
    let dep = std::fs::read_to_string(root.join("modules.dep")).map_err(|e| {
        ToolError(format!(
            "{}: {e} (the modules of the installed Linux package)",
            root.join("modules.dep").display()
        ))
    })?;
    let order = load_order(&dep, &LINUX_MODULES)?;
    image.dir(MODULE_DIR)?;
    let mut list = String::new();
    for path in &order {
        let target = format!("{MODULE_DIR}/{}.ko", module_name(path));
        image.file(&target, &module_bytes(&root.join(path))?)?;
        list.push_str(&target);
        list.push('\n');
    }
    image.file(MODULE_LIST, list.as_bytes())?;
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULES_DEP: &str = "\
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/lib/crc16.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/net/some-thing.ko:
";

    #[test]
    fn modules_load_after_their_dependencies_each_once() {
        let order = load_order(MODULES_DEP, &["virtio_pci", "virtio_blk", "ext4"]).unwrap();
        let names: Vec<String> = order.iter().map(|p| module_name(p)).collect();
        assert_eq!(
            names,
            [
                "virtio_pci_legacy_dev",
                "virtio_pci_modern_dev",
                "virtio_ring",
                "virtio",
                "virtio_pci",
                "virtio_blk",
                "crc16",
                "mbcache",
                "jbd2",
                "ext4",
            ]
        );
        assert_eq!(order[9], "kernel/fs/ext4/ext4.ko.xz");
        assert_eq!(
            load_order(MODULES_DEP, &["some_thing"]).unwrap(),
            ["kernel/net/some-thing.ko"]
        );
        assert!(load_order(MODULES_DEP, &["ext2"]).is_err());
    }

    #[test]
    fn trace_lines_give_requests_with_or_without_the_timestamp_prefix() {
        let trace = "\
virtio_blk_handle_write vdev 0x55d0 req 0x7f10 sector 2048 nsectors 8
1234@1700000000.000001:virtio_blk_handle_read vdev 0x55d0 req 0x7f18 sector 0 nsectors 1
virtio_blk_rw_complete vdev 0x55d0 req 0x7f10 ret 0
virtio_blk_handle_write vdev 0x55d0 req 0x7f20 sector 4096
";
        assert_eq!(
            parse_trace(trace),
            [
                DeviceRequest {
                    write: true,
                    sectors: 2048..2056
                },
                DeviceRequest {
                    write: false,
                    sectors: 0..1
                },
            ]
        );
    }

    #[test]
    fn requests_are_counted_when_they_touch_the_files_sectors() {
        let extents = sector_ranges("102 100 101\n200\n", 4096).unwrap();
        assert_eq!(extents, [800..824, 1600..1608]);
        let request = |write, sectors| DeviceRequest { write, sectors };
        let requests = [
            request(true, 800..808),   // the first block
            request(true, 792..800),   // just before: not the file's
            request(true, 820..830),   // overlaps the end of the first extent
            request(true, 824..1600),  // between the extents
            request(true, 1607..1608), // the last sector
            request(false, 800..808),  // a read
            request(true, 1608..1700), // after
        ];
        assert_eq!(count_touching(&requests, &extents, true), 3);
        assert_eq!(count_touching(&requests, &extents, false), 1);
        assert!(sector_ranges("", 4096).is_err());
        assert!(sector_ranges("12 x", 4096).is_err());
    }

    #[test]
    fn counted_lines_are_divided_by_the_calls_of_their_case() {
        let image = BenchImage {
            path: PathBuf::new(),
            extents: FILES
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let start = 1000 * i as u64;
                    {
                        let extent = start..start + 100;
                        (*f, vec![extent])
                    }
                })
                .collect(),
        };
        let mut m = Measured::default();
        m.values
            .push(("disk_munmap_64_scattered_calls".into(), 2.0));
        let trace = "\
virtio_blk_handle_read vdev 0 req 0 sector 10 nsectors 8
virtio_blk_handle_write vdev 0 req 0 sector 1000 nsectors 8
virtio_blk_handle_write vdev 0 req 0 sector 1050 nsectors 8
virtio_blk_handle_write vdev 0 req 0 sector 1090 nsectors 8
";
        image.count_requests(trace, &mut m);
        assert_eq!(m.get("disk_read_requests_64m"), Some(1.0));
        assert_eq!(m.get("disk_requests_per_munmap_64_scattered"), Some(1.5));
        // No calls reported: no per-call figure.
        assert_eq!(m.get("disk_requests_per_munmap_64_contiguous"), None);
    }
}
