//! The NeoOS kernel's hardware-free logic: the file system and RAM disk,
//! descriptor tables, System V segment records, the process table and its
//! life cycle, program loading and the initial stack, and the system-call
//! layer (decoding and handlers per family), and the Linux personality
//! (its numbering, initial stack and calls). The kernel supplies the
//! machine through [`Platform`] and keeps traps, context switching and
//! drivers; on the host, tests run this crate over the mapping core's
//! software machine (`neoos-mm` feature `testing`).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod buffer;
mod change_reads;
mod device_queue;
pub mod dirs;
pub mod disk_wait;
pub mod files;
pub mod flusher;
pub mod fs;
pub mod futex;
pub mod ipc;
pub mod kernel;
pub mod launch;
pub mod linux;
mod loader;
pub mod metadata_reads;
pub mod mount;
pub mod pipes;
pub mod platform;
pub mod process;
pub mod reclaim;
pub mod run_queues;
pub mod stack;
pub mod syscall;
pub mod threads;
pub mod timers;
pub mod user_reads;

#[cfg(test)]
mod test_platform;

pub use kernel::{FatalFault, FaultWait, Kernel};
pub use platform::Platform;
pub use process::{Pid, Tid};
#[cfg(test)]
mod disk_wait_tests;
#[cfg(test)]
mod kernel_tests;
#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod thread_tests;
