/* Two files written with sys_write: 18 MiB, then 1 GiB (from an untouched
 * mapping), more than the memory that holds the RAM disk's data: the second
 * write is refused with E_NOMEM and changes nothing. It must never be
 * accepted and then lost when the file is closed (E_IO at close, bytes that
 * do not read back). Every byte of the first file reads back. */
#include <neo_test.h>
#include <sys/mman.h>

#define A "/tmp/room_a.dat"
#define B "/tmp/room_b.dat"
#define SIZE (18 * 1024 * 1024)
#define TOO_BIG (1L << 30)

static unsigned char buf[SIZE];

static unsigned char pattern(long i)
{
    return (unsigned char)((i * 31 + 7) & 0xff);
}

int main(void)
{
    for (long i = 0; i < SIZE; i++)
        buf[i] = pattern(i);
    int a = sys_open(A, O_RDWR | O_CREAT | O_TRUNC);
    int b = sys_open(B, O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(a, 0);
    CHECK_GE(b, 0);
    CHECK_EQ(sys_write(a, buf, SIZE), SIZE);
    void *big = mmap(0, TOO_BIG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(big != MAP_FAILED);
    CHECK_EQ(sys_write(b, big, TOO_BIG), E_NOMEM);
    CHECK_EQ(munmap(big, TOO_BIG), 0);
    struct neo_stat st;
    CHECK_EQ(sys_stat(B, &st), E_OK);
    CHECK_EQ((long)st.size, 0);
    CHECK_EQ(sys_close(b), E_OK);
    CHECK_EQ(sys_close(a), E_OK);

    for (long i = 0; i < SIZE; i++)
        buf[i] = 0;
    a = sys_open(A, O_RDONLY);
    CHECK_GE(a, 0);
    long got = 0;
    while (got < SIZE) {
        int n = sys_read(a, buf + got, (int)(SIZE - got));
        CHECK_GE(n, 1);
        got += n;
    }
    CHECK_EQ(sys_close(a), E_OK);
    for (long i = 0; i < SIZE; i++)
        if (buf[i] != pattern(i))
            CHECK_EQ(i, -1L); /* names the first byte that did not come back */

    /* The room goes back for the tests that follow. */
    CHECK_EQ(sys_close(sys_open(A, O_RDWR | O_TRUNC)), E_OK);
    CHECK_EQ(sys_close(sys_open(B, O_RDWR | O_TRUNC)), E_OK);
    return 0;
}
