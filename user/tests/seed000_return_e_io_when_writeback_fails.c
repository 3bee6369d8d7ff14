/* Seed 000, Valor de Retorno: "E_IO: Si ocurrió un error al escribir cambios
 * pendientes al archivo." Uses the proposed fault-injection file /dev/faulty
 * (docs/abi.md §6): every write to its store fails. A dirty mapping of it
 * cannot be unmapped (E_IO) and stays intact; a clean one unmaps fine; the
 * process still exits cleanly with the dirty mapping in place. */
#include <neo_test.h>

int main(void)
{
    int fd = sys_open("/dev/faulty", O_RDWR);
    CHECK_GE(fd, 0);
    long maps0 = (long)test_meminfo().mappings;

    unsigned char *clean = sys_mmap(fd, 0, 4096);
    CHECK(clean != NULL);
    CHECK_EQ(clean[100], 0);
    CHECK_EQ(sys_munmap(clean, 4096), E_OK); /* nothing pending: nothing to write */

    unsigned char *m = sys_mmap(fd, 4096, 2 * 4096);
    CHECK(m != NULL);
    m[10] = 0x77;
    m[4096 + 10] = 0x88;
    CHECK_EQ(sys_munmap(m, 2 * 4096), E_IO);
    /* intact: still mapped, same contents, writable */
    CHECK_EQ((long)test_meminfo().mappings, maps0 + 1);
    CHECK_EQ(m[10], 0x77);
    CHECK_EQ(m[4096 + 10], 0x88);
    m[11] = 0x99;
    CHECK_EQ(m[11], 0x99);
    /* still pending, so it fails again */
    CHECK_EQ(sys_munmap(m, 2 * 4096), E_IO);
    CHECK_EQ(m[10], 0x77);
    CHECK_EQ(sys_fsync(fd), E_IO);
    /* exit with the dirty mapping still there: the kernel cleans it up */
    return 0;
}
