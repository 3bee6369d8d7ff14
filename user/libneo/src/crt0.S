/* crt0.S - process entry of every NeoOS program.
 *
 * The kernel enters _start in ring 3 with
 *     rsp -> argc (8 bytes), argv[0] .. argv[argc-1] (8 bytes each), NULL
 * and rsp 16-byte aligned. The argv strings live above, on the same stack.
 * Other registers are unspecified (the kernel zeroes them).
 *
 * _start calls main(argc, argv) and ends the process with sys_exit(status):
 * status is main's return value for `int main`, and 0 for `void main` (the
 * flag __neo_main_returns_void is defined by main_trailer.h, compiled into
 * the same translation unit as the program).
 */
    .text
    .globl _start
    .type _start, @function
_start:
    .cfi_startproc
    .cfi_undefined rip
    xorl    %ebp, %ebp              /* end of the frame-pointer chain */
    movq    (%rsp), %rdi            /* argc */
    leaq    8(%rsp), %rsi           /* argv */
    leaq    8(%rsp,%rdi,8), %rdx    /* envp: argv's NULL terminator (empty list) */
    andq    $-16, %rsp              /* the ABI wants rsp % 16 == 0 before the call */
    call    main
    cmpl    $0, __neo_main_returns_void(%rip)
    je      1f
    xorl    %eax, %eax              /* void main: status 0 */
1:  movl    %eax, %edi
    call    sys_exit
2:  hlt                             /* not reached: sys_exit does not return */
    jmp     2b
    .cfi_endproc
    .size _start, . - _start

/* The NeoOS note: marks the program as a NeoOS program (NeoOS call
 * numbers and initial stack). The kernel runs a static program without it
 * as a Linux program. Owner "NeoOS", type 1, descriptor: ABI version 1
 * (crates/abi `linux::NOTE_*`). */
    .section .note.neoos, "a", @note
    .balign 4
    .long   6                       /* name size, with the NUL */
    .long   4                       /* descriptor size */
    .long   1                       /* type */
    .asciz  "NeoOS"
    .balign 4
    .long   1                       /* ABI version */

    .section .note.GNU-stack, "", @progbits
