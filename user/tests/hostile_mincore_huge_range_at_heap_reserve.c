/* Issue 9 item 2: with the kernel heap at its reserve (one-page mappings
 * until mmap says ENOMEM), mincore over a huge range. The kernel used to
 * allocate one byte per page of the range in its heap (16 MiB for 64 GiB)
 * and panic when that failed. mincore must answer without such an
 * allocation, or fail with ENOMEM: here the range holds one mapping of the
 * program's plus unmapped space, so ENOMEM is the answer either way, and a
 * mapped 64 GiB range gives the right residency bytes. */
#include <neo_test_heap.h> /* reach_heap_reserve, stop_hogs, made[] */
#include <neo_test_mincore.h> /* HUGE, its mapping and answer vector */
#include <sys/mman.h>
#include <errno.h>

/* A 64 GiB range this program never maps whole (it maps 66 GiB at most). */
#define FAR ((char *)0x600000000000UL)

int main(void)
{
    start_hogs();
    /* Made before the heap is low: a 64 GiB mapping (nothing touched but
     * two pages) and the 16 MiB answer vector, touched so it is resident. */
    char *big = map_huge_touching_its_ends();
    unsigned long pages = HUGE_PAGES;
    unsigned char *vec = map_resident_answer_vector();

    long n = reach_heap_reserve();

    /* unmapped space in the range: ENOMEM, and no kernel panic */
    CHECK(big + HUGE <= FAR || big >= FAR + HUGE);
    CHECK_EQ(mincore(FAR, HUGE, vec), -1);
    CHECK_EQ(errno, ENOMEM);

    /* the mapped 64 GiB: either the answer, or ENOMEM */
    int r = mincore(big, HUGE, vec);
    if (r == 0) {
        CHECK_EQ(vec[0], 1);
        CHECK_EQ(vec[1], 0);
        CHECK_EQ(vec[pages / 2], 0);
        CHECK_EQ(vec[pages - 2], 0);
        CHECK_EQ(vec[pages - 1], 1);
    } else {
        CHECK_EQ(r, -1);
        CHECK_EQ(errno, ENOMEM);
    }

    for (long i = 0; i < n; i++)
        CHECK_EQ(munmap(made[i], 4096), 0);
    stop_hogs(); /* the heap is above its reserve again */
    CHECK_EQ(mincore(big, HUGE, vec), 0);
    CHECK_EQ(vec[0], 1);
    CHECK_EQ(vec[pages - 1], 1);
    CHECK_EQ(munmap(big, HUGE), 0);
    CHECK_EQ(munmap(vec, pages), 0);
    PASS();
}
