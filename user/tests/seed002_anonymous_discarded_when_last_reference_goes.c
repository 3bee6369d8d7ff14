/* Seed 002, DIRTY PAGE HANDLING [Anonymous]: "If the memory is anonymous memory
 * and if the last reference is going away, then the contents are discarded."
 * Dirty anonymous pages (private and shared) are freed by munmap (free frames
 * back to the baseline) and a new mapping at the same place reads zeros. */
#include <neo_test.h>
#include <sys/mman.h>

#define PAGES 128

static void dirty_and_unmap(int flags, unsigned char *at)
{
    unsigned char *m = mmap(at, PAGES * 4096, PROT_READ | PROT_WRITE, flags | (at ? MAP_FIXED : 0), -1, 0);
    CHECK(m != MAP_FAILED);
    if (at)
        CHECK_EQ((long)m, (long)at);
    for (int p = 0; p < PAGES; p++)
        memset(m + p * 4096, 0xd7, 4096);
    CHECK_EQ(munmap(m, PAGES * 4096), 0);
}

int main(void)
{
    static const int kinds[] = { MAP_PRIVATE | MAP_ANON, MAP_SHARED | MAP_ANON };
    for (unsigned k = 0; k < 2; k++) {
        dirty_and_unmap(kinds[k], NULL); /* warm-up */
        long free0 = test_free_frames();
        unsigned char *m = mmap(NULL, PAGES * 4096, PROT_READ | PROT_WRITE, kinds[k], -1, 0);
        CHECK(m != MAP_FAILED);
        for (int p = 0; p < PAGES; p++)
            memset(m + p * 4096, 0xd7, 4096);
        CHECK_LE(test_free_frames(), free0 - PAGES); /* the dirty pages took frames */
        CHECK_EQ(munmap(m, PAGES * 4096), 0);
        CHECK_FRAMES_BACK(free0);                     /* ... and gave them back */

        /* the contents are gone: the same range mapped again reads zeros */
        unsigned char *again = mmap(m, PAGES * 4096, PROT_READ | PROT_WRITE, kinds[k] | MAP_FIXED, -1, 0);
        CHECK_EQ((long)again, (long)m);
        for (int p = 0; p < PAGES; p++)
            for (int i = 0; i < 4096; i += 64)
                CHECK_EQ(again[p * 4096 + i], 0);
        CHECK_EQ(munmap(again, PAGES * 4096), 0);
        dirty_and_unmap(kinds[k], m);
        CHECK_FRAMES_BACK(free0);
    }
    return 0;
}
