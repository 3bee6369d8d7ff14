//! Host tests of the per-process bounds and of the cost of long calls:
//! listings that cost work proportional to what is mapped, calls refused
//! at a process's limits, and kernel allocations that fail cleanly.

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;

use neoos_abi::limits::MAPPINGS_MAX;
use neoos_abi::{mman, neo, nr, open};

use crate::kernel_tests::{map_anon, open_path, peek, spawn, sys, K};
use crate::test_platform::kernel;

/// Maps page `page` of `fd` shared and read-only in `pid`.
fn map_file_page(k: &mut K, pid: crate::Pid, fd: u64, page: u64) -> u64 {
    let shared = mman::MAP_SHARED as u64;
    let addr = sys(
        k,
        pid,
        nr::MMAP,
        [0, 4096, mman::PROT_READ as u64, shared, fd, page * 4096],
    );
    assert!(addr > 0, "mmap: {addr}");
    addr as u64
}

#[test]
fn maps_of_many_mappings_of_many_files_looks_each_path_up_once() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    const FILES: usize = 2000;
    const MAPPINGS_PER_FILE: u64 = 10;
    let mut expected = Vec::new();
    for i in 0..FILES {
        let path = alloc::format!("/tmp/f{i}");
        let fd = open_path(&mut k, pid, &path, open::O_RDWR | open::O_CREAT);
        for page in 0..MAPPINGS_PER_FILE {
            expected.push((map_file_page(&mut k, pid, fd, page), path.clone()));
        }
        assert_eq!(sys(&mut k, pid, nr::CLOSE, [fd, 0, 0, 0, 0, 0]), 0);
    }
    let buf_len = 4 << 20;
    let buf = map_anon(&mut k, pid, buf_len);
    let before = k.fs.path_entries_examined();
    let (n, steps) = crate::kernel_tests::maps_in_steps(
        &mut k,
        pid,
        crate::syscall::UserPtr(buf),
        buf_len as i64,
    )
    .unwrap();
    let examined = k.fs.path_entries_examined() - before;
    let per_step = crate::syscall::MAPS_BATCH * crate::syscall::MAPS_STEP_BATCHES;
    let mappings = k.memory.mapping_count(k.processes.get(pid).unwrap().space);
    assert!(
        (mappings / per_step..=mappings / per_step + 2).contains(&steps),
        "{steps} steps for {mappings} mappings, {per_step} a step"
    );
    assert!(n > 0 && (n as u64) < buf_len, "listing length {n}");
    let text = String::from_utf8(peek(&mut k, pid, buf, n as usize)).unwrap();
    let listed: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.split(" resident=").next())
        .collect();
    for (addr, path) in &expected {
        let line = alloc::format!("{addr:016x}-{:016x} r--s file {path}", addr + 4096);
        assert!(listed.contains(line.as_str()), "no line {line:?}");
    }
    let file_lines = text.lines().filter(|l| l.contains(" file ")).count();
    assert_eq!(file_lines, expected.len() + 1, "the files and the program");
    assert!(
        examined <= file_lines as u64,
        "{examined} path index entries examined for {file_lines} file mappings"
    );
}

/// Maps one anonymous page in `pid`, read-only or read-write by `writable`
/// (so that neighbours never merge); the raw result.
fn map_page(k: &mut K, pid: crate::Pid, writable: bool) -> i64 {
    let flags = (mman::MAP_PRIVATE | mman::MAP_ANON) as u64;
    let prot = if writable {
        mman::PROT_READ | mman::PROT_WRITE
    } else {
        mman::PROT_READ
    } as u64;
    sys(k, pid, nr::MMAP, [0, 4096, prot, flags, u64::MAX, 0])
}

