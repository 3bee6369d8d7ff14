/* sys/shm.h - System V shared memory on NeoOS.
 *
 * The kernel returns -errno on failure; these functions return -1
 * (shmat: (void *)-1) and set errno. Values are those of crates/abi
 * (neoos_abi::shm), checked by crates/abi/tests/headers.rs.
 */
#ifndef NEO_SYS_SHM_H
#define NEO_SYS_SHM_H

#include <sys/types.h>

#define IPC_PRIVATE  0
#define IPC_CREAT    01000
#define IPC_EXCL     02000
#define IPC_RMID     0
#define IPC_SET      1
#define IPC_STAT     2
#define SHM_RDONLY   010000

/* NeoOS layout: every field is 64 bits (88 bytes in all), see docs/abi.md. */
struct ipc_perm {
    long          __key;  /* key given to shmget */
    unsigned long uid;    /* always 0 on NeoOS */
    unsigned long gid;    /* always 0 on NeoOS */
    unsigned long mode;   /* low 9 bits of shmflg; IPC_SET may change them */
};

struct shmid_ds {
    struct ipc_perm shm_perm;
    unsigned long   shm_segsz;   /* size in bytes as given to shmget */
    long            shm_atime;   /* sys_ticks() of the last shmat (0: never) */
    long            shm_dtime;   /* sys_ticks() of the last shmdt (0: never) */
    long            shm_ctime;   /* sys_ticks() of creation / last IPC_SET */
    long            shm_cpid;    /* creator's pid */
    long            shm_lpid;    /* pid of the last shmat/shmdt */
    unsigned long   shm_nattch;  /* current number of attachments */
};

int   shmget(key_t key, size_t size, int shmflg);
void *shmat(int shmid, const void *shmaddr, int shmflg);
int   shmdt(const void *shmaddr);
int   shmctl(int shmid, int cmd, struct shmid_ds *buf);

#endif
