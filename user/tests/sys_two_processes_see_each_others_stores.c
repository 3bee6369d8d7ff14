/* neoos-api.md, sys_mmap: "several processes mapping the same file see each
 * other's changes." This process and a helper (sys_run, independent address
 * space) map the same file page with sys_mmap and exchange stores through it,
 * without any writeback in between. */
#include <neo_test.h>

#define PATH "/tmp/sys_two_processes.dat"
#define SPINS 200000

int main(void)
{
    test_make_file(PATH, 4096, 0, 0);
    int fd = sys_open(PATH, O_RDWR);
    CHECK_GE(fd, 0);
    volatile unsigned char *m = sys_mmap(fd, 0, 4096);
    CHECK(m != NULL);
    char *argv[] = { "/bin/peer_mapper", PATH, NULL };
    int pid = sys_run("/bin/peer_mapper", argv);
    CHECK_GE(pid, 1);
    m[0] = 1;                       /* the helper waits for this */
    int i;
    for (i = 0; i < SPINS && m[1] != 2; i++)
        sys_yield();
    CHECK_EQ(m[1], 2);              /* the helper's store, seen here */
    m[2] = 3;
    int status = -1;
    CHECK_EQ(sys_wait(&status), pid);
    CHECK_EQ(status, 0);
    CHECK_EQ(sys_munmap((void *)m, 4096), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
