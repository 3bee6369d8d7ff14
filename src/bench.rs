//! Benchmark mode (`cargo run -- --bench [--linux]`): measures NeoOS's memory
//! calls with `user/bench/mm_bench.c` on the machine of
//! `../shared/notes/performance-targets.md` (QEMU TCG, `-icount shift=0,sleep=off`,
//! so `rdtsc` deltas are guest instruction counts) and its threads lines with
//! `user/bench/mm_threads_bench.c` on the same machine with 4 CPUs,
//! optionally measures Linux
//! (Debian's kernel, the same source built with glibc, booted as `/init` of a
//! small initramfs), and prints and writes `docs/benchmarks.md`: the table of
//! NeoOS against Linux and the goals. Goals live here, never in tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::boot::{self, BootOptions, BootOutcome, Ending, Machine};
use crate::disk::DiskOptions;
use crate::launch::{self, Run};
use crate::{build, initfs, out_dir, repo_root, Result, ToolError};

mod disk_lines;

/// The benchmark's source, relative to the repository.
const SOURCE: &str = "user/bench/mm_bench.c";
/// Where the table is written, relative to the repository.
const REPORT: &str = "docs/benchmarks.md";
/// Where the chart is drawn, relative to the repository (beside REPORT,
/// which embeds it).
const CHART: &str = "docs/benchmarks.svg";
/// Linux's command line: the notes' options, the serial console, quiet, and
/// an immediate reboot (QEMU then exits: `-no-reboot`) should `/init` die.
const LINUX_COMMAND_LINE: &str = "nokaslr norandmaps transparent_hugepage=never \
     mitigations=off console=ttyS0 quiet panic=-1";
/// What Linux's disk boot adds to its command line: an idle loop that spins
/// (as NeoOS's polled disk driver does) instead of halting, since under
/// `sleep=off` a halted guest's clock jumps to its next timer, which made
/// Linux's waits for the disk cost from thousands to millions of "instructions"
/// from one run to the next.
const LINUX_DISK_OPTIONS: &str = "idle=poll";
/// The Debian package with the Linux kernel.
const LINUX_PACKAGE: &str = "linux-image-amd64";
/// The threads lines' benchmark (a Linux program for both systems) and
/// the CPUs of its machine.
const THREADS_SOURCE: &str = "user/bench/mm_threads_bench.c";
const THREADS_CPUS: u32 = 4;
/// The shootdown lines' machine: 4 CPUs without `-icount` (QEMU's
/// multi-threaded TCG, each CPU a host thread), since they count IPIs.
const SHOOTDOWN_MACHINE: Machine = Machine::Standard { cpus: THREADS_CPUS };
/// The threads boots (both systems): the program's argument and the machine.
const THREADS_BOOTS: [(&str, Machine); 2] = [
    ("threads", Machine::Benchmark { cpus: THREADS_CPUS }),
    ("shootdown", SHOOTDOWN_MACHINE),
];
/// What Linux's threads boot on the `-icount` machine adds to its command
/// line: only the boot CPU comes up at boot (`maxcpus=1`); mm_threads_bench,
/// as /init, brings up the others through sysfs while a child process of it
/// executes a `pause` on CPU 0 each millisecond, since under QEMU 7.2's
/// `-icount` round robin Linux's own bring-up of a CPU never lets that CPU
/// run (see [`THREADS_LINES_NOTE`]). `lpj` is the delay-loop calibration the
/// boot CPU computes on this machine (its log: "lpj=3999972"), given so
/// that each CPU brought up skips calibrating its own (which waits for
/// timer ticks).
const LINUX_ICOUNT_THREADS_OPTIONS: &str = "maxcpus=1 lpj=3999972";
/// A threads boot is given up when its console stays silent this long
/// (NeoOS prints a line every few seconds; Linux, booted `quiet`, reaches
/// /init in about a minute, which then prints a line as each CPU comes up):
/// see [`THREADS_LINES_NOTE`].
const THREADS_QUIET_LIMIT: Duration = Duration::from_secs(300);
/// How the threads lines are measured on QEMU's round robin of CPUs, and
/// how Linux's CPUs come up for them.
const THREADS_LINES_NOTE: &str = "\nThe threads lines come from two more boots of each \
     system with 4 CPUs. The 1/2/4-thread lines run on the benchmark machine with `-smp 4`. \
     Under `-icount` QEMU (7.2 here) runs the CPUs in turn in one host thread: a CPU keeps \
     its turn until it has used the instruction budget up to the next timer, executes \
     `pause`, halts or sends an IPI, and the next CPU gets what is left of that budget \
     (nothing when the first used it all). So these threads wait for each other asleep in \
     futex waits (each arrives, the last wakes the main thread, which starts them all with \
     one futex wake); with spinning waits the 2- and 4-thread groups took minutes of host \
     time each, with futex waits the boot takes seconds. The figures keep their definition \
     (the lowest window of each step); only how the threads wait between windows changed. \
     With 4 CPUs the order of the CPUs' turns is not the same from run to run: with the \
     ticket kernel lock, over three runs NeoOS's 4-thread mmap took 4,100 to 4,522 and \
     munmap 18,565 to 26,641 (fault 3,637 each time; the 1- and 2-thread lines repeated \
     exactly); with the gate that replaced it (docs/design.md, \"CPUs\"), where a waiting \
     CPU halts instead of spinning through its turns, the 4-thread lines came out near the \
     2-thread ones (mmap 1,201, fault 1,057, munmap 5,635 in the table's run). Over our six \
     runs with 4 CPUs up, Linux's 1-thread lines repeated exactly, its 2-thread fault took \
     3,154 to 3,213 and munmap 26,177 to 26,615 (mmap 5,531 each time), its 4-thread mmap \
     5,637 to 6,350, fault 3,214 to 3,595 and munmap 26,609 to 44,708. Linux 6.1 booted \
     with 4 CPUs under `-icount` stops at \"Booting SMP configuration\": the boot CPU, \
     having let the new CPU go on, waits for it in a loop around schedule() with nothing \
     else to run, so it used every budget, and the new CPU (at the `pause` of its wait in \
     cpu_init, the go-ahead already in memory) never ran again: QEMU's exec log over 3 s \
     of host time held only CPU 0's blocks. Each of these, tried alone, changed nothing \
     (the boot still stopped there after 100 s): Linux's `tsc=reliable`, \
     `no_timer_check`, `clocksource=tsc tsc=reliable`, `nohz=off`, `idle=poll`, \
     `idle=halt`; QEMU's `-icount shift=3,sleep=off`, `shift=0,sleep=on`, \
     `shift=0,sleep=on,align=on`, and `-accel tcg,thread=single` (what `-icount` implies \
     anyway). Without `-icount` (each CPU a host thread, or one host thread for all) the \
     same boot brought the 4 CPUs up in under a second. So Linux's threads boot on the \
     `-icount` machine adds `maxcpus=1 lpj=3999972` to its command line (the QEMU options \
     are NeoOS's): it boots with CPU 0 alone, and mm_threads_bench, its /init, brings CPUs \
     1 to 3 up by writing 1 to `/sys/devices/system/cpu/cpuN/online` (the kernel's own \
     bring-up code, the SMP alternatives patched back in with the second CPU) while a \
     child process on CPU 0 executes a `pause` each millisecond, which ends CPU 0's turn \
     whenever that loop lets it run (that takes seconds; in our runs the bring-up from \
     /init also went through without the child, for a reason we did not pin down). \
     `lpj=3999972` is the delay-loop calibration the boot CPU computes on this machine, \
     given so that each new CPU skips calibrating its own (which waits for timer ticks). \
     The shootdown lines count IPIs, not instructions, so they run on a 4-CPU machine \
     without `-icount` (`-m 512M -cpu max,-la57 -smp 4`, each CPU a host thread): there the \
     three others really spin at once on their CPUs (each step a `pause`). Under `-icount` \
     we saw them not all run at once (QEMU left one CPU with its timer interrupt delivered \
     and its first handler instruction not executed for as long as another CPU kept \
     running). A threads boot whose console stays silent for 300 s is given up, and the \
     report says so under its figures (mm_threads_bench prints a line as each CPU comes \
     up); a shootdown round whose others do not all run at once ends the line with \
     `BENCH error shootdown_others_not_running ROUND`.\n";
