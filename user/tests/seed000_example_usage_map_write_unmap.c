/* Seed 000, "Ejemplo de Uso", run as written (void main, O_RDWR on
 * /home/usuario/datos.bin, 4096 bytes, mapped[i] = (char)i, sys_munmap == E_OK),
 * then checked: the file holds the stores. The file is restored afterwards. */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>

static void seed_example(void)
{
    int fd = sys_open("/home/usuario/datos.bin", O_RDWR);

    if (fd >= 0) {
        int size = 4096;
        char *mapped = (char *)sys_mmap(fd, 0, size);

        if (mapped != NULL) {
            for (int i = 0; i < size; i++) {
                mapped[i] = (char)i;
            }

            int result = sys_munmap(mapped, size);
            if (result != E_OK) {
                sys_write(STDERR, "Error al desactivar mapeo\n", 27);
                neo_test_fail(__FILE__, __LINE__, "sys_munmap(mapped, size) == E_OK", result, E_OK, 1);
            }
        } else {
            neo_test_fail(__FILE__, __LINE__, "mapped != NULL", sys_errno(), E_OK, 1);
        }

        sys_close(fd);
    } else {
        neo_test_fail(__FILE__, __LINE__, "fd >= 0", fd, 0, 1);
    }
}

void main()
{
    seed_example();

    static unsigned char page[8192];
    test_read_file(DATOS_PATH, 0, page, sizeof page);
    for (int i = 0; i < 4096; i++)
        CHECK_EQ(page[i], (unsigned char)i);
    for (int i = 4096; i < 8192; i++)
        CHECK_EQ(page[i], DATOS_BYTE(i)); /* beyond the mapping: unchanged */

    /* restore the first page */
    for (int i = 0; i < 4096; i++)
        page[i] = DATOS_BYTE(i);
    int fd = sys_open(DATOS_PATH, O_RDWR);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_write(fd, page, 4096), 4096);
    CHECK_EQ(sys_close(fd), E_OK);
}
