//! A software [`Platform`] for host tests: the mapping core's software page
//! table and frames, a console in memory, a settable clock, and a limit on
//! contexts; plus a tiny ELF program builder and a kernel fixture.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use neoos_mm::testing::{SoftFrames, SoftPageTable};

use crate::fs::FileSystem;
use crate::kernel::Kernel;
use crate::platform::{IpiCounters, Platform};

/// The test machine.
#[derive(Default)]
pub struct TestPlatform {
    pub frames: SoftFrames,
    /// The FS base last given by `set_user_fs_base`.
    pub fs_base: u64,
    /// The state of the random source (a counter run through splitmix64).
    pub random_state: u64,
    pub reports: Vec<String>,
    pub console_out: Vec<u8>,
    pub console_in: VecDeque<u8>,
    pub ticks: u64,
    pub contexts_live: usize,
    pub contexts_max: Option<usize>,
    pub tables_live: usize,
    pub heap_low: bool,
    /// Heap bytes above the reserve (`heap_room`), unbounded unless set.
    pub heap_room: Option<usize>,
    /// What `ipi_counters` reports.
    pub ipis: IpiCounters,
    /// The CPUs `cpus_online` says run programs.
    pub cpus: u32,
}

/// The registers a test process starts with: (entry, stack).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestFrame {
    pub entry: u64,
    pub stack: u64,
}

impl Platform for TestPlatform {
    type PageTable = SoftPageTable;
    type Frames = SoftFrames;
    type UserFrame = TestFrame;
    type Context = TestFrame;

