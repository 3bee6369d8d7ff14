/* Seed 000, Comportamiento 2, the other half: only *pending* changes are
 * written. A mapping that was only read is unmapped without any writeback. */
#include <neo_test.h>

int main(void)
{
    int fd = sys_open(DATOS_PATH, O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = sys_mmap(fd, 0, 16 * 4096);
    CHECK(m != NULL);
    unsigned long sum = 0;
    for (int i = 0; i < 16 * 4096; i += 512)
        sum += m[i];
    CHECK(sum > 0);
    struct neo_meminfo before = test_meminfo();
    CHECK_EQ(sys_munmap(m, 16 * 4096), E_OK);
    struct neo_meminfo after = test_meminfo();
    CHECK_EQ(after.writeback_bytes, before.writeback_bytes);
    CHECK_EQ(after.writeback_requests, before.writeback_requests);
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
