/* Seed 002, LEGACY SYNOPSIS: "#include <sys/types.h> #include <sys/mman.h>
 * int munmap(caddr_t addr, size_t len);" A program written against the legacy
 * synopsis (caddr_t from <sys/types.h>) compiles and works. */
#include <sys/types.h>
#include <sys/mman.h>
#include <neo_test.h>

int main(void)
{
    caddr_t a = (caddr_t)mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(a != (caddr_t)MAP_FAILED);
    a[0] = 'L';
    CHECK_EQ(munmap(a, 4096), 0);
    return 0;
}
