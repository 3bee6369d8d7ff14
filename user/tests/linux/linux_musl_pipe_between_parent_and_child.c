// expect-output: PASS linux pipe
/* A static musl program makes a pipe and forks: the child writes more
 * than the pipe holds through stdio, the parent reads it all in order,
 * then end of file once the child has gone. A pipe cannot be mapped
 * (ENODEV), cannot seek (ESPIPE); writing to one without readers fails
 * with EPIPE and, SIGPIPE ignored, the writer goes on (not ignored, it is
 * killed by SIGPIPE). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "linux_check.h"

#define TOTAL (200 * 1024)

int main(void)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    errno = 0;
    CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fds[0], 0) == MAP_FAILED && errno == ENODEV);
    errno = 0;
    CHECK(lseek(fds[0], 0, SEEK_SET) == -1 && errno == ESPIPE);

    pid_t child = fork();
    if (child == 0) {
        close(fds[0]);
        FILE *out = fdopen(fds[1], "w");
        for (int i = 0; i < TOTAL; i++)
            fputc('a' + i % 26, out);
        fclose(out);
        _exit(0);
    }
    close(fds[1]);
    static char buf[4096];
    long got = 0;
    int in_order = 1;
    for (;;) {
        ssize_t n = read(fds[0], buf, sizeof buf);
        CHECK(n >= 0);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            in_order &= buf[i] == 'a' + (got + i) % 26;
        got += n;
    }
    CHECK(got == TOTAL);
    CHECK(in_order);
    int status;
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(fds[0]);

    /* No reader: EPIPE with SIGPIPE ignored; killed by it otherwise. */
    CHECK(pipe(fds) == 0);
    close(fds[0]);
    signal(SIGPIPE, SIG_IGN);
    errno = 0;
    CHECK(write(fds[1], "x", 1) == -1 && errno == EPIPE);
    signal(SIGPIPE, SIG_DFL);
    child = fork();
    if (child == 0) {
        (void)!write(fds[1], "x", 1);
        _exit(0);
    }
    CHECK(waitpid(child, &status, 0) == child && WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE);
    close(fds[1]);

    if (failures == 0)
        printf("PASS linux pipe\n");
    return failures != 0;
}
