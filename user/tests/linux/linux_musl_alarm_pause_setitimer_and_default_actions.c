// expect-output: PASS linux alarm pause setitimer
/* alarm(1) with a SIGALRM handler: pause() sleeps until it fires about a
 * second later (the clock measures it), then fails with EINTR; alarm
 * returns the seconds the previous alarm had left. setitimer(ITIMER_REAL)
 * with a 20 ms interval fires again and again (five pauses end), getitimer
 * reads it, and a zero value disarms it. Bad timevals are EINVAL and
 * change nothing. Default actions: a child whose alarm fires without a
 * handler dies by SIGALRM; SIGABRT, SIGTERM and SIGKILL (even with every
 * signal blocked) end children as WIFSIGNALED with that signal; SIGKILL
 * and SIGSTOP cannot be caught (EINVAL). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "linux_check.h"

static volatile int alarms;

static void on_alarm(int sig) { alarms += sig == SIGALRM; }

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* Forks a child that runs `body`, then returns its wait status. */
static int child_status(void (*body)(void), int kill_with)
{
    pid_t pid = fork();
    if (pid == 0) {
        body();
        _exit(0);
    }
    if (kill_with) {
        usleep(50 * 1000);
        kill(pid, kill_with);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    return status;
}

static void alarm_without_handler(void)
{
    signal(SIGALRM, SIG_DFL); /* the parent's handler came with the fork */
    alarm(1);
    for (;;)
        pause();
}

static void block_everything_and_wait(void)
{
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGTERM, SIG_IGN);
    for (;;)
        pause();
}

static void just_wait(void)
{
    for (;;)
        pause();
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);

    CHECK(alarm(1) == 0);
    double start = now();
    errno = 0;
    CHECK(pause() == -1 && errno == EINTR);
    double slept = now() - start;
    CHECK(alarms == 1);
    CHECK(slept >= 0.95 && slept < 3.0);

    CHECK(alarm(10) == 0);
    CHECK(alarm(0) == 10);

    struct itimerval it = {{0, 20000}, {0, 20000}}, got;
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
    CHECK(getitimer(ITIMER_REAL, &got) == 0);
    CHECK(got.it_interval.tv_sec == 0 && got.it_interval.tv_usec == 20000);
    CHECK(got.it_value.tv_usec > 0 && got.it_value.tv_usec <= 20000);
    for (int i = 0; i < 5; i++)
        pause();
    CHECK(alarms == 6);
    struct itimerval bad = {{0, 0}, {0, 1000000}};
    CHECK_ERR(setitimer(ITIMER_REAL, &bad, NULL), EINVAL);
    bad.it_value.tv_usec = -1;
    CHECK_ERR(setitimer(ITIMER_REAL, &bad, NULL), EINVAL);
    bad.it_value.tv_sec = -1;
    bad.it_value.tv_usec = 0;
    CHECK_ERR(setitimer(ITIMER_REAL, &bad, NULL), EINVAL);
    CHECK(getitimer(ITIMER_REAL, &got) == 0);
    CHECK(got.it_interval.tv_usec == 20000);
    struct itimerval off = {{0, 0}, {0, 0}};
    CHECK(setitimer(ITIMER_REAL, &off, &got) == 0);
    CHECK(got.it_interval.tv_usec == 20000);
    CHECK(getitimer(ITIMER_REAL, &got) == 0);
    CHECK(got.it_value.tv_sec == 0 && got.it_value.tv_usec == 0);
    int before = alarms;
    usleep(100 * 1000);
    CHECK(alarms == before);

    CHECK_ERR(sigaction(SIGKILL, &sa, NULL), EINVAL);
    CHECK_ERR(sigaction(SIGSTOP, &sa, NULL), EINVAL);
    CHECK(signal(SIGKILL, SIG_IGN) == SIG_ERR);

    int st = child_status(alarm_without_handler, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM);
    st = child_status(just_wait, SIGABRT);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    st = child_status(just_wait, SIGTERM);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    CHECK(!WIFEXITED(st));
    st = child_status(block_everything_and_wait, SIGKILL);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    if (failures)
        return 1;
    printf("PASS linux alarm pause setitimer\n");
    return 0;
}
