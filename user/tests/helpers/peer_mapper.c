/* peer_mapper.c - helper for sys_two_processes_see_each_others_stores.
 * argv[1]: a file of >= 1 page. Maps its first page with sys_mmap (O_RDWR),
 * waits (yielding, bounded) until byte 0 becomes 1 (stored by the other
 * process through ITS mapping), then stores 2 into byte 1 and waits until
 * byte 2 becomes 3. Exits 0 on success, 4 if byte 0 never changed, 5 if byte 2
 * never changed, 3 on setup failure. */
#include <syscalls.h>
#include <neo.h>

#define SPINS 200000

int main(int argc, char **argv)
{
    if (argc < 2)
        return 3;
    int fd = sys_open(argv[1], O_RDWR);
    if (fd < 0)
        return 3;
    volatile unsigned char *m = sys_mmap(fd, 0, 4096);
    if (!m)
        return 3;
    int i;
    for (i = 0; i < SPINS && m[0] != 1; i++)
        sys_yield();
    if (m[0] != 1)
        return 4;
    m[1] = 2;
    for (i = 0; i < SPINS && m[2] != 3; i++)
        sys_yield();
    if (m[2] != 3)
        return 5;
    if (sys_munmap((void *)m, 4096) != E_OK)
        return 6;
    sys_close(fd);
    return 0;
}
