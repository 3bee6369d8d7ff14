//! Host tests of the Linux memory calls that reach the mapping core through
//! the Linux numbering: System V shared memory (with Linux's
//! `struct shmid64_ds`), `mremap` and `madvise(MADV_FREE)`.

use alloc::vec::Vec;

use neoos_abi::layout::STACK_TOP;
use neoos_abi::linux::{nr, shmid64_ds as ds};
use neoos_abi::{errno, mman, shm, PAGE_SIZE};

use crate::process::Pid;
use crate::syscall::UserPtr;
use crate::test_platform::{kernel, TestPlatform};
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

fn sys(k: &mut K, pid: Pid, number: usize, args: [u64; 6]) -> i64 {
    match k.system_call(pid, number, args) {
        Ok(rax) => rax,
        Err((c, _)) => panic!("call {number} needs the scheduler: {c:?}"),
    }
}

fn field(bytes: &[u8], at: usize, len: usize) -> u64 {
    let mut word = [0u8; 8];
    word[..len].copy_from_slice(&bytes[at..at + len]);
    u64::from_le_bytes(word)
}

fn anon(k: &mut K, pid: Pid, len: u64) -> u64 {
    let flags = u64::from(mman::MAP_PRIVATE | mman::MAP_ANON);
    let rw = u64::from(mman::PROT_READ | mman::PROT_WRITE);
    let at = sys(k, pid, nr::MMAP, [0, len, rw, flags, u64::MAX, 0]);
    assert!(at > 0, "mmap: {at}");
    at as u64
}

