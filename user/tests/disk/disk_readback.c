/* Disk test, second boot on the image disk_write left: the bytes it wrote
 * come back, through sys_read and through a mapping (see disk_write.c). */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>

#define PAGE 4096
#define NUEVO_SIZE (3 * PAGE + 100)

static unsigned char expected_datos(int p, int i)
{
    if (p == 0 || p == 1 || p == 4)
        return (unsigned char)(p * 13 + i * 5 + 1);
    return DATOS_BYTE(p * PAGE + i);
}

void main()
{
    static unsigned char buf[6 * PAGE];
    test_read_file(DATOS_PATH, 0, buf, sizeof buf);
    for (int p = 0; p < 6; p++)
        for (int i = 0; i < PAGE; i++)
            CHECK_EQ(buf[p * PAGE + i], expected_datos(p, i));

    struct neo_stat st;
    CHECK_EQ(sys_stat("/home/usuario/nuevo.bin", &st), E_OK);
    CHECK_EQ(st.size, NUEVO_SIZE);
    int fd = sys_open("/home/usuario/nuevo.bin", O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = (unsigned char *)sys_mmap(fd, 0, NUEVO_SIZE);
    CHECK(m != NULL);
    for (int i = 0; i < NUEVO_SIZE; i++)
        CHECK_EQ(m[i], (unsigned char)(i * 3 + 11));
    for (int i = NUEVO_SIZE; i < 4 * PAGE; i++)
        CHECK_EQ(m[i], 0);
    CHECK_EQ(sys_munmap(m, NUEVO_SIZE), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);
    printf("disk_readback: done\n");
}
