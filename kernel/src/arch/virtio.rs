//! The virtio block device (`-device virtio-blk-pci`), driven by the
//! `virtio-drivers` crate over its PCI transport, with this module as its
//! `Hal`: DMA memory comes from the kernel heap (an arena in the kernel
//! image, so physically contiguous: physical = virtual - KERNEL_BASE), and
//! MMIO BARs are reached through the direct map (which covers at least the
//! first 4 GiB, where the firmware places them).
//!
//! Reads and writes are interrupt-driven: the driver submits a request
//! (the crate's non-blocking `*_blocks_nb` calls), and the waiting CPU
//! sleeps (`sti; hlt`, entered with interrupts off right after seeing the
//! request unfinished, so a completion cannot slip in between) until the
//! device's interrupt, routed through the I/O APIC from the function's PCI
//! INTx line, wakes it. The interrupt handler ([`handle_interrupt`]) reads
//! the device's ISR status (which lowers the line) and signals end of
//! interrupt; it touches nothing else, so it never waits for the kernel
//! lock a waiter holds. Without a usable interrupt (no I/O APIC, no INTx
//! line, or a line that keeps firing for nobody) every wait polls.
//!
//! The block protocol is this module's own ([`BlockQueue`]: feature
//! negotiation, the request header and status, over the crate's PCI
//! transport and virtqueue), not the crate's `VirtIOBlk`: that one keeps
//! its queue private and has only a blocking, spinning flush, where a
//! write-back's flush is to be started and waited for like its writes.
//!
//! Started requests (a write-back's writes, [`VirtioDisk::start_write`],
//! and flush, [`VirtioDisk::start_flush`]; a read fault's reads,
//! [`VirtioDisk::start_read`]; see
//! `neoos_kernel_core::disk_wait`) are not waited for here: the device
//! keeps each one's header, status and data buffer in a slot until
//! [`VirtioDisk::requests_in_flight`] collects it (a read's stays there
//! until its bytes are taken), and the interrupt handler notes that
//! something completed ([`take_completion_note`]) for the scheduler to
//! look. Every other request first waits until no started one is in
//! flight, so at most one kind of request is on the queue and a block's
//! requests never race.

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use virtio_drivers::device::blk::SECTOR_SIZE;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::pci::bus::{Command, ConfigurationAccess, DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::{virtio_device_type, PciTransport};
use virtio_drivers::transport::{DeviceStatus, DeviceType, Transport};
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

use super::ioapic::{self, Route, DISK_VECTOR};
use super::paging::{
    direct_map_end, kernel_image_phys, kernel_stack_phys, phys_to_virt, DIRECT_MAP_BASE,
    KERNEL_BASE, KERNEL_STACK_AREA, KERNEL_STACK_AREA_SIZE,
};
use super::pci::{self, PortConfigAccess};

/// The `virtio-drivers` hardware layer of NeoOS.
pub struct KernelHal;

/// The layout of `pages` DMA pages; `None` for zero pages or an overflow.
fn dma_layout(pages: usize) -> Option<Layout> {
    if pages == 0 {
        return None;
    }
    Layout::from_size_align(pages.checked_mul(PAGE_SIZE)?, PAGE_SIZE).ok()
}

/// The physical address of a kernel buffer (kernel image, direct map, or a
/// kernel stack: physically contiguous heap blocks mapped in their own area).
fn kernel_virt_to_phys(virt: u64) -> PhysAddr {
    let stacks = KERNEL_STACK_AREA..KERNEL_STACK_AREA + KERNEL_STACK_AREA_SIZE;
    if stacks.contains(&virt) {
        kernel_stack_phys(virt)
            .unwrap_or_else(|| panic!("virtio: DMA buffer at unmapped stack address {virt:#x}"))
    } else if virt >= KERNEL_BASE {
        kernel_image_phys(virt)
    } else if virt >= DIRECT_MAP_BASE {
        virt - DIRECT_MAP_BASE
    } else {
        // The driver is only given kernel buffers; a user address here is
        // a kernel bug.
        panic!("virtio: DMA buffer at user address {virt:#x}");
    }
}

// SAFETY: `dma_alloc` returns zeroed, page-aligned, physically contiguous
// memory (a heap allocation inside the linearly mapped kernel image) that
// nothing else uses until `dma_dealloc`; `share` returns the physical
// address of the very buffer (kernel memory is linearly mapped, and x86 DMA
// is cache coherent, so no bounce buffer or flush is needed); `unshare` has
// nothing to undo.
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let Some(layout) = dma_layout(pages) else {
            return (0, NonNull::dangling());
        };
        // SAFETY: `dma_layout` returns only layouts of non-zero size with a
        // valid (page) alignment.
        let memory = unsafe { alloc_zeroed(layout) };
        match NonNull::new(memory) {
            Some(virt) => (kernel_virt_to_phys(virt.as_ptr() as u64), virt),
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        match dma_layout(pages) {
            Some(layout) => {
                // SAFETY: `vaddr` came from `dma_alloc` with this layout.
                unsafe { dealloc(vaddr.as_ptr(), layout) };
                0
            }
            None => -1,
        }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(phys_to_virt(paddr) as *mut u8).expect("direct map is not at 0")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        kernel_virt_to_phys(buffer.as_ptr() as *mut u8 as u64)
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// Most bytes one read or write request carries: a longer transfer goes
/// as several requests, one after the other. A request's data is one
/// segment (the buffer is physically contiguous), so the device's segment
/// limit (`seg_max`, at least 1) is never what bounds it; this is.
const MAX_REQUEST_BYTES: usize = 1 << 20;

/// Requests sent to the device since boot (reads, writes, flushes).
static REQUESTS: AtomicU64 = AtomicU64::new(0);
/// The device's interrupts taken since boot (its ISR status said so).
static INTERRUPTS: AtomicU64 = AtomicU64::new(0);
/// Write requests waited for as they were sent ([`VirtioDisk::write_sectors`]).
static WAITED_WRITES: AtomicU64 = AtomicU64::new(0);
/// Read requests waited for as they were sent ([`VirtioDisk::read_sectors`]).
static WAITED_READS: AtomicU64 = AtomicU64::new(0);
/// Interrupts on [`DISK_VECTOR`] in a row for which the device's ISR
/// status said nothing (another device holding a shared line asserted).
static UNCLAIMED_IN_A_ROW: AtomicU64 = AtomicU64::new(0);
/// After this many unclaimed interrupts in a row the line is masked and
/// the driver polls.
const UNCLAIMED_LIMIT: u64 = 100_000;
/// Set by the handler when the device said it used a request: the
/// scheduler then collects started writes ([`take_completion_note`]).
static COMPLETION_NOTED: AtomicBool = AtomicBool::new(false);
/// Direct-map address of the device's ISR status byte (0: none).
static ISR_STATUS: AtomicU64 = AtomicU64::new(0);
/// The GSI of the device's interrupt, and whether waits may sleep for it.
static INTERRUPT_GSI: AtomicU32 = AtomicU32::new(0);
static INTERRUPT_WIRED: AtomicBool = AtomicBool::new(false);
/// Whether request waits spin instead of sleeping (`idle=poll` on the
/// command line, as Linux's: under `-icount ... sleep=off` a halted CPU's
/// clock jumps to its next timer, so the benchmark's disk lines spin).
static POLL_WAITS: AtomicBool = AtomicBool::new(false);

/// Makes every later request wait spin on the queue instead of sleeping
/// until the completion interrupt (`idle=poll`).
pub fn poll_waits() {
    POLL_WAITS.store(true, Ordering::Relaxed);
}

/// Whether waits spin (`idle=poll`): the scheduler's idle loop spins too.
pub fn waits_poll() -> bool {
    POLL_WAITS.load(Ordering::Relaxed)
}

/// Handles the disk's interrupt (vector [`DISK_VECTOR`]): reads the
/// device's ISR status, which acknowledges it and lowers its line, counts
/// it, and signals end of interrupt to the local APIC. Takes no lock but
/// the I/O APIC's, and that only to give a line up that fires for nobody.
pub fn handle_interrupt() {
    let isr = ISR_STATUS.load(Ordering::Acquire);
    let status = if isr == 0 {
        0
    } else {
        // SAFETY: `isr` is the direct-map address of the device's ISR
        // status byte (inside its memory BAR, checked by
        // `isr_status_address`); reading it is how the device expects its
        // interrupt acknowledged, and has no other effect.
        unsafe { core::ptr::read_volatile(isr as *const u8) }
    };
    if status != 0 {
        INTERRUPTS.fetch_add(1, Ordering::Relaxed);
        UNCLAIMED_IN_A_ROW.store(0, Ordering::Relaxed);
        COMPLETION_NOTED.store(true, Ordering::Release);
    } else if UNCLAIMED_IN_A_ROW.fetch_add(1, Ordering::Relaxed) + 1 == UNCLAIMED_LIMIT {
        INTERRUPT_WIRED.store(false, Ordering::Release);
        let _ = ioapic::mask(INTERRUPT_GSI.load(Ordering::Relaxed));
    }
    super::apic::end_of_interrupt();
}

/// Whether the device completed something since the last call (the
/// scheduler's hint to collect started writes; polled devices never say).
pub fn take_completion_note() -> bool {
    COMPLETION_NOTED.swap(false, Ordering::AcqRel)
}

/// Whether the device completed something since the last
/// [`take_completion_note`].
pub fn completion_noted() -> bool {
    COMPLETION_NOTED.load(Ordering::Acquire)
}

/// What the disk driver has done since boot.
pub fn counters() -> neoos_ext2::DeviceCounters {
    neoos_ext2::DeviceCounters {
        requests: REQUESTS.load(Ordering::Relaxed),
        interrupts: INTERRUPTS.load(Ordering::Relaxed),
        waited_writes: WAITED_WRITES.load(Ordering::Relaxed),
        waited_reads: WAITED_READS.load(Ordering::Relaxed),
    }
}

/// The virtio-blk queue (the device has one request queue, number 0).
const QUEUE: u16 = 0;
/// Descriptors of the queue (a power of two the device must allow).
const QUEUE_SIZE: usize = 16;

/// Feature bits (virtio 1.x, 5.2.3 and 6): read-only, flush, indirect
/// descriptors, event indices, version 1: the set the crate's own driver
/// asks for. Indirect descriptors are negotiated but not used (the crate
/// builds them only with its `alloc` feature, off here).
const FEATURE_RO: u64 = 1 << 5;
const FEATURE_FLUSH: u64 = 1 << 9;
const FEATURE_INDIRECT_DESC: u64 = 1 << 28;
const FEATURE_EVENT_IDX: u64 = 1 << 29;
const FEATURE_VERSION_1: u64 = 1 << 32;
const SUPPORTED_FEATURES: u64 =
    FEATURE_RO | FEATURE_FLUSH | FEATURE_INDIRECT_DESC | FEATURE_EVENT_IDX | FEATURE_VERSION_1;

/// Request types (virtio 1.x, 5.2.6).
const REQUEST_IN: u32 = 0;
const REQUEST_OUT: u32 = 1;
const REQUEST_FLUSH: u32 = 4;
/// The status the device writes for a request that succeeded.
const STATUS_OK: u8 = 0;
/// The status byte before the device writes one (no status of the spec's).
const STATUS_UNSET: u8 = 0xFF;

/// A request's header as the device reads it: type, reserved, sector
/// (little-endian). Aligned to its size so that it never straddles a page
/// (a header on a kernel stack, whose pages are not contiguous).
#[repr(C, align(16))]
#[derive(Clone, Copy, Default)]
struct RequestHeader([u8; 16]);

impl RequestHeader {
    fn new(kind: u32, sector: u64) -> Self {
        let mut bytes = [0u8; 16];
        bytes[..4].copy_from_slice(&kind.to_le_bytes());
        bytes[8..].copy_from_slice(&sector.to_le_bytes());
        RequestHeader(bytes)
    }
}

/// What a request carries besides its header and status.
enum Payload<'a> {
    /// A read's buffer (the device writes it).
    Read(&'a mut [u8]),
    /// A write's bytes (the device reads them).
    Write(&'a [u8]),
    /// Nothing (a flush).
    Nothing,
}

/// The block protocol over the crate's transport and queue.
struct BlockQueue {
    transport: PciTransport,
    queue: VirtQueue<KernelHal, QUEUE_SIZE>,
    capacity: u64,
    /// Whether the device has a write cache to flush (FLUSH negotiated).
    flushes: bool,
}

impl BlockQueue {
    /// Initializes the device (virtio 1.x, 3.1.1): features, capacity,
    /// the request queue.
    fn new(mut transport: PciTransport) -> Result<Self, virtio_drivers::Error> {
        transport.set_status(DeviceStatus::empty());
        transport.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER);
        let features = transport.read_device_features() & SUPPORTED_FEATURES;
        transport.write_driver_features(features);
        transport.set_status(
            DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER | DeviceStatus::FEATURES_OK,
        );
        transport.set_guest_page_size(PAGE_SIZE as u32);
        let capacity = transport.read_consistent(|| {
            let low: u32 = transport.read_config_space(0)?;
            let high: u32 = transport.read_config_space(4)?;
            Ok(u64::from(low) | (u64::from(high) << 32))
        })?;
        let queue = VirtQueue::new(
            &mut transport,
            QUEUE,
            features & FEATURE_INDIRECT_DESC != 0,
            features & FEATURE_EVENT_IDX != 0,
        )?;
        transport.finish_init();
        Ok(BlockQueue {
            transport,
            queue,
            capacity,
            flushes: features & FEATURE_FLUSH != 0,
        })
    }

    /// Puts a request on the queue and tells the device: its token.
    ///
    /// # Safety
    ///
    /// `header`, the payload's buffer and `status` must stay valid and
    /// untouched until [`Self::complete`] of the token succeeds (the device
    /// reads and writes them meanwhile); an `Err` leaves nothing queued.
    unsafe fn submit(
        &mut self,
        header: &RequestHeader,
        payload: Payload<'_>,
        status: &mut [u8; 1],
    ) -> Result<u16, virtio_drivers::Error> {
        status[0] = STATUS_UNSET;
        let head = &header.0[..];
        // SAFETY: the caller keeps every buffer as `add` requires.
        let token = unsafe {
            match payload {
                Payload::Read(data) => self.queue.add(&[head], &mut [data, &mut status[..]]),
                Payload::Write(data) => self.queue.add(&[head, data], &mut [&mut status[..]]),
                Payload::Nothing => self.queue.add(&[head], &mut [&mut status[..]]),
            }
        }?;
        if self.queue.should_notify() {
            self.transport.notify(QUEUE);
        }
        Ok(token)
    }

    /// Takes request `token` off the queue once the device has used it (it
    /// is next in the used ring: [`Self::peek_used`]); whether it
    /// succeeded.
    ///
    /// # Safety
    ///
    /// The buffers must be those [`Self::submit`] was given for `token`.
    unsafe fn complete(
        &mut self,
        token: u16,
        header: &RequestHeader,
        payload: Payload<'_>,
        status: &mut [u8; 1],
    ) -> Result<(), DiskError> {
        let head = &header.0[..];
        // SAFETY: the caller gives the buffers submitted with `token`.
        let popped = unsafe {
            match payload {
                Payload::Read(data) => {
                    self.queue
                        .pop_used(token, &[head], &mut [data, &mut status[..]])
                }
                Payload::Write(data) => {
                    self.queue
                        .pop_used(token, &[head, data], &mut [&mut status[..]])
                }
                Payload::Nothing => self.queue.pop_used(token, &[head], &mut [&mut status[..]]),
            }
        };
        match (popped, status[0]) {
            (Ok(_), STATUS_OK) => Ok(()),
            _ => Err(DiskError::Device),
        }
    }

    /// The token of the next request the device has used, if any.
    fn peek_used(&self) -> Option<u16> {
        self.queue.peek_used()
    }
}

impl Drop for BlockQueue {
    /// Takes the queue from the device before its memory is freed.
    fn drop(&mut self) {
        self.transport.queue_unset(QUEUE);
    }
}

/// Started requests the driver keeps at once: the queue size (16
/// descriptors). A read or write takes 3 of them, a flush 2 (indirect
/// descriptors are not used: docs/design.md, "Requests"), so at most 5
/// reads or writes are on the queue at a time and a start beyond that
/// finds it full (`QueueFull`).
const QUEUE_SLOTS: usize = QUEUE_SIZE;

/// What a started request is.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum SlotKind {
    #[default]
    Write,
    /// A read, and its tag.
    Read(u64),
    Flush,
}

/// A started request's buffers, kept until the device has used them (a
/// read's, until its bytes are taken).
#[derive(Default)]
struct RequestSlot {
    header: RequestHeader,
    status: [u8; 1],
    /// The data (empty for a flush); `None`: the slot is free.
    data: Option<Vec<u8>>,
    kind: SlotKind,
    /// A read the device has used: whether it succeeded (its bytes wait
    /// in `data` for [`VirtioDisk::take_finished_read`]).
    read_done: Option<bool>,
}

impl RequestSlot {
    /// The slot's data as the payload of its kind of request.
    fn payload(&mut self) -> (&RequestHeader, Payload<'_>, &mut [u8; 1]) {
        let data = self.data.get_or_insert_default();
        let payload = match self.kind {
            SlotKind::Write => Payload::Write(data),
            SlotKind::Read(_) => Payload::Read(data),
            SlotKind::Flush => Payload::Nothing,
        };
        (&self.header, payload, &mut self.status)
    }
}

/// A virtio block device.
pub struct VirtioDisk {
    blk: BlockQueue,
    /// How its interrupt is routed, or why waits poll.
    interrupt: Result<Route, WiringError>,
    /// Started requests' buffers (allocated once, never moved: the device
    /// uses them), and which slot each queue token's request uses.
    slots: Box<[RequestSlot; QUEUE_SLOTS]>,
    slot_of_token: [Option<u8>; QUEUE_SLOTS],
    in_flight: usize,
    /// Started writes that failed, not yet taken.
    failed_writes: u64,
}

/// Why the disk's interrupt is not used (its waits poll).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WiringError {
    /// The function has no INTx pin, or the firmware routed it nowhere.
    NoLine,
    /// The device's ISR status register was not found in a memory BAR.
    NoIsr,
    /// The I/O APIC could not take the line.
    IoApic(ioapic::IoApicError),
}