#[test]
fn shm_calls_by_linux_numbers_fill_linux_shmid64_ds() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let flags = u64::from(shm::IPC_CREAT) | 0o600;
    let id = sys(&mut k, pid, nr::SHMGET, [0, 5000, flags, 0, 0, 0]);
    assert!(id >= 0, "shmget: {id}");
    let id = id as u64;
    let at = sys(&mut k, pid, nr::SHMAT, [id, 0, 0, 0, 0, 0]);
    assert!(at > 0, "shmat: {at}");
    poke(&mut k, pid, at as u64, b"shared");
    let stat = u64::from(shm::IPC_STAT);
    assert_eq!(
        sys(&mut k, pid, nr::SHMCTL, [id, stat, SCRATCH, 0, 0, 0]),
        0
    );
    let b = peek(&mut k, pid, SCRATCH, ds::SIZE);
    assert_eq!(field(&b, ds::KEY, 4), 0, "IPC_PRIVATE");
    assert_eq!(field(&b, ds::MODE, 2), 0o600);
    assert_eq!(field(&b, ds::SEGSZ, 8), 5000);
    assert_eq!(field(&b, ds::CPID, 4), u64::from(pid));
    assert_eq!(field(&b, ds::LPID, 4), u64::from(pid));
    assert_eq!(field(&b, ds::NATTCH, 8), 1);
    // IPC_SET takes the mode from the Linux layout.
    let mut set = b.clone();
    set[ds::MODE..ds::MODE + 2].copy_from_slice(&0o640u16.to_le_bytes());
    poke(&mut k, pid, SCRATCH + 512, &set);
    let set_cmd = u64::from(shm::IPC_SET);
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::SHMCTL,
            [id, set_cmd, SCRATCH + 512, 0, 0, 0]
        ),
        0
    );
    assert_eq!(sys(&mut k, pid, nr::SHMDT, [at as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(
        sys(&mut k, pid, nr::SHMCTL, [id, stat, SCRATCH, 0, 0, 0]),
        0
    );
    let b = peek(&mut k, pid, SCRATCH, ds::SIZE);
    assert_eq!(field(&b, ds::MODE, 2), 0o640);
    assert_eq!(field(&b, ds::NATTCH, 8), 0);
    // Errors are -errno; removal makes the id invalid.
    assert_eq!(
        sys(&mut k, pid, nr::SHMDT, [at as u64, 0, 0, 0, 0, 0]),
        -errno::EINVAL
    );
    assert_eq!(
        sys(&mut k, pid, nr::SHMCTL, [id, stat, 8, 0, 0, 0]),
        -errno::EFAULT
    );
    assert_eq!(
        sys(&mut k, pid, nr::SHMCTL, [id, 77, SCRATCH, 0, 0, 0]),
        -errno::EINVAL
    );
    let rmid = u64::from(shm::IPC_RMID);
    assert_eq!(sys(&mut k, pid, nr::SHMCTL, [id, rmid, 0, 0, 0, 0]), 0);
    assert_eq!(
        sys(&mut k, pid, nr::SHMAT, [id, 0, 0, 0, 0, 0]),
        -errno::EINVAL
    );
    let excl = u64::from(shm::IPC_CREAT | shm::IPC_EXCL) | 0o600;
    assert!(sys(&mut k, pid, nr::SHMGET, [4321, PAGE, excl, 0, 0, 0]) >= 0);
    assert_eq!(
        sys(&mut k, pid, nr::SHMGET, [4321, PAGE, excl, 0, 0, 0]),
        -errno::EEXIST
    );
    assert_eq!(
        sys(&mut k, pid, nr::SHMGET, [4322, PAGE, 0, 0, 0, 0]),
        -errno::ENOENT
    );
}

#[test]
fn mremap_by_linux_number_moves_grows_and_refuses_as_linux() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let a = anon(&mut k, pid, 2 * PAGE);
    poke(&mut k, pid, a, b"first");
    poke(&mut k, pid, a + PAGE, b"second");
    // A neighbour right after: growth must move.
    let fixed = u64::from(mman::MAP_PRIVATE | mman::MAP_ANON | mman::MAP_FIXED);
    let rw = u64::from(mman::PROT_READ | mman::PROT_WRITE);
    let after = a + 2 * PAGE;
    assert_eq!(
        sys(&mut k, pid, nr::MMAP, [after, PAGE, rw, fixed, u64::MAX, 0]),
        after as i64
    );
    let maymove = u64::from(mman::MREMAP_MAYMOVE);
    assert_eq!(
        sys(&mut k, pid, nr::MREMAP, [a, 2 * PAGE, 4 * PAGE, 0, 0, 0]),
        -errno::ENOMEM
    );
    assert_eq!(
        sys(&mut k, pid, nr::MREMAP, [a + 1, PAGE, PAGE, 0, 0, 0]),
        -errno::EINVAL
    );
    let dontunmap = u64::from(mman::MREMAP_DONTUNMAP) | maymove;
    assert_eq!(
        sys(&mut k, pid, nr::MREMAP, [a, PAGE, PAGE, dontunmap, 0, 0]),
        -errno::EINVAL
    );
    assert_eq!(
        sys(
            &mut k,
            pid,
            nr::MREMAP,
            [a, 3 * PAGE, 4 * PAGE, maymove, 0, 0]
        ),
        -errno::EFAULT
    );
    let b = sys(
        &mut k,
        pid,
        nr::MREMAP,
        [a, 2 * PAGE, 4 * PAGE, maymove, 0, 0],
    );
    assert!(b > 0 && b as u64 != a, "mremap: {b}");
    let b = b as u64;
    assert_eq!(peek(&mut k, pid, b, 5), b"first");
    assert_eq!(peek(&mut k, pid, b + PAGE, 6), b"second");
    assert_eq!(peek(&mut k, pid, b + 3 * PAGE, 4), [0; 4]);
    assert!(
        k.copy_in(pid, UserPtr(a), 1).is_err(),
        "the old range is gone"
    );
    // Shrinking in place.
    assert_eq!(
        sys(&mut k, pid, nr::MREMAP, [b, 4 * PAGE, PAGE, 0, 0, 0]),
        b as i64
    );
    assert!(k.copy_in(pid, UserPtr(b + PAGE), 1).is_err());
}

#[test]
fn madv_free_by_linux_number_zeroes_private_anonymous_pages() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    let a = anon(&mut k, pid, PAGE);
    poke(&mut k, pid, a, b"gone");
    let free = u64::from(mman::MADV_FREE);
    assert_eq!(sys(&mut k, pid, nr::MADVISE, [a, PAGE, free, 0, 0, 0]), 0);
    assert_eq!(peek(&mut k, pid, a, 4), [0; 4]);
}

