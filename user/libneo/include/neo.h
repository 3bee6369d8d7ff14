/* neo.h - small string and formatted-output helpers of libneo.
 *
 * printf-style formatting understands: %d %i %u %x %X %c %s %p %% with the
 * length modifiers l and ll (%ld %lu %lx %li ...), a minimum width and the
 * flags '0' and '-' (e.g. %08lx, %-10s). Output goes straight to the
 * descriptor with sys_write (no buffering across calls).
 */
#ifndef NEO_NEO_H
#define NEO_NEO_H

#include <sys/types.h>
#include <stdarg.h>

size_t strlen(const char *s);
int    strcmp(const char *a, const char *b);
int    strncmp(const char *a, const char *b, size_t n);
char  *strchr(const char *s, int c);
char  *strstr(const char *haystack, const char *needle);
char  *strcpy(char *dst, const char *src);
void  *memcpy(void *dst, const void *src, size_t n);
void  *memmove(void *dst, const void *src, size_t n);
void  *memset(void *dst, int c, size_t n);
int    memcmp(const void *a, const void *b, size_t n);

/* Decimal (optionally negative) or 0x-prefixed hexadecimal number. */
long   neo_atol(const char *s);
/* The name and meaning of a NeoOS result code (error.h), e.g.
 * "E_NOENT (no such entry)"; "unknown code" for anything else. */
const char *neo_strerror(int code);

int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));          /* STDOUT */
int eprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));         /* STDERR */
int fdprintf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int vfdprintf(int fd, const char *fmt, va_list ap);
/* Always NUL-terminates (if n > 0); returns the length the full text needs. */
int snprintf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t n, const char *fmt, va_list ap);
/* Writes s and a newline to STDOUT. */
int puts(const char *s);

#endif