/// A line's `reference` when the notes have no Linux figure for it (shown
/// only when Linux is measured: `--linux`).
const NOT_IN_NOTES: f64 = f64::NAN;
/// A console line with a result starts with this.
const RESULT_PREFIX: &str = "BENCH ";

/// What to measure.
pub struct BenchOptions {
    /// Measure Linux too (otherwise the notes' Linux figures are used).
    pub linux: bool,
    /// Time limit of each boot.
    pub timeout: Duration,
}

/// What a line of the table must reach.
#[derive(Clone, Copy)]
enum Goal {
    /// At most half of Linux's instruction count.
    HalfOfLinux,
    /// NeoOS's own ratio (e.g. 1 GiB over 40 KiB) at most this.
    RatioAtMost(f64),
    /// At most this many instructions.
    AtMost(f64),
    /// No goal: shown beside Linux for comparison.
    Compared,
}

/// One line of the table.
struct Row {
    /// The name mm_bench.c prints.
    key: &'static str,
    operation: &'static str,
    /// Linux's figure in performance-targets.md (for the 64 MiB file lines
    /// and the disk lines, which the notes lack: Linux 6.1.0-57 measured by
    /// this benchmark).
    reference: f64,
    goal: Goal,
    /// What mm_bench.c does for it.
    method: &'static str,
}

/// A disk line's method: the common setup (see the note under the table),
/// then `$rest`.
macro_rules! disk_method {
    ($rest:literal) => {
        concat!(
            "a 64 MiB file (every page written, none a hole) of an ext2 image with 4 KiB \
             blocks, made on the host with `mke2fs -t ext2 -d` for each boot, one file per \
             case, none read before, on a virtio-blk disk mounted at /home (the same QEMU \
             options for both systems). The writing munmap is NeoOS's sys_munmap, which \
             writes the dirty pages to the disk before unmapping (seed 000), and Linux's \
             msync(MS_SYNC) then munmap (Linux's munmap writes nothing). ",
            $rest
        )
    };
}

