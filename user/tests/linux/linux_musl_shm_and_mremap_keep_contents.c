// expect-output: PASS linux shm and mremap
/* A static musl program uses System V shared memory (shmget, shmat twice,
 * shmctl IPC_STAT/IPC_SET/IPC_RMID, shmdt) and mremap (shrink, grow in
 * place, move with MREMAP_MAYMOVE and MREMAP_FIXED, a shared file mapping
 * moved and grown) with every page's contents checked, the errors Linux
 * gives, and madvise(MADV_FREE). Runs unchanged on Linux. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>
#include "linux_check.h"

static long page;

/* Stores a byte naming each page at its start and end. */
static void fill(char *p, long pages, char base)
{
    for (long i = 0; i < pages; i++) {
        p[i * page] = (char)(base + i);
        p[i * page + page - 1] = (char)(base + i);
    }
}

static int holds(const char *p, long pages, char base)
{
    for (long i = 0; i < pages; i++)
        if (p[i * page] != (char)(base + i) ||
            p[i * page + page - 1] != (char)(base + i))
            return 0;
    return 1;
}

static int mapped(void *p)
{
    unsigned char v;
    return mincore(p, page, &v) == 0;
}

static void system_v_shared_memory(void)
{
    int id = shmget(IPC_PRIVATE, 2 * page, IPC_CREAT | 0600);
    CHECK(id >= 0);
    if (id < 0)
        return;
    char *a = shmat(id, NULL, 0);
    char *b = shmat(id, NULL, SHM_RDONLY);
    CHECK(a != (void *)-1 && b != (void *)-1 && a != b);
    if (a == (void *)-1 || b == (void *)-1)
        return;
    CHECK(b[0] == 0 && b[2 * page - 1] == 0);
    memcpy(a + page, "through a", 9);
    CHECK(memcmp(b + page, "through a", 9) == 0);

    struct shmid_ds ds;
    memset(&ds, 0xff, sizeof ds);
    CHECK(shmctl(id, IPC_STAT, &ds) == 0);
    CHECK(ds.shm_segsz == (size_t)(2 * page));
    CHECK(ds.shm_nattch == 2);
    CHECK(ds.shm_cpid == getpid());
    CHECK(ds.shm_lpid == getpid());
    CHECK((ds.shm_perm.mode & 0777) == 0600);
    CHECK(ds.shm_perm.__ipc_perm_key == IPC_PRIVATE);
    ds.shm_perm.mode = 0640;
    CHECK(shmctl(id, IPC_SET, &ds) == 0);

    CHECK(shmdt(b) == 0);
    CHECK_ERR(shmdt(b), EINVAL);
    CHECK(shmctl(id, IPC_STAT, &ds) == 0);
    CHECK(ds.shm_nattch == 1);
    CHECK((ds.shm_perm.mode & 0777) == 0640);
    CHECK_ERR(shmctl(id, 12345, &ds), EINVAL);

    /* Detached, the segment keeps its memory until removed. */
    CHECK(shmdt(a) == 0);
    a = shmat(id, NULL, 0);
    CHECK(a != (void *)-1);
    if (a == (void *)-1)
        return;
    CHECK(memcmp(a + page, "through a", 9) == 0);
    CHECK(shmdt(a) == 0);
    CHECK(shmctl(id, IPC_RMID, NULL) == 0);
    CHECK_ERR(shmat(id, NULL, 0), EINVAL);
    CHECK_ERR(shmctl(id, IPC_STAT, &ds), EINVAL);

    int key = 0x4e454f;
    int k1 = shmget(key, page, IPC_CREAT | IPC_EXCL | 0600);
    CHECK(k1 >= 0);
    CHECK_ERR(shmget(key, page, IPC_CREAT | IPC_EXCL | 0600), EEXIST);
    CHECK(shmget(key, page, 0600) == k1);
    CHECK_ERR(shmget(key + 1, page, 0600), ENOENT);
    CHECK(shmctl(k1, IPC_RMID, NULL) == 0);
}

