/* Issue 9 item 4: sys_write from a buffer whose head is mapped but whose
 * tail is not. The call fails (E_INVAL), so it must change nothing: not the
 * file's size, not its bytes, not the descriptor's position. It used to
 * store the head (every 16 KiB step before the bad one) and then report
 * E_INVAL. (A write that reports a partial count instead would be honest
 * too; then the file must hold exactly that many bytes.) */
#include <neo_test.h>
#include <sys/mman.h>

#define PATH "/tmp/write_bad_tail.dat"
#define PAGES 6

int main(void)
{
    unsigned char *buf = mmap(NULL, PAGES * 4096, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(buf != MAP_FAILED);
    for (int i = 0; i < PAGES * 4096; i++)
        buf[i] = (unsigned char)(i * 3 + 1);
    CHECK_EQ(munmap(buf + (PAGES - 1) * 4096, 4096), 0); /* the bad tail */

    int fd = sys_open(PATH, O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_write(fd, "old", 3), 3);
    CHECK_EQ(sys_close(fd), E_OK);

    fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    int r = sys_write(fd, buf, PAGES * 4096);
    struct neo_stat st;
    CHECK_EQ(sys_stat(PATH, &st), E_OK);
    if (r < 0) {
        CHECK_EQ(r, E_INVAL);
        CHECK_EQ((long)st.size, 3); /* nothing changed */
        /* the position did not move either: the next byte lands at 0 */
        CHECK_EQ(sys_write(fd, "N", 1), 1);
        CHECK_EQ(sys_close(fd), E_OK);
        unsigned char back[3];
        test_read_file(PATH, 0, back, 3);
        CHECK_EQ(back[0], 'N');
        CHECK_EQ(back[1], 'l');
        CHECK_EQ(back[2], 'd');
    } else {
        CHECK_GE(r, 1);
        CHECK_LE(r, (PAGES - 1) * 4096); /* not past the bad tail */
        CHECK_EQ((long)st.size, r > 3 ? r : 3);
        CHECK_EQ(sys_close(fd), E_OK);
        unsigned char back[1];
        test_read_file(PATH, r - 1, back, 1);
        CHECK_EQ(back[0], (unsigned char)((r - 1) * 3 + 1));
    }
    CHECK_EQ(munmap(buf, (PAGES - 1) * 4096), 0);
    PASS();
}