const ROWS: [Row; 42] = [
    Row {
        key: "map_unmap_page",
        operation: "mmap + munmap of one untouched anonymous 4 KiB page",
        reference: 9828.0,
        goal: Goal::HalfOfLinux,
        method: "mmap of one anonymous read-write page and its munmap, no store; lowest of 2,000.",
    },
    Row {
        key: "map_touch_unmap_page",
        operation: "mmap + write one byte + munmap, one page",
        reference: 16167.0,
        goal: Goal::HalfOfLinux,
        method: "the same with one store to the page in between (one page fault); lowest of 2,000.",
    },
    Row {
        key: "first_touch_per_page",
        operation: "first-touch anonymous fault, per page (16 MiB region)",
        reference: 3279.0,
        goal: Goal::HalfOfLinux,
        method: "one store to each page of a fresh 16 MiB anonymous mapping, the 4,096 stores timed together and divided by 4,096; lowest of 5.",
    },
    Row {
        key: "munmap_16m_per_page",
        operation: "munmap of a populated 16 MiB region, per page",
        reference: 1235.0,
        goal: Goal::HalfOfLinux,
        method: "munmap of that populated region, divided by 4,096; lowest of 5.",
    },
    Row {
        key: "munmap_1g_over_40k",
        operation: "munmap 1 GiB with 10 touched pages, divided by 40 KiB with 10 touched",
        reference: 3.05,
        goal: Goal::RatioAtMost(1.2),
        method: "munmap of a 1 GiB anonymous mapping whose first 10 pages were touched (on Linux with `MAP_NORESERVE`, which a 1 GiB machine needs for it), divided by munmap of a 10-page mapping with all 10 touched; lowest of 200 each.",
    },
    Row {
        key: "munmap_file_64_dirty_per_page",
        operation: "munmap of a shared file mapping, 64 dirty pages, per page (RAM-backed file)",
        reference: 3305.0,
        goal: Goal::HalfOfLinux,
        method: "a 64-page file in /tmp (tmpfs, the initramfs root, on Linux; the RAM file system on NeoOS) written with write and kept open; each repetition maps it `MAP_SHARED`, stores one byte in each page, and times munmap alone, divided by 64; lowest of 200. On Linux that munmap only unmaps (a RAM file needs no writeback), which is why Linux's figure here is far below the notes' 3,305: while writing this benchmark, munmap dropping the last reference to an unlinked file (about 3,100 per page) and mmap + stores + munmap (about 2,900) came close to the notes' figure, a mounted tmpfs or ramfs did not change it.",
    },
    Row {
        key: "pair_100000_over_10",
        operation: "mmap+munmap pair with 100,000 mappings, divided by the pair with 10",
        reference: 1.96,
        goal: Goal::RatioAtMost(1.3),
        method: "the pair of the first line in a process with 10 mappings in all (its own included), then with 100,000 (one-page mappings, alternately `PROT_READ` and `PROT_NONE`, so that none merge). The pair's cost depends on how full the index node next to the new mapping is (on Linux it swings by 1.7x from one count to the next), so each side is the mean, over 16 consecutive counts, of the lowest of 200.",
    },
    Row {
        key: "mprotect_split",
        operation: "mprotect of one page inside a larger mapping (split)",
        reference: 9877.0,
        goal: Goal::HalfOfLinux,
        method: "mprotect (`PROT_READ`) of the middle page of a fresh, untouched 16-page read-write mapping, which splits it in three; lowest of 2,000.",
    },
    Row {
        key: "file64_munmap_0_dirty",
        operation: "munmap of a 64 MiB shared mapping of a fully cached file, 0 dirty",
        reference: 12761.0,
        goal: Goal::HalfOfLinux,
        method: "a 64 MiB file in /tmp (tmpfs on Linux, the RAM file system on NeoOS) written whole with write, so every page is in the page cache, and kept open; each repetition makes it clean (fsync, untimed), maps it `MAP_SHARED` read-write, stores one byte in the pages the line names (none; the middle one; 64 scattered, every 256th; all 16,384), and times munmap alone; lowest of 20.",
    },
    Row {
        key: "file64_munmap_1_dirty",
        operation: "munmap of a 64 MiB shared mapping of a fully cached file, 1 dirty",
        reference: 18992.0,
        goal: Goal::Compared,
        method: "a 64 MiB file in /tmp (tmpfs on Linux, the RAM file system on NeoOS) written whole with write, so every page is in the page cache, and kept open; each repetition makes it clean (fsync, untimed), maps it `MAP_SHARED` read-write, stores one byte in the pages the line names (none; the middle one; 64 scattered, every 256th; all 16,384), and times munmap alone; lowest of 20.",
    },
    Row {
        key: "file64_munmap_64_dirty",
        operation: "munmap of a 64 MiB shared mapping of a fully cached file, 64 scattered dirty",
        reference: 211896.0,
        goal: Goal::Compared,
        method: "a 64 MiB file in /tmp (tmpfs on Linux, the RAM file system on NeoOS) written whole with write, so every page is in the page cache, and kept open; each repetition makes it clean (fsync, untimed), maps it `MAP_SHARED` read-write, stores one byte in the pages the line names (none; the middle one; 64 scattered, every 256th; all 16,384), and times munmap alone; lowest of 20.",
    },
    Row {
        key: "file64_munmap_all_dirty",
        operation: "munmap of a 64 MiB shared mapping of a fully cached file, all 16,384 dirty",
        reference: 8442523.0,
        goal: Goal::Compared,
        method: "a 64 MiB file in /tmp (tmpfs on Linux, the RAM file system on NeoOS) written whole with write, so every page is in the page cache, and kept open; each repetition makes it clean (fsync, untimed), maps it `MAP_SHARED` read-write, stores one byte in the pages the line names (none; the middle one; 64 scattered, every 256th; all 16,384), and times munmap alone; lowest of 3.",
    },
    Row {
        key: "file64_msync_0_dirty",
        operation: "msync(MS_SYNC) of a 64 MiB shared mapping of a fully cached file, 0 dirty",
        reference: 674.0,
        goal: Goal::AtMost(1000.0),
        method: "a 64 MiB file in /tmp (tmpfs on Linux, the RAM file system on NeoOS) written whole with write, so every page is in the page cache, and kept open; each repetition makes it clean (fsync, untimed), maps it `MAP_SHARED` read-write, stores one byte in the pages the line names (none; the middle one; 64 scattered, every 256th; all 16,384), and times msync(MS_SYNC) of the whole mapping alone (munmap after, untimed); lowest of 20.",
    },
    Row {
        key: "file64_msync_1_dirty",
        operation: "msync(MS_SYNC) of a 64 MiB shared mapping of a fully cached file, 1 dirty",
        reference: 674.0,
        goal: Goal::Compared,
        method: "a 64 MiB file in /tmp (tmpfs on Linux, the RAM file system on NeoOS) written whole with write, so every page is in the page cache, and kept open; each repetition makes it clean (fsync, untimed), maps it `MAP_SHARED` read-write, stores one byte in the pages the line names (none; the middle one; 64 scattered, every 256th; all 16,384), and times msync(MS_SYNC) of the whole mapping alone (munmap after, untimed); lowest of 20.",
    },
    Row {
        key: "file64_msync_64_dirty",
        operation: "msync(MS_SYNC) of a 64 MiB shared mapping of a fully cached file, 64 scattered dirty",
        reference: 674.0,
        goal: Goal::Compared,
        method: "a 64 MiB file in /tmp (tmpfs on Linux, the RAM file system on NeoOS) written whole with write, so every page is in the page cache, and kept open; each repetition makes it clean (fsync, untimed), maps it `MAP_SHARED` read-write, stores one byte in the pages the line names (none; the middle one; 64 scattered, every 256th; all 16,384), and times msync(MS_SYNC) of the whole mapping alone (munmap after, untimed); lowest of 20.",
    },
    Row {
        key: "file64_msync_all_dirty",
        operation: "msync(MS_SYNC) of a 64 MiB shared mapping of a fully cached file, all 16,384 dirty",
        reference: 674.0,
        goal: Goal::Compared,
        method: "a 64 MiB file in /tmp (tmpfs on Linux, the RAM file system on NeoOS) written whole with write, so every page is in the page cache, and kept open; each repetition makes it clean (fsync, untimed), maps it `MAP_SHARED` read-write, stores one byte in the pages the line names (none; the middle one; 64 scattered, every 256th; all 16,384), and times msync(MS_SYNC) of the whole mapping alone (munmap after, untimed); lowest of 3.",
    },
    Row {
        key: "file64_msync_munmap_0_dirty",
        operation: "msync(MS_SYNC) then munmap of a 64 MiB shared mapping of a fully cached file, 0 dirty",
        reference: 13428.0,
        goal: Goal::Compared,
        method: "a 64 MiB file in /tmp (tmpfs on Linux, the RAM file system on NeoOS) written whole with write, so every page is in the page cache, and kept open; each repetition makes it clean (fsync, untimed), maps it `MAP_SHARED` read-write, stores one byte in the pages the line names (none; the middle one; 64 scattered, every 256th; all 16,384), and times msync(MS_SYNC) then munmap together; lowest of 20.",
    },
    Row {
        key: "file64_msync_munmap_1_dirty",
        operation: "msync(MS_SYNC) then munmap of a 64 MiB shared mapping of a fully cached file, 1 dirty",
        reference: 19659.0,
        goal: Goal::Compared,
        method: "a 64 MiB file in /tmp (tmpfs on Linux, the RAM file system on NeoOS) written whole with write, so every page is in the page cache, and kept open; each repetition makes it clean (fsync, untimed), maps it `MAP_SHARED` read-write, stores one byte in the pages the line names (none; the middle one; 64 scattered, every 256th; all 16,384), and times msync(MS_SYNC) then munmap together; lowest of 20.",
    },
    Row {
        key: "file64_msync_munmap_64_dirty",
        operation: "msync(MS_SYNC) then munmap of a 64 MiB shared mapping of a fully cached file, 64 scattered dirty",
        reference: 212878.0,
        goal: Goal::Compared,
        method: "a 64 MiB file in /tmp (tmpfs on Linux, the RAM file system on NeoOS) written whole with write, so every page is in the page cache, and kept open; each repetition makes it clean (fsync, untimed), maps it `MAP_SHARED` read-write, stores one byte in the pages the line names (none; the middle one; 64 scattered, every 256th; all 16,384), and times msync(MS_SYNC) then munmap together; lowest of 20.",
    },
    Row {
        key: "file64_msync_munmap_all_dirty",
        operation: "msync(MS_SYNC) then munmap of a 64 MiB shared mapping of a fully cached file, all 16,384 dirty",
        reference: 8522762.0,
        goal: Goal::Compared,
        method: "a 64 MiB file in /tmp (tmpfs on Linux, the RAM file system on NeoOS) written whole with write, so every page is in the page cache, and kept open; each repetition makes it clean (fsync, untimed), maps it `MAP_SHARED` read-write, stores one byte in the pages the line names (none; the middle one; 64 scattered, every 256th; all 16,384), and times msync(MS_SYNC) then munmap together; lowest of 3.",
    },
    Row {
        key: "file64_writing_munmap_64_per_dirty",
        operation: "munmap that writes (NeoOS sys_munmap, seed 000; Linux munmap) of that mapping, 64 scattered dirty, per dirty page",
        reference: 3315.0,
        goal: Goal::HalfOfLinux,
        method: "a 64 MiB file in /tmp (tmpfs on Linux, the RAM file system on NeoOS) written whole with write, so every page is in the page cache, and kept open; each repetition makes it clean (fsync, untimed), maps it `MAP_SHARED` read-write, stores one byte in the pages the line names (none; the middle one; 64 scattered, every 256th; all 16,384); the mapping is made with NeoOS's sys_mmap and removed with its sys_munmap, which writes the 64 dirty pages to the file before unmapping (Linux: mmap and munmap, which writes nothing: a RAM file has no backing store); the munmap timed, divided by 64; lowest of 20.",
    },
    Row {
        key: "file_read_fault_per_page",
        operation: "read fault on a cached file page, per page (shared mapping)",
        reference: 589.0,
        goal: Goal::Compared,
        method: "the 64 MiB file above, mapped `MAP_SHARED` read-only; one load from each of its first 4,096 pages, timed together and divided by 4,096 (both systems map up to 16 neighbouring cached pages per fault, fault-around: NeoOS since the fourteenth session, docs/design.md); lowest of 5.",
    },
    Row {
        key: "disk_read_fault_per_page",
        operation: "disk: sequential read faults of a 64 MiB file, cold cache, per page",
        reference: 4160.0,
        goal: Goal::Compared,
        method: disk_method!("the file mapped `MAP_SHARED` read-only; one load from each of its 16,384 pages in order, timed together and divided by 16,384; once (the cache is cold only once: a fresh boot, a file not read before)."),
    },
    Row {
        key: "disk_read_requests_64m",
        operation: "disk: device read requests of those faults (the whole 64 MiB file)",
        reference: 546.0,
        goal: Goal::Compared,
        method: "QEMU's `virtio_blk_handle_read` trace events of that boot whose sectors touch the file's blocks (`debugfs -R 'blocks FILE'` on the image), counted by the host tool: what each system's read-ahead (or its absence) asks of the device.",
    },
    Row {
        key: "disk_munmap_64_scattered",
        operation: "disk: writing munmap of a 64 MiB shared file mapping, 64 scattered dirty",
        reference: 895184.0,
        goal: Goal::Compared,
        method: disk_method!("each repetition maps the file (NeoOS: sys_mmap; Linux: mmap `MAP_SHARED` read-write), stores one byte in every 256th page (64 pages), and times the writing munmap; lowest of 20."),
    },
    Row {
        key: "disk_munmap_64_scattered_per_dirty",
        operation: "disk: writing munmap, 64 scattered dirty, per dirty page written",
        reference: 13987.0,
        goal: Goal::HalfOfLinux,
        method: "the line above divided by its 64 dirty pages (issue 10's goal: at most half of Linux's per dirty page).",
    },
    Row {
        key: "disk_msync_munmap_64_scattered",
        operation: "disk: msync(MS_SYNC) + munmap (both systems), 64 scattered dirty",
        reference: 895241.0,
        goal: Goal::Compared,
        method: disk_method!("as the writing munmap, but both systems map with mmap `MAP_SHARED` read-write and call msync(MS_SYNC) then munmap, timed together (NeoOS's msync writes the pages; its munmap then has none to write); lowest of 20."),
    },
    Row {
        key: "disk_munmap_64_contiguous",
        operation: "disk: writing munmap of a 64 MiB shared file mapping, 64 contiguous dirty",
        reference: 278052.0,
        goal: Goal::Compared,
        method: disk_method!("as the writing munmap with 64 scattered dirty pages, but the 64 dirty pages are consecutive (pages 8,204 to 8,267: the first 64 that one indirect block maps, so that they are consecutive on the disk too, as mke2fs lays the file out): one run, which one device request can carry; lowest of 20."),
    },
    Row {
        key: "disk_requests_per_munmap_64_scattered",
        operation: "disk: device write requests per writing munmap, 64 scattered dirty (64 runs)",
        reference: 64.0,
        goal: Goal::AtMost(64.0),
        method: "QEMU's `virtio_blk_handle_write` trace events (one per request the guest puts on the queue, before QEMU merges any) whose sectors touch that case's file, counted by the host tool and divided by the munmaps made (20); writes of ext2's own blocks (inode, bitmaps) are not counted. The goal is one request per contiguous run of dirty pages.",
    },
    Row {
        key: "disk_requests_per_msync_munmap_64_scattered",
        operation: "disk: device write requests per msync + munmap, 64 scattered dirty (64 runs)",
        reference: 64.0,
        goal: Goal::AtMost(64.0),
        method: "counted as the line above, for the msync then munmap case's file.",
    },
    Row {
        key: "disk_requests_per_munmap_64_contiguous",
        operation: "disk: device write requests per writing munmap, 64 contiguous dirty (1 run)",
        reference: 1.0,
        goal: Goal::AtMost(1.0),
        method: "counted as the line above, for the contiguous case's file: one run of 64 pages (256 KiB) fits one request.",
    },
    Row {
        key: "shootdown_ipis_munmap_caller_only",
        operation: "4 threads: TLB shootdown IPIs per munmap of 8 pages only the caller touched (the others asleep)",
        reference: NOT_IN_NOTES,
        goal: Goal::AtMost(0.0),
        method: "a process of 4 threads on a 4-CPU machine without `-icount` (IPIs are counted, not instructions; see the note on the threads lines), the 3 others asleep in a futex wait; the main thread maps 8 pages (fixed, inside a 128-page mapping whose first page stays mapped, so no page table is freed), writes to each and unmaps them; shootdown IPIs (NeoOS: sent, /proc/meminfo; Linux: taken, /proc/interrupts TLB row) per munmap, mean of 20.",
    },
    Row {
        key: "shootdown_ipis_munmap_all_touched",
        operation: "4 threads: TLB shootdown IPIs per munmap of 8 pages all four touched (the others running)",
        reference: NOT_IN_NOTES,
        goal: Goal::AtMost(3.0),
        method: "the same, with the 3 others awake: each writes to the 8 pages too, then spins (no system call, a `pause` in each step) on its own CPU while the main thread unmaps them; mean of 20 (goal: exactly the 3 other CPUs, once).",
    },
    Row {
        key: "threads_1_mmap",
        operation: "1 thread at once, disjoint regions: mmap of 16 anonymous pages",
        reference: NOT_IN_NOTES,
        goal: Goal::Compared,
        method: "1 thread on the 4-CPU benchmark machine, started together (each waits asleep in a futex wait until all are there, then one wake starts them), each mapping 16 anonymous pages, writing one byte to each and unmapping them, 200 times; per thread the lowest window of each step, the highest of the threads' figures (the instruction clock is the machine's: another CPU's instructions in a window count too).",
    },
    Row {
        key: "threads_1_fault",
        operation: "1 thread at once, disjoint regions: first-touch fault, per page",
        reference: NOT_IN_NOTES,
        goal: Goal::Compared,
        method: "the 16 writes of that loop, divided by 16.",
    },
    Row {
        key: "threads_1_munmap",
        operation: "1 thread at once, disjoint regions: munmap of the 16 touched pages",
        reference: NOT_IN_NOTES,
        goal: Goal::Compared,
        method: "the munmap of that loop.",
    },
    Row {
        key: "threads_2_mmap",
        operation: "2 threads at once, disjoint regions: mmap of 16 anonymous pages",
        reference: NOT_IN_NOTES,
        goal: Goal::Compared,
        method: "2 threads on the 4-CPU benchmark machine, started together (each waits asleep in a futex wait until all are there, then one wake starts them), each mapping 16 anonymous pages, writing one byte to each and unmapping them, 200 times; per thread the lowest window of each step, the highest of the threads' figures (the instruction clock is the machine's: another CPU's instructions in a window count too).",
    },
    Row {
        key: "threads_2_fault",
        operation: "2 threads at once, disjoint regions: first-touch fault, per page",
        reference: NOT_IN_NOTES,
        goal: Goal::Compared,
        method: "the 16 writes of that loop, divided by 16.",
    },
    Row {
        key: "threads_2_munmap",
        operation: "2 threads at once, disjoint regions: munmap of the 16 touched pages",
        reference: NOT_IN_NOTES,
        goal: Goal::Compared,
        method: "the munmap of that loop.",
    },
    Row {
        key: "threads_4_mmap",
        operation: "4 threads at once, disjoint regions: mmap of 16 anonymous pages",
        reference: NOT_IN_NOTES,
        goal: Goal::Compared,
        method: "4 threads on the 4-CPU benchmark machine, started together (each waits asleep in a futex wait until all are there, then one wake starts them), each mapping 16 anonymous pages, writing one byte to each and unmapping them, 200 times; per thread the lowest window of each step, the highest of the threads' figures (the instruction clock is the machine's: another CPU's instructions in a window count too).",
    },
    Row {
        key: "threads_4_fault",
        operation: "4 threads at once, disjoint regions: first-touch fault, per page",
        reference: NOT_IN_NOTES,
        goal: Goal::Compared,
        method: "the 16 writes of that loop, divided by 16.",
    },
    Row {
        key: "threads_4_munmap",
        operation: "4 threads at once, disjoint regions: munmap of the 16 touched pages",
        reference: NOT_IN_NOTES,
        goal: Goal::Compared,
        method: "the munmap of that loop.",
    },
];

