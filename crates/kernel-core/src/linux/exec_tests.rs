//! Host tests of `execve`, fork-like `clone` and `waitid` over the test
//! machine: the new image replaces the old one and every frame of the old
//! comes back, a failed `execve` changes nothing, close-on-exec
//! descriptors close, signal actions reset; clone's tid stores and TLS;
//! waitid's siginfo.

use alloc::vec::Vec;

use neoos_abi::layout::STACK_TOP;
use neoos_abi::linux::{self as abi, nr};
use neoos_abi::{errno, PAGE_SIZE};

use super::exec::{CloneArgs, WaitTarget};
use super::signals::{SIGUSR1, SIGUSR2, SIG_IGN};
use super::ProgramAbi;
use crate::process::Pid;
use crate::syscall::{Completion, SchedulerCall, UserPtr};
use crate::test_platform::{cpio, linux_program, TestFrame, TestPlatform, PROGRAM_ENTRY};
use crate::Kernel;

type K = Kernel<TestPlatform>;

/// Scratch user memory of every test process (in its stack mapping).
const SCRATCH: u64 = STACK_TOP - 64 * 1024;
const PAGE: u64 = PAGE_SIZE as u64;
/// Far below every mapping of a test process.
const UNMAPPED: u64 = 0x1000_0000;

/// A kernel with `/bin/linux`, `/bin/two` (a second Linux program),
/// `/bin/kernel_segment` (a segment at a kernel address),
/// `/bin/overlap` (two overlapping segments), `/etc/motd` (no ELF) and
/// `/tmp`.
fn kernel() -> K {
    let linux = linux_program(&[0xf4; 32], 8192);
    let two = linux_program(&[0x90; 64], 0);
    let mut kernel_segment = linux.clone();
    kernel_segment[64 + 16..64 + 24].copy_from_slice(&0xffff_8000_0000_0000u64.to_le_bytes());
    let mut overlap = linux.clone();
    overlap[120..124].copy_from_slice(&1u32.to_le_bytes()); // PT_NOTE -> PT_LOAD
    kernel_with(&[
        ("bin", None),
        ("bin/linux", Some(&linux)),
        ("bin/two", Some(&two)),
        ("bin/kernel_segment", Some(&kernel_segment)),
        ("bin/overlap", Some(&overlap)),
        ("etc", None),
        ("etc/motd", Some(b"hello\n")),
        ("tmp", None),
    ])
}

/// A kernel whose files are `entries` (as [`cpio`] takes them).
fn kernel_with(entries: &[(&str, Option<&[u8]>)]) -> K {
    let mut fs = crate::fs::FileSystem::new();
    assert_eq!(fs.unpack_cpio(&cpio(entries)), Ok(entries.len()));
    Kernel::new(TestPlatform::default(), fs, Default::default())
}

fn spawn_linux(k: &mut K) -> Pid {
    k.spawn("/bin/linux", &[b"/bin/linux".to_vec()], None)
        .unwrap()
}

fn poke(k: &mut K, pid: Pid, addr: u64, bytes: &[u8]) {
    k.copy_out(pid, UserPtr(addr), bytes).unwrap();
}

fn peek(k: &mut K, pid: Pid, addr: u64, len: usize) -> Vec<u8> {
    k.copy_in(pid, UserPtr(addr), len).unwrap()
}

fn word_at(k: &mut K, pid: Pid, addr: u64) -> u64 {
    u64::from_le_bytes(peek(k, pid, addr, 8).try_into().unwrap())
}

/// Places the NUL-terminated strings at `at` and a NULL-ended vector of
/// pointers to them after them; returns the vector's address and where
/// free scratch memory starts.
fn put_vector(k: &mut K, pid: Pid, at: u64, strings: &[&[u8]]) -> (u64, u64) {
    let mut next = at;
    let mut pointers = Vec::new();
    for s in strings {
        let mut bytes = s.to_vec();
        bytes.push(0);
        poke(k, pid, next, &bytes);
        pointers.extend_from_slice(&next.to_le_bytes());
        next += bytes.len() as u64;
    }
    pointers.extend_from_slice(&0u64.to_le_bytes());
    let vector = next.next_multiple_of(8);
    poke(k, pid, vector, &pointers);
    (vector, vector + pointers.len() as u64)
}

/// Runs a Linux call that completes without the scheduler.
fn sys(k: &mut K, pid: Pid, number: usize, args: [u64; 6]) -> i64 {
    match k.system_call(pid, number, args) {
        Ok(rax) => rax,
        Err((c, _)) => panic!("call {number} needs the scheduler: {c:?}"),
    }
}

