/* neo.c - strings and formatted output for NeoOS programs. */
#include <neo.h>
#include <syscalls.h>

/* memcpy/memset use rep movsb/stosb so that the compiler cannot turn them
 * back into calls to themselves. */
void *memcpy(void *dst, const void *src, size_t n)
{
    void *d = dst;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d == s || n == 0)
        return dst;
    if (d < s || d >= s + n)
        return memcpy(dst, src, n);
    /* overlapping, copy backwards */
    d += n - 1;
    s += n - 1;
    __asm__ volatile("std\n\trep movsb\n\tcld" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    void *d = dst;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i])
            return (unsigned char)a[i] - (unsigned char)b[i];
        if (!a[i])
            return 0;
    }
    return 0;
}

char *strchr(const char *s, int c)
{
    for (;; s++) {
        if (*s == (char)c)
            return (char *)s;
        if (!*s)
            return NULL;
    }
}

char *strstr(const char *haystack, const char *needle)
{
    size_t n = strlen(needle);
    for (; *haystack; haystack++)
        if (!strncmp(haystack, needle, n))
            return (char *)haystack;
    return n == 0 ? (char *)haystack : NULL;
}

char *strcpy(char *dst, const char *src)
{
    char *d = dst;
    while ((*d++ = *src++))
        ;
    return dst;
}

const char *neo_strerror(int code)
{
    static const char *const names[] = {
        "E_OK (success)",
        "E_UNKNOWN (unknown error)",
        "E_NOMEM (not enough memory or address space)",
        "E_INVAL (invalid argument)",
        "E_NOENT (no such entry)",
        "E_EXISTS (entry already exists)",
        "E_BUSY (resource busy)",
        "E_IO (input/output error)",
        "E_PERM (permission denied)",
        "E_TIMEOUT (timed out)",
        "E_MODULE_ERR (module error)",
        "E_NOT_IMPL (not implemented)",
        "E_NOT_SUPPORTED (not supported)",
    };
    if (code > 0 || code < E_LAST)
        return "unknown code";
    return names[-code];
}

long neo_atol(const char *s)
{
    int neg = 0;
    long v = 0;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '-') {
        neg = 1;
        s++;
    }
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        for (;; s++) {
            int d;
            if (*s >= '0' && *s <= '9') d = *s - '0';
            else if (*s >= 'a' && *s <= 'f') d = *s - 'a' + 10;
            else if (*s >= 'A' && *s <= 'F') d = *s - 'A' + 10;
            else break;
            v = v * 16 + d;
        }
    } else {
        while (*s >= '0' && *s <= '9')
            v = v * 10 + (*s++ - '0');
    }
    return neg ? -v : v;
}

/* ---- formatting ---- */

struct sink {
    char *buf;     /* destination buffer */
    size_t cap;    /* its capacity */
    size_t len;    /* bytes in buf */
    size_t total;  /* bytes produced so far */
    int fd;        /* >= 0: flush to this descriptor when full */
};

static void sink_flush(struct sink *k)
{
    if (k->fd >= 0 && k->len > 0) {
        size_t off = 0;
        while (off < k->len) {
            int r = sys_write(k->fd, k->buf + off, (int)(k->len - off));
            if (r <= 0)
                break;
            off += (size_t)r;
        }
        k->len = 0;
    }
}

static void sink_put(struct sink *k, char c)
{
    k->total++;
    if (k->fd >= 0) {
        if (k->len == k->cap)
            sink_flush(k);
        k->buf[k->len++] = c;
    } else if (k->len + 1 < k->cap) {
        k->buf[k->len++] = c;
    }
}

static void put_padded(struct sink *k, const char *s, size_t n, int width, int left, char pad)
{
    int fill = width > (int)n ? width - (int)n : 0;
    if (!left)
        while (fill-- > 0)
            sink_put(k, pad);
    for (size_t i = 0; i < n; i++)
        sink_put(k, s[i]);
    if (left)
        while (fill-- > 0)
            sink_put(k, ' ');
}

static void put_number(struct sink *k, unsigned long v, int neg, unsigned base, int upper,
                       int width, int left, int zero, const char *prefix)
{
    char tmp[32];
    int n = 0;
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v);
    int plen = (int)strlen(prefix) + (neg ? 1 : 0);
    int fill = width > n + plen ? width - n - plen : 0;
    if (!left && !zero)
        while (fill-- > 0)
            sink_put(k, ' ');
    if (neg)
        sink_put(k, '-');
    for (const char *p = prefix; *p; p++)
        sink_put(k, *p);
    if (!left && zero)
        while (fill-- > 0)
            sink_put(k, '0');
    while (n > 0)
        sink_put(k, tmp[--n]);
    if (left)
        while (fill-- > 0)
            sink_put(k, ' ');
}

static void format(struct sink *k, const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            sink_put(k, *fmt);
            continue;
        }
        fmt++;
        int left = 0, zero = 0, width = 0, lng = 0;
        for (;; fmt++) {
            if (*fmt == '-') left = 1;
            else if (*fmt == '0') zero = 1;
            else break;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') {
            lng++;
            fmt++;
        }
        switch (*fmt) {
        case 'd':
        case 'i': {
            long v = lng ? va_arg(ap, long) : va_arg(ap, int);
            unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
            put_number(k, u, v < 0, 10, 0, width, left, zero, "");
            break;
        }
        case 'u':
        case 'x':
        case 'X': {
            unsigned long v = lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
            put_number(k, v, 0, *fmt == 'u' ? 10 : 16, *fmt == 'X', width, left, zero, "");
            break;
        }
        case 'p': {
            void *p = va_arg(ap, void *);
            put_number(k, (unsigned long)p, 0, 16, 0, width, left, zero, "0x");
            break;
        }
        case 'c': {
            char c = (char)va_arg(ap, int);
            put_padded(k, &c, 1, width, left, ' ');
            break;
        }
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            put_padded(k, s, strlen(s), width, left, ' ');
            break;
        }
        case '%':
            sink_put(k, '%');
            break;
        case '\0':
            return;
        default:
            sink_put(k, '%');
            sink_put(k, *fmt);
            break;
        }
    }
}

int vfdprintf(int fd, const char *fmt, va_list ap)
{
    char buf[256];
    struct sink k = { buf, sizeof buf, 0, 0, fd };
    format(&k, fmt, ap);
    sink_flush(&k);
    return (int)k.total;
}

int fdprintf(int fd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vfdprintf(fd, fmt, ap);
    va_end(ap);
    return r;
}

int printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vfdprintf(STDOUT, fmt, ap);
    va_end(ap);
    return r;
}

int eprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vfdprintf(STDERR, fmt, ap);
    va_end(ap);
    return r;
}

int vsnprintf(char *buf, size_t n, const char *fmt, va_list ap)
{
    struct sink k = { buf, n, 0, 0, -1 };
    format(&k, fmt, ap);
    if (n > 0)
        buf[k.len] = '\0';
    return (int)k.total;
}

int snprintf(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return r;
}

int puts(const char *s)
{
    int n = (int)strlen(s);
    sys_write(STDOUT, s, n);
    sys_write(STDOUT, "\n", 1);
    return n + 1;
}
