/* shm_creator.c - helper: creates the System V segment of key argv[1]
 * (2 pages), attaches it, writes "persist" at offset 0 and 0x5a at offset 4096,
 * and exits WITHOUT detaching. Exits 0, or 3 on failure. */
#include <syscalls.h>
#include <sys/shm.h>
#include <neo.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 3;
    int id = shmget((key_t)neo_atol(argv[1]), 2 * 4096, IPC_CREAT | 0600);
    if (id < 0)
        return 3;
    char *p = shmat(id, NULL, 0);
    if (p == (void *)-1)
        return 3;
    strcpy(p, "persist");
    p[4096] = 0x5a;
    return 0;
}