/// Why the disk could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskError {
    /// The device refused or failed the request.
    Device,
    /// Sectors beyond the end of the disk, or a buffer that is not whole
    /// sectors.
    Range,
}

impl VirtioDisk {
    /// The first virtio block device on PCI bus 0, if there is one, its
    /// interrupt routed through the I/O APIC (set up by [`ioapic::init`])
    /// when it can be.
    pub fn find() -> Option<Result<VirtioDisk, DiskError>> {
        let mut root = PciRoot::new(PortConfigAccess::new());
        let function = find_block_function(&root)?;
        root.set_command(
            function,
            Command::MEMORY_SPACE | Command::IO_SPACE | Command::BUS_MASTER,
        );
        let isr = isr_status_address(&mut root, function);
        let disk = PciTransport::new::<KernelHal, _>(&mut root, function)
            .map_err(|_| DiskError::Device)
            .and_then(|transport| BlockQueue::new(transport).map_err(|_| DiskError::Device))
            .map(|blk| {
                let mut disk = VirtioDisk {
                    blk,
                    interrupt: Err(WiringError::NoLine),
                    slots: Box::default(),
                    slot_of_token: [None; QUEUE_SLOTS],
                    in_flight: 0,
                    failed_writes: 0,
                };
                disk.interrupt = disk.wire_interrupt(function, isr);
                disk
            });
        Some(disk)
    }

