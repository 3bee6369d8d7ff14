// expect-output: hello from musl printf: 1 /bin/linux_musl_printf_hello 3.50
/* A static musl program (no NeoOS note) prints with printf: it starts on
 * a Linux initial stack, sets its thread pointer with arch_prctl, and its
 * output goes through ioctl(TIOCGWINSZ) and writev at exit. The runner
 * checks the line above on the console and the exit status 0. */
#include <stdio.h>

int main(int argc, char **argv)
{
    printf("hello from musl printf: %d %s %.2f\n", argc, argv[0], 3.5);
    return 0;
}