/// `execve(path, argv, envp)` as the kernel completes it: decoded, handed
/// to the scheduler side, run, the old space retired in steps.
fn execve(k: &mut K, pid: Pid, path: &str, argv: &[&[u8]], envp: &[&[u8]]) -> i64 {
    let (path_at, free) = put_vector(k, pid, SCRATCH, &[path.as_bytes()]);
    let path_ptr = word_at(k, pid, path_at);
    let (argv_at, free) = put_vector(k, pid, free, argv);
    let (envp_at, _) = put_vector(k, pid, free, envp);
    execve_raw(k, pid, path_ptr, argv_at, envp_at)
}

fn execve_raw(k: &mut K, pid: Pid, path: u64, argv: u64, envp: u64) -> i64 {
    let d = k
        .decode(pid, nr::EXECVE, [path, argv, envp, 0, 0, 0])
        .unwrap();
    let Completion::Scheduler(SchedulerCall::Exec { path, argv, envp }) = k.call(pid, d.call)
    else {
        panic!("execve goes to the scheduler side");
    };
    match k.execve(pid, path, argv, envp) {
        Ok(frame) => {
            assert_eq!(frame.entry, PROGRAM_ENTRY);
            let mut steps = 0;
            while !k.exec_retire_step(pid) {
                steps += 1;
                assert!(steps < 1000, "retiring ends");
            }
            assert!(k.processes.get(pid).unwrap().retired.is_none());
            0
        }
        Err(e) => e.result(),
    }
}

/// Maps `pages` anonymous pages and writes each.
fn touch_anon(k: &mut K, pid: Pid, pages: u64) -> u64 {
    let addr = sys(k, pid, nr::MMAP, [0, pages * PAGE, 3, 0x22, u64::MAX, 0]) as u64;
    for i in 0..pages {
        poke(k, pid, addr + i * PAGE, b"x");
    }
    addr
}

fn end(k: &mut K, pid: Pid) {
    k.end(pid, 0);
    k.release_ended(pid);
}

#[test]
fn execve_replaces_the_space_keeps_the_pid_and_every_old_frame_comes_back() {
    let mut k = kernel();
    // What a freshly started program holds: its stack page.
    let baseline_pid = spawn_linux(&mut k);
    let fresh = k.platform.frames.live_count();
    end(&mut k, baseline_pid);
    assert_eq!(k.platform.frames.live_count(), 0);

    let pid = spawn_linux(&mut k);
    let old_space = k.processes.get(pid).unwrap().space;
    let anon = touch_anon(&mut k, pid, 200);
    assert!(k.platform.frames.live_count() >= fresh + 200);
    assert_eq!(
        execve(&mut k, pid, "/bin/linux", &[b"two", b"arg"], &[b"A=1"]),
        0
    );
    let p = k.processes.get(pid).unwrap();
    assert_ne!(p.space, old_space, "a new address space");
    assert_eq!(p.pid, pid);
    assert!(matches!(p.abi, ProgramAbi::Linux(_)));
    assert_eq!(k.platform.tables_live, 1, "the old table is freed");
    assert!(
        k.copy_in(pid, UserPtr(anon), 1).is_err(),
        "the old mapping is gone"
    );
    assert_eq!(
        k.platform.frames.live_count(),
        fresh,
        "the frames of a freshly started program, no more"
    );
    end(&mut k, pid);
    assert_eq!(k.platform.frames.live_count(), 0);
    assert_eq!(k.platform.tables_live, 0);
}

