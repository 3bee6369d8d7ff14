/* Disk test, booted with --memory 64M: anonymous memory has no disk
 * behind it (no swap), so reclaim cannot make room for it. First a file
 * page is cached (reclaim may take it), then 128 MiB of private anonymous
 * memory is touched page by page: the fault that finds no frame ends the
 * program as out of memory (status 137); it never gets to print. */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>
#include <sys/mman.h>

#define SIZE (128L * 1024 * 1024)
#define PAGE 4096

void main()
{
    static unsigned char buf[PAGE];
    test_read_file(DATOS_PATH, 0, buf, sizeof buf);
    unsigned char *m = mmap(0, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    for (long p = 0; p < SIZE / PAGE; p++)
        m[p * PAGE] = 1;
    printf("disk_anon_oom: touched all of it\n");
}
