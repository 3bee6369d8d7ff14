/* linux_meminfo.h - /proc/meminfo for the musl test programs (user/tests/
 * linux, disk-linux, smp): its text, read now, and the number after a row's
 * name (the kernel's own rows too: DiskRequests, TlbShootdownIpis, ...,
 * CopiesUnlocked). */
#ifndef LINUX_MEMINFO_H
#define LINUX_MEMINFO_H

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* /proc/meminfo's text, read now into `buf` of `size` bytes (NULL if it
 * cannot be read). */
static inline const char *read_meminfo_into(char *buf, size_t size)
{
    int fd = open("/proc/meminfo", O_RDONLY);
    if (fd < 0)
        return NULL;
    long n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0)
        return NULL;
    buf[n] = 0;
    return buf;
}

/* The same into one static buffer (one thread at a time). */
static inline const char *read_meminfo(void)
{
    static char text[8192];
    return read_meminfo_into(text, sizeof text);
}

/* The number after `row` in `text`; -1 if not found. */
static inline long meminfo_row(const char *text, const char *row)
{
    const char *at = strstr(text, row);
    long value = -1;
    if (at)
        sscanf(at + strlen(row), "%ld", &value);
    return value;
}

/* The number after `row` in /proc/meminfo now; -1 if not found. Any
 * thread may call it (the text is read onto its stack). */
static inline long meminfo_now(const char *row)
{
    char buf[8192];
    const char *text = read_meminfo_into(buf, sizeof buf);
    return text ? meminfo_row(text, row) : -1;
}

#endif
