//! The `/proc` and `/dev` files a Linux program may open by name:
//! `/proc/self/maps` (Linux's exact line format, from the mapping core's
//! list of the process's mappings), `/proc/meminfo` (from the platform's
//! frame counts, the RAM disk's blocks, the disk's request count and the
//! IPI counters), `/proc/self/exe` (a link to the
//! program's path), `/dev/null` and `/dev/zero`. A `/proc` file's text is
//! made when it is opened and held in an unnamed RAM file, so `read`,
//! `lseek`, `fstat` and `mmap` work on it as on any file, and it goes with
//! its last descriptor.

use alloc::string::String;
use core::fmt::Write;

use neoos_mm::{MapInfo, MapObject};

use crate::platform::{CopyCounters, IpiCounters, SharedFaultCounters};

/// The null device (no file-system node: known by name).
pub const DEV_NULL: &str = "/dev/null";
/// The process's own mappings.
pub const SELF_MAPS: &str = "/proc/self/maps";
/// The machine's memory.
pub const MEMINFO: &str = "/proc/meminfo";
/// The link to the running program.
pub const SELF_EXE: &str = "/proc/self/exe";

/// What a special path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    Null,
    Zero,
    /// A generated `/proc` file.
    Maps,
    Meminfo,
    /// `/proc/self/exe` (a symbolic link).
    Exe,
    /// `/proc` or `/proc/self` (directories with no listing).
    ProcDir,
}

/// The special file normalized `path` names for process `pid`
/// (`/proc/PID/...` with its own pid is `/proc/self/...`).
pub fn special(path: &str, pid: u32) -> Option<Special> {
    match path {
        DEV_NULL => return Some(Special::Null),
        super::calls::DEV_ZERO => return Some(Special::Zero),
        MEMINFO => return Some(Special::Meminfo),
        "/proc" => return Some(Special::ProcDir),
        _ => {}
    }
    let rest = path.strip_prefix("/proc/")?;
    let (who, what) = rest.split_once('/').unwrap_or((rest, ""));
    let mine = who == "self" || who.parse::<u32>() == Ok(pid);
    if !mine {
        return None;
    }
    match what {
        "" => Some(Special::ProcDir),
        "maps" => Some(Special::Maps),
        "exe" => Some(Special::Exe),
        _ => None,
    }
}

