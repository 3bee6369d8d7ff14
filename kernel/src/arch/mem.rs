//! The memory primitives LLVM calls (`memcpy`, `memmove`, `memset`, `memcmp`,
//! `bcmp`): the precompiled `compiler_builtins` of the host target does not
//! export them. Copies and fills use `rep movsq`/`rep stosq` for whole
//! quadwords and `rep movsb`/`rep stosb` for the tail (string instructions,
//! so LLVM cannot turn them back into calls to these very functions; eight
//! bytes per step also keeps frame zeroing and copying short).

use core::arch::asm;

/// Copies `n` bytes forward.
///
/// # Safety
/// `dst` and `src` must be valid for `n` bytes; when they overlap, `dst` must not
/// be above `src`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges are valid for `n` bytes; the
    // quadword copy covers the first `n / 8 * 8` bytes, the byte copy the rest,
    // both moving forward from where the previous one stopped.
    unsafe {
        asm!("rep movsq", "mov rcx, {tail}", "rep movsb",
             tail = in(reg) n % 8,
             inout("rcx") n / 8 => _, inout("rdi") dst => _, inout("rsi") src => _,
             options(nostack, preserves_flags));
    }
    dst
}

/// Copies `n` bytes between possibly overlapping ranges.
///
/// # Safety
/// `dst` and `src` must be valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) || (dst as usize) >= (src as usize).wrapping_add(n) {
        // SAFETY: forward copy is correct when dst is below src or the ranges are apart.
        return unsafe { memcpy(dst, src, n) };
    }
    // SAFETY: copy backwards (direction flag set for the copy, cleared after):
    // first the `n % 8` bytes at the top, one at a time from the last byte,
    // then the quadwords below them from the last one down. Every access lies
    // in the two ranges, which the caller guarantees valid.
    unsafe {
        asm!("std", "rep movsb",
             "sub rsi, 7", "sub rdi, 7", "mov rcx, {quads}", "rep movsq", "cld",
             quads = in(reg) n / 8,
             inout("rcx") n % 8 => _, inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
             options(nostack));
    }
    dst
}

/// Fills `n` bytes with `value`.
///
/// # Safety
/// `dst` must be valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dst: *mut u8, value: i32, n: usize) -> *mut u8 {
    let byte = value as u8 as u64;
    // SAFETY: the caller guarantees the range is valid for writes; the
    // quadword fill covers the first `n / 8 * 8` bytes, the byte fill the rest.
    unsafe {
        asm!("rep stosq", "mov rcx, {tail}", "rep stosb",
             tail = in(reg) n % 8,
             inout("rcx") n / 8 => _, inout("rdi") dst => _,
             in("rax") byte * 0x0101_0101_0101_0101,
             options(nostack, preserves_flags));
    }
    dst
}

/// Compares `n` bytes; returns the difference of the first differing pair.
///
/// # Safety
/// `a` and `b` must be valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n and the caller guarantees both ranges are valid for n bytes.
        let (x, y) = unsafe {
            (
                core::ptr::read_volatile(a.add(i)),
                core::ptr::read_volatile(b.add(i)),
            )
        };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

/// Equality form of [`memcmp`].
///
/// # Safety
/// `a` and `b` must be valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

/// Referenced by the precompiled `alloc`; never called with `panic = "abort"`.
#[unsafe(no_mangle)]
pub extern "C" fn _Unwind_Resume() -> ! {
    super::cpu::halt_forever()
}

/// Referenced by the precompiled `core`; never called with `panic = "abort"`.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}
