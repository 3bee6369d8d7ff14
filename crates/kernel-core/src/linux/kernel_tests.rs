//! Host tests of the Linux personality over the test machine: which
//! programs are Linux programs, their initial stack, and the Linux calls as
//! a program would see them (decoded by the caller's numbering).

use alloc::vec::Vec;

use neoos_abi::layout::STACK_TOP;
use neoos_abi::linux::{auxv::*, nr, stat as st, ARCH_GET_FS, ARCH_SET_FS, TIOCGWINSZ};
use neoos_abi::{errno, PAGE_SIZE};

use super::{LinuxState, ProgramAbi};
use crate::process::Pid;
use crate::syscall::{Call, FileCall, ProcessCall, UserPtr};
use crate::test_platform::{
    kernel, linux_program, TestPlatform, PROGRAM_BASE, PROGRAM_ENTRY, TEST_HWCAP,
};
use crate::Kernel;

type K = Kernel<TestPlatform>;

/// A scratch user buffer of every test process (in its stack mapping).
const SCRATCH: u64 = STACK_TOP - 64 * 1024;
const PAGE: u64 = PAGE_SIZE as u64;

fn spawn_linux(k: &mut K) -> Pid {
    k.spawn("/bin/linux", &[b"/bin/linux".to_vec()], None)
        .unwrap()
}

fn peek(k: &mut K, pid: Pid, addr: u64, len: usize) -> Vec<u8> {
    k.copy_in(pid, UserPtr(addr), len).unwrap()
}

fn poke(k: &mut K, pid: Pid, addr: u64, bytes: &[u8]) {
    k.copy_out(pid, UserPtr(addr), bytes).unwrap();
}

fn word_at(k: &mut K, pid: Pid, addr: u64) -> u64 {
    u64::from_le_bytes(peek(k, pid, addr, 8).try_into().unwrap())
}

/// Runs call `number` of `pid` by its own numbering, as the trap glue does.
fn sys(k: &mut K, pid: Pid, number: usize, args: [u64; 6]) -> i64 {
    match k.system_call(pid, number, args) {
        Ok(rax) => rax,
        Err((c, _)) => panic!("call {number} needs the scheduler: {c:?}"),
    }
}

/// The program break of `pid`'s address space.
fn program_break(k: &K, pid: Pid) -> neoos_mm::ProgramBreak {
    let space = k.processes.get(pid).unwrap().space;
    k.memory.program_break(space).unwrap()
}

fn linux_state(k: &K, pid: Pid) -> LinuxState {
    match k.processes.get(pid).unwrap().abi {
        ProgramAbi::Linux(s) => s,
        ProgramAbi::Neo => panic!("pid {pid} is a NeoOS process"),
    }
}

#[test]
fn a_program_without_the_note_starts_as_linux_on_the_linux_stack() {
    let mut k = kernel();
    let neo = k
        .spawn("/bin/prog", &[b"/bin/prog".to_vec()], None)
        .unwrap();
    assert_eq!(k.processes.get(neo).unwrap().abi, ProgramAbi::Neo);
    let pid = spawn_linux(&mut k);
    let file_size = linux_program(&[0xf4; 32], 8192).len() as u64;
    let brk_start = (PROGRAM_BASE + file_size + 8192).next_multiple_of(PAGE);
    assert_eq!(linux_state(&k, pid), LinuxState::default());
    let brk = neoos_mm::ProgramBreak {
        start: brk_start,
        end: brk_start,
    };
    assert_eq!(program_break(&k, pid), brk);
    let rsp = k.processes.thread(pid).unwrap().context.unwrap().stack;
    assert_eq!(rsp % 16, 0);
    assert_eq!(word_at(&mut k, pid, rsp), 1, "argc");
    let argv0 = word_at(&mut k, pid, rsp + 8);
    assert_eq!(peek(&mut k, pid, argv0, 11), b"/bin/linux\0");
    assert_eq!(word_at(&mut k, pid, rsp + 16), 0);
    let mut at = rsp + 24;
    let mut envp = Vec::new();
    while word_at(&mut k, pid, at) != 0 {
        let p = word_at(&mut k, pid, at);
        envp.push(peek(&mut k, pid, p, 5));
        at += 8;
    }
    assert_eq!(
        envp,
        [b"PATH=".to_vec(), b"HOME=".to_vec(), b"TERM=".to_vec()]
    );
    at += 8;
    let mut aux = Vec::new();
    loop {
        let (key, value) = (word_at(&mut k, pid, at), word_at(&mut k, pid, at + 8));
        aux.push((key, value));
        at += 16;
        if key == AT_NULL {
            break;
        }
    }
    let get = |key| aux.iter().find(|(k, _)| *k == key).map(|&(_, v)| v);
    assert_eq!(get(AT_ENTRY), Some(PROGRAM_ENTRY));
    assert_eq!(get(AT_PHDR), Some(PROGRAM_BASE + 64));
    assert_eq!(get(AT_PHNUM), Some(2));
    assert_eq!(get(AT_HWCAP), Some(TEST_HWCAP));
    let phdr = get(AT_PHDR).unwrap();
    assert_eq!(
        word_at(&mut k, pid, phdr) as u32,
        1,
        "AT_PHDR points at PT_LOAD"
    );
    let random = get(AT_RANDOM).unwrap();
    assert!(peek(&mut k, pid, random, 16).iter().any(|&b| b != 0));
    let execfn = get(AT_EXECFN).unwrap();
    assert_eq!(peek(&mut k, pid, execfn, 11), b"/bin/linux\0");
}

