/* A program with the most mappings exits by itself without unmapping,
 * and no other program stops for long while its address space goes: the
 * kill test's source built with HOG_EXITS (it says how and why). */
#define HOG_EXITS
static const char test_source[] = __FILE__;
#include "long_calls_kill_of_the_most_mappings_does_not_freeze_others.c"
