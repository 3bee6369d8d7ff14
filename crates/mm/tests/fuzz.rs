//! Fuzz-style property test: random raw system-call arguments (biased toward
//! boundaries) for every entry point. Nothing may panic, frame accounting
//! must stay consistent, and teardown must give every frame back.

use neoos_abi::layout::{MMAP_TOP, USER_BASE, USER_END};
use neoos_mm::testing::Machine;
use neoos_mm::{Access, FileAccess, FileId, ShmId};
use proptest::prelude::*;

fn word() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(4095),
        Just(4096),
        Just(8192),
        Just(USER_BASE),
        Just(MMAP_TOP - 4096),
        Just(MMAP_TOP),
        Just(USER_END - 4096),
        Just(USER_END),
        Just(u64::MAX),
        Just(u64::MAX - 4095),
        Just(i64::MAX as u64),
        Just(i64::MIN as u64),
        Just(1 << 40),
        (0u64..64).prop_map(|p| MMAP_TOP - p * neoos_mm::PAGE_SIZE),
        (0u64..64).prop_map(|p| 0x4000_0000 + p * neoos_mm::PAGE_SIZE),
        any::<u64>(),
    ]
}

fn flags() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..0x40, any::<u32>()]
}

#[derive(Clone, Debug)]
enum Call {
    NeoMmap(u64, u8, u64, u64),
    NeoMunmap(u64, u64),
    Mmap(u64, u64, u32, u32, Option<(u64, u8)>, u64),
    Munmap(u64, u64),
    Msync(u64, u64, u32),
    Mprotect(u64, u64, u32),
    Madvise(u64, u64, u32),
    Mincore(u64, u64, usize),
    Fault(u64, u8),
    CopyIn(u64, usize),
    CopyOut(u64, usize, bool),
    Cstr(u64, usize),
    FileRead(u64, u64, usize),
    FileWrite(u64, u64, usize),
    Truncate(u64, u64),
    Shmget(u64, u64, u32),
    Shmat(u64, u64, u32),
    Shmdt(u64),
    Shmctl(u64, u32),
    Fork,
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        (word(), 0..3u8, word(), word()).prop_map(|(f, a, o, s)| Call::NeoMmap(f % 3, a, o, s)),
        (word(), word()).prop_map(|(a, s)| Call::NeoMunmap(a, s)),
        (
            word(),
            word(),
            flags(),
            flags(),
            proptest::option::of((0u64..3, 0..3u8)),
            word()
        )
            .prop_map(|(h, l, p, f, file, o)| Call::Mmap(h, l, p, f, file, o)),
        (word(), word()).prop_map(|(a, l)| Call::Munmap(a, l)),
        (word(), word(), flags()).prop_map(|(a, l, f)| Call::Msync(a, l, f)),
        (word(), word(), flags()).prop_map(|(a, l, f)| Call::Mprotect(a, l, f)),
        (word(), word(), flags()).prop_map(|(a, l, f)| Call::Madvise(a, l, f)),
        (word(), word(), 0usize..64).prop_map(|(a, l, n)| Call::Mincore(a, l, n)),
        (word(), 0..3u8).prop_map(|(a, k)| Call::Fault(a, k)),
        (word(), 0usize..10000).prop_map(|(a, n)| Call::CopyIn(a, n)),
        (word(), 0usize..10000, any::<bool>()).prop_map(|(a, n, f)| Call::CopyOut(a, n, f)),
        (word(), 0usize..5000).prop_map(|(a, n)| Call::Cstr(a, n)),
        (0u64..3, word(), 0usize..10000).prop_map(|(f, o, n)| Call::FileRead(f, o, n)),
        (0u64..3, word(), 0usize..10000).prop_map(|(f, o, n)| Call::FileWrite(f, o, n)),
        (0u64..3, word()).prop_map(|(f, s)| Call::Truncate(f, s)),
        (word(), word(), flags()).prop_map(|(k, s, f)| Call::Shmget(k % 4, s, f)),
        (0u64..8, word(), flags()).prop_map(|(i, a, f)| Call::Shmat(i, a, f)),
        word().prop_map(Call::Shmdt),
        (0u64..8, 0u32..4).prop_map(|(i, c)| Call::Shmctl(i, c)),
        Just(Call::Fork),
    ]
}

