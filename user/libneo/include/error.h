/* error.h - NeoOS result codes.
 *
 * Every NeoOS call (the sys_* functions of <syscalls.h>) returns one of these
 * negative codes on failure. The values are those of crates/abi (neoos_abi::neo);
 * crates/abi/tests/headers.rs checks them.
 */
#ifndef NEO_ERROR_H
#define NEO_ERROR_H

#define E_OK              0   /* success */
#define E_UNKNOWN        -1   /* unknown error */
#define E_NOMEM          -2   /* not enough memory / address space */
#define E_INVAL          -3   /* invalid argument (also: bad user pointer) */
#define E_NOENT          -4   /* no such entry */
#define E_EXISTS         -5   /* entry already exists */
#define E_BUSY           -6   /* resource busy */
#define E_IO             -7   /* input/output error */
#define E_PERM           -8   /* permission denied */
#define E_TIMEOUT        -9   /* timed out */
#define E_MODULE_ERR     -10  /* module error */
#define E_NOT_IMPL       -11  /* not implemented (also: unknown call number) */
#define E_NOT_SUPPORTED  -12  /* not supported */

/* Lowest NeoOS code: a NeoOS call's result r is an error iff E_LAST <= r < 0. */
#define E_LAST           -12

#endif
