/* Issue 13, TLB shootdowns: a single-threaded process's table is loaded on its
 * own CPU only, so its munmap and mprotect invalidate there and ask no other
 * CPU: sys_meminfo's shootdown counters (fields 10-12) do not move across them,
 * while its local invalidation counters (fields 6-7) do. The suite runs on 2
 * CPUs, other programs beside this one. */
#include <neo_test.h>
#include <sys/mman.h>

#define PAGES 8

static void touch(unsigned char *m)
{
    for (int p = 0; p < PAGES; p++)
        m[p * 4096] = (unsigned char)(p + 1);
}

static unsigned long local_flushes(struct neo_meminfo mi)
{
    return mi.tlb_flush_page + mi.tlb_flush_all;
}

int main(void)
{
    unsigned char *m = mmap(NULL, PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(m != MAP_FAILED);
    touch(m);

    struct neo_meminfo before = test_meminfo();
    CHECK_EQ(mprotect(m, PAGES * 4096, PROT_READ), 0);
    struct neo_meminfo after = test_meminfo();
    CHECK(local_flushes(after) > local_flushes(before));
    CHECK_EQ(after.tlb_shootdown_ipis, before.tlb_shootdown_ipis);
    CHECK_EQ(after.tlb_remote_pages, before.tlb_remote_pages);
    CHECK_EQ(after.tlb_remote_full, before.tlb_remote_full);
    CHECK_EQ(m[3 * 4096], 4);

    before = test_meminfo();
    CHECK_EQ(munmap(m, PAGES * 4096), 0);
    after = test_meminfo();
    CHECK(local_flushes(after) > local_flushes(before));
    CHECK_EQ(after.tlb_shootdown_ipis, before.tlb_shootdown_ipis);
    CHECK_EQ(after.tlb_remote_pages, before.tlb_remote_pages);
    CHECK_EQ(after.tlb_remote_full, before.tlb_remote_full);
    return 0;
}
