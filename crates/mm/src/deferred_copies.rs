//! Copy-on-write copies made outside the kernel's lock: with several CPUs
//! a page fault's first attempt does not copy the page a write breaks
//! away from; it stops, changing nothing, with
//! [`FaultError::WaitForCopy`](crate::FaultError::WaitForCopy) and the
//! source frame ([`MemorySystem::copy_waited_for`]). The kernel copies that
//! frame with no lock held and faults again from scratch; the second
//! attempt never defers, and its [`FrameSource::copy_of`](crate::FrameSource::copy_of)
//! takes the copy made beforehand if the platform can vouch that it is
//! still a copy of the frame the fault now asks for (else it copies then).
//! Whether the copy is still good is the platform's question (it knows
//! which frames were freed meanwhile); the core only never changes anything
//! before it knows whether the fault copies.

use crate::errno::PageError;
use crate::hw::{Frame, Io};
use crate::object::ObjectStore;
use crate::system::MemorySystem;

/// The store's part: whether copies may be deferred at all (set by the
/// kernel: only worth it with several CPUs), whether the fault under way
/// is a fault again (which never defers), and the frame the last deferred
/// copy was of. A fault defers its copy when it defers its reads (a user
/// fault's attempts, and only those), copies may be deferred, and it is
/// not a fault again: the first attempt's hot path sets nothing more than
/// it did.
#[derive(Debug, Default)]
pub(crate) struct DeferredCopies {
    enabled: bool,
    pub(crate) again: bool,
    source: Option<Frame>,
}

impl ObjectStore {
    /// A copy of page frame `src` for a copy-on-write break, counted; or,
    /// when the fault under way defers its copies, `Copying` with `src`
    /// noted and nothing changed.
    pub(crate) fn copy_page(&mut self, io: &mut Io, src: Frame) -> Result<Frame, PageError> {
        if self.reads.defer && self.copies.enabled && !self.copies.again {
            self.copies.source = Some(src);
            return Err(PageError::Copying);
        }
        let copy = io.frames.copy_of(src).ok_or(PageError::NoMem)?;
        *self.frames_in_use.get_mut() += 1;
        Ok(copy)
    }
}

impl MemorySystem {
    /// Whether the first attempt of a user fault
    /// ([`Self::handle_fault_deferring_reads`]) leaves its copy-on-write
    /// copy to its caller (`WaitForCopy`). Off by default: with one CPU
    /// there is no one to run while the copy is made, and the second
    /// attempt only costs.
    pub fn set_copies_deferred(&mut self, on: bool) {
        self.store.copies.enabled = on;
    }

    /// The frame the last fault that ended in `WaitForCopy` was to copy
    /// (once).
    pub fn copy_waited_for(&mut self) -> Option<Frame> {
        self.store.copies.source.take()
    }
}