#[test]
fn the_new_program_gets_the_argv_and_envp_given() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let (path_at, free) = put_vector(&mut k, pid, SCRATCH, &[b"/bin/two"]);
    let path = word_at(&mut k, pid, path_at);
    let (argv, free) = put_vector(&mut k, pid, free, &[b"prog", b"", b"x y"]);
    let (envp, _) = put_vector(&mut k, pid, free, &[b"A=1", b"B=two"]);
    let d = k
        .decode(pid, nr::EXECVE, [path, argv, envp, 0, 0, 0])
        .unwrap();
    let Completion::Scheduler(SchedulerCall::Exec { path, argv, envp }) = k.call(pid, d.call)
    else {
        panic!("execve goes to the scheduler side");
    };
    let frame = k.execve(pid, path, argv, envp).unwrap();
    while !k.exec_retire_step(pid) {}
    let rsp = frame.stack;
    assert_eq!(word_at(&mut k, pid, rsp), 3, "argc");
    let strings: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            let p = word_at(&mut k, pid, rsp + 8 + 8 * i);
            let bytes = peek(&mut k, pid, p, 8);
            bytes.split(|&b| b == 0).next().unwrap().to_vec()
        })
        .collect();
    assert_eq!(strings, [b"prog".to_vec(), b"".to_vec(), b"x y".to_vec()]);
    assert_eq!(word_at(&mut k, pid, rsp + 32), 0, "argv ends");
    let env0 = word_at(&mut k, pid, rsp + 40);
    let env1 = word_at(&mut k, pid, rsp + 48);
    assert_eq!(peek(&mut k, pid, env0, 4), b"A=1\0");
    assert_eq!(peek(&mut k, pid, env1, 6), b"B=two\0");
    assert_eq!(word_at(&mut k, pid, rsp + 56), 0, "envp ends");
    assert_eq!(k.processes.get(pid).unwrap().path, "/bin/two");
    end(&mut k, pid);
    assert_eq!(k.platform.frames.live_count(), 0);
}

/// Everything a failed execve must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    space: neoos_mm::AsId,
    frames: usize,
    tables: usize,
    path: alloc::string::String,
    abi: ProgramAbi,
    anon: Vec<u8>,
    fd3_open: bool,
}

fn snapshot(k: &mut K, pid: Pid, anon: u64) -> Snapshot {
    let p = k.processes.get(pid).unwrap();
    let (space, path, abi) = (p.space, p.path.clone(), p.abi);
    let fd3_open = p.files.get(3).is_ok();
    Snapshot {
        space,
        frames: k.platform.frames.live_count(),
        tables: k.platform.tables_live,
        path,
        abi,
        anon: peek(k, pid, anon, 4),
        fd3_open,
    }
}

#[test]
fn a_failed_execve_changes_nothing_and_says_why() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let anon = touch_anon(&mut k, pid, 4);
    poke(&mut k, pid, anon, b"keep");
    // The scratch pages the calls' arguments go to, touched beforehand.
    poke(&mut k, pid, SCRATCH, &[0; 6 * PAGE_SIZE]);
    let path = SCRATCH + 8192;
    poke(&mut k, pid, path, b"/etc/motd\0");
    let flags = abi::O_CLOEXEC as u64;
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::OPENAT,
            [(-100i64) as u64, path, flags, 0, 0, 0]
        ),
        3
    );
    // The loader reads /etc/motd through the page cache, where its page
    // stays while fd 3 holds the file: read it once beforehand.
    assert_eq!(execve(&mut k, pid, "/etc/motd", &[], &[]), -errno::ENOEXEC);
    let before = snapshot(&mut k, pid, anon);
    let cases: [(&str, &[&[u8]], i64); 4] = [
        ("/bin/missing", &[b"a"], errno::ENOENT),
        ("/etc/motd", &[b"a"], errno::ENOEXEC),
        ("/bin", &[b"a"], errno::EACCES),
        ("/bin/kernel_segment", &[b"a"], errno::ENOEXEC),
    ];
    for (path, argv, want) in cases {
        assert_eq!(execve(&mut k, pid, path, argv, &[]), -want, "{path}");
        assert_eq!(snapshot(&mut k, pid, anon), before, "{path}");
    }
    // Arguments over the limit: one huge string, then many small ones.
    let huge = alloc::vec![b'a'; 70 * 1024];
    let big_at = touch_anon(&mut k, pid, 20);
    poke(&mut k, pid, big_at, &huge);
    poke(&mut k, pid, big_at + huge.len() as u64, &[0]);
    let (vector, _) = put_vector(&mut k, pid, SCRATCH + 16384, &[]);
    poke(&mut k, pid, vector, &big_at.to_le_bytes());
    poke(&mut k, pid, vector + 8, &0u64.to_le_bytes());
    let before = snapshot(&mut k, pid, anon);
    let path_ptr = SCRATCH + 20000;
    poke(&mut k, pid, path_ptr, b"/bin/linux\0");
    assert_eq!(
        execve_raw(&mut k, pid, path_ptr, vector, 0),
        -errno::E2BIG,
        "one string over the limit"
    );
    assert_eq!(snapshot(&mut k, pid, anon), before);
    let many: Vec<u8> = (0..9000u64)
        .flat_map(|_| (path_ptr + 5).to_le_bytes()) // "linux"
        .chain(0u64.to_le_bytes())
        .collect();
    poke(&mut k, pid, big_at, &many);
    let before = snapshot(&mut k, pid, anon);
    assert_eq!(
        execve_raw(&mut k, pid, path_ptr, big_at, 0),
        -errno::E2BIG,
        "too many pointers"
    );
    assert_eq!(snapshot(&mut k, pid, anon), before);
    // Bad pointers: the vector, a string, a string that runs off the end
    // of its mapping, the path.
    assert_eq!(
        execve_raw(&mut k, pid, path_ptr, UNMAPPED, 0),
        -errno::EFAULT
    );
    poke(&mut k, pid, vector, &UNMAPPED.to_le_bytes());
    assert_eq!(execve_raw(&mut k, pid, path_ptr, vector, 0), -errno::EFAULT);
    assert_eq!(execve_raw(&mut k, pid, path_ptr, 0, vector), -errno::EFAULT);
    let last_byte = STACK_TOP - 1;
    poke(&mut k, pid, last_byte, b"z");
    poke(&mut k, pid, vector, &last_byte.to_le_bytes());
    assert_eq!(
        execve_raw(&mut k, pid, path_ptr, vector, 0),
        -errno::EFAULT,
        "a string without its NUL before unmapped memory"
    );
    assert_eq!(execve_raw(&mut k, pid, UNMAPPED, 0, 0), -errno::EFAULT);
    assert_eq!(snapshot(&mut k, pid, anon), before);
    // And the process still execs afterwards.
    assert_eq!(execve(&mut k, pid, "/bin/two", &[b"two"], &[]), 0);
    end(&mut k, pid);
    assert_eq!(k.platform.frames.live_count(), 0);
    assert_eq!(k.platform.tables_live, 0);
}

