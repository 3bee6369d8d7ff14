/* seed_map_write_unmap.c - seed 000 "Ejemplo de Uso": map the first 4096 bytes
 * of /home/usuario/datos.bin read-write, store mapped[i] = (char)i, sys_munmap
 * (which writes the dirty page back to the file), sys_close. Then shows the
 * file's first bytes with sys_read and restores them. */
#include <error.h>
#include <syscalls.h>
#include <neo.h>

void main()
{
    int fd = sys_open("/home/usuario/datos.bin", O_RDWR);
    printf("sys_open(datos.bin, O_RDWR) = %d\n", fd);
    if (fd >= 0) {
        int size = 4096;
        char *mapped = (char *)sys_mmap(fd, 0, size);
        printf("sys_mmap(fd, 0, %d) = %p\n", size, mapped);
        if (mapped != NULL) {
            printf("before: mapped[0..7] = %02x %02x %02x %02x %02x %02x %02x %02x\n",
                   mapped[0] & 0xff, mapped[1] & 0xff, mapped[2] & 0xff, mapped[3] & 0xff,
                   mapped[4] & 0xff, mapped[5] & 0xff, mapped[6] & 0xff, mapped[7] & 0xff);
            for (int i = 0; i < size; i++)
                mapped[i] = (char)i;
            int result = sys_munmap(mapped, size);
            printf("sys_munmap(mapped, %d) = %d%s\n", size, result, result == E_OK ? " (E_OK)" : "");
            if (result != E_OK)
                sys_write(STDERR, "Error al desactivar mapeo\n", 27);
        } else {
            printf("sys_mmap failed: sys_errno() = %d\n", sys_errno());
        }
        printf("sys_close(fd) = %d\n", sys_close(fd));
    }

    unsigned char head[8];
    int rfd = sys_open("/home/usuario/datos.bin", O_RDWR);
    if (rfd >= 0 && sys_read(rfd, head, 8) == 8) {
        printf("file now starts with %02x %02x %02x %02x %02x %02x %02x %02x (the stores reached the file)\n",
               head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7]);
        /* restore the original content: byte i = (i*7+3) & 0xff */
        static unsigned char orig[4096];
        for (int i = 0; i < 4096; i++)
            orig[i] = (unsigned char)((i * 7 + 3) & 0xff);
        sys_close(rfd);
        rfd = sys_open("/home/usuario/datos.bin", O_RDWR);
        sys_write(rfd, orig, 4096);
        printf("(restored the first page of datos.bin)\n");
    }
    if (rfd >= 0)
        sys_close(rfd);
}