static void remap_anonymous(void)
{
    char *p = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    if (p == MAP_FAILED)
        return;
    fill(p, 3, 'A');

    /* Shrink: the tail goes. */
    CHECK(mremap(p, 3 * page, 2 * page, 0) == p);
    CHECK(holds(p, 2, 'A'));
    CHECK(!mapped(p + 2 * page));
    /* Grow in place into the page just freed: a zero page. */
    CHECK(mremap(p, 2 * page, 3 * page, 0) == p);
    CHECK(holds(p, 2, 'A'));
    CHECK(p[2 * page] == 0 && p[3 * page - 1] == 0);
    fill(p, 3, 'A');

    /* Bad arguments: -1 and errno, nothing changed. */
    CHECK_ERR(mremap(p + 1, page, page, 0), EINVAL);
    CHECK_ERR(mremap(p, page, 0, 0), EINVAL);
    CHECK_ERR(mremap(p, page, page, MREMAP_FIXED, p + 64 * page), EINVAL);
    CHECK_ERR(mremap(p, 3 * page, 3 * page, MREMAP_MAYMOVE | MREMAP_FIXED,
                     p + page), EINVAL);
    CHECK_ERR(mremap(p, 4 * page, 5 * page, MREMAP_MAYMOVE), EFAULT);
    CHECK(holds(p, 3, 'A'));

    /* Move to a chosen place (what was there is replaced). */
    char *r = mmap(NULL, 8 * page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    CHECK(r != MAP_FAILED);
    if (r == MAP_FAILED)
        return;
    char *q = mremap(p, 3 * page, 4 * page, MREMAP_MAYMOVE | MREMAP_FIXED,
                     r + 2 * page);
    CHECK(q == r + 2 * page);
    if (q != r + 2 * page)
        return;
    CHECK(holds(q, 3, 'A'));
    CHECK(q[3 * page] == 0);
    CHECK(!mapped(p));
    q[3 * page] = 'D';
    q[4 * page - 1] = 'D';

    /* Grow where it cannot stay: it moves, pages and all. */
    char *m = mremap(q, 4 * page, 64 * page, MREMAP_MAYMOVE);
    CHECK(m != MAP_FAILED);
    if (m == MAP_FAILED)
        return;
    CHECK(holds(m, 4, 'A'));
    CHECK(m[63 * page] == 0);
    m[63 * page] = 'z';
    CHECK(madvise(m + 60 * page, 4 * page, MADV_FREE) == 0);
    CHECK(holds(m, 4, 'A'));
    CHECK(munmap(m, 64 * page) == 0);
    CHECK(munmap(r, 8 * page) == 0);

    /* A piece of a mapping moved away and grown shows its own page and
     * zero, never its old neighbour's page. */
    char *two = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(two != MAP_FAILED);
    if (two == MAP_FAILED)
        return;
    fill(two, 2, 'a');
    char *one = mremap(two, page, 2 * page, MREMAP_MAYMOVE);
    CHECK(one != MAP_FAILED && one != two);
    if (one == MAP_FAILED)
        return;
    CHECK(holds(one, 1, 'a'));
    CHECK(one[page] == 0 && one[2 * page - 1] == 0);
    one[page] = 'n';
    CHECK(holds(two + page, 1, 'b'));
    CHECK(!mapped(two));
    CHECK(munmap(one, 2 * page) == 0);
    CHECK(munmap(two + page, page) == 0);
}

static void remap_shared_file(void)
{
    int fd = open("/tmp/linux_mremap", O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    char block[4096];
    for (int i = 0; i < 3; i++) {
        memset(block, 'a' + i, sizeof block);
        CHECK(write(fd, block, sizeof block) == (ssize_t)sizeof block);
    }
    char *s = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(s != MAP_FAILED);
    if (s == MAP_FAILED)
        return;
    s[1] = 'X';
    char *t = mremap(s, page, 3 * page, MREMAP_MAYMOVE);
    CHECK(t != MAP_FAILED);
    if (t == MAP_FAILED)
        return;
    CHECK(t[0] == 'a' && t[1] == 'X' && t[page] == 'b' && t[2 * page] == 'c');
    t[2 * page + 5] = 'Y';
    CHECK(msync(t, 3 * page, MS_SYNC) == 0);
    char got[2];
    CHECK(pread(fd, got, 1, 1) == 1 && got[0] == 'X');
    CHECK(pread(fd, got, 1, 2 * page + 5) == 1 && got[0] == 'Y');
    CHECK(munmap(t, 3 * page) == 0);
    CHECK(close(fd) == 0);
    CHECK(unlink("/tmp/linux_mremap") == 0);
}

int main(void)
{
    page = sysconf(_SC_PAGESIZE);
    system_v_shared_memory();
    remap_anonymous();
    remap_shared_file();
    if (failures == 0)
        printf("PASS linux shm and mremap\n");
    return failures != 0;
}
