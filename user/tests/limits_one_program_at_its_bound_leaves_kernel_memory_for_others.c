/* Issue 9 (deliverable): a per-process bound on kernel memory, so no single
 * program can exhaust the kernel heap for the others. This program maps one
 * page at a time until mmap says ENOMEM (its bound, or today the global
 * heap reserve). Other programs must still start and end normally: today
 * sys_run itself fails with E_NOMEM, because the one program took the
 * whole heap down to the reserve. */
#include <neo_test_heap.h> /* map_pages_until_enomem, made[] */
#include <sys/mman.h>
#include <errno.h>

int main(void)
{
    long n = map_pages_until_enomem(made, MAX_TRIES);
    CHECK_GE(n, 1000);

    /* another program starts and runs */
    CHECK_EQ(test_run_wait("/bin/hello", NULL), 0);

    /* and one with arguments (they are copied into kernel memory first) */
    char *argv[] = { "/bin/exit_status", "5", NULL };
    CHECK_EQ(test_run_wait("/bin/exit_status", argv), 5);

    for (long i = 0; i < n; i++)
        CHECK_EQ(munmap(made[i], 4096), 0);
    PASS();
}
