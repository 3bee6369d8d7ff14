//! Host tests of the Linux calls on names, directories and special files
//! (`namespace.rs`, `procfs.rs`): each call's result and its hostile
//! cases (bad pointers, unterminated and too-long paths, descriptors out of
//! range), and that a call that fails changes nothing.

use alloc::string::String;
use alloc::vec::Vec;

use neoos_abi::layout::STACK_TOP;
use neoos_abi::linux::{nr, stat as st};
use neoos_abi::{errno, PAGE_SIZE};

use crate::process::Pid;
use crate::syscall::UserPtr;
use crate::test_platform::{kernel, TestFrame, TestPlatform};
use crate::Kernel;
use crate::Platform;

type K = Kernel<TestPlatform>;

const SCRATCH: u64 = STACK_TOP - 64 * 1024;
const P1: u64 = SCRATCH + 0x1000;
const P2: u64 = SCRATCH + 0x1800;
const BUF: u64 = SCRATCH + 0x4000;
const AT_FDCWD: u64 = (-100i64) as u64;
const O_CREAT_RDWR: u64 = 0o102;
const O_DIRECTORY: u64 = 0o200000;

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

/// Puts `s` and its NUL at `at`; returns `at`.
fn cstr(k: &mut K, pid: Pid, at: u64, s: &str) -> u64 {
    let mut b = s.as_bytes().to_vec();
    b.push(0);
    poke(k, pid, at, &b);
    at
}

fn sys(k: &mut K, pid: Pid, number: usize, args: [u64; 6]) -> i64 {
    match k.system_call(pid, number, args) {
        Ok(rax) => rax,
        Err((c, _)) => panic!("call {number} needs the scheduler: {c:?}"),
    }
}

fn sys1(k: &mut K, pid: Pid, number: usize, path: &str) -> i64 {
    let p = cstr(k, pid, P1, path);
    sys(k, pid, number, [p, 0, 0, 0, 0, 0])
}

fn sys2(k: &mut K, pid: Pid, number: usize, a: &str, b: &str) -> i64 {
    let a = cstr(k, pid, P1, a);
    let b = cstr(k, pid, P2, b);
    sys(k, pid, number, [a, b, 0, 0, 0, 0])
}

fn mkdir(k: &mut K, pid: Pid, path: &str) -> i64 {
    let p = cstr(k, pid, P1, path);
    sys(k, pid, nr::MKDIR, [p, 0o755, 0, 0, 0, 0])
}

fn open(k: &mut K, pid: Pid, path: &str, flags: u64) -> i64 {
    let p = cstr(k, pid, P1, path);
    sys(k, pid, nr::OPEN, [p, flags, 0o644, 0, 0, 0])
}

fn write_fd(k: &mut K, pid: Pid, fd: i64, bytes: &[u8]) -> i64 {
    poke(k, pid, BUF, bytes);
    sys(
        k,
        pid,
        nr::WRITE,
        [fd as u64, BUF, bytes.len() as u64, 0, 0, 0],
    )
}

fn read_fd(k: &mut K, pid: Pid, fd: i64, len: usize) -> Vec<u8> {
    let n = sys(k, pid, nr::READ, [fd as u64, BUF, len as u64, 0, 0, 0]);
    assert!(n >= 0, "read: {n}");
    peek(k, pid, BUF, n as usize)
}

/// `stat` of `path`: (result, mode, size, mtime).
fn stat(k: &mut K, pid: Pid, path: &str) -> (i64, u32, u64, u64) {
    let p = cstr(k, pid, P1, path);
    let r = sys(k, pid, nr::STAT, [p, BUF, 0, 0, 0, 0]);
    let s = peek(k, pid, BUF, st::SIZE);
    let word = |at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap());
    let mode = u32::from_le_bytes(s[st::MODE..st::MODE + 4].try_into().unwrap());
    (r, mode, word(st::SIZE_FIELD), word(st::ATIME + 16))
}

fn exists(k: &mut K, pid: Pid, path: &str) -> bool {
    stat(k, pid, path).0 == 0
}

fn getcwd(k: &mut K, pid: Pid) -> String {
    let n = sys(k, pid, nr::GETCWD, [BUF, 4096, 0, 0, 0, 0]);
    assert!(n > 0, "getcwd: {n}");
    let b = peek(k, pid, BUF, n as usize);
    assert_eq!(b.last(), Some(&0), "with its NUL");
    String::from_utf8(b[..b.len() - 1].to_vec()).unwrap()
}

/// The names `getdents64` gives for `fd` with a buffer of `count`.
fn dents(k: &mut K, pid: Pid, fd: i64, count: u64) -> Result<Vec<(String, u8)>, i64> {
    let n = sys(k, pid, nr::GETDENTS64, [fd as u64, BUF, count, 0, 0, 0]);
    if n < 0 {
        return Err(n);
    }
    let b = peek(k, pid, BUF, n as usize);
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let reclen = u16::from_le_bytes([b[at + 16], b[at + 17]]) as usize;
        assert_eq!(reclen % 8, 0, "records are 8-byte aligned");
        let kind = b[at + 18];
        let name = &b[at + 19..at + reclen];
        let end = name.iter().position(|&c| c == 0).unwrap();
        out.push((String::from_utf8(name[..end].to_vec()).unwrap(), kind));
        at += reclen;
    }
    Ok(out)
}

