// expect-output: PASS poll
/* poll on a pipe: nothing to read and a 50 ms limit gives 0 after about
 * that long; a child that writes after a pause wakes a poll without a
 * limit (POLLIN, the byte readable); the write end polls writable; a
 * closed descriptor is POLLNVAL; once the writer is gone the read end
 * reports POLLHUP. */
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include "linux_check.h"

static long ms_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int main(void)
{
    int p[2];
    CHECK(pipe(p) == 0);
    struct pollfd f[3] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}, {77, POLLIN, 0}};
    long start = ms_now();
    CHECK((poll(f, 1, 50)) == (0));
    CHECK(ms_now() - start >= 40);
    CHECK((poll(f, 3, 0)) == (2));
    CHECK((f[0].revents) == (0));
    CHECK((f[1].revents) == (POLLOUT));
    CHECK((f[2].revents) == (POLLNVAL));
    pid_t child = fork();
    if (child == 0) {
        struct timespec pause = {0, 30 * 1000000};
        nanosleep(&pause, NULL);
        _exit(write(p[1], "k", 1) == 1 ? 0 : 1);
    }
    close(p[1]);
    CHECK((poll(f, 1, -1)) == (1));
    CHECK(f[0].revents & POLLIN);
    char c = 0;
    CHECK((read(p[0], &c, 1)) == (1));
    CHECK((c) == ('k'));
    int status = -1;
    CHECK((waitpid(child, &status, 0)) == (child));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK((poll(f, 1, 1000)) == (1));
    CHECK(f[0].revents & POLLHUP);
    if (failures == 0)
        printf("PASS poll\n");
    return failures != 0;
}
