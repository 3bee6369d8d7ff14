/* A sys_write whose buffer ends in unmapped memory fails with E_INVAL and
 * changes nothing: neither the file's size nor its bytes. The bad page lies
 * well past the first piece the kernel copies (16 KiB), so a kernel that
 * writes piece by piece and stops at the bad one would already have changed
 * the file. The same for a descriptor opened with O_APPEND. */
#include <neo_test.h>
#include <sys/mman.h>

#define PATH "/tmp/bad_tail.dat"
#define LEN (64 * 1024)

static void check_file_unchanged(void)
{
    struct neo_stat st;
    CHECK_EQ(sys_stat(PATH, &st), E_OK);
    CHECK_EQ((long)st.size, 10);
    unsigned char b[10];
    test_read_file(PATH, 0, b, 10);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(b[i], (unsigned char)('0' + i));
}

int main(void)
{
    test_make_file(PATH, 10, 1, '0'); /* "0123456789" */
    unsigned char *p = mmap(0, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(p != MAP_FAILED);
    for (int i = 0; i < LEN; i++)
        p[i] = 'x';
    CHECK_EQ(munmap(p + LEN - 4096, 4096), 0);

    int fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_write(fd, p, LEN), E_INVAL);
    check_file_unchanged();
    /* The position did not move either: a good write lands at offset 0. */
    CHECK_EQ(sys_write(fd, "A", 1), 1);
    CHECK_EQ(sys_close(fd), E_OK);
    unsigned char first;
    test_read_file(PATH, 0, &first, 1);
    CHECK_EQ(first, 'A');
    test_make_file(PATH, 10, 1, '0');

    fd = sys_open(PATH, O_WRONLY | O_APPEND);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_write(fd, p, LEN), E_INVAL);
    CHECK_EQ(sys_close(fd), E_OK);
    check_file_unchanged();
    return 0;
}
