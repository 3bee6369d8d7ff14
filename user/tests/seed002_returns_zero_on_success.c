/* Seed 002, RETURN VALUES: "Upon successful completion, munmap returns zero."
 * Anonymous, file, shm attachment and sys_mmap regions; a range with holes;
 * a range where nothing is mapped. errno is left alone. */
#include <neo_test.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <errno.h>

int main(void)
{
    errno = 1234;
    void *a = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(a != MAP_FAILED);
    CHECK_EQ(munmap(a, 8192), 0);

    int fd = sys_open(DATOS_PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    void *f = mmap(NULL, 3 * 4096, PROT_READ, MAP_SHARED, fd, 4096);
    CHECK(f != MAP_FAILED);
    CHECK_EQ(((unsigned char *)f)[0], DATOS_BYTE(4096));
    CHECK_EQ(munmap(f, 3 * 4096), 0);

    void *n = sys_mmap(fd, 0, 4096);
    CHECK(n != NULL);
    CHECK_EQ(munmap(n, 4096), 0);          /* munmap removes any kind of mapping */
    CHECK_EQ(sys_munmap(n, 4096), E_INVAL); /* ... so it is gone */

    int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    CHECK_GE(id, 0);
    void *s = shmat(id, NULL, 0);
    CHECK(s != (void *)-1);
    CHECK_EQ(munmap(s, 4096), 0);
    CHECK_EQ(shmctl(id, IPC_RMID, NULL), 0);

    /* length not a multiple of the page size: rounded up */
    unsigned char *b = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(b != MAP_FAILED);
    CHECK_EQ(munmap(b, 4096 + 1), 0);
    unsigned char vec[2];
    CHECK_EQ(mincore(b, 2 * 4096, vec), -1);
    errno = 1234; /* mincore's failure set it; munmap must not */

    /* a range with nothing mapped in it: still 0 */
    CHECK_EQ(munmap(b, 2 * 4096), 0);
    CHECK_EQ(errno, 1234);
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
