/* seed_map_read_1mib.c - seed 000 "Ejemplo de Gestión de Recursos": map the
 * whole 1 MiB file read-only, process the data (a checksum), always sys_munmap
 * before leaving, then sys_close. */
#include <syscalls.h>
#include <neo.h>

static void procesar_datos(void *mapped, int size)
{
    const unsigned char *p = mapped;
    unsigned long sum = 0;
    for (int i = 0; i < size; i++)
        sum = sum * 31 + p[i];
    printf("processed %d bytes, checksum %lx, first bytes %02x %02x %02x\n", size, sum, p[0], p[1], p[2]);
}

static void procesar_archivo_mapeado(const char *filename)
{
    int fd = sys_open(filename, O_RDONLY);
    printf("sys_open(%s, O_RDONLY) = %d\n", filename, fd);
    if (fd < 0) return;

    int size = 1024 * 1024;  // 1 MB
    void *mapped = sys_mmap(fd, 0, size);
    printf("sys_mmap(fd, 0, %d) = %p\n", size, mapped);

    if (mapped != NULL) {
        procesar_datos(mapped, size);
        printf("sys_munmap = %d\n", sys_munmap(mapped, size));
    } else {
        printf("sys_mmap failed with %d\n", sys_errno());
    }

    printf("sys_close = %d\n", sys_close(fd));
}

void main()
{
    procesar_archivo_mapeado("/home/usuario/datos.bin");
}