#[test]
fn overlapping_segments_load_and_leave_nothing_behind() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    assert_eq!(execve(&mut k, pid, "/bin/overlap", &[b"o"], &[]), 0);
    end(&mut k, pid);
    assert_eq!(k.platform.frames.live_count(), 0);
    assert_eq!(k.platform.tables_live, 0);
}

/// `linux` with the little-endian `value` (of `value.len()` bytes)
/// written at byte `at`.
fn patched(linux: &[u8], at: usize, value: &[u8]) -> Vec<u8> {
    let mut f = linux.to_vec();
    f[at..at + value.len()].copy_from_slice(value);
    f
}

/// Where the ELF header's and the first program header's (the code's
/// PT_LOAD; the second is a PT_NOTE) fields are in a test program.
const E_PHOFF: usize = 32;
const E_PHENTSIZE: usize = 54;
const E_PHNUM: usize = 56;
const LOAD: usize = 64;
const NOTE: usize = 64 + 56;
const P_OFFSET: usize = 8;
const P_VADDR: usize = 16;
const P_FILESZ: usize = 32;
const P_MEMSZ: usize = 40;

#[test]
fn hostile_program_files_are_enoexec_and_leave_nothing_behind() {
    let linux = linux_program(&[0xf4; 32], 8192);
    let len = linux.len();
    let big = |v: u64| v.to_le_bytes();
    let cases: Vec<(&str, Vec<u8>)> = alloc::vec![
        ("header cut short", linux[..40].to_vec()),
        (
            "program headers cut short",
            linux[..LOAD + 56 + 10].to_vec()
        ),
        (
            "the segment's file part cut short",
            linux[..len - 10].to_vec()
        ),
        ("ELF32", patched(&linux, 4, &[1])),
        (
            "program headers past the end",
            patched(&linux, E_PHOFF, &big(len as u64))
        ),
        (
            "e_phoff + size wraps",
            patched(&linux, E_PHOFF, &big(u64::MAX - 8))
        ),
        (
            "no program headers",
            patched(&linux, E_PHNUM, &0u16.to_le_bytes())
        ),
        (
            "PN_XNUM headers",
            patched(&linux, E_PHNUM, &0xffffu16.to_le_bytes())
        ),
        (
            "2,000 headers",
            patched(&linux, E_PHNUM, &2000u16.to_le_bytes())
        ),
        (
            "entry size 32",
            patched(&linux, E_PHENTSIZE, &32u16.to_le_bytes())
        ),
        ("p_offset + p_filesz wraps", {
            let f = patched(&linux, LOAD + P_OFFSET, &big(u64::MAX - 4095));
            patched(
                &f,
                LOAD + P_VADDR,
                &big(0x40_0000 + (u64::MAX - 4095) % PAGE),
            )
        }),
        (
            "p_filesz past the end",
            patched(&linux, LOAD + P_FILESZ, &big(1 << 40))
        ),
        (
            "p_vaddr + p_memsz wraps",
            patched(&linux, LOAD + P_MEMSZ, &big(u64::MAX - 8))
        ),
        (
            "a segment past user space",
            patched(&linux, LOAD + P_MEMSZ, &big(1 << 48))
        ),
        (
            "p_filesz over p_memsz",
            patched(&linux, LOAD + P_MEMSZ, &big(16))
        ),
    ];
    let mut entries: Vec<(alloc::string::String, Vec<u8>)> = cases
        .iter()
        .enumerate()
        .map(|(i, (_, f))| (alloc::format!("bin/h{i}"), f.clone()))
        .collect();
    // A note segment past the end is not read: the program still loads.
    let far_note = patched(&linux, NOTE + P_OFFSET, &big(u64::MAX - 2));
    entries.push(("bin/far_note".into(), far_note));
    entries.push(("bin/linux".into(), linux.clone()));
    let mut archive: Vec<(&str, Option<&[u8]>)> = alloc::vec![("bin", None), ("tmp", None)];
    archive.extend(
        entries
            .iter()
            .map(|(n, f)| (n.as_str(), Some(f.as_slice()))),
    );
    let mut k = kernel_with(&archive);
    let pid = spawn_linux(&mut k);
    let anon = touch_anon(&mut k, pid, 1);
    poke(&mut k, pid, SCRATCH, &[0; 2 * PAGE_SIZE]);
    let before = snapshot(&mut k, pid, anon);
    for (i, (what, _)) in cases.iter().enumerate() {
        let path = alloc::format!("/bin/h{i}");
        assert_eq!(
            execve(&mut k, pid, &path, &[b"h"], &[]),
            -errno::ENOEXEC,
            "{what}"
        );
        assert_eq!(snapshot(&mut k, pid, anon), before, "{what}");
        let Some(crate::fs::Node::File(file)) = k.fs.lookup(&path) else {
            panic!("{path}");
        };
        assert!(
            k.memory.file_size(file).is_err(),
            "{what}: no reference to the file left"
        );
    }
    assert_eq!(execve(&mut k, pid, "/bin/far_note", &[b"f"], &[]), 0);
    end(&mut k, pid);
    assert_eq!(k.platform.frames.live_count(), 0);
    assert_eq!(k.platform.tables_live, 0);
}