#[test]
fn a_dynamically_linked_program_is_refused_with_a_report() {
    let mut image = linux_program(&[0xf4; 32], 0);
    image[120..124].copy_from_slice(&3u32.to_le_bytes()); // PT_NOTE -> PT_INTERP
    let archive = crate::test_platform::cpio(&[("bin", None), ("bin/dyn", Some(&image))]);
    let mut fs = crate::fs::FileSystem::new();
    fs.unpack_cpio(&archive).unwrap();
    let mut k = Kernel::new(TestPlatform::default(), fs, Default::default());
    let r = k.spawn("/bin/dyn", &[b"/bin/dyn".to_vec()], None);
    assert_eq!(r, Err(neoos_mm::Errno::Perm));
    assert!(k.platform.reports[0].contains("dynamically linked"));
    assert_eq!(k.platform.tables_live, 0);
}

#[test]
fn a_program_whose_entry_is_outside_user_space_is_refused_with_a_report() {
    let mut image = linux_program(&[0xf4; 32], 0);
    image[24..32].copy_from_slice(&neoos_abi::layout::USER_END.to_le_bytes()); // e_entry
    let archive = crate::test_platform::cpio(&[("bin", None), ("bin/far", Some(&image))]);
    let mut fs = crate::fs::FileSystem::new();
    fs.unpack_cpio(&archive).unwrap();
    let mut k = Kernel::new(TestPlatform::default(), fs, Default::default());
    let r = k.spawn("/bin/far", &[b"/bin/far".to_vec()], None);
    assert_eq!(r, Err(neoos_mm::Errno::Perm));
    assert!(k.platform.reports[0].contains("outside user space"));
    assert_eq!(k.platform.tables_live, 0);
    assert_eq!(k.platform.frames.live_count(), 0);
}

#[test]
fn brk_growth_counts_against_the_mapping_bound() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let start = program_break(&k, pid).start;
    let space = k.processes.get(pid).unwrap().space;
    let anon = [0, PAGE, 3, 0x22, u64::MAX, 0]; // PROT_READ|WRITE, MAP_PRIVATE|ANON
    while k.memory.mapping_count(space) < neoos_abi::limits::MAPPINGS_MAX {
        assert!(sys(&mut k, pid, nr::MMAP, anon) > 0);
    }
    let grow = [start + PAGE, 0, 0, 0, 0, 0];
    assert_eq!(
        sys(&mut k, pid, nr::BRK, grow),
        start as i64,
        "refused: the break stays"
    );
    assert_eq!(
        k.memory.mapping_count(space),
        neoos_abi::limits::MAPPINGS_MAX
    );
}

