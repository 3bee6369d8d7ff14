// expect-output: PASS linux mmap/munmap/mprotect/msync
/* A static musl program maps, writes, protects, syncs and unmaps memory
 * through musl's own mmap, mprotect, msync and munmap (Linux call
 * numbers), and gets -1 with errno on bad arguments. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "linux_check.h"

int main(void)
{
    long page = sysconf(_SC_PAGESIZE);
    CHECK(page == 4096);

    char *p = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    if (p == MAP_FAILED)
        return 1;
    CHECK(p[0] == 0 && p[3 * page - 1] == 0);
    memset(p, 'a', 3 * page);
    CHECK(p[page] == 'a');

    /* A read-only page: the kernel refuses to store into it (EFAULT),
     * until it is writable again. */
    int fd = open("/tmp/linux_mman", O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, "xyz", 3) == 3);
    CHECK(mprotect(p + page, page, PROT_READ) == 0);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    CHECK_ERR(read(fd, p + page, 3), EFAULT);
    CHECK(p[page] == 'a');
    CHECK(mprotect(p + page, page, PROT_READ | PROT_WRITE) == 0);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    CHECK(read(fd, p + page, 3) == 3);
    CHECK(memcmp(p + page, "xyz", 3) == 0);

    /* Bad arguments: -1 and errno, nothing changed. */
    CHECK_ERR(munmap(p + 1, page), EINVAL);
    CHECK_ERR(munmap(p, 0), EINVAL);
    /* musl's mprotect rounds the address down: the kernel's own check. */
    CHECK_ERR(syscall(SYS_mprotect, p + 1, page, PROT_READ), EINVAL);
    CHECK_ERR(mmap(NULL, page, PROT_READ, MAP_SHARED, 99, 0), EBADF);
    CHECK(p[0] == 'a');

    /* A shared file mapping: stores reach the file, msync succeeds. */
    char block[4096];
    memset(block, '.', sizeof block);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    CHECK(write(fd, block, sizeof block) == (ssize_t)sizeof block);
    char *s = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(s != MAP_FAILED);
    if (s != MAP_FAILED) {
        memcpy(s, "synced", 6);
        CHECK(msync(s, page, MS_SYNC) == 0);
        CHECK_ERR(msync(s + 1, page, MS_SYNC), EINVAL);
        char back[6];
        CHECK(lseek(fd, 0, SEEK_SET) == 0);
        CHECK(read(fd, back, 6) == 6);
        CHECK(memcmp(back, "synced", 6) == 0);
        CHECK(munmap(s, page) == 0);
    }
    CHECK(close(fd) == 0);

    /* Partial unmap, then the whole range; mincore sees what is left. */
    unsigned char vec[3];
    CHECK(munmap(p + page, page) == 0);
    CHECK_ERR(mincore(p, 3 * page, vec), ENOMEM);
    CHECK(mincore(p, page, vec) == 0 && (vec[0] & 1));
    CHECK(munmap(p, 3 * page) == 0);
    CHECK_ERR(mincore(p, page, vec), ENOMEM);

    if (failures == 0)
        printf("PASS linux mmap/munmap/mprotect/msync\n");
    return failures != 0;
}
