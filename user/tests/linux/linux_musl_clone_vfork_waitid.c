// expect-output: PASS linux clone vfork waitid
/* Fork-like clone as libc makes it (SIGCHLD with CLONE_PARENT_SETTID and
 * CLONE_CHILD_SETTID: the child's pid stored in the parent's memory and
 * in the child's own), vfork (the child execs or exits), and waitid:
 * P_PID and P_ALL, WEXITED, WNOHANG (no child ended: 0 and si_pid 0),
 * WNOWAIT (the child stays waitable), the siginfo of an exit (CLD_EXITED,
 * the code) and of a signal death (CLD_KILLED, the signal); ECHILD
 * without children, EINVAL without WEXITED. */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include "exec_helpers.h"
#include "linux_check.h"

static void waitid_exit(pid_t child, int code)
{
    siginfo_t info;
    memset(&info, 0xff, sizeof info);
    CHECK(waitid(P_PID, child, &info, WEXITED) == 0);
    CHECK(info.si_signo == SIGCHLD && info.si_code == CLD_EXITED);
    CHECK(info.si_pid == child && info.si_status == code && info.si_uid == 0);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "vchild") == 0)
        return 6;

    /* clone as fork, with both tid stores. */
    pid_t parent_tid = 0, child_tid = 0;
    long r = syscall(SYS_clone, CLONE_PARENT_SETTID | CLONE_CHILD_SETTID | SIGCHLD, 0,
                     &parent_tid, &child_tid, 0);
    if (r == 0)
        syscall(SYS_exit_group, child_tid == syscall(SYS_getpid) && parent_tid == 0 ? 7 : 8);
    CHECK(r > 0 && parent_tid == r && child_tid == 0);
    waitid_exit(r, 7);

    /* vfork: the child exits, or execs a program. */
    pid_t child = vfork();
    if (child == 0)
        _exit(5);
    waitid_exit(child, 5);
    child = vfork();
    if (child == 0) {
        char *args[] = {argv[0], "vchild", NULL};
        execve(argv[0], args, (char *[]){NULL});
        _exit(99);
    }
    waitid_exit(child, 6);

    /* WNOHANG while the child lives; WNOWAIT keeps it waitable. */
    int fds[2];
    CHECK(pipe(fds) == 0);
    child = fork();
    if (child == 0) {
        char c;
        close(fds[1]);
        _exit(read(fds[0], &c, 1) == 0 ? 9 : 10);
    }
    close(fds[0]);
    siginfo_t info;
    memset(&info, 0xff, sizeof info);
    CHECK(waitid(P_ALL, 0, &info, WEXITED | WNOHANG) == 0 && info.si_pid == 0);
    close(fds[1]);
    memset(&info, 0, sizeof info);
    CHECK(waitid(P_ALL, 0, &info, WEXITED | WNOWAIT) == 0 && info.si_pid == child);
    CHECK(info.si_code == CLD_EXITED && info.si_status == 9);
    waitid_exit(child, 9);

    /* A signal death. */
    child = fork();
    if (child == 0) {
        raise(SIGTERM);
        _exit(0);
    }
    memset(&info, 0, sizeof info);
    CHECK(waitid(P_ALL, 0, &info, WEXITED) == 0 && info.si_pid == child);
    CHECK(info.si_signo == SIGCHLD && info.si_code == CLD_KILLED && info.si_status == SIGTERM);

    CHECK_ERR(waitid(P_ALL, 0, &info, WEXITED), ECHILD);
    CHECK_ERR(waitid(P_ALL, 0, &info, WNOHANG), EINVAL);

    if (failures == 0)
        printf("PASS linux clone vfork waitid\n");
    return failures != 0;
}
