// expect-output: PASS busybox sh exit statuses
/* busybox sh forks a child for each command that is not its last (clone
 * as fork, then execve of /proc/self/exe) and waits for it: $? is each
 * child's exit status, a nested sh's `exit 7` is 7, a pipeline joins two
 * children, and the shell's own exit status and signal death reach its
 * parent as Linux encodes them. */
#include <signal.h>
#include <string.h>
#include "exec_helpers.h"
#include "linux_check.h"

static char out[4096];

/* Runs `sh -c script`; its wait status, its output in `out`. */
static int sh(const char *script)
{
    char *env[] = {"PATH=/bin", NULL};
    char *argv[] = {"sh", "-c", (char *)script, NULL};
    return run_caught("/bin/busybox", argv, env, out, sizeof out);
}

static void expect(const char *script, int code, const char *printed)
{
    int status = sh(script);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == code);
    CHECK(strcmp(out, printed) == 0);
    if (strcmp(out, printed) != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != code)
        fprintf(stderr, "sh -c '%s': status %#x, printed [%s]\n", script, status, out);
}

int main(void)
{
    expect("true; echo $?; false; echo $?", 0, "0\n1\n");
    expect("echo abc > /tmp/bb_x; cat /tmp/bb_x; echo after", 0, "abc\nafter\n");
    expect("sh -c 'exit 7'; echo $?", 0, "7\n");
    expect("echo piped | cat", 0, "piped\n");
    expect("exit 3", 3, "");
    int status = sh("kill -9 $$");
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    unlink("/tmp/bb_x");

    if (failures == 0)
        printf("PASS busybox sh exit statuses\n");
    return failures != 0;
}
