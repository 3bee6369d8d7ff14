//! The system-call boundary: decodes registers, checks and copies every user
//! pointer through the mapping core (never touching user memory directly), calls
//! the kernel, and converts errors to the ABI: NeoOS calls return `E_*` codes,
//! POSIX calls return `-errno`.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use neoos_abi::limits::{ARGS_MAX, ARG_MAX, PATH_MAX};
use neoos_abi::{errno, neo, nr};
use neoos_mm::{Errno, FileId, MemStats};

use crate::arch::traps::TrapFrame;
use crate::files::{self, Descriptor};
use crate::fs::Node;
use crate::process::{self, with_kernel, Kernel, Pid};

/// Bytes moved per step between user memory and a kernel buffer.
const CHUNK: usize = 16 * 1024;
/// Kernel heap kept for the kernel's own work (exits, faults, writeback):
/// below it, calls that grow kernel data fail as out of memory instead of
/// running the heap dry.
const HEAP_RESERVE: usize = 16 * 1024 * 1024;

/// The registers of a call.
struct Args {
    a: [u64; 6],
}

impl Args {
    fn int(&self, i: usize) -> i64 {
        self.a[i] as u32 as i32 as i64
    }
    fn word(&self, i: usize) -> u64 {
        self.a[i]
    }
}

/// Handles the system call in `frame` and stores its result in `rax`.
pub fn handle(frame: &mut TrapFrame) {
    let args = Args {
        a: [
            frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
        ],
    };
    let number = frame.rax as usize;
    if grows_kernel_data(number) && crate::arch::heap::free_bytes() < HEAP_RESERVE {
        frame.rax = out_of_memory(number) as u64;
        return;
    }
    let result = match number {
        nr::EXIT => process::exit_current(args.int(0) & 0xff),
        nr::YIELD => {
            process::yield_now();
            neo::E_OK
        }
        nr::WAIT => wait(args.word(0)),
        nr::READ_CONSOLE => read_console(args.word(0), args.int(1)),
        nr::READ if reads_console(args.int(0)) => match args.int(2) {
            0 => 0,
            count => read_console(args.word(1), count),
        },
        nr::FORK => fork(frame),
        nr::KILL => kill(args.int(0)),
        number => with_kernel(|k| match k.current_pid() {
            Some(pid) => dispatch(k, pid, number, &args),
            None => neo::E_UNKNOWN,
        }),
    };
    frame.rax = result as u64;
}

/// Calls that may allocate kernel data that outlives them (mappings, holes,
/// descriptors, files, processes, segments). File data is bounded by the
/// disk's capacity instead, so `sys_write` (and console output) always runs;
/// `munmap` and `mprotect` are refused only when they would split a mapping
/// (see `splits_when_heap_low`), so memory can always be given back.
fn grows_kernel_data(number: usize) -> bool {
    matches!(
        number,
        nr::OPEN | nr::NEO_MMAP | nr::RUN | nr::MMAP | nr::SHMGET | nr::SHMAT | nr::FORK
    )
}

/// Whether the kernel heap is below its reserve and the range of a
/// `munmap`/`mprotect` call cuts a mapping (which needs a new record).
fn splits_when_heap_low(k: &Kernel, pid: Pid, a: &Args) -> bool {
    crate::arch::heap::free_bytes() < HEAP_RESERVE
        && k.processes
            .get(&pid)
            .is_some_and(|p| k.memory.would_split(p.space, a.word(0), a.word(1)))
}

/// The out-of-memory result in the personality of call `number`.
fn out_of_memory(number: usize) -> i64 {
    if number >= nr::FIRST_POSIX {
        -errno::ENOMEM
    } else {
        neo::E_NOMEM
    }
}

