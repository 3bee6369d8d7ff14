//! The initial stack of a Linux program (System V x86_64 ABI): at the
//! stack pointer argc, then the argv pointers and a NULL, the envp
//! pointers and a NULL, the auxiliary vector (key, value pairs ending with
//! `AT_NULL`); above them the argument and environment strings, the
//! program's path (`AT_EXECFN`) and 16 random bytes (`AT_RANDOM`). The
//! stack pointer is 16-byte aligned, as the ABI requires at process entry.

use alloc::vec::Vec;

use neoos_abi::layout::STACK_TOP;
use neoos_abi::linux::auxv::*;
use neoos_abi::{PAGE_SIZE, TICKS_PER_SECOND};
use neoos_mm::Errno;

use super::program::PHENT;
use crate::stack::MAX_ARGUMENT_BYTES;

/// The environment every Linux program starts with: NeoOS has no shell
/// environment to inherit, so this is the whole of it.
pub const ENVIRONMENT: [&[u8]; 3] = [b"PATH=/bin", b"HOME=/", b"TERM=vt100"];

/// What the auxiliary vector tells a Linux program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuxValues {
    pub phdr: u64,
    pub phnum: u64,
    pub entry: u64,
    /// CPU feature bits (CPUID leaf 1, EDX), as Linux reports them.
    pub hwcap: u64,
    /// The bytes `AT_RANDOM` points to (libc seeds its stack guard with them).
    pub random: [u8; 16],
}

/// The initial stack block of a Linux program and the address it goes to
/// (its first stack pointer): arguments `argv`, environment `envp`,
/// program path `execfn`. `Inval` when it would exceed
/// [`MAX_ARGUMENT_BYTES`].
pub fn linux_stack_block<E: AsRef<[u8]>>(
    argv: &[Vec<u8>],
    envp: &[E],
    execfn: &[u8],
    aux: &AuxValues,
) -> Result<(Vec<u8>, u64), Errno> {
    let strings = 16
        + argv.iter().map(|a| a.len() + 1).sum::<usize>()
        + envp.iter().map(|e| e.as_ref().len() + 1).sum::<usize>()
        + execfn.len()
        + 1;
    let aux_pairs = 15;
    let words = 1 + argv.len() + 1 + envp.len() + 1 + 2 * aux_pairs;
    let vector = (words * 8).next_multiple_of(16);
    let total = vector + strings.next_multiple_of(16);
    if total > MAX_ARGUMENT_BYTES {
        return Err(Errno::Inval);
    }
    let base = STACK_TOP - total as u64;
    let mut block = crate::buffer::zeroed(total)?;
    let mut out = Writer {
        block: &mut block,
        base,
        word_at: 0,
        string_at: vector,
    };
    let random = out.bytes(&aux.random);
    out.word(argv.len() as u64);
    for arg in argv {
        let p = out.string(arg);
        out.word(p);
    }
    out.word(0);
    for env in envp {
        let p = out.string(env.as_ref());
        out.word(p);
    }
    out.word(0);
    let execfn = out.string(execfn);
    let auxv: [(u64, u64); 15] = [
        (AT_PHDR, aux.phdr),
        (AT_PHENT, PHENT),
        (AT_PHNUM, aux.phnum),
        (AT_PAGESZ, PAGE_SIZE as u64),
        (AT_ENTRY, aux.entry),
        (AT_UID, 0),
        (AT_EUID, 0),
        (AT_GID, 0),
        (AT_EGID, 0),
        (AT_SECURE, 0),
        (AT_HWCAP, aux.hwcap),
        (AT_CLKTCK, TICKS_PER_SECOND),
        (AT_RANDOM, random),
        (AT_EXECFN, execfn),
        (AT_NULL, 0),
    ];
    for (key, value) in auxv {
        out.word(key);
        out.word(value);
    }
    debug_assert_eq!(out.word_at, words * 8);
    Ok((block, base))
}

/// Fills a stack block: words from the bottom up, strings above them.
struct Writer<'a> {
    block: &'a mut [u8],
    base: u64,
    word_at: usize,
    string_at: usize,
}

