//! The shape of the costs the performance targets demand, in counted steps
//! (pager requests, page-table calls, TLB invalidations), never time:
//! writeback requests follow dirty runs, munmap work follows resident pages
//! (not range size), TLB invalidations are batched. How many mappings an
//! address space holds is measured by the benchmarks (`benches/mm.rs`, and
//! `pair_100000_over_10` of `cargo run -- --bench`).

use neoos_abi::mman;
use neoos_mm::testing::Machine;
use neoos_mm::{Access, AsId, FileAccess, PAGE_SIZE};

const RW: u32 = mman::PROT_READ | mman::PROT_WRITE;

#[test]
fn neo_munmap_of_64_mib_file_mapping_sends_exactly_one_request_per_dirty_run() {
    const LEN: u64 = 64 << 20;
    for (dirty, runs) in [(64u64, 1u64), (64, 8), (64, 64), (10, 5)] {
        let mut m = Machine::new();
        let p = m.new_space();
        let f = m.create_file(1, &vec![0u8; LEN as usize]);
        let a = m
            .with(p, |vm, hw| {
                vm.neo_mmap(p, hw, f, FileAccess::ReadWrite, 0, LEN as i64)
            })
            .unwrap();
        // Clean resident pages between the runs must not be written.
        for i in 0..64 {
            m.touch(p, a + (i * 250 + 7) * PAGE_SIZE, Access::Read)
                .unwrap();
        }
        let per_run = dirty / runs;
        let stride = LEN / PAGE_SIZE / runs;
        for r in 0..runs {
            for k in 0..per_run {
                m.touch(p, a + (r * stride + k) * PAGE_SIZE, Access::Write)
                    .unwrap();
            }
        }
        m.with(p, |vm, hw| vm.neo_munmap(p, hw, a, LEN as i64))
            .unwrap();
        assert_eq!(
            m.pager.writes.len() as u64,
            runs,
            "{dirty} dirty pages in {runs} runs"
        );
        assert!(m.pager.writes.iter().all(|w| w.pages as u64 == per_run));
        assert_eq!(m.vm.stats().writeback_bytes, dirty * PAGE_SIZE);
    }
}

/// Page-table calls (map, unmap, protect, query, take_dirty, update_range
/// and each entry it visits) made on `p`'s table while `f` runs.
fn page_table_calls(m: &mut Machine, p: AsId, f: impl FnOnce(&mut Machine)) -> u64 {
    let before = m.pt(p).calls.get();
    f(m);
    m.pt(p).calls.get() - before
}

#[test]
fn munmap_cost_follows_resident_pages_not_range_size() {
    let mut m = Machine::new();
    let p = m.new_space();
    let len = 1u64 << 40; // 1 TiB: a per-page loop would take minutes
    let a = m
        .with(p, |vm, hw| {
            vm.mmap(
                p,
                hw,
                0,
                len,
                RW,
                mman::MAP_PRIVATE | mman::MAP_ANON,
                None,
                0,
            )
        })
        .unwrap();
    for i in 0..10 {
        m.touch(p, a + i * (len / 10), Access::Write).unwrap();
    }
    let calls = page_table_calls(&mut m, p, |m| {
        m.with(p, |vm, hw| vm.munmap(p, hw, a, len)).unwrap();
    });
    // Ten resident pages in a range of 2^19 page tables: one unmap each; a
    // per-page walk of the range would be 2^28 calls.
    assert_eq!(calls, 10);
    assert_eq!(m.pt(p).single_flushes, 10);
    assert_eq!(m.frames.live_count(), 0);
    // Same for msync, mprotect, madvise and teardown over huge sparse ranges.
    let b = m
        .with(p, |vm, hw| {
            vm.mmap(
                p,
                hw,
                0,
                len,
                RW,
                mman::MAP_SHARED | mman::MAP_ANON,
                None,
                0,
            )
        })
        .unwrap();
    m.touch(p, b + len / 2, Access::Write).unwrap();
    let calls = page_table_calls(&mut m, p, |m| {
        m.with(p, |vm, hw| vm.msync(p, hw, b, len, mman::MS_SYNC))
            .unwrap();
        m.with(p, |vm, hw| {
            vm.mprotect(p, hw, b + PAGE_SIZE, len - 2 * PAGE_SIZE, mman::PROT_READ)
        })
        .unwrap();
        m.with(p, |vm, hw| vm.madvise(p, hw, b, len, mman::MADV_DONTNEED))
            .unwrap();
    });
    // One resident page: a few calls each (query and protect, unmap).
    assert!(calls <= 6, "{calls} page-table calls for one resident page");
    m.touch(p, b + len / 2, Access::Read).unwrap();
    let calls = page_table_calls(&mut m, p, |m| {
        m.with(p, |vm, hw| vm.destroy_address_space(p, hw)).unwrap();
    });
    m.tables.remove(&p);
    // One range visit per mapping (three after the mprotect split) and one
    // step for the page.
    assert!(calls <= 4, "{calls} page-table calls to tear one page down");
    assert_eq!(m.frames.live_count(), 0);
}