fn dispatch(k: &mut Kernel, pid: Pid, number: usize, a: &Args) -> i64 {
    let neo_result = |r: Result<i64, i64>| r.unwrap_or_else(|e| e);
    let posix = |r: Result<i64, Errno>| r.unwrap_or_else(|e| -e.posix_errno());
    match number {
        nr::WRITE => neo_result(write(k, pid, a.int(0), a.word(1), a.int(2))),
        nr::READ => neo_result(read(k, pid, a.int(0), a.word(1), a.int(2))),
        nr::OPEN => neo_result(open(k, pid, a.word(0), a.int(1))),
        nr::CLOSE => neo_result(close(k, pid, a.int(0))),
        nr::NEO_MMAP => neo_result(neo_mmap(k, pid, a.int(0), a.int(1), a.int(2))),
        nr::NEO_MUNMAP => neo_result(neo_munmap(k, pid, a.word(0), a.int(1))),
        nr::RUN => neo_result(run(k, pid, a.word(0), a.word(1))),
        nr::STAT => neo_result(stat(k, pid, a.word(0), a.word(1))),
        nr::MEMINFO => neo_result(meminfo(k, pid, a.word(0))),
        nr::MAPS => neo_result(maps(k, pid, a.word(0), a.int(1))),
        nr::GETPID => pid as i64,
        nr::FSYNC => neo_result(fsync(k, pid, a.int(0))),
        nr::READDIR => neo_result(readdir(k, pid, a.word(0), a.word(1), a.int(2))),
        nr::TICKS => crate::trap::ticks() as i64,
        nr::MMAP => posix(posix_mmap(k, pid, a)),
        nr::MUNMAP | nr::MPROTECT if splits_when_heap_low(k, pid, a) => -errno::ENOMEM,
        nr::MUNMAP => posix(mem_call(k, pid, |m, s, hw| {
            m.munmap(s, hw, a.word(0), a.word(1)).map(|_| 0)
        })),
        nr::MSYNC => posix(mem_call(k, pid, |m, s, hw| {
            m.msync(s, hw, a.word(0), a.word(1), a.word(2) as u32)
                .map(|_| 0)
        })),
        nr::MPROTECT => posix(mem_call(k, pid, |m, s, hw| {
            m.mprotect(s, hw, a.word(0), a.word(1), a.word(2) as u32)
                .map(|_| 0)
        })),
        nr::MADVISE => posix(mem_call(k, pid, |m, s, hw| {
            m.madvise(s, hw, a.word(0), a.word(1), a.word(2) as u32)
                .map(|_| 0)
        })),
        nr::MINCORE => posix(mincore(k, pid, a.word(0), a.word(1), a.word(2))),
        nr::GETPAGESIZE => neoos_abi::PAGE_SIZE as i64,
        nr::SHMGET => posix(shmget(k, pid, a.word(0) as i64, a.word(1), a.word(2))),
        nr::SHMAT => posix(shmat(k, pid, a.word(0), a.word(1), a.word(2) as u32)),
        nr::SHMDT => posix(shmdt(k, pid, a.word(0))),
        nr::SHMCTL => posix(shmctl(k, pid, a.word(0), a.word(1) as u32, a.word(2))),
        _ => neo::E_NOT_IMPL,
    }
}

/// Runs `f` with the caller's address space and hardware.
fn mem_call<R>(
    k: &mut Kernel,
    pid: Pid,
    f: impl FnOnce(&mut neoos_mm::MemorySystem, neoos_mm::AsId, &mut neoos_mm::Hw) -> Result<R, Errno>,
) -> Result<R, Errno> {
    let (memory, space, mut hw) = k.hw_for(pid).ok_or(Errno::Inval)?;
    f(memory, space, &mut hw)
}

/// Copies `len` bytes from user address `addr`.
fn copy_in(k: &mut Kernel, pid: Pid, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; len];
    mem_call(k, pid, |m, s, hw| m.copy_from_user(s, hw, addr, &mut buf))?;
    Ok(buf)
}

/// Copies `bytes` to user address `addr`.
fn copy_out(k: &mut Kernel, pid: Pid, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
    mem_call(k, pid, |m, s, hw| m.copy_to_user(s, hw, addr, bytes, false))
}

