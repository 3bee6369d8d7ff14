/* Seed 002: "If there are still other references to the memory when the munmap
 * is done, then nothing is done to the memory itself ... The memory will
 * continue to persist until the last reference goes away."
 * (1) fork: the parent unmaps a MAP_SHARED anonymous region while the child
 *     still uses it; the child sees the data and its stores work.
 * (2) a second view: two shm attachments; one is unmapped, the other keeps the
 *     data. (3) two sys_mmap views of one file page. */
#include <neo_test.h>
#include <sys/mman.h>
#include <sys/shm.h>

#define PAGES 256
#define SPINS 200000

int main(void)
{
    /* (1) fork */
    unsigned char *data = mmap(NULL, PAGES * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANON, -1, 0);
    volatile unsigned char *sync = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANON, -1, 0);
    CHECK(data != MAP_FAILED);
    CHECK(sync != MAP_FAILED);
    for (int i = 0; i < PAGES * 4096; i++)
        data[i] = (unsigned char)(i ^ 0x3c);
    long free_before = test_free_frames();
    int pid = fork();
    CHECK_GE(pid, 0);
    if (pid == 0) {
        int spins = 0;
        while (sync[0] != 1 && spins++ < SPINS)
            sys_yield();
        if (sync[0] != 1)
            sys_exit(20);
        for (int i = 0; i < PAGES * 4096; i++)
            if (data[i] != (unsigned char)(i ^ 0x3c))
                sys_exit(21);
        data[5] = 0x99;
        if (data[5] != 0x99)
            sys_exit(22);
        sync[1] = 1; /* child saw the memory alive */
        sys_exit(0);
    }
    CHECK_EQ(munmap(data, PAGES * 4096), 0);
    /* the child's reference keeps the pages: nothing came back */
    CHECK_LE(test_free_frames(), free_before + 32);
    sync[0] = 1;
    int status = -1;
    CHECK_EQ(sys_wait(&status), pid);
    CHECK_EQ(status, 0);
    CHECK_EQ(sync[1], 1);
    CHECK_EQ(munmap((void *)sync, 4096), 0);

    /* (2) two attachments of one segment */
    int id = shmget(IPC_PRIVATE, 2 * 4096, IPC_CREAT | 0600);
    CHECK_GE(id, 0);
    unsigned char *a = shmat(id, NULL, 0);
    unsigned char *b = shmat(id, NULL, 0);
    CHECK(a != (void *)-1 && b != (void *)-1);
    CHECK(a != b);
    CHECK_EQ(shmctl(id, IPC_RMID, NULL), 0); /* destroyed once the last one goes */
    a[4096 + 1] = 0x61;
    CHECK_EQ(b[4096 + 1], 0x61);
    CHECK_EQ(munmap(a, 2 * 4096), 0);
    CHECK_EQ(b[4096 + 1], 0x61);
    b[0] = 0x62;
    CHECK_EQ(b[0], 0x62);
    CHECK_EQ(shmdt(b), 0);

    /* (3) two sys_mmap views of the same file page */
    test_make_file("/tmp/seed002_refs.dat", 4096, 0, 0);
    int fd = sys_open("/tmp/seed002_refs.dat", O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *v1 = sys_mmap(fd, 0, 4096);
    unsigned char *v2 = sys_mmap(fd, 0, 4096);
    CHECK(v1 != NULL && v2 != NULL && v1 != v2);
    v1[9] = 0x19;
    CHECK_EQ(v2[9], 0x19);
    CHECK_EQ(sys_munmap(v1, 4096), E_OK);
    CHECK_EQ(v2[9], 0x19);
    v2[10] = 0x1a;
    CHECK_EQ(sys_munmap(v2, 4096), E_OK);
    unsigned char got[2];
    test_read_file("/tmp/seed002_refs.dat", 9, got, 2);
    CHECK_EQ(got[0], 0x19);
    CHECK_EQ(got[1], 0x1a);
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