#[test]
fn chdir_moves_relative_paths_and_fork_inherits_the_directory() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    assert_eq!(getcwd(&mut k, pid), "/");
    assert_eq!(mkdir(&mut k, pid, "/tmp/d"), 0);
    assert_eq!(sys1(&mut k, pid, nr::CHDIR, "tmp/./d"), 0);
    assert_eq!(getcwd(&mut k, pid), "/tmp/d");
    let fd = open(&mut k, pid, "f", O_CREAT_RDWR);
    assert!(fd >= 3);
    assert!(exists(&mut k, pid, "/tmp/d/f"), "made in the directory");
    assert!(exists(&mut k, pid, "../d/f"), "`..` resolved");
    // newfstatat and unlinkat with AT_FDCWD resolve from it too.
    let p = cstr(&mut k, pid, P1, "f");
    assert_eq!(
        sys(&mut k, pid, nr::NEWFSTATAT, [AT_FDCWD, p, BUF, 0, 0, 0]),
        0
    );
    let child = k.fork(pid, &TestFrame { entry: 0, stack: 0 }).unwrap();
    assert_eq!(getcwd(&mut k, child), "/tmp/d", "inherited by fork");
    assert_eq!(sys1(&mut k, pid, nr::CHDIR, ".."), 0);
    assert_eq!(getcwd(&mut k, pid), "/tmp");
    assert_eq!(getcwd(&mut k, child), "/tmp/d", "each process its own");
    let p = cstr(&mut k, pid, P1, "d/f");
    assert_eq!(sys(&mut k, pid, nr::UNLINKAT, [AT_FDCWD, p, 0, 0, 0, 0]), 0);
    assert!(!exists(&mut k, pid, "/tmp/d/f"));
    // Refusals change nothing.
    assert_eq!(sys1(&mut k, pid, nr::CHDIR, "/etc/motd"), -errno::ENOTDIR);
    assert_eq!(sys1(&mut k, pid, nr::CHDIR, "none"), -errno::ENOENT);
    assert_eq!(sys1(&mut k, pid, nr::CHDIR, ""), -errno::ENOENT);
    assert_eq!(
        sys(&mut k, pid, nr::CHDIR, [0x10, 0, 0, 0, 0, 0]),
        -errno::EFAULT
    );
    assert_eq!(getcwd(&mut k, pid), "/tmp");
    assert_eq!(
        sys(&mut k, pid, nr::GETCWD, [BUF, 4, 0, 0, 0, 0]),
        -errno::ERANGE,
        "\"/tmp\" and its NUL need 5 bytes"
    );
    assert_eq!(
        sys(&mut k, pid, nr::GETCWD, [0x10, 100, 0, 0, 0, 0]),
        -errno::EFAULT
    );
    assert_eq!(sys1(&mut k, pid, nr::CHDIR, "/"), 0);
    assert_eq!(getcwd(&mut k, pid), "/");
}

#[test]
fn paths_that_are_too_long_unterminated_or_unreadable_are_refused() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let long_name = "n".repeat(256);
    assert_eq!(
        mkdir(&mut k, pid, &alloc::format!("/tmp/{long_name}")),
        -errno::ENAMETOOLONG
    );
    let long_path = String::from("/tmp") + &"/a".repeat(2100);
    let p = cstr(&mut k, pid, SCRATCH + 0x6000, &long_path);
    assert_eq!(
        sys(&mut k, pid, nr::MKDIR, [p, 0o755, 0, 0, 0, 0]),
        -errno::ENAMETOOLONG
    );
    // A path that runs to the end of a mapping with no NUL (the page
    // after it unmapped).
    let page = PAGE_SIZE as u64;
    let map = sys(&mut k, pid, nr::MMAP, [0, 2 * page, 3, 0x22, u64::MAX, 0]) as u64;
    assert_eq!(
        sys(&mut k, pid, nr::MUNMAP, [map + page, page, 0, 0, 0, 0]),
        0
    );
    poke(&mut k, pid, map + page - 16, &[b'x'; 16]);
    assert_eq!(
        sys(&mut k, pid, nr::MKDIR, [map + page - 16, 0o755, 0, 0, 0, 0]),
        -errno::EFAULT
    );
    assert_eq!(
        sys(&mut k, pid, nr::RMDIR, [u64::MAX, 0, 0, 0, 0, 0]),
        -errno::EFAULT
    );
    let from = cstr(&mut k, pid, P1, "/tmp");
    assert_eq!(
        sys(&mut k, pid, nr::RENAME, [from, 0x10, 0, 0, 0, 0]),
        -errno::EFAULT
    );
    assert_eq!(k.fs.list("/tmp").unwrap(), Vec::<String>::new());
    // A descriptor out of range as a directory.
    let p = cstr(&mut k, pid, P1, "x");
    assert_eq!(
        sys(&mut k, pid, nr::MKDIRAT, [999, p, 0o755, 0, 0, 0]),
        -errno::EBADF
    );
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::MKDIRAT,
            [(-5i64) as u64, p, 0o755, 0, 0, 0]
        ),
        -errno::EBADF
    );
    assert_eq!(
        sys(&mut k, pid, nr::MKDIRAT, [1, p, 0o755, 0, 0, 0]),
        -errno::ENOTDIR,
        "the console is no directory"
    );
}

#[test]
fn mkdir_and_rmdir_report_linux_errors_and_change_nothing_when_refused() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    assert_eq!(mkdir(&mut k, pid, "/tmp/a"), 0);
    let (r, mode, _, _) = stat(&mut k, pid, "/tmp/a");
    assert_eq!((r, mode), (0, st::S_IFDIR | 0o755));
    assert_eq!(mkdir(&mut k, pid, "/tmp/a"), -errno::EEXIST);
    assert_eq!(mkdir(&mut k, pid, "/tmp/none/b"), -errno::ENOENT);
    assert_eq!(mkdir(&mut k, pid, "/etc/motd/b"), -errno::ENOTDIR);
    assert_eq!(mkdir(&mut k, pid, "/bin/new"), -errno::EPERM);
    assert_eq!(mkdir(&mut k, pid, "/etc"), -errno::EEXIST);
    assert_eq!(mkdir(&mut k, pid, "/tmp/a/b"), 0);
    assert_eq!(sys1(&mut k, pid, nr::RMDIR, "/tmp/a"), -errno::ENOTEMPTY);
    assert!(exists(&mut k, pid, "/tmp/a/b"), "nothing removed");
    assert_eq!(sys1(&mut k, pid, nr::RMDIR, "/tmp/a/b/c"), -errno::ENOENT);
    assert_eq!(sys1(&mut k, pid, nr::RMDIR, "/etc/motd"), -errno::EPERM);
    assert_eq!(sys1(&mut k, pid, nr::RMDIR, "/tmp"), -errno::EBUSY);
    assert_eq!(sys1(&mut k, pid, nr::RMDIR, "/"), -errno::EBUSY);
    assert_eq!(sys1(&mut k, pid, nr::RMDIR, "/bin"), -errno::EPERM);
    assert_eq!(sys1(&mut k, pid, nr::RMDIR, "/tmp/none"), -errno::ENOENT);
    assert_eq!(sys1(&mut k, pid, nr::UNLINK, "/tmp/a"), -errno::EISDIR);
    assert_eq!(sys1(&mut k, pid, nr::RMDIR, "/tmp/a/b"), 0);
    assert_eq!(sys1(&mut k, pid, nr::RMDIR, "/tmp/a"), 0);
    assert!(!exists(&mut k, pid, "/tmp/a"));
    // unlinkat with AT_REMOVEDIR is rmdir; other flags are refused.
    assert_eq!(mkdir(&mut k, pid, "/tmp/c"), 0);
    let p = cstr(&mut k, pid, P1, "/tmp/c");
    assert_eq!(
        sys(&mut k, pid, nr::UNLINKAT, [AT_FDCWD, p, 0x1, 0, 0, 0]),
        -errno::EINVAL
    );
    assert_eq!(
        sys(&mut k, pid, nr::UNLINKAT, [AT_FDCWD, p, 0x200, 0, 0, 0]),
        0
    );
    assert!(!exists(&mut k, pid, "/tmp/c"));
    // umask applies.
    assert_eq!(sys(&mut k, pid, nr::UMASK, [0o077, 0, 0, 0, 0, 0]), 0o022);
    assert_eq!(mkdir(&mut k, pid, "/tmp/private"), 0);
    assert_eq!(stat(&mut k, pid, "/tmp/private").1, st::S_IFDIR | 0o700);
}

