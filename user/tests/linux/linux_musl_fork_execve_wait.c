// expect-output: PASS linux fork execve wait
/* A static musl program forks and the child execs a program (this one,
 * in "child" mode) from /bin, through /proc/self/exe, and from copies in
 * /tmp (RAM) and /home (ext2). The new image gets exactly the argv and
 * envp given and the same pid; descriptors marked close-on-exec (O_CLOEXEC,
 * F_DUPFD_CLOEXEC, FD_CLOEXEC) are closed, the others stay open at their
 * position; a caught signal is back to its default action, an ignored one
 * stays ignored, the mask and the pending set stay. The parent sees each
 * child's exit status, and a signal death, as Linux encodes them. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "exec_helpers.h"
#include "linux_check.h"

#define CHILD_STATUS 42

extern char **environ;

static void on_usr1(int sig) { (void)sig; }

static volatile sig_atomic_t got_hup;
static void on_hup(int sig) { got_hup = sig == SIGHUP; }

static int child_mode(int argc, char **argv)
{
    CHECK(argc == 7);
    if (argc != 7)
        return 1;
    CHECK(strcmp(argv[6], "two words") == 0);
    CHECK(environ[0] && strcmp(environ[0], "NEOOS_T=1") == 0);
    CHECK(environ[1] && strcmp(environ[1], "B=") == 0 && environ[2] == NULL);
    CHECK(getpid() == atoi(argv[5]));
    int keep = atoi(argv[2]), gone = atoi(argv[3]), gone2 = atoi(argv[4]);
    char buf[7] = {0};
    CHECK(fcntl(keep, F_GETFD) == 0);
    CHECK(read(keep, buf, 7) == 7 && memcmp(buf, "Welcome", 7) == 0);
    CHECK_ERR(fcntl(gone, F_GETFD), EBADF);
    CHECK_ERR(fcntl(gone2, F_GETFD), EBADF);
    CHECK_ERR(fcntl(gone2 + 1, F_GETFD), EBADF);
    struct sigaction sa;
    CHECK(sigaction(SIGUSR1, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL);
    CHECK(sigaction(SIGUSR2, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN);
    sigset_t set;
    CHECK(sigprocmask(SIG_BLOCK, NULL, &set) == 0 && sigismember(&set, SIGHUP));
    /* Still pending: delivered once unblocked. */
    signal(SIGHUP, on_hup);
    CHECK(!got_hup);
    CHECK(sigprocmask(SIG_UNBLOCK, &set, NULL) == 0);
    CHECK(got_hup);
    return failures ? 1 : CHILD_STATUS;
}

/* Forks; the child execs `path` in child mode; the exit status. */
static int exec_child(const char *path, int keep, int gone, int gone2)
{
    pid_t child = fork();
    if (child == 0) {
        char fds[3][16], pid[16];
        snprintf(fds[0], sizeof fds[0], "%d", keep);
        snprintf(fds[1], sizeof fds[1], "%d", gone);
        snprintf(fds[2], sizeof fds[2], "%d", gone2);
        snprintf(pid, sizeof pid, "%d", getpid());
        char *argv[] = {"prog", "child", fds[0], fds[1], fds[2], pid, "two words", NULL};
        char *envp[] = {"NEOOS_T=1", "B=", NULL};
        /* Pending (blocked) across the exec; a fork starts with none. */
        kill(getpid(), SIGHUP);
        execve(path, argv, envp);
        _exit(99);
    }
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0)
        return child_mode(argc, argv);

    int text = open("/tmp/exec_text", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(text >= 0 && write(text, "Welcome\n", 8) == 8 && close(text) == 0);
    int keep = open("/tmp/exec_text", O_RDONLY);
    int gone = open("/tmp/exec_text", O_RDONLY | O_CLOEXEC);
    int gone2 = fcntl(keep, F_DUPFD_CLOEXEC, 20);
    int gone3 = dup(keep);
    CHECK(keep >= 0 && gone >= 0 && gone2 == 20 && gone3 >= 0);
    CHECK(fcntl(gone3, F_SETFD, FD_CLOEXEC) == 0);
    CHECK(dup2(gone3, gone2 + 1) == gone2 + 1);
    CHECK(fcntl(gone2 + 1, F_SETFD, FD_CLOEXEC) == 0);
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, SIG_IGN);
    sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    CHECK(sigprocmask(SIG_BLOCK, &hup, NULL) == 0);

    CHECK(exec_child(argv[0], keep, gone, gone2) == CHILD_STATUS);
    CHECK(lseek(keep, 0, SEEK_SET) == 0);
    CHECK(exec_child("/proc/self/exe", keep, gone, gone2) == CHILD_STATUS);
    CHECK(lseek(keep, 0, SEEK_SET) == 0);
    CHECK(copy_file(argv[0], "/tmp/exec_copy", 0755) == 0);
    CHECK(exec_child("/tmp/exec_copy", keep, gone, gone2) == CHILD_STATUS);
    CHECK(lseek(keep, 0, SEEK_SET) == 0);
    CHECK(copy_file(argv[0], "/home/exec_copy", 0755) == 0);
    CHECK(exec_child("/home/exec_copy", keep, gone, gone2) == CHILD_STATUS);
    unlink("/tmp/exec_copy");
    unlink("/tmp/exec_text");
    unlink("/home/exec_copy");

    /* Exit statuses: the low 8 bits of exit's argument; a signal death. */
    int status;
    pid_t child = fork();
    if (child == 0)
        _exit(300);
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 44);
    child = fork();
    if (child == 0) {
        raise(SIGKILL);
        _exit(0);
    }
    CHECK(waitpid(child, &status, 0) == child && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    if (failures == 0)
        printf("PASS linux fork execve wait\n");
    return failures != 0;
}
