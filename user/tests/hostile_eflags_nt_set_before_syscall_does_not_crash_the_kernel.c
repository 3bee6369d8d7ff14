/* Issue 9 item 1: a program sets RFLAGS bits of its own (pushf / or / popf)
 * and then enters the kernel. NT set before a system call used to make the
 * kernel's iretq take a general-protection fault, stopping the machine.
 * Every flag a program can set must leave the kernel unharmed, on every way
 * in: `syscall` (checked here, in this process: the call returns its
 * result, and the flags a program may own - NT, AC, ID, DF - come back as
 * they were; IOPL and RF cannot be raised), timer interrupts (a spin with
 * NT, AC and ID set, across several ticks), and `int $0x80` and TF single
 * steps (in a helper, which must end by a CPU exception, not the kernel). */
#include <neo_test.h>

#define FLAG_TF   (1UL << 8)
#define FLAG_DF   (1UL << 10)
#define FLAG_IOPL (3UL << 12)
#define FLAG_NT   (1UL << 14)
#define FLAG_RF   (1UL << 16)
#define FLAG_AC   (1UL << 18)
#define FLAG_ID   (1UL << 21)

/* System call `nr` (no arguments) made with `set` added to RFLAGS; stores
 * RFLAGS as the call left it in *after and clears `set` again. The red
 * zone below rsp is stepped over before pushing. */
static long syscall_with_flags(long nr, unsigned long set, unsigned long *after)
{
    long ret;
    unsigned long flags;
    __asm__ volatile("lea -128(%%rsp), %%rsp\n\t"
                     "pushfq\n\t"
                     "orq %[set], (%%rsp)\n\t"
                     "popfq\n\t"
                     "syscall\n\t"
                     "pushfq\n\t"
                     "movq (%%rsp), %[flags]\n\t"
                     "andq %[clear], (%%rsp)\n\t"
                     "popfq\n\t"
                     "lea 128(%%rsp), %%rsp"
                     : "=a"(ret), [flags] "=&r"(flags)
                     : "0"(nr), [set] "r"(set), [clear] "r"(~set)
                     : "rcx", "r11", "memory", "cc");
    *after = flags;
    return ret;
}

static unsigned long read_flags(void)
{
    unsigned long flags;
    __asm__ volatile("lea -128(%%rsp), %%rsp\n\t"
                     "pushfq\n\t"
                     "popq %0\n\t"
                     "lea 128(%%rsp), %%rsp"
                     : "=r"(flags) : : "memory");
    return flags;
}

static void write_flags(unsigned long flags)
{
    __asm__ volatile("lea -128(%%rsp), %%rsp\n\t"
                     "pushq %0\n\t"
                     "popfq\n\t"
                     "lea 128(%%rsp), %%rsp"
                     : : "r"(flags) : "memory", "cc");
}

static void check_syscall_keeps_flags(unsigned long set, unsigned long kept)
{
    long pid = sys_getpid();
    unsigned long after = 0;
    CHECK_EQ(syscall_with_flags(SYS_GETPID, set, &after), pid);
    CHECK_EQ(after & kept, kept);
    CHECK_EQ(after & FLAG_IOPL, 0);
    CHECK(after & (1UL << 9)); /* interrupts stay on in user mode */
    CHECK_EQ(syscall_with_flags(SYS_YIELD, set, &after), E_OK);
    CHECK_EQ(after & kept, kept);
    CHECK_EQ(read_flags() & set & ~FLAG_RF, 0);
}

int main(void)
{
    check_syscall_keeps_flags(FLAG_NT, FLAG_NT);
    check_syscall_keeps_flags(FLAG_AC, FLAG_AC);
    check_syscall_keeps_flags(FLAG_ID, FLAG_ID);
    check_syscall_keeps_flags(FLAG_DF, FLAG_DF);
    check_syscall_keeps_flags(FLAG_RF, 0);
    check_syscall_keeps_flags(FLAG_IOPL, 0);
    check_syscall_keeps_flags(FLAG_NT | FLAG_AC | FLAG_ID | FLAG_RF | FLAG_IOPL,
                              FLAG_NT | FLAG_AC | FLAG_ID);

    /* Interrupts: timer ticks arrive while NT, AC and ID are set. */
    unsigned long hostile = FLAG_NT | FLAG_AC | FLAG_ID;
    unsigned long before = read_flags();
    write_flags(before | hostile);
    long start = sys_ticks();
    volatile unsigned long spins = 0;
    while (sys_ticks() < start + 3)
        for (int i = 0; i < 10000; i++)
            spins++;
    unsigned long during = read_flags();
    write_flags(before);
    CHECK_EQ(during & hostile, hostile);

    /* The ways that must end the program, not the kernel. */
    static const char *const modes[] = { "tf_single_step", "iopl_then_cli", "int80_nt",
                                         "int80_ac_id", "int80_tf", "syscall_tf" };
    for (unsigned i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char *argv[] = { "/bin/eflags_probe", (char *)modes[i], NULL };
        CHECK_EQ(test_run_wait("/bin/eflags_probe", argv), NEO_STATUS_CRASHED);
    }
    CHECK_EQ(test_run_wait("/bin/hello", NULL), 0);
    PASS();
}