#[test]
fn rename_moves_files_and_trees_and_refuses_what_posix_refuses() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let fd = open(&mut k, pid, "/tmp/f", O_CREAT_RDWR);
    assert_eq!(write_fd(&mut k, pid, fd, b"abc"), 3);
    assert_eq!(sys2(&mut k, pid, nr::RENAME, "/tmp/f", "/tmp/g"), 0);
    assert!(!exists(&mut k, pid, "/tmp/f"));
    assert_eq!(stat(&mut k, pid, "/tmp/g").2, 3);
    // Over an existing file: replaced.
    let other = open(&mut k, pid, "/tmp/h", O_CREAT_RDWR);
    assert_eq!(write_fd(&mut k, pid, other, b"hhhhh"), 5);
    assert_eq!(sys2(&mut k, pid, nr::RENAME, "/tmp/g", "/tmp/h"), 0);
    assert_eq!(stat(&mut k, pid, "/tmp/h").2, 3);
    assert_eq!(sys2(&mut k, pid, nr::RENAME, "/tmp/h", "/tmp/h"), 0);
    // A tree moves whole.
    for d in ["/tmp/a", "/tmp/a/b", "/tmp/e"] {
        assert_eq!(mkdir(&mut k, pid, d), 0);
    }
    assert!(open(&mut k, pid, "/tmp/a/b/leaf", O_CREAT_RDWR) >= 3);
    assert_eq!(sys2(&mut k, pid, nr::RENAME, "/tmp/a", "/tmp/c"), 0);
    assert!(exists(&mut k, pid, "/tmp/c/b/leaf"));
    assert!(!exists(&mut k, pid, "/tmp/a/b"));
    // Refusals, each leaving the tree as it was.
    let refusals: [(&str, &str, i64); 9] = [
        ("/tmp/c", "/tmp/c/b/x", errno::EINVAL),
        ("/tmp/c", "/tmp/c/b", errno::EINVAL),
        ("/tmp/e", "/tmp/c", errno::ENOTEMPTY),
        ("/tmp/h", "/tmp/e", errno::EISDIR),
        ("/tmp/e", "/tmp/h", errno::ENOTDIR),
        ("/tmp/none", "/tmp/x", errno::ENOENT),
        ("/tmp/h", "/tmp/none/x", errno::ENOENT),
        ("/tmp", "/tmp2", errno::EBUSY),
        ("/etc/motd", "/tmp/motd", errno::EPERM),
    ];
    for (from, to, e) in refusals {
        assert_eq!(
            sys2(&mut k, pid, nr::RENAME, from, to),
            -e,
            "{from} -> {to}"
        );
    }
    assert!(exists(&mut k, pid, "/tmp/c/b/leaf"));
    assert!(exists(&mut k, pid, "/tmp/e"));
    assert!(exists(&mut k, pid, "/tmp/h"));
    // A directory over an empty directory.
    assert_eq!(sys2(&mut k, pid, nr::RENAME, "/tmp/c", "/tmp/e"), 0);
    assert!(exists(&mut k, pid, "/tmp/e/b/leaf"));
    // renameat2 takes flags 0 only.
    let (a, b) = (
        cstr(&mut k, pid, P1, "/tmp/h"),
        cstr(&mut k, pid, P2, "/tmp/i"),
    );
    let noreplace = 1;
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::RENAMEAT2,
            [AT_FDCWD, a, AT_FDCWD, b, noreplace, 0]
        ),
        -errno::EINVAL
    );
    assert_eq!(
        sys(&mut k, pid, nr::RENAMEAT2, [AT_FDCWD, a, AT_FDCWD, b, 0, 0]),
        0
    );
    assert!(exists(&mut k, pid, "/tmp/i"));
}

