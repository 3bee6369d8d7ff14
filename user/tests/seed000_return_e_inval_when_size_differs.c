/* Seed 000, Valor de Retorno: E_INVAL "si la dirección o el tamaño son
 * inválidos". The size must be exactly the one given to sys_mmap, even when the
 * other size covers the same pages. Nothing is unmapped on E_INVAL. */
#include <neo_test.h>

int main(void)
{
    int fd = sys_open(DATOS_PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    unsigned char *m = sys_mmap(fd, 0, 5000); /* 2 pages */
    CHECK(m != NULL);
    CHECK_EQ(sys_munmap(m, 4999), E_INVAL);
    CHECK_EQ(sys_munmap(m, 5001), E_INVAL);
    CHECK_EQ(sys_munmap(m, 8192), E_INVAL);   /* same pages, other size */
    CHECK_EQ(sys_munmap(m, 4096), E_INVAL);
    CHECK_EQ(sys_munmap(m, 12288), E_INVAL);
    CHECK_EQ(sys_munmap(m, 0), E_INVAL);
    CHECK_EQ(sys_munmap(m, -5000), E_INVAL);
    CHECK_EQ(sys_munmap(m, 0x7fffffff), E_INVAL);
    CHECK_EQ(m[4999], DATOS_BYTE(4999));      /* still mapped */
    CHECK_EQ(sys_munmap(m, 5000), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
