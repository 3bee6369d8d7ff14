/* The RAM file system keeps file data in frames, bounded by free memory, not
 * in the 32 MiB kernel heap it once used: a 96 MiB file in /tmp is written,
 * mapped shared and stored into, unmapped, and it reads back whole with
 * sys_read (checked at the start and end of every MiB). Truncating gives the
 * memory back for the tests after. */
#include <neo_test.h>
#include <sys/mman.h>

#define PATH "/tmp/files_96_mib.dat"
#define SIZE (96L * 1024 * 1024)
#define PAGE 4096L

static unsigned char block[256 * PAGE];

static unsigned char pattern(long i) { return (unsigned char)((i * 7 + 3) & 0xff); }

int main(void)
{
    test_make_file(PATH, SIZE, 7, 3);
    int fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *p = mmap(0, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(p[SIZE - 1], pattern(SIZE - 1));
    for (long off = 0; off < SIZE; off += 256 * PAGE)
        p[off + 1] = 0xee;
    CHECK_EQ(munmap(p, SIZE), 0);
    CHECK_EQ(sys_close(fd), E_OK); /* the stores reach the disk */

    struct neo_stat st;
    CHECK_EQ(sys_stat(PATH, &st), E_OK);
    CHECK_EQ((long)st.size, SIZE);
    fd = sys_open(PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    for (long off = 0; off < SIZE; off += (long)sizeof block) {
        long got = 0;
        while (got < (long)sizeof block) {
            int n = sys_read(fd, block + got, (int)((long)sizeof block - got));
            CHECK_GE(n, 1);
            got += n;
        }
        CHECK_EQ(block[0], pattern(off));
        CHECK_EQ(block[1], 0xee);
        CHECK_EQ(block[sizeof block - 1], pattern(off + (long)sizeof block - 1));
    }
    CHECK_EQ(sys_read(fd, block, 1), 0);
    CHECK_EQ(sys_close(fd), E_OK);

    CHECK_EQ(sys_close(sys_open(PATH, O_RDWR | O_TRUNC)), E_OK);
    PASS();
}