/// The results of one boot of the benchmark.
#[derive(Debug, Default, PartialEq)]
pub struct Measured {
    /// Every `BENCH <name> <value>` line, in order.
    pub values: Vec<(String, f64)>,
    /// Every `BENCH error <name> <errno>` line, as `<name> <errno>`.
    pub errors: Vec<String>,
    /// `BENCH done` was printed.
    pub complete: bool,
    /// The kernel release the guest reported (`BENCH kernel <uname -r>`).
    pub kernel_release: Option<String>,
    /// Boots given up because their console stayed silent, and why.
    pub stalls: Vec<String>,
}

impl Measured {
    /// Collects the result lines of a console.
    pub fn from_console(console: &[String]) -> Measured {
        let mut m = Measured::default();
        for line in console {
            let Some(at) = line.find(RESULT_PREFIX) else {
                continue;
            };
            let words: Vec<&str> = line[at + RESULT_PREFIX.len()..]
                .split_whitespace()
                .collect();
            match words.as_slice() {
                ["done"] => m.complete = true,
                ["kernel", release] => m.kernel_release = Some(release.to_string()),
                ["error", rest @ ..] => m.errors.push(rest.join(" ")),
                [name, value] => {
                    if let Ok(v) = value.parse() {
                        m.values.push((name.to_string(), v));
                    }
                }
                _ => {}
            }
        }
        m
    }

    /// The value of `name`, if it was measured.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// Adds the figures of another boot of the same system (the disk
    /// lines'): complete when both were.
    fn absorb(&mut self, other: Measured) {
        self.values.extend(other.values);
        self.errors.extend(other.errors);
        self.stalls.extend(other.stalls);
        self.complete &= other.complete;
        if self.kernel_release.is_none() {
            self.kernel_release = other.kernel_release;
        }
    }
}

