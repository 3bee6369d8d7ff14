/* Seed 000, Notas: "Acceder a la memoria después de llamar a sys_munmap resulta
 * en comportamiento indefinido, típicamente fallos de segmentación." NeoOS makes
 * it a segmentation fault: a helper that reads (or writes) after sys_munmap is
 * ended with NEO_STATUS_SEGFAULT, and this process goes on. */
#include <neo_test.h>

int main(void)
{
    char *read_argv[] = { "/bin/fault_probe", "neo_after_munmap", NULL };
    CHECK_EQ(test_run_wait("/bin/fault_probe", read_argv), NEO_STATUS_SEGFAULT);
    char *store_argv[] = { "/bin/fault_probe", "neo_store_after_munmap", NULL };
    CHECK_EQ(test_run_wait("/bin/fault_probe", store_argv), NEO_STATUS_SEGFAULT);
    return 0;
}