#[test]
fn anonymous_mmap_is_made_with_shared_access_and_the_rest_the_writing_way() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    k.processes_mut().set_cpu(0);
    assert!(k.processes_mut().pick_next().is_some());
    assert_eq!(k.processes().running_process_on(0), Some(pid));
    let (none, anon, shared) = (u64::MAX, 0x22, 0x21);
    let calls = |k: &K| k.memory().shared_map_calls().0;
    let addr = k
        .system_call_shared(0, nr::MMAP, [0, 4 * PAGE, 3, anon, none, 0])
        .expect("made with shared access") as u64;
    assert_eq!(calls(&k), 1);
    poke(&mut k, pid, addr + PAGE, b"shared");
    assert_eq!(peek(&mut k, pid, addr + PAGE, 6), b"shared");
    // Not its case, or refused: nothing changed, the writing way answers.
    let before = k
        .memory()
        .maps(k.processes().get(pid).unwrap().space)
        .count();
    let refused = [
        (0, nr::MMAP, [0, 4 * PAGE, 3, shared | 0x10, none, 0]),
        (0, nr::MMAP, [0, 0, 3, anon, none, 0]),
        (0, nr::MMAP, [0, PAGE, 0xff, anon, none, 0]),
        (0, nr::MMAP, [0x4000_0000, PAGE, 3, anon | 0x10, none, 0]),
        (1, nr::MMAP, [0, PAGE, 3, anon, none, 0]),
        (0, nr::GETPID, [0; 6]),
        // Linux `munmap` is tried, but the test platform's page table
        // cannot change through a shared reference.
        (0, nr::MUNMAP, [addr, 4 * PAGE, 0, 0, 0, 0]),
        (0, nr::MPROTECT, [addr, 4 * PAGE, 1, 0, 0, 0]),
        // NeoOS's mmap number is Linux's `writev`.
        (0, neoos_abi::nr::MMAP, [0, PAGE, 3, anon, none, 0]),
    ];
    for (cpu, number, args) in refused {
        assert_eq!(
            k.system_call_shared(cpu, number, args),
            None,
            "{number} {args:?}"
        );
    }
    assert_eq!(
        k.memory()
            .maps(k.processes().get(pid).unwrap().space)
            .count(),
        before
    );
    assert_eq!(calls(&k), 1);
    assert_eq!(
        sys(&mut k, pid, nr::MMAP, [0, 0, 3, anon, none, 0]),
        -errno::EINVAL
    );
    // Shared memory too, once an exclusive section made spare objects.
    let memory = [0, 4 * PAGE, 3, shared, none, 0];
    assert_eq!(k.system_call_shared(0, nr::MMAP, memory), None, "no spare");
    k.finish_shared_work();
    let memory = k
        .system_call_shared(0, nr::MMAP, memory)
        .expect("made with shared access") as u64;
    assert_eq!(calls(&k), 2);
    poke(&mut k, pid, memory + PAGE, b"memory");
    assert_eq!(peek(&mut k, pid, memory + PAGE, 6), b"memory");
    // A file mapped shared: its object taken, the file noted for its
    // accessed mark, made by the next exclusive section.
    poke(&mut k, pid, SCRATCH, b"/bin/linux\0");
    let fd = sys(&mut k, pid, nr::OPEN, [SCRATCH, 0, 0, 0, 0, 0]);
    assert!(fd >= 0);
    let read = u64::from(mman::PROT_READ);
    let file = [0, PAGE, read, u64::from(mman::MAP_SHARED), fd as u64, 0];
    let mapped = k
        .system_call_shared(0, nr::MMAP, file)
        .expect("made with shared access") as u64;
    assert_eq!(calls(&k), 3);
    assert_eq!(k.mapped_shared.lock().len(), 1);
    assert_eq!(peek(&mut k, pid, mapped, 4), b"\x7fELF");
    k.finish_shared_work();
    assert!(k.mapped_shared.lock().is_empty(), "marked, list emptied");
    let writable = [0, PAGE, 3, u64::from(mman::MAP_SHARED), fd as u64, 0];
    assert_eq!(
        k.system_call_shared(0, nr::MMAP, writable),
        None,
        "write on a read-only descriptor: the writing way reports it"
    );
    // Privately, writable: a view of its own over the file (the
    // exclusive section made spare objects again), a write its own copy.
    let private = [0, PAGE, 3, u64::from(mman::MAP_PRIVATE), fd as u64, 0];
    let view = k
        .system_call_shared(0, nr::MMAP, private)
        .expect("made with shared access") as u64;
    assert_eq!(calls(&k), 4);
    assert_eq!(k.mapped_shared.lock().len(), 1);
    poke(&mut k, pid, view, b"MINE");
    assert_eq!(peek(&mut k, pid, view, 4), b"MINE");
    assert_eq!(
        peek(&mut k, pid, mapped, 4),
        b"\x7fELF",
        "the file unchanged"
    );
    // With the kernel heap at its reserve the writing way decides.
    k.platform.heap_room = Some(0);
    assert_eq!(
        k.system_call_shared(0, nr::MMAP, [0, PAGE, 3, anon, none, 0]),
        None
    );
}

