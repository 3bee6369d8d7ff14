/* eflags_probe.c - helper: sets hostile RFLAGS bits and then does what
 * argv[1] names; every mode must end this process with a CPU exception
 * (NEO_STATUS_CRASHED), never the kernel. If the process survives, it exits
 * with EFLAGS_PROBE_SURVIVED (42). Setup failures exit with 3.
 *   tf_single_step  TF set by popf: the next instruction traps (#DB).
 *   iopl_then_cli   popf asks for IOPL 3 (ignored at CPL 3), so cli still
 *                   faults (#GP).
 *   int80_nt        NT set, then int $0x80 (no user gate: #GP).
 *   int80_ac_id     AC and ID set, then int $0x80.
 *   int80_tf        TF set, then int $0x80.
 *   syscall_tf      TF set, then a system call: the kernel runs it with TF
 *                   clear; the step trap comes after the return.
 *   int_disk_vector int $0x50, the disk's I/O APIC vector (a kernel-only
 *                   gate: #GP, never the disk's interrupt handler).
 *   int_nmi_vector  int $2, the NMI's vector (a kernel-only gate: #GP,
 *                   never the kernel's NMI state report). */
#include <syscalls.h>
#include <neo.h>

#define EFLAGS_PROBE_SURVIVED 42
#define SETUP_FAILED 3

#define FLAG_TF   (1UL << 8)
#define FLAG_IOPL (3UL << 12)
#define FLAG_NT   (1UL << 14)
#define FLAG_AC   (1UL << 18)
#define FLAG_ID   (1UL << 21)

/* Sets `set` in RFLAGS, then runs `then` (one instruction). The red zone
 * below rsp is stepped over before pushing. */
#define WITH_FLAGS(set, then) \
    __asm__ volatile("lea -128(%%rsp), %%rsp\n\t" \
                     "pushfq\n\t" \
                     "orq %0, (%%rsp)\n\t" \
                     "popfq\n\t" \
                     then "\n\t" \
                     "nop\n\t" \
                     "lea 128(%%rsp), %%rsp" \
                     : : "r"(set) : "memory", "cc")

int main(int argc, char **argv)
{
    if (argc < 2) {
        eprintf("eflags_probe: usage: eflags_probe MODE\n");
        return SETUP_FAILED;
    }
    const char *mode = argv[1];
    eprintf("eflags_probe: %s\n", mode);
    if (!strcmp(mode, "tf_single_step"))
        WITH_FLAGS(FLAG_TF, "nop");
    else if (!strcmp(mode, "iopl_then_cli"))
        WITH_FLAGS(FLAG_IOPL, "cli");
    else if (!strcmp(mode, "int80_nt"))
        WITH_FLAGS(FLAG_NT, "int $0x80");
    else if (!strcmp(mode, "int80_ac_id"))
        WITH_FLAGS(FLAG_AC | FLAG_ID, "int $0x80");
    else if (!strcmp(mode, "int80_tf"))
        WITH_FLAGS(FLAG_TF, "int $0x80");
    else if (!strcmp(mode, "int_disk_vector"))
        WITH_FLAGS(0UL, "int $0x50");
    else if (!strcmp(mode, "int_nmi_vector"))
        WITH_FLAGS(0UL, "int $2");
    else if (!strcmp(mode, "syscall_tf"))
        __asm__ volatile("lea -128(%%rsp), %%rsp\n\t"
                         "pushfq\n\t"
                         "orq %1, (%%rsp)\n\t"
                         "popfq\n\t"
                         "syscall\n\t"
                         "nop\n\t"
                         "lea 128(%%rsp), %%rsp"
                         : : "a"((long)SYS_GETPID), "r"(FLAG_TF)
                         : "rcx", "r11", "memory", "cc");
    else {
        eprintf("eflags_probe: unknown mode\n");
        return SETUP_FAILED;
    }
    eprintf("eflags_probe: %s: no exception\n", mode);
    return EFLAGS_PROBE_SURVIVED;
}