#[test]
fn execve_reads_the_headers_not_the_whole_program_file() {
    // A program with 3 MiB of data after its segment (symbols, say).
    let mut linux = linux_program(&[0xf4; 32], 8192);
    linux.resize(linux.len() + 3 * 1024 * 1024, 0xab);
    let mut k = kernel_with(&[("bin", None), ("bin/linux", Some(&linux)), ("tmp", None)]);
    let Some(crate::fs::Node::File(file)) = k.fs.lookup("/bin/linux") else {
        panic!("/bin/linux");
    };
    let pid = spawn_linux(&mut k);
    assert_eq!(execve(&mut k, pid, "/bin/linux", &[b"l"], &[]), 0);
    // The running program's mapping holds the file's object: the page with
    // the headers is in the page cache, none of the 768 after it is.
    let resident = |k: &K, page| k.memory.file_page_dirty(file, page).is_some();
    assert!(resident(&k, 0));
    assert!((1..=768).all(|page| !resident(&k, page)));
    end(&mut k, pid);
    assert_eq!(k.platform.frames.live_count(), 0);
}

#[test]
fn close_on_exec_descriptors_close_and_the_others_stay_open() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let path = SCRATCH + 8192;
    poke(&mut k, pid, path, b"/etc/motd\0");
    let open = |k: &mut K, flags: u32| {
        sys(
            k,
            pid,
            nr::OPENAT,
            [(-100i64) as u64, path, flags as u64, 0, 0, 0],
        )
    };
    assert_eq!(open(&mut k, 0), 3);
    assert_eq!(open(&mut k, abi::O_CLOEXEC), 4);
    assert_eq!(open(&mut k, 0), 5);
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::FCNTL,
            [5, abi::F_SETFD as u64, abi::FD_CLOEXEC, 0, 0, 0]
        ),
        0
    );
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::FCNTL,
            [3, abi::F_DUPFD_CLOEXEC as u64, 0, 0, 0, 0]
        ),
        6
    );
    // F_DUPFD from a minimum (a shell saves descriptors at 10 and up).
    let dupfd =
        |k: &mut K, cmd: u32, min: u64| sys(k, pid, nr::FCNTL, [3, cmd as u64, min, 0, 0, 0]);
    assert_eq!(dupfd(&mut k, abi::F_DUPFD_CLOEXEC, 10), 10);
    assert_eq!(dupfd(&mut k, abi::F_DUPFD, 10), 11);
    assert_eq!(dupfd(&mut k, abi::F_DUPFD, 64), -errno::EINVAL);
    assert_eq!(execve(&mut k, pid, "/bin/linux", &[b"l"], &[]), 0);
    let files = &k.processes.get(pid).unwrap().files;
    let open_fds: Vec<i64> = (0..64).filter(|&fd| files.get(fd).is_ok()).collect();
    assert_eq!(open_fds, [0, 1, 2, 3, 11]);
    // The one left open still reads its file.
    assert_eq!(sys(&mut k, pid, nr::READ, [3, SCRATCH, 6, 0, 0, 0]), 6);
    assert_eq!(peek(&mut k, pid, SCRATCH, 6), b"hello\n");
    end(&mut k, pid);
    assert_eq!(k.platform.frames.live_count(), 0);
}

