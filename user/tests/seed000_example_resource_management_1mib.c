/* Seed 000, "Ejemplo de Gestión de Recursos": map the whole 1 MiB file
 * read-only, process it, always sys_munmap before leaving, sys_close.
 * Checked: every byte matches the file, and afterwards the mapping and the
 * frames it needed are gone. */
#include <syscalls.h>
#include <neo_test.h>

static int processed_ok;

static void procesar_datos(void *mapped, int size)
{
    const unsigned char *p = mapped;
    static unsigned char chunk[4096];
    int fd = sys_open(DATOS_PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    for (int off = 0; off < size; off += 4096) {
        CHECK_EQ(sys_read(fd, chunk, 4096), 4096);
        CHECK_EQ(memcmp(p + off, chunk, 4096), 0);
    }
    /* the file as created at boot (other tests restore what they change) */
    for (int i = 4096; i < size; i += 997)
        CHECK_EQ(p[i], DATOS_BYTE(i));
    CHECK_EQ(sys_close(fd), E_OK);
    processed_ok = 1;
}

static void procesar_archivo_mapeado(const char *filename)
{
    int fd = sys_open(filename, O_RDONLY);
    if (fd < 0) return;

    int size = 1024 * 1024;  // 1 MB
    void *mapped = sys_mmap(fd, 0, size);

    if (mapped != NULL) {
        procesar_datos(mapped, size);
        CHECK_EQ(sys_munmap(mapped, size), E_OK);
    }

    sys_close(fd);
}

int main(void)
{
    long maps0 = (long)test_meminfo().mappings;
    long resident0 = (long)test_meminfo().resident_pages;
    procesar_archivo_mapeado(DATOS_PATH);
    CHECK(processed_ok);
    CHECK_EQ((long)test_meminfo().mappings, maps0);
    /* the 256 file pages are no longer resident in this process */
    CHECK_LE((long)test_meminfo().resident_pages, resident0 + 8);
    return 0;
}