/// Runs the benchmark, prints the table and writes docs/benchmarks.md.
/// True when every requested system ran the benchmark to its end.
pub fn run(o: &BenchOptions) -> Result<bool> {
    build::ensure_tools()?;
    if std::env::var_os(DISK_ONLY_VARIABLE).is_some() {
        return measure_neoos_disk_only(o.timeout);
    }
    if std::env::var_os(THREADS_ONLY_VARIABLE).is_some() {
        return measure_neoos_threads_only(o.timeout);
    }
    let neoos = measure_neoos(o.timeout)?;
    let linux = if o.linux {
        Some(measure_linux(o.timeout)?)
    } else {
        None
    };
    let report = Report {
        neoos: &neoos,
        linux: linux.as_ref().map(|l| &l.measured),
        linux_kernel: linux.as_ref().map(|l| l.kernel.as_path()),
        linux_modules: linux.as_ref().map(|l| l.modules.as_slice()),
    };
    let table = report.table();
    println!("\n{table}");
    if linux.is_some() {
        println!("Linux that ran: {}", report.linux_description());
    }
    let chart = repo_root().join(CHART);
    crate::chart::draw(&chart, &report.chart_heading(), &report.chart_lines())?;
    eprintln!("neoos: drew {}", chart.display());
    let path = repo_root().join(REPORT);
    std::fs::write(&path, report.document(&table))?;
    eprintln!("neoos: wrote {}", path.display());
    Ok(report.complete())
}

/// With this environment variable set, `--bench` boots NeoOS's disk boot
/// only and prints its figures, writing no report (a profiling aid:
/// tools/profile/README.md).
const DISK_ONLY_VARIABLE: &str = "NEOOS_BENCH_DISK_ONLY";

/// With this environment variable set, `--bench` boots NeoOS's threads
/// boots only (the shootdown and 1/2/4-thread lines) and prints their
/// figures, writing no report (a profiling aid: tools/profile/README.md).
const THREADS_ONLY_VARIABLE: &str = "NEOOS_BENCH_THREADS_ONLY";

/// NeoOS's disk boot alone ([`DISK_ONLY_VARIABLE`]): its figures printed,
/// nothing written. True when it ran to its end.
fn measure_neoos_disk_only(timeout: Duration) -> Result<bool> {
    let kernel = build_neoos_bench()?;
    print_measured(&measure_neoos_disk(&kernel, timeout)?)
}

/// NeoOS's threads boots alone ([`THREADS_ONLY_VARIABLE`]): their figures
/// printed, nothing written. True when they ran to their end.
fn measure_neoos_threads_only(timeout: Duration) -> Result<bool> {
    let kernel = build_neoos_bench()?;
    print_measured(&measure_neoos_threads(&kernel, timeout)?)
}

/// Prints the figures of a partial measurement; true when it ran to its
/// end without an error.
fn print_measured(measured: &Measured) -> Result<bool> {
    for (name, value) in &measured.values {
        println!("{name} {value}");
    }
    for error in &measured.errors {
        println!("error {error}");
    }
    Ok(measured.complete && measured.errors.is_empty())
}

/// Builds the benchmark programs, their image and the kernel: the kernel's path.
fn build_neoos_bench() -> Result<PathBuf> {
    eprintln!("neoos: building {SOURCE} for NeoOS");
    let binary = out_dir().join("bench-bin").join("mm_bench");
    build::c_program(
        &repo_root().join(SOURCE),
        &[],
        build::Warnings::Errors,
        &binary,
    )?;
    let threads_binary = out_dir().join("bench-bin").join("mm_threads_bench");
    build::musl_program(
        &repo_root().join(THREADS_SOURCE),
        build::Warnings::Errors,
        &threads_binary,
    )?;
    let mut image = initfs::standard()?;
    image.program("/bin/mm_bench", &binary)?;
    image.program("/bin/mm_threads_bench", &threads_binary)?;
    let image_path = out_dir().join("bench-initfs.cpio");
    image.write(&image_path)?;
    eprintln!("neoos: building the kernel");
    build::kernel(&image_path)
}

/// Builds the kernel and the benchmark, boots NeoOS on the benchmark machine.
fn measure_neoos(timeout: Duration) -> Result<Measured> {
    let kernel = build_neoos_bench()?;
    eprintln!("neoos: measuring NeoOS");
    let outcome = boot_benchmark(
        &kernel,
        None,
        "run=/bin/mm_bench",
        timeout,
        Machine::BENCHMARK,
        None,
    )?;
    let mut measured = checked("NeoOS", &outcome);
    measured.absorb(measure_neoos_threads(&kernel, timeout)?);
    measured.absorb(measure_neoos_disk(&kernel, timeout)?);
    Ok(measured)
}

/// NeoOS's threads boots: the shootdown and 1/2/4-thread lines.
fn measure_neoos_threads(kernel: &Path, timeout: Duration) -> Result<Measured> {
    let mut measured = Measured {
        complete: true,
        ..Measured::default()
    };
    for (mode, machine) in THREADS_BOOTS {
        eprintln!("neoos: measuring NeoOS's {mode} lines on {machine:?}");
        let run = Run {
            path: "/bin/mm_threads_bench".into(),
            args: vec![mode.into()],
        };
        let command_line = launch::run_word(&[run]);
        measured.absorb(boot_threads(
            "NeoOS",
            kernel,
            None,
            &command_line,
            machine,
            timeout,
        )?);
    }
    Ok(measured)
}

/// NeoOS's disk boot: the disk lines.
fn measure_neoos_disk(kernel: &Path, timeout: Duration) -> Result<Measured> {
    eprintln!("neoos: measuring NeoOS on the disk");
    let disk_run = Run {
        path: "/bin/mm_bench".into(),
        args: vec![DISK_MODE.into()],
    };
    // Request waits spin, as Linux's disk boot idles with `idle=poll`.
    let command_line = format!("{} idle=poll", launch::run_word(&[disk_run]));
    measure_disk("NeoOS", kernel, None, &command_line, timeout)
}

/// Boots a threads boot, given up when its console stays silent for
/// [`THREADS_QUIET_LIMIT`] (a stall), which its figures then say.
fn boot_threads(
    system: &str,
    kernel: &Path,
    initrd: Option<&Path>,
    command_line: &str,
    machine: Machine,
    timeout: Duration,
) -> Result<Measured> {
    let started = Instant::now();
    let outcome = boot_benchmark(
        kernel,
        initrd,
        command_line,
        timeout,
        machine,
        Some(THREADS_QUIET_LIMIT),
    )?;
    let mut measured = checked(system, &outcome);
    if outcome.ending == Ending::TimedOut && started.elapsed() < timeout {
        let stall = format!(
            "its boot on {machine:?} was given up: the console stayed silent for {} s",
            THREADS_QUIET_LIMIT.as_secs()
        );
        eprintln!("neoos: {system}: {stall}");
        measured.stalls.push(stall);
    }
    Ok(measured)
}

/// mm_bench.c's argument for the disk lines.
const DISK_MODE: &str = "disk";

/// Boots `kernel` with a fresh benchmark image as its virtio-blk disk and
/// QEMU tracing the disk's requests: the figures of `mm_bench disk` and the
/// request counts.
fn measure_disk(
    system: &str,
    kernel: &Path,
    initrd: Option<&Path>,
    command_line: &str,
    timeout: Duration,
) -> Result<Measured> {
    let image = disk_lines::BenchImage::create()?;
    let trace = out_dir().join(format!("bench-disk-{}.trace", system.to_lowercase()));
    let _ = std::fs::remove_file(&trace);
    let disk = DiskOptions {
        image: Some(image.path.clone()),
        ..DiskOptions::default()
    };
    let options = benchmark_boot_options(kernel, initrd, command_line, timeout);
    let outcome = boot::boot_with_qemu_args(
        &options,
        Machine::BENCHMARK,
        &disk,
        &disk_lines::trace_args(&trace),
        |_| {},
    )?;
    let mut measured = checked(system, &outcome);
    match std::fs::read_to_string(&trace) {
        Ok(text) => image.count_requests(&text, &mut measured),
        Err(e) => eprintln!(
            "neoos: {system}: no request counts: QEMU's trace {}: {e}",
            trace.display()
        ),
    }
    Ok(measured)
}

/// What Linux ran, and its figures.
struct LinuxRun {
    measured: Measured,
    /// The kernel file booted.
    kernel: PathBuf,
    /// The modules loaded for the disk (paths in /lib/modules/RELEASE), in order.
    modules: Vec<String>,
}

