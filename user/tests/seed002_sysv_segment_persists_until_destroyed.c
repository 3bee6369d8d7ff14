/* Seed 002, DIRTY PAGE HANDLING [System V Shared]: "the contents persist until
 * the System V memory region is destroyed or the system is rebooted."
 * Contents survive shmdt, munmap of the attachment and the exit of the creating
 * process; the frames stay in use until IPC_RMID, then come back. */
#include <neo_test.h>
#include <sys/shm.h>
#include <sys/mman.h>
#include <errno.h>

#define PAGES 16

int main(void)
{
    /* warm-up cycle */
    int w = shmget(IPC_PRIVATE, PAGES * 4096, IPC_CREAT | 0600);
    CHECK_GE(w, 0);
    unsigned char *wp = shmat(w, NULL, 0);
    CHECK(wp != (void *)-1);
    memset(wp, 1, PAGES * 4096);
    CHECK_EQ(shmdt(wp), 0);
    CHECK_EQ(shmctl(w, IPC_RMID, NULL), 0);

    long free0 = test_free_frames();
    int id = shmget(IPC_PRIVATE, PAGES * 4096, IPC_CREAT | 0600);
    CHECK_GE(id, 0);
    unsigned char *p = shmat(id, NULL, 0);
    CHECK(p != (void *)-1);
    for (int i = 0; i < PAGES * 4096; i++)
        p[i] = (unsigned char)(i * 13 + 5);
    CHECK_EQ(shmdt(p), 0);                         /* no attachment left */
    struct shmid_ds ds;
    CHECK_EQ(shmctl(id, IPC_STAT, &ds), 0);
    CHECK_EQ(ds.shm_nattch, 0);
    CHECK_EQ(ds.shm_segsz, PAGES * 4096);
    CHECK_LE(test_free_frames(), free0 - PAGES);   /* contents kept */

    unsigned char *q = shmat(id, NULL, 0);
    CHECK(q != (void *)-1);
    for (int i = 0; i < PAGES * 4096; i++)
        CHECK_EQ(q[i], (unsigned char)(i * 13 + 5));
    q[0] = 0xaa;
    CHECK_EQ(munmap(q, PAGES * 4096), 0);          /* munmap of an attachment */
    q = shmat(id, NULL, 0);
    CHECK(q != (void *)-1);
    CHECK_EQ(q[0], 0xaa);
    CHECK_EQ(shmdt(q), 0);

    /* destroyed: id invalid, frames free */
    CHECK_EQ(shmctl(id, IPC_RMID, NULL), 0);
    errno = 0;
    CHECK_EQ((long)shmat(id, NULL, 0), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_FRAMES_BACK(free0);

    /* persists after the creator's exit, found again by key */
    key_t key = 0x5eed0000 + sys_getpid();
    char keytext[24];
    snprintf(keytext, sizeof keytext, "%d", key);
    char *argv[] = { "/bin/shm_creator", keytext, NULL };
    CHECK_EQ(test_run_wait("/bin/shm_creator", argv), 0);
    int kid = shmget(key, 0, 0);
    CHECK_GE(kid, 0);
    char *k = shmat(kid, NULL, 0);
    CHECK(k != (void *)-1);
    CHECK_EQ(strcmp(k, "persist"), 0);
    CHECK_EQ((unsigned char)k[4096], 0x5a);
    CHECK_EQ(shmdt(k), 0);
    CHECK_EQ(shmctl(kid, IPC_RMID, NULL), 0);
    errno = 0;
    CHECK_EQ(shmget(key, 0, 0), -1);
    CHECK_EQ(errno, ENOENT);
    return 0;
}
