// expect-output: PASS linux clone child cleartid of a new process
/* CLONE_CHILD_CLEARTID of a fork-like clone (SIGCHLD, no CLONE_VM) is kept
 * on the child's thread, as for a thread: when that thread ends while
 * another thread of the child lives, 0 is stored at the address (in the
 * child's memory) and one futex waiter there is woken. When the child
 * ends as a whole (its last thread), nothing is stored: Linux stores only
 * while the memory has other users (a shared page shows it). */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "linux_check.h"

#define FUTEX_WAIT 0 /* <linux/futex.h> is not among musl's headers */

/* The child's clear-child-tid word (in its own copy of this memory). */
static volatile int word;
/* Set by the second thread just before it waits. */
static volatile int waiting;
static char stack[64 * 1024] __attribute__((aligned(16)));

static void sleep_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000};
    nanosleep(&ts, NULL);
}

/* The child's second thread: waits on `word` for up to 5 s; ends the
 * child with 42 when the word became 0 and the wait did not time out. */
static int second_thread(void *arg)
{
    (void)arg;
    int value = word;
    waiting = 1;
    long r = 0;
    if (value != 0) {
        struct timespec limit = {5, 0};
        r = syscall(SYS_futex, &word, FUTEX_WAIT, value, &limit, 0, 0);
    }
    int timed_out = r == -1 && errno == ETIMEDOUT;
    syscall(SYS_exit_group, word != 0 ? 44 : timed_out ? 43 : 42);
    return 0;
}

static int exit_code(pid_t child)
{
    int status = -1;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    return WEXITSTATUS(status);
}

int main(void)
{
    /* The child's main thread ends first: its word is cleared and the
     * second thread woken. */
    long r = syscall(SYS_clone, CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD, 0, 0,
                     &word, 0);
    if (r == 0) {
        if (word != syscall(SYS_gettid))
            syscall(SYS_exit_group, 45);
        int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                    CLONE_SYSVSEM;
        if (clone(second_thread, stack + sizeof stack, flags, NULL) == -1)
            syscall(SYS_exit_group, 46);
        while (!waiting)
            sleep_ms(1);
        sleep_ms(100); /* the second thread is in its futex wait */
        syscall(SYS_exit, 0); /* this thread alone */
    }
    CHECK(r > 0);
    CHECK(word == 0); /* the parent's own copy was never touched */
    int code = exit_code(r);
    CHECK(code == 42);
    if (code != 42)
        fprintf(stderr, "child ended with %d (43: not woken, 44: not cleared)\n", code);

    /* A child that ends whole stores nothing, even in a shared page. */
    volatile int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                                -1, 0);
    CHECK(shared != MAP_FAILED);
    shared[0] = 1234;
    r = syscall(SYS_clone, CLONE_CHILD_CLEARTID | SIGCHLD, 0, 0, shared, 0);
    if (r == 0)
        syscall(SYS_exit_group, 7);
    CHECK(r > 0 && exit_code(r) == 7);
    CHECK(shared[0] == 1234);

    if (failures == 0)
        printf("PASS linux clone child cleartid of a new process\n");
    return failures != 0;
}
