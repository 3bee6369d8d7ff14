//! Reads the PVH `hvm_start_info` that QEMU leaves in memory: the RAM map, the
//! kernel command line, the boot module (the initial filesystem image) and
//! where the ACPI tables start (the RSDP).

use alloc::string::String;
use alloc::vec::Vec;

use super::paging::phys_to_virt;

const START_INFO_MAGIC: u32 = 0x336e_c578;
const E820_RAM: u32 = 1;

/// What the boot loader told us, copied into kernel memory.
pub struct BootInfo {
    /// Usable RAM as (physical start, length).
    pub ram: Vec<(u64, u64)>,
    pub command_line: String,
    /// Where the first boot module lies, as (physical start, length): the
    /// frame allocator keeps out of it.
    pub module: Option<(u64, u64)>,
    /// Physical address of the ACPI RSDP, when the boot loader named one.
    pub rsdp: Option<u64>,
}

/// Reads a `u32` at physical address `phys`.
///
/// # Safety
/// `phys..phys + 4` must be RAM covered by the direct map that nothing
/// writes meanwhile.
unsafe fn read_u32(phys: u64) -> u32 {
    // SAFETY: the caller's guarantees; read_unaligned tolerates any alignment.
    unsafe { core::ptr::read_unaligned(phys_to_virt(phys) as *const u32) }
}

/// Reads a `u64` at physical address `phys`.
///
/// # Safety
/// As [`read_u32`], for 8 bytes.
unsafe fn read_u64(phys: u64) -> u64 {
    // SAFETY: as read_u32.
    unsafe { core::ptr::read_unaligned(phys_to_virt(phys) as *const u64) }
}

/// The NUL-terminated string at `phys` (at most 4 KiB).
///
/// # Safety
/// The string (or its first 4 KiB) must be RAM as for [`read_u32`].
unsafe fn read_c_string(phys: u64) -> String {
    let mut s = String::new();
    if phys == 0 {
        return s;
    }
    for i in 0..4096 {
        // SAFETY: the caller's guarantees; the read stops at the NUL.
        let b = unsafe { core::ptr::read(phys_to_virt(phys + i) as *const u8) };
        if b == 0 {
            break;
        }
        s.push(b as char);
    }
    s
}

/// Parses the structure at physical address `start_info`.
///
/// # Safety
/// `start_info` must be the address the PVH boot loader passed in EBX, read
/// before the frame allocator hands out any frame (the structure, the
/// tables it points to, the command line and the module lie in RAM the
/// kernel has not reused).
pub unsafe fn read(start_info: u64) -> Option<BootInfo> {
    // SAFETY: the caller's guarantees; every address read below is
    // start_info or a table, string or module it names.
    unsafe {
        if read_u32(start_info) != START_INFO_MAGIC {
            return None;
        }
        let version = read_u32(start_info + 4);
        let modules = read_u32(start_info + 12);
        let modlist = read_u64(start_info + 16);
        let command_line = read_c_string(read_u64(start_info + 24));
        let mut ram = Vec::new();
        let rsdp = Some(read_u64(start_info + 32)).filter(|&a| a != 0);
        if version >= 1 {
            let map = read_u64(start_info + 40);
            let entries = read_u32(start_info + 48);
            for i in 0..entries as u64 {
                let e = map + i * 24;
                if read_u32(e + 16) == E820_RAM {
                    ram.push((read_u64(e), read_u64(e + 8)));
                }
            }
        }
        let module =
            (modules > 0 && modlist != 0).then(|| (read_u64(modlist), read_u64(modlist + 8)));
        Some(BootInfo {
            ram,
            command_line,
            module,
            rsdp,
        })
    }
}

impl BootInfo {
    /// The first boot module's bytes (the initial file system image),
    /// copied to the heap: called once the heap has its share of RAM (the
    /// static arena alone may be smaller than the module). The frame
    /// allocator never hands out the module's range, so it is intact.
    pub fn copy_module(&self) -> Option<Vec<u8>> {
        // SAFETY: the module is RAM the boot loader filled and the frame
        // allocator keeps out of its ranges (nothing writes it), covered by
        // the direct map.
        self.module
            .map(|(start, len)| unsafe { copy_physical(start, len) })
    }
}

/// Copies `len` bytes of physical memory at `phys` into a vector.
///
/// # Safety
/// The range must be RAM covered by the direct map that nothing writes
/// meanwhile.
unsafe fn copy_physical(phys: u64, len: u64) -> Vec<u8> {
    // SAFETY: the caller's guarantees.
    unsafe { core::slice::from_raw_parts(phys_to_virt(phys) as *const u8, len as usize).to_vec() }
}

unsafe extern "C" {
    static __kernel_end: u8;
}

/// Physical end of the kernel image (bss included).
pub fn kernel_image_end() -> u64 {
    super::paging::kernel_image_phys(kernel_image_end_virt())
}

/// Virtual end of the kernel image (bss included).
pub fn kernel_image_end_virt() -> u64 {
    // Only the address of the linker-defined symbol is used.
    core::ptr::addr_of!(__kernel_end) as u64
}
