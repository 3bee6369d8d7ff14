/* Seed 000, Valor de Retorno: E_INVAL "... o la región no estaba mapeada":
 * a region already unmapped (a second sys_munmap), memory never given by
 * sys_mmap (stack, program data, anonymous mmap, a shm attachment). */
#include <neo_test.h>
#include <sys/mman.h>
#include <sys/shm.h>

static char data_page[4096] __attribute__((aligned(4096)));

int main(void)
{
    int fd = sys_open(DATOS_PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    unsigned char *m = sys_mmap(fd, 0, 4096);
    CHECK(m != NULL);
    CHECK_EQ(sys_munmap(m, 4096), E_OK);
    CHECK_EQ(sys_munmap(m, 4096), E_INVAL); /* second time */

    char stack_buf[64];
    unsigned long stack_page = (unsigned long)stack_buf & ~4095UL;
    CHECK_EQ(sys_munmap((void *)stack_page, 4096), E_INVAL);
    CHECK_EQ(sys_munmap(data_page, 4096), E_INVAL);

    void *anon = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(anon != MAP_FAILED);
    CHECK_EQ(sys_munmap(anon, 4096), E_INVAL);
    CHECK_EQ(munmap(anon, 4096), 0);

    int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    CHECK_GE(id, 0);
    void *s = shmat(id, NULL, 0);
    CHECK(s != (void *)-1);
    CHECK_EQ(sys_munmap(s, 4096), E_INVAL);
    CHECK_EQ(shmdt(s), 0);
    CHECK_EQ(shmctl(id, IPC_RMID, NULL), 0);

    /* Everything still works: stack and data are intact. */
    stack_buf[0] = 'k';
    data_page[0] = 'd';
    CHECK_EQ(stack_buf[0], 'k');
    CHECK_EQ(data_page[0], 'd');
    CHECK_EQ(sys_close(fd), E_OK);
    return 0;
}