    /// Routes the device's INTx line to [`DISK_VECTOR`] on this CPU, the
    /// handler reading the ISR status at `isr`.
    fn wire_interrupt(
        &mut self,
        function: DeviceFunction,
        isr: Option<u64>,
    ) -> Result<Route, WiringError> {
        let line =
            pci::interrupt_line(&PortConfigAccess::new(), function).ok_or(WiringError::NoLine)?;
        let isr = isr.ok_or(WiringError::NoIsr)?;
        // The handler can acknowledge the device before the line is open.
        ISR_STATUS.store(isr, Ordering::Release);
        let route = ioapic::route_pci_line(line, DISK_VECTOR).map_err(WiringError::IoApic)?;
        INTERRUPT_GSI.store(route.gsi, Ordering::Relaxed);
        self.blk.queue.set_dev_notify(true);
        INTERRUPT_WIRED.store(true, Ordering::Release);
        Ok(route)
    }

    /// Capacity in 512-byte sectors.
    pub fn sector_count(&self) -> u64 {
        self.blk.capacity
    }

    /// Starts a write of `data` (whole sectors, at most 1 MiB) at sector
    /// `first` and returns without waiting: the buffers stay in a slot
    /// until [`Self::requests_in_flight`] collects the write. `Ok(Err(data))`
    /// when the queue has no room.
    pub fn start_write(
        &mut self,
        first: u64,
        data: Vec<u8>,
    ) -> Result<Result<(), Vec<u8>>, DiskError> {
        self.check(first, data.len())?;
        if data.len() > MAX_REQUEST_BYTES {
            return Ok(Err(data));
        }
        self.start(SlotKind::Write, first, data)
    }

