/* demo.c - the NeoOS tour: what sys_mmap and sys_munmap do, step by step.
 * Run it and read along; each step says what happens and why. */
#include <error.h>
#include <syscalls.h>
#include <sys/mman.h>
#include <neo.h>

static char listing[8192];

static void show_maps(const char *when)
{
    int n = sys_maps(listing, sizeof listing - 1);
    if (n < 0) {
        printf("  (sys_maps failed: %d)\n", n);
        return;
    }
    if (n > (int)sizeof listing - 1)
        n = (int)sizeof listing - 1;
    listing[n] = 0;
    printf("  -- this process's mappings %s (sys_maps) --\n%s", when, listing);
}

static struct neo_meminfo show_mem(const char *when)
{
    struct neo_meminfo mi;
    memset(&mi, 0, sizeof mi);
    if (sys_meminfo(&mi) == E_OK)
        printf("  -- memory %s: %lu of %lu frames free, %lu mappings, %lu resident pages, "
               "%lu bytes written back so far\n",
               when, mi.free_frames, mi.total_frames, mi.mappings, mi.resident_pages, mi.writeback_bytes);
    return mi;
}

static void step(int n, const char *text)
{
    printf("\n== Step %d: %s\n", n, text);
}

void main()
{
    printf("NeoOS demo (pid %d). Every program is an ELF started by the kernel;\n"
           "this one talks to it only through system calls (see docs/abi.md).\n", sys_getpid());

    step(1, "open the seed's file, /home/usuario/datos.bin, read-write");
    int fd = sys_open("/home/usuario/datos.bin", O_RDWR);
    printf("  sys_open -> descriptor %d\n", fd);
    if (fd < 0)
        return;

    step(2, "sys_mmap(fd, 0, 16384): map its first 4 pages into our address space");
    struct neo_meminfo before = show_mem("before sys_mmap");
    unsigned char *m = sys_mmap(fd, 0, 16384);
    if (m == NULL) {
        printf("  sys_mmap failed: sys_errno() = %d\n", sys_errno());
        return;
    }
    printf("  sys_mmap -> %p. Nothing is read yet: pages come in on first touch.\n", m);
    printf("  byte 1 through the mapping: %u (the file holds (i*7+3)&0xff, so 10)\n", m[1]);

    step(3, "store into the mapping: the page becomes dirty");
    unsigned char saved = m[2 * 4096];
    m[2 * 4096] = (unsigned char)(saved + 1);
    printf("  page 2, byte 0: %u -> %u\n", saved, m[2 * 4096]);
    show_maps("while mapped");
    show_mem("while mapped");

    step(4, "sys_munmap(addr, 16384): same address and size as sys_mmap");
    printf("  a partial sys_munmap is refused: sys_munmap(addr, 4096) = %d (E_INVAL = %d)\n",
           sys_munmap(m, 4096), E_INVAL);
    int r = sys_munmap(m, 16384);
    printf("  sys_munmap -> %d (E_OK). The dirty page was written to the file,\n"
           "  the page-table entries removed, the range freed, the file reference dropped.\n", r);
    struct neo_meminfo after = show_mem("after sys_munmap");
    printf("  written back by this sys_munmap: %lu bytes (one dirty page)\n",
           after.writeback_bytes - before.writeback_bytes);
    show_maps("after sys_munmap");

    step(5, "the descriptor is still open: read the byte back with sys_read");
    unsigned char page_head[4096];
    int n = sys_read(fd, page_head, 4096);          /* page 0 */
    n = sys_read(fd, page_head, 4096);              /* page 1 */
    n = sys_read(fd, page_head, 4096);              /* page 2 */
    printf("  sys_read -> %d bytes, byte 0 of page 2 = %u\n", n, page_head[0]);
    /* put the original value back */
    unsigned char *again = sys_mmap(fd, 2 * 4096, 4096);
    if (again) {
        again[0] = saved;
        sys_munmap(again, 4096);
    }
    printf("  sys_close -> %d\n", sys_close(fd));

    step(6, "the seed's other example: map the whole 1 MiB read-only, sum it, unmap");
    fd = sys_open("/home/usuario/datos.bin", O_RDONLY);
    unsigned char *all = fd >= 0 ? sys_mmap(fd, 0, 1024 * 1024) : NULL;
    if (all) {
        unsigned long sum = 0;
        for (int i = 0; i < 1024 * 1024; i++)
            sum += all[i];
        show_mem("with 1 MiB mapped and read");
        printf("  sum of all bytes: %lu; sys_munmap -> %d\n", sum, sys_munmap(all, 1024 * 1024));
        show_mem("after sys_munmap");
    }
    if (fd >= 0)
        sys_close(fd);

    step(7, "the POSIX side: anonymous memory, partial munmap splits a mapping");
    unsigned char *a = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    if (a != MAP_FAILED) {
        a[0] = a[4096] = a[8192] = 1;
        printf("  mmap 3 pages at %p; munmap of the middle page -> %d\n", a, munmap(a + 4096, 4096));
        show_maps("after the split");
        munmap(a, 3 * 4096);
    }

    step(8, "a faulty program: run /bin/segv as a child and wait for it");
    int pid = sys_run("/bin/segv", NULL);
    printf("  sys_run -> pid %d\n", pid);
    if (pid > 0) {
        int status = -1;
        int w = sys_wait(&status);
        printf("  sys_wait -> pid %d, status %d%s\n", w, status,
               status == NEO_STATUS_SEGFAULT ? " = NEO_STATUS_SEGFAULT: the kernel killed it" : "");
    }
    printf("  ...and we are still running: the system goes on.\n");

    printf("\nDemo finished. Try the shell: run /bin/shell\n");
}
