// expect-output: PASS glibc fork execve wait
/* A static glibc program forks (glibc's fork is clone with SIGCHLD,
 * CLONE_CHILD_SETTID and CLONE_CHILD_CLEARTID), the child execs this
 * program again with arguments and an environment, and the parent's
 * waitpid sees the new image's exit status; the child's getpid in glibc
 * (which reads the stored tid) matches the kernel's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "child") == 0) {
        const char *v = getenv("GLIBC_T");
        return v && strcmp(v, "yes") == 0 && atoi(argv[2]) == getpid() ? 42 : 1;
    }
    pid_t child = fork();
    if (child == 0) {
        char pid[16];
        snprintf(pid, sizeof pid, "%d", getpid());
        if (getpid() != syscall(SYS_getpid))
            _exit(2);
        char *args[] = {argv[0], "child", pid, NULL};
        char *env[] = {"GLIBC_T=yes", NULL};
        execve(argv[0], args, env);
        _exit(99);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 42) {
        fprintf(stderr, "FAIL: fork %d, status %#x\n", child, status);
        return 1;
    }
    printf("PASS glibc fork execve wait\n");
    return 0;
}