    /// Starts a read of `len` bytes (whole sectors, at most 1 MiB) from
    /// sector `first`, named `tag`, and returns without waiting: its
    /// buffers stay in a slot until [`Self::take_finished_read`] gives the
    /// bytes back. `Ok(false)` when the queue (or the heap, for the
    /// buffer) has no room: nothing was sent.
    pub fn start_read(&mut self, first: u64, len: usize, tag: u64) -> Result<bool, DiskError> {
        self.check(first, len)?;
        if len > MAX_REQUEST_BYTES {
            return Ok(false);
        }
        let mut data = Vec::new();
        if data.try_reserve_exact(len).is_err() {
            return Ok(false);
        }
        data.resize(len, 0);
        Ok(self.start(SlotKind::Read(tag), first, data)?.is_ok())
    }

    /// Starts a flush of the device's write cache and returns without
    /// waiting: `Ok(true)` while it is in flight (collected, a failure
    /// counted, by [`Self::requests_in_flight`]); `Ok(false)` when it was
    /// made at once (a device without a write cache has nothing to flush;
    /// a queue with no room waits for the started requests and flushes).
    /// The flush covers the writes completed before it is started: the
    /// caller starts it with none in flight.
    pub fn start_flush(&mut self) -> Result<bool, DiskError> {
        if !self.blk.flushes {
            return Ok(false);
        }
        match self.start(SlotKind::Flush, 0, Vec::new())? {
            Ok(()) => Ok(true),
            Err(_) => self.flush().map(|()| false),
        }
    }

