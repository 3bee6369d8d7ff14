//! Kernel buffers sized by a program's request: their allocation is
//! fallible, so a request too large for the kernel heap fails the call with
//! `NoMem` instead of stopping the kernel.

use alloc::vec::Vec;

use neoos_mm::Errno;

/// `len` zero bytes, or `NoMem`.
pub(crate) fn zeroed(len: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(len).map_err(|_| Errno::NoMem)?;
    buf.resize(len, 0);
    Ok(buf)
}
