//! Differential test against the host Linux kernel: the same random
//! sequences of `mmap(MAP_FIXED)`, `munmap` (holes, partial ranges,
//! unaligned addresses, zero lengths), `mprotect` and stores run on a
//! reserved host region and on the mapping core; after every step the
//! page-granular layout (from `/proc/self/maps`), the results and the page
//! contents must agree.
#![cfg(target_os = "linux")]

use neoos_abi::mman;
use neoos_mm::testing::Machine;
use neoos_mm::{AsId, PAGE_SIZE};
use proptest::prelude::*;
use std::sync::Mutex;

/// Far below Linux's top-down mmap area, so no other allocation lands in the
/// holes the test makes.
const REGION: u64 = 0x2000_0000_0000;
const PAGES: u64 = 32;

/// Tests in this file share the host region.
static HOST: Mutex<()> = Mutex::new(());

#[derive(Clone, Debug)]
enum Op {
    Map {
        page: u64,
        pages: u64,
        prot: u8,
        shared: bool,
    },
    Unmap {
        page: u64,
        pages: u64,
        misalign: bool,
        zero: bool,
    },
    Protect {
        page: u64,
        pages: u64,
        prot: u8,
    },
    Store {
        page: u64,
        value: u8,
    },
}

fn prot_bits(p: u8) -> u32 {
    [
        mman::PROT_NONE,
        mman::PROT_READ,
        mman::PROT_READ | mman::PROT_WRITE,
    ][p as usize]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..PAGES, 1..8u64, 0..3u8, any::<bool>()).prop_map(|(page, pages, prot, shared)| Op::Map { page, pages, prot, shared }),
        3 => (0..PAGES, 1..10u64, any::<bool>(), any::<bool>()).prop_map(|(page, pages, m, z)| Op::Unmap { page, pages, misalign: m && page % 3 == 0, zero: z && page % 4 == 1 }),
        2 => (0..PAGES, 1..6u64, 0..3u8).prop_map(|(page, pages, prot)| Op::Protect { page, pages, prot }),
        4 => (0..PAGES, any::<u8>()).prop_map(|(page, value)| Op::Store { page, value }),
    ]
}

/// Per page: None for a hole, else (read, write, shared).
type Layout = Vec<Option<(bool, bool, bool)>>;

fn host_layout() -> Layout {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mut layout = vec![None; PAGES as usize];
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let range = parts.next().unwrap();
        let perms = parts.next().unwrap().as_bytes();
        let (s, e) = range.split_once('-').unwrap();
        let (s, e) = (
            u64::from_str_radix(s, 16).unwrap(),
            u64::from_str_radix(e, 16).unwrap(),
        );
        for (i, slot) in layout.iter_mut().enumerate() {
            let va = REGION + i as u64 * PAGE_SIZE;
            if s <= va && va < e {
                *slot = Some((perms[0] == b'r', perms[1] == b'w', perms[3] == b's'));
            }
        }
    }
    layout
}

fn mm_layout(m: &Machine, p: AsId) -> Layout {
    (0..PAGES)
        .map(|i| {
            m.vm.mapping_at(p, REGION + i * PAGE_SIZE).map(|map| {
                (
                    map.prot.read,
                    map.prot.write,
                    map.sharing == neoos_mm::mapping::Sharing::Shared,
                )
            })
        })
        .collect()
}

fn errno() -> i64 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as i64
}

struct Diff {
    m: Machine,
    p: AsId,
}

impl Diff {
    fn new() -> Self {
        // Start from an empty host region.
        unsafe { libc::munmap(REGION as *mut _, (PAGES * PAGE_SIZE) as usize) };
        let mut m = Machine::new();
        let p = m.new_space();
        Diff { m, p }
    }