/// Installs Linux when needed, builds the benchmark with glibc, boots Linux
/// with the benchmark as `/init`, then again with the disk (its modules in
/// the initramfs). Returns the figures, the kernel booted and the modules.
fn measure_linux(timeout: Duration) -> Result<LinuxRun> {
    let kernel = linux_kernel()?;
    eprintln!("neoos: building {SOURCE} for Linux");
    let binary = out_dir().join("bench-bin").join("mm_bench-linux");
    compile_for_linux(&repo_root().join(SOURCE), &binary)?;
    let image_path = out_dir().join("bench-linux-initramfs.cpio");
    linux_initramfs(&binary)?.write(&image_path)?;
    eprintln!("neoos: measuring Linux ({})", kernel.display());
    let outcome = boot_benchmark(
        &kernel,
        Some(&image_path),
        LINUX_COMMAND_LINE,
        timeout,
        Machine::BENCHMARK,
        None,
    )?;
    let mut measured = checked("Linux", &outcome);
    let threads_binary = out_dir().join("bench-bin").join("mm_threads_bench-linux");
    compile_for_linux(&repo_root().join(THREADS_SOURCE), &threads_binary)?;
    let threads_image = out_dir().join("bench-linux-threads-initramfs.cpio");
    linux_initramfs(&threads_binary)?.write(&threads_image)?;
    for (mode, machine) in THREADS_BOOTS {
        eprintln!("neoos: measuring Linux's {mode} lines on {machine:?}");
        measured.absorb(boot_threads(
            "Linux",
            &kernel,
            Some(&threads_image),
            &linux_threads_command_line(mode, machine),
            machine,
            timeout,
        )?);
    }
    let release = kernel_release_of(&kernel)?;
    let mut disk_image = linux_initramfs(&binary)?;
    disk_image.dir("/home")?;
    let modules = disk_lines::add_linux_modules(&mut disk_image, &release)?;
    let disk_image_path = out_dir().join("bench-linux-disk-initramfs.cpio");
    disk_image.write(&disk_image_path)?;
    eprintln!("neoos: measuring Linux on the disk");
    // Words after `--` are /init's arguments.
    let command_line = format!("{LINUX_COMMAND_LINE} {LINUX_DISK_OPTIONS} -- {DISK_MODE}");
    let disk = measure_disk(
        "Linux",
        &kernel,
        Some(&disk_image_path),
        &command_line,
        timeout,
    )?;
    measured.absorb(disk);
    match &measured.kernel_release {
        Some(release) => eprintln!("neoos: Linux reported release {release} (uname -r)"),
        None => eprintln!("neoos: Linux did not report its release"),
    }
    Ok(LinuxRun {
        measured,
        kernel,
        modules,
    })
}

/// Linux's command line for a threads boot of `mode` on `machine`: on the
/// `-icount` machine it boots with one CPU (see
/// [`LINUX_ICOUNT_THREADS_OPTIONS`]). Words after `--` are /init's arguments.
fn linux_threads_command_line(mode: &str, machine: Machine) -> String {
    match machine {
        Machine::Benchmark { .. } => {
            format!("{LINUX_COMMAND_LINE} {LINUX_ICOUNT_THREADS_OPTIONS} -- init {mode}")
        }
        Machine::Standard { .. } => format!("{LINUX_COMMAND_LINE} -- init {mode}"),
    }
}

/// The release of a `/boot/vmlinuz-RELEASE` file (its modules are in
/// /lib/modules/RELEASE).
fn kernel_release_of(kernel: &Path) -> Result<String> {
    kernel
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .map(String::from)
        .ok_or_else(|| ToolError(format!("{}: not a vmlinuz-RELEASE file", kernel.display())))
}

/// Boots `kernel` on `machine` for the benchmark, given up early when
/// `quiet_limit` is set and its console stays silent that long.
fn boot_benchmark(
    kernel: &Path,
    initrd: Option<&Path>,
    command_line: &str,
    timeout: Duration,
    machine: Machine,
    quiet_limit: Option<Duration>,
) -> Result<BootOutcome> {
    let options = BootOptions {
        quiet_limit,
        ..benchmark_boot_options(kernel, initrd, command_line, timeout)
    };
    boot::boot_on(&options, machine)
}

fn benchmark_boot_options<'a>(
    kernel: &'a Path,
    initrd: Option<&'a Path>,
    command_line: &str,
    timeout: Duration,
) -> BootOptions<'a> {
    BootOptions {
        kernel,
        initrd,
        command_line: command_line.to_string(),
        timeout: Some(timeout),
        quiet_limit: None,
        echo: true,
        interactive: false,
        gdb: false,
    }
}

/// The results of a boot, with a warning when it did not get to the end.
fn checked(system: &str, outcome: &BootOutcome) -> Measured {
    let measured = Measured::from_console(&outcome.console);
    if !measured.complete {
        let why = match outcome.ending {
            Ending::TimedOut => "the time limit ran out".to_string(),
            Ending::KernelFailure => "the kernel failed".to_string(),
            Ending::Clean => "it powered off".to_string(),
            Ending::Other(code) => format!("QEMU ended with status {code:?}"),
        };
        eprintln!("neoos: {system} did not finish the benchmark: {why}");
    }
    for error in &measured.errors {
        eprintln!("neoos: {system}: a call failed in {error} (name, errno)");
    }
    for (path, status) in outcome.programs.iter().filter(|(_, s)| *s != 0) {
        eprintln!("neoos: {system}: {path} ended with status {status}");
    }
    measured
}

/// `gcc -static -O2`: the benchmark as a Linux program.
fn compile_for_linux(source: &Path, out: &Path) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let status = Command::new("gcc")
        .args(["-static", "-O2", "-Wall", "-Wextra", "-o"])
        .arg(out)
        .arg(source)
        .status()
        .map_err(|e| ToolError(format!("cannot start gcc: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(ToolError(format!(
            "compiling {} for Linux failed ({status}); static glibc comes with libc6-dev",
            source.display()
        )))
    }
}

/// An initramfs (cpio newc, uncompressed) with the benchmark as `/init`.
fn linux_initramfs(binary: &Path) -> Result<initfs::Image> {
    let mut image = initfs::Image::default();
    for dir in ["/dev", "/proc", "/tmp"] {
        image.dir(dir)?;
    }
    image.char_device("/dev/console", 5, 1)?;
    image.program("/init", binary)?;
    Ok(image)
}

/// The newest `/boot/vmlinuz-*`, installing Debian's kernel when there is none.
fn linux_kernel() -> Result<PathBuf> {
    if let Some(kernel) = newest_vmlinuz() {
        return Ok(kernel);
    }
    install_linux()?;
    newest_vmlinuz().ok_or_else(|| {
        ToolError(format!(
            "no /boot/vmlinuz-* after installing {LINUX_PACKAGE}"
        ))
    })
}

fn newest_vmlinuz() -> Option<PathBuf> {
    let entries = std::fs::read_dir("/boot").ok()?;
    let mut kernels: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .collect();
    kernels.sort_by_key(|p| version_key(&p.to_string_lossy()));
    kernels.pop()
}

/// The numbers in a name, in order: `vmlinuz-6.1.0-56-amd64` gives
/// [6, 1, 0, 56, 64]; comparing them orders kernel versions.
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn install_linux() -> Result<()> {
    if !is_root() {
        return Err(ToolError(format!(
            "no Linux kernel in /boot; install one with: apt-get install -y {LINUX_PACKAGE}"
        )));
    }
    eprintln!("neoos: installing Linux (apt-get install -y {LINUX_PACKAGE})");
    apt(&["update", "-qq"])?;
    apt(&[
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        LINUX_PACKAGE,
    ])
}

fn apt(args: &[&str]) -> Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| ToolError(format!("cannot start apt-get: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(ToolError(format!(
            "apt-get {} failed ({status})",
            args.join(" ")
        )))
    }
}

fn is_root() -> bool {
    command_output("id", &["-u"]).is_some_and(|uid| uid == "0")
}

/// The first line a command prints, if it runs and succeeds.
fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_string())
}

/// The Debian package that installed `kernel` and its version
/// (`linux-image-6.1.0-57-amd64 6.1.192-3`), when dpkg knows the file.
fn package_of(kernel: &Path) -> Option<String> {
    let owner = command_output("dpkg-query", &["-S", &kernel.to_string_lossy()])?;
    let package = owner.split(':').next()?.trim().to_string();
    let version = command_output("dpkg-query", &["-W", "-f=${Version}", &package])?;
    Some(format!("{package} {version}"))
}

