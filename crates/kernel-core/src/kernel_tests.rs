//! Host tests of the kernel logic over the test machine: process life cycle
//! through spawn, fork, end, kill and wait, and each system-call family
//! through decoding and the handlers, as a program would see them.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use neoos_abi::layout::STACK_TOP;
use neoos_abi::{mman, neo, nr, open, shm, shmid_ds, PAGE_SIZE};
use neoos_mm::{Access, Errno};

use crate::process::{Pid, ThreadState};
use crate::syscall::{decode_neo, Completion, KillOutcome, SchedulerCall, UserPtr};
use crate::test_platform::{kernel, TestPlatform, PROGRAM_BASE, PROGRAM_ENTRY};
use crate::Kernel;

/// A scratch user buffer of every test process (in its stack mapping).
pub(crate) const SCRATCH: u64 = STACK_TOP - 64 * 1024;

pub(crate) type K = Kernel<TestPlatform>;

pub(crate) fn spawn(k: &mut K, parent: Option<Pid>) -> Pid {
    k.spawn("/bin/prog", &[b"/bin/prog".to_vec()], parent)
        .unwrap()
}

pub(crate) fn poke(k: &mut K, pid: Pid, addr: u64, bytes: &[u8]) {
    k.copy_out(pid, UserPtr(addr), bytes).unwrap();
}

pub(crate) fn peek(k: &mut K, pid: Pid, addr: u64, len: usize) -> Vec<u8> {
    k.copy_in(pid, UserPtr(addr), len).unwrap()
}

/// Places `s` NUL-terminated at `addr` and returns `addr`.
pub(crate) fn put_str(k: &mut K, pid: Pid, addr: u64, s: &str) -> u64 {
    let mut bytes = s.as_bytes().to_vec();
    bytes.push(0);
    poke(k, pid, addr, &bytes);
    addr
}

/// Runs system call `number` with `args` for `pid` as the kernel's trap
/// glue would, for calls that complete without the scheduler or in steps
/// (`mincore`, `sys_maps`).
pub(crate) fn sys(k: &mut K, pid: Pid, number: usize, args: [u64; 6]) -> i64 {
    assert!(decode_neo(number, args).is_some(), "call {number} is known");
    match k.system_call(pid, number, args) {
        Ok(rax) => rax,
        Err((SchedulerCall::Mincore { addr, len, vec }, personality)) => {
            personality.result(mincore_in_steps(k, pid, addr, len, vec).map(|_| 0))
        }
        Err((SchedulerCall::Maps { buf, len }, personality)) => {
            personality.result(maps_in_steps(k, pid, buf, len).map(|(total, _)| total))
        }
        Err((SchedulerCall::FileWrite { fd, buf, count, at }, personality)) => {
            personality.result(write_at_once(k, pid, fd, buf, count, at))
        }
        Err((c, _)) => panic!("call {number} needs the scheduler: {c:?}"),
    }
}

/// Completes a `write` of a volume file ([`SchedulerCall::FileWrite`])
/// that reads nothing first (its pages cached or written whole), as the
/// kernel's first step does.
pub(crate) fn write_at_once(
    k: &mut K,
    pid: Pid,
    fd: i64,
    buf: UserPtr,
    count: i64,
    at: Option<u64>,
) -> Result<i64, Errno> {
    match k.file_write_step(pid, pid, fd, buf, count, at) {
        Some(result) => result,
        None => panic!("the write of {count} bytes waits for a disk read"),
    }
}

/// Completes `mincore` as the kernel does, step by step; the number of
/// steps it took.
pub(crate) fn mincore_in_steps(
    k: &mut K,
    pid: Pid,
    addr: u64,
    len: u64,
    vec: UserPtr,
) -> Result<usize, Errno> {
    let mut progress = k.mincore_begin(pid, addr, len, vec)?;
    let mut steps = 1;
    while !k.mincore_step(pid, &mut progress)? {
        steps += 1;
    }
    Ok(steps)
}

/// Completes `sys_maps` as the kernel does, step by step: the listing's
/// length and the number of steps it took.
pub(crate) fn maps_in_steps(
    k: &mut K,
    pid: Pid,
    buf: UserPtr,
    len: i64,
) -> Result<(i64, usize), Errno> {
    let mut progress = k.maps_begin(pid, buf, len)?;
    let mut steps = 1;
    loop {
        if let Some(total) = k.maps_step(pid, &mut progress)? {
            return Ok((total, steps));
        }
        steps += 1;
    }
}

/// Runs `pid` and ends it with `status` as the scheduler does.
fn run_and_end(k: &mut K, pid: Pid, status: i64) {
    while let Some(next) = k.processes.pick_next() {
        if next == pid {
            break;
        }
        k.processes.yield_current();
        k.processes.take_current();
    }
    k.end(pid, status);
    k.processes.take_current();
    k.release_ended(pid);
}

