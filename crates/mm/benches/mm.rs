//! Criterion benches of the mapping core on the software machine (map-based
//! page table, heap frames): the operations of the performance targets, and
//! the host kernel's mmap/munmap for reference.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use neoos_abi::mman;
use neoos_mm::testing::Machine;
use neoos_mm::{Access, AsId, FileAccess, PAGE_SIZE};
use std::hint::black_box;
use std::time::Duration;

const RW: u32 = mman::PROT_READ | mman::PROT_WRITE;
const ANON_PRIVATE: u32 = mman::MAP_PRIVATE | mman::MAP_ANON;

fn machine_with_mappings(n: u64) -> (Machine, AsId) {
    let mut m = Machine::new();
    let p = m.new_space();
    for i in 0..n {
        // Two pages apart so that they stay distinct mappings.
        let addr = 0x1000_0000 + i * 2 * PAGE_SIZE;
        m.with(p, |vm, hw| {
            vm.mmap(
                p,
                hw,
                addr,
                PAGE_SIZE,
                RW,
                ANON_PRIVATE | mman::MAP_FIXED,
                None,
                0,
            )
        })
        .unwrap();
    }
    (m, p)
}

fn mmap_munmap_pair(c: &mut Criterion) {
    let mut g = c.benchmark_group("mmap+munmap one page");
    for n in [10u64, 1_000, 100_000] {
        let (mut m, p) = machine_with_mappings(n);
        g.bench_function(format!("{n} mappings"), |b| {
            b.iter(|| {
                m.with(p, |vm, hw| {
                    let a = vm
                        .mmap(p, hw, 0, PAGE_SIZE, RW, ANON_PRIVATE, None, 0)
                        .unwrap();
                    vm.munmap(p, hw, black_box(a), PAGE_SIZE).unwrap();
                })
            })
        });
    }
    g.finish();
}