#[test]
fn writev_to_a_file_the_disk_cannot_hold_is_refused_before_its_buffers_are_read() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let path = SCRATCH + 2048;
    poke(&mut k, pid, path, b"/tmp/v\0");
    let fd = sys(&mut k, pid, nr::OPEN, [path, 0o102, 0o644, 0, 0, 0]); // O_RDWR|O_CREAT
    assert!(fd >= 0);
    // 1,024 iovecs of 1 GiB each at an unmapped address: the total is cut
    // at MAX_RW_COUNT, and a file refuses it for want of room at once.
    let mut iov = Vec::new();
    for _ in 0..1024 {
        iov.extend_from_slice(&0x1000_0000_0000u64.to_le_bytes());
        iov.extend_from_slice(&(1u64 << 30).to_le_bytes());
    }
    let iov_at = SCRATCH - 32 * 1024;
    poke(&mut k, pid, iov_at, &iov);
    let r = sys(&mut k, pid, nr::WRITEV, [fd as u64, iov_at, 1024, 0, 0, 0]);
    assert_eq!(r, -neoos_abi::errno::ENOMEM);
}

#[test]
fn a_position_independent_program_is_refused_with_a_report() {
    let mut image = linux_program(&[0xf4; 32], 0);
    image[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN
    let archive = crate::test_platform::cpio(&[("bin", None), ("bin/pie", Some(&image))]);
    let mut fs = crate::fs::FileSystem::new();
    fs.unpack_cpio(&archive).unwrap();
    let mut k = Kernel::new(TestPlatform::default(), fs, Default::default());
    let r = k.spawn("/bin/pie", &[b"/bin/pie".to_vec()], None);
    assert_eq!(r, Err(neoos_mm::Errno::Perm));
    assert!(
        k.platform.reports[0].contains("not ET_EXEC"),
        "{:?}",
        k.platform.reports
    );
}

#[test]
fn the_same_number_is_a_different_call_in_each_numbering() {
    let mut k = kernel();
    let neo = k
        .spawn("/bin/prog", &[b"/bin/prog".to_vec()], None)
        .unwrap();
    let linux = spawn_linux(&mut k);
    let args = [1, SCRATCH, 3, 0, 0, 0];
    let neo_call = k.decode(neo, 1, args).unwrap().call;
    assert_eq!(neo_call, Call::Processes(ProcessCall::Exit { status: 1 }));
    let linux_call = k.decode(linux, 1, args).unwrap().call;
    assert!(matches!(
        linux_call,
        Call::Files(FileCall::Write {
            fd: 1,
            count: 3,
            ..
        })
    ));
    poke(&mut k, linux, SCRATCH, b"hey");
    assert_eq!(sys(&mut k, linux, nr::WRITE, args), 3);
    assert_eq!(k.platform.console_out, b"hey");
}

#[test]
fn arch_prctl_keeps_the_fs_base_per_process_and_fork_copies_it() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let other = spawn_linux(&mut k);
    let base = 0x7000_1234_5000;
    assert_eq!(
        sys(&mut k, pid, nr::ARCH_PRCTL, [ARCH_SET_FS, base, 0, 0, 0, 0]),
        0
    );
    assert_eq!(k.platform.fs_base, base, "loaded at once");
    assert_eq!(k.fs_base_of(pid), base);
    assert_eq!(k.fs_base_of(other), 0);
    let get = [ARCH_GET_FS, SCRATCH, 0, 0, 0, 0];
    assert_eq!(sys(&mut k, pid, nr::ARCH_PRCTL, get), 0);
    assert_eq!(word_at(&mut k, pid, SCRATCH), base);
    let non_canonical = [ARCH_SET_FS, 0x8000_0000_0000, 0, 0, 0, 0];
    assert_eq!(
        sys(&mut k, pid, nr::ARCH_PRCTL, non_canonical),
        -errno::EPERM
    );
    assert_eq!(k.fs_base_of(pid), base, "a refused call changes nothing");
    assert_eq!(
        sys(&mut k, pid, nr::ARCH_PRCTL, [0x9999, 0, 0, 0, 0, 0]),
        -errno::EINVAL
    );
    assert_eq!(
        sys(&mut k, pid, nr::ARCH_PRCTL, [ARCH_GET_FS, 0, 0, 0, 0, 0]),
        -errno::EFAULT
    );
    let child = k
        .fork(pid, &crate::test_platform::TestFrame { entry: 0, stack: 0 })
        .unwrap();
    assert_eq!(k.fs_base_of(child), base);
}

