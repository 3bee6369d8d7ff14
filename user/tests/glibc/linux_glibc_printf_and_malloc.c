// expect-output: hello from glibc printf: 1 /bin/linux_glibc_printf_and_malloc 2.25
/* A static glibc program (no NeoOS note) starts on the Linux initial stack
 * (glibc reads AT_RANDOM, AT_PHDR for its TLS, AT_HWCAP), sets its thread
 * pointer with arch_prctl, allocates with malloc (brk, then mmap for a
 * large block) and prints with printf. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static __thread int thread_local_value = 11;

int main(int argc, char **argv)
{
    char *small = malloc(100);
    char *big = malloc(4 << 20);
    if (!small || !big || thread_local_value != 11) {
        fprintf(stderr, "FAIL: malloc or thread-local storage\n");
        return 1;
    }
    memset(small, 'x', 100);
    memset(big, 'y', 4 << 20);
    if (small[99] != 'x' || big[(4 << 20) - 1] != 'y') {
        fprintf(stderr, "FAIL: allocated memory does not hold its bytes\n");
        return 1;
    }
    free(big);
    free(small);
    printf("hello from glibc printf: %d %s %.2f\n", argc, argv[0], 2.25);
    return 0;
}
