/* main_trailer.h - appended to every NeoOS program by the host tool.
 *
 * The host tool compiles each program as a wrapper translation unit:
 *     #include "/abs/path/prog.c"
 *     #include "/abs/path/user/libneo/src/main_trailer.h"
 * so that `main` is visible here with its declared type. crt0.S reads the flag
 * below: non-zero means main returns void, and the process exits with 0.
 */
#ifndef NEO_MAIN_TRAILER_H
#define NEO_MAIN_TRAILER_H

const int __neo_main_returns_void =
    __builtin_types_compatible_p(__typeof__(main), void()) ||
    __builtin_types_compatible_p(__typeof__(main), void(void)) ||
    __builtin_types_compatible_p(__typeof__(main), void(int, char **)) ||
    __builtin_types_compatible_p(__typeof__(main), void(int, char **, char **));

#endif
