/* exec_helpers.h - what the Linux exec and busybox tests (user/tests/linux)
 * share: copying a program file, and running a program with its standard
 * output caught in a buffer.
 *
 * Owns: copy_file (a byte copy with the mode given), run_caught (fork,
 * execve with stdout and stderr on a pipe, read all, wait). */
#ifndef EXEC_HELPERS_H
#define EXEC_HELPERS_H

#include <fcntl.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

/* Copies `from` to `to` (created with `mode`); 0 on success. */
__attribute__((unused)) static int copy_file(const char *from, const char *to, mode_t mode)
{
    static char chunk[16384];
    int in = open(from, O_RDONLY);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, mode);
    int ok = in >= 0 && out >= 0;
    ssize_t n;
    while (ok && (n = read(in, chunk, sizeof chunk)) > 0)
        ok = write(out, chunk, n) == n;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return ok ? 0 : -1;
}

/* Runs `path` with `argv` and `envp` in a child whose standard output and
 * error go to a pipe; what it printed lands NUL-terminated in `out` (at
 * most cap - 1 bytes). Returns the child's wait status, -1 when it could
 * not be started. */
__attribute__((unused)) static int run_caught(const char *path, char *const argv[], char *const envp[],
                      char *out, size_t cap)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t child = fork();
    if (child < 0)
        return -1;
    if (child == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execve(path, argv, envp);
        _exit(127);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < cap && (n = read(fds[0], out + got, cap - 1 - got)) > 0)
        got += n;
    out[got] = 0;
    close(fds[0]);
    int status = -1;
    if (waitpid(child, &status, 0) != child)
        return -1;
    return status;
}

#endif
