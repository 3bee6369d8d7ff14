//! The virtio block device (`-device virtio-blk-pci`), driven by the
//! `virtio-drivers` crate over its PCI transport, with this module as its
//! `Hal`: DMA memory comes from the kernel heap (an arena in the kernel
//! image, so physically contiguous: physical = virtual - KERNEL_BASE), and
//! MMIO BARs are reached through the direct map (which covers at least the
//! first 4 GiB, where the firmware places them).
//!
//! Requests are polled: the driver submits a request and spins until the
//! device marks it used. No interrupt is wired yet.

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use core::ptr::NonNull;

use virtio_drivers::device::blk::{VirtIOBlk, SECTOR_SIZE};
use virtio_drivers::transport::pci::bus::{Command, DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::{virtio_device_type, PciTransport};
use virtio_drivers::transport::DeviceType;
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

use super::paging::{
    kernel_image_phys, kernel_stack_phys, phys_to_virt, DIRECT_MAP_BASE, KERNEL_BASE,
    KERNEL_STACK_AREA, KERNEL_STACK_AREA_SIZE,
};
use super::pci::PortConfigAccess;

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

/// A virtio block device.
pub struct VirtioDisk {
    blk: VirtIOBlk<KernelHal, PciTransport>,
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
    /// The first virtio block device on PCI bus 0, if there is one.
    pub fn find() -> Option<Result<VirtioDisk, DiskError>> {
        let mut root = PciRoot::new(PortConfigAccess::new());
        let function = find_block_function(&root)?;
        root.set_command(
            function,
            Command::MEMORY_SPACE | Command::IO_SPACE | Command::BUS_MASTER,
        );
        let disk = PciTransport::new::<KernelHal, _>(&mut root, function)
            .map_err(|_| DiskError::Device)
            .and_then(|transport| VirtIOBlk::new(transport).map_err(|_| DiskError::Device))
            .map(|blk| VirtioDisk { blk });
        Some(disk)
    }

    /// Capacity in 512-byte sectors.
    pub fn sector_count(&self) -> u64 {
        self.blk.capacity()
    }

    /// Reads whole sectors from `first` into `buf`.
    pub fn read_sectors(&mut self, first: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.check(first, buf.len())?;
        self.blk
            .read_blocks(first as usize, buf)
            .map_err(|_| DiskError::Device)
    }

    /// Writes whole sectors from `first`.
    pub fn write_sectors(&mut self, first: u64, data: &[u8]) -> Result<(), DiskError> {
        self.check(first, data.len())?;
        self.blk
            .write_blocks(first as usize, data)
            .map_err(|_| DiskError::Device)
    }

    /// Makes completed writes durable.
    pub fn flush(&mut self) -> Result<(), DiskError> {
        self.blk.flush().map_err(|_| DiskError::Device)
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
    let disk = match VirtioDisk::find()? {
        Err(error) => {
            crate::kprintln!("virtio-blk: device found but unusable: {:?}", error);
            return None;
        }
        Ok(disk) => disk,
    };
    let sectors = disk.sector_count();
    crate::kprintln!(
        "virtio-blk: {} sectors ({} KiB), polled",
        sectors,
        sectors / 2
    );
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
