/* A program cannot run the kernel out of its own memory: mapping one page at
 * a time (alternate protections, so nothing merges) ends with ENOMEM, not a
 * kernel failure; the mappings made work, and after unmapping them the same
 * program maps again. Meanwhile sys_mmap says E_NOMEM too. */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

#define MAX_TRIES 2000000L

static char *made[MAX_TRIES];

int main(void)
{
    int fd = sys_open("/home/usuario/datos.bin", O_RDONLY);
    CHECK_GE(fd, 0);
    long n = 0;
    char *p = NULL;
    for (; n < MAX_TRIES; n++) {
        p = mmap(NULL, 4096, (n & 1) ? PROT_READ : PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
        if (p == MAP_FAILED)
            break;
        made[n] = p;
    }
    CHECK(p == MAP_FAILED);
    CHECK_EQ(errno, ENOMEM);
    CHECK_GE(n, 100000); /* the benchmark's 100,000 mappings fit */

    CHECK(sys_mmap(fd, 0, 4096) == NULL);
    CHECK_EQ(sys_errno(), E_NOMEM);

    /* what was mapped works */
    made[0][0] = 7;
    CHECK_EQ(made[0][0], 7);

    /* unmapping whole mappings works even now, and gives the room back */
    for (long i = 0; i < n; i++)
        CHECK_EQ(munmap(made[i], 4096), 0);
    char *again = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(again != MAP_FAILED);
    char *m = sys_mmap(fd, 0, 4096);
    CHECK(m != NULL);
    CHECK_EQ(sys_munmap(m, 4096), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