fn access(k: u8) -> FileAccess {
    [
        FileAccess::ReadOnly,
        FileAccess::WriteOnly,
        FileAccess::ReadWrite,
    ][k as usize % 3]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn no_input_panics(calls in proptest::collection::vec(call(), 1..40), frame_limit in proptest::option::of(1usize..64)) {
        let mut m = Machine::new();
        m.frames.limit = frame_limit.map(|l| l + 2);
        let mut spaces = vec![m.new_space()];
        let files = [m.create_file(1, &[7u8; 10000]), m.create_file(2, &[]), FileId(99)];
        for c in &calls {
            let p = *spaces.last().unwrap();
            match *c {
                Call::NeoMmap(f, a, o, s) => { let _ = m.with(p, |vm, hw| vm.neo_mmap(p, hw, files[f as usize], access(a), o as i64, s as i64)); }
                Call::NeoMunmap(a, s) => { let _ = m.with(p, |vm, hw| vm.neo_munmap(p, hw, a, s as i64)); }
                Call::Mmap(h, l, pr, f, file, o) => {
                    let file = file.map(|(i, a)| (files[i as usize], access(a)));
                    let _ = m.with(p, |vm, hw| vm.mmap(p, hw, h, l, pr, f, file, o as i64));
                }
                Call::Munmap(a, l) => { let _ = m.with(p, |vm, hw| vm.munmap(p, hw, a, l)); }
                Call::Msync(a, l, f) => { let _ = m.with(p, |vm, hw| vm.msync(p, hw, a, l, f)); }
                Call::Mprotect(a, l, f) => { let _ = m.with(p, |vm, hw| vm.mprotect(p, hw, a, l, f)); }
                Call::Madvise(a, l, f) => {
                    // WILLNEED over a huge range is legitimately long: keep it bounded.
                    let l = if f == 3 { l.min(1 << 20) } else { l };
                    let _ = m.with(p, |vm, hw| vm.madvise(p, hw, a, l, f));
                }
                Call::Mincore(a, l, n) => { let mut v = vec![0u8; n]; let _ = m.vm.mincore(p, a, l, &mut v); }
                Call::Fault(a, k) => {
                    let acc = [Access::Read, Access::Write, Access::Exec][k as usize];
                    let _ = m.with(p, |vm, hw| vm.handle_fault(p, hw, a, acc));
                }
                Call::CopyIn(a, n) => { let mut b = vec![0u8; n]; let _ = m.with(p, |vm, hw| vm.copy_from_user(p, hw, a, &mut b)); }
                Call::CopyOut(a, n, f) => { let b = vec![1u8; n]; let _ = m.with(p, |vm, hw| vm.copy_to_user(p, hw, a, &b, f)); }
                Call::Cstr(a, n) => { let _ = m.with(p, |vm, hw| vm.read_user_cstr(p, hw, a, n)); }
                Call::FileRead(f, o, n) => { let mut b = vec![0u8; n]; let _ = m.with_io(|vm, io| vm.file_read(io, files[f as usize], o, &mut b)); }
                Call::FileWrite(f, o, n) => {
                    // Writes far past the end would only allocate zero pages: keep offsets sane.
                    let o = o % (1 << 24);
                    let b = vec![3u8; n];
                    let _ = m.with_io(|vm, io| vm.file_write(io, files[f as usize], o, &b));
                }
                Call::Truncate(f, s) => { let _ = m.with_io(|vm, io| vm.file_truncate(io, files[f as usize], s % (1 << 24))); }
                Call::Shmget(k, s, f) => { let _ = m.vm.shmget(k as i64, s, f); }
                Call::Shmat(i, a, f) => { let _ = m.with(p, |vm, hw| vm.shmat(p, hw, ShmId(i), a, f)); }
                Call::Shmdt(a) => { let _ = m.with(p, |vm, hw| vm.shmdt(p, hw, a)); }
                Call::Shmctl(i, c) => { let _ = m.with_io(|vm, io| vm.shmctl(io, ShmId(i), c)); }
                Call::Fork => {
                    if spaces.len() < 3 {
                        if let Ok(c) = m.fork(p) { spaces.push(c); }
                    }
                }
            }
            prop_assert_eq!(m.vm.stats().frames_in_use, m.frames.live_count() as u64);
        }
        for p in spaces {
            m.exit(p).unwrap();
        }
        for id in 0..8 {
            let _ = m.with_io(|vm, io| vm.shmctl(io, ShmId(id), neoos_abi::shm::IPC_RMID));
        }
        let _ = m.close(files[0]);
        let _ = m.close(files[1]);
        prop_assert_eq!(m.frames.live_count(), 0);
        prop_assert_eq!(m.vm.object_count(), 0);
    }
}
