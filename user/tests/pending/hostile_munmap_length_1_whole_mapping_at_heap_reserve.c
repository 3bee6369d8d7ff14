/* Issue 9 item 2: with the kernel heap at its reserve (this program maps
 * one page at a time until mmap says ENOMEM), `munmap(addr, 1)` of a whole
 * one-page mapping must work: the length is rounded up to whole pages, so
 * the call removes the mapping and splits nothing, and docs/abi.md
 * ('Limits') promises that unmapping whole mappings always works. It used to
 * fail with ENOMEM (the split check looked at addr + 1, not the rounded
 * end). Afterwards the page is no longer mapped. */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

#define MAX_TRIES 2000000L

static char *made[MAX_TRIES];

/* Maps one page at a time (alternate protections: nothing merges) until
 * ENOMEM; returns how many were made. */
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
    struct neo_meminfo before = test_meminfo();

    /* Whole one-page mappings, each given as length 1, then 4095. */
    for (long i = 0; i < 64; i += 2) {
        CHECK_EQ(munmap(made[i], 1), 0);
        CHECK_EQ(munmap(made[i + 1], 4095), 0);
    }
    struct neo_meminfo after = test_meminfo();
    CHECK_EQ((long)after.mappings, (long)before.mappings - 64);

    /* The pages are gone: mincore says the range is not mapped. */
    unsigned char vec[1];
    CHECK_EQ(mincore(made[0], 4096, vec), -1);
    CHECK_EQ(errno, ENOMEM); /* no longer mapped */

    for (long i = 64; i < n; i++)
        CHECK_EQ(munmap(made[i], 4096), 0);
    PASS();
}