/// Reads a NUL-terminated string of at most `max` bytes from user memory.
fn copy_string(k: &mut Kernel, pid: Pid, addr: u64, max: usize) -> Result<String, Errno> {
    let bytes = mem_call(k, pid, |m, s, hw| m.read_user_cstr(s, hw, addr, max))?;
    String::from_utf8(bytes).map_err(|_| Errno::Inval)
}

fn neo_err(e: Errno) -> i64 {
    e.neo_code()
}

fn descriptor(k: &mut Kernel, pid: Pid, fd: i64) -> Result<Descriptor, i64> {
    let p = k.processes.get(&pid).ok_or(neo::E_INVAL)?;
    usize::try_from(fd)
        .ok()
        .and_then(|i| p.files.get(i).copied().flatten())
        .ok_or(neo::E_INVAL)
}

fn store_descriptor(k: &mut Kernel, pid: Pid, fd: i64, d: Descriptor) {
    if let Some(slot) = k
        .processes
        .get_mut(&pid)
        .and_then(|p| p.files.get_mut(fd as usize))
    {
        *slot = Some(d);
    }
}

fn write(k: &mut Kernel, pid: Pid, fd: i64, buf: u64, count: i64) -> Result<i64, i64> {
    let mut d = descriptor(k, pid, fd)?;
    let count = usize::try_from(count).map_err(|_| neo::E_INVAL)?;
    if let Descriptor::File(f) = &d {
        // Room for the whole call first: a full disk fails it before any byte.
        files::check_disk_room(k, f, count)?;
    }
    let mut done = 0;
    while done < count {
        let n = (count - done).min(CHUNK);
        let bytes = copy_in(k, pid, buf.wrapping_add(done as u64), n).map_err(neo_err)?;
        match &mut d {
            Descriptor::Console => crate::arch::serial::write_bytes(&bytes),
            Descriptor::File(f) => {
                files::write(k, f, &bytes)?;
                store_descriptor(k, pid, fd, Descriptor::File(*f));
            }
        }
        done += n;
    }
    Ok(count as i64)
}

fn read(k: &mut Kernel, pid: Pid, fd: i64, buf: u64, count: i64) -> Result<i64, i64> {
    let d = descriptor(k, pid, fd)?;
    let count = usize::try_from(count).map_err(|_| neo::E_INVAL)?;
    let Descriptor::File(mut f) = d else {
        // The console is read by `read_console`, which may wait (see `handle`).
        return Err(neo::E_INVAL);
    };
    let mut done = 0;
    while done < count {
        let mut chunk = vec![0u8; (count - done).min(CHUNK)];
        let n = files::read(k, &mut f, &mut chunk)?;
        copy_out(k, pid, buf.wrapping_add(done as u64), &chunk[..n]).map_err(neo_err)?;
        store_descriptor(k, pid, fd, Descriptor::File(f));
        done += n;
        if n < chunk.len() {
            break;
        }
    }
    Ok(done as i64)
}

/// Whether descriptor `fd` of the caller is the console (`sys_read` on it
/// waits for input like `sys_read_console`).
fn reads_console(fd: i64) -> bool {
    with_kernel(|k| {
        k.current_pid()
            .is_some_and(|pid| matches!(descriptor(k, pid, fd), Ok(Descriptor::Console)))
    })
}

/// Console input that has already arrived (without waiting), at most `count`
/// bytes, stored at `buf`.
fn read_console_available(k: &mut Kernel, pid: Pid, buf: u64, count: usize) -> Result<usize, i64> {
    let mut bytes = Vec::new();
    while bytes.len() < count {
        match crate::arch::serial::try_read() {
            Some(b) => bytes.push(if b == b'\r' { b'\n' } else { b }),
            None => break,
        }
    }
    copy_out(k, pid, buf, &bytes).map_err(neo_err)?;
    Ok(bytes.len())
}