#[test]
fn a_process_maps_at_most_its_limit_and_others_still_map() {
    let mut k = kernel();
    let greedy = spawn(&mut k, None);
    let other = spawn(&mut k, None);
    let three_pages = map_anon(&mut k, greedy, 3 * 4096);
    let mut made = Vec::new();
    loop {
        let r = map_page(&mut k, greedy, made.len() % 2 == 0);
        if r < 0 {
            assert_eq!(r, -neoos_abi::errno::ENOMEM);
            break;
        }
        made.push(r as u64);
        assert!(made.len() <= MAPPINGS_MAX, "no refusal at the limit");
    }
    let space = k.processes.get(greedy).unwrap().space;
    assert_eq!(k.memory.mapping_count(space), MAPPINGS_MAX);
    let fd = open_path(&mut k, greedy, "/etc/motd", open::O_RDONLY);
    assert_eq!(
        sys(&mut k, greedy, nr::NEO_MMAP, [fd, 0, 4096, 0, 0, 0]),
        neo::E_NOMEM
    );
    let ro = mman::PROT_READ as u64;
    let inner = three_pages + 4096;
    for call in [
        [nr::MPROTECT as u64, inner, 4096, ro],
        [nr::MUNMAP as u64, inner, 4096, 0],
    ] {
        assert_eq!(
            sys(
                &mut k,
                greedy,
                call[0] as usize,
                [call[1], call[2], call[3], 0, 0, 0]
            ),
            -neoos_abi::errno::ENOMEM,
            "call {} would split a mapping at the limit",
            call[0]
        );
    }
    assert_eq!(k.memory.mapping_count(space), MAPPINGS_MAX);
    let anon = (mman::MAP_PRIVATE | mman::MAP_ANON) as u64;
    assert_eq!(
        sys(&mut k, greedy, nr::MMAP, [0, 0, ro, anon, u64::MAX, 0]),
        -neoos_abi::errno::EINVAL,
        "an empty request is invalid before it is too many"
    );
    let middle = made[10];
    assert_eq!(
        sys(&mut k, greedy, nr::MUNMAP, [made[11], 4096, 0, 0, 0, 0]),
        0,
        "whole mappings can always be unmapped"
    );
    assert_eq!(k.memory.mapping_count(space), MAPPINGS_MAX - 1);
    assert!(
        map_page(&mut k, greedy, true) > 0,
        "room given back is usable"
    );
    let bigger = map_anon(&mut k, other, 3 * 4096);
    assert_eq!(
        sys(
            &mut k,
            other,
            nr::MPROTECT,
            [bigger + 4096, 4096, 1, 0, 0, 0]
        ),
        0,
        "the limit is the caller's own"
    );
    assert_eq!(
        sys(&mut k, greedy, nr::MPROTECT, [middle, 4096, ro, 0, 0, 0]),
        0,
        "protecting a whole mapping adds none"
    );
}

#[test]
fn mincore_reports_a_range_of_several_mappings_piece_by_piece_or_changes_nothing() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    // Far larger than one kernel buffer's worth of pages.
    let big_len = 1u64 << 32;
    let flags = (mman::MAP_PRIVATE | mman::MAP_ANON) as u64;
    let rw = (mman::PROT_READ | mman::PROT_WRITE) as u64;
    let big = sys(&mut k, pid, nr::MMAP, [0, big_len, rw, flags, u64::MAX, 0]) as u64;
    let fixed = (mman::MAP_PRIVATE | mman::MAP_ANON | mman::MAP_FIXED) as u64;
    let after = big + big_len;
    let r = sys(
        &mut k,
        pid,
        nr::MMAP,
        [after, 8192, mman::PROT_READ as u64, fixed, u64::MAX, 0],
    );
    assert_eq!(r as u64, after);
    let touched = [big, big + (1 << 31) + 4096, big + big_len - 4096];
    for va in touched {
        k.resolve_fault(pid, va, neoos_mm::Access::Write).unwrap();
    }
    k.resolve_fault(pid, after + 4096, neoos_mm::Access::Read)
        .unwrap();
    let pages = (big_len / 4096 + 2) as usize;
    let vec = map_anon(&mut k, pid, pages as u64);
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::MINCORE,
            [big, big_len + 8192, vec, 0, 0, 0]
        ),
        0
    );
    // Bounded steps: the mapping with pages resident costs one unit a
    // page, so its million pages take many steps, none more than its share.
    let steps = crate::kernel_tests::mincore_in_steps(
        &mut k,
        pid,
        big,
        big_len + 8192,
        crate::syscall::UserPtr(vec),
    )
    .unwrap();
    let work_pages = big_len / 4096;
    assert!(
        steps as u64 >= work_pages / crate::syscall::MINCORE_STEP_WORK,
        "{steps} steps for {work_pages} pages of work"
    );
    let got = peek(&mut k, pid, vec, pages);
    let resident: Vec<usize> = (0..pages).filter(|&i| got[i] & 1 == 1).collect();
    let expected: Vec<usize> = touched
        .iter()
        .chain(&[after + 4096])
        .map(|va| ((va - big) / 4096) as usize)
        .collect();
    assert_eq!(resident, expected);

    // A hole at the end: ENOMEM, and not a byte of the vector changes.
    crate::kernel_tests::poke(&mut k, pid, vec, &[7; 16]);
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::MINCORE,
            [big, big_len + 3 * 4096, vec, 0, 0, 0]
        ),
        -neoos_abi::errno::ENOMEM
    );
    // A vector too short for the range: EFAULT, nothing stored.
    let short = map_anon(&mut k, pid, 2 * 4096);
    assert_eq!(
        sys(&mut k, pid, nr::MUNMAP, [short + 4096, 4096, 0, 0, 0, 0]),
        0
    );
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::MINCORE,
            [big, 2 * 4096 * 4096, short + 4096 - 16, 0, 0, 0]
        ),
        -neoos_abi::errno::EFAULT
    );
    assert_eq!(peek(&mut k, pid, vec, 16), [7; 16]);
    assert_eq!(peek(&mut k, pid, short + 4096 - 16, 16), [0; 16]);
    assert_eq!(
        sys(&mut k, pid, nr::MINCORE, [big + 1, 4096, vec, 0, 0, 0]),
        -neoos_abi::errno::EINVAL
    );
}

