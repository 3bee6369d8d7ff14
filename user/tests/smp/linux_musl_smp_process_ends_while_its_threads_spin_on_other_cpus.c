// expect-output: PASS linux process ends while its threads spin on other cpus
/* Hostile: a process whose threads spin in user mode on the other CPUs
 * (no system call, touching their own memory) is ended from one thread,
 * 8 times each way: exit_group by the main thread; exit_group by one of
 * the spinners; a fatal fault (SIGSEGV) of one spinner; execve by one
 * spinner (of this program again, which exits with a code of its own).
 * The kernel must take the spinners off their CPUs before it tears the
 * address space down: each child must end with its status (the test's
 * boot also checks that every frame came back). */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../linux/linux_check.h"
#include "smp_spin.h"

#define SPINNERS 3
#define ROUNDS 8
#define EXEC_STATUS 42

enum way { EXIT_BY_MAIN, EXIT_BY_SPINNER, FAULT_OF_SPINNER, EXEC_BY_SPINNER, WAYS };

static volatile int spinning[SPINNERS];
static volatile int chosen_way;
static volatile int *volatile bad_address = (volatile int *)8;

static void *spin(void *arg)
{
    int me = (int)(intptr_t)arg;
    char *own = mmap(0, 16 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (own == MAP_FAILED)
        _exit(3);
    for (unsigned long i = 0;; i++) {
        ((volatile char *)own)[(i % 16) * 4096 + (i % 4096)] += 1;
        spinning[me] = 1;
        if (me != 0 || i < 100000)
            continue;
        /* Spinner 0 ends the process, once every spinner spins. */
        int all = 1;
        for (int s = 0; s < SPINNERS; s++)
            all &= spinning[s];
        if (!all)
            continue;
        switch (chosen_way) {
        case EXIT_BY_SPINNER:
            _exit(7);
        case FAULT_OF_SPINNER:
            *bad_address = 1;
            break;
        case EXEC_BY_SPINNER: {
            char *argv[] = {"smp_exec_child", "exec-child", 0};
            execv("/proc/self/exe", argv);
            _exit(4);
        }
        }
    }
}

static int child(int way)
{
    chosen_way = way;
    pthread_t t[SPINNERS];
    for (int s = 0; s < SPINNERS; s++)
        if (pthread_create(&t[s], 0, spin, (void *)(intptr_t)s) != 0)
            return 2;
    if (way == EXIT_BY_MAIN) {
        int all = 0;
        while (!all) {
            all = 1;
            for (int s = 0; s < SPINNERS; s++)
                all &= spinning[s];
        }
        _exit(5);
    }
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "exec-child") == 0)
        return EXEC_STATUS;
    const int expected[WAYS] = {5, 7, -SIGSEGV, EXEC_STATUS};
    const char *names[WAYS] = {"exit_group by the main thread", "exit_group by a spinner",
                               "SIGSEGV of a spinner", "execve by a spinner"};
    for (int way = 0; way < WAYS; way++) {
        for (int r = 0; r < ROUNDS; r++) {
            pid_t pid = fork();
            CHECK(pid >= 0);
            if (pid == 0)
                _exit(child(way));
            int status = -1;
            CHECK(waitpid(pid, &status, 0) == pid);
            int got = WIFEXITED(status) ? WEXITSTATUS(status)
                      : WIFSIGNALED(status) ? -WTERMSIG(status)
                                            : -1000;
            if (got != expected[way]) {
                fprintf(stderr, "%s, round %d: status %d, expected %d\n", names[way], r, got,
                        expected[way]);
                failures++;
            }
        }
        printf("%s: %d rounds\n", names[way], ROUNDS);
    }
    if (failures == 0)
        printf("PASS linux process ends while its threads spin on other cpus\n");
    return failures != 0;
}
