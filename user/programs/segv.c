/* segv.c - dereferences NULL. The kernel ends this process with status
 * NEO_STATUS_SEGFAULT (139); the rest of the system goes on. */
#include <syscalls.h>
#include <neo.h>

int main(void)
{
    eprintf("segv: about to read address 0 (NULL)...\n");
    volatile int *p = NULL;
    int v = *p;
    eprintf("segv: still alive?! read %d\n", v);
    return 1;
}
