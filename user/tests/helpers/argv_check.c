/* argv_check.c - helper: checks the process start state and its arguments.
 * Expected: argv = { "/bin/argv_check", "alpha", "beta gamma", "" , NULL }.
 * Exits 0 when everything matches, otherwise 10 + the number of the failed check. */
#include <syscalls.h>
#include <neo.h>

int main(int argc, char **argv)
{
    unsigned long sp;
    __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
    if (argc != 4) return 11;
    if (strcmp(argv[0], "/bin/argv_check")) return 12;
    if (strcmp(argv[1], "alpha")) return 13;
    if (strcmp(argv[2], "beta gamma")) return 14;
    if (strcmp(argv[3], "")) return 15;
    if (argv[4] != NULL) return 16;
    /* argv and its strings live on the initial stack, below STACK_TOP */
    if ((unsigned long)argv > 0x7ffffff00000UL || (unsigned long)argv < 0x7ffffff00000UL - 256 * 1024)
        return 17;
    if (sp > (unsigned long)argv) return 18;
    return 0;
}