#[test]
fn spawn_builds_the_stack_with_argc_and_argv() {
    let mut k = kernel();
    let pid = k
        .spawn("/bin/prog", &[b"/bin/prog".to_vec(), b"x".to_vec()], None)
        .unwrap();
    let p = k.processes.thread(pid).unwrap();
    let frame = *p.context.as_ref().unwrap();
    assert_eq!(frame.entry, PROGRAM_ENTRY);
    assert_eq!(frame.stack % 16, 0);
    let argc = peek(&mut k, pid, frame.stack, 8);
    assert_eq!(u64::from_le_bytes(argc.try_into().unwrap()), 2);
    let argv1 = peek(&mut k, pid, frame.stack + 16, 8);
    let at = u64::from_le_bytes(argv1.try_into().unwrap());
    assert_eq!(peek(&mut k, pid, at, 2), b"x\0");
    assert_eq!(peek(&mut k, pid, PROGRAM_BASE, 4), b"\x7fELF");
}

#[test]
fn a_program_that_is_missing_or_not_elf_is_refused_without_leaks() {
    let mut k = kernel();
    assert_eq!(k.spawn("/bin/none", &[], None), Err(Errno::NoEnt));
    assert_eq!(k.spawn("/bin", &[], None), Err(Errno::Perm));
    assert_eq!(k.spawn("/etc/motd", &[], None), Err(Errno::Perm));
    assert!(k.processes.is_empty());
    assert_eq!(k.platform.tables_live, 0);
    assert_eq!(k.platform.frames.live_count(), 0);
}

#[test]
fn spawn_without_a_free_context_frees_what_it_built() {
    let mut k = kernel();
    k.platform.contexts_max = Some(0);
    assert_eq!(k.spawn("/bin/prog", &[], None), Err(Errno::NoMem));
    assert_eq!(k.platform.tables_live, 0);
    assert_eq!(k.platform.frames.live_count(), 0);
}

#[test]
fn an_ended_process_gives_back_every_frame_table_and_context() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    assert!(k.platform.frames.live_count() > 0);
    run_and_end(&mut k, pid, 3);
    assert_eq!(k.platform.frames.live_count(), 0);
    assert_eq!((k.platform.tables_live, k.platform.contexts_live), (0, 0));
    assert_eq!(
        k.platform.reports,
        ["program /bin/prog (pid 1) ended with status 3"]
    );
}

#[test]
fn exit_steps_remove_a_bounded_number_of_mappings_each() {
    use crate::kernel::EXIT_STEP_MAPPINGS;
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    let anon = (mman::MAP_PRIVATE | mman::MAP_ANON) as u64;
    for i in 0..2 * EXIT_STEP_MAPPINGS + 10 {
        // Alternating protections keep neighbours from merging.
        let prot = if i % 2 == 0 { 1 } else { 3 };
        assert!(sys(&mut k, pid, nr::MMAP, [0, 4096, prot, anon, u64::MAX, 0]) > 0);
    }
    let space = k.processes.get(pid).unwrap().space;
    let mappings = |k: &K| k.memory.address_space(space).unwrap().mappings().count();
    let mut steps = 0;
    loop {
        let before = mappings(&k);
        let done = k.exit_step(pid);
        steps += 1;
        assert_eq!(mappings(&k), before.saturating_sub(EXIT_STEP_MAPPINGS));
        if done {
            break;
        }
    }
    assert_eq!(steps, 3);
    run_and_end(&mut k, pid, 0);
    assert_eq!(k.platform.frames.live_count(), 0);
    assert_eq!((k.platform.tables_live, k.platform.contexts_live), (0, 0));
}

#[test]
fn a_parent_ending_after_its_children_reaps_them_and_reports_orphans() {
    let mut k = kernel();
    let parent = spawn(&mut k, None);
    let c1 = spawn(&mut k, Some(parent));
    let c2 = spawn(&mut k, Some(parent));
    run_and_end(&mut k, c1, 1);
    run_and_end(&mut k, c2, 2);
    assert!(k.platform.reports.is_empty(), "the parent may still wait");
    run_and_end(&mut k, parent, 0);
    assert!(k.processes.is_empty(), "no ended child stays behind");
    assert_eq!(k.platform.reports.len(), 3);
    assert!(k.platform.reports[0].starts_with("orphan /bin/prog (pid 2)"));
    assert_eq!(k.platform.frames.live_count(), 0);
}

#[test]
fn wait_takes_an_ended_child_and_stores_its_status() {
    let mut k = kernel();
    let parent = spawn(&mut k, None);
    assert_eq!(k.wait_step(parent, UserPtr(0)), Err(Errno::NoEnt));
    let child = spawn(&mut k, Some(parent));
    assert_eq!(k.wait_step(parent, UserPtr(SCRATCH)), Ok(None));
    run_and_end(&mut k, child, 42);
    assert_eq!(k.wait_step(parent, UserPtr(SCRATCH)), Ok(Some(child)));
    assert_eq!(peek(&mut k, parent, SCRATCH, 4), 42i32.to_le_bytes());
    assert_eq!(k.wait_step(parent, UserPtr(SCRATCH)), Err(Errno::NoEnt));
}

#[test]
fn wait_with_a_bad_status_pointer_keeps_the_child() {
    let mut k = kernel();
    let parent = spawn(&mut k, None);
    let child = spawn(&mut k, Some(parent));
    run_and_end(&mut k, child, 1);
    assert_eq!(k.wait_step(parent, UserPtr(8)), Err(Errno::Fault));
    assert_eq!(k.wait_step(parent, UserPtr(0)), Ok(Some(child)));
}

