/* neo_test_mincore.h - the 64 GiB range the in-QEMU mincore tests
 * (user/tests) ask about.
 *
 * Owns: HUGE and HUGE_PAGES, map_huge_touching_its_ends (the 64 GiB mapping,
 * nothing touched but its first and last page) and map_resident_answer_vector
 * (mincore's answer vector for it, one byte a page: 16 MiB, touched so it is
 * resident before the call). Include it after neo_test_heap.h when a test
 * uses both, so that its checks end the hogs too.
 */
#ifndef NEO_TEST_MINCORE_H
#define NEO_TEST_MINCORE_H

#include <neo_test.h>
#include <sys/mman.h>

#define HUGE (64UL << 30)
#define HUGE_PAGES (HUGE / 4096)

/* Maps HUGE bytes (private, anonymous, read-write) and writes 1 to the
 * first byte of its first and of its last page only. */
__attribute__((unused)) static char *map_huge_touching_its_ends(void)
{
    char *big = mmap(NULL, HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(big != MAP_FAILED);
    big[0] = 1;
    big[HUGE - 4096] = 1;
    return big;
}

/* Maps HUGE_PAGES bytes for mincore's answer and writes 0xee to every one
 * of its pages, so it is resident before the call. */
__attribute__((unused)) static unsigned char *map_resident_answer_vector(void)
{
    unsigned char *vec =
        mmap(NULL, HUGE_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(vec != MAP_FAILED);
    for (unsigned long i = 0; i < HUGE_PAGES; i += 4096)
        vec[i] = 0xee;
    return vec;
}

#endif
