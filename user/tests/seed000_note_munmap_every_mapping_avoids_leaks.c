/* Seed 000, Notas: "Es fundamental llamar a sys_munmap para cada región mapeada
 * con sys_mmap para evitar fugas de recursos." Many regions mapped, dirtied and
 * each unmapped: mappings and free frames return to the baseline. */
#include <neo_test.h>

#define PATH "/tmp/seed000_leaks.dat"
#define REGIONS 32
#define PAGES 4

static unsigned char *regions[REGIONS];

static void cycle(int fd)
{
    for (int r = 0; r < REGIONS; r++) {
        regions[r] = sys_mmap(fd, 0, PAGES * 4096);
        CHECK(regions[r] != NULL);
        for (int p = 0; p < PAGES; p++)
            regions[r][p * 4096 + r] = (unsigned char)r;
    }
    for (int r = 0; r < REGIONS; r++)
        CHECK_EQ(sys_munmap(regions[r], PAGES * 4096), E_OK);
}

int main(void)
{
    test_make_file(PATH, PAGES * 4096, 0, 0);
    int fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    cycle(fd); /* warm-up: kernel structures and page tables */
    long maps0 = (long)test_meminfo().mappings;
    long free0 = test_free_frames();
    for (int i = 0; i < 8; i++)
        cycle(fd);
    CHECK_EQ((long)test_meminfo().mappings, maps0);
    CHECK_FRAMES_BACK(free0);
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