#[test]
fn kill_sends_sigkill_the_target_takes_in_its_own_context() {
    use crate::linux::signals::{bit, SIGKILL};
    let mut k = kernel();
    let a = spawn(&mut k, None);
    let b = spawn(&mut k, Some(a));
    // b waits for a child, then a kills it: it is woken, not torn down
    // in a's context; it has SIGKILL to take, whatever it blocked.
    k.processes.pick_next();
    k.processes.yield_current();
    k.processes.take_current();
    assert_eq!(k.processes.pick_next(), Some(b));
    k.processes.block_current_for_child();
    k.processes.take_current();
    k.processes
        .thread_part_mut(b)
        .unwrap()
        .set_blocked(u64::MAX);
    assert_eq!(k.kill_request(a, b as i64), Ok(KillOutcome::Killed));
    assert_eq!(
        k.processes.thread(b).unwrap().state,
        ThreadState::Ready,
        "woken to die in its own context"
    );
    let p = k.processes.get(b).unwrap();
    assert_ne!(p.signals.pending & bit(SIGKILL), 0);
    assert_eq!(k.next_pending_signal(b), Some(SIGKILL));
    assert_eq!(k.kill_request(a, a as i64), Ok(KillOutcome::KillSelf));
    assert_eq!(k.kill_request(a, 0), Err(Errno::Inval));
    assert_eq!(k.kill_request(a, 1 << 40), Err(Errno::Inval));
    // Its own exit (as the kernel does on its way back to user mode).
    while !k.exit_step(b) {}
    run_and_end(&mut k, b, neoos_abi::status::KILLED);
    assert_eq!(k.kill_request(a, b as i64), Err(Errno::NoEnt));
    assert_eq!(
        k.wait_step(a, UserPtr(0)),
        Ok(Some(b)),
        "the parent reaps it with the killed status"
    );
}

#[test]
fn fork_copies_memory_and_shares_open_files() {
    let mut k = kernel();
    let parent = spawn(&mut k, None);
    poke(&mut k, parent, SCRATCH, b"before");
    let path = put_str(&mut k, parent, SCRATCH + 512, "/tmp/f");
    let mode = (open::O_RDWR | open::O_CREAT) as u64;
    let fd = sys(&mut k, parent, nr::OPEN, [path, mode, 0, 0, 0, 0]);
    assert_eq!(fd, 3);
    let frame = crate::test_platform::TestFrame { entry: 1, stack: 2 };
    let child = k.fork(parent, &frame).unwrap();
    assert_eq!(
        *k.processes.thread(child).unwrap().context.as_ref().unwrap(),
        frame
    );
    poke(&mut k, child, SCRATCH, b"child!");
    assert_eq!(peek(&mut k, parent, SCRATCH, 6), b"before");
    run_and_end(&mut k, parent, 0);
    // The child's copy of the descriptor still works after the parent closed its own.
    let n = sys(&mut k, child, nr::WRITE, [fd as u64, SCRATCH, 6, 0, 0, 0]);
    assert_eq!(n, 6);
    run_and_end(&mut k, child, 0);
    assert_eq!(k.platform.frames.live_count(), 0);
}

#[test]
fn fork_whose_records_the_heap_cannot_hold_is_refused_and_changes_nothing() {
    let mut k = kernel();
    let parent = spawn(&mut k, None);
    for _ in 0..64 {
        map_anon(&mut k, parent, 4096);
    }
    let space = k.processes.get(parent).unwrap().space;
    let needed = k.memory.fork_metadata_bytes(space);
    assert!(needed > 0);
    let (frames, tables, processes) = (
        k.platform.frames.live_count(),
        k.platform.tables_live,
        k.processes.len(),
    );
    k.platform.heap_room = Some(needed - 1);
    let frame = crate::test_platform::TestFrame { entry: 1, stack: 2 };
    assert_eq!(k.fork(parent, &frame), Err(Errno::NoMem));
    assert_eq!(k.platform.frames.live_count(), frames);
    assert_eq!(k.platform.tables_live, tables);
    assert_eq!(k.processes.len(), processes);
    k.platform.heap_room = Some(needed);
    assert!(k.fork(parent, &frame).is_ok());
}

#[test]
fn file_pages_promised_to_the_ram_disk_hold_their_blocks_from_acceptance_on() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    let fd = open_path(&mut k, pid, "/tmp/p", open::O_RDWR | open::O_CREAT);
    const LEN: u64 = 8 * PAGE_SIZE as u64;
    let data = map_anon(&mut k, pid, LEN);
    poke(&mut k, pid, data, &[7u8; LEN as usize]);
    let before = k.fs.disk.ram.available_blocks();
    assert_eq!(
        sys(&mut k, pid, nr::WRITE, [fd, data, LEN, 0, 0, 0]),
        LEN as i64
    );
    // The eight pages are only cached, but their blocks are the file's
    // already: the disk's room went at acceptance...
    assert_eq!(k.fs.disk.ram.available_blocks(), before - 8);
    // ...so writeback takes no more (and no kernel heap).
    assert_eq!(sys(&mut k, pid, nr::FSYNC, [fd, 0, 0, 0, 0, 0]), 0);
    assert_eq!(k.fs.disk.ram.available_blocks(), before - 8);
    let Some(crate::fs::Node::File(id)) = k.fs.lookup("/tmp/p") else {
        panic!("/tmp/p is a file");
    };
    let mut page = [0u8; PAGE_SIZE];
    neoos_mm::Pager::read_page(&mut k.fs.disk, id, 7, &mut page).unwrap();
    assert!(page.iter().all(|&b| b == 7), "stored on the disk");
}