fn read_console(buf: u64, count: i64) -> i64 {
    let count = match usize::try_from(count) {
        Ok(n) if n > 0 => n.min(CHUNK),
        _ => return neo::E_INVAL,
    };
    // The buffer is checked before the wait: a bad one fails at once.
    let checked = with_kernel(|k| {
        let pid = k.current_pid().ok_or(neo::E_UNKNOWN)?;
        mem_call(k, pid, |m, s, hw| m.check_user_writable(s, hw, buf, count)).map_err(neo_err)
    });
    if let Err(e) = checked {
        return e;
    }
    loop {
        let got = with_kernel(|k| {
            let pid = k.current_pid().ok_or(neo::E_UNKNOWN)?;
            read_console_available(k, pid, buf, count)
        });
        match got {
            Ok(0) => process::yield_now(),
            Ok(n) => return n as i64,
            Err(e) => return e,
        }
    }
}

fn open(k: &mut Kernel, pid: Pid, path: u64, mode: i64) -> Result<i64, i64> {
    let path = copy_string(k, pid, path, PATH_MAX).map_err(neo_err)?;
    let free = k
        .processes
        .get(&pid)
        .ok_or(neo::E_INVAL)?
        .files
        .iter()
        .position(|d| d.is_none());
    let count = k.processes.get(&pid).map_or(0, |p| p.files.len());
    if free.is_none() && count >= files::MAX_DESCRIPTORS {
        return Err(neo::E_NOMEM);
    }
    let d = files::open(k, &path, mode as u32)?;
    let p = k.processes.get_mut(&pid).ok_or(neo::E_INVAL)?;
    let fd = match free {
        Some(i) => {
            p.files[i] = Some(d);
            i
        }
        None => {
            p.files.push(Some(d));
            p.files.len() - 1
        }
    };
    Ok(fd as i64)
}

fn close(k: &mut Kernel, pid: Pid, fd: i64) -> Result<i64, i64> {
    descriptor(k, pid, fd)?;
    let d = k
        .processes
        .get_mut(&pid)
        .and_then(|p| p.files[fd as usize].take())
        .ok_or(neo::E_INVAL)?;
    match files::close(k, d) {
        neo::E_OK => Ok(neo::E_OK),
        e => Err(e),
    }
}

fn neo_mmap(k: &mut Kernel, pid: Pid, fd: i64, offset: i64, size: i64) -> Result<i64, i64> {
    let Descriptor::File(f) = descriptor(k, pid, fd)? else {
        return Err(neo::E_INVAL);
    };
    mem_call(k, pid, |m, s, hw| {
        m.neo_mmap(s, hw, f.file, f.access, offset, size)
    })
    .map(|addr| addr as i64)
    .map_err(neo_err)
}

fn neo_munmap(k: &mut Kernel, pid: Pid, addr: u64, size: i64) -> Result<i64, i64> {
    mem_call(k, pid, |m, s, hw| m.neo_munmap(s, hw, addr, size))
        .map(|_| neo::E_OK)
        .map_err(neo_err)
}

fn run(k: &mut Kernel, pid: Pid, path: u64, argv: u64) -> Result<i64, i64> {
    let path = copy_string(k, pid, path, PATH_MAX).map_err(neo_err)?;
    let mut args = Vec::new();
    if argv != 0 {
        loop {
            if args.len() == ARGS_MAX {
                return Err(neo::E_INVAL);
            }
            let raw =
                copy_in(k, pid, argv.wrapping_add(args.len() as u64 * 8), 8).map_err(neo_err)?;
            let pointer = u64::from_le_bytes(raw.try_into().unwrap_or([0; 8]));
            if pointer == 0 {
                break;
            }
            args.push(
                copy_string(k, pid, pointer, ARG_MAX)
                    .map_err(neo_err)?
                    .into_bytes(),
            );
        }
    }
    if args.is_empty() {
        args.push(path.clone().into_bytes());
    }
    k.spawn(&path, &args, Some(pid))
        .map(|child| child as i64)
        .map_err(neo_err)
}

