/* Seed 000, Comportamiento 4: "Libera la región del espacio de direcciones
 * virtuales del proceso." The mapping disappears from the caller (mapping
 * count, maps listing, mincore) and its range can be mapped again. */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

static char listing[16384];

int main(void)
{
    int fd = sys_open(DATOS_PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    unsigned char *m = sys_mmap(fd, 0, 8 * 4096);
    CHECK(m != NULL);
    char start[32];
    snprintf(start, sizeof start, "%016lx-", (unsigned long)m);
    int n = sys_maps(listing, sizeof listing - 1);
    CHECK(n > 0 && n < (int)sizeof listing);
    listing[n] = 0;
    int found = 0;
    for (char *l = listing; *l; ) {
        if (!strncmp(l, start, strlen(start)))
            found = 1;
        char *nl = strchr(l, '\n');
        if (!nl) break;
        l = nl + 1;
    }
    CHECK(found);

    long maps_before = (long)test_meminfo().mappings;
    CHECK_EQ(sys_munmap(m, 8 * 4096), E_OK);
    CHECK_EQ((long)test_meminfo().mappings, maps_before - 1);

    n = sys_maps(listing, sizeof listing - 1);
    CHECK(n > 0 && n < (int)sizeof listing);
    listing[n] = 0;
    found = 0;
    for (char *l = listing; *l; ) {
        if (!strncmp(l, start, strlen(start)))
            found = 1;
        char *nl = strchr(l, '\n');
        if (!nl) break;
        l = nl + 1;
    }
    CHECK(!found);

    unsigned char vec[8];
    CHECK_EQ(mincore(m, 8 * 4096, vec), -1);
    CHECK_EQ(errno, ENOMEM);

    /* The freed range is usable again. */
    unsigned char *again = mmap(m, 8 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0);
    CHECK_EQ((long)again, (long)m);
    CHECK_EQ(again[0], 0);
    again[0] = 1;
    CHECK_EQ(munmap(again, 8 * 4096), 0);
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
