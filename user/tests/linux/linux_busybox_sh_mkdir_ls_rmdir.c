// expect-output: PASS busybox mkdir ls rmdir
/* busybox sh makes a folder with two files, lists it with ls (names one
 * per line, sorted: stdout is a pipe), removes the files and the folder,
 * and a second ls of the folder fails with status 1 and says why. */
#include <string.h>
#include "exec_helpers.h"
#include "linux_check.h"

int main(void)
{
    static char out[4096];
    char *env[] = {"PATH=/bin", NULL};
    char *argv[] = {"sh", "-c",
                    "mkdir /tmp/bbd && echo x > /tmp/bbd/f2 && echo y > /tmp/bbd/f1 && "
                    "ls /tmp/bbd && rm /tmp/bbd/f1 /tmp/bbd/f2 && rmdir /tmp/bbd && ls /tmp/bbd",
                    NULL};
    int status = run_caught("/bin/busybox", argv, env, out, sizeof out);
    const char *want = "f1\nf2\nls: /tmp/bbd: No such file or directory\n";
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    CHECK(strcmp(out, want) == 0);
    if (strcmp(out, want) != 0)
        fprintf(stderr, "busybox printed: [%s] status %#x\n", out, status);
    if (failures == 0)
        printf("PASS busybox mkdir ls rmdir\n");
    return failures != 0;
}
