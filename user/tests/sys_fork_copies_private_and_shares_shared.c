/* docs/abi.md fork: 0 in the child, the pid in the parent; private memory is
 * copied, MAP_SHARED and sys_mmap mappings are shared; the child is waitable. */
#include <neo_test.h>
#include <sys/mman.h>

static int private_value = 5;

int main(void)
{
    volatile int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANON, -1, 0);
    CHECK(shared != MAP_FAILED);
    test_make_file("/tmp/sys_fork.dat", 4096, 0, 0);
    int fd = sys_open("/tmp/sys_fork.dat", O_RDWR);
    CHECK_GE(fd, 0);
    volatile unsigned char *f = sys_mmap(fd, 0, 4096);
    CHECK(f != NULL);
    int parent = sys_getpid();
    int pid = fork();
    CHECK_GE(pid, 0);
    if (pid == 0) {
        if (sys_getpid() == parent)
            sys_exit(30);
        private_value = 6;
        shared[0] = 7;
        f[0] = 8;
        sys_exit(0);
    }
    int st = -1;
    CHECK_EQ(sys_wait(&st), pid);
    CHECK_EQ(st, 0);
    CHECK_EQ(private_value, 5);
    CHECK_EQ(shared[0], 7);
    CHECK_EQ(f[0], 8);
    CHECK_EQ(sys_munmap((void *)f, 4096), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
