// expect-output: PASS linux process-shared semaphore wakes another process
/* A futex without FUTEX_PRIVATE_FLAG on a word of a shared mapping is one
 * futex for every process that maps the word: musl's process-shared
 * semaphore (sem_init with pshared 1 in MAP_SHARED memory) waits and
 * wakes that way. A forked child blocks in sem_wait; the parent, once the
 * child is asleep, posts: the child must wake (keyed by each address
 * space, the parent's wake would never reach it, and the child would
 * sleep until the parent gives up and kills it after 10 s). Then the
 * other way: the parent sleeps in sem_timedwait on a fresh shared page's
 * semaphore until a child posts it after a pause. */
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "linux_check.h"

struct shared {
    sem_t to_child, to_parent;
    volatile int child_woke;
};

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits up to 10 s for `child` to end; its status, or -1 after a kill. */
static int wait_bounded(pid_t child)
{
    int status = -1;
    for (int i = 0; i < 1000; i++) {
        pid_t r = waitpid(child, &status, WNOHANG);
        if (r == child)
            return status;
        pause_ms(10);
    }
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    return -1;
}

int main(void)
{
    struct shared *s = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                            -1, 0);
    CHECK(s != MAP_FAILED);
    if (s == MAP_FAILED)
        return 1;
    CHECK(sem_init(&s->to_child, 1, 0) == 0);
    CHECK(sem_init(&s->to_parent, 1, 0) == 0);
    pid_t child = fork();
    if (child == 0) {
        if (sem_wait(&s->to_child) != 0)
            _exit(2);
        s->child_woke = 1;
        if (sem_post(&s->to_parent) != 0)
            _exit(3);
        _exit(0);
    }
    CHECK(child > 0);
    /* Long enough for the child to be asleep in its wait (a post before
     * it sleeps would pass too, without testing the wake). */
    pause_ms(200);
    CHECK(s->child_woke == 0);
    CHECK(sem_post(&s->to_child) == 0);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    CHECK(sem_timedwait(&s->to_parent, &deadline) == 0);
    CHECK(s->child_woke == 1);
    int status = wait_bounded(child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* The parent waits: a fresh shared page's semaphore, posted by a
     * child after a pause. */
    sem_t *late = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(late != MAP_FAILED);
    if (late == MAP_FAILED)
        return 1;
    CHECK(sem_init(late, 1, 0) == 0);
    child = fork();
    if (child == 0) {
        pause_ms(200);
        _exit(sem_post(late) == 0 ? 0 : 4);
    }
    CHECK(child > 0);
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    CHECK(sem_timedwait(late, &deadline) == 0);
    status = wait_bounded(child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (failures == 0)
        printf("PASS linux process-shared semaphore wakes another process\n");
    return failures != 0;
}
