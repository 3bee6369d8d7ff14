//! Kernel console output. Kernel lines start with `[neoos]` so they stand
//! apart from what programs write.

/// Prints a kernel log line.
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => {
        $crate::arch::serial::write_fmt(format_args!("[neoos] {}\n", format_args!($($arg)*)))
    };
}

/// Prints without the kernel prefix (for continuing a line or raw reports).
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => {
        $crate::arch::serial::write_fmt(format_args!($($arg)*))
    };
}
