/* Seed 000, Comportamiento 3: "Elimina las entradas de la tabla de páginas que
 * mapean la región virtual." After sys_munmap the touched pages are no longer
 * resident in the caller (meminfo resident_pages), mincore sees no mapping,
 * and the TLB was invalidated. The fault on access is checked by
 * seed000_note_access_after_munmap_faults. */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

int main(void)
{
    int fd = sys_open(DATOS_PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    unsigned char *m = sys_mmap(fd, 0, 32 * 4096);
    CHECK(m != NULL);
    unsigned long sum = 0;
    for (int p = 0; p < 32; p++)
        sum += m[p * 4096];
    CHECK(sum > 0);
    unsigned char vec[32];
    CHECK_EQ(mincore(m, 32 * 4096, vec), 0);
    for (int p = 0; p < 32; p++)
        CHECK_EQ(vec[p] & 1, 1);

    struct neo_meminfo before = test_meminfo();
    CHECK_EQ(sys_munmap(m, 32 * 4096), E_OK);
    struct neo_meminfo after = test_meminfo();
    CHECK_EQ((long)before.resident_pages - (long)after.resident_pages, 32);
    CHECK((after.tlb_flush_page - before.tlb_flush_page) + (after.tlb_flush_all - before.tlb_flush_all) >= 1);
    CHECK_EQ(mincore(m, 32 * 4096, vec), -1);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
