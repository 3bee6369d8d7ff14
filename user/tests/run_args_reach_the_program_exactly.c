// args: plain "two words" 'single '\''quoted'\''' "double \"quoted\"" back\\slash a,b:c 100% "" x#y é
/* The runner starts this program with the arguments of the line above,
 * split like a shell would and carried percent-encoded on the kernel
 * command line: argv holds exactly those words, spaces, quotes, commas,
 * colons, percent signs, an empty word and UTF-8 included. */
#include <neo_test.h>

static const char *const WANT[] = {
    "/bin/run_args_reach_the_program_exactly",
    "plain",
    "two words",
    "single 'quoted'",
    "double \"quoted\"",
    "back\\slash",
    "a,b:c",
    "100%",
    "",
    "x#y",
    "\xc3\xa9",
};
#define WANT_COUNT (sizeof WANT / sizeof WANT[0])

int main(int argc, char **argv)
{
    CHECK_EQ(argc, (long)WANT_COUNT);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], WANT[i]) != 0) {
            eprintf("FAIL argv[%d] is \"%s\", want \"%s\"\n", i, argv[i], WANT[i]);
            return 1;
        }
    }
    CHECK(argv[argc] == 0);
    PASS();
}
