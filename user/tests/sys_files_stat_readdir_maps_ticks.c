/* docs/abi.md: sys_stat, sys_readdir, sys_maps, sys_getpid, sys_ticks,
 * sys_open modes and errors, read-only /etc, sys_fsync. */
#include <neo_test.h>

static char buf[8192];

static int has_line(const char *text, int len, const char *name)
{
    int n = (int)strlen(name);
    for (int i = 0; i + n <= len; ) {
        if (!strncmp(text + i, name, n) && (i + n == len || text[i + n] == '\n'))
            return 1;
        while (i < len && text[i] != '\n') i++;
        i++;
    }
    return 0;
}

int main(void)
{
    struct neo_stat st;
    CHECK_EQ(sys_stat(DATOS_PATH, &st), E_OK);
    CHECK_EQ(st.kind, NEO_STAT_FILE);
    CHECK_EQ(st.size, DATOS_SIZE);
    CHECK_EQ(sys_stat("/bin", &st), E_OK);
    CHECK_EQ(st.kind, NEO_STAT_DIR);
    CHECK_EQ(sys_stat("/no/such/file", &st), E_NOENT);

    int n = sys_readdir("/bin", buf, sizeof buf);
    CHECK(n > 0 && n <= (int)sizeof buf);
    CHECK(has_line(buf, n, "hello"));
    CHECK(has_line(buf, n, "fault_probe"));
    CHECK_EQ(buf[n - 1], '\n');
    CHECK_EQ(sys_readdir("/bin", buf, 3), n);        /* truncated, full length returned */
    CHECK_EQ(sys_readdir("/nope", buf, sizeof buf), E_NOENT);
    CHECK_EQ(sys_readdir(DATOS_PATH, buf, sizeof buf), E_INVAL);

    n = sys_maps(buf, sizeof buf);
    CHECK(n > 0 && n <= (int)sizeof buf);
    CHECK_EQ(buf[n - 1], '\n');
    CHECK_EQ(sys_maps(NULL, 0), n);

    CHECK_GE(sys_getpid(), 1);
    long t0 = sys_ticks();
    CHECK_GE(t0, 0);
    for (int i = 0; i < 100; i++)
        sys_yield();
    CHECK_GE(sys_ticks(), t0);

    /* open modes */
    CHECK_EQ(sys_open("/etc/motd", O_RDWR), E_PERM);
    CHECK_EQ(sys_open("/etc/new_file", O_RDWR | O_CREAT), E_PERM);
    CHECK_EQ(sys_open("/tmp/definitely_missing", O_RDONLY), E_NOENT);
    CHECK_EQ(sys_open("/etc/motd", 3), E_INVAL);
    CHECK_EQ(sys_open("/etc/motd", 0x10000), E_INVAL);
    int fd = sys_open("/tmp/sys_files.txt", O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_open("/tmp/sys_files.txt", O_RDWR | O_CREAT | O_EXCL), E_EXISTS);
    CHECK_EQ(sys_write(fd, "abc", 3), 3);
    CHECK_EQ(sys_fsync(fd), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);
    fd = sys_open("/tmp/sys_files.txt", O_WRONLY | O_APPEND);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_write(fd, "de", 2), 2);
    CHECK_EQ(sys_read(fd, buf, 1), E_PERM);
    CHECK_EQ(sys_close(fd), E_OK);
    CHECK_EQ(sys_stat("/tmp/sys_files.txt", &st), E_OK);
    CHECK_EQ(st.size, 5);
    fd = sys_open("/etc/motd", O_RDONLY);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_write(fd, "x", 1), E_PERM);
    CHECK_GE(sys_read(fd, buf, sizeof buf), 1);
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
