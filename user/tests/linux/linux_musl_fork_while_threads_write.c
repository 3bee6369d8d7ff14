// expect-output: PASS linux fork while threads write
/* Fork while other threads of the process write (issue 13, item 6): three
 * threads keep counting, each in its own page of a private mapping, while
 * the main thread forks 20 times. Each child sees a copy taken at its
 * fork: the counts it reads stay where they were while the parent's
 * threads go on (they are not its threads: only the forking thread is
 * copied), and what it writes into the pages never reaches the parent.
 * The parent's counters keep rising through it all. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "linux_check.h"

#define WRITERS 3
#define FORKS 20
#define PAGE 4096
#define CHILD_MARK 0xc0ffeeULL

static volatile uint64_t *pages;
static volatile int stop;

static void *writer(void *arg) {
    volatile uint64_t *count = pages + (uintptr_t)arg * (PAGE / 8);
    while (!stop)
        (*count)++;
    return NULL;
}

static void pause_a_little(void) {
    struct timespec t = {0, 20 * 1000 * 1000};
    nanosleep(&t, NULL);
}

/* In the child: the copied counts do not move, and its own writes stay
 * its own. 0 when all held. */
static int child_checks(void) {
    uint64_t seen[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        seen[i] = pages[i * (PAGE / 8)];
    pause_a_little();
    for (int i = 0; i < WRITERS; i++) {
        if (pages[i * (PAGE / 8)] != seen[i])
            return 1;
        pages[i * (PAGE / 8)] = CHILD_MARK;
    }
    return 0;
}

int main(void) {
    pages = mmap(NULL, WRITERS * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(pages != MAP_FAILED);
    if (pages == MAP_FAILED)
        return 1;
    memset((void *)pages, 0, WRITERS * PAGE);
    pthread_t threads[WRITERS];
    for (uintptr_t i = 0; i < WRITERS; i++)
        CHECK(pthread_create(&threads[i], NULL, writer, (void *)i) == 0);
    uint64_t before[WRITERS];
    for (int round = 0; round < FORKS; round++) {
        for (int i = 0; i < WRITERS; i++)
            before[i] = pages[i * (PAGE / 8)];
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
            _exit(child_checks());
        int status = -1;
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        for (int i = 0; i < WRITERS; i++) {
            /* Each writer goes on counting (it may have to wait for its
             * turn on the CPU: up to 5 s). */
            uint64_t now = pages[i * (PAGE / 8)];
            for (int tries = 0; tries < 250 && now <= before[i]; tries++) {
                pause_a_little();
                now = pages[i * (PAGE / 8)];
            }
            CHECK(now != CHILD_MARK);
            CHECK(now > before[i]);
        }
    }
    stop = 1;
    for (int i = 0; i < WRITERS; i++)
        CHECK(pthread_join(threads[i], NULL) == 0);
    CHECK(munmap((void *)pages, WRITERS * PAGE) == 0);
    if (failures == 0)
        printf("PASS linux fork while threads write\n");
    return failures != 0;
}
