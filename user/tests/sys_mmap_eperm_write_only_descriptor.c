/* docs/abi.md sys_mmap: E_PERM for a write-only descriptor; a read-only
 * descriptor gives a read-only mapping (a store is a segmentation fault). */
#include <neo_test.h>

int main(void)
{
    int w = sys_open("/tmp/sys_mmap_eperm.dat", O_WRONLY | O_CREAT | O_TRUNC);
    CHECK_GE(w, 0);
    static char page[4096];
    CHECK_EQ(sys_write(w, page, 4096), 4096);
    CHECK(sys_mmap(w, 0, 4096) == NULL);
    CHECK_EQ(sys_errno(), E_PERM);
    CHECK_EQ(sys_close(w), E_OK);

    unsigned char before, after;
    test_read_file(DATOS_PATH, 10, &before, 1);
    CHECK(before != 0x55);
    char *argv[] = { "/bin/fault_probe", "neo_rdonly_store", NULL };
    CHECK_EQ(test_run_wait("/bin/fault_probe", argv), NEO_STATUS_SEGFAULT);
    /* the file was not changed by the refused store (of 0x55) */
    test_read_file(DATOS_PATH, 10, &after, 1);
    CHECK_EQ(after, before);
    return 0;
}
