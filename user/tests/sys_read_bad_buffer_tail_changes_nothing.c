/* Issue 9 item 4 ("a failed call changes nothing, or reports how much it
 * did"), the sys_read side of sys_write_bad_buffer_tail_changes_nothing:
 * sys_read into a buffer whose head is mapped but whose tail is not. If the
 * call fails (E_INVAL) the descriptor's position must not move; if it
 * reports a partial count, the position moves by exactly that count. It used
 * to fail with E_INVAL after moving the position past every 16 KiB step
 * that was copied out before the bad one. */
#include <neo_test.h>
#include <sys/mman.h>

#define PATH "/tmp/read_bad_tail.dat"
#define PAGES 6

/* Byte i of the file: differs between any two offsets a multiple of 256
 * apart within the file (a plain (i*m+a) & 0xff pattern would not). */
static unsigned char byte_at(long i) { return (unsigned char)((i >> 8) * 7 + i); }

static void make_file(void)
{
    static unsigned char data[PAGES * 4096];
    for (long i = 0; i < (long)sizeof data; i++)
        data[i] = byte_at(i);
    int fd = sys_open(PATH, O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_write(fd, data, sizeof data), (int)sizeof data);
    CHECK_EQ(sys_close(fd), E_OK);
}

int main(void)
{
    make_file();
    unsigned char *buf = mmap(NULL, PAGES * 4096, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(buf != MAP_FAILED);
    CHECK_EQ(munmap(buf + (PAGES - 1) * 4096, 4096), 0); /* the bad tail */

    int fd = sys_open(PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    int r = sys_read(fd, buf, PAGES * 4096);
    eprintf("sys_read with a bad tail: %d\n", r);
    long position;
    if (r < 0) {
        CHECK_EQ(r, E_INVAL);
        position = 0; /* nothing happened */
    } else {
        CHECK_GE(r, 1);
        CHECK_LE(r, (PAGES - 1) * 4096); /* not past the bad tail */
        CHECK_EQ(buf[r - 1], byte_at(r - 1));
        position = r;
    }
    unsigned char next;
    CHECK_EQ(sys_read(fd, &next, 1), 1);
    CHECK_EQ(next, byte_at(position));
    CHECK_EQ(sys_close(fd), E_OK);
    CHECK_EQ(munmap(buf, (PAGES - 1) * 4096), 0);
    PASS();
}