#[test]
fn files_round_trip_through_write_read_and_stat() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    let path = put_str(&mut k, pid, SCRATCH, "/tmp/data");
    let mode = (open::O_RDWR | open::O_CREAT) as u64;
    let fd = sys(&mut k, pid, nr::OPEN, [path, mode, 0, 0, 0, 0]) as u64;
    let data: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    poke(&mut k, pid, SCRATCH + 4096, &data);
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::WRITE,
            [fd, SCRATCH + 4096, 40_000, 0, 0, 0]
        ),
        40_000
    );
    assert_eq!(sys(&mut k, pid, nr::CLOSE, [fd, 0, 0, 0, 0, 0]), neo::E_OK);
    let fd = sys(&mut k, pid, nr::OPEN, [path, 0, 0, 0, 0, 0]) as u64;
    assert_eq!(fd, 3, "the lowest free number is reused");
    let back = SCRATCH - 48 * 1024;
    assert_eq!(
        sys(&mut k, pid, nr::READ, [fd, back, 50_000, 0, 0, 0]),
        40_000
    );
    assert_eq!(peek(&mut k, pid, back, 40_000), data);
    assert_eq!(sys(&mut k, pid, nr::READ, [fd, back, 10, 0, 0, 0]), 0);
    assert_eq!(
        sys(&mut k, pid, nr::STAT, [path, SCRATCH + 256, 0, 0, 0, 0]),
        0
    );
    let stat = peek(&mut k, pid, SCRATCH + 256, 16);
    assert_eq!(stat[..8], neoos_abi::stat::KIND_FILE.to_le_bytes());
    assert_eq!(stat[8..], 40_000u64.to_le_bytes());
    assert_eq!(
        sys(&mut k, pid, nr::WRITE, [fd, back, 1, 0, 0, 0]),
        neo::E_PERM,
        "read-only descriptor"
    );
}

#[test]
fn file_calls_refuse_bad_descriptors_paths_and_protected_folders() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    assert_eq!(
        sys(&mut k, pid, nr::CLOSE, [9, 0, 0, 0, 0, 0]),
        neo::E_INVAL
    );
    assert_eq!(
        sys(&mut k, pid, nr::READ, [u64::MAX, SCRATCH, 1, 0, 0, 0]),
        neo::E_INVAL
    );
    let motd = put_str(&mut k, pid, SCRATCH, "/etc/motd");
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::OPEN,
            [motd, open::O_WRONLY as u64, 0, 0, 0, 0]
        ),
        neo::E_PERM
    );
    let missing = put_str(&mut k, pid, SCRATCH, "/tmp/none");
    assert_eq!(
        sys(&mut k, pid, nr::OPEN, [missing, 0, 0, 0, 0, 0]),
        neo::E_NOENT
    );
    assert_eq!(sys(&mut k, pid, nr::OPEN, [8, 0, 0, 0, 0, 0]), neo::E_INVAL);
    let motd = put_str(&mut k, pid, SCRATCH, "/etc/motd");
    let excl = (open::O_CREAT | open::O_EXCL) as u64;
    assert_eq!(
        sys(&mut k, pid, nr::OPEN, [motd, excl, 0, 0, 0, 0]),
        neo::E_PERM
    );
}

#[test]
fn the_descriptor_table_holds_at_most_its_limit() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    let motd = put_str(&mut k, pid, SCRATCH, "/etc/motd");
    let limit = crate::files::MAX_DESCRIPTORS;
    for fd in 3..limit {
        assert_eq!(sys(&mut k, pid, nr::OPEN, [motd, 0, 0, 0, 0, 0]), fd as i64);
    }
    assert_eq!(
        sys(&mut k, pid, nr::OPEN, [motd, 0, 0, 0, 0, 0]),
        neo::E_NOMEM
    );
    assert_eq!(sys(&mut k, pid, nr::CLOSE, [10, 0, 0, 0, 0, 0]), 0);
    assert_eq!(sys(&mut k, pid, nr::OPEN, [motd, 0, 0, 0, 0, 0]), 10);
    run_and_end(&mut k, pid, 0);
    assert_eq!(k.platform.frames.live_count(), 0);
}

