/* Issue 9 item 2: with the kernel heap at its reserve (one-page mappings
 * until mmap says ENOMEM), mincore over a huge range. The kernel used to
 * allocate one byte per page of the range in its heap (16 MiB for 64 GiB)
 * and panic when that failed. mincore must answer without such an
 * allocation, or fail with ENOMEM: here the range holds one mapping of the
 * program's plus unmapped space, so ENOMEM is the answer either way, and a
 * mapped 64 GiB range gives the right residency bytes. */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

#define MAX_TRIES 2000000L
#define HUGE (64UL << 30)
/* A 64 GiB range this program never maps whole (it maps 66 GiB at most). */
#define FAR ((char *)0x600000000000UL)

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
    /* Made before the heap is low: a 64 GiB mapping (nothing touched but
     * two pages) and the 16 MiB answer vector, touched so it is resident. */
    char *big = mmap(NULL, HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(big != MAP_FAILED);
    big[0] = 1;
    big[HUGE - 4096] = 1;
    unsigned long pages = HUGE / 4096;
    unsigned char *vec = mmap(NULL, pages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(vec != MAP_FAILED);
    for (unsigned long i = 0; i < pages; i += 4096)
        vec[i] = 0xee;

    long n = map_until_enomem();

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
    CHECK_EQ(mincore(big, HUGE, vec), 0);
    CHECK_EQ(vec[0], 1);
    CHECK_EQ(vec[pages - 1], 1);
    CHECK_EQ(munmap(big, HUGE), 0);
    CHECK_EQ(munmap(vec, pages), 0);
    PASS();
}