#[test]
fn mmap_longer_than_the_address_space_is_enomem_whatever_the_number() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    let flags = (mman::MAP_PRIVATE | mman::MAP_ANON) as u64;
    let ro = mman::PROT_READ as u64;
    for len in [
        1u64 << 47,
        (1 << 47) + 1,
        1 << 62,
        1 << 63,
        u64::MAX - 4095,
        u64::MAX,
    ] {
        assert_eq!(
            sys(&mut k, pid, nr::MMAP, [0, len, ro, flags, u64::MAX, 0]),
            -neoos_abi::errno::ENOMEM,
            "length {len:#x}"
        );
    }
    assert_eq!(
        sys(&mut k, pid, nr::MMAP, [0, 0, ro, flags, u64::MAX, 0]),
        -neoos_abi::errno::EINVAL
    );
}

#[test]
fn readdir_of_a_folder_longer_than_a_kernel_buffer_is_whole_and_in_order() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    let mut names: Vec<String> = (0..300)
        .map(|i| alloc::format!("{i:03}{}", "n".repeat(200)))
        .collect();
    for name in &names {
        let fd = open_path(&mut k, pid, &alloc::format!("/tmp/{name}"), open::O_CREAT);
        assert_eq!(sys(&mut k, pid, nr::CLOSE, [fd, 0, 0, 0, 0, 0]), 0);
    }
    names.sort();
    let expected: String = names.iter().map(|n| alloc::format!("{n}\n")).collect();
    assert!(expected.len() > crate::syscall::CHUNK);
    let buf = map_anon(&mut k, pid, 128 * 1024);
    let path = crate::kernel_tests::put_str(&mut k, pid, buf, "/tmp");
    let out = buf + 4096;
    let n = sys(&mut k, pid, nr::READDIR, [path, out, 100_000, 0, 0, 0]);
    assert_eq!(n as usize, expected.len());
    assert_eq!(peek(&mut k, pid, out, expected.len()), expected.as_bytes());
    assert_eq!(
        sys(&mut k, pid, nr::READDIR, [path, out + 100_000, 5, 0, 0, 0]),
        n,
        "the whole length when cut"
    );
    assert_eq!(peek(&mut k, pid, out + 100_000, 6), b"000nn\0");
}

#[test]
fn open_with_o_trunc_of_a_mapped_file_is_e_busy_and_changes_nothing() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    let fd = open_path(&mut k, pid, "/tmp/mapped", open::O_RDWR | open::O_CREAT);
    let data = crate::kernel_tests::SCRATCH + 1024;
    crate::kernel_tests::poke(&mut k, pid, data, &[9; 100]);
    assert_eq!(sys(&mut k, pid, nr::WRITE, [fd, data, 100, 0, 0, 0]), 100);
    let m = sys(&mut k, pid, nr::NEO_MMAP, [fd, 0, 100, 0, 0, 0]);
    assert!(m > 0);
    let path = crate::kernel_tests::put_str(&mut k, pid, data, "/tmp/mapped");
    let descriptors = |k: &K| k.processes.get(pid).unwrap().files.open_files().count();
    let before = descriptors(&k);
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::OPEN,
            [path, (open::O_RDWR | open::O_TRUNC) as u64, 0, 0, 0, 0]
        ),
        neo::E_BUSY
    );
    assert_eq!(descriptors(&k), before, "no descriptor made");
    assert_eq!(peek(&mut k, pid, m as u64, 100), [9; 100]);
    assert_eq!(
        sys(&mut k, pid, nr::NEO_MUNMAP, [m as u64, 100, 0, 0, 0, 0]),
        0
    );
    let again = sys(
        &mut k,
        pid,
        nr::OPEN,
        [path, (open::O_RDWR | open::O_TRUNC) as u64, 0, 0, 0, 0],
    );
    assert!(again >= 0, "unmapped, it truncates: {again}");
}

#[test]
fn a_write_the_disk_cannot_take_is_refused_before_its_buffer_is_touched() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    let fd = open_path(&mut k, pid, "/tmp/big", open::O_RDWR | open::O_CREAT);
    let len = 64u64 << 20; // twice the disk
    let flags = (mman::MAP_PRIVATE | mman::MAP_ANON) as u64;
    let buf = sys(
        &mut k,
        pid,
        nr::MMAP,
        [0, len, mman::PROT_READ as u64, flags, u64::MAX, 0],
    );
    assert!(buf > 0);
    let space = k.processes.get(pid).unwrap().space;
    let resident = k.memory.resident_pages(space);
    let frames = k.platform.frames.live_count();
    let reserved = k.fs.disk.reserved_pages();
    assert_eq!(
        sys(&mut k, pid, nr::WRITE, [fd, buf as u64, len, 0, 0, 0]),
        neo::E_NOMEM
    );
    assert_eq!(
        k.memory.resident_pages(space),
        resident,
        "no page of the buffer brought in"
    );
    assert_eq!(k.platform.frames.live_count(), frames);
    assert_eq!(k.fs.disk.reserved_pages(), reserved, "nothing reserved");
}