#[test]
fn console_output_goes_to_the_platform_and_input_waits_for_the_scheduler() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    poke(&mut k, pid, SCRATCH, b"hi\n");
    assert_eq!(sys(&mut k, pid, nr::WRITE, [1, SCRATCH, 3, 0, 0, 0]), 3);
    assert_eq!(k.platform.console_out, b"hi\n");
    let read = decode_neo(nr::READ, [0, SCRATCH, 5, 0, 0, 0]).unwrap().call;
    assert_eq!(
        k.call(pid, read),
        Completion::Scheduler(SchedulerCall::ReadConsole {
            buf: UserPtr(SCRATCH),
            count: 5
        })
    );
    assert_eq!(k.read_console_step(pid, UserPtr(SCRATCH), 5), Ok(0));
    k.platform.console_in.extend(b"ab\r");
    assert_eq!(k.read_console_step(pid, UserPtr(SCRATCH), 5), Ok(3));
    assert_eq!(peek(&mut k, pid, SCRATCH, 3), b"ab\n");
    assert_eq!(
        sys(&mut k, pid, nr::READ_CONSOLE, [SCRATCH, 0, 0, 0, 0, 0]),
        neo::E_INVAL
    );
    assert_eq!(sys(&mut k, pid, nr::READ, [0, SCRATCH, 0, 0, 0, 0]), 0);
}

#[test]
fn readdir_lists_a_folder_and_reports_the_whole_length() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    let root = put_str(&mut k, pid, SCRATCH, "/");
    let n = sys(&mut k, pid, nr::READDIR, [root, SCRATCH + 64, 4, 0, 0, 0]);
    assert_eq!(n, "bin/\netc/\ntmp/\n".len() as i64);
    assert_eq!(peek(&mut k, pid, SCRATCH + 64, 4), b"bin/");
    let motd = put_str(&mut k, pid, SCRATCH, "/etc/motd");
    assert_eq!(
        sys(&mut k, pid, nr::READDIR, [motd, SCRATCH + 64, 4, 0, 0, 0]),
        neo::E_INVAL
    );
}

#[test]
fn maps_lists_each_mapping_in_the_documented_format() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    let n = sys(&mut k, pid, nr::MAPS, [SCRATCH, 4096, 0, 0, 0, 0]);
    let text = String::from_utf8(peek(&mut k, pid, SCRATCH, n as usize)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("0000000000400000-0000000000401000 r-xp file /bin/prog resident="),
        "{text}"
    );
    assert!(lines[1].starts_with("0000000000401000-0000000000403000 r-xp anon resident=0 dirty=0"));
    let stack = alloc::format!(
        "{:016x}-{:016x} rw-p anon resident=",
        STACK_TOP - neoos_abi::layout::STACK_SIZE,
        STACK_TOP
    );
    assert!(lines[2].starts_with(&stack), "{text}");
    let short = sys(&mut k, pid, nr::MAPS, [SCRATCH, 10, 0, 0, 0, 0]);
    assert_eq!(short, n, "the whole length even when cut");
}

#[test]
fn meminfo_ends_with_the_platforms_ipi_counts() {
    let mut k = kernel();
    k.platform.ipis = crate::platform::IpiCounters {
        tlb_shootdown_ipis: 5,
        remote_page_invalidations: 9,
        remote_full_flushes: 2,
        wakeup_ipis: 31,
    };
    let pid = spawn(&mut k, None);
    assert_eq!(sys(&mut k, pid, nr::MEMINFO, [SCRATCH, 0, 0, 0, 0, 0]), 0);
    let bytes = peek(&mut k, pid, SCRATCH, neoos_abi::MEMINFO_FIELDS * 8);
    let field = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
    assert_eq!(neoos_abi::MEMINFO_FIELDS, 14);
    assert_eq!([field(10), field(11), field(12), field(13)], [5, 9, 2, 31]);
    assert_eq!(field(0), 1000, "the fields before stay where they were");
}

#[test]
fn posix_memory_calls_return_minus_errno() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    let anon = (mman::MAP_PRIVATE | mman::MAP_ANON) as u64;
    let rw = (mman::PROT_READ | mman::PROT_WRITE) as u64;
    let addr = sys(&mut k, pid, nr::MMAP, [0, 8192, rw, anon, u64::MAX, 0]);
    assert!(addr > 0);
    let r = k.resolve_fault(pid, addr as u64, Access::Write);
    assert_eq!(r, Ok(()));
    let mincore = sys(
        &mut k,
        pid,
        nr::MINCORE,
        [addr as u64, 8192, SCRATCH, 0, 0, 0],
    );
    assert_eq!(mincore, 0);
    assert_eq!(peek(&mut k, pid, SCRATCH, 2), [1, 0]);
    let shared_file = (mman::MAP_SHARED) as u64;
    assert_eq!(
        sys(&mut k, pid, nr::MMAP, [0, 4096, rw, shared_file, 1, 0]),
        -neoos_abi::errno::ENODEV,
        "the console cannot be mapped"
    );
    assert_eq!(
        sys(&mut k, pid, nr::MMAP, [0, 4096, rw, shared_file, 30, 0]),
        -neoos_abi::errno::EBADF
    );
    assert_eq!(
        sys(&mut k, pid, nr::MUNMAP, [addr as u64 + 1, 4096, 0, 0, 0, 0]),
        -22
    );
    assert_eq!(sys(&mut k, pid, nr::GETPAGESIZE, [0; 6]), PAGE_SIZE as i64);
    let fault = k.resolve_fault(pid, 0x1000, Access::Read).unwrap_err();
    assert_eq!(fault.status, neoos_abi::status::SEGFAULT);
}