fn wait(status_ptr: u64) -> i64 {
    loop {
        let step = with_kernel(|k| {
            let pid = k.current_pid().ok_or(neo::E_UNKNOWN)?;
            // Check the status pointer before taking a child, so no status is lost.
            if status_ptr != 0 {
                copy_out(k, pid, status_ptr, &[0; 4]).map_err(neo_err)?;
            }
            if let Some((child, status)) = k.reap_child(pid) {
                if status_ptr != 0 {
                    copy_out(k, pid, status_ptr, &(status as i32).to_le_bytes())
                        .map_err(neo_err)?;
                }
                return Ok(Some(child as i64));
            }
            if !k.has_children(pid) {
                return Err(neo::E_NOENT);
            }
            Ok(None)
        });
        match step {
            Ok(Some(child)) => return child,
            Ok(None) => process::block_for_child(),
            Err(e) => return e,
        }
    }
}

fn kill(target: i64) -> i64 {
    let outcome = with_kernel(|k| {
        let me = k.current_pid();
        if target <= 0 || target > u32::MAX as i64 {
            return Err(neo::E_INVAL);
        }
        if me == Some(target as Pid) {
            return Ok(true);
        }
        if k.kill(target as Pid) {
            Ok(false)
        } else {
            Err(neo::E_NOENT)
        }
    });
    match outcome {
        Ok(true) => process::exit_current(neoos_abi::status::KILLED),
        Ok(false) => neo::E_OK,
        Err(e) => e,
    }
}

fn fork(frame: &TrapFrame) -> i64 {
    with_kernel(|k| {
        let Some(pid) = k.current_pid() else {
            return -errno::EINVAL;
        };
        // The child's mapping records cannot report a failed allocation:
        // refuse a fork whose records would eat into the heap's reserve.
        let needed = k
            .processes
            .get(&pid)
            .map_or(0, |p| k.memory.fork_metadata_bytes(p.space));
        if needed.saturating_add(HEAP_RESERVE) > crate::arch::heap::free_bytes() {
            return -errno::ENOMEM;
        }
        let mut child_frame = *frame;
        child_frame.rax = 0;
        match k.fork(pid, &child_frame) {
            Ok(child) => child as i64,
            Err(e) => -e.posix_errno(),
        }
    })
}

fn stat(k: &mut Kernel, pid: Pid, path: u64, out: u64) -> Result<i64, i64> {
    let path = copy_string(k, pid, path, PATH_MAX).map_err(neo_err)?;
    let (kind, size) = match k.fs.lookup(&path) {
        Some(Node::Dir) => (neoos_abi::stat::KIND_DIR, 0),
        Some(Node::File(id)) => (neoos_abi::stat::KIND_FILE, file_size(k, id)),
        None => return Err(neo::E_NOENT),
    };
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&kind.to_le_bytes());
    bytes[8..].copy_from_slice(&size.to_le_bytes());
    copy_out(k, pid, out, &bytes).map_err(neo_err)?;
    Ok(neo::E_OK)
}

/// A file's size: the page cache's when the file is open, else the disk's.
fn file_size(k: &Kernel, id: FileId) -> u64 {
    k.memory.file_size(id).unwrap_or_else(|_| k.fs.disk.len(id))
}

fn meminfo(k: &mut Kernel, pid: Pid, out: u64) -> Result<i64, i64> {
    let (total, free) = crate::frames::counts();
    let stats: MemStats = k.memory.stats();
    let space = k.processes.get(&pid).map(|p| p.space).ok_or(neo::E_INVAL)?;
    let mappings = k.memory.mapping_count(space) as u64;
    let resident = k.memory.resident_pages(space);
    let fields = [
        total,
        free,
        mappings,
        resident,
        stats.writeback_requests,
        stats.writeback_bytes,
        stats.tlb_single_flushes,
        stats.tlb_full_flushes,
    ];
    let bytes: Vec<u8> = fields.iter().flat_map(|f| f.to_le_bytes()).collect();
    copy_out(k, pid, out, &bytes).map_err(neo_err)?;
    Ok(neo::E_OK)
}

