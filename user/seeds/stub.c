/* stub.c - linked with each C example of the specification (../shared/seeds),
 * which is compiled verbatim. It supplies what the examples leave undefined:
 *   - procesar_datos(data, size): reads every byte of the mapping (so every
 *     page is faulted in) and reports a checksum on STDOUT;
 *   - a main for examples that only define a function: it calls
 *     procesar_archivo_mapeado("/home/usuario/datos.bin") when the example
 *     defines it. An example's own main replaces this one (it is weak).
 */
#include <syscalls.h>
#include <neo.h>

void procesar_datos(void *data, int size)
{
    const volatile unsigned char *bytes = data;
    unsigned long sum = 0;
    for (int i = 0; i < size; i++)
        sum += bytes[i];
    printf("procesar_datos: %d bytes, checksum %lu\n", size, sum);
}

void procesar_archivo_mapeado(const char *filename) __attribute__((weak));

__attribute__((weak)) int main(void)
{
    if (procesar_archivo_mapeado)
        procesar_archivo_mapeado("/home/usuario/datos.bin");
    return 0;
}