    /// Puts a request of `kind` at sector `first` with `data` in a free
    /// slot and starts it. `Ok(Err(data))` when no slot or no room on the
    /// queue is left: nothing was sent.
    fn start(
        &mut self,
        kind: SlotKind,
        first: u64,
        data: Vec<u8>,
    ) -> Result<Result<(), Vec<u8>>, DiskError> {
        let Some(index) = self.slots.iter().position(|s| s.data.is_none()) else {
            return Ok(Err(data));
        };
        if self.interrupt.is_ok() && INTERRUPT_WIRED.load(Ordering::Acquire) {
            let _ = ioapic::deliver_here(INTERRUPT_GSI.load(Ordering::Relaxed));
        }
        let slot = &mut self.slots[index];
        slot.header = match kind {
            SlotKind::Write => RequestHeader::new(REQUEST_OUT, first),
            SlotKind::Read(_) => RequestHeader::new(REQUEST_IN, first),
            SlotKind::Flush => RequestHeader::new(REQUEST_FLUSH, 0),
        };
        slot.kind = kind;
        slot.read_done = None;
        slot.data = Some(data);
        let (header, payload, status) = slot.payload();
        // SAFETY: the header, data and status live in slot `index` of
        // `self.slots` (a box never moved or freed while the device lives;
        // `Drop` waits for every started request), untouched until
        // `requests_in_flight` completes this token, which runs only once
        // the device has used the request. On a failed submission the
        // device holds nothing and the slot is freed below.
        let token = unsafe { self.blk.submit(header, payload, status) };
        match token {
            Ok(token) if usize::from(token) < QUEUE_SLOTS => {
                REQUESTS.fetch_add(1, Ordering::Relaxed);
                self.slot_of_token[usize::from(token)] = Some(index as u8);
                self.in_flight += 1;
                Ok(Ok(()))
            }
            Ok(_) => panic!("virtio: a queue token beyond the queue size"),
            Err(virtio_drivers::Error::QueueFull) => Ok(Err(slot.data.take().unwrap_or_default())),
            Err(_) => {
                slot.data = None;
                Err(DiskError::Device)
            }
        }
    }

    /// A started read the device has used: its tag and its bytes, or
    /// `Err` when it failed. Its slot is free again.
    pub fn take_finished_read(&mut self) -> Option<(u64, Result<Vec<u8>, DiskError>)> {
        self.requests_in_flight();
        let slot = self.slots.iter_mut().find(|s| s.read_done.is_some())?;
        let ok = slot.read_done.take()?;
        let SlotKind::Read(tag) = slot.kind else {
            return None;
        };
        let data = slot.data.take().unwrap_or_default();
        Some((tag, if ok { Ok(data) } else { Err(DiskError::Device) }))
    }

