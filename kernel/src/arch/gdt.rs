//! The GDT and TSS of each CPU: kernel and user segments, the ring-0 stack
//! used when user code is interrupted, and the IST stack for double faults.
//! The boot CPU's tables are statics; each application processor gets its
//! own, allocated once and kept for good.

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

const DOUBLE_FAULT_STACK_SIZE: usize = 16384;

#[repr(align(16))]
#[allow(dead_code)] // only its address is used
struct Stack([u8; DOUBLE_FAULT_STACK_SIZE]);

/// One CPU's descriptor tables and the stack its double faults run on.
#[repr(C)]
struct CpuTables {
    gdt: GlobalDescriptorTable,
    tss: TaskStateSegment,
    double_fault_stack: Stack,
}

impl CpuTables {
    const fn new() -> Self {
        CpuTables {
            gdt: GlobalDescriptorTable::new(),
            tss: TaskStateSegment::new(),
            double_fault_stack: Stack([0; DOUBLE_FAULT_STACK_SIZE]),
        }
    }
}

static mut BOOT_TABLES: CpuTables = CpuTables::new();
static LOADED: AtomicBool = AtomicBool::new(false);

/// Fills `tables` and loads them on this CPU; returns its TSS.
///
/// # Safety
/// `tables` must live for good, be used by no other CPU, and nothing else
/// may refer to it while this runs (interrupts off).
unsafe fn load(tables: *mut CpuTables) -> *mut TaskStateSegment {
    // SAFETY: the caller's guarantees: `tables` is ours alone and lives
    // for good, as the CPU requires of a loaded GDT and TSS.
    unsafe {
        let tss = core::ptr::addr_of_mut!((*tables).tss);
        let stack = core::ptr::addr_of!((*tables).double_fault_stack) as u64;
        (*tss).interrupt_stack_table[DOUBLE_FAULT_IST as usize] =
            VirtAddr::new(stack + DOUBLE_FAULT_STACK_SIZE as u64);
        let gdt = &mut *core::ptr::addr_of_mut!((*tables).gdt);
        let kcode = gdt.append(Descriptor::kernel_code_segment());
        let kdata = gdt.append(Descriptor::kernel_data_segment());
        let udata = gdt.append(Descriptor::user_data_segment());
        let ucode = gdt.append(Descriptor::user_code_segment());
        let tss_sel = gdt.append(Descriptor::tss_segment(&*tss));
        debug_assert_eq!(kcode.0, KERNEL_CODE);
        debug_assert_eq!(kdata.0, KERNEL_DATA);
        debug_assert_eq!(udata.0, USER_DATA);
        debug_assert_eq!(ucode.0, USER_CODE);
        (*core::ptr::addr_of!((*tables).gdt)).load();
        CS::set_reg(kcode);
        DS::set_reg(kdata);
        ES::set_reg(kdata);
        SS::set_reg(kdata);
        load_tss(tss_sel);
        tss
    }
}

/// Loads the boot CPU's GDT and TSS and returns its TSS (the first call;
/// later calls return `None` and do nothing).
pub(super) fn init_boot_cpu() -> Option<*mut TaskStateSegment> {
    if LOADED.swap(true, Ordering::Relaxed) {
        return None;
    }
    // SAFETY: runs once (LOADED), on the boot CPU before interrupts and
    // before any other CPU starts: nothing else refers to the static.
    Some(unsafe { load(core::ptr::addr_of_mut!(BOOT_TABLES)) })
}

/// Allocates an application processor's GDT and TSS, loads them on this
/// CPU and returns its TSS.
pub(super) fn init_application_processor() -> *mut TaskStateSegment {
    let layout = core::alloc::Layout::new::<CpuTables>();
    // SAFETY: the layout is non-zero sized; a null result goes to
    // handle_alloc_error. The GDT and TSS are written whole right after,
    // the stack may hold any bytes.
    let tables = unsafe {
        let ptr = alloc::alloc::alloc_zeroed(layout) as *mut CpuTables;
        if ptr.is_null() {
            alloc::alloc::handle_alloc_error(layout);
        }
        core::ptr::addr_of_mut!((*ptr).gdt).write(GlobalDescriptorTable::new());
        core::ptr::addr_of_mut!((*ptr).tss).write(TaskStateSegment::new());
        ptr
    };
    // SAFETY: the tables were just allocated for this CPU and are never
    // freed (the raw pointer is kept only in this CPU's PerCpu).
    unsafe { load(tables) }
}

/// Sets the stack this CPU switches to when user code is interrupted.
///
/// # Safety
/// As `traps::set_kernel_stack`: `top` must be the top of a live kernel
/// stack used by nothing else while user code runs.
pub(super) unsafe fn set_kernel_stack(top: u64) {
    let tss = super::percpu::current().tss.load(Ordering::Relaxed);
    if tss.is_null() {
        return;
    }
    // SAFETY: `tss` is this CPU's own TSS (recorded when it was loaded),
    // written only by this CPU, with interrupts disabled in kernel mode:
    // nothing reads it concurrently with this store.
    unsafe {
        (*tss).privilege_stack_table[0] = VirtAddr::new(top);
    }
}

/// A selector from a raw value (for the syscall MSRs).
pub fn selector(raw: u16) -> SegmentSelector {
    SegmentSelector(raw)
}
