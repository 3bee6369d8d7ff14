/* Seed 000, Valor de Retorno: "Devuelve un código de error (negativo) ...
 * Otros códigos de error definidos en error.h." Whatever the arguments, a
 * failing sys_munmap returns one of the negative codes of error.h. */
#include <neo_test.h>

static void check_code(long r)
{
    CHECK(r < 0);
    CHECK_GE(r, E_LAST);
}

int main(void)
{
    static const unsigned long addrs[] = {
        0, 1, 4096, NEO_USER_BASE, 0x400000, 0x400001, 0x700000000000UL - 4096,
        0x00007ffffffff000UL, NEO_USER_END, 0xffff800000000000UL, 0xfffffffffffff000UL,
    };
    static const long sizes[] = { 0, 1, 4096, -1, -4096, 0x7fffffff, (long)0x80000000UL, 0x100000000L };
    for (unsigned a = 0; a < sizeof addrs / sizeof addrs[0]; a++)
        for (unsigned s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            check_code(neo_syscall(SYS_NEO_MUNMAP, (long)addrs[a], sizes[s], 0, 0, 0, 0));
    return 0;
}
