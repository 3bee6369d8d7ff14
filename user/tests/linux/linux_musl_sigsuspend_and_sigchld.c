// expect-output: PASS linux sigsuspend sigchld
/* sigsuspend: with SIGCHLD blocked, a parent forks a child that exits 7
 * and sleeps in sigsuspend(empty mask): the SIGCHLD handler runs (the
 * child's pid in si_pid, CLD_EXITED, si_status 7), sigsuspend fails with EINTR, and the old mask
 * (SIGCHLD blocked) is back; the child is then waited for with its status.
 * A signal already pending and unblocked by the suspend mask ends it at
 * once. With SIGCHLD ignored, or SA_NOCLDWAIT, children are reaped by the
 * kernel: wait blocks until they have all ended, then fails with ECHILD
 * (with SA_NOCLDWAIT the handler still runs; SA_RESTART keeps the wait). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "linux_check.h"

static volatile int chld_calls, usr1_calls, chld_code, chld_status;
static volatile pid_t chld_pid;

static void on_chld(int sig, siginfo_t *info, void *uc)
{
    (void)uc;
    chld_calls += sig == SIGCHLD;
    chld_pid = info->si_pid;
    chld_code = info->si_code;
    chld_status = info->si_status;
}

static void on_usr1(int sig) { usr1_calls += sig == SIGUSR1; }

static void children_are_reaped_by_the_kernel(void)
{
    pid_t a = fork();
    if (a == 0)
        _exit(1);
    pid_t b = fork();
    if (b == 0) {
        usleep(100 * 1000);
        _exit(2);
    }
    int status;
    CHECK_ERR(waitpid(-1, &status, 0), ECHILD);
    CHECK_ERR(waitpid(a, &status, WNOHANG), ECHILD);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO;
    CHECK(sigaction(SIGCHLD, &sa, NULL) == 0);
    sigset_t chld, empty, now;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigemptyset(&empty);
    CHECK(sigprocmask(SIG_BLOCK, &chld, NULL) == 0);

    pid_t pid = fork();
    if (pid == 0)
        _exit(7);
    errno = 0;
    CHECK(sigsuspend(&empty) == -1 && errno == EINTR);
    CHECK(chld_calls == 1);
    CHECK(chld_pid == pid && chld_code == CLD_EXITED && chld_status == 7);
    CHECK(sigprocmask(SIG_BLOCK, NULL, &now) == 0);
    CHECK(sigismember(&now, SIGCHLD));
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7);

    /* Pending before the call: sigsuspend ends at once. */
    signal(SIGUSR1, on_usr1);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK(sigprocmask(SIG_BLOCK, &usr1, NULL) == 0);
    raise(SIGUSR1);
    CHECK(usr1_calls == 0);
    CHECK(sigsuspend(&empty) == -1 && errno == EINTR);
    CHECK(usr1_calls == 1);
    CHECK(sigprocmask(SIG_SETMASK, &empty, NULL) == 0);

    signal(SIGCHLD, SIG_IGN);
    children_are_reaped_by_the_kernel();
    /* SA_RESTART: the handler does not end the wait with EINTR. */
    sa.sa_flags = SA_SIGINFO | SA_NOCLDWAIT | SA_RESTART;
    CHECK(sigaction(SIGCHLD, &sa, NULL) == 0);
    int before = chld_calls;
    children_are_reaped_by_the_kernel();
    CHECK(chld_calls > before);

    if (failures)
        return 1;
    printf("PASS linux sigsuspend sigchld\n");
    return 0;
}
