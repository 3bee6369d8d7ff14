// expect-output: PASS linux stdio, malloc, tls, system calls
/* A static musl program uses stdio on files (open, readv, writev, lseek,
 * fstat), malloc (brk and mmap), thread-local storage (the FS base set by
 * arch_prctl), and the small calls: uname, clock_gettime, getrandom, uid
 * calls, isatty (ioctl), and an unknown call (ENOSYS). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include "linux_check.h"

static __thread int thread_local_value = 5;

int main(void)
{
    /* Thread-local storage lives at the FS base. */
    CHECK(thread_local_value == 5);
    thread_local_value = 6;
    CHECK(thread_local_value == 6);

    /* stdio on a file. */
    FILE *f = fopen("/tmp/linux_stdio.txt", "w");
    CHECK(f != NULL);
    if (f) {
        CHECK(fprintf(f, "line %d\nsecond line\n", 1) == 19);
        CHECK(fclose(f) == 0);
    }
    struct stat st;
    CHECK(stat("/tmp/linux_stdio.txt", &st) == 0 && st.st_size == 19);
    CHECK(S_ISREG(st.st_mode));
    CHECK(stat("/tmp", &st) == 0 && S_ISDIR(st.st_mode));
    errno = 0;
    CHECK(stat("/tmp/missing", &st) == -1 && errno == ENOENT);
    f = fopen("/tmp/linux_stdio.txt", "r");
    CHECK(f != NULL);
    if (f) {
        char line[64];
        CHECK(fgets(line, sizeof line, f) && strcmp(line, "line 1\n") == 0);
        CHECK(fgets(line, sizeof line, f) && strcmp(line, "second line\n") == 0);
        CHECK(fgets(line, sizeof line, f) == NULL && feof(f));
        CHECK(fstat(fileno(f), &st) == 0 && st.st_size == 19);
        errno = 0;
        CHECK(!isatty(fileno(f)) && errno == ENOTTY);
        CHECK(fclose(f) == 0);
    }
    CHECK(isatty(1));

    /* malloc: small blocks and a large one. */
    char *small[64];
    for (int i = 0; i < 64; i++) {
        small[i] = malloc(1000);
        CHECK(small[i] != NULL);
        if (small[i])
            memset(small[i], i, 1000);
    }
    for (int i = 0; i < 64; i++) {
        CHECK(small[i] == NULL || (small[i][0] == i && small[i][999] == i));
        free(small[i]);
    }
    char *big = malloc(1 << 20);
    CHECK(big != NULL);
    if (big) {
        memset(big, 7, 1 << 20);
        CHECK(big[(1 << 20) - 1] == 7);
        free(big);
    }
    /* The program break (musl's brk() refuses on principle: the raw call). */
    char *start = (char *)syscall(SYS_brk, 0);
    CHECK((long)start > 0 && (long)start % 4096 == 0);
    CHECK((char *)syscall(SYS_brk, start + 8192 + 100) == start + 8192 + 100);
    memset(start, 1, 8192 + 100);
    CHECK((char *)syscall(SYS_brk, start + 4096) == start + 4096);
    CHECK(start[4095] == 1);
    /* Below the program: refused, the break stays. */
    CHECK((char *)syscall(SYS_brk, 4096) == start + 4096);
    CHECK((char *)syscall(SYS_brk, start) == start);
    /* A break that would run into another mapping stays where it is. */
    char *fixed = mmap(start + 16 * 4096, 4096, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(fixed == start + 16 * 4096);
    CHECK((char *)syscall(SYS_brk, start + 20 * 4096) == start);
    fixed[0] = 1;
    CHECK(munmap(fixed, 4096) == 0);

    /* The small calls. */
    struct utsname u;
    CHECK(uname(&u) == 0 && strcmp(u.machine, "x86_64") == 0);
    struct timespec a, b;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &a) == 0);
    CHECK(clock_gettime(CLOCK_MONOTONIC, &b) == 0);
    CHECK(b.tv_sec > a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec >= a.tv_nsec));
    CHECK(a.tv_nsec >= 0 && a.tv_nsec < 1000000000);
    unsigned char r1[32] = {0}, r2[32] = {0};
    CHECK(getrandom(r1, sizeof r1, 0) == 32);
    CHECK(getrandom(r2, sizeof r2, 0) == 32);
    CHECK(memcmp(r1, r2, 32) != 0);
    CHECK(getuid() == 0 && geteuid() == 0 && getgid() == 0 && getegid() == 0);
    CHECK(getpid() > 0);
    errno = 0;
    CHECK(syscall(499) == -1 && errno == ENOSYS);

    if (failures == 0)
        printf("PASS linux stdio, malloc, tls, system calls\n");
    return failures != 0;
}
