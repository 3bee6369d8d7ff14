/* One sys_write of many pages (larger than the kernel's copy step) stores
 * every byte in order, advances the position by all of it, and a second
 * write continues right after. sys_read of the same size reads it back. */
#include <neo_test.h>

#define PATH "/tmp/large_write.dat"
#define SIZE (100 * 1024 + 123)

static unsigned char out[SIZE], in[2 * SIZE];

int main(void)
{
    for (int i = 0; i < SIZE; i++)
        out[i] = (unsigned char)(i * 7 + i / 4096);
    int fd = sys_open(PATH, O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_write(fd, out, SIZE), SIZE);
    CHECK_EQ(sys_write(fd, out, SIZE), SIZE);
    CHECK_EQ(sys_close(fd), E_OK);
    struct neo_stat st;
    CHECK_EQ(sys_stat(PATH, &st), E_OK);
    CHECK_EQ((long)st.size, 2L * SIZE);

    fd = sys_open(PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_read(fd, in, 2 * SIZE), 2 * SIZE);
    CHECK_EQ(sys_close(fd), E_OK);
    CHECK(!memcmp(in, out, SIZE));
    CHECK(!memcmp(in + SIZE, out, SIZE));
    return 0;
}