#[test]
fn tlb_invalidations_are_batched_per_operation() {
    let mut m = Machine::new();
    let p = m.new_space();
    let a = m
        .with(p, |vm, hw| {
            vm.mmap(
                p,
                hw,
                0,
                80 * PAGE_SIZE,
                RW,
                mman::MAP_PRIVATE | mman::MAP_ANON,
                None,
                0,
            )
        })
        .unwrap();
    let limit = neoos_mm::TLB_BATCH_LIMIT as u64;
    for i in 0..limit {
        m.touch(p, a + i * PAGE_SIZE, Access::Write).unwrap();
    }
    let before = m.vm.stats();
    let rounds = m.pt(p).flush_rounds;
    m.with(p, |vm, hw| vm.munmap(p, hw, a, limit * PAGE_SIZE))
        .unwrap();
    let after = m.vm.stats();
    assert_eq!(after.tlb_single_flushes - before.tlb_single_flushes, limit);
    assert_eq!(after.tlb_full_flushes, before.tlb_full_flushes);
    assert_eq!(m.pt(p).flush_rounds - rounds, 1, "one request for all");
    for i in limit..2 * limit + 1 {
        m.touch(p, a + i * PAGE_SIZE, Access::Write).unwrap();
    }
    let rounds = m.pt(p).flush_rounds;
    m.with(p, |vm, hw| {
        vm.mprotect(
            p,
            hw,
            a + limit * PAGE_SIZE,
            limit * PAGE_SIZE,
            mman::PROT_READ,
        )
    })
    .unwrap();
    // The limit's worth of pages: singles; one more is a full flush.
    let protected = m.vm.stats();
    assert_eq!(
        protected.tlb_single_flushes - after.tlb_single_flushes,
        limit
    );
    assert_eq!(m.pt(p).flush_rounds - rounds, 1);
    m.with(p, |vm, hw| {
        vm.munmap(p, hw, a + limit * PAGE_SIZE, (limit + 1) * PAGE_SIZE)
    })
    .unwrap();
    let unmapped = m.vm.stats();
    assert_eq!(unmapped.tlb_full_flushes - protected.tlb_full_flushes, 1);
    assert_eq!(unmapped.tlb_single_flushes, protected.tlb_single_flushes);
    assert_eq!(m.pt(p).flush_rounds - rounds, 1, "no single-page request");
}

/// A 64 MiB file whose every page is in the page cache (read whole through
/// the cache), mapped shared and writable in `p`; returns the address.
fn fully_cached_shared_file(m: &mut Machine, p: AsId) -> u64 {
    const LEN: u64 = 64 << 20;
    let f = m.create_file(1, &vec![7u8; LEN as usize]);
    let mut buf = vec![0u8; LEN as usize];
    let read = m
        .with_io(|vm, io| vm.file_read(io, f, 0, &mut buf))
        .unwrap();
    assert_eq!(read as u64, LEN);
    m.with(p, |vm, hw| {
        vm.mmap(
            p,
            hw,
            0,
            LEN,
            RW,
            mman::MAP_SHARED,
            Some((f, FileAccess::ReadWrite)),
            0,
        )
    })
    .unwrap()
}

/// Pages `0, 256, 512, ...`: 64 pages spread over the 64 MiB.
fn scattered_pages() -> impl Iterator<Item = u64> {
    (0..64u64).map(|k| k * 256 * PAGE_SIZE)
}

