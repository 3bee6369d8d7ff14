/* Disk test, booted with --memory 64M: /home/usuario/big256.bin is a
 * 256 MiB file made on the host (the 64-bit word at byte 8k holds
 * k * GOLDEN), four times the machine's RAM. Read whole through one
 * sys_mmap mapping (the first word of each page: one fault and one disk
 * read per page) and then through sys_read in 64 KiB pieces (every word):
 * every word is the one the host wrote, and the sums are right. Only
 * reclaim (clean file pages leaving RAM) lets this finish.
 * tests/in_qemu.rs makes the image and checks the lines. */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>

#define BIG (256L * 1024 * 1024)
#define PAGE 4096
#define WORDS_PER_PAGE (PAGE / 8)
#define GOLDEN 0x9E3779B97F4A7C15UL
#define PIECE (64 * 1024)

void main()
{
    int fd = sys_open("/home/usuario/big256.bin", O_RDONLY);
    CHECK_GE(fd, 0);
    struct neo_stat st;
    CHECK_EQ(sys_stat("/home/usuario/big256.bin", &st), E_OK);
    CHECK_EQ(st.size, BIG);

    unsigned long *m = (unsigned long *)sys_mmap(fd, 0, (int)BIG);
    CHECK(m != NULL);
    unsigned long sum = 0, want = 0;
    long wrong = 0;
    for (long p = 0; p < BIG / PAGE; p++) {
        unsigned long k = (unsigned long)p * WORDS_PER_PAGE;
        unsigned long w = m[k];
        wrong += w != k * GOLDEN;
        sum += w;
        want += k * GOLDEN;
    }
    CHECK_EQ(wrong, 0);
    CHECK_EQ(sum, want);
    printf("disk_big_map: mapping sum right (%lx)\n", sum);
    CHECK_EQ(sys_munmap(m, (int)BIG), E_OK);

    static unsigned long piece[PIECE / 8];
    unsigned long k = 0;
    sum = 0;
    want = 0;
    for (;;) {
        int n = sys_read(fd, piece, PIECE);
        CHECK_GE(n, 0);
        if (n == 0)
            break;
        CHECK_EQ(n % 8, 0);
        for (int i = 0; i < n / 8; i++, k++) {
            wrong += piece[i] != k * GOLDEN;
            sum += piece[i];
            want += k * GOLDEN;
        }
    }
    CHECK_EQ(k, BIG / 8);
    CHECK_EQ(wrong, 0);
    CHECK_EQ(sum, want);
    printf("disk_big_map: read sum right (%lx)\n", sum);
    CHECK_EQ(sys_close(fd), E_OK);
}