    fn apply(&mut self, op: &Op) {
        let p = self.p;
        match *op {
            Op::Map {
                page,
                pages,
                prot,
                shared,
            } => {
                let pages = pages.min(PAGES - page);
                let addr = REGION + page * PAGE_SIZE;
                let len = pages * PAGE_SIZE;
                let flags = mman::MAP_FIXED
                    | mman::MAP_ANON
                    | if shared {
                        mman::MAP_SHARED
                    } else {
                        mman::MAP_PRIVATE
                    };
                let host = unsafe {
                    libc::mmap(
                        addr as *mut _,
                        len as usize,
                        prot_bits(prot) as i32,
                        flags as i32,
                        -1,
                        0,
                    )
                };
                assert_eq!(host as u64, addr);
                let ours = self.m.with(p, |vm, hw| {
                    vm.mmap(p, hw, addr, len, prot_bits(prot), flags, None, 0)
                });
                assert_eq!(ours, Ok(addr));
            }
            Op::Unmap {
                page,
                pages,
                misalign,
                zero,
            } => {
                let addr = REGION + page * PAGE_SIZE + if misalign { 100 } else { 0 };
                let len = if zero {
                    0
                } else {
                    pages.min(PAGES - page) * PAGE_SIZE
                };
                let host = unsafe { libc::munmap(addr as *mut _, len as usize) };
                let host = if host == 0 { 0 } else { errno() };
                let ours = self
                    .m
                    .with(p, |vm, hw| vm.munmap(p, hw, addr, len))
                    .map_or_else(|e| e.posix_errno(), |_| 0);
                assert_eq!(ours, host, "munmap({addr:#x}, {len})");
            }
            Op::Protect { page, pages, prot } => {
                let pages = pages.min(PAGES - page);
                let layout = mm_layout(&self.m, p);
                let range = &layout[page as usize..(page + pages) as usize];
                // Linux applies mprotect up to a hole it finds past the start;
                // the mapping core checks first. Compare only where both are defined.
                if range[0].is_some() && range.iter().any(|s| s.is_none()) {
                    return;
                }
                let addr = REGION + page * PAGE_SIZE;
                let len = pages * PAGE_SIZE;
                let host =
                    unsafe { libc::mprotect(addr as *mut _, len as usize, prot_bits(prot) as i32) };
                let host = if host == 0 { 0 } else { errno() };
                let ours = self
                    .m
                    .with(p, |vm, hw| vm.mprotect(p, hw, addr, len, prot_bits(prot)))
                    .map_or_else(|e| e.posix_errno(), |_| 0);
                assert_eq!(ours, host, "mprotect({addr:#x}, {len})");
            }
            Op::Store { page, value } => {
                let addr = REGION + page * PAGE_SIZE + (page % 7) * 8;
                let writable = mm_layout(&self.m, p)[page as usize].is_some_and(|(_, w, _)| w);
                if !writable {
                    assert!(self.m.store(p, addr, &[value]).is_err());
                    return;
                }
                unsafe { std::ptr::write_volatile(addr as *mut u8, value) };
                self.m.store(p, addr, &[value]).unwrap();
            }
        }
    }

    fn check(&mut self) {
        let ours = mm_layout(&self.m, self.p);
        assert_eq!(ours, host_layout(), "layout differs");
        for (i, slot) in ours.iter().enumerate() {
            if let Some((true, _, _)) = slot {
                let addr = REGION + i as u64 * PAGE_SIZE;
                let mut host = [0u8; 64];
                for (k, b) in host.iter_mut().enumerate() {
                    *b = unsafe { std::ptr::read_volatile((addr + k as u64) as *const u8) };
                }
                let mine = self.m.load(self.p, addr, 64).unwrap();
                assert_eq!(&mine[..], &host[..], "contents of page {i}");
            }
        }
    }
}

impl Drop for Diff {
    fn drop(&mut self) {
        unsafe { libc::munmap(REGION as *mut _, (PAGES * PAGE_SIZE) as usize) };
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn mapping_core_matches_linux(ops in proptest::collection::vec(op(), 1..40)) {
        let _guard = HOST.lock().unwrap_or_else(|e| e.into_inner());
        let mut d = Diff::new();
        for op in &ops {
            d.apply(op);
            d.check();
        }
    }
}