#[test]
fn brk_grows_shrinks_and_refuses_what_it_cannot_do() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let start = program_break(&k, pid).start;
    assert_eq!(sys(&mut k, pid, nr::BRK, [0; 6]), start as i64);
    let grown = start + 2 * PAGE + 10;
    assert_eq!(
        sys(&mut k, pid, nr::BRK, [grown, 0, 0, 0, 0, 0]),
        grown as i64
    );
    poke(&mut k, pid, grown - 1, &[7]);
    assert_eq!(peek(&mut k, pid, start, 1), [0], "new break memory is zero");
    assert_eq!(
        sys(&mut k, pid, nr::BRK, [start - 1, 0, 0, 0, 0, 0]),
        grown as i64
    );
    let shrunk = start + PAGE;
    assert_eq!(
        sys(&mut k, pid, nr::BRK, [shrunk, 0, 0, 0, 0, 0]),
        shrunk as i64
    );
    assert!(
        k.copy_in(pid, UserPtr(start + 2 * PAGE), 1).is_err(),
        "unmapped"
    );
    assert_eq!(peek(&mut k, pid, start, 1), [0], "the rest stays");
    // Another mapping in the way: the break stays.
    let fixed = start + 8 * PAGE;
    let flags = (neoos_abi::mman::MAP_PRIVATE
        | neoos_abi::mman::MAP_ANON
        | neoos_abi::mman::MAP_FIXED) as u64;
    let map = [fixed, PAGE, 3, flags, u64::MAX, 0];
    assert_eq!(sys(&mut k, pid, nr::MMAP, map), fixed as i64);
    let past = [fixed + PAGE, 0, 0, 0, 0, 0];
    assert_eq!(sys(&mut k, pid, nr::BRK, past), shrunk as i64);
    assert_eq!(program_break(&k, pid).end, shrunk);
}

#[test]
fn brk_does_not_grow_over_a_mapping_that_crosses_the_break() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let start = program_break(&k, pid).start;
    let flags = (neoos_abi::mman::MAP_PRIVATE
        | neoos_abi::mman::MAP_ANON
        | neoos_abi::mman::MAP_FIXED) as u64;
    let across = [start - PAGE, 2 * PAGE, 3, flags, u64::MAX, 0];
    assert_eq!(sys(&mut k, pid, nr::MMAP, across), (start - PAGE) as i64);
    poke(&mut k, pid, start, &[9]);
    let grow = [start + 4 * PAGE, 0, 0, 0, 0, 0];
    assert_eq!(sys(&mut k, pid, nr::BRK, grow), start as i64);
    assert_eq!(
        peek(&mut k, pid, start, 1),
        [9],
        "the mapping keeps its data"
    );
}

#[test]
fn writev_gathers_buffers_and_a_bad_one_writes_nothing() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    poke(&mut k, pid, SCRATCH, b"hello, world\n");
    let iov: Vec<u8> = [SCRATCH, 7, SCRATCH + 7, 0, SCRATCH + 7, 6]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    poke(&mut k, pid, SCRATCH + 256, &iov);
    assert_eq!(
        sys(&mut k, pid, nr::WRITEV, [1, SCRATCH + 256, 3, 0, 0, 0]),
        13
    );
    assert_eq!(k.platform.console_out, b"hello, world\n");
    let bad: Vec<u8> = [SCRATCH, 5, 0x10, 5]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    poke(&mut k, pid, SCRATCH + 512, &bad);
    assert_eq!(
        sys(&mut k, pid, nr::WRITEV, [1, SCRATCH + 512, 2, 0, 0, 0]),
        -errno::EFAULT
    );
    assert_eq!(k.platform.console_out.len(), 13, "nothing written");
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::WRITEV,
            [1, SCRATCH + 256, u64::MAX, 0, 0, 0]
        ),
        -errno::EINVAL
    );
    assert_eq!(
        sys(&mut k, pid, nr::WRITEV, [9, SCRATCH + 256, 1, 0, 0, 0]),
        -errno::EBADF
    );
}