    fn frames(&mut self) -> &mut SoftFrames {
        &mut self.frames
    }
    fn new_page_table(&mut self) -> Option<SoftPageTable> {
        self.tables_live += 1;
        Some(SoftPageTable::default())
    }
    fn free_page_table(&mut self, table: SoftPageTable) {
        assert!(table.entries.is_empty(), "a freed table maps nothing");
        self.tables_live -= 1;
    }
    fn user_frame(&self, entry: u64, stack: u64) -> TestFrame {
        TestFrame { entry, stack }
    }
    fn new_context(&mut self, frame: &TestFrame) -> Option<TestFrame> {
        if self.contexts_max.is_some_and(|m| self.contexts_live >= m) {
            return None;
        }
        self.contexts_live += 1;
        Some(*frame)
    }
    fn free_context(&mut self, _: TestFrame) {
        self.contexts_live -= 1;
    }
    fn report(&mut self, line: fmt::Arguments) {
        self.reports.push(alloc::format!("{line}"));
    }
    fn ticks(&self) -> u64 {
        self.ticks
    }
    fn set_user_fs_base(&mut self, base: u64) {
        self.fs_base = base;
    }
    fn random_u64(&mut self) -> u64 {
        self.random_state = self.random_state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.random_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn hwcap(&self) -> u64 {
        TEST_HWCAP
    }
    fn ipi_counters(&self) -> IpiCounters {
        self.ipis
    }
    fn cpus_online(&self) -> u32 {
        self.cpus.max(1)
    }
    fn frame_counts(&self) -> (u64, u64) {
        (
            1000,
            1000u64.saturating_sub(self.frames.live_count() as u64),
        )
    }
    fn console_write(&mut self, bytes: &[u8]) {
        self.console_out.extend_from_slice(bytes);
    }
    fn console_read(&mut self) -> Option<u8> {
        self.console_in.pop_front()
    }
    fn heap_room(&self) -> usize {
        match (self.heap_low, self.heap_room) {
            (true, _) => 0,
            (false, room) => room.unwrap_or(usize::MAX),
        }
    }
}

/// What the test machine reports as `AT_HWCAP`.
pub const TEST_HWCAP: u64 = 0x0789_abcd;

/// Where [`program`] loads.
pub const PROGRAM_BASE: u64 = 0x40_0000;

/// Where a program of [`program`] or [`linux_program`] starts.
pub const PROGRAM_ENTRY: u64 = PROGRAM_BASE + 64 + 2 * 56;

/// A minimal NeoOS x86_64 executable: one read-execute `PT_LOAD` segment
/// holding the whole file at [`PROGRAM_BASE`] followed by `bss` zero
/// bytes, and a `PT_NOTE` segment with the NeoOS note after the code.
pub fn program(code: &[u8], bss: u64) -> Vec<u8> {
    executable(code, bss, b"NeoOS\0")
}

/// The same executable with a note of another owner instead: a Linux
/// program.
pub fn linux_program(code: &[u8], bss: u64) -> Vec<u8> {
    executable(code, bss, b"Other\0")
}

fn executable(code: &[u8], bss: u64, note_owner: &[u8; 6]) -> Vec<u8> {
    const HEADERS: u64 = 64 + 2 * 56;
    let mut note = Vec::new();
    for word in [6u32, 4, 1] {
        note.extend_from_slice(&word.to_le_bytes());
    }
    note.extend_from_slice(note_owner);
    note.extend_from_slice(&[0, 0, 1, 0, 0, 0]); // pad to 4, version 1
    let mut f = Vec::new();
    f.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    f.extend_from_slice(&1u32.to_le_bytes());
    f.extend_from_slice(&(PROGRAM_BASE + HEADERS).to_le_bytes()); // entry
    f.extend_from_slice(&64u64.to_le_bytes()); // phoff
    f.extend_from_slice(&0u64.to_le_bytes()); // shoff
    f.extend_from_slice(&0u32.to_le_bytes()); // flags
    for half in [64u16, 56, 2, 64, 0, 0] {
        f.extend_from_slice(&half.to_le_bytes());
    }
    let note_at = HEADERS + code.len() as u64;
    let size = note_at + note.len() as u64;
    f.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    f.extend_from_slice(&5u32.to_le_bytes()); // R + X
    f.extend_from_slice(&0u64.to_le_bytes()); // offset
    f.extend_from_slice(&PROGRAM_BASE.to_le_bytes());
    f.extend_from_slice(&PROGRAM_BASE.to_le_bytes());
    f.extend_from_slice(&size.to_le_bytes());
    f.extend_from_slice(&(size + bss).to_le_bytes());
    f.extend_from_slice(&4096u64.to_le_bytes());
    f.extend_from_slice(&4u32.to_le_bytes()); // PT_NOTE
    f.extend_from_slice(&4u32.to_le_bytes()); // R
    f.extend_from_slice(&note_at.to_le_bytes());
    f.extend_from_slice(&(PROGRAM_BASE + note_at).to_le_bytes());
    f.extend_from_slice(&(PROGRAM_BASE + note_at).to_le_bytes());
    f.extend_from_slice(&(note.len() as u64).to_le_bytes());
    f.extend_from_slice(&(note.len() as u64).to_le_bytes());
    f.extend_from_slice(&4u64.to_le_bytes());
    f.extend_from_slice(code);
    f.extend_from_slice(&note);
    f
}

/// A cpio "newc" archive of `files` (path without the leading `/`, data);
/// `None` data is a directory.
pub fn cpio(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut add = |name: &str, mode: u32, data: &[u8]| {
        let header =
            alloc::format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0, mode, 0, 0, 1, 0, data.len(), 0, 0, 0, 0, name.len() + 1, 0
        );
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    for (name, data) in entries {
        match data {
            Some(d) => add(name, 0o100644, d),
            None => add(name, 0o040755, &[]),
        }
    }
    add("TRAILER!!!", 0, &[]);
    out
}

/// A kernel over the test machine with `/bin/prog` (a NeoOS program),
/// `/bin/linux` (a Linux program), `/tmp` and
/// `/etc/motd`.
pub fn kernel() -> Kernel<TestPlatform> {
    let prog = program(&[0xf4; 32], 8192);
    let linux = linux_program(&[0xf4; 32], 8192);
    let archive = cpio(&[
        ("bin", None),
        ("bin/prog", Some(&prog)),
        ("bin/linux", Some(&linux)),
        ("tmp", None),
        ("etc", None),
        ("etc/motd", Some(b"hello\n")),
    ]);
    let mut fs = FileSystem::new();
    assert_eq!(fs.unpack_cpio(&archive), Ok(6));
    Kernel::new(TestPlatform::default(), fs, VecDeque::new())
}
