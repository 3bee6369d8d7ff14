/* fault_probe.c - helper: performs one access that must fault, chosen by argv[1].
 * If the access does NOT fault, the helper exits with FAULT_PROBE_SURVIVED (42),
 * so the calling test sees "got 42, want 139/135". Setup failures exit with 3. */
#include <syscalls.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <neo.h>

#define FAULT_PROBE_SURVIVED 42
#define SETUP_FAILED 3

static volatile unsigned char sink;

static void setup_check(int ok, const char *what)
{
    if (!ok) {
        eprintf("fault_probe: setup failed: %s\n", what);
        sys_exit(SETUP_FAILED);
    }
}

static void make_tmp(const char *path, int size)
{
    static char buf[4096];
    int fd = sys_open(path, O_RDWR | O_CREAT | O_TRUNC);
    setup_check(fd >= 0, "create tmp file");
    memset(buf, 'x', sizeof buf);
    while (size > 0) {
        int n = size < 4096 ? size : 4096;
        setup_check(sys_write(fd, buf, n) == n, "write tmp file");
        size -= n;
    }
    sys_close(fd);
}

int main(int argc, char **argv)
{
    setup_check(argc >= 2, "usage: fault_probe MODE");
    const char *mode = argv[1];
    eprintf("fault_probe: %s\n", mode);

    if (!strcmp(mode, "neo_after_munmap")) {
        int fd = sys_open("/home/usuario/datos.bin", O_RDONLY);
        setup_check(fd >= 0, "open datos.bin");
        volatile unsigned char *m = sys_mmap(fd, 0, 4096);
        setup_check(m != NULL, "sys_mmap");
        sink = m[0];
        setup_check(sys_munmap((void *)m, 4096) == E_OK, "sys_munmap");
        sink = m[0]; /* must fault */
    } else if (!strcmp(mode, "neo_store_after_munmap")) {
        make_tmp("/tmp/fault_probe_store.dat", 8192);
        int fd = sys_open("/tmp/fault_probe_store.dat", O_RDWR);
        setup_check(fd >= 0, "open");
        volatile unsigned char *m = sys_mmap(fd, 0, 8192);
        setup_check(m != NULL, "sys_mmap");
        m[4096] = 1;
        setup_check(sys_munmap((void *)m, 8192) == E_OK, "sys_munmap");
        m[4096] = 2; /* must fault */
    } else if (!strcmp(mode, "neo_past_size")) {
        /* The only mapping of this process: nothing lies right after it. */
        int fd = sys_open("/home/usuario/datos.bin", O_RDONLY);
        setup_check(fd >= 0, "open datos.bin");
        volatile unsigned char *m = sys_mmap(fd, 0, 8192);
        setup_check(m != NULL, "sys_mmap");
        sink = m[8191];
        sink = m[8192]; /* must fault */
    } else if (!strcmp(mode, "neo_past_size_unaligned")) {
        int fd = sys_open("/home/usuario/datos.bin", O_RDONLY);
        setup_check(fd >= 0, "open datos.bin");
        volatile unsigned char *m = sys_mmap(fd, 0, 100);
        setup_check(m != NULL, "sys_mmap");
        sink = m[99];
        sink = m[4096]; /* the page after ceil(100/4096) pages: must fault */
    } else if (!strcmp(mode, "neo_rdonly_store")) {
        int fd = sys_open("/home/usuario/datos.bin", O_RDONLY);
        setup_check(fd >= 0, "open datos.bin");
        volatile unsigned char *m = sys_mmap(fd, 0, 4096);
        setup_check(m != NULL, "sys_mmap");
        sink = m[10];
        m[10] = 0x55; /* read-only mapping: must fault */
    } else if (!strcmp(mode, "anon_after_munmap")) {
        volatile unsigned char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
        setup_check(m != MAP_FAILED, "mmap");
        m[0] = 1;
        setup_check(munmap((void *)m, 4096) == 0, "munmap");
        sink = m[0]; /* must fault */
    } else if (!strcmp(mode, "partial_middle")) {
        volatile unsigned char *m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
        setup_check(m != MAP_FAILED, "mmap");
        m[0] = 1;
        m[4096] = 2;
        m[8192] = 3;
        setup_check(munmap((void *)(m + 4096), 4096) == 0, "munmap middle");
        setup_check(m[0] == 1 && m[8192] == 3, "outer pages keep their data");
        sink = m[4096]; /* must fault */
    } else if (!strcmp(mode, "mprotect_ro")) {
        volatile unsigned char *m = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
        setup_check(m != MAP_FAILED, "mmap");
        m[0] = 1;
        m[4096] = 2;
        setup_check(mprotect((void *)(m + 4096), 4096, PROT_READ) == 0, "mprotect");
        m[0] = 5; /* first page still writable */
        setup_check(m[4096] == 2, "read-only page still readable");
        m[4096] = 9; /* must fault */
    } else if (!strcmp(mode, "beyond_eof")) {
        make_tmp("/tmp/fault_probe_eof.dat", 100);
        int fd = sys_open("/tmp/fault_probe_eof.dat", O_RDWR);
        setup_check(fd >= 0, "open");
        volatile unsigned char *m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        setup_check(m != MAP_FAILED, "mmap beyond eof");
        setup_check(m[0] == 'x', "page 0 holds the file");
        sink = m[2 * 4096]; /* wholly beyond the end of the file: bus error */
    } else if (!strcmp(mode, "shm_rdonly")) {
        int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
        setup_check(id >= 0, "shmget");
        volatile unsigned char *m = shmat(id, NULL, SHM_RDONLY);
        setup_check(m != (void *)-1, "shmat");
        shmctl(id, IPC_RMID, NULL);
        sink = m[0];
        m[0] = 1; /* must fault */
    } else if (!strcmp(mode, "null")) {
        sink = *(volatile unsigned char *)0;
    } else if (!strcmp(mode, "kernel")) {
        sink = *(volatile unsigned char *)0xffff800000000000UL;
    } else if (!strcmp(mode, "kernel_store")) {
        *(volatile unsigned long *)0xffffffff80000000UL = 0;
    } else if (!strcmp(mode, "syscall_at_top") || !strcmp(mode, "fork_at_top")) {
        /* a syscall in the last two bytes of the user half: its return
         * address is the first non-canonical one (for fork, the child's
         * too: no child may be made to return there) */
        long nr = !strcmp(mode, "fork_at_top") ? SYS_FORK : SYS_GETPID;
        unsigned char *top = mmap((void *)(NEO_USER_END - 4096), 4096,
                                  PROT_READ | PROT_WRITE | PROT_EXEC,
                                  MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0);
        setup_check(top != MAP_FAILED, "mmap of the top page");
        top[4094] = 0x0f; /* syscall */
        top[4095] = 0x05;
        __asm__ volatile("mov %1, %%rax\n\tjmp *%0" : : "r"(top + 4094), "r"(nr)
                         : "rax", "rcx", "r11", "memory");
    } else {
        setup_check(0, "unknown mode");
    }
    eprintf("fault_probe: %s: the access did not fault\n", mode);
    return FAULT_PROBE_SURVIVED;
}