#[test]
fn an_unlinked_file_lives_while_open_or_mapped_and_goes_with_the_last_reference() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let free_before = k.fs.disk.ram.available_blocks();
    let fd = open(&mut k, pid, "/tmp/f", O_CREAT_RDWR);
    let data = [7u8; 3 * PAGE_SIZE];
    poke(&mut k, pid, BUF, &data);
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::WRITE,
            [fd as u64, BUF, data.len() as u64, 0, 0, 0]
        ),
        data.len() as i64
    );
    assert_eq!(sys1(&mut k, pid, nr::UNLINK, "/tmp/f"), 0);
    assert!(!exists(&mut k, pid, "/tmp/f"));
    assert_eq!(sys1(&mut k, pid, nr::UNLINK, "/tmp/f"), -errno::ENOENT);
    // The open descriptor still reads the data.
    assert_eq!(sys(&mut k, pid, nr::LSEEK, [fd as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(read_fd(&mut k, pid, fd, 10), [7u8; 10]);
    // Mapped, then closed: the mapping keeps it.
    let map = sys(
        &mut k,
        pid,
        nr::MMAP,
        [0, 3 * PAGE_SIZE as u64, 3, 1, fd as u64, 0],
    );
    assert!(map > 0, "{map}");
    assert_eq!(sys(&mut k, pid, nr::CLOSE, [fd as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(k.fs.orphan_count(), 1, "still mapped");
    assert_eq!(
        peek(&mut k, pid, map as u64 + 2 * PAGE_SIZE as u64, 4),
        [7; 4]
    );
    assert!(k.fs.disk.ram.available_blocks() < free_before);
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::MUNMAP,
            [map as u64, 3 * PAGE_SIZE as u64, 0, 0, 0, 0]
        ),
        0
    );
    assert_eq!(k.fs.orphan_count(), 0, "freed with the last reference");
    assert_eq!(k.fs.disk.ram.available_blocks(), free_before);
    // A file nobody holds goes at once; a new one of the name is new.
    let fd = open(&mut k, pid, "/tmp/g", O_CREAT_RDWR);
    assert_eq!(write_fd(&mut k, pid, fd, b"x"), 1);
    assert_eq!(sys(&mut k, pid, nr::CLOSE, [fd as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(sys1(&mut k, pid, nr::UNLINK, "/tmp/g"), 0);
    assert_eq!(k.fs.orphan_count(), 0);
    assert_eq!(k.fs.disk.ram.available_blocks(), free_before);
    // A file replaced by rename lives on while open, too.
    let a = open(&mut k, pid, "/tmp/a", O_CREAT_RDWR);
    assert_eq!(write_fd(&mut k, pid, a, b"old"), 3);
    let b = open(&mut k, pid, "/tmp/b", O_CREAT_RDWR);
    assert_eq!(write_fd(&mut k, pid, b, b"new!"), 4);
    assert_eq!(sys2(&mut k, pid, nr::RENAME, "/tmp/b", "/tmp/a"), 0);
    assert_eq!(sys(&mut k, pid, nr::LSEEK, [a as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(read_fd(&mut k, pid, a, 10), b"old");
    assert_eq!(stat(&mut k, pid, "/tmp/a").2, 4);
    // The process's end lets the last reference go.
    k.end(pid, 0);
    assert_eq!(k.fs.orphan_count(), 0);
}

/// Opens `path` anew with 3 pages of 7s, unlinks it and maps it
/// (shared, read-write); returns the descriptor and the mapping.
fn unlinked_and_mapped(k: &mut K, pid: Pid, path: &str) -> (i64, u64) {
    let fd = open(k, pid, path, O_CREAT_RDWR);
    assert_eq!(
        write_fd(k, pid, fd, &[7u8; 3 * PAGE_SIZE]),
        3 * PAGE_SIZE as i64
    );
    assert_eq!(sys1(k, pid, nr::UNLINK, path), 0);
    let len = 3 * PAGE_SIZE as u64;
    let map = sys(k, pid, nr::MMAP, [0, len, 3, 1, fd as u64, 0]);
    assert!(map > 0, "{map}");
    (fd, map as u64)
}

#[test]
fn calls_that_release_no_file_never_scan_the_orphans_and_close_munmap_exit_and_exec_free_them() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let free_before = k.fs.disk.ram.available_blocks();
    let (fd, map) = unlinked_and_mapped(&mut k, pid, "/tmp/f");
    let other = open(&mut k, pid, "/tmp/other", O_CREAT_RDWR);
    assert_eq!(k.fs.orphan_count(), 1);
    let scans = k.fs.orphan_scans();
    // Calls that let go of no file: none looks at the orphans.
    for _ in 0..100 {
        assert_eq!(sys(&mut k, pid, nr::GETPID, [0; 6]), i64::from(pid));
        assert_eq!(write_fd(&mut k, pid, other, b"x"), 1);
        let anon = sys(&mut k, pid, nr::MMAP, [0, 4096, 3, 0x22, u64::MAX, 0]);
        assert!(anon > 0, "{anon}");
        assert_eq!(
            sys(&mut k, pid, nr::MUNMAP, [anon as u64, 4096, 0, 0, 0, 0]),
            0
        );
    }
    assert_eq!(sys(&mut k, pid, nr::LSEEK, [fd as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(read_fd(&mut k, pid, fd, 4), [7; 4]);
    assert_eq!(
        k.fs.orphan_scans(),
        scans,
        "no scan for calls that release no file"
    );
    // Closing the descriptor leaves the mapping: the file stays.
    assert_eq!(sys(&mut k, pid, nr::CLOSE, [fd as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(k.fs.orphan_count(), 1);
    assert_eq!(k.fs.orphan_scans(), scans, "its object did not go");
    // The munmap of the last mapping frees it.
    let len = 3 * PAGE_SIZE as u64;
    assert_eq!(sys(&mut k, pid, nr::MUNMAP, [map, len, 0, 0, 0, 0]), 0);
    assert_eq!(k.fs.orphan_count(), 0, "freed by the munmap");
    assert_eq!(k.fs.orphan_scans(), scans + 1);
    // The close of the last descriptor frees one that is not mapped.
    let (fd, map) = unlinked_and_mapped(&mut k, pid, "/tmp/g");
    assert_eq!(sys(&mut k, pid, nr::MUNMAP, [map, len, 0, 0, 0, 0]), 0);
    assert_eq!(k.fs.orphan_count(), 1, "still open");
    assert_eq!(sys(&mut k, pid, nr::CLOSE, [fd as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(k.fs.orphan_count(), 0, "freed by the close");
    // An exec closes a close-on-exec descriptor and drops the old
    // program's mappings: both holders of an orphan go.
    let (fd, _) = unlinked_and_mapped(&mut k, pid, "/tmp/h");
    assert_eq!(sys(&mut k, pid, nr::CLOSE, [fd as u64, 0, 0, 0, 0, 0]), 0);
    let cloexec = open(&mut k, pid, "/tmp/i", O_CREAT_RDWR | 0o2000000);
    assert_eq!(sys1(&mut k, pid, nr::UNLINK, "/tmp/i"), 0);
    assert!(cloexec >= 3);
    assert_eq!(k.fs.orphan_count(), 2);
    let path = cstr(&mut k, pid, P1, "/bin/linux");
    poke(&mut k, pid, P2, &[0; 8]);
    let d = k.decode(pid, nr::EXECVE, [path, P2, P2, 0, 0, 0]).unwrap();
    let crate::syscall::Completion::Scheduler(crate::syscall::SchedulerCall::Exec {
        path,
        argv,
        envp,
    }) = k.call(pid, d.call)
    else {
        panic!("execve goes to the scheduler side");
    };
    k.execve(pid, path, argv, envp).unwrap();
    assert_eq!(k.fs.orphan_count(), 1, "the close-on-exec one went");
    while !k.exec_retire_step(pid) {}
    assert_eq!(k.fs.orphan_count(), 0, "the old program's mapping went");
    // The process's end frees what it held.
    unlinked_and_mapped(&mut k, pid, "/tmp/j");
    assert_eq!(sys1(&mut k, pid, nr::UNLINK, "/tmp/other"), 0);
    k.end(pid, 0);
    assert_eq!(k.fs.orphan_count(), 0, "freed at the end");
    assert_eq!(k.fs.disk.ram.available_blocks(), free_before);
}

#[test]
fn getdents_lists_dot_dotdot_and_entries_in_order_in_pieces() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    assert_eq!(mkdir(&mut k, pid, "/tmp/d"), 0);
    assert_eq!(mkdir(&mut k, pid, "/tmp/d/sub"), 0);
    for f in ["/tmp/d/b", "/tmp/d/a", "/tmp/d/c"] {
        assert!(open(&mut k, pid, f, O_CREAT_RDWR) >= 3);
    }
    let fd = open(&mut k, pid, "/tmp/d", O_DIRECTORY);
    assert!(fd >= 3, "{fd}");
    let all = dents(&mut k, pid, fd, 4096).unwrap();
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [".", "..", "a", "b", "c", "sub"]);
    assert_eq!(all[5].1, neoos_abi::linux::DT_DIR);
    assert_eq!(all[2].1, neoos_abi::linux::DT_REG);
    assert_eq!(dents(&mut k, pid, fd, 4096), Ok(Vec::new()), "at the end");
    // Back to the start, a record at a time (24 bytes each here).
    assert_eq!(sys(&mut k, pid, nr::LSEEK, [fd as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(dents(&mut k, pid, fd, 10), Err(-errno::EINVAL), "too small");
    let mut one_by_one = Vec::new();
    loop {
        let got = dents(&mut k, pid, fd, 24).unwrap();
        if got.is_empty() {
            break;
        }
        assert_eq!(got.len(), 1);
        one_by_one.extend(got.into_iter().map(|(n, _)| n));
    }
    assert_eq!(one_by_one, names);
    // Hostile: bad buffer, a file, out-of-range descriptors.
    assert_eq!(sys(&mut k, pid, nr::LSEEK, [fd as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::GETDENTS64,
            [fd as u64, 0x10, 4096, 0, 0, 0]
        ),
        -errno::EFAULT
    );
    assert_eq!(
        dents(&mut k, pid, fd, 4096).unwrap().len(),
        6,
        "nothing consumed"
    );
    let file = open(&mut k, pid, "/tmp/d/a", 0);
    assert_eq!(dents(&mut k, pid, file, 4096), Err(-errno::ENOTDIR));
    assert_eq!(dents(&mut k, pid, 64, 4096), Err(-errno::EBADF));
    assert_eq!(dents(&mut k, pid, -1, 4096), Err(-errno::EBADF));
    // A directory descriptor: read refuses, openat and fchdir use it.
    assert!(sys(&mut k, pid, nr::READ, [fd as u64, BUF, 10, 0, 0, 0]) < 0);
    let p = cstr(&mut k, pid, P1, "sub/../a");
    let a = sys(&mut k, pid, nr::OPENAT, [fd as u64, p, 0, 0, 0, 0]);
    assert!(a >= 3);
    assert_eq!(sys(&mut k, pid, nr::FCHDIR, [fd as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(getcwd(&mut k, pid), "/tmp/d");
    assert_eq!(
        sys(&mut k, pid, nr::FCHDIR, [file as u64, 0, 0, 0, 0, 0]),
        -errno::ENOTDIR
    );
    assert_eq!(
        open(&mut k, pid, "/tmp/d", 2),
        -errno::EISDIR,
        "not for writing"
    );
    // dup and fork share the open directory; the last close ends it.
    let dup = sys(&mut k, pid, nr::DUP, [fd as u64, 0, 0, 0, 0, 0]);
    let child = k.fork(pid, &TestFrame { entry: 0, stack: 0 }).unwrap();
    assert_eq!(k.fs.open_dirs.len(), 1);
    assert_eq!(sys(&mut k, pid, nr::CLOSE, [fd as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(sys(&mut k, pid, nr::CLOSE, [dup as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(k.fs.open_dirs.len(), 1, "the child's copy");
    k.end(child, 0);
    assert!(k.fs.open_dirs.is_empty());
}

#[test]
fn pread_and_pwrite_keep_the_position_and_refuse_pipes() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let fd = open(&mut k, pid, "/tmp/f", O_CREAT_RDWR) as u64;
    assert_eq!(write_fd(&mut k, pid, fd as i64, b"0123456789"), 10);
    poke(&mut k, pid, BUF, b"AB");
    assert_eq!(sys(&mut k, pid, nr::PWRITE64, [fd, BUF, 2, 4, 0, 0]), 2);
    assert_eq!(
        sys(&mut k, pid, nr::PREAD64, [fd, BUF + 100, 6, 2, 0, 0]),
        6
    );
    assert_eq!(peek(&mut k, pid, BUF + 100, 6), b"23AB67");
    assert_eq!(
        sys(&mut k, pid, nr::LSEEK, [fd, 0, 1, 0, 0, 0]),
        10,
        "position kept"
    );
    assert_eq!(
        sys(&mut k, pid, nr::PREAD64, [fd, BUF, 4, (-1i64) as u64, 0, 0]),
        -errno::EINVAL
    );
    assert_eq!(
        sys(&mut k, pid, nr::PREAD64, [fd, 0x10, 4, 0, 0, 0]),
        -errno::EFAULT
    );
    assert_eq!(
        sys(&mut k, pid, nr::PREAD64, [99, BUF, 4, 0, 0, 0]),
        -errno::EBADF
    );
    assert_eq!(
        sys(&mut k, pid, nr::PREAD64, [0, BUF, 4, 0, 0, 0]),
        -errno::ESPIPE
    );
    assert_eq!(sys(&mut k, pid, nr::LSEEK, [fd, 0, 1, 0, 0, 0]), 10);
    assert_eq!(
        sys(&mut k, pid, nr::PREAD64, [fd, BUF, 4, 100, 0, 0]),
        0,
        "past the end"
    );
}

#[test]
fn preadv_reads_at_the_offset_keeps_the_position_and_refuses_pipes() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let fd = open(&mut k, pid, "/tmp/f", O_CREAT_RDWR) as u64;
    assert_eq!(write_fd(&mut k, pid, fd as i64, b"0123456789"), 10);
    let iov = BUF + 200;
    let mut vecs = Vec::new();
    for (base, len) in [(BUF, 3u64), (BUF + 3, 100)] {
        vecs.extend_from_slice(&base.to_le_bytes());
        vecs.extend_from_slice(&len.to_le_bytes());
    }
    poke(&mut k, pid, iov, &vecs);
    assert_eq!(sys(&mut k, pid, nr::PREADV, [fd, iov, 2, 4, 0, 0]), 6);
    assert_eq!(peek(&mut k, pid, BUF, 6), b"456789");
    assert_eq!(
        sys(&mut k, pid, nr::LSEEK, [fd, 0, 1, 0, 0, 0]),
        10,
        "position kept"
    );
    assert_eq!(
        sys(&mut k, pid, nr::PREADV, [fd, iov, 2, (-1i64) as u64, 0, 0]),
        -errno::EINVAL
    );
    assert_eq!(
        sys(&mut k, pid, nr::PREADV, [0, iov, 2, 0, 0, 0]),
        -errno::ESPIPE
    );
    assert_eq!(
        sys(&mut k, pid, nr::PREADV, [fd, 0x10, 2, 0, 0, 0]),
        -errno::EFAULT
    );
    assert_eq!(sys(&mut k, pid, nr::LSEEK, [fd, 0, 1, 0, 0, 0]), 10);
}

#[test]
fn dup3_checks_its_flags_and_sets_close_on_exec() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let cloexec = 0o2000000;
    assert_eq!(sys(&mut k, pid, nr::DUP3, [1, 7, cloexec, 0, 0, 0]), 7);
    assert_eq!(
        sys(&mut k, pid, nr::FCNTL, [7, 1, 0, 0, 0, 0]),
        1,
        "FD_CLOEXEC"
    );
    assert_eq!(
        sys(&mut k, pid, nr::DUP3, [1, 1, 0, 0, 0, 0]),
        -errno::EINVAL
    );
    assert_eq!(
        sys(&mut k, pid, nr::DUP3, [1, 8, 0o4000, 0, 0, 0]),
        -errno::EINVAL
    );
    assert_eq!(
        sys(&mut k, pid, nr::DUP3, [1, 64, 0, 0, 0, 0]),
        -errno::EBADF
    );
    assert_eq!(
        sys(&mut k, pid, nr::DUP3, [40, 8, 0, 0, 0, 0]),
        -errno::EBADF
    );
    assert_eq!(
        sys(&mut k, pid, nr::FCNTL, [8, 1, 0, 0, 0, 0]),
        -errno::EBADF,
        "nothing made"
    );
    assert_eq!(
        sys(&mut k, pid, nr::DUP2, [1, 1, 0, 0, 0, 0]),
        1,
        "dup2 allows it"
    );
}

#[test]
fn access_chmod_and_truncate_follow_the_mode_bits() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let fd = open(&mut k, pid, "/tmp/f", O_CREAT_RDWR);
    assert_eq!(write_fd(&mut k, pid, fd, b"0123456789"), 10);
    let access = |k: &mut K, path: &str, mode: u64| {
        let p = cstr(k, pid, P1, path);
        sys(k, pid, nr::ACCESS, [p, mode, 0, 0, 0, 0])
    };
    assert_eq!(access(&mut k, "/tmp/f", 0), 0);
    assert_eq!(access(&mut k, "/tmp/none", 0), -errno::ENOENT);
    assert_eq!(access(&mut k, "/tmp/f", 8), -errno::EINVAL);
    assert_eq!(
        access(&mut k, "/etc/motd", 2),
        -errno::EACCES,
        "read-only folder"
    );
    assert_eq!(access(&mut k, "/tmp/f", 1), -errno::EACCES, "no x bit");
    assert_eq!(access(&mut k, "/tmp", 1), 0);
    let chmod = |k: &mut K, path: &str, mode: u64| {
        let p = cstr(k, pid, P1, path);
        sys(k, pid, nr::CHMOD, [p, mode, 0, 0, 0, 0])
    };
    assert_eq!(chmod(&mut k, "/tmp/f", 0o4751), 0);
    assert_eq!(stat(&mut k, pid, "/tmp/f").1, st::S_IFREG | 0o4751);
    assert_eq!(access(&mut k, "/tmp/f", 1), 0);
    assert_eq!(
        sys(&mut k, pid, nr::FCHMOD, [fd as u64, 0o600, 0, 0, 0, 0]),
        0
    );
    assert_eq!(stat(&mut k, pid, "/tmp/f").1, st::S_IFREG | 0o600);
    assert_eq!(chmod(&mut k, "/tmp", 0o1777), 0, "directories too");
    assert_eq!(stat(&mut k, pid, "/tmp").1, st::S_IFDIR | 0o1777);
    assert_eq!(chmod(&mut k, "/etc/motd", 0o777), -errno::EPERM);
    assert_eq!(chmod(&mut k, "/tmp/none", 0o777), -errno::ENOENT);
    assert_eq!(
        sys(&mut k, pid, nr::FCHMOD, [50, 0o600, 0, 0, 0, 0]),
        -errno::EBADF
    );
    // Another user: no permission bits, no access; not the owner, no chmod.
    let keep = u32::MAX as u64;
    assert_eq!(sys(&mut k, pid, nr::SETRESUID, [5, 5, keep, 0, 0, 0]), 0);
    assert_eq!(access(&mut k, "/tmp/f", 4), -errno::EACCES);
    assert_eq!(chmod(&mut k, "/tmp/f", 0o777), -errno::EPERM);
    assert_eq!(
        stat(&mut k, pid, "/tmp/f").1,
        st::S_IFREG | 0o600,
        "unchanged"
    );
    let truncate = |k: &mut K, path: &str, len: i64| {
        let p = cstr(k, pid, P1, path);
        sys(k, pid, nr::TRUNCATE, [p, len as u64, 0, 0, 0, 0])
    };
    assert_eq!(
        truncate(&mut k, "/tmp/f", 3),
        -errno::EACCES,
        "not writable for uid 5"
    );
    let mut k2 = kernel();
    let pid2 = spawn_linux(&mut k2);
    let fd2 = open(&mut k2, pid2, "/tmp/f", O_CREAT_RDWR);
    assert_eq!(write_fd(&mut k2, pid2, fd2, b"0123456789"), 10);
    let t = |k: &mut K, path: &str, len: i64| {
        let p = cstr(k, pid2, P1, path);
        sys(k, pid2, nr::TRUNCATE, [p, len as u64, 0, 0, 0, 0])
    };
    assert_eq!(t(&mut k2, "/tmp/f", 3), 0);
    assert_eq!(stat(&mut k2, pid2, "/tmp/f").2, 3);
    assert_eq!(
        sys(&mut k2, pid2, nr::LSEEK, [fd2 as u64, 0, 0, 0, 0, 0]),
        0
    );
    assert_eq!(
        read_fd(&mut k2, pid2, fd2, 10),
        b"012",
        "the open file sees it"
    );
    assert_eq!(t(&mut k2, "/tmp/f", 5000), 0);
    assert_eq!(stat(&mut k2, pid2, "/tmp/f").2, 5000);
    assert_eq!(t(&mut k2, "/tmp/f", -1), -errno::EINVAL);
    assert_eq!(t(&mut k2, "/tmp", 0), -errno::EISDIR);
    assert_eq!(t(&mut k2, "/tmp/none", 0), -errno::ENOENT);
    assert_eq!(t(&mut k2, "/etc/motd", 0), -errno::EPERM);
    assert_eq!(stat(&mut k2, pid2, "/etc/motd").2, 6, "unchanged");
}

#[test]
fn utimensat_sets_times_and_stat_reports_them() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    assert!(open(&mut k, pid, "/tmp/f", O_CREAT_RDWR) >= 3);
    let times: Vec<u8> = [111i64, 0, 222, 5]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    poke(&mut k, pid, BUF + 512, &times);
    let p = cstr(&mut k, pid, P1, "/tmp/f");
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::UTIMENSAT,
            [AT_FDCWD, p, BUF + 512, 0, 0, 0]
        ),
        0
    );
    assert_eq!(stat(&mut k, pid, "/tmp/f").3, 222, "mtime");
    let omit_mtime: Vec<u8> = [333i64, 0, 0, neoos_abi::linux::UTIME_OMIT]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    poke(&mut k, pid, BUF + 512, &omit_mtime);
    let p = cstr(&mut k, pid, P1, "/tmp/f");
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::UTIMENSAT,
            [AT_FDCWD, p, BUF + 512, 0, 0, 0]
        ),
        0
    );
    assert_eq!(stat(&mut k, pid, "/tmp/f").3, 222, "kept");
    let bad: Vec<u8> = [1i64, 2_000_000_000, 0, 0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    poke(&mut k, pid, BUF + 512, &bad);
    let p = cstr(&mut k, pid, P1, "/tmp/f");
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::UTIMENSAT,
            [AT_FDCWD, p, BUF + 512, 0, 0, 0]
        ),
        -errno::EINVAL
    );
    assert_eq!(
        sys(&mut k, pid, nr::UTIMENSAT, [AT_FDCWD, p, 0x10, 0, 0, 0]),
        -errno::EFAULT
    );
    assert_eq!(stat(&mut k, pid, "/tmp/f").3, 222, "unchanged");
}

#[test]
fn readlink_names_the_program_and_clocks_agree() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let p = cstr(&mut k, pid, P1, "/proc/self/exe");
    assert_eq!(sys(&mut k, pid, nr::READLINK, [p, BUF, 100, 0, 0, 0]), 10);
    assert_eq!(peek(&mut k, pid, BUF, 10), b"/bin/linux");
    assert_eq!(
        sys(&mut k, pid, nr::READLINK, [p, BUF, 4, 0, 0, 0]),
        4,
        "cut"
    );
    let mine = alloc::format!("/proc/{pid}/exe");
    let p = cstr(&mut k, pid, P1, &mine);
    assert_eq!(sys(&mut k, pid, nr::READLINK, [p, BUF, 100, 0, 0, 0]), 10);
    assert_eq!(
        sys(&mut k, pid, nr::READLINK, [p, BUF, 0, 0, 0, 0]),
        -errno::EINVAL
    );
    assert_eq!(
        sys(&mut k, pid, nr::READLINK, [p, 0x10, 100, 0, 0, 0]),
        -errno::EFAULT
    );
    let p = cstr(&mut k, pid, P1, "/etc/motd");
    assert_eq!(
        sys(&mut k, pid, nr::READLINK, [p, BUF, 100, 0, 0, 0]),
        -errno::EINVAL
    );
    let p = cstr(&mut k, pid, P1, "/etc/none");
    assert_eq!(
        sys(&mut k, pid, nr::READLINK, [p, BUF, 100, 0, 0, 0]),
        -errno::ENOENT
    );
    k.platform.ticks = 12_345;
    let seconds = 12_345 / neoos_abi::TICKS_PER_SECOND as i64;
    assert_eq!(sys(&mut k, pid, nr::TIME, [0, 0, 0, 0, 0, 0]), seconds);
    assert_eq!(sys(&mut k, pid, nr::TIME, [BUF, 0, 0, 0, 0, 0]), seconds);
    assert_eq!(peek(&mut k, pid, BUF, 8), (seconds as u64).to_le_bytes());
    assert_eq!(
        sys(&mut k, pid, nr::TIME, [0x10, 0, 0, 0, 0, 0]),
        -errno::EFAULT
    );
    assert_eq!(
        sys(&mut k, pid, nr::GETTIMEOFDAY, [BUF, BUF + 64, 0, 0, 0, 0]),
        0
    );
    let tv = peek(&mut k, pid, BUF, 16);
    assert_eq!(
        u64::from_le_bytes(tv[..8].try_into().unwrap()),
        seconds as u64
    );
    assert_eq!(u64::from_le_bytes(tv[8..].try_into().unwrap()), 450_000);
    assert_eq!(
        sys(&mut k, pid, nr::GETTIMEOFDAY, [BUF, 0x10, 0, 0, 0, 0]),
        -errno::EFAULT
    );
}

#[test]
fn setrlimit_keeps_and_enforces_address_space_and_locked_memory() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let rlimit_as = 9u64;
    let held: u64 = {
        let space = k.processes.get(pid).unwrap().space;
        k.memory.maps(space).map(|m| m.end - m.start).sum()
    };
    let limit = held + 8 * PAGE_SIZE as u64;
    let set = |k: &mut K, resource: u64, soft: u64, hard: u64| {
        let mut b = soft.to_le_bytes().to_vec();
        b.extend_from_slice(&hard.to_le_bytes());
        poke(k, pid, BUF + 256, &b);
        sys(k, pid, nr::SETRLIMIT, [resource, BUF + 256, 0, 0, 0, 0])
    };
    assert_eq!(set(&mut k, rlimit_as, limit, u64::MAX), 0);
    assert_eq!(
        sys(&mut k, pid, nr::GETRLIMIT, [rlimit_as, BUF, 0, 0, 0, 0]),
        0
    );
    assert_eq!(peek(&mut k, pid, BUF, 8), limit.to_le_bytes());
    let map = |k: &mut K, pages: u64| {
        sys(
            k,
            pid,
            nr::MMAP,
            [0, pages * PAGE_SIZE as u64, 3, 0x22, u64::MAX, 0],
        )
    };
    assert_eq!(map(&mut k, 9), -errno::ENOMEM, "beyond RLIMIT_AS");
    assert!(map(&mut k, 8) > 0, "within it");
    assert_eq!(map(&mut k, 1), -errno::ENOMEM);
    assert_eq!(
        set(&mut k, rlimit_as, 10, 5),
        -errno::EINVAL,
        "soft above hard"
    );
    assert_eq!(set(&mut k, 7 /* NOFILE */, 10, 10), -errno::EPERM);
    assert_eq!(set(&mut k, 99, 10, 10), -errno::EINVAL);
    assert_eq!(
        sys(&mut k, pid, nr::SETRLIMIT, [rlimit_as, 0x10, 0, 0, 0, 0]),
        -errno::EFAULT
    );
    // prlimit64 gives the old value and sets the new one.
    let mut b = u64::MAX.to_le_bytes().to_vec();
    b.extend_from_slice(&u64::MAX.to_le_bytes());
    poke(&mut k, pid, BUF + 256, &b);
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::PRLIMIT64,
            [0, rlimit_as, BUF + 256, BUF, 0, 0]
        ),
        0
    );
    assert_eq!(peek(&mut k, pid, BUF, 8), limit.to_le_bytes());
    assert!(map(&mut k, 1) > 0, "no limit any more");
    // RLIMIT_MEMLOCK: a user locks up to its soft limit.
    let memlock = 8u64;
    let page = PAGE_SIZE as u64;
    assert_eq!(set(&mut k, memlock, 2 * page, 2 * page), 0);
    let keep = u32::MAX as u64;
    assert_eq!(sys(&mut k, pid, nr::SETRESUID, [keep, 5, keep, 0, 0, 0]), 0);
    assert_eq!(
        set(&mut k, memlock, 2 * page, 4 * page),
        -errno::EPERM,
        "raising the hard limit"
    );
    assert_eq!(
        sys(&mut k, pid, nr::MLOCK, [SCRATCH, 3 * page, 0, 0, 0, 0]),
        -errno::ENOMEM
    );
    assert_eq!(
        sys(&mut k, pid, nr::MLOCK, [SCRATCH, 2 * page, 0, 0, 0, 0]),
        0
    );
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::MLOCK,
            [SCRATCH + 4 * page, page, 0, 0, 0, 0]
        ),
        -errno::ENOMEM
    );
    assert_eq!(
        set(&mut k, memlock, page, 2 * page),
        0,
        "lowering is allowed"
    );
}

#[test]
fn special_files_dev_null_proc_maps_and_meminfo() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let null = open(&mut k, pid, "/dev/null", 2);
    assert!(null >= 3);
    assert_eq!(write_fd(&mut k, pid, null, b"gone"), 4);
    assert_eq!(read_fd(&mut k, pid, null, 10), b"");
    let (r, mode, _, _) = stat(&mut k, pid, "/dev/null");
    assert_eq!((r, mode & 0o170000), (0, st::S_IFCHR));
    let maps = open(&mut k, pid, "/proc/self/maps", 0);
    assert!(maps >= 3, "{maps}");
    let text = String::from_utf8(read_fd(&mut k, pid, maps, 8192)).unwrap();
    let first = text.lines().next().unwrap();
    assert!(first.ends_with(" /bin/linux"), "{text}");
    assert_eq!(first.find("/bin/linux"), Some(73));
    assert!(text.lines().any(|l| l.ends_with(" [stack]")), "{text}");
    let lines = text.lines().count();
    let space = k.processes.get(pid).unwrap().space;
    assert_eq!(lines, k.memory.maps(space).count());
    assert_eq!(open(&mut k, pid, "/proc/self/maps", 1), -errno::EACCES);
    assert_eq!(k.fs.orphan_count(), 1, "the snapshot, while open");
    assert_eq!(sys(&mut k, pid, nr::CLOSE, [maps as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(k.fs.orphan_count(), 0, "gone with its descriptor");
    let info = open(&mut k, pid, "/proc/meminfo", 0);
    let text = String::from_utf8(read_fd(&mut k, pid, info, 4096)).unwrap();
    let (total, _) = k.platform.frame_counts();
    let want = alloc::format!("MemTotal:{:>15} kB", total * 4);
    assert!(text.starts_with(&want), "{text}");
    assert!(text.contains("\nMemFree:"));
    assert_eq!(
        open(&mut k, pid, "/proc/1234/maps", 0),
        -errno::ENOENT,
        "not ours"
    );
}