/// How a mapping is named in a maps line.
pub enum MapName<'a> {
    None,
    Path { path: &'a str, deleted: bool },
    Label(&'a str),
    SysV(u64),
}

/// One `/proc/PID/maps` line for `m`, as Linux prints it: addresses,
/// permissions, offset, device, inode, then the name from column 73.
pub fn maps_line(out: &mut String, m: &MapInfo, dev: (u32, u32), ino: u64, name: MapName) {
    let start = out.len();
    let _ = write!(
        out,
        "{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {} ",
        m.start,
        m.end,
        if m.read { 'r' } else { '-' },
        if m.write { 'w' } else { '-' },
        if m.exec { 'x' } else { '-' },
        if m.shared { 's' } else { 'p' },
        if matches!(m.object, MapObject::Anonymous) {
            0
        } else {
            m.offset
        },
        dev.0,
        dev.1,
        ino,
    );
    let pad = |out: &mut String| {
        while out.len() - start < 72 {
            out.push(' ');
        }
        out.push(' ');
    };
    match name {
        MapName::None => {}
        MapName::Path { path, deleted } => {
            pad(out);
            out.push_str(path);
            if deleted {
                out.push_str(" (deleted)");
            }
        }
        MapName::Label(label) => {
            pad(out);
            out.push_str(label);
        }
        MapName::SysV(key) => {
            pad(out);
            let _ = write!(out, "/SYSV{key:08x} (deleted)");
        }
    }
    out.push('\n');
}

/// `/proc/meminfo`: every figure in kB, Linux's layout (name and colon
/// padded to 16 columns, the value right-aligned in 8). `total` and `free`
/// are frames; `cached` the pages the RAM file systems hold. NeoOS's own
/// rows follow Linux's: the disk's requests sent (reads, writes and
/// flushes: `sys_meminfo` field 8) and completion interrupts taken (field
/// 9), the writes sent with the caller waiting (under the kernel lock),
/// the IPI counters, the copy-on-write copies made outside the kernel
/// lock and the page faults resolved under its read side (counts, not kB).
pub fn meminfo(
    total: u64,
    free: u64,
    cached: u64,
    disk: neoos_ext2::DeviceCounters,
    ipis: IpiCounters,
    copies: CopyCounters,
    faults: SharedFaultCounters,
) -> String {
    let kb = |pages: u64| pages * (neoos_abi::PAGE_SIZE as u64 / 1024);
    let rows: [(&str, u64); 10] = [
        ("MemTotal:", kb(total)),
        ("MemFree:", kb(free)),
        ("MemAvailable:", kb(free)),
        ("Buffers:", 0),
        ("Cached:", kb(cached)),
        ("SwapCached:", 0),
        ("Shmem:", kb(cached)),
        ("SwapTotal:", 0),
        ("SwapFree:", 0),
        ("Mlocked:", 0),
    ];
    let mut out = String::new();
    for (name, value) in rows {
        let _ = writeln!(out, "{name:<16}{value:>8} kB");
    }
    let counts = [
        ("DiskRequests:", disk.requests),
        ("DiskInterrupts:", disk.interrupts),
        ("DiskSyncWrites:", disk.waited_writes),
        ("DiskSyncReads:", disk.waited_reads),
        ("TlbShootdownIpis:", ipis.tlb_shootdown_ipis),
        ("TlbRemotePages:", ipis.remote_page_invalidations),
        ("TlbRemoteFull:", ipis.remote_full_flushes),
        ("WakeupIpis:", ipis.wakeup_ipis),
        ("CopiesUnlocked:", copies.taken),
        ("CopiesDropped:", copies.dropped),
        ("FaultsShared:", faults.resolved),
        ("FaultsAtOnce:", faults.at_once),
        ("MmapsShared:", faults.map_calls.0),
        ("MunmapsShared:", faults.map_calls.1),
        ("MprotectsShared:", faults.map_calls.2),
        ("BrksShared:", faults.brk_calls),
        ("MremapsShared:", faults.remap_calls),
    ];
    for (name, value) in counts {
        let _ = writeln!(out, "{name:<16}{value:>8}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(object: MapObject, shared: bool) -> MapInfo {
        MapInfo {
            start: 0x400000,
            end: 0x452000,
            read: true,
            write: false,
            exec: true,
            shared,
            object,
            offset: 0x1000,
            resident: 0,
            dirty: 0,
        }
    }

    #[test]
    fn a_file_line_has_linux_columns_and_the_name_at_column_73() {
        let mut s = String::new();
        let m = info(MapObject::File(neoos_mm::FileId(3)), false);
        maps_line(
            &mut s,
            &m,
            (0, 1),
            5,
            MapName::Path {
                path: "/bin/x",
                deleted: false,
            },
        );
        assert_eq!(
            s,
            "00400000-00452000 r-xp 00001000 00:01 5                                  /bin/x\n"
        );
        assert_eq!(s.find("/bin/x"), Some(73));
    }

    #[test]
    fn an_anonymous_line_ends_with_a_space_and_offset_zero() {
        let mut s = String::new();
        let mut m = info(MapObject::Anonymous, true);
        m.start = 0x7fff_fffd_e000;
        m.end = 0x7fff_ffff_f000;
        maps_line(&mut s, &m, (0, 0), 0, MapName::None);
        assert_eq!(s, "7ffffffde000-7ffffffff000 r-xs 00000000 00:00 0 \n");
        let mut d = String::new();
        let f = info(MapObject::File(neoos_mm::FileId(3)), true);
        maps_line(
            &mut d,
            &f,
            (0, 1),
            5,
            MapName::Path {
                path: "/tmp/f",
                deleted: true,
            },
        );
        assert!(d.ends_with(" /tmp/f (deleted)\n"));
    }

    #[test]
    fn meminfo_rows_are_padded_like_linux() {
        let text = meminfo(
            1000,
            250,
            10,
            neoos_ext2::DeviceCounters::default(),
            IpiCounters::default(),
            CopyCounters::default(),
            SharedFaultCounters::default(),
        );
        let first = text.lines().next().unwrap();
        assert_eq!(first, "MemTotal:           4000 kB");
        assert!(text.contains("\nMemFree:            1000 kB\n"));
        assert!(text.contains("\nCached:               40 kB\n"));
    }

    #[test]
    fn meminfo_ends_with_the_ipi_and_copy_counts() {
        let ipis = IpiCounters {
            tlb_shootdown_ipis: 7,
            remote_page_invalidations: 12,
            remote_full_flushes: 3,
            wakeup_ipis: 40,
        };
        let copies = CopyCounters {
            taken: 5,
            dropped: 1,
        };
        let disk = neoos_ext2::DeviceCounters {
            requests: 9,
            interrupts: 4,
            waited_writes: 2,
            waited_reads: 6,
        };
        let faults = SharedFaultCounters {
            resolved: 33,
            at_once: 4,
            map_calls: (6, 5, 3),
            brk_calls: 2,
            remap_calls: 1,
        };
        let text = meminfo(1000, 250, 10, disk, ipis, copies, faults);
        assert!(text.contains("\nDiskRequests:          9\n"));
        assert!(text.contains("\nDiskInterrupts:        4\n"));
        assert!(text.contains("\nDiskSyncWrites:        2\n"));
        assert!(text.contains("\nDiskSyncReads:         6\n"));
        let tail: alloc::vec::Vec<&str> = text.lines().rev().take(13).collect();
        assert_eq!(
            tail,
            [
                "MremapsShared:         1",
                "BrksShared:            2",
                "MprotectsShared:       3",
                "MunmapsShared:         5",
                "MmapsShared:           6",
                "FaultsAtOnce:          4",
                "FaultsShared:         33",
                "CopiesDropped:         1",
                "CopiesUnlocked:        5",
                "WakeupIpis:           40",
                "TlbRemoteFull:         3",
                "TlbRemotePages:       12",
                "TlbShootdownIpis:       7",
            ]
        );
    }

    #[test]
    fn proc_paths_name_the_caller_by_self_or_pid() {
        assert_eq!(special("/proc/self/maps", 7), Some(Special::Maps));
        assert_eq!(special("/proc/7/maps", 7), Some(Special::Maps));
        assert_eq!(special("/proc/8/maps", 7), None, "another process's");
        assert_eq!(special("/proc/self/exe", 7), Some(Special::Exe));
        assert_eq!(special("/dev/null", 7), Some(Special::Null));
        assert_eq!(special("/proc/self/other", 7), None);
        assert_eq!(special("/tmp/x", 7), None);
    }
}