#[test]
fn execve_resets_caught_signals_keeps_ignored_ones_the_mask_and_pending() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let act = SCRATCH + 4096;
    let set_action = |k: &mut K, sig: u32, handler: u64| {
        let mut bytes = Vec::new();
        for w in [
            handler,
            0x0400_0000, /* SA_RESTORER */
            PROGRAM_ENTRY,
            0,
        ] {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        poke(k, pid, act, &bytes);
        assert_eq!(
            sys(k, pid, nr::RT_SIGACTION, [sig as u64, act, 0, 8, 0, 0]),
            0
        );
    };
    set_action(&mut k, SIGUSR1, PROGRAM_ENTRY);
    set_action(&mut k, SIGUSR2, SIG_IGN);
    let mask = 1u64 << (SIGUSR1 - 1);
    poke(&mut k, pid, act, &mask.to_le_bytes());
    assert_eq!(
        sys(&mut k, pid, nr::RT_SIGPROCMASK, [0, act, 0, 8, 0, 0]),
        0
    );
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::KILL,
            [pid as u64, SIGUSR1 as u64, 0, 0, 0, 0]
        ),
        0
    );
    assert_eq!(execve(&mut k, pid, "/bin/linux", &[b"l"], &[]), 0);
    let signals = &k.processes.get(pid).unwrap().signals;
    assert_eq!(signals.action(SIGUSR1).handler, 0, "caught: default");
    assert_eq!(signals.action(SIGUSR2).handler, SIG_IGN, "ignored stays");
    assert_eq!(signals.pending, mask, "pending stays");
    assert_eq!(k.blocked_of(pid), mask);
    assert_eq!(k.fs_base_of(pid), 0);
    end(&mut k, pid);
}

#[test]
fn an_end_while_the_old_space_is_retiring_frees_both_spaces() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    touch_anon(&mut k, pid, 50);
    let (path_at, free) = put_vector(&mut k, pid, SCRATCH, &[b"/bin/two"]);
    let path = word_at(&mut k, pid, path_at);
    let (argv, _) = put_vector(&mut k, pid, free, &[b"two"]);
    k.execve(pid, UserPtr(path), UserPtr(argv), UserPtr(0))
        .unwrap();
    assert!(k.processes.get(pid).unwrap().retired.is_some());
    assert_eq!(k.platform.tables_live, 2);
    end(&mut k, pid);
    assert_eq!(k.platform.frames.live_count(), 0);
    assert_eq!(k.platform.tables_live, 0);
}

#[test]
fn a_program_the_kernel_started_is_reported_under_its_launch_path_after_exec() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    assert_eq!(execve(&mut k, pid, "/bin/two", &[b"two"], &[]), 0);
    k.end(pid, 0);
    k.release_ended(pid);
    assert_eq!(
        k.platform.reports,
        ["program /bin/linux (pid 1) ended with status 0"]
    );
}

#[test]
fn proc_self_exe_names_the_running_program() {
    let mut k = kernel();
    let pid = k.spawn("/bin/two", &[b"/bin/two".to_vec()], None).unwrap();
    assert_eq!(execve(&mut k, pid, "/proc/self/exe", &[b"cat"], &[]), 0);
    assert_eq!(k.processes.get(pid).unwrap().path, "/bin/two");
    end(&mut k, pid);
}

