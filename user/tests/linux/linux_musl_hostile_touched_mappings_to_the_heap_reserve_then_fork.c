/* Hostile: one-page private anonymous mappings, each touched (so each has
 * a memory object of its own in the kernel), made until mmap says ENOMEM
 * (the kernel heap at its reserve) or free RAM runs low, then fork. The
 * kernel kept its objects in one vector that doubled into one block: at
 * 65,536 objects it asked the heap for 98 MiB at once and the kernel
 * panicked, with or without the fork. Now: every mmap either works or
 * fails with ENOMEM, the fork either works (the child runs and ends) or
 * fails with ENOMEM or EAGAIN, every page keeps its byte, and once the
 * mappings are gone the program maps and touches again. */
#include "linux_check.h"
#include "linux_meminfo.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MOST 150000L
/* Touch no page once free RAM is below this many KiB. */
#define LOW_KB (48L * 1024)

static char *pages[MOST];

int main(void)
{
    long made = 0;
    int stopped_by = 0;
    for (; made < MOST; made++) {
        if (made % 1024 == 0 && meminfo_now("MemFree:") < LOW_KB) {
            stopped_by = 1;
            break;
        }
        char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            CHECK(errno == ENOMEM);
            stopped_by = 2;
            break;
        }
        p[0] = (char)(made * 7 + 1);
        pages[made] = p;
    }
    printf("%ld touched mappings, stopped by %s\n", made,
           stopped_by == 2 ? "ENOMEM" : stopped_by == 1 ? "low RAM" : "the count");
    CHECK(made > 65536); /* past where the old table asked for 98 MiB */
    pid_t child = fork();
    if (child == 0)
        _exit(pages[made - 1][0] == (char)((made - 1) * 7 + 1) ? 7 : 1);
    if (child < 0) {
        CHECK(errno == ENOMEM || errno == EAGAIN);
        printf("fork refused (errno %d)\n", errno);
    } else {
        int status = 0;
        CHECK(waitpid(child, &status, 0) == child);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7);
        printf("fork made a child\n");
    }
    long wrong = 0;
    for (long i = 0; i < made; i++) {
        wrong += pages[i][0] != (char)(i * 7 + 1);
        CHECK(munmap(pages[i], 4096) == 0);
    }
    CHECK(wrong == 0);
    char *again = mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(again != MAP_FAILED);
    if (again != MAP_FAILED) {
        for (int i = 0; i < 256; i++)
            again[i * 4096] = 1;
        CHECK(munmap(again, 1 << 20) == 0);
    }
    pid_t second = fork();
    if (second == 0)
        _exit(0);
    CHECK(second > 0 && waitpid(second, 0, 0) == second);
    return failures != 0;
}
