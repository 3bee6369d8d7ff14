//! The GDT and TSS: kernel and user segments, the ring-0 stack used when user
//! code is interrupted, and the IST stack for double faults.

use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

/// IST slot used by the double-fault handler.
pub const DOUBLE_FAULT_IST: u16 = 0;

/// Selectors, fixed by the order below (the `syscall`/`sysret` MSR needs
/// kernel code, kernel data, then user data, user code).
pub const KERNEL_CODE: u16 = 0x08;
pub const KERNEL_DATA: u16 = 0x10;
pub const USER_DATA: u16 = 0x18 | 3;
pub const USER_CODE: u16 = 0x20 | 3;

static mut TSS: TaskStateSegment = TaskStateSegment::new();
static mut GDT: GlobalDescriptorTable = GlobalDescriptorTable::new();

#[repr(align(16))]
#[allow(dead_code)] // only its address is used
struct Stack([u8; 16384]);
static mut DOUBLE_FAULT_STACK: Stack = Stack([0; 16384]);

static LOADED: AtomicBool = AtomicBool::new(false);

/// Loads the GDT and TSS (once; later calls do nothing).
pub fn init() {
    if LOADED.swap(true, Ordering::Relaxed) {
        return;
    }
    // SAFETY: runs once (LOADED), at boot before interrupts, with nothing
    // else touching GDT or TSS; both are statics and so live forever as the
    // CPU requires.
    unsafe {
        let tss = &mut *core::ptr::addr_of_mut!(TSS);
        let stack = core::ptr::addr_of!(DOUBLE_FAULT_STACK) as u64 + 16384;
        tss.interrupt_stack_table[DOUBLE_FAULT_IST as usize] = VirtAddr::new(stack);
        let gdt = &mut *core::ptr::addr_of_mut!(GDT);
        let kcode = gdt.append(Descriptor::kernel_code_segment());
        let kdata = gdt.append(Descriptor::kernel_data_segment());
        let udata = gdt.append(Descriptor::user_data_segment());
        let ucode = gdt.append(Descriptor::user_code_segment());
        let tss_sel = gdt.append(Descriptor::tss_segment(&*core::ptr::addr_of!(TSS)));
        debug_assert_eq!(kcode.0, KERNEL_CODE);
        debug_assert_eq!(kdata.0, KERNEL_DATA);
        debug_assert_eq!(udata.0, USER_DATA);
        debug_assert_eq!(ucode.0, USER_CODE);
        gdt.load();
        CS::set_reg(kcode);
        DS::set_reg(kdata);
        ES::set_reg(kdata);
        SS::set_reg(kdata);
        load_tss(tss_sel);
    }
}

/// Sets the stack the CPU switches to when user code is interrupted.
///
/// # Safety
/// As `traps::set_kernel_stack`: `top` must be the top of a live kernel
/// stack used by nothing else while user code runs.
pub(super) unsafe fn set_kernel_stack(top: u64) {
    // SAFETY: single CPU with interrupts disabled in kernel mode: nothing reads
    // the TSS concurrently with this store.
    unsafe {
        (*core::ptr::addr_of_mut!(TSS)).privilege_stack_table[0] = VirtAddr::new(top);
    }
}

/// A selector from a raw value (for the syscall MSRs).
pub fn selector(raw: u16) -> SegmentSelector {
    SegmentSelector(raw)
}
