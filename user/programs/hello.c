/* hello.c - the smallest NeoOS program: `void main`, one sys_write to STDERR.
 * A `void main` program exits with status 0. */
#include <syscalls.h>

void main()
{
    static const char msg[] = "Hello from NeoOS user space!\n";
    sys_write(STDERR, msg, sizeof msg - 1);
}