    /// Collects the started requests the device has used (writes and
    /// flushes: their buffers freed, failures counted; reads: kept for
    /// [`Self::take_finished_read`]); whether any is still in flight.
    pub fn requests_in_flight(&mut self) -> bool {
        while self.in_flight > 0 {
            let Some(token) = self.blk.peek_used() else {
                break;
            };
            let Some(index) = self
                .slot_of_token
                .get_mut(usize::from(token))
                .and_then(Option::take)
            else {
                // Not a started request: only other requests' waits take
                // those, and they run only when none is in flight.
                break;
            };
            let slot = &mut self.slots[usize::from(index)];
            let (header, payload, status) = slot.payload();
            // SAFETY: the buffers submitted with `token` (slot `index`),
            // which the device used.
            let done = unsafe { self.blk.complete(token, header, payload, status) };
            if let SlotKind::Read(_) = slot.kind {
                slot.read_done = Some(done.is_ok());
            } else {
                slot.data = None;
                if done.is_err() {
                    self.failed_writes += 1;
                }
            }
            self.in_flight -= 1;
        }
        self.in_flight > 0
    }

    /// Waits (asleep between interrupts, as a request's wait) until no
    /// started request is in flight: every other request comes after them.
    fn wait_for_started_requests(&mut self) {
        x86_64::instructions::interrupts::without_interrupts(|| {
            while self.requests_in_flight() {
                if INTERRUPT_WIRED.load(Ordering::Acquire) && !POLL_WAITS.load(Ordering::Relaxed) {
                    super::cpu::wait_for_interrupt();
                } else {
                    core::hint::spin_loop();
                }
            }
        });
    }

    /// Reads whole sectors from `first` into `buf`.
    pub fn read_sectors(&mut self, first: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.check(first, buf.len())?;
        let mut sector = first;
        for chunk in buf.chunks_mut(MAX_REQUEST_BYTES) {
            let header = RequestHeader::new(REQUEST_IN, sector);
            WAITED_READS.fetch_add(1, Ordering::Relaxed);
            self.request(&header, Payload::Read(chunk))?;
            sector += (chunk.len() / SECTOR_SIZE) as u64;
        }
        Ok(())
    }

    /// Writes whole sectors from `first`.
    pub fn write_sectors(&mut self, first: u64, data: &[u8]) -> Result<(), DiskError> {
        self.check(first, data.len())?;
        let mut sector = first;
        for chunk in data.chunks(MAX_REQUEST_BYTES) {
            let header = RequestHeader::new(REQUEST_OUT, sector);
            WAITED_WRITES.fetch_add(1, Ordering::Relaxed);
            self.request(&header, Payload::Write(chunk))?;
            sector += (chunk.len() / SECTOR_SIZE) as u64;
        }
        Ok(())
    }

    /// Makes completed writes durable, waited for here (asleep, as a read
    /// or write is). A device without a write cache has nothing to flush.
    pub fn flush(&mut self) -> Result<(), DiskError> {
        if !self.blk.flushes {
            return Ok(());
        }
        self.request(&RequestHeader::new(REQUEST_FLUSH, 0), Payload::Nothing)
    }

    /// One request (its sectors checked by the caller), waited for after
    /// the started ones.
    fn request(
        &mut self,
        header: &RequestHeader,
        mut payload: Payload<'_>,
    ) -> Result<(), DiskError> {
        self.wait_for_started_requests();
        let mut status = [STATUS_UNSET];
        let again = match &mut payload {
            Payload::Read(data) => Payload::Read(data),
            Payload::Write(data) => Payload::Write(data),
            Payload::Nothing => Payload::Nothing,
        };
        // SAFETY: `header`, the payload's buffer and `status` stay borrowed
        // by this function, untouched, until `complete` below, which runs
        // only once the device has used the request (or never, when the
        // submission failed and the device holds nothing).
        let token = unsafe { self.blk.submit(header, again, &mut status) }
            .map_err(|_| DiskError::Device)?;
        REQUESTS.fetch_add(1, Ordering::Relaxed);
        self.wait_until_used(token);
        // SAFETY: the buffers submitted with `token`, which the device used.
        unsafe { self.blk.complete(token, header, payload, &mut status) }
    }

    /// Waits until the device has used request `token` (the only one in
    /// flight): asleep until an interrupt when the line is wired (its
    /// interrupts sent to this CPU first), else (and under `idle=poll`)
    /// polling. Each look at the queue is made with interrupts off (as the
    /// kernel runs anyway; the caller's state is restored after) and
    /// `sti; hlt` starts the sleep atomically: a completion after the look
    /// wakes the `hlt`. A timer
    /// interrupt meanwhile only counts a tick (an interrupt of kernel mode
    /// never preempts).
    fn wait_until_used(&mut self, token: u16) {
        if self.interrupt.is_ok() && INTERRUPT_WIRED.load(Ordering::Acquire) {
            let _ = ioapic::deliver_here(INTERRUPT_GSI.load(Ordering::Relaxed));
        }
        x86_64::instructions::interrupts::without_interrupts(|| {
            while self.blk.peek_used() != Some(token) {
                if INTERRUPT_WIRED.load(Ordering::Acquire) && !POLL_WAITS.load(Ordering::Relaxed) {
                    super::cpu::wait_for_interrupt();
                } else {
                    core::hint::spin_loop();
                }
            }
        });
    }

