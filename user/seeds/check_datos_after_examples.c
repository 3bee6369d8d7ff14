/* check_datos_after_examples.c - runs after the specification's examples.
 * The first example maps 4096 bytes of /home/usuario/datos.bin, stores
 * (char)i at byte i and unmaps: sys_munmap must have written those bytes to
 * the file. The rest of the file must still hold what the image shipped:
 * byte i = (i * 7 + 3) & 0xff. Checked through sys_read, not a mapping. */
#include <syscalls.h>
#include <error.h>
#include <neo.h>

static unsigned char buf[4096];

int main(void)
{
    int fd = sys_open("/home/usuario/datos.bin", O_RDONLY);
    if (fd < 0) {
        printf("cannot open datos.bin: %d\n", fd);
        return 1;
    }
    for (int page = 0; page < 256; page++) {
        int n = sys_read(fd, buf, sizeof buf);
        if (n != (int)sizeof buf) {
            printf("short read at page %d: %d\n", page, n);
            return 1;
        }
        for (int j = 0; j < 4096; j++) {
            int i = page * 4096 + j;
            unsigned char want = page == 0 ? (unsigned char)i : (unsigned char)((i * 7 + 3) & 0xff);
            if (buf[j] != want) {
                printf("byte %d is %d, expected %d\n", i, buf[j], want);
                return 1;
            }
        }
    }
    sys_close(fd);
    printf("datos.bin holds what the examples wrote\n");
    return 0;
}