fn maps(k: &mut Kernel, pid: Pid, buf: u64, len: i64) -> Result<i64, i64> {
    let len = usize::try_from(len).map_err(|_| neo::E_INVAL)?;
    let space = k.processes.get(&pid).map(|p| p.space).ok_or(neo::E_INVAL)?;
    // A few mappings at a time, so a listing of many needs no large buffer.
    const BATCH: usize = 64;
    let mut total = 0usize;
    let mut line = String::new();
    let mut from = 0;
    loop {
        let batch: Vec<_> = k.memory.maps_from(space, from).take(BATCH).collect();
        let Some(last) = batch.last() else {
            return Ok(total as i64);
        };
        from = last.end;
        for m in &batch {
            line.clear();
            maps_line(k, m, &mut line);
            if total < len {
                let n = line.len().min(len - total);
                copy_out(
                    k,
                    pid,
                    buf.wrapping_add(total as u64),
                    &line.as_bytes()[..n],
                )
                .map_err(neo_err)?;
            }
            total += line.len();
        }
    }
}

/// One line of the maps listing of docs/abi.md: `START-END PERM KIND [PATH]`,
/// plus the resident and dirty page counts of the mapping.
fn maps_line(k: &Kernel, m: &neoos_mm::MapInfo, text: &mut String) {
    use core::fmt::Write;
    let perm = [
        if m.read { 'r' } else { '-' },
        if m.write { 'w' } else { '-' },
        if m.exec { 'x' } else { '-' },
        if m.shared { 's' } else { 'p' },
    ];
    let (kind, path) = match m.object {
        neoos_mm::MapObject::Anonymous => ("anon", String::new()),
        neoos_mm::MapObject::Shm(_) => ("shm", String::new()),
        neoos_mm::MapObject::File(f) => ("file", k.fs.path_of(f).unwrap_or_default()),
    };
    let perm: String = perm.iter().collect();
    let _ = write!(text, "{:016x}-{:016x} {} {}", m.start, m.end, perm, kind);
    if !path.is_empty() {
        let _ = write!(text, " {}", path);
    }
    let _ = writeln!(text, " resident={} dirty={}", m.resident, m.dirty);
}

fn fsync(k: &mut Kernel, pid: Pid, fd: i64) -> Result<i64, i64> {
    let Descriptor::File(f) = descriptor(k, pid, fd)? else {
        return Ok(neo::E_OK);
    };
    let (memory, mut io) = k.memory_io();
    memory
        .file_sync(&mut io, f.file)
        .map(|_| neo::E_OK)
        .map_err(neo_err)
}

fn readdir(k: &mut Kernel, pid: Pid, path: u64, buf: u64, len: i64) -> Result<i64, i64> {
    let len = usize::try_from(len).map_err(|_| neo::E_INVAL)?;
    let path = copy_string(k, pid, path, PATH_MAX).map_err(neo_err)?;
    let names = k.fs.list(&path).map_err(|e| match e {
        crate::fs::FsError::NotFound => neo::E_NOENT,
        _ => neo::E_INVAL,
    })?;
    let mut text = String::new();
    for name in names {
        text.push_str(&name);
        text.push('\n');
    }
    let n = text.len().min(len);
    copy_out(k, pid, buf, &text.as_bytes()[..n]).map_err(neo_err)?;
    Ok(text.len() as i64)
}

fn posix_mmap(k: &mut Kernel, pid: Pid, a: &Args) -> Result<i64, Errno> {
    let flags = a.word(3) as u32;
    let file = if flags & neoos_abi::mman::MAP_ANON != 0 {
        None
    } else {
        match descriptor(k, pid, a.int(4)) {
            Ok(Descriptor::File(f)) => Some((f.file, f.access)),
            Ok(Descriptor::Console) => return Err(Errno::NoDev),
            Err(_) => return Err(Errno::BadFd),
        }
    };
    let (addr, len, prot, offset) = (a.word(0), a.word(1), a.word(2) as u32, a.word(5) as i64);
    mem_call(k, pid, |m, s, hw| {
        m.mmap(s, hw, addr, len, prot, flags, file, offset)
    })
    .map(|v| v as i64)
}