#[test]
fn munmap_and_msync_of_a_fully_cached_file_follow_present_entries_not_cached_pages() {
    const LEN: u64 = 64 << 20;
    let mut m = Machine::new();
    let p = m.new_space();
    let a = fully_cached_shared_file(&mut m, p);
    // Two pages read through the mapping, nothing written.
    m.touch(p, a, Access::Read).unwrap();
    m.touch(p, a + LEN / 2, Access::Read).unwrap();
    let calls = page_table_calls(&mut m, p, |m| {
        m.with(p, |vm, hw| vm.msync(p, hw, a, LEN, mman::MS_SYNC))
            .unwrap();
    });
    // No dirty page in the range: no page-table work at all (a scan of the
    // 16,384 cached pages would make one call per page).
    assert_eq!(calls, 0);
    assert!(m.pager.writes.is_empty());
    assert_eq!(m.pt(p).entries.len(), 2 * 16, "two fault-around windows");
    let calls = page_table_calls(&mut m, p, |m| {
        m.with(p, |vm, hw| vm.munmap(p, hw, a, LEN)).unwrap();
    });
    // One range visit and the two reads' entries: each read mapped its
    // fault-around window's 16 cached pages (fault_around.rs).
    assert_eq!(m.pt(p).entries.len(), 0);
    assert_eq!(calls, 1 + 2 * 16);
    assert!(m.pager.writes.is_empty());
}

#[test]
fn msync_and_munmap_of_64_scattered_dirty_pages_visit_only_their_entries() {
    const LEN: u64 = 64 << 20;
    let mut m = Machine::new();
    let p = m.new_space();
    let a = fully_cached_shared_file(&mut m, p);
    for off in scattered_pages() {
        m.store(p, a + off, &[1]).unwrap();
    }
    let calls = page_table_calls(&mut m, p, |m| {
        m.with(p, |vm, hw| vm.msync(p, hw, a, LEN, mman::MS_SYNC))
            .unwrap();
    });
    assert_eq!(calls, 1 + 64);
    // Each page is its own run: 64 requests, and now clean and read-only.
    assert_eq!(m.pager.writes.len(), 64);
    let f = neoos_mm::FileId(1);
    for off in scattered_pages() {
        assert_eq!(m.vm.file_page_dirty(f, off / PAGE_SIZE), Some(false));
        assert!(!m.pt(p).entries[&(a + off)].prot.write);
    }
    // Stored again: munmap keeps them dirty (POSIX munmap does not write),
    // visiting only the 64 entries.
    for off in scattered_pages() {
        m.store(p, a + off, &[2]).unwrap();
    }
    let calls = page_table_calls(&mut m, p, |m| {
        m.with(p, |vm, hw| vm.munmap(p, hw, a, LEN)).unwrap();
    });
    assert_eq!(calls, 1 + 64);
    for off in scattered_pages() {
        assert_eq!(m.vm.file_page_dirty(f, off / PAGE_SIZE), Some(true));
    }
    // The descriptor's close writes exactly those 64 pages.
    m.close(f).unwrap();
    assert_eq!(m.pager.writes.len(), 128);
    assert!(scattered_pages().all(|off| m.pager.contents(f)[off as usize] == 2));
}

#[test]
fn neo_munmap_of_a_fully_cached_file_visits_only_present_entries() {
    const LEN: u64 = 64 << 20;
    let mut m = Machine::new();
    let p = m.new_space();
    let f = m.create_file(1, &vec![7u8; LEN as usize]);
    let mut buf = vec![0u8; LEN as usize];
    m.with_io(|vm, io| vm.file_read(io, f, 0, &mut buf))
        .unwrap();
    let a = m
        .with(p, |vm, hw| {
            vm.neo_mmap(p, hw, f, FileAccess::ReadWrite, 0, LEN as i64)
        })
        .unwrap();
    m.store(p, a + 5 * PAGE_SIZE, &[3]).unwrap();
    let calls = page_table_calls(&mut m, p, |m| {
        m.with(p, |vm, hw| vm.neo_munmap(p, hw, a, LEN as i64))
            .unwrap();
    });
    // One range visit, one present entry (the store's).
    assert_eq!(calls, 1 + 1);
    assert_eq!(m.pager.writes.len(), 1);
    assert_eq!(m.vm.file_page_dirty(f, 5), Some(false));
}
