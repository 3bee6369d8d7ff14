/* Issue 9 item 4: two files written with one sys_write of 18 MiB each, on
 * the 32 MiB RAM disk. Both cannot be stored, so the second write must be
 * refused (E_NOMEM, nothing written). It used to be accepted (the space
 * check counted only what was already written back, not the first file's
 * data still in the page cache), and then closing the second file returned
 * E_IO and its bytes did not read back. Whatever a write accepts must
 * reach the disk: both closes succeed and every accepted byte reads back. */
#include <neo_test.h>
#include <sys/mman.h>

#define SIZE (18L * 1024 * 1024)
#define PATH_A "/tmp/disk_guarantee_a.dat"
#define PATH_B "/tmp/disk_guarantee_b.dat"

static unsigned long word_of(int file, long i) { return (unsigned long)i * 0x9e3779b97f4a7c15UL + (unsigned long)file; }

static void fill(unsigned long *buf, int file)
{
    for (long i = 0; i < SIZE / 8; i++)
        buf[i] = word_of(file, i);
}

/* Writes SIZE bytes of pattern `file` to a new `path` in one call; returns
 * the call's result and leaves the descriptor in *fd. */
static int write_whole(const char *path, int file, unsigned long *buf, int *fd)
{
    fill(buf, file);
    *fd = sys_open(path, O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(*fd, 0);
    return sys_write(*fd, buf, (int)SIZE);
}

/* The file holds what write_whole wrote (sampled every 4 KiB plus its
 * last word), or nothing at all if the write was refused. */
static void check_file(const char *path, int file, int accepted)
{
    struct neo_stat st;
    CHECK_EQ(sys_stat(path, &st), E_OK);
    CHECK_EQ((long)st.size, accepted ? SIZE : 0);
    if (!accepted)
        return;
    int fd = sys_open(path, O_RDONLY);
    CHECK_GE(fd, 0);
    static unsigned long page[512];
    for (long off = 0; off < SIZE; off += 4096) {
        CHECK_EQ(sys_read(fd, page, 4096), 4096);
        CHECK_EQ(page[0], word_of(file, off / 8));
        CHECK_EQ(page[511], word_of(file, off / 8 + 511));
    }
    CHECK_EQ(sys_close(fd), E_OK);
}

static void truncate(const char *path)
{
    int fd = sys_open(path, O_RDWR | O_TRUNC);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_close(fd), E_OK);
}

int main(void)
{
    unsigned long *buf = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(buf != MAP_FAILED);
    int fd_a, fd_b;
    int r_a = write_whole(PATH_A, 1, buf, &fd_a);
    int r_b = write_whole(PATH_B, 2, buf, &fd_b);
    eprintf("writes: %d, %d\n", r_a, r_b);
    CHECK(r_a == (int)SIZE || r_a == E_NOMEM);
    CHECK(r_b == (int)SIZE || r_b == E_NOMEM);
    CHECK(!(r_a == (int)SIZE && r_b == (int)SIZE)); /* 36 MiB do not fit in 32 */
    CHECK_EQ(r_a, (int)SIZE); /* the first fits on an empty disk */

    CHECK_EQ(sys_close(fd_a), E_OK);
    CHECK_EQ(sys_close(fd_b), E_OK);
    check_file(PATH_A, 1, r_a == (int)SIZE);
    check_file(PATH_B, 2, r_b == (int)SIZE);

    truncate(PATH_A);
    truncate(PATH_B);
    /* with the room back, the second file's write is accepted and stored */
    CHECK_EQ(write_whole(PATH_B, 2, buf, &fd_b), (int)SIZE);
    CHECK_EQ(sys_close(fd_b), E_OK);
    check_file(PATH_B, 2, 1);
    truncate(PATH_B);
    PASS();
}
