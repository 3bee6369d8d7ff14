//! The PVH entry: the first code QEMU runs. It owns the boot page tables, the
//! boot GDT and the switch from 32-bit protected mode to 64-bit long mode, and
//! hands the physical address of `hvm_start_info` to `kernel_main`.
//!
//! Boot tables: the first 4 GiB of physical memory are mapped with 2 MiB pages
//! three times: identity (only until the kernel loads its own tables), at the
//! direct-map base `0xffff_8000_0000_0000`, and the first GiB at the kernel base
//! `0xffff_ffff_8000_0000`.

use core::arch::global_asm;

global_asm!(
    r#"
    .section .note.Xen, "a", @note
    .p2align 2
    .long 4
    .long 4
    .long 18
    .asciz "Xen"
    .p2align 2
    .long pvh_start

    .section .boot.bss, "aw", @nobits
    .p2align 12
boot_pml4:      .skip 4096
boot_pdpt_low:  .skip 4096
boot_pdpt_high: .skip 4096
boot_pd:        .skip 4096 * 4
boot_stack:     .skip 4096
boot_stack_top:

    .section .boot.data, "aw"
    .p2align 3
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt
boot_info_ptr:
    .long 0

    .section .boot.text, "ax"
    .code32
    .global pvh_start
pvh_start:
    cli
    cld
    movl %ebx, boot_info_ptr
    movl $boot_stack_top, %esp

    /* 2048 entries of 2 MiB pages: 4 GiB, present | writable | huge */
    movl $boot_pd, %edi
    xorl %ecx, %ecx
1:
    movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax
    movl %eax, (%edi,%ecx,8)
    movl %ecx, %eax
    shrl $11, %eax
    movl %eax, 4(%edi,%ecx,8)
    incl %ecx
    cmpl $2048, %ecx
    jne 1b

    /* four page directories behind the low PDPT */
    movl $boot_pdpt_low, %edi
    movl $boot_pd + 0x0003, %eax
    movl %eax, 0(%edi)
    addl $4096, %eax
    movl %eax, 8(%edi)
    addl $4096, %eax
    movl %eax, 16(%edi)
    addl $4096, %eax
    movl %eax, 24(%edi)

    /* the first GiB again at -2 GiB */
    movl $boot_pdpt_high, %edi
    movl $boot_pd + 0x0003, %eax
    movl %eax, 510*8(%edi)

    movl $boot_pml4, %edi
    movl $boot_pdpt_low + 0x0003, %eax
    movl %eax, 0(%edi)
    movl %eax, 256*8(%edi)
    movl $boot_pdpt_high + 0x0003, %eax
    movl %eax, 511*8(%edi)

    /* CR4: PAE, PGE, OSFXSR, OSXMMEXCPT */
    movl %cr4, %eax
    orl $((1 << 5) | (1 << 7) | (1 << 9) | (1 << 10)), %eax
    movl %eax, %cr4

    movl $boot_pml4, %eax
    movl %eax, %cr3

    /* EFER: SCE, LME, NXE */
    movl $0xC0000080, %ecx
    rdmsr
    orl $((1 << 0) | (1 << 8) | (1 << 11)), %eax
    wrmsr

    /* CR0: PE, MP, WP, PG; EM and TS clear */
    movl %cr0, %eax
    andl $~((1 << 2) | (1 << 3)), %eax
    orl $((1 << 0) | (1 << 1) | (1 << 16) | (1 << 31)), %eax
    movl %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $boot_long_mode

    .code64
boot_long_mode:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movabsq $kernel_boot_stack_top, %rsp
    xorq %rbp, %rbp
    movl boot_info_ptr, %edi
    movabsq $kernel_main, %rax
    callq *%rax
2:
    hlt
    jmp 2b

    .section .bss.kernel_boot_stack, "aw", @nobits
    .p2align 12
    .skip 65536
    .global kernel_boot_stack_top
kernel_boot_stack_top:
    "#,
    options(att_syntax)
);

/// The Rust entry the boot code calls (by this exported name) with the
/// physical address of `hvm_start_info`.
#[unsafe(no_mangle)]
extern "C" fn kernel_main(start_info: u64) -> ! {
    // SAFETY: `start_info` is what QEMU's PVH entry passed in EBX, read
    // before any frame is handed out.
    let info = unsafe { super::bootinfo::read(start_info) };
    crate::start(info)
}