fn clone(k: &mut K, pid: Pid, args: [u64; 5]) -> Result<CloneArgs, i64> {
    let regs = [args[0], args[1], args[2], args[3], args[4], 0];
    let d = k.decode(pid, nr::CLONE, regs).unwrap();
    match k.call(pid, d.call) {
        Completion::Scheduler(SchedulerCall::Clone(a)) => Ok(a),
        other => Err(other.rax(d.personality).unwrap()),
    }
}

#[test]
fn clone_as_fork_stores_the_tids_and_sets_the_childs_tls() {
    let mut k = kernel();
    let parent = spawn_linux(&mut k);
    let (ptid, ctid) = (SCRATCH + 100, SCRATCH + 200);
    let flags = abi::CLONE_CHILD_SETTID
        | abi::CLONE_CHILD_CLEARTID
        | abi::CLONE_PARENT_SETTID
        | abi::CLONE_SETTLS
        | 17;
    let args = clone(&mut k, parent, [flags, 0, ptid, ctid, 0x7000]).unwrap();
    let frame = TestFrame { entry: 1, stack: 2 };
    let child = k.clone_process(parent, &frame, args).unwrap();
    let child_word = (child as u32).to_le_bytes().to_vec();
    assert_eq!(peek(&mut k, parent, ptid, 4), child_word);
    assert_eq!(peek(&mut k, child, ctid, 4), child_word);
    assert_eq!(peek(&mut k, parent, ctid, 4), [0; 4], "the parent's stays");
    assert_eq!(k.fs_base_of(child), 0x7000);
    assert_eq!(k.fs_base_of(parent), 0);
    // A parent tid pointer into unmapped memory: EFAULT, no child.
    let args = clone(
        &mut k,
        parent,
        [abi::CLONE_PARENT_SETTID | 17, 0, UNMAPPED, 0, 0],
    )
    .unwrap();
    let processes = k.processes.len();
    assert!(k.clone_process(parent, &frame, args).is_err());
    assert_eq!(k.processes.len(), processes);
    end(&mut k, child);
    end(&mut k, parent);
    assert_eq!(k.platform.frames.live_count(), 0);
}

#[test]
fn clone_as_fork_keeps_the_clear_child_tid_for_the_childs_thread_and_exec_forgets_it() {
    let mut k = kernel();
    let parent = spawn_linux(&mut k);
    let ctid = SCRATCH + 200;
    let flags = abi::CLONE_CHILD_SETTID | abi::CLONE_CHILD_CLEARTID | 17;
    let args = clone(&mut k, parent, [flags, 0, 0, ctid, 0]).unwrap();
    let frame = TestFrame { entry: 1, stack: 2 };
    let child = k.clone_process(parent, &frame, args).unwrap();
    let child_word = (child as u32).to_le_bytes().to_vec();
    assert_eq!(peek(&mut k, child, ctid, 4), child_word);
    // The child's first thread ends while a second lives: 0 is stored.
    let thread = CloneArgs {
        flags: abi::THREAD_REQUIRED,
        stack: SCRATCH,
        parent_tid: UserPtr(0),
        child_tid: UserPtr(0),
        tls: 0,
    };
    k.clone_thread(child, &frame, thread).unwrap();
    assert!(k.end_thread(child, 0));
    assert_eq!(peek(&mut k, child, ctid, 4), [0; 4]);
    assert_eq!(
        peek(&mut k, parent, ctid, 4),
        [0; 4],
        "the parent's untouched"
    );
    end(&mut k, child);
    // An exec forgets the address: it named the old image's memory.
    let args = clone(&mut k, parent, [flags, 0, 0, ctid, 0]).unwrap();
    let child = k.clone_process(parent, &frame, args).unwrap();
    assert_eq!(k.processes.thread(child).unwrap().clear_child_tid, ctid);
    assert_eq!(execve(&mut k, child, "/bin/two", &[b"two"], &[]), 0);
    assert_eq!(k.processes.thread(child).unwrap().clear_child_tid, 0);
    end(&mut k, child);
    end(&mut k, parent);
    assert_eq!(k.platform.frames.live_count(), 0);
}