/// The version string a Linux bzImage carries (the setup header's
/// `kernel_version` field, at 0x20e, points to it, less 0x200).
fn bzimage_version(kernel: &Path) -> Option<String> {
    let bytes = std::fs::read(kernel).ok()?;
    let field = bytes.get(0x20e..0x210)?;
    let start = usize::from(u16::from_le_bytes([field[0], field[1]])) + 0x200;
    let text = bytes.get(start..)?;
    let end = text.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&text[..end]).into_owned())
}

/// The figures to compare, and how to show them.
struct Report<'a> {
    neoos: &'a Measured,
    /// None: the notes' reference figures stand for Linux.
    linux: Option<&'a Measured>,
    /// The Linux kernel file that was booted.
    linux_kernel: Option<&'a Path>,
    /// The modules Linux loaded for the disk lines, in order.
    linux_modules: Option<&'a [String]>,
}

impl Report<'_> {
    fn complete(&self) -> bool {
        self.neoos.complete && self.linux.is_none_or(|l| l.complete)
    }

    fn linux_value(&self, row: &Row) -> Option<f64> {
        match self.linux {
            Some(m) => m.get(row.key),
            None => Some(row.reference).filter(|r| !r.is_nan()),
        }
    }

    /// The Markdown table: operation | Linux | NeoOS | NeoOS/Linux | goal | met?
    fn table(&self) -> String {
        let linux_title = if self.linux.is_some() {
            "Linux (measured)"
        } else {
            "Linux (notes' reference, not measured)"
        };
        let mut out = format!(
            "| operation | {linux_title} | NeoOS | NeoOS/Linux | goal | met? |\n\
             |---|---:|---:|---:|---|---|\n"
        );
        for row in &ROWS {
            out.push_str(&self.table_line(row));
        }
        out
    }

    fn table_line(&self, row: &Row) -> String {
        let linux = self.linux_value(row);
        let neoos = self.neoos.get(row.key);
        let versus = match (neoos, linux) {
            (Some(n), Some(l)) if l > 0.0 => format!("{:.2}x", n / l),
            _ => "—".to_string(),
        };
        let met = match (neoos, goal_met(row.goal, neoos, linux)) {
            (None, _) => "not measured",
            (_, Some(true)) => "yes",
            (_, Some(false)) => "no",
            (_, None) => "—",
        };
        format!(
            "| {} | {} | {} | {versus} | {} | {met} |\n",
            row.operation,
            show(row.goal, linux),
            show(row.goal, neoos),
            goal_text(row.goal),
        )
    }

    /// docs/benchmarks.md.
    fn document(&self, table: &str) -> String {
        let date = command_output("date", &["-u", "+%Y-%m-%d"]).unwrap_or_else(|| "?".into());
        let qemu = command_output("qemu-system-x86_64", &["--version"])
            .unwrap_or_else(|| "unknown".into());
        let command = if self.linux.is_some() {
            "cargo run -- --bench --linux"
        } else {
            "cargo run -- --bench"
        };
        let linux = self.linux_description();
        let mut doc = format!(
            "# Benchmarks: NeoOS against Linux\n\n\
             Measured on {date} with `{command}` (written by that command).\n\n\
             - QEMU: {qemu}, TCG (no KVM), `{}`\n\
             - NeoOS: this tree; Linux: {linux}\n\
             - Linux command line: `{LINUX_COMMAND_LINE}`\n\
             - Benchmark: `{SOURCE}` (one source for both systems)\n\n\
             ## How to read this\n\n{HOW_TO_READ}\n\n## Results\n\n{table}\n\
             ![{}](benchmarks.svg)\n\n\
             The chart (`{CHART}`, drawn by the same command) shows every line: Linux's bar \
             beside NeoOS's on the line's own scale, the dashed line is NeoOS's goal.\n",
            Machine::BENCHMARK.qemu_args().join(" "),
            self.chart_heading(),
        );
        doc.push_str(&methods_section());
        doc.push_str(FILE_LINES_NOTE);
        doc.push_str(&self.disk_lines_note());
        doc.push_str(THREADS_LINES_NOTE);
        doc.push_str(&self.against_notes_section());
        doc.push_str(&self.raw_section());
        doc
    }

    /// How the disk lines were measured, and what Linux loaded for them.
    fn disk_lines_note(&self) -> String {
        let first = ROWS
            .iter()
            .position(|r| r.key.starts_with("disk_"))
            .unwrap_or(0)
            + 1;
        let modules = match self.linux_modules {
            Some(modules) => {
                let release = self
                    .linux_kernel
                    .and_then(|k| kernel_release_of(k).ok())
                    .unwrap_or_default();
                let list: Vec<String> = modules.iter().map(|m| format!("`{m}`")).collect();
                format!(
                    "For them Linux's /init loaded, with finit_module, in this order, the \
                     modules of its package (/lib/modules/{release}, dependencies from \
                     modules.dep): {}; then it mounted devtmpfs and `/dev/vda` (ext2) at /home.",
                    list.join(", ")
                )
            }
            None => "Linux did not run.".into(),
        };
        format!(
            "\nThe disk lines ({first} to {}) include the wait for the device, so unlike the \
             others they are not icount-deterministic: QEMU completes a request in its I/O \
             thread, in host time, while the guest spins: both boots add `idle=poll` to \
             their command lines (NeoOS's request waits then poll the device instead of \
             sleeping until its interrupt; Linux's idle loop spins: under `sleep=off` a halted guest's clock jumps to its next \
             timer, which made Linux's cold read fault cost from 7,592 to 317,263 per page \
             from one run to the next). So they move with the host's load, though the lowest \
             of 20 calls picks the quiet ones: NeoOS's writing munmap with 64 scattered \
             dirty pages (4 batches of 16 writes in flight, a wait for each batch, then the \
             inode write and the flush) moved by 0.3% to 4% between runs of the same code on \
             a quiet host, while single calls on a loaded one waited up to 700,000 \
             instructions more (docs/profiles.md, eighth round); over four runs with \
             `idle=poll` Linux's took 895,184 to 904,705 (it queues the 64 requests and \
             waits once). The request lines count device requests, not instructions; in our \
             runs they repeated exactly. QEMU traced the requests with `{}`. {modules}\n",
            ROWS.len(),
            disk_lines::trace_args(Path::new("FILE")).join(" "),
        )
    }

    /// Linux measured here against the notes' figures (when Linux ran).
    fn against_notes_section(&self) -> String {
        let Some(linux) = self.linux else {
            return String::new();
        };
        let mut out = String::from(
            "\n## Linux here against the notes\n\n\
             The notes' harness is not available; this compares its Linux figures with \
             Linux measured by this benchmark.\n\n\
             | operation | notes | here | here/notes |\n|---|---:|---:|---:|\n",
        );
        // Lines the notes have no figure for are not compared.
        for row in ROWS.iter().filter(|r| !r.reference.is_nan()) {
            let here = linux.get(row.key);
            let versus = here.map_or("—".into(), |h| format!("{:.2}", h / row.reference));
            out.push_str(&format!(
                "| {} | {} | {} | {versus} |\n",
                row.operation,
                show(row.goal, Some(row.reference)),
                show(row.goal, here),
            ));
        }
        out
    }

    fn linux_description(&self) -> String {
        if self.linux.is_none() {
            return "not measured in this run: the Linux column holds the reference figures \
                 of `../shared/notes/performance-targets.md` (Linux 6.1.192 under QEMU 7.2)"
                .into();
        }
        let kernel = self
            .linux_kernel
            .map(Path::to_path_buf)
            .or_else(newest_vmlinuz)
            .unwrap_or_default();
        let version = bzimage_version(&kernel).unwrap_or_else(|| "unknown version".into());
        let release = self
            .linux
            .and_then(|l| l.kernel_release.as_deref())
            .unwrap_or("not reported");
        let package = package_of(&kernel).unwrap_or_else(|| "not known to dpkg".into());
        format!(
            "`{}` ({version}); `uname -r` in the guest: `{release}`; Debian package: `{package}`",
            kernel.display()
        )
    }

    fn chart_heading(&self) -> String {
        let linux = if self.linux.is_some() {
            "Linux measured"
        } else {
            "Linux: the notes' figures"
        };
        format!("NeoOS beside Linux, guest instructions per line ({linux}; lower is better)")
    }

    /// One panel per line of the table, with the goal on its scale.
    fn chart_lines(&self) -> Vec<crate::chart::ChartLine> {
        ROWS.iter()
            .map(|row| {
                let linux = self.linux_value(row);
                let (goal, ratio) = match row.goal {
                    Goal::HalfOfLinux => (linux.map(|l| l * 0.5), false),
                    Goal::RatioAtMost(limit) => (Some(limit), true),
                    Goal::AtMost(limit) => (Some(limit), false),
                    Goal::Compared => (None, false),
                };
                crate::chart::ChartLine {
                    title: row.operation.to_string(),
                    linux,
                    neoos: self.neoos.get(row.key),
                    goal,
                    ratio,
                }
            })
            .collect()
    }

    /// Every figure each system printed, ratios' parts included.
    fn raw_section(&self) -> String {
        let mut out = String::from("\n## Every figure printed\n\n");
        let mut names: BTreeMap<&str, (Option<f64>, Option<f64>)> = BTreeMap::new();
        for (name, v) in &self.neoos.values {
            names.entry(name).or_default().1 = Some(*v);
        }
        for (name, v) in self.linux.map(|l| l.values.as_slice()).unwrap_or_default() {
            names.entry(name).or_default().0 = Some(*v);
        }
        out.push_str("| name (mm_bench.c) | Linux | NeoOS |\n|---|---:|---:|\n");
        for (name, (linux, neoos)) in names {
            out.push_str(&format!("| `{name}` | {} | {} |\n", raw(linux), raw(neoos)));
        }
        for (system, m) in [("NeoOS", Some(self.neoos)), ("Linux", self.linux)] {
            if let Some(m) = m {
                out.push_str(&incomplete_note(system, m));
            }
        }
        out
    }
}

