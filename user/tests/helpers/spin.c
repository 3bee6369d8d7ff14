/* spin.c - helper: yields forever (until killed). */
#include <syscalls.h>

void main()
{
    for (;;)
        sys_yield();
}