    fn check(&self, first: u64, len: usize) -> Result<(), DiskError> {
        let sectors = (len / SECTOR_SIZE) as u64;
        if len == 0
            || !len.is_multiple_of(SECTOR_SIZE)
            || first.saturating_add(sectors) > self.sector_count()
        {
            return Err(DiskError::Range);
        }
        Ok(())
    }
}

impl Drop for VirtioDisk {
    /// Unwires the interrupt before the crate takes the queue from the
    /// device: the line masked, the handler reading no ISR.
    fn drop(&mut self) {
        self.wait_for_started_requests();
        if let Ok(route) = self.interrupt {
            INTERRUPT_WIRED.store(false, Ordering::Release);
            let _ = ioapic::mask(route.gsi);
            ISR_STATUS.store(0, Ordering::Release);
        }
    }
}

/// The direct-map address of the device's ISR status byte: the virtio
/// vendor capability of type ISR names a memory BAR and an offset in it.
fn isr_status_address(
    root: &mut PciRoot<PortConfigAccess>,
    function: DeviceFunction,
) -> Option<u64> {
    const PCI_CAP_ID_VENDOR: u8 = 0x09;
    const VIRTIO_PCI_CAP_ISR_CFG: u8 = 3;
    let access = PortConfigAccess::new();
    let capability = root.capabilities(function).find(|c| {
        c.id == PCI_CAP_ID_VENDOR && (c.private_header >> 8) as u8 == VIRTIO_PCI_CAP_ISR_CFG
    })?;
    let bar = access.read_word(function, capability.offset.checked_add(4)?) as u8;
    let offset = u64::from(access.read_word(function, capability.offset.checked_add(8)?));
    let (address, size) = root.bar_info(function, bar).ok()??.memory_address_size()?;
    let isr = address.checked_add(offset)?;
    (address != 0 && offset < size && isr < direct_map_end()).then(|| phys_to_virt(isr))
}

// SAFETY: the device's queue and configuration are reached only through
// this value, which the kernel keeps in one place (the file system behind the
// kernel lock) on its single CPU; moving it between owners moves no access.
unsafe impl Send for VirtioDisk {}

impl neoos_ext2::BlockDevice for VirtioDisk {
    fn sector_count(&self) -> u64 {
        VirtioDisk::sector_count(self)
    }

    fn read_sectors(&mut self, first: u64, buf: &mut [u8]) -> Result<(), neoos_ext2::DeviceError> {
        VirtioDisk::read_sectors(self, first, buf).map_err(DiskError::into_device_error)
    }

    fn write_sectors(&mut self, first: u64, data: &[u8]) -> Result<(), neoos_ext2::DeviceError> {
        VirtioDisk::write_sectors(self, first, data).map_err(DiskError::into_device_error)
    }

    fn flush(&mut self) -> Result<(), neoos_ext2::DeviceError> {
        VirtioDisk::flush(self).map_err(DiskError::into_device_error)
    }

    fn counters(&self) -> neoos_ext2::DeviceCounters {
        counters()
    }

    fn start_write(
        &mut self,
        first: u64,
        data: Vec<u8>,
    ) -> Result<neoos_ext2::Started, neoos_ext2::DeviceError> {
        match VirtioDisk::start_write(self, first, data) {
            Ok(Ok(())) => Ok(neoos_ext2::Started::InFlight),
            Ok(Err(data)) => Ok(neoos_ext2::Started::QueueFull(data)),
            Err(error) => Err(error.into_device_error()),
        }
    }

    fn start_read(
        &mut self,
        first: u64,
        len: usize,
        tag: u64,
    ) -> Result<neoos_ext2::StartedRead, neoos_ext2::DeviceError> {
        match VirtioDisk::start_read(self, first, len, tag) {
            Ok(true) => Ok(neoos_ext2::StartedRead::InFlight),
            Ok(false) => Ok(neoos_ext2::StartedRead::QueueFull),
            Err(error) => Err(error.into_device_error()),
        }
    }

    fn take_finished_read(&mut self) -> Option<(u64, Result<Vec<u8>, neoos_ext2::DeviceError>)> {
        VirtioDisk::take_finished_read(self)
            .map(|(tag, read)| (tag, read.map_err(DiskError::into_device_error)))
    }

    fn requests_in_flight(&mut self) -> bool {
        VirtioDisk::requests_in_flight(self)
    }

    fn start_flush(&mut self) -> Result<bool, neoos_ext2::DeviceError> {
        VirtioDisk::start_flush(self).map_err(DiskError::into_device_error)
    }

    fn take_failed_writes(&mut self) -> u64 {
        core::mem::take(&mut self.failed_writes)
    }
}

impl DiskError {
    fn into_device_error(self) -> neoos_ext2::DeviceError {
        match self {
            DiskError::Device => neoos_ext2::DeviceError::Failed,
            DiskError::Range => neoos_ext2::DeviceError::OutOfRange,
        }
    }
}

fn find_block_function(root: &PciRoot<PortConfigAccess>) -> Option<DeviceFunction> {
    root.enumerate_bus(0)
        .find(|(_, info)| virtio_device_type(info) == Some(DeviceType::Block))
        .map(|(function, _)| function)
}

