/* Seed 000, Notas: "Si un proceso termina sin llamar a sys_munmap, el sistema
 * operativo automáticamente limpia todos sus mapeos." A helper maps a file
 * (and anonymous memory), dirties it and exits without unmapping or closing:
 * its dirty file pages reach the file and all its frames come back. */
#include <neo_test.h>

#define PATH "/tmp/seed000_exit_cleanup.dat"

int main(void)
{
    test_make_file(PATH, 8 * 4096, 0, 0);
    char *argv1[] = { "/bin/exit_with_mappings", PATH, "1", NULL };
    CHECK_EQ(test_run_wait("/bin/exit_with_mappings", argv1), 0); /* warm-up */

    long free0 = test_free_frames();
    struct neo_meminfo before = test_meminfo();
    char *argv2[] = { "/bin/exit_with_mappings", PATH, "2", NULL };
    CHECK_EQ(test_run_wait("/bin/exit_with_mappings", argv2), 0);
    struct neo_meminfo after = test_meminfo();
    CHECK_FRAMES_BACK(free0);
    CHECK_EQ(after.writeback_bytes - before.writeback_bytes, 8 * 4096);

    for (int p = 0; p < 8; p++) {
        unsigned char b;
        test_read_file(PATH, p * 4096, &b, 1);
        CHECK_EQ(b, 2);
    }
    /* repeat a few times: no growth */
    for (int i = 0; i < 5; i++) {
        char *argv3[] = { "/bin/exit_with_mappings", PATH, "3", NULL };
        CHECK_EQ(test_run_wait("/bin/exit_with_mappings", argv3), 0);
    }
    CHECK_FRAMES_BACK(free0);
    return 0;
}
