/* Issue 9 item 2: with the kernel heap at its reserve (this program maps
 * one page at a time until mmap says ENOMEM), `munmap(addr, 1)` of a whole
 * one-page mapping must work: the length is rounded up to whole pages, so
 * the call removes the mapping and splits nothing, and docs/abi.md
 * ('Limits') promises that unmapping whole mappings always works. It used to
 * fail with ENOMEM (the split check looked at addr + 1, not the rounded
 * end). Afterwards the page is no longer mapped. */
#include <neo_test_heap.h> /* reach_heap_reserve, stop_hogs, made[] */
#include <sys/mman.h>
#include <errno.h>

int main(void)
{
    start_hogs();
    long n = reach_heap_reserve();
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
    stop_hogs();
    PASS();
}
