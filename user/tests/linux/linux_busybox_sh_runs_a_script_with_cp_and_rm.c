// expect-output: PASS busybox sh script
/* busybox sh runs a script file with an argument: a variable, a for loop,
 * if with test, cp of a file, rm -f, and a test that the removed file is
 * gone; its output is exactly what the script echoes. (mkdir and ls need
 * calls NeoOS gains separately: not used here.) */
#include <string.h>
#include "exec_helpers.h"
#include "linux_check.h"

static const char script[] =
    "name=$1\n"
    "for word in one two; do echo \"$name $word\"; done > /tmp/bb_a\n"
    "cp /tmp/bb_a /tmp/bb_b\n"
    "cat /tmp/bb_b\n"
    "rm -f /tmp/bb_a\n"
    "if [ -e /tmp/bb_a ]; then echo still there; else echo gone; fi\n"
    "[ -s /tmp/bb_b ] && echo copy kept\n"
    "rm -f /tmp/bb_b\n";

int main(void)
{
    int fd = open("/tmp/bb_script.sh", O_WRONLY | O_CREAT | O_TRUNC, 0755);
    CHECK(fd >= 0 && write(fd, script, sizeof script - 1) == (ssize_t)(sizeof script - 1));
    close(fd);
    static char out[4096];
    char *env[] = {"PATH=/bin", NULL};
    char *argv[] = {"sh", "/tmp/bb_script.sh", "neo", NULL};
    int status = run_caught("/bin/busybox", argv, env, out, sizeof out);
    const char *want = "neo one\nneo two\ngone\ncopy kept\n";
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(strcmp(out, want) == 0);
    if (strcmp(out, want) != 0)
        fprintf(stderr, "the script printed: [%s]\n", out);
    unlink("/tmp/bb_script.sh");

    if (failures == 0)
        printf("PASS busybox sh script\n");
    return failures != 0;
}
