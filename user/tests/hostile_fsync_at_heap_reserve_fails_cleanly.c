/* Issue 9 item 2: a file with about 25 MiB of dirty data in the page cache,
 * then the kernel heap brought to its reserve (one-page mappings until mmap
 * says ENOMEM), then sys_fsync. Writeback stores the data on the RAM disk,
 * whose pages live in the kernel heap: it used to allocate them infallibly
 * and panic the kernel. sys_fsync must either succeed or fail cleanly
 * (E_NOMEM or E_IO, the data still cached); once the mappings are gone,
 * sys_fsync and close succeed and every byte reads back. */
#include <neo_test_heap.h> /* reach_heap_reserve, stop_hogs, made[] */
#include <sys/mman.h>
#include <errno.h>

#define PATH "/tmp/hostile_fsync_reserve.dat"
#define FILE_SIZE (25L * 1024 * 1024)

static unsigned char chunk[64 * 1024];

static unsigned char pattern(long i) { return (unsigned char)((i * 11 + 5) & 0xff); }

int main(void)
{
    start_hogs();
    int fd = sys_open(PATH, O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(fd, 0);
    for (long off = 0; off < FILE_SIZE; off += (long)sizeof chunk) {
        for (long i = 0; i < (long)sizeof chunk; i++)
            chunk[i] = pattern(off + i);
        CHECK_EQ(sys_write(fd, chunk, sizeof chunk), (int)sizeof chunk);
    }

    long n = reach_heap_reserve();
    int r = sys_fsync(fd);
    CHECK(r == E_OK || r == E_NOMEM || r == E_IO);

    for (long i = 0; i < n; i++)
        CHECK_EQ(munmap(made[i], 4096), 0);
    stop_hogs(); /* the heap is above its reserve again */
    CHECK_EQ(sys_fsync(fd), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);

    /* every byte is there (sampled: one 2-byte read per 64 KiB) */
    struct neo_stat st;
    CHECK_EQ(sys_stat(PATH, &st), E_OK);
    CHECK_EQ((long)st.size, FILE_SIZE);
    fd = sys_open(PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    for (long off = 0; off < FILE_SIZE; off += (long)sizeof chunk) {
        CHECK_EQ(sys_read(fd, chunk, sizeof chunk), (int)sizeof chunk);
        CHECK_EQ(chunk[0], pattern(off));
        CHECK_EQ(chunk[sizeof chunk - 1], pattern(off + (long)sizeof chunk - 1));
    }
    CHECK_EQ(sys_close(fd), E_OK);
    /* give the disk back to the tests after this one */
    fd = sys_open(PATH, O_RDWR | O_TRUNC);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_close(fd), E_OK);
    PASS();
}
