/* Issue 9 (deliverable): a per-process bound on kernel memory, so no single
 * program can exhaust the kernel heap for the others. This program maps one
 * page at a time until mmap says ENOMEM (its bound, or today the global
 * heap reserve). Other programs must still start and end normally: today
 * sys_run itself fails with E_NOMEM, because the one program took the
 * whole heap down to the reserve. */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

#define MAX_TRIES 2000000L

static char *made[MAX_TRIES];

static long map_until_enomem(void)
{
    long n = 0;
    for (; n < MAX_TRIES; n++) {
        char *p = mmap(NULL, 4096, (n & 1) ? PROT_READ : PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANON, -1, 0);
        if (p == MAP_FAILED) {
            CHECK_EQ(errno, ENOMEM);
            break;
        }
        made[n] = p;
    }
    CHECK_GE(n, 1000);
    return n;
}

int main(void)
{
    long n = map_until_enomem();

    /* another program starts and runs */
    CHECK_EQ(test_run_wait("/bin/hello", NULL), 0);

    /* and one with arguments (they are copied into kernel memory first) */
    char *argv[] = { "/bin/exit_status", "5", NULL };
    CHECK_EQ(test_run_wait("/bin/exit_status", argv), 5);

    for (long i = 0; i < n; i++)
        CHECK_EQ(munmap(made[i], 4096), 0);
    PASS();
}
