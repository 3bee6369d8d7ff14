//! The NeoOS numbering (crates/abi `nr`): call number and six registers
//! (`rdi rsi rdx r10 r8 r9`) to a typed [`Call`]. Another numbering is one
//! more function like [`decode_neo`] producing the same calls.

use neoos_abi::nr;

use super::{Call, FileCall, IpcCall, MemoryCall, Personality, ProcessCall, ShmLayout, UserPtr};
use crate::linux::LinuxCall;

/// A decoded call and the result convention of its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub call: Call,
    pub personality: Personality,
}

/// The argument registers of a call.
struct Regs([u64; 6]);

impl Regs {
    /// Argument `i` as a C `int` (the low 32 bits, sign-extended).
    fn int(&self, i: usize) -> i64 {
        self.0[i] as u32 as i32 as i64
    }
    /// Argument `i` as a 64-bit word.
    fn word(&self, i: usize) -> u64 {
        self.0[i]
    }
    /// Argument `i` as a C `unsigned int` (flags).
    fn flags(&self, i: usize) -> u32 {
        self.0[i] as u32
    }
    /// Argument `i` as a user pointer.
    fn ptr(&self, i: usize) -> UserPtr {
        UserPtr(self.0[i])
    }
}

/// What a number that is in no table returns in the NeoOS numbering
/// (docs/abi.md), whatever its range.
pub const NEO_UNKNOWN_CALL: i64 = neoos_abi::neo::E_NOT_IMPL;

