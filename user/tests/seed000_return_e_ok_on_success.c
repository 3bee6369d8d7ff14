/* Seed 000, Valor de Retorno: "Devuelve E_OK (0) si la syscall se ejecuta
 * correctamente y el mapeo fue desactivado." Checked for read-only and
 * read-write mappings, page-sized and odd sizes, non-zero offsets. */
#include <neo_test.h>

int main(void)
{
    CHECK_EQ(E_OK, 0);
    int ro = sys_open(DATOS_PATH, O_RDONLY);
    int rw = sys_open(DATOS_PATH, O_RDWR);
    CHECK_GE(ro, 0);
    CHECK_GE(rw, 0);
    static const int sizes[] = { 1, 100, 4096, 4097, 3 * 4096, 256 * 1024 };
    static const int offsets[] = { 0, 4096, 64 * 4096 };
    /* page 0 of datos.bin may hold the seed example's stores: values are
     * checked from byte 4096 on */
    long maps0 = (long)test_meminfo().mappings;
    for (unsigned s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (unsigned o = 0; o < sizeof offsets / sizeof offsets[0]; o++) {
            unsigned char *a = sys_mmap(ro, offsets[o], sizes[s]);
            CHECK(a != NULL);
            CHECK_EQ(sys_errno(), E_OK);
            if (offsets[o] > 0)
                CHECK_EQ(a[0], DATOS_BYTE(offsets[o]));
            if (offsets[o] + sizes[s] > 4096)
                CHECK_EQ(a[sizes[s] - 1], DATOS_BYTE(offsets[o] + sizes[s] - 1));
            unsigned char *b = sys_mmap(rw, offsets[o], sizes[s]);
            CHECK(b != NULL);
            CHECK_EQ(b[sizes[s] - 1], a[sizes[s] - 1]);
            CHECK_EQ(sys_munmap(a, sizes[s]), E_OK);
            CHECK_EQ(sys_munmap(b, sizes[s]), E_OK);
        }
    }
    CHECK_EQ((long)test_meminfo().mappings, maps0);
    CHECK_EQ(sys_close(ro), E_OK);
    CHECK_EQ(sys_close(rw), E_OK);
    return 0;
}
