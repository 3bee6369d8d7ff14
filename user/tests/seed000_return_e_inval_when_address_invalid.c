/* Seed 000, Valor de Retorno: E_INVAL "si la dirección ... [es] inválida":
 * NULL, unaligned, kernel-half, non-canonical, beyond the user range, and an
 * address inside (not at the start of) a mapping. */
#include <neo_test.h>

int main(void)
{
    int fd = sys_open(DATOS_PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    unsigned char *m = sys_mmap(fd, 0, 4 * 4096);
    CHECK(m != NULL);
    CHECK_EQ(sys_munmap(NULL, 4 * 4096), E_INVAL);
    CHECK_EQ(sys_munmap((void *)(NEO_USER_BASE - 4096), 4096), E_INVAL);
    CHECK_EQ(sys_munmap(m + 1, 4 * 4096), E_INVAL);
    CHECK_EQ(sys_munmap(m + 4095, 4 * 4096), E_INVAL);
    CHECK_EQ(sys_munmap(m + 4096, 3 * 4096), E_INVAL);
    CHECK_EQ(sys_munmap((void *)0xffff800000000000UL, 4096), E_INVAL);
    CHECK_EQ(sys_munmap((void *)0xffffffff80000000UL, 4096), E_INVAL);
    CHECK_EQ(sys_munmap((void *)0x0000800000000000UL, 4096), E_INVAL); /* non-canonical */
    CHECK_EQ(sys_munmap((void *)(NEO_USER_END - 4096), 4096), E_INVAL);
    CHECK_EQ(sys_munmap((void *)-4096L, 4096), E_INVAL);
    CHECK_EQ(m[3 * 4096], DATOS_BYTE(3 * 4096));
    CHECK_EQ(sys_munmap(m, 4 * 4096), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