/// Decodes NeoOS call `number` with argument registers `regs`; `None` for a
/// number that is no call (the caller returns [`NEO_UNKNOWN_CALL`]).
#[inline]
pub fn decode_neo(number: usize, regs: [u64; 6]) -> Option<Decoded> {
    let personality = if nr::is_neo_convention(number) {
        Personality::Neo
    } else {
        Personality::Posix
    };
    let a = Regs(regs);
    use Call::{Files as F, Ipc as I, Linux as L, Memory as M, Processes as P};
    let call = match number {
        nr::EXIT => P(ProcessCall::Exit {
            status: a.int(0) & 0xff,
        }),
        nr::WRITE => F(FileCall::Write {
            fd: a.int(0),
            buf: a.ptr(1),
            count: a.int(2),
        }),
        nr::READ => F(FileCall::Read {
            fd: a.int(0),
            buf: a.ptr(1),
            count: a.int(2),
        }),
        nr::OPEN => F(FileCall::Open {
            path: a.ptr(0),
            mode: a.int(1),
        }),
        nr::CLOSE => F(FileCall::Close { fd: a.int(0) }),
        nr::NEO_MMAP => M(MemoryCall::NeoMmap {
            fd: a.int(0),
            offset: a.int(1),
            size: a.int(2),
        }),
        nr::NEO_MUNMAP => M(MemoryCall::NeoMunmap {
            addr: a.word(0),
            size: a.int(1),
        }),
        nr::RUN => P(ProcessCall::Run {
            path: a.ptr(0),
            argv: a.ptr(1),
        }),
        nr::WAIT => P(ProcessCall::Wait { status: a.ptr(0) }),
        nr::KILL => P(ProcessCall::Kill { pid: a.int(0) }),
        nr::YIELD => P(ProcessCall::Yield),
        nr::STAT => F(FileCall::Stat {
            path: a.ptr(0),
            out: a.ptr(1),
        }),
        nr::MEMINFO => M(MemoryCall::MemInfo { out: a.ptr(0) }),
        nr::MAPS => M(MemoryCall::Maps {
            buf: a.ptr(0),
            len: a.int(1),
        }),
        nr::GETPID => P(ProcessCall::GetPid),
        nr::FSYNC => F(FileCall::Fsync { fd: a.int(0) }),
        nr::READDIR => F(FileCall::ReadDir {
            path: a.ptr(0),
            buf: a.ptr(1),
            len: a.int(2),
        }),
        nr::READ_CONSOLE => F(FileCall::ReadConsole {
            buf: a.ptr(0),
            count: a.int(1),
        }),
        nr::TICKS => P(ProcessCall::Ticks),
        nr::THREAD_CREATE => P(ProcessCall::ThreadCreate {
            entry: a.word(0),
            stack: a.word(1),
            arg: a.word(2),
        }),
        nr::THREAD_EXIT => P(ProcessCall::ThreadExit {
            status: a.int(0) & 0xff,
        }),
        nr::THREAD_JOIN => P(ProcessCall::ThreadJoin {
            tid: a.int(0),
            status: a.ptr(1),
        }),
        nr::MMAP => M(MemoryCall::Mmap {
            addr: a.word(0),
            len: a.word(1),
            prot: a.flags(2),
            flags: a.flags(3),
            fd: a.int(4),
            offset: a.word(5) as i64,
        }),
        nr::MUNMAP => M(MemoryCall::Munmap {
            addr: a.word(0),
            len: a.word(1),
        }),
        nr::MSYNC => M(MemoryCall::Msync {
            addr: a.word(0),
            len: a.word(1),
            flags: a.flags(2),
        }),
        nr::MPROTECT => M(MemoryCall::Mprotect {
            addr: a.word(0),
            len: a.word(1),
            prot: a.flags(2),
        }),
        nr::MADVISE => M(MemoryCall::Madvise {
            addr: a.word(0),
            len: a.word(1),
            advice: a.flags(2),
        }),
        nr::MINCORE => M(MemoryCall::Mincore {
            addr: a.word(0),
            len: a.word(1),
            vec: a.ptr(2),
        }),
        nr::GETPAGESIZE => M(MemoryCall::GetPageSize),
        nr::SIGACTION => L(LinuxCall::SigAction {
            sig: a.flags(0),
            act: a.ptr(1),
            old: a.ptr(2),
            setsize: a.word(3),
        }),
        nr::SIGPROCMASK => L(LinuxCall::SigProcMask {
            how: a.flags(0),
            set: a.ptr(1),
            old: a.ptr(2),
            setsize: a.word(3),
        }),
        nr::SIGRETURN => L(LinuxCall::SigReturn),
        nr::SIGNAL => L(LinuxCall::Kill {
            pid: a.int(0),
            sig: a.flags(1),
        }),
        nr::SHMGET => I(IpcCall::ShmGet {
            key: a.word(0) as i64,
            size: a.word(1),
            flags: a.word(2),
        }),
        nr::SHMAT => I(IpcCall::ShmAt {
            id: a.word(0),
            addr: a.word(1),
            flags: a.flags(2),
        }),
        nr::SHMDT => I(IpcCall::ShmDt { addr: a.word(0) }),
        nr::SHMCTL => I(IpcCall::ShmCtl {
            id: a.word(0),
            cmd: a.flags(1),
            buf: a.ptr(2),
            layout: ShmLayout::Neo,
        }),
        nr::FORK => P(ProcessCall::Fork),
        _ => return None,
    };
    Some(Decoded { call, personality })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_arguments_use_the_low_32_bits_sign_extended() {
        let d = decode_neo(
            nr::WRITE,
            [0xffff_ffff_0000_0001, 0x1000, 0xffff_ffff, 0, 0, 0],
        );
        assert_eq!(
            d.unwrap().call,
            Call::Files(FileCall::Write {
                fd: 1,
                buf: UserPtr(0x1000),
                count: -1
            })
        );
    }

    #[test]
    fn exit_keeps_the_low_eight_bits_of_the_status() {
        let d = decode_neo(nr::EXIT, [0x1_2345, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(d.call, Call::Processes(ProcessCall::Exit { status: 0x45 }));
    }

    #[test]
    fn mmap_takes_all_six_registers_with_a_64_bit_offset() {
        let regs = [0x4000, 8192, 3, 1, 5, 1 << 40];
        let d = decode_neo(nr::MMAP, regs).unwrap();
        assert_eq!(d.personality, Personality::Posix);
        assert_eq!(
            d.call,
            Call::Memory(MemoryCall::Mmap {
                addr: 0x4000,
                len: 8192,
                prot: 3,
                flags: 1,
                fd: 5,
                offset: 1 << 40
            })
        );
    }

    #[test]
    fn the_personality_follows_the_number_range_and_thread_calls_are_neo() {
        assert!(nr::is_neo_convention(nr::THREAD_JOIN));
        assert!(!nr::is_neo_convention(nr::FORK));
        for number in 1..nr::COUNT {
            let d = decode_neo(number, [0; 6]).expect("every number below COUNT is a call");
            let posix = !nr::is_neo_convention(number);
            assert_eq!(d.personality == Personality::Posix, posix, "call {number}");
        }
    }

    #[test]
    fn numbers_outside_the_table_decode_to_nothing() {
        assert_eq!(decode_neo(0, [0; 6]), None);
        assert_eq!(decode_neo(nr::COUNT, [0; 6]), None);
        assert_eq!(decode_neo(usize::MAX, [0; 6]), None);
    }

    #[test]
    fn results_convert_per_personality() {
        use neoos_abi::{errno, neo};
        use neoos_mm::Errno;
        assert_eq!(Personality::Neo.result(Err(Errno::BadFd)), neo::E_INVAL);
        assert_eq!(Personality::Posix.result(Err(Errno::BadFd)), -errno::EBADF);
        assert_eq!(Personality::Posix.result(Ok(7)), 7);
        assert_eq!(NEO_UNKNOWN_CALL, neo::E_NOT_IMPL);
    }
}