fn mincore(k: &mut Kernel, pid: Pid, addr: u64, len: u64, vec_ptr: u64) -> Result<i64, Errno> {
    let pages = len.div_ceil(4096);
    if pages > (1 << 24) {
        return Err(Errno::NoMem);
    }
    let mut residency = Vec::new();
    residency
        .try_reserve_exact(pages as usize)
        .map_err(|_| Errno::NoMem)?;
    residency.resize(pages as usize, 0u8);
    let space = k.processes.get(&pid).map(|p| p.space).ok_or(Errno::Inval)?;
    k.memory.mincore(space, addr, len, &mut residency)?;
    copy_out(k, pid, vec_ptr, &residency)?;
    Ok(0)
}

fn shmget(k: &mut Kernel, pid: Pid, key: i64, size: u64, flags: u64) -> Result<i64, Errno> {
    let id = k.memory.shmget(key, size, flags as u32)?;
    k.segments
        .got(id.0, flags, pid as u64, crate::trap::ticks());
    Ok(id.0 as i64)
}

fn shmat(k: &mut Kernel, pid: Pid, id: u64, addr: u64, flags: u32) -> Result<i64, Errno> {
    let shmid = neoos_mm::ShmId(id);
    let at = mem_call(k, pid, |m, s, hw| m.shmat(s, hw, shmid, addr, flags))?;
    k.segments.attached(id, pid as u64, crate::trap::ticks());
    Ok(at as i64)
}

fn shmdt(k: &mut Kernel, pid: Pid, addr: u64) -> Result<i64, Errno> {
    let shmid = mem_call(k, pid, |m, s, hw| m.shmdt(s, hw, addr))?;
    k.segments
        .detached(shmid.0, pid as u64, crate::trap::ticks());
    Ok(0)
}

/// Byte offset of `shm_perm.mode` in `struct shmid_ds`.
const SHMID_DS_MODE: u64 = 24;

fn shmctl(k: &mut Kernel, pid: Pid, id: u64, cmd: u32, buf: u64) -> Result<i64, Errno> {
    use neoos_abi::shm::{IPC_RMID, IPC_SET, IPC_STAT};
    // The buffer is checked before anything changes.
    let new_mode = match cmd {
        IPC_SET => {
            let raw = copy_in(k, pid, buf.wrapping_add(SHMID_DS_MODE), 8)?;
            Some(u64::from_le_bytes(raw.try_into().unwrap_or([0; 8])))
        }
        IPC_STAT => {
            mem_call(k, pid, |m, s, hw| m.check_user_writable(s, hw, buf, 88))?;
            None
        }
        _ => None,
    };
    let (memory, mut io) = k.memory_io();
    let info = memory.shmctl(&mut io, neoos_mm::ShmId(id), cmd)?;
    match cmd {
        IPC_SET => k
            .segments
            .set_mode(id, new_mode.unwrap_or(0), crate::trap::ticks()),
        IPC_RMID => k.segments.removed(id),
        _ => {
            let r = k.segments.get(id);
            // struct shmid_ds (docs/abi.md): key, uid, gid, mode, size, atime,
            // dtime, ctime, cpid, lpid, attachments (all 64-bit).
            let fields = [
                info.key as u64,
                0,
                0,
                r.mode,
                info.size,
                r.attach_time,
                r.detach_time,
                r.change_time,
                r.creator,
                r.last_user,
                info.attaches as u64,
            ];
            let bytes: Vec<u8> = fields.iter().flat_map(|f| f.to_le_bytes()).collect();
            copy_out(k, pid, buf, &bytes)?;
        }
    }
    Ok(0)
}
