// args: -n "two words" 'it'\''s' "say \"hi\"" a,b:c%20 ""
// expect-output: PASS linux run args
/* A Linux program started with the arguments of the line above (split
 * like a shell would, carried percent-encoded on the kernel command line)
 * gets exactly those words in argv, then an empty environment and the
 * auxiliary vector. */
#include <stdio.h>
#include <string.h>

static const char *const WANT[] = {
    "/bin/linux_musl_run_args_reach_the_program_exactly",
    "-n", "two words", "it's", "say \"hi\"", "a,b:c%20", "",
};
#define WANT_COUNT ((int)(sizeof WANT / sizeof WANT[0]))

int main(int argc, char **argv)
{
    if (argc != WANT_COUNT) {
        printf("FAIL argc is %d, want %d\n", argc, WANT_COUNT);
        return 1;
    }
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], WANT[i]) != 0) {
            printf("FAIL argv[%d] is \"%s\", want \"%s\"\n", i, argv[i], WANT[i]);
            return 1;
        }
    }
    if (argv[argc] != NULL) {
        printf("FAIL argv is not NULL-terminated\n");
        return 1;
    }
    printf("PASS linux run args\n");
    return 0;
}
