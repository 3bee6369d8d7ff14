/* libneo's neo_strerror names each error.h code, and says so for others. */
#include <neo_test.h>

int main(void)
{
    CHECK(!strcmp(neo_strerror(E_OK), "E_OK (success)"));
    CHECK(!strcmp(neo_strerror(E_NOENT), "E_NOENT (no such entry)"));
    CHECK(!strcmp(neo_strerror(E_NOT_SUPPORTED), "E_NOT_SUPPORTED (not supported)"));
    CHECK(!strcmp(neo_strerror(sys_kill(0x7fffffff)), "E_NOENT (no such entry)"));
    CHECK(!strcmp(neo_strerror(E_LAST - 1), "unknown code"));
    CHECK(!strcmp(neo_strerror(1), "unknown code"));
    return 0;
}