#[test]
fn brk_is_made_with_shared_access_when_the_heap_grows_in_place() {
    let mut k = kernel();
    let pid = spawn_linux(&mut k);
    k.processes_mut().set_cpu(0);
    assert!(k.processes_mut().pick_next().is_some());
    let space = k.processes().get(pid).unwrap().space;
    let brk = |k: &K, addr: u64| k.system_call_shared(0, nr::BRK, [addr, 0, 0, 0, 0, 0]);
    let calls = |k: &K| k.memory().shared_brk_calls();
    let maps = |k: &K| k.memory().maps(space).count();
    let start = brk(&k, 0).expect("a query") as u64;
    assert_eq!(calls(&k), 1);
    // The first growth makes the heap's mapping: the writing way.
    assert_eq!(brk(&k, start + PAGE), None);
    let exclusive = |k: &mut K, addr: u64| sys(k, pid, nr::BRK, [addr, 0, 0, 0, 0, 0]);
    assert_eq!(exclusive(&mut k, start + PAGE), (start + PAGE) as i64);
    let heap_made = maps(&k);
    // Then it grows in place, and moves within its page end, shared.
    let grown = start + 3 * PAGE + 100;
    assert_eq!(brk(&k, grown), Some(grown as i64));
    assert_eq!(brk(&k, grown + 8), Some(grown as i64 + 8));
    assert_eq!(brk(&k, start - 1), Some(grown as i64 + 8), "below: stays");
    assert_eq!(calls(&k), 4);
    assert_eq!(maps(&k), heap_made, "the heap's one mapping grew");
    poke(&mut k, pid, grown + 7, b"x");
    assert_eq!(peek(&mut k, pid, grown + 7, 1), b"x");
    assert_eq!(
        peek(&mut k, pid, start + 2 * PAGE, 1),
        [0],
        "new pages zero"
    );
    assert_eq!(exclusive(&mut k, 0), grown as i64 + 8, "both ways agree");
    // A shrink unmaps: here the writing way (the test platform's page
    // table cannot change through a shared reference).
    assert_eq!(brk(&k, start + PAGE), None);
    assert_eq!(exclusive(&mut k, start + PAGE), (start + PAGE) as i64);
    // Another mapping in the way: the writing way, which refuses it.
    let fixed = u64::from(mman::MAP_PRIVATE | mman::MAP_ANON | mman::MAP_FIXED);
    let map = [start + 4 * PAGE, PAGE, 3, fixed, u64::MAX, 0];
    assert_eq!(sys(&mut k, pid, nr::MMAP, map), (start + 4 * PAGE) as i64);
    assert_eq!(brk(&k, start + 5 * PAGE), None);
    assert_eq!(exclusive(&mut k, start + 5 * PAGE), (start + PAGE) as i64);
    // Under RLIMIT_AS (which counts the break) the writing way decides.
    let limit = [(1u64 << 40).to_le_bytes(), u64::MAX.to_le_bytes()].concat();
    poke(&mut k, pid, SCRATCH, &limit);
    assert_eq!(sys(&mut k, pid, nr::SETRLIMIT, [9, SCRATCH, 0, 0, 0, 0]), 0);
    assert_eq!(brk(&k, start + 2 * PAGE), None);
    assert_eq!(calls(&k), 4);
}