#[test]
fn a_low_kernel_heap_refuses_calls_that_grow_kernel_data_only() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    k.platform.heap_low = true;
    let motd = put_str(&mut k, pid, SCRATCH, "/etc/motd");
    assert_eq!(
        sys(&mut k, pid, nr::OPEN, [motd, 0, 0, 0, 0, 0]),
        neo::E_NOMEM
    );
    let anon = (mman::MAP_PRIVATE | mman::MAP_ANON) as u64;
    assert_eq!(sys(&mut k, pid, nr::MMAP, [0, 4096, 3, anon, 0, 0]), -12);
    poke(&mut k, pid, SCRATCH, b"ok");
    assert_eq!(sys(&mut k, pid, nr::WRITE, [1, SCRATCH, 2, 0, 0, 0]), 2);
    let text = PROGRAM_BASE;
    assert_eq!(
        sys(&mut k, pid, nr::MUNMAP, [text + 4096, 4096, 0, 0, 0, 0]),
        -12,
        "a split needs a new record"
    );
    assert_eq!(sys(&mut k, pid, nr::MUNMAP, [text, 4096, 0, 0, 0, 0]), 0);
}

#[test]
fn shmctl_stat_fills_shmid_ds_as_the_abi_lays_it_out() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    k.platform.ticks = 5;
    let flags = (shm::IPC_CREAT | 0o640) as u64;
    let id = sys(&mut k, pid, nr::SHMGET, [77, 8192, flags, 0, 0, 0]);
    assert!(id >= 0);
    k.platform.ticks = 9;
    let at = sys(&mut k, pid, nr::SHMAT, [id as u64, 0, 0, 0, 0, 0]);
    assert!(at > 0);
    let stat = shm::IPC_STAT as u64;
    assert_eq!(
        sys(&mut k, pid, nr::SHMCTL, [id as u64, stat, SCRATCH, 0, 0, 0]),
        0
    );
    let raw = peek(&mut k, pid, SCRATCH, shmid_ds::SIZE);
    let field = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
    assert_eq!(field(shmid_ds::KEY), 77);
    assert_eq!(field(shmid_ds::MODE), 0o640);
    assert_eq!(field(shmid_ds::SEGSZ), 8192);
    assert_eq!((field(shmid_ds::ATIME), field(shmid_ds::CTIME)), (9, 5));
    assert_eq!(
        (field(shmid_ds::CPID), field(shmid_ds::LPID)),
        (pid as u64, pid as u64)
    );
    assert_eq!(field(shmid_ds::NATTCH), 1);
    poke(&mut k, pid, SCRATCH + 24, &0o600u64.to_le_bytes());
    let set = shm::IPC_SET as u64;
    assert_eq!(
        sys(&mut k, pid, nr::SHMCTL, [id as u64, set, SCRATCH, 0, 0, 0]),
        0
    );
    assert_eq!(k.segments.get(id as u64).mode, 0o600);
    assert_eq!(
        sys(&mut k, pid, nr::SHMCTL, [id as u64, stat, 8, 0, 0, 0]),
        -neoos_abi::errno::EFAULT
    );
    assert_eq!(sys(&mut k, pid, nr::SHMDT, [at as u64, 0, 0, 0, 0, 0]), 0);
    let rmid = shm::IPC_RMID as u64;
    assert_eq!(
        sys(&mut k, pid, nr::SHMCTL, [id as u64, rmid, 0, 0, 0, 0]),
        0
    );
    assert_eq!(k.segments.get(id as u64), Default::default());
}

#[test]
fn run_starts_a_child_with_the_given_arguments() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    let path = put_str(&mut k, pid, SCRATCH, "/bin/prog");
    let arg = put_str(&mut k, pid, SCRATCH + 64, "arg1");
    let mut argv = Vec::new();
    for p in [path, arg, 0] {
        argv.extend_from_slice(&p.to_le_bytes());
    }
    poke(&mut k, pid, SCRATCH + 128, &argv);
    let child = sys(&mut k, pid, nr::RUN, [path, SCRATCH + 128, 0, 0, 0, 0]);
    assert_eq!(child, 2);
    let frame = *k.processes.thread(2).unwrap().context.as_ref().unwrap();
    let argc = peek(&mut k, 2, frame.stack, 8);
    assert_eq!(argc, 2u64.to_le_bytes());
    let none = put_str(&mut k, pid, SCRATCH, "/bin/none");
    assert_eq!(
        sys(&mut k, pid, nr::RUN, [none, 0, 0, 0, 0, 0]),
        neo::E_NOENT
    );
    assert_eq!(sys(&mut k, pid, nr::GETPID, [0; 6]), pid as i64);
}

/// Maps `len` bytes of anonymous read-write memory in `pid`.
pub(crate) fn map_anon(k: &mut K, pid: Pid, len: u64) -> u64 {
    let flags = (mman::MAP_PRIVATE | mman::MAP_ANON) as u64;
    let rw = (mman::PROT_READ | mman::PROT_WRITE) as u64;
    let addr = sys(k, pid, nr::MMAP, [0, len, rw, flags, u64::MAX, 0]);
    assert!(addr > 0);
    addr as u64
}

pub(crate) fn open_path(k: &mut K, pid: Pid, path: &str, mode: u32) -> u64 {
    let p = put_str(k, pid, SCRATCH, path);
    let fd = sys(k, pid, nr::OPEN, [p, mode as u64, 0, 0, 0, 0]);
    assert!(fd >= 0, "open {path}: {fd}");
    fd as u64
}

