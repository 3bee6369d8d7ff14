/* Disk test: a file on the volume may be larger than the RAM disk's 32 MiB:
 * writes /home/usuario/big.bin, 32 MiB + 100 bytes (one page more than the
 * RAM disk holds; byte i = (i / 4096 + i) & 0xff), with sys_write in 64 KiB
 * pieces, then sys_close (the last reference writes it back) == E_OK.
 * tests/in_qemu.rs checks the image. */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>

#define BIG_SIZE (32L * 1024 * 1024 + 100)
#define PIECE (64 * 1024)

void main()
{
    static unsigned char piece[PIECE];
    int fd = sys_open("/home/usuario/big.bin", O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(fd, 0);
    for (long off = 0; off < BIG_SIZE; off += PIECE) {
        long n = BIG_SIZE - off < PIECE ? BIG_SIZE - off : PIECE;
        for (long i = 0; i < n; i++)
            piece[i] = (unsigned char)((off + i) / 4096 + off + i);
        CHECK_EQ(sys_write(fd, piece, (int)n), n);
    }
    CHECK_EQ(sys_close(fd), E_OK);
    printf("disk_big_file: written\n");
}
