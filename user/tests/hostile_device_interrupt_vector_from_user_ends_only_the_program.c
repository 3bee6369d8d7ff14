/* A program that raises the disk's interrupt vector itself (int $0x50,
 * the I/O APIC vector of virtio-blk) must not reach the driver's handler
 * (which would acknowledge the device and the local APIC for an interrupt
 * nobody sent): the gate is the kernel's only, so the program ends with a
 * CPU exception (#GP), each time, and the kernel goes on. */
#include <neo_test.h>

int main(void)
{
    for (int i = 0; i < 3; i++) {
        char *argv[] = { "/bin/eflags_probe", "int_disk_vector", NULL };
        CHECK_EQ(test_run_wait("/bin/eflags_probe", argv), NEO_STATUS_CRASHED);
    }
    CHECK_EQ(test_run_wait("/bin/hello", NULL), 0);
    PASS();
}