#[test]
fn clone_sharing_memory_without_a_thread_is_enosys_and_unknown_flags_einval() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    // A thread clone lacking what a thread must share: EINVAL (the
    // thread side refuses it; thread_tests cover the complete sets).
    let thread = abi::CLONE_VM | abi::CLONE_THREAD | abi::CLONE_SIGHAND;
    assert_eq!(
        clone(&mut k, pid, [thread, SCRATCH, 0, 0, 0]),
        Err(-errno::EINVAL)
    );
    let spawn = abi::CLONE_VM | abi::CLONE_VFORK | 17;
    assert_eq!(
        clone(&mut k, pid, [spawn, SCRATCH, 0, 0, 0]),
        Err(-errno::ENOSYS)
    );
    assert_eq!(
        clone(&mut k, pid, [abi::CLONE_FILES | 17, 0, 0, 0, 0]),
        Err(-errno::EINVAL)
    );
    assert_eq!(clone(&mut k, pid, [65, 0, 0, 0, 0]), Err(-errno::EINVAL));
    assert!(clone(&mut k, pid, [abi::CLONE_VFORK | 17, 0, 0, 0, 0]).is_ok());
}

fn waitid(k: &mut K, pid: Pid, args: [u64; 4]) -> Result<Option<i64>, i64> {
    let d = k
        .decode(pid, nr::WAITID, [args[0], args[1], args[2], args[3], 0, 0])
        .unwrap();
    match k.call(pid, d.call) {
        Completion::Scheduler(SchedulerCall::WaitId {
            target,
            info,
            options,
        }) => k
            .waitid_step(pid, target, info, options)
            .map_err(|e| e.result()),
        other => Err(other.rax(d.personality).unwrap()),
    }
}

fn info_word(k: &mut K, pid: Pid, at: u64) -> i32 {
    i32::from_le_bytes(peek(k, pid, SCRATCH + at, 4).try_into().unwrap())
}

#[test]
fn waitid_takes_children_and_fills_the_siginfo() {
    let mut k = kernel();
    let parent = spawn_linux(&mut k);
    let frame = TestFrame { entry: 1, stack: 2 };
    let a = k.fork(parent, &frame).unwrap();
    let b = k.fork(parent, &frame).unwrap();
    let info = SCRATCH;
    let exited = abi::WEXITED as u64;
    let nohang = (abi::WEXITED | abi::WNOHANG) as u64;
    poke(&mut k, parent, info, &[0xff; 128]);
    assert_eq!(waitid(&mut k, parent, [0, 0, info, nohang]), Ok(Some(0)));
    assert_eq!(info_word(&mut k, parent, 0), 0, "no child: si_signo 0");
    assert_eq!(info_word(&mut k, parent, 16), 0, "no child: si_pid 0");
    assert_eq!(
        waitid(&mut k, parent, [1, a as u64, info, exited]),
        Ok(None),
        "blocks"
    );
    k.end(b, super::killed_by(super::signals::SIGSEGV));
    k.release_ended(b);
    k.end(a, 3);
    k.release_ended(a);
    let nowait = (abi::WEXITED | abi::WNOWAIT) as u64;
    assert_eq!(
        waitid(&mut k, parent, [1, a as u64, info, nowait]),
        Ok(Some(0))
    );
    assert_eq!(info_word(&mut k, parent, 16), a as i32);
    assert_eq!(
        waitid(&mut k, parent, [1, a as u64, info, exited]),
        Ok(Some(0))
    );
    assert_eq!(info_word(&mut k, parent, 0), 17, "SIGCHLD");
    assert_eq!(info_word(&mut k, parent, 8), abi::CLD_EXITED);
    assert_eq!(info_word(&mut k, parent, 16), a as i32);
    assert_eq!(info_word(&mut k, parent, 24), 3);
    assert_eq!(waitid(&mut k, parent, [0, 0, info, exited]), Ok(Some(0)));
    assert_eq!(info_word(&mut k, parent, 8), abi::CLD_KILLED);
    assert_eq!(info_word(&mut k, parent, 16), b as i32);
    assert_eq!(info_word(&mut k, parent, 24), 11);
    assert_eq!(
        waitid(&mut k, parent, [0, 0, info, exited]),
        Err(-errno::ECHILD)
    );
    // Bad arguments.
    assert_eq!(waitid(&mut k, parent, [0, 0, info, 0]), Err(-errno::EINVAL));
    assert_eq!(
        waitid(&mut k, parent, [7, 0, info, exited]),
        Err(-errno::EINVAL)
    );
    assert_eq!(
        waitid(&mut k, parent, [1, 0, info, exited]),
        Err(-errno::EINVAL)
    );
    let _ = WaitTarget::Any;
    end(&mut k, parent);
    assert_eq!(k.platform.frames.live_count(), 0);
}
