//! The initial user stack of a program: argc, the argv pointers, a NULL, then
//! the argument strings, placed just below `STACK_TOP` and 16-byte aligned.

use alloc::vec::Vec;

use neoos_abi::layout::STACK_TOP;
use neoos_mm::Errno;

/// Most bytes of arguments (strings and pointers) a program may get.
pub const MAX_ARGUMENT_BYTES: usize = 64 * 1024;

/// The argument block for `argv` and the address it goes to (the program's
/// first stack pointer). `Inval` when it would exceed [`MAX_ARGUMENT_BYTES`].
pub fn argument_block(argv: &[Vec<u8>]) -> Result<(Vec<u8>, u64), Errno> {
    let strings: usize = argv.iter().map(|a| a.len() + 1).sum();
    let pointers = (argv.len() + 2) * 8;
    let total = (pointers + strings).next_multiple_of(16);
    if total > MAX_ARGUMENT_BYTES {
        return Err(Errno::Inval);
    }
    let base = STACK_TOP - total as u64;
    let mut block = crate::buffer::zeroed(total)?;
    block[..8].copy_from_slice(&(argv.len() as u64).to_le_bytes());
    let mut string_at = pointers;
    for (i, arg) in argv.iter().enumerate() {
        let pointer = base + string_at as u64;
        block[8 + i * 8..16 + i * 8].copy_from_slice(&pointer.to_le_bytes());
        block[string_at..string_at + arg.len()].copy_from_slice(arg);
        string_at += arg.len() + 1;
    }
    Ok((block, base))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn word(block: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(block[at..at + 8].try_into().unwrap())
    }

    #[test]
    fn block_holds_argc_pointers_null_and_strings() {
        let argv = vec![b"/bin/echo".to_vec(), b"hi".to_vec()];
        let (block, base) = argument_block(&argv).unwrap();
        assert_eq!(base % 16, 0);
        assert_eq!(base + block.len() as u64, STACK_TOP);
        assert_eq!(word(&block, 0), 2);
        assert_eq!(word(&block, 24), 0, "argv ends with NULL");
        for (i, arg) in argv.iter().enumerate() {
            let at = (word(&block, 8 + i * 8) - base) as usize;
            assert_eq!(&block[at..at + arg.len()], &arg[..]);
            assert_eq!(block[at + arg.len()], 0, "string {i} ends with NUL");
        }
    }

    #[test]
    fn empty_argv_is_argc_zero_and_null() {
        let (block, base) = argument_block(&[]).unwrap();
        assert_eq!(block.len(), 16);
        assert_eq!(base, STACK_TOP - 16);
        assert_eq!((word(&block, 0), word(&block, 8)), (0, 0));
    }

    #[test]
    fn arguments_over_the_limit_are_refused() {
        let big = vec![b'a'; MAX_ARGUMENT_BYTES];
        assert_eq!(argument_block(&[big]), Err(Errno::Inval));
        let fits = vec![b'a'; MAX_ARGUMENT_BYTES - 64];
        assert!(argument_block(&[fits]).is_ok());
    }
}
