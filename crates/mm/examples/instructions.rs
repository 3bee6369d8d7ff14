//! Runs one scenario of the performance targets many times, for counting
//! instructions with `valgrind --tool=callgrind --toggle-collect='*measured*'`
//! (see README.md). Usage: `instructions SCENARIO [ITERATIONS]`.

use neoos_abi::mman;
use neoos_mm::testing::Machine;
use neoos_mm::{Access, AsId, FileAccess, PAGE_SIZE};
use std::hint::black_box;

const RW: u32 = mman::PROT_READ | mman::PROT_WRITE;
const ANON: u32 = mman::MAP_PRIVATE | mman::MAP_ANON;

fn with_mappings(n: u64) -> (Machine, AsId) {
    let mut m = Machine::new();
    let p = m.new_space();
    for i in 0..n {
        let addr = 0x1000_0000 + i * 2 * PAGE_SIZE;
        m.with(p, |vm, hw| {
            vm.mmap(p, hw, addr, PAGE_SIZE, RW, ANON | mman::MAP_FIXED, None, 0)
        })
        .unwrap();
    }
    (m, p)
}

#[inline(never)]
fn measured_pair(m: &mut Machine, p: AsId) {
    m.with(p, |vm, hw| {
        let a = vm.mmap(p, hw, 0, PAGE_SIZE, RW, ANON, None, 0).unwrap();
        vm.munmap(p, hw, black_box(a), PAGE_SIZE).unwrap();
    });
}

#[inline(never)]
fn measured_fault(m: &mut Machine, p: AsId, va: u64) {
    m.with(p, |vm, hw| vm.handle_fault(p, hw, va, Access::Write))
        .unwrap();
}

#[inline(never)]
fn measured_munmap(m: &mut Machine, p: AsId, a: u64, len: u64) {
    m.with(p, |vm, hw| vm.munmap(p, hw, a, len)).unwrap();
}

#[inline(never)]
fn measured_neo_munmap(m: &mut Machine, p: AsId, a: u64, len: u64) {
    m.with(p, |vm, hw| vm.neo_munmap(p, hw, a, len as i64))
        .unwrap();
}

#[inline(never)]
fn measured_mprotect(m: &mut Machine, p: AsId, a: u64) {
    m.with(p, |vm, hw| {
        vm.mprotect(p, hw, a, PAGE_SIZE, mman::PROT_READ)
    })
    .unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scenario = args.get(1).map(String::as_str).unwrap_or("pair10");
    let iterations: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    match scenario {
        "pair10" | "pair1000" | "pair100000" => {
            let n = scenario[4..].parse().unwrap();
            let (mut m, p) = with_mappings(n);
            for _ in 0..iterations {
                measured_pair(&mut m, p);
            }
        }
        "fault" => {
            let (mut m, p) = with_mappings(0);
            let a = m
                .with(p, |vm, hw| {
                    vm.mmap(p, hw, 0, iterations * PAGE_SIZE, RW, ANON, None, 0)
                })
                .unwrap();
            for i in 0..iterations {
                measured_fault(&mut m, p, a + i * PAGE_SIZE);
            }
        }
        "sparse40k" | "sparse1g" => {
            let len = if scenario == "sparse40k" {
                40 << 10
            } else {
                1 << 30
            };
            let (mut m, p) = with_mappings(0);
            for _ in 0..iterations {
                let a = m
                    .with(p, |vm, hw| vm.mmap(p, hw, 0, len, RW, ANON, None, 0))
                    .unwrap();
                for i in 0..10 {
                    m.touch(p, a + i * (len / 10), Access::Write).unwrap();
                }
                measured_munmap(&mut m, p, a, len);
            }
        }
        "populated16m" => {
            let (mut m, p) = with_mappings(0);
            for _ in 0..iterations {
                let a = m
                    .with(p, |vm, hw| vm.mmap(p, hw, 0, 16 << 20, RW, ANON, None, 0))
                    .unwrap();
                for i in 0..4096 {
                    m.touch(p, a + i * PAGE_SIZE, Access::Write).unwrap();
                }
                measured_munmap(&mut m, p, a, 16 << 20);
            }
        }
        "file64" => {
            let mut m = Machine::new();
            let p = m.new_space();
            let f = m.create_file(1, &vec![0u8; 64 * PAGE_SIZE as usize]);
            for _ in 0..iterations {
                let len = 64 * PAGE_SIZE;
                let a = m
                    .with(p, |vm, hw| {
                        vm.neo_mmap(p, hw, f, FileAccess::ReadWrite, 0, len as i64)
                    })
                    .unwrap();
                for i in 0..64 {
                    m.touch(p, a + i * PAGE_SIZE, Access::Write).unwrap();
                }
                measured_neo_munmap(&mut m, p, a, len);
            }
        }
        "mprotect" => {
            let (mut m, p) = with_mappings(0);
            for _ in 0..iterations {
                let a = m
                    .with(p, |vm, hw| {
                        vm.mmap(p, hw, 0, 16 * PAGE_SIZE, RW, ANON, None, 0)
                    })
                    .unwrap();
                measured_mprotect(&mut m, p, a + 5 * PAGE_SIZE);
                m.with(p, |vm, hw| vm.munmap(p, hw, a, 16 * PAGE_SIZE))
                    .unwrap();
            }
        }
        "sizes" => {
            println!(
                "Mapping: {} bytes",
                std::mem::size_of::<neoos_mm::mapping::Mapping>()
            );
        }
        other => panic!("unknown scenario {other}"),
    }
}
