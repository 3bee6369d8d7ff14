/* void_main_garbage.c - helper: `void main` whose last call leaves a non-zero
 * value in rax. The void-main rule says the process must exit with 0. */
#include <syscalls.h>

__attribute__((noinline)) static int seventy_seven(void)
{
    __asm__ volatile("" ::: "memory");
    return 77;
}

void main()
{
    volatile int keep = seventy_seven();
    (void)keep;
    seventy_seven();
}
