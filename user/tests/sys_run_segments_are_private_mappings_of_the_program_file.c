/* A program's segments are private mappings of its file: the maps listing
 * names the file for code and constants, initialised data starts with the
 * file's values, memory past a segment's file part reads as zeros, and a store
 * to the program's data changes this process only, never the file. */
#include <neo_test.h>

#define PROGRAM "/bin/sys_run_segments_are_private_mappings_of_the_program_file"

volatile unsigned int marker = 0x5eed1234u;  /* .data */
static volatile unsigned char zeros[3 * 4096]; /* .bss */

static char before[256 * 1024], after[256 * 1024];

static int read_program(char *buf, int size)
{
    int fd = sys_open(PROGRAM, O_RDONLY);
    CHECK_GE(fd, 0);
    int n = sys_read(fd, buf, size);
    CHECK_GE(n, 1);
    CHECK(n < size);
    CHECK_EQ(sys_close(fd), E_OK);
    return n;
}

int main(void)
{
    static char maps[8192];
    int len = sys_maps(maps, sizeof maps - 1);
    CHECK_GE(len, 1);
    maps[len < (int)sizeof maps - 1 ? len : (int)sizeof maps - 1] = 0;
    CHECK(strstr(maps, "r-xp file " PROGRAM) != NULL);

    CHECK_EQ(marker, 0x5eed1234u);
    for (unsigned i = 0; i < sizeof zeros; i++)
        CHECK_EQ(zeros[i], 0);

    int n = read_program(before, sizeof before);
    marker = marker + 1;
    zeros[5] = 9;
    CHECK_EQ(marker, 0x5eed1235u);
    CHECK_EQ(zeros[5], 9);
    CHECK_EQ(read_program(after, sizeof after), n);
    CHECK(!memcmp(before, after, n)); /* the file is unchanged */

    return 0;
}
