// expect-output: PASS busybox sh -c echo redirect cat
/* Debian's busybox (a static glibc program) runs `sh -c` with echo
 * redirected to a file (created, then appended to) and cat of that file;
 * cat is the last command, which sh execs in its own process (through
 * /proc/self/exe). Its output, caught on a pipe, is exactly the lines. */
#include <string.h>
#include "exec_helpers.h"
#include "linux_check.h"

int main(void)
{
    static char out[4096];
    char *env[] = {"PATH=/bin", NULL};
    char *one[] = {"busybox", "sh", "-c", "echo hi > /tmp/bb_f; cat /tmp/bb_f", NULL};
    int status = run_caught("/bin/busybox", one, env, out, sizeof out);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(strcmp(out, "hi\n") == 0);
    if (strcmp(out, "hi\n") != 0)
        fprintf(stderr, "busybox printed: [%s]\n", out);

    char *two[] = {"sh", "-c", "echo one > /tmp/bb_f; echo two >> /tmp/bb_f; cat /tmp/bb_f", NULL};
    status = run_caught("/bin/busybox", two, env, out, sizeof out);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(strcmp(out, "one\ntwo\n") == 0);
    unlink("/tmp/bb_f");

    if (failures == 0)
        printf("PASS busybox sh -c echo redirect cat\n");
    return failures != 0;
}