fn size_of_file(k: &mut K, pid: Pid, path: &str) -> u64 {
    let p = put_str(k, pid, SCRATCH, path);
    assert_eq!(sys(k, pid, nr::STAT, [p, SCRATCH + 512, 0, 0, 0, 0]), 0);
    u64::from_le_bytes(peek(k, pid, SCRATCH + 520, 8).try_into().unwrap())
}

#[test]
fn memory_calls_made_while_frames_are_low_reclaim_first_then_run_for_their_caller() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    // The test machine has 1,000 frames: 800 resident pages leave fewer
    // free than the low-water mark, so every call below reclaims first
    // (and looks its caller up again).
    let len = 800 * PAGE_SIZE as u64;
    let held = map_anon(&mut k, pid, len);
    poke(&mut k, pid, held, &vec![7u8; len as usize]);
    assert!(crate::reclaim::frames_low(&k.platform));
    let addr = map_anon(&mut k, pid, 4096);
    poke(&mut k, pid, addr, b"low");
    assert_eq!(peek(&mut k, pid, addr, 3), b"low");
    let ro = mman::PROT_READ as u64;
    assert_eq!(sys(&mut k, pid, nr::MPROTECT, [addr, 4096, ro, 0, 0, 0]), 0);
    assert!(k.copy_out(pid, UserPtr(addr), b"x").is_err());
    assert_eq!(sys(&mut k, pid, nr::MUNMAP, [addr, 4096, 0, 0, 0, 0]), 0);
    assert!(k
        .memory()
        .mapping_at(k.processes().get(pid).unwrap().space, addr)
        .is_none());
    assert_eq!(peek(&mut k, pid, held + len - 1, 1), [7]);
}

#[test]
fn a_write_the_disk_cannot_guarantee_is_refused_not_lost_at_close() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    const SIZE: usize = 18 << 20;
    let buf = map_anon(&mut k, pid, SIZE as u64);
    let data: Vec<u8> = (0..SIZE).map(|i| (i * 31 + 7) as u8).collect();
    poke(&mut k, pid, buf, &data);
    let create = open::O_RDWR | open::O_CREAT | open::O_TRUNC;
    let a = open_path(&mut k, pid, "/tmp/a", create);
    let b = open_path(&mut k, pid, "/tmp/b", create);
    let n = SIZE as u64;
    assert_eq!(
        sys(&mut k, pid, nr::WRITE, [a, buf, n, 0, 0, 0]),
        SIZE as i64
    );
    assert_eq!(
        sys(&mut k, pid, nr::WRITE, [b, buf, n, 0, 0, 0]),
        neo::E_NOMEM
    );
    assert_eq!(size_of_file(&mut k, pid, "/tmp/b"), 0);
    assert_eq!(sys(&mut k, pid, nr::CLOSE, [b, 0, 0, 0, 0, 0]), 0);
    assert_eq!(sys(&mut k, pid, nr::CLOSE, [a, 0, 0, 0, 0, 0]), 0);
    poke(&mut k, pid, buf, &vec![0; SIZE]);
    let a = open_path(&mut k, pid, "/tmp/a", open::O_RDONLY);
    assert_eq!(
        sys(&mut k, pid, nr::READ, [a, buf, n, 0, 0, 0]),
        SIZE as i64
    );
    assert!(
        peek(&mut k, pid, buf, SIZE) == data,
        "every byte of a reads back"
    );
}

#[test]
fn stores_through_a_shared_mapping_reach_the_disk_when_others_fill_it() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    const SIZE: usize = 12 << 20;
    let buf = map_anon(&mut k, pid, SIZE as u64);
    let create = open::O_RDWR | open::O_CREAT | open::O_TRUNC;
    let a = open_path(&mut k, pid, "/tmp/a", create);
    assert_eq!(
        sys(&mut k, pid, nr::WRITE, [a, buf, SIZE as u64, 0, 0, 0]),
        SIZE as i64
    );
    let shared = (mman::MAP_SHARED) as u64;
    let rw = (mman::PROT_READ | mman::PROT_WRITE) as u64;
    let map = sys(&mut k, pid, nr::MMAP, [0, SIZE as u64, rw, shared, a, 0]) as u64;
    for page in (0..SIZE as u64).step_by(PAGE_SIZE) {
        k.resolve_fault(pid, map + page, Access::Write).unwrap();
    }
    poke(&mut k, pid, map + 5, b"through the mapping");
    // Another file takes all the room that is left.
    let b = open_path(&mut k, pid, "/tmp/b", create);
    let mut wrote = 0;
    loop {
        let r = sys(&mut k, pid, nr::WRITE, [b, buf, 1 << 20, 0, 0, 0]);
        if r < 0 {
            assert_eq!(r, neo::E_NOMEM);
            break;
        }
        wrote += r;
    }
    assert!(wrote > 0);
    assert_eq!(sys(&mut k, pid, nr::CLOSE, [b, 0, 0, 0, 0, 0]), 0);
    assert_eq!(
        sys(&mut k, pid, nr::MUNMAP, [map, SIZE as u64, 0, 0, 0, 0]),
        0
    );
    assert_eq!(
        sys(&mut k, pid, nr::CLOSE, [a, 0, 0, 0, 0, 0]),
        0,
        "no E_IO"
    );
    let a = open_path(&mut k, pid, "/tmp/a", open::O_RDONLY);
    assert_eq!(sys(&mut k, pid, nr::READ, [a, buf, 64, 0, 0, 0]), 64);
    assert_eq!(peek(&mut k, pid, buf + 5, 19), b"through the mapping");
}