impl Writer<'_> {
    /// Appends one word of the vector.
    fn word(&mut self, w: u64) {
        self.block[self.word_at..self.word_at + 8].copy_from_slice(&w.to_le_bytes());
        self.word_at += 8;
    }
    /// Places `bytes` in the string area; returns their user address.
    fn bytes(&mut self, bytes: &[u8]) -> u64 {
        let at = self.string_at;
        self.block[at..at + bytes.len()].copy_from_slice(bytes);
        self.string_at += bytes.len();
        self.base + at as u64
    }
    /// Places `s` and a NUL in the string area; returns its user address.
    fn string(&mut self, s: &[u8]) -> u64 {
        let p = self.bytes(s);
        self.string_at += 1;
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn word(block: &[u8], base: u64, addr: u64) -> u64 {
        let at = (addr - base) as usize;
        u64::from_le_bytes(block[at..at + 8].try_into().unwrap())
    }

    fn string(block: &[u8], base: u64, addr: u64) -> Vec<u8> {
        let at = (addr - base) as usize;
        let len = block[at..].iter().position(|&b| b == 0).unwrap();
        block[at..at + len].to_vec()
    }

    const AUX: AuxValues = AuxValues {
        phdr: 0x40_0040,
        phnum: 7,
        entry: 0x40_1000,
        hwcap: 0x178b_fbff,
        random: [7; 16],
    };

    /// The auxiliary vector of `block` (starting after envp's NULL at `at`).
    fn auxv(block: &[u8], base: u64, mut at: u64) -> Vec<(u64, u64)> {
        let mut pairs = vec![];
        loop {
            let (k, v) = (word(block, base, at), word(block, base, at + 8));
            pairs.push((k, v));
            at += 16;
            if k == AT_NULL {
                return pairs;
            }
        }
    }

    #[test]
    fn the_stack_holds_argc_argv_envp_and_the_auxiliary_vector() {
        let argv = vec![b"/user/hello".to_vec(), b"-v".to_vec()];
        let (block, rsp) = linux_stack_block(&argv, &ENVIRONMENT, b"/user/hello", &AUX).unwrap();
        assert_eq!(rsp % 16, 0, "rsp is 16-byte aligned at entry");
        assert_eq!(rsp + block.len() as u64, STACK_TOP);
        assert_eq!(word(&block, rsp, rsp), 2);
        for (i, arg) in argv.iter().enumerate() {
            let p = word(&block, rsp, rsp + 8 + 8 * i as u64);
            assert_eq!(&string(&block, rsp, p), arg);
        }
        assert_eq!(word(&block, rsp, rsp + 24), 0, "argv ends with NULL");
        let envp = rsp + 32;
        for (i, env) in ENVIRONMENT.iter().enumerate() {
            let p = word(&block, rsp, envp + 8 * i as u64);
            assert_eq!(&string(&block, rsp, p), env);
        }
        let after_env = envp + 8 * ENVIRONMENT.len() as u64;
        assert_eq!(word(&block, rsp, after_env), 0, "envp ends with NULL");
        let pairs = auxv(&block, rsp, after_env + 8);
        let get = |key| pairs.iter().find(|(k, _)| *k == key).map(|&(_, v)| v);
        assert_eq!(get(AT_PHDR), Some(AUX.phdr));
        assert_eq!(get(AT_PHENT), Some(56));
        assert_eq!(get(AT_PHNUM), Some(7));
        assert_eq!(get(AT_PAGESZ), Some(4096));
        assert_eq!(get(AT_ENTRY), Some(AUX.entry));
        assert_eq!(get(AT_HWCAP), Some(AUX.hwcap));
        for key in [AT_UID, AT_EUID, AT_GID, AT_EGID, AT_SECURE] {
            assert_eq!(get(key), Some(0), "key {key}");
        }
        let random = get(AT_RANDOM).unwrap();
        let at = (random - rsp) as usize;
        assert_eq!(block[at..at + 16], [7; 16]);
        assert_eq!(string(&block, rsp, get(AT_EXECFN).unwrap()), b"/user/hello");
        assert_eq!(pairs.last(), Some(&(AT_NULL, 0)));
    }

    #[test]
    fn every_pointer_lands_inside_the_block() {
        let argv = vec![b"a".to_vec()];
        let (block, rsp) = linux_stack_block::<&[u8]>(&argv, &[], b"a", &AUX).unwrap();
        let end = rsp + block.len() as u64;
        let p = word(&block, rsp, rsp + 8);
        assert!(p > rsp && p < end);
        assert_eq!(word(&block, rsp, rsp + 24), 0, "empty envp is one NULL");
    }

    #[test]
    fn alignment_holds_for_every_count_of_arguments() {
        for n in 0..6 {
            let argv: Vec<Vec<u8>> = (0..n).map(|i| vec![b'x'; i + 1]).collect();
            let (_, rsp) = linux_stack_block(&argv, &ENVIRONMENT, b"x", &AUX).unwrap();
            assert_eq!(rsp % 16, 0, "{n} arguments");
        }
    }

    #[test]
    fn arguments_over_the_limit_are_refused() {
        let big = vec![b'a'; MAX_ARGUMENT_BYTES];
        assert_eq!(
            linux_stack_block(&[big], &ENVIRONMENT, b"a", &AUX),
            Err(Errno::Inval)
        );
    }
}
