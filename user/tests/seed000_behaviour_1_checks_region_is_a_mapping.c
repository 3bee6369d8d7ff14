/* Seed 000, Comportamiento 1: "Verifica que la dirección y el tamaño correspondan
 * a una región válida previamente mapeada." A range that is not a sys_mmap
 * region is refused with E_INVAL and changes nothing; the real region is accepted. */
#include <neo_test.h>

int main(void)
{
    int fd = sys_open(DATOS_PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    unsigned char *m = sys_mmap(fd, 0, 2 * 4096);
    CHECK(m != NULL);
    long maps_before = (long)test_meminfo().mappings;

    static unsigned char not_mapped_by_sys_mmap[4096];
    CHECK_EQ(sys_munmap(not_mapped_by_sys_mmap, 4096), E_INVAL); /* program data */
    CHECK_EQ(sys_munmap(m + 4096, 4096), E_INVAL);                 /* inside the region */
    CHECK_EQ(sys_munmap(m - 4096, 2 * 4096), E_INVAL);             /* just before */
    CHECK_EQ(sys_munmap(m + 1, 2 * 4096), E_INVAL);                /* unaligned */
    CHECK_EQ(sys_munmap(m, 3 * 4096), E_INVAL);                    /* too long */

    /* Nothing changed: same mapping count, data still readable. */
    CHECK_EQ((long)test_meminfo().mappings, maps_before);
    CHECK_EQ(m[4096 + 5], DATOS_BYTE(4096 + 5));

    CHECK_EQ(sys_munmap(m, 2 * 4096), E_OK);
    CHECK_EQ((long)test_meminfo().mappings, maps_before - 1);
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