/// The attached disk, if there is one and it works, its capacity logged.
pub fn open_disk() -> Option<VirtioDisk> {
    // Said first, so that a boot that stops in the PCI scan or the
    // device's setup says where.
    crate::kprintln!("virtio-blk: looking on PCI bus 0");
    let disk = match VirtioDisk::find()? {
        Err(error) => {
            crate::kprintln!("virtio-blk: device found but unusable: {:?}", error);
            return None;
        }
        Ok(disk) => disk,
    };
    let sectors = disk.sector_count();
    match disk.interrupt {
        Ok(route) => crate::kprintln!(
            "virtio-blk: {} sectors ({} KiB), interrupt-driven: GSI {}, {:?}-triggered, active {:?}, vector {:#x}",
            sectors,
            sectors / 2,
            route.gsi,
            route.trigger,
            route.polarity,
            DISK_VECTOR
        ),
        Err(why) => crate::kprintln!(
            "virtio-blk: {} sectors ({} KiB), polled ({:?})",
            sectors,
            sectors / 2,
            why
        ),
    }
    Some(disk)
}

/// Boot-time check (with `disk-smoke=` on the command line): finds the disk
/// if one is attached, logs its capacity and
/// the ext2 magic at byte 1080 (superblock at 1024, magic at +56), and for
/// an ext2 disk mounts it and lists the root directory: read-only, unless
/// the command line says `disk-smoke=write`, which also writes
/// `/neoos-smoke` (see [`SMOKE_FILE_SIZE`]) and makes `/neoos-smoke-dir`,
/// for the host to check with e2fsck and debugfs. Without a disk it says
/// nothing.
pub fn report_disk(command_line: &str) {
    let Some(mut disk) = open_disk() else {
        return;
    };
    let mut superblock = [0u8; 1024];
    match disk.read_sectors(2, &mut superblock) {
        Ok(()) => {
            let magic = u16::from_le_bytes([superblock[56], superblock[57]]);
            let verdict = if magic == 0xEF53 { "ext2" } else { "not ext2" };
            crate::kprintln!("virtio-blk: superblock magic {:#06x} ({})", magic, verdict);
            if magic == 0xEF53 {
                let write = command_line
                    .split_whitespace()
                    .any(|word| word == "disk-smoke=write");
                ext2_smoke(disk, write);
            }
        }
        Err(error) => crate::kprintln!("virtio-blk: reading the superblock failed: {:?}", error),
    }
}

/// Bytes of `/neoos-smoke`: past the 268 KiB that 1 KiB blocks map without
/// a double-indirect block.
pub const SMOKE_FILE_SIZE: usize = 300_000;

/// Byte `i` of `/neoos-smoke`: the top byte of `i * 2654435761 mod 2^32`.
pub fn smoke_byte(i: usize) -> u8 {
    ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8
}

/// Mounts the disk, logs the root directory's entries and, when `write`,
/// writes the smoke file and directory.
fn ext2_smoke(disk: VirtioDisk, write: bool) {
    let mut fs = match neoos_ext2::Ext2::mount(disk, !write) {
        Ok(fs) => fs,
        Err(error) => {
            crate::kprintln!("ext2: mount refused: {}", error);
            return;
        }
    };
    match fs.read_dir(neoos_ext2::ROOT_INO) {
        Ok(entries) => {
            crate::kprint!("[neoos] ext2: {} KiB blocks, root:", fs.block_size() / 1024);
            for entry in &entries {
                let name = core::str::from_utf8(&entry.name).unwrap_or("?");
                crate::kprint!(" {}", name);
            }
            crate::kprint!("\n");
        }
        Err(error) => crate::kprintln!("ext2: reading the root failed: {}", error),
    }
    if write {
        match write_smoke(&mut fs) {
            Ok(()) => crate::kprintln!(
                "ext2: wrote /neoos-smoke ({} bytes) and /neoos-smoke-dir",
                SMOKE_FILE_SIZE
            ),
            Err(error) => crate::kprintln!("ext2: smoke write failed: {}", error),
        }
    }
}

fn write_smoke(fs: &mut neoos_ext2::Ext2<VirtioDisk>) -> neoos_ext2::Result<()> {
    let root = neoos_ext2::ROOT_INO;
    let file = match fs.lookup(root, b"neoos-smoke") {
        Ok(ino) => ino,
        Err(neoos_ext2::Ext2Error::NotFound) => fs.create(root, b"neoos-smoke", 0o644)?,
        Err(error) => return Err(error),
    };
    fs.truncate(file, 0)?;
    let mut chunk = [0u8; 4096];
    let mut offset = 0;
    while offset < SMOKE_FILE_SIZE {
        let len = chunk.len().min(SMOKE_FILE_SIZE - offset);
        for (i, byte) in chunk[..len].iter_mut().enumerate() {
            *byte = smoke_byte(offset + i);
        }
        if fs.write_at(file, offset as u64, &chunk[..len])? < len {
            return Err(neoos_ext2::Ext2Error::NoSpace);
        }
        offset += len;
    }
    match fs.mkdir(root, b"neoos-smoke-dir", 0o755) {
        Ok(_) | Err(neoos_ext2::Ext2Error::Exists) => {}
        Err(error) => return Err(error),
    }
    fs.flush()
}