const HOW_TO_READ: &str = "Every figure is a count of guest instructions (QEMU's \
`-icount shift=0,sleep=off` makes the guest's `rdtsc` advance once per instruction), \
the minimum over many repetitions, so it repeats run to run (in our runs NeoOS's figures \
came out identical; Linux's varied by under 1% on the file and 100,000-mapping lines) and \
measures path length, not cache or TLB behaviour: a `rep stos` iteration, a TLB flush or an exception \
entry each count as one instruction. \"per page\" lines divide one call's count by its \
pages. The two ratio lines compare a system with itself (a large or crowded address \
space against a small one), so their goal is on NeoOS's ratio alone; on every other line \
NeoOS's goal is at most half of Linux's count (NeoOS/Linux ≤ 0.5x). \"met?\" says whether \
NeoOS reaches its goal.";

/// Where the 64 MiB file lines are explained.
const FILE_LINES_NOTE: &str = "\nThe 64 MiB file lines (9 to 22): how their costs were \
     profiled, what they were before the dirty set and the present-entry walks, and why \
     some stay above Linux: `docs/file-costs.md`.\n";

/// What each line of the table measures.
fn methods_section() -> String {
    let mut out = String::from("\n## What each line measures\n\n");
    for (i, row) in ROWS.iter().enumerate() {
        out.push_str(&format!("{}. {}: {}\n", i + 1, row.operation, row.method));
    }
    out
}

fn goal_met(goal: Goal, neoos: Option<f64>, linux: Option<f64>) -> Option<bool> {
    match goal {
        Goal::HalfOfLinux => Some(neoos? <= linux? * 0.5),
        Goal::RatioAtMost(limit) | Goal::AtMost(limit) => Some(neoos? <= limit),
        Goal::Compared => None,
    }
}

fn goal_text(goal: Goal) -> String {
    match goal {
        Goal::HalfOfLinux => "≤ 0.5x Linux".into(),
        Goal::RatioAtMost(limit) => format!("NeoOS ratio ≤ {limit:.1}x"),
        Goal::AtMost(limit) => format!("≤ {}", thousands(limit as u64)),
        Goal::Compared => "—".into(),
    }
}

/// A figure as the table shows it: instructions with thousands separators, or
/// a ratio.
fn show(goal: Goal, value: Option<f64>) -> String {
    match (goal, value) {
        (_, None) => "—".into(),
        (Goal::HalfOfLinux | Goal::AtMost(_) | Goal::Compared, Some(v)) => {
            thousands(v.round() as u64)
        }
        (Goal::RatioAtMost(_), Some(v)) => format!("{v:.2}x"),
    }
}

fn raw(value: Option<f64>) -> String {
    match value {
        None => "—".into(),
        Some(v) if v.fract() == 0.0 => thousands(v as u64),
        Some(v) => format!("{v:.2}"),
    }
}

/// 1234567 as "1,234,567".
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn incomplete_note(system: &str, m: &Measured) -> String {
    let mut out = String::new();
    if !m.complete {
        out.push_str(&format!(
            "\n{system} did not finish the benchmark (no `BENCH done`).\n"
        ));
    }
    for error in &m.errors {
        out.push_str(&format!(
            "\n{system}: a call failed in `{error}` (name, errno).\n"
        ));
    }
    for stall in &m.stalls {
        out.push_str(&format!("\n{system}: {stall}.\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    #[test]
    fn result_lines_are_collected_among_other_console_lines() {
        let console = lines(
            "[neoos] booting\nBENCH map_unmap_page 9828\nnoise\nBENCH ratio 3.05\n\
             BENCH error pair_with_100000 12\nBENCH done\n",
        );
        let m = Measured::from_console(&console);
        assert_eq!(m.get("map_unmap_page"), Some(9828.0));
        assert_eq!(m.get("ratio"), Some(3.05));
        assert_eq!(m.errors, vec!["pair_with_100000 12".to_string()]);
        assert_eq!(m.kernel_release, None);
        assert!(m.complete);
        let m = Measured::from_console(&lines("BENCH kernel 6.1.0-57-amd64\n"));
        assert_eq!(m.kernel_release.as_deref(), Some("6.1.0-57-amd64"));
    }

    #[test]
    fn a_console_without_done_is_incomplete() {
        let m = Measured::from_console(&lines("BENCH map_unmap_page 1\n"));
        assert!(!m.complete);
    }

    #[test]
    fn linux_boots_with_one_cpu_only_on_the_icount_threads_machine() {
        let [(threads, icount), (shootdown, standard)] = THREADS_BOOTS;
        let line = linux_threads_command_line(threads, icount);
        assert!(line.contains(" maxcpus=1 "), "{line}");
        assert!(line.ends_with(" -- init threads"), "{line}");
        let line = linux_threads_command_line(shootdown, standard);
        assert!(!line.contains("maxcpus"), "{line}");
        assert!(line.ends_with(" -- init shootdown"), "{line}");
    }

    #[test]
    fn a_boot_given_up_for_silence_is_said_under_the_figures() {
        let m = Measured {
            complete: true,
            stalls: vec!["its boot was given up".into()],
            ..Measured::default()
        };
        assert_eq!(
            incomplete_note("Linux", &m),
            "\nLinux: its boot was given up.\n"
        );
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(9828), "9,828");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn newer_kernel_versions_sort_last() {
        let mut names = ["vmlinuz-6.1.0-56-amd64", "vmlinuz-6.1.0-9-amd64"];
        names.sort_by_key(|n| version_key(n));
        assert_eq!(names[1], "vmlinuz-6.1.0-56-amd64");
    }

    #[test]
    fn goals_compare_against_half_of_linux_or_the_ratio_limit() {
        assert_eq!(
            goal_met(Goal::HalfOfLinux, Some(50.0), Some(100.0)),
            Some(true)
        );
        assert_eq!(
            goal_met(Goal::HalfOfLinux, Some(51.0), Some(100.0)),
            Some(false)
        );
        assert_eq!(
            goal_met(Goal::RatioAtMost(1.2), Some(1.3), Some(3.0)),
            Some(false)
        );
        assert_eq!(goal_met(Goal::RatioAtMost(1.2), None, Some(3.0)), None);
        assert_eq!(
            goal_met(Goal::AtMost(1000.0), Some(1001.0), None),
            Some(false)
        );
        assert_eq!(
            goal_met(Goal::AtMost(1000.0), Some(999.0), None),
            Some(true)
        );
        assert_eq!(goal_met(Goal::Compared, Some(5.0), Some(1.0)), None);
    }
}