#[test]
fn a_write_with_a_bad_buffer_tail_changes_nothing() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    let fd = open_path(&mut k, pid, "/tmp/f", open::O_RDWR | open::O_CREAT);
    poke(&mut k, pid, SCRATCH + 1024, b"0123456789");
    assert_eq!(
        sys(&mut k, pid, nr::WRITE, [fd, SCRATCH + 1024, 10, 0, 0, 0]),
        10
    );
    const LEN: u64 = 64 * 1024;
    let buf = map_anon(&mut k, pid, LEN);
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::MUNMAP,
            [buf + LEN - 4096, 4096, 0, 0, 0, 0]
        ),
        0
    );
    let fd2 = open_path(&mut k, pid, "/tmp/f", open::O_RDWR);
    assert_eq!(
        sys(&mut k, pid, nr::WRITE, [fd2, buf, LEN, 0, 0, 0]),
        neo::E_INVAL
    );
    assert_eq!(size_of_file(&mut k, pid, "/tmp/f"), 10);
    assert_eq!(sys(&mut k, pid, nr::READ, [fd2, SCRATCH, 10, 0, 0, 0]), 10);
    assert_eq!(peek(&mut k, pid, SCRATCH, 10), b"0123456789");
    assert_eq!(
        sys(&mut k, pid, nr::WRITE, [1, buf, LEN, 0, 0, 0]),
        neo::E_INVAL
    );
    assert!(
        k.platform.console_out.is_empty(),
        "nothing reached the console"
    );
}

#[test]
fn a_read_into_a_bad_buffer_tail_moves_the_position_only_by_what_it_stored() {
    let mut k = kernel();
    let pid = spawn(&mut k, None);
    const LEN: u64 = 64 * 1024;
    let data = map_anon(&mut k, pid, LEN);
    let pattern: Vec<u8> = (0..LEN).map(|i| (i / 4096 + i) as u8).collect();
    poke(&mut k, pid, data, &pattern);
    let fd = open_path(&mut k, pid, "/tmp/r", open::O_RDWR | open::O_CREAT);
    assert_eq!(
        sys(&mut k, pid, nr::WRITE, [fd, data, LEN, 0, 0, 0]),
        LEN as i64
    );
    let buf = map_anon(&mut k, pid, LEN);
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::MUNMAP,
            [buf + LEN - 4096, 4096, 0, 0, 0, 0]
        ),
        0
    );
    let fd2 = open_path(&mut k, pid, "/tmp/r", open::O_RDONLY);
    let got = sys(&mut k, pid, nr::READ, [fd2, buf, LEN, 0, 0, 0]);
    assert!(got > 0 && (got as u64) < LEN, "a partial count, got {got}");
    assert_eq!(
        peek(&mut k, pid, buf, got as usize),
        &pattern[..got as usize]
    );
    assert_eq!(sys(&mut k, pid, nr::READ, [fd2, SCRATCH, 1, 0, 0, 0]), 1);
    assert_eq!(peek(&mut k, pid, SCRATCH, 1), [pattern[got as usize]]);
    let fd3 = open_path(&mut k, pid, "/tmp/r", open::O_RDONLY);
    assert_eq!(
        sys(&mut k, pid, nr::READ, [fd3, buf + LEN - 4096, 16, 0, 0, 0]),
        neo::E_INVAL,
        "nothing stored: the call fails"
    );
    assert_eq!(sys(&mut k, pid, nr::READ, [fd3, SCRATCH, 1, 0, 0, 0]), 1);
    assert_eq!(peek(&mut k, pid, SCRATCH, 1), [pattern[0]]);
}

#[test]
fn launch_starts_programs_in_order_and_reports_those_that_cannot_start() {
    let mut k = kernel();
    let launch =
        crate::launch::parse_launch_list("/bin/none,/bin/prog:%zz,/bin/prog:a%20b,/bin/prog");
    let fs = core::mem::take(&mut k.fs);
    let mut k = Kernel::new(TestPlatform::default(), fs, launch);
    k.launch_next();
    assert_eq!(
        k.platform.reports,
        [
            "cannot start /bin/none: NoEnt",
            "program /bin/none (pid 0) ended with status 127",
            "cannot start /bin/prog:%zz: malformed launch entry: argument 1: '%' at byte 0 \
             is not followed by two hexadecimal digits",
            "program /bin/prog:%zz (pid 0) ended with status 127",
        ]
    );
    assert_eq!(k.processes.len(), 1);
    assert!(
        !k.nothing_to_launch(),
        "one more waits for the first to end"
    );
    run_and_end(&mut k, 1, 0);
    k.launch_next();
    assert_eq!(k.processes.len(), 1);
    assert!(k.nothing_to_launch());
}