fn first_touch(c: &mut Criterion) {
    let mut g = c.benchmark_group("first-touch fault");
    // 256 pages: a small private object; 4,096 (16 MiB, the guest
    // benchmark's region): a page index deep enough to show its search.
    for pages in [256u64, 4096] {
        g.throughput(Throughput::Elements(pages));
        g.bench_function(format!("anonymous, per {pages} pages"), |b| {
            b.iter_batched(
                || {
                    let (mut m, p) = machine_with_mappings(0);
                    let a = m
                        .with(p, |vm, hw| {
                            vm.mmap(p, hw, 0, 16 << 20, RW, ANON_PRIVATE, None, 0)
                        })
                        .unwrap();
                    (m, p, a)
                },
                |(mut m, p, a)| {
                    for i in 0..pages {
                        m.with(p, |vm, hw| {
                            vm.handle_fault(p, hw, a + i * PAGE_SIZE, Access::Write)
                        })
                        .unwrap();
                    }
                    m
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn sparse_munmap(c: &mut Criterion) {
    let mut g = c.benchmark_group("munmap with 10 resident pages");
    for (name, len) in [("40 KiB", 40u64 << 10), ("1 GiB", 1u64 << 30)] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let (mut m, p) = machine_with_mappings(0);
                    let a = m
                        .with(p, |vm, hw| {
                            vm.mmap(p, hw, 0, len, RW, ANON_PRIVATE, None, 0)
                        })
                        .unwrap();
                    let step = len / 10;
                    for i in 0..10 {
                        m.touch(p, a + i * step, Access::Write).unwrap();
                    }
                    (m, p, a)
                },
                |(mut m, p, a)| {
                    m.with(p, |vm, hw| vm.munmap(p, hw, a, len)).unwrap();
                    m
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn populated_munmap(c: &mut Criterion) {
    let mut g = c.benchmark_group("munmap populated 16 MiB");
    g.throughput(Throughput::Elements(4096));
    g.sample_size(10);
    g.bench_function("per 4096 pages", |b| {
        b.iter_batched(
            || {
                let (mut m, p) = machine_with_mappings(0);
                let a = m
                    .with(p, |vm, hw| {
                        vm.mmap(p, hw, 0, 16 << 20, RW, ANON_PRIVATE, None, 0)
                    })
                    .unwrap();
                for i in 0..4096 {
                    m.touch(p, a + i * PAGE_SIZE, Access::Write).unwrap();
                }
                (m, p, a)
            },
            |(mut m, p, a)| {
                m.with(p, |vm, hw| vm.munmap(p, hw, a, 16 << 20)).unwrap();
                m
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn file_munmap(c: &mut Criterion) {
    let mut g = c.benchmark_group("neo_munmap 64 MiB file mapping, 64 dirty pages");
    g.sample_size(10);
    const LEN: u64 = 64 << 20;
    for runs in [1u64, 8, 64] {
        g.bench_function(format!("{runs} runs"), |b| {
            b.iter_batched(
                || {
                    let mut m = Machine::new();
                    let p = m.new_space();
                    let f = m.create_file(1, &vec![0u8; LEN as usize]);
                    let a = m
                        .with(p, |vm, hw| {
                            vm.neo_mmap(p, hw, f, FileAccess::ReadWrite, 0, LEN as i64)
                        })
                        .unwrap();
                    let per_run = 64 / runs;
                    for r in 0..runs {
                        for k in 0..per_run {
                            let page = r * (LEN / PAGE_SIZE / runs) + k;
                            m.touch(p, a + page * PAGE_SIZE, Access::Write).unwrap();
                        }
                    }
                    (m, p, a)
                },
                |(mut m, p, a)| {
                    m.with(p, |vm, hw| vm.neo_munmap(p, hw, a, LEN as i64))
                        .unwrap();
                    m
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn file_msync(c: &mut Criterion) {
    let mut g = c.benchmark_group("msync(MS_SYNC) 64 MiB shared file mapping");
    g.sample_size(10);
    const LEN: u64 = 64 << 20;
    const PAGES: u64 = LEN / PAGE_SIZE;
    for dirty in [0u64, 64, PAGES] {
        g.bench_function(format!("{dirty} dirty pages"), |b| {
            b.iter_batched(
                || {
                    let mut m = Machine::new();
                    let p = m.new_space();
                    let f = m.create_file(1, &vec![0u8; LEN as usize]);
                    let a = m
                        .with(p, |vm, hw| {
                            let file = Some((f, FileAccess::ReadWrite));
                            vm.mmap(p, hw, 0, LEN, RW, mman::MAP_SHARED, file, 0)
                        })
                        .unwrap();
                    for k in 0..dirty {
                        let page = k * (PAGES / dirty);
                        m.touch(p, a + page * PAGE_SIZE, Access::Write).unwrap();
                    }
                    (m, p, a)
                },
                |(mut m, p, a)| {
                    m.with(p, |vm, hw| vm.msync(p, hw, a, LEN, mman::MS_SYNC))
                        .unwrap();
                    m
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn mprotect_split(c: &mut Criterion) {
    c.bench_function("mprotect one page inside a 16-page mapping (split)", |b| {
        b.iter_batched(
            || {
                let (mut m, p) = machine_with_mappings(0);
                let a = m
                    .with(p, |vm, hw| {
                        vm.mmap(p, hw, 0, 16 * PAGE_SIZE, RW, ANON_PRIVATE, None, 0)
                    })
                    .unwrap();
                (m, p, a)
            },
            |(mut m, p, a)| {
                m.with(p, |vm, hw| {
                    vm.mprotect(p, hw, a + 5 * PAGE_SIZE, PAGE_SIZE, mman::PROT_READ)
                })
                .unwrap();
                m
            },
            BatchSize::SmallInput,
        )
    });
}

#[cfg(target_os = "linux")]
fn host_reference(c: &mut Criterion) {
    c.bench_function("host Linux mmap+munmap one page", |b| {
        b.iter(|| unsafe {
            let a = libc::mmap(
                std::ptr::null_mut(),
                4096,
                (RW) as i32,
                ANON_PRIVATE as i32,
                -1,
                0,
            );
            assert_ne!(a, libc::MAP_FAILED);
            libc::munmap(black_box(a), 4096);
        })
    });
}

#[cfg(not(target_os = "linux"))]
fn host_reference(_c: &mut Criterion) {}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = mmap_munmap_pair, first_touch, sparse_munmap, populated_munmap, file_munmap, file_msync, mprotect_split, host_reference
}
criterion_main!(benches);