#[test]
fn files_open_relative_seek_read_scattered_and_stat_as_linux_lays_them_out() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    poke(&mut k, pid, SCRATCH, b"etc/motd\0");
    let o_rdonly_cloexec = 0o2000000;
    let at_fdcwd = (-100i64) as u64;
    let fd = sys(
        &mut k,
        pid,
        nr::OPENAT,
        [at_fdcwd, SCRATCH, o_rdonly_cloexec, 0, 0, 0],
    );
    assert!(fd >= 3, "{fd}");
    let fd = fd as u64;
    assert_eq!(sys(&mut k, pid, nr::LSEEK, [fd, 2, 0, 0, 0, 0]), 2);
    let iov: Vec<u8> = [SCRATCH + 100, 2, SCRATCH + 200, 10]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    poke(&mut k, pid, SCRATCH + 300, &iov);
    assert_eq!(
        sys(&mut k, pid, nr::READV, [fd, SCRATCH + 300, 2, 0, 0, 0]),
        4
    );
    assert_eq!(peek(&mut k, pid, SCRATCH + 100, 2), b"ll");
    assert_eq!(peek(&mut k, pid, SCRATCH + 200, 2), b"o\n");
    assert_eq!(
        sys(&mut k, pid, nr::LSEEK, [fd, (-1i64) as u64, 2, 0, 0, 0]),
        5
    );
    assert_eq!(
        sys(&mut k, pid, nr::LSEEK, [fd, (-9i64) as u64, 1, 0, 0, 0]),
        -errno::EINVAL
    );
    assert_eq!(
        sys(&mut k, pid, nr::LSEEK, [1, 0, 0, 0, 0, 0]),
        -errno::ESPIPE
    );
    assert_eq!(
        sys(&mut k, pid, nr::FSTAT, [fd, SCRATCH + 400, 0, 0, 0, 0]),
        0
    );
    let stat = peek(&mut k, pid, SCRATCH + 400, st::SIZE);
    let word = |at: usize| u64::from_le_bytes(stat[at..at + 8].try_into().unwrap());
    assert_eq!(word(st::SIZE_FIELD), 6);
    assert_eq!(
        u32::from_le_bytes(stat[st::MODE..st::MODE + 4].try_into().unwrap()),
        st::S_IFREG | 0o644
    );
    let at_empty_path = 0x1000;
    poke(&mut k, pid, SCRATCH + 600, b"\0");
    let fstatat = [1, SCRATCH + 600, SCRATCH + 400, at_empty_path, 0, 0];
    assert_eq!(sys(&mut k, pid, nr::NEWFSTATAT, fstatat), 0);
    let mode = u32::from_le_bytes(
        peek(&mut k, pid, SCRATCH + 400 + st::MODE as u64, 4)
            .try_into()
            .unwrap(),
    );
    assert_eq!(
        mode & 0o170000,
        st::S_IFCHR,
        "the console is a character device"
    );
    poke(&mut k, pid, SCRATCH + 600, b"/tmp\0");
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::STAT,
            [SCRATCH + 600, SCRATCH + 400, 0, 0, 0, 0]
        ),
        0
    );
    let mode = u32::from_le_bytes(
        peek(&mut k, pid, SCRATCH + 400 + st::MODE as u64, 4)
            .try_into()
            .unwrap(),
    );
    assert_eq!(mode & 0o170000, st::S_IFDIR);
    let o_directory = 0o200000;
    assert_eq!(
        sys(&mut k, pid, nr::OPEN, [SCRATCH, o_directory, 0, 0, 0, 0]),
        -errno::ENOTDIR,
        "O_DIRECTORY refuses a file, as on Linux"
    );
    assert_eq!(
        sys(&mut k, pid, nr::OPENAT, [fd, SCRATCH, 0, 0, 0, 0]),
        -errno::ENOTDIR
    );
}

