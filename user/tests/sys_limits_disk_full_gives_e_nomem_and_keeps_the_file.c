/* Writing a file past what the RAM disk holds gives E_NOMEM (nothing
 * partial from that call), the data written before stays readable, and
 * truncating gives the room back. */
#include <neo_test.h>

#define PATH "/tmp/limits_disk_full.dat"

static unsigned char chunk[64 * 1024];

int main(void)
{
    for (unsigned i = 0; i < sizeof chunk; i++)
        chunk[i] = (unsigned char)(i * 13 + 1);
    int fd = sys_open(PATH, O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(fd, 0);
    long written = 0;
    int r;
    while ((r = sys_write(fd, chunk, sizeof chunk)) == (int)sizeof chunk)
        written += r;
    CHECK_EQ(r, E_NOMEM);
    CHECK_GE(written, 1L << 20);
    struct neo_stat st;
    CHECK_EQ(sys_stat(PATH, &st), E_OK);
    CHECK_EQ((long)st.size, written);
    CHECK_EQ(sys_close(fd), E_OK); /* the written data reaches the disk */

    unsigned char b[2];
    test_read_file(PATH, written - sizeof chunk + 5, b, 2);
    CHECK_EQ(b[0], (unsigned char)(5 * 13 + 1));
    CHECK_EQ(b[1], (unsigned char)(6 * 13 + 1));

    /* truncate: the room comes back */
    fd = sys_open(PATH, O_RDWR | O_TRUNC);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_write(fd, chunk, sizeof chunk), (int)sizeof chunk);
    CHECK_EQ(sys_close(fd), E_OK);
    fd = sys_open(PATH, O_RDWR | O_TRUNC);
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
