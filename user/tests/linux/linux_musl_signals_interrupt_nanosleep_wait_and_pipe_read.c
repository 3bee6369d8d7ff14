// expect-output: PASS linux EINTR and SA_RESTART
/* A child sends SIGUSR1 to its parent every 50 ms. Without SA_RESTART the
 * handler interrupts nanosleep (EINTR, with the time left in rem), waitpid
 * and a read of an empty pipe (EINTR). With SA_RESTART, waitpid and the
 * pipe read go on after each handler and complete (the child that exits
 * later, the bytes written later); nanosleep still ends with EINTR, as on
 * Linux. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "linux_check.h"

static volatile int usr1_calls;

static void on_usr1(int sig) { usr1_calls += sig == SIGUSR1; }

static void handle_usr1(int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = flags;
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
}

/* A child that signals the caller every 50 ms until killed. */
static pid_t start_pinger(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        for (;;) {
            usleep(50 * 1000);
            kill(parent, SIGUSR1);
        }
    }
    return pid;
}

/* A child that exits after `ms` milliseconds, having written to `fd`. */
static pid_t start_later(int ms, int fd)
{
    pid_t pid = fork();
    if (pid == 0) {
        usleep(ms * 1000);
        if (fd >= 0 && write(fd, "late", 4) != 4)
            _exit(2);
        _exit(5);
    }
    return pid;
}

static void stop(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

int main(void)
{
    handle_usr1(0);
    pid_t pinger = start_pinger();
    struct timespec req = {5, 0}, rem = {0, 0};
    errno = 0;
    CHECK(nanosleep(&req, &rem) == -1 && errno == EINTR);
    CHECK(usr1_calls >= 1);
    CHECK(rem.tv_sec >= 3 && rem.tv_sec <= 5);

    pid_t late = start_later(600, -1);
    errno = 0;
    CHECK(waitpid(late, NULL, 0) == -1 && errno == EINTR);

    int fds[2];
    CHECK(pipe(fds) == 0);
    char buf[8];
    errno = 0;
    CHECK(read(fds[0], buf, sizeof buf) == -1 && errno == EINTR);
    int status = 0;
    CHECK(waitpid(late, &status, 0) == late || errno == EINTR);

    handle_usr1(SA_RESTART);
    int before = usr1_calls;
    pid_t writer = start_later(400, fds[1]);
    CHECK(read(fds[0], buf, sizeof buf) == 4);
    CHECK(memcmp(buf, "late", 4) == 0);
    CHECK(usr1_calls > before);
    before = usr1_calls;
    CHECK(waitpid(writer, &status, 0) == writer);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 5);
    late = start_later(400, -1);
    CHECK(waitpid(late, &status, 0) == late);
    CHECK(usr1_calls > before);
    errno = 0;
    CHECK(nanosleep(&req, &rem) == -1 && errno == EINTR);

    stop(pinger);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    if (failures)
        return 1;
    printf("PASS linux EINTR and SA_RESTART\n");
    return 0;
}