#[test]
fn ioctl_answers_on_the_console_only() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    assert_eq!(
        sys(&mut k, pid, nr::IOCTL, [1, TIOCGWINSZ, SCRATCH, 0, 0, 0]),
        0
    );
    let ws = peek(&mut k, pid, SCRATCH, 4);
    assert_eq!(
        (
            u16::from_le_bytes([ws[0], ws[1]]),
            u16::from_le_bytes([ws[2], ws[3]])
        ),
        (24, 80)
    );
    assert_eq!(
        sys(&mut k, pid, nr::IOCTL, [1, 0x1234, SCRATCH, 0, 0, 0]),
        -errno::ENOTTY
    );
    assert_eq!(
        sys(&mut k, pid, nr::IOCTL, [7, TIOCGWINSZ, SCRATCH, 0, 0, 0]),
        -errno::EBADF
    );
    poke(&mut k, pid, SCRATCH, b"/etc/motd\0");
    let fd = sys(&mut k, pid, nr::OPEN, [SCRATCH, 0, 0, 0, 0, 0]) as u64;
    assert_eq!(
        sys(&mut k, pid, nr::IOCTL, [fd, TIOCGWINSZ, SCRATCH, 0, 0, 0]),
        -errno::ENOTTY
    );
}

#[test]
fn an_unknown_call_is_enosys_and_reported_once() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    for _ in 0..3 {
        assert_eq!(sys(&mut k, pid, 400, [0; 6]), -errno::ENOSYS);
    }
    assert_eq!(sys(&mut k, pid, nr::RSEQ, [0; 6]), -errno::ENOSYS);
    let reports: Vec<_> = k
        .platform
        .reports
        .iter()
        .filter(|r| r.contains("Linux call"))
        .collect();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].contains("Linux call 400"));
}

#[test]
fn small_calls_give_root_time_names_cpus_and_random_bytes() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    for number in [nr::GETUID, nr::GETEUID, nr::GETGID, nr::GETEGID] {
        assert_eq!(sys(&mut k, pid, number, [0; 6]), 0);
    }
    assert_eq!(
        sys(&mut k, pid, nr::SET_TID_ADDRESS, [SCRATCH, 0, 0, 0, 0, 0]),
        pid as i64
    );
    k.platform.ticks = 250;
    assert_eq!(
        sys(&mut k, pid, nr::CLOCK_GETTIME, [1, SCRATCH, 0, 0, 0, 0]),
        0
    );
    assert_eq!(word_at(&mut k, pid, SCRATCH), 2);
    assert_eq!(word_at(&mut k, pid, SCRATCH + 8), 500_000_000);
    assert_eq!(
        sys(&mut k, pid, nr::CLOCK_GETTIME, [99, SCRATCH, 0, 0, 0, 0]),
        -errno::EINVAL
    );
    k.platform.cpus = 3;
    let affinity = |k: &mut K, target: u64, len: u64, mask: u64| {
        sys(k, pid, nr::SCHED_GETAFFINITY, [target, len, mask, 0, 0, 0])
    };
    assert_eq!(
        affinity(&mut k, 0, 128, SCRATCH),
        8,
        "the kernel's mask size"
    );
    assert_eq!(word_at(&mut k, pid, SCRATCH), 0b111, "one bit per CPU");
    assert_eq!(affinity(&mut k, u64::from(pid), 8, SCRATCH), 8);
    assert_eq!(affinity(&mut k, 0, 4, SCRATCH), -errno::EINVAL, "shorter");
    assert_eq!(
        affinity(&mut k, 0, 12, SCRATCH),
        -errno::EINVAL,
        "not words"
    );
    assert_eq!(affinity(&mut k, 9999, 8, SCRATCH), -errno::ESRCH);
    assert_eq!(affinity(&mut k, 0, 8, 0), -errno::EFAULT);
    assert_eq!(sys(&mut k, pid, nr::UNAME, [SCRATCH, 0, 0, 0, 0, 0]), 0);
    assert_eq!(peek(&mut k, pid, SCRATCH + 4 * 65, 7), b"x86_64\0");
    assert_eq!(
        sys(&mut k, pid, nr::GETRANDOM, [SCRATCH, 64, 0, 0, 0, 0]),
        64
    );
    let first = peek(&mut k, pid, SCRATCH, 64);
    assert_eq!(
        sys(&mut k, pid, nr::GETRANDOM, [SCRATCH, 64, 0, 0, 0, 0]),
        64
    );
    assert_ne!(first, peek(&mut k, pid, SCRATCH, 64));
    assert_eq!(
        sys(&mut k, pid, nr::GETRANDOM, [SCRATCH, 8, 0x80, 0, 0, 0]),
        -errno::EINVAL
    );
    assert_eq!(
        sys(&mut k, pid, nr::GETRANDOM, [0x10, 8, 0, 0, 0, 0]),
        -errno::EFAULT
    );
}

#[test]
fn a_fault_signal_runs_the_handler_and_sigreturn_restores_everything() {
    use super::signals::*;
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    // sigaction(SIGSEGV, {handler, SA_SIGINFO, restorer}, NULL, 8).
    let (handler, restorer) = (PROGRAM_ENTRY + 0x10, PROGRAM_ENTRY + 0x20);
    let mut act = Vec::new();
    for v in [handler, SA_SIGINFO | SA_RESTORER, restorer, 0] {
        act.extend_from_slice(&v.to_le_bytes());
    }
    poke(&mut k, pid, SCRATCH, &act);
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::RT_SIGACTION,
            [SIGSEGV as u64, SCRATCH, 0, 8, 0, 0]
        ),
        0
    );
    let before = UserRegs {
        rip: PROGRAM_ENTRY,
        rsp: SCRATCH + 0x8000,
        rax: 0x1234,
        rflags: 0x246,
        ..Default::default()
    };
    let mut regs = before;
    let mut fpu = [7u8; FPU_STATE_SIZE];
    fpu[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
    // MXCSR_MASK, as the CPU's fxsave writes it.
    fpu[28..32].copy_from_slice(&0xffbfu32.to_le_bytes());
    let saved_fpu = fpu;
    let initial = [0u8; FPU_STATE_SIZE];
    let info = SigInfo {
        signo: SIGSEGV,
        code: SEGV_MAPERR,
        addr_or_pid: 0xdead_b000,
        status: 0,
    };
    let outcome = k.deliver_signal(
        pid,
        info,
        TrapInfo::default(),
        true,
        &mut regs,
        &mut fpu,
        &initial,
    );
    assert_eq!(outcome, SignalOutcome::Continue);
    assert_eq!(regs.rip, handler);
    assert_eq!(regs.rdi, u64::from(SIGSEGV));
    assert_eq!(word_at(&mut k, pid, regs.rsi + 16), 0xdead_b000, "si_addr");
    assert_eq!(
        word_at(&mut k, pid, regs.rsp),
        restorer,
        "returns to the restorer"
    );
    assert_eq!(fpu, initial, "the handler starts with a fresh FPU state");
    assert_ne!(k.blocked_of(pid) & bit(SIGSEGV), 0);
    // The handler returns: `ret` pops the restorer, which calls sigreturn.
    regs.rsp += 8;
    let out = k.signal_return(pid, &mut regs, &mut fpu, &initial, &initial);
    assert_eq!(out, SignalOutcome::Continue);
    assert_eq!(regs, before);
    assert_eq!(fpu, saved_fpu);
    assert_eq!(k.blocked_of(pid), 0);
}

#[test]
fn a_handler_in_kernel_space_or_a_blocked_fault_signal_kills() {
    use super::signals::*;
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let mut act = Vec::new();
    for v in [0xffff_8000_0000_1000u64, 0, 0, 0] {
        act.extend_from_slice(&v.to_le_bytes());
    }
    poke(&mut k, pid, SCRATCH, &act);
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::RT_SIGACTION,
            [SIGSEGV as u64, SCRATCH, 0, 8, 0, 0]
        ),
        0
    );
    let mut regs = UserRegs {
        rsp: SCRATCH + 0x8000,
        ..Default::default()
    };
    let mut fpu = [0u8; FPU_STATE_SIZE];
    let info = SigInfo {
        signo: SIGSEGV,
        code: SEGV_MAPERR,
        addr_or_pid: 8,
        status: 0,
    };
    let initial = fpu;
    let outcome = k.deliver_signal(
        pid,
        info,
        TrapInfo::default(),
        true,
        &mut regs,
        &mut fpu,
        &initial,
    );
    assert_eq!(outcome, SignalOutcome::Kill(SIGSEGV));
    // A bad action pointer changes nothing.
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::RT_SIGACTION,
            [SIGUSR1 as u64, 0xffff_8000_0000_0000, 0, 8, 0, 0]
        ),
        -errno::EFAULT
    );
    assert_eq!(
        k.signals(pid).unwrap().action(SIGUSR1),
        SignalAction::default()
    );
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::RT_SIGACTION,
            [SIGKILL as u64, SCRATCH, 0, 8, 0, 0]
        ),
        -errno::EINVAL
    );
}

#[test]
fn only_root_changes_ids_and_locks_memory() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let keep = u32::MAX as u64;
    assert_eq!(
        sys(&mut k, pid, nr::SETRESUID, [keep, 1, keep, 0, 0, 0]),
        0,
        "root becomes euid 1"
    );
    assert_eq!(sys(&mut k, pid, nr::GETEUID, [0; 6]), 1);
    assert_eq!(sys(&mut k, pid, nr::GETUID, [0; 6]), 0);
    assert_eq!(
        sys(&mut k, pid, nr::SETRESUID, [keep, 5, keep, 0, 0, 0]),
        -errno::EPERM
    );
    assert_eq!(
        sys(&mut k, pid, nr::MLOCK, [SCRATCH, 4096, 0, 0, 0, 0]),
        -errno::EPERM
    );
    assert_eq!(
        sys(&mut k, pid, nr::SETRESUID, [keep, 0, keep, 0, 0, 0]),
        0,
        "back to its real id"
    );
    assert_eq!(sys(&mut k, pid, nr::MLOCK, [SCRATCH, 4096, 0, 0, 0, 0]), 0);
    // Locked memory: msync with MS_INVALIDATE is EBUSY, until unlocked.
    let (ms_sync, ms_invalidate) = (4, 2);
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::MSYNC,
            [SCRATCH, 4096, ms_sync | ms_invalidate, 0, 0, 0]
        ),
        -errno::EBUSY
    );
    assert_eq!(
        sys(&mut k, pid, nr::MUNLOCK, [SCRATCH, 4096, 0, 0, 0, 0]),
        0
    );
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::MSYNC,
            [SCRATCH, 4096, ms_sync | ms_invalidate, 0, 0, 0]
        ),
        0
    );
}

#[test]
fn a_pipe_moves_bytes_in_order_and_cannot_be_mapped() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    assert_eq!(sys(&mut k, pid, nr::PIPE2, [SCRATCH, 0, 0, 0, 0, 0]), 0);
    let fds = peek(&mut k, pid, SCRATCH, 8);
    let r = i32::from_le_bytes(fds[..4].try_into().unwrap()) as i64;
    let w = i32::from_le_bytes(fds[4..].try_into().unwrap()) as i64;
    poke(&mut k, pid, SCRATCH + 64, b"hello");
    assert_eq!(
        k.pipe_step(pid, r, UserPtr(SCRATCH + 128), 16, false),
        None,
        "empty: wait"
    );
    assert_eq!(k.pipe_step(pid, w, UserPtr(SCRATCH + 64), 5, true), Some(5));
    assert_eq!(
        k.pipe_step(pid, r, UserPtr(SCRATCH + 128), 16, false),
        Some(5)
    );
    assert_eq!(peek(&mut k, pid, SCRATCH + 128, 5), b"hello");
    assert_eq!(
        sys(&mut k, pid, nr::MMAP, [0, 4096, 1, 1, r as u64, 0]),
        -errno::ENODEV
    );
    // readv waits on the pipe for its first non-empty buffer.
    let mut iov = Vec::new();
    for v in [SCRATCH + 128, 0, SCRATCH + 256, 32] {
        iov.extend_from_slice(&v.to_le_bytes());
    }
    poke(&mut k, pid, SCRATCH + 512, &iov);
    let d = k
        .decode(pid, nr::READV, [r as u64, SCRATCH + 512, 2, 0, 0, 0])
        .unwrap();
    assert_eq!(
        k.call(pid, d.call),
        crate::syscall::Completion::Scheduler(crate::syscall::SchedulerCall::PipeIo {
            fd: r,
            buf: UserPtr(SCRATCH + 256),
            count: 32,
            write: false
        })
    );
    assert_eq!(sys(&mut k, pid, nr::CLOSE, [w as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(
        k.pipe_step(pid, r, UserPtr(SCRATCH + 128), 16, false),
        Some(0),
        "end of file"
    );
}
