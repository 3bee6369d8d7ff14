/* The program break grows in place, as on Linux: 140,000 one-page brk
 * growths (more than a process's 131,072 mappings, so a kernel that made
 * each growth a mapping of its own runs out of them) all succeed, the heap
 * keeps what was written to it, and /proc/self/maps shows it as one
 * [heap] line ending at the break, after growing, shrinking and growing
 * again. No malloc here: musl's allocator would move the break too. */
#include "linux_check.h"

#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096UL
#define GROWTHS 140000UL

static char maps[1 << 16];

static unsigned long brk_to(unsigned long addr) {
    return (unsigned long)syscall(SYS_brk, addr);
}

static unsigned long hex(const char **p) {
    unsigned long v = 0;
    for (;; (*p)++) {
        char c = **p;
        if (c >= '0' && c <= '9') {
            v = v * 16 + (unsigned long)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v = v * 16 + (unsigned long)(c - 'a' + 10);
        } else {
            return v;
        }
    }
}

/* The number of [heap] lines in /proc/self/maps; the range of the last. */
static int heap_lines(unsigned long *start, unsigned long *end) {
    int fd = open("/proc/self/maps", O_RDONLY);
    CHECK(fd >= 0);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, maps + len, sizeof maps - 1 - len);
        CHECK(n >= 0);
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    maps[len] = 0;
    int lines = 0;
    for (const char *line = maps; *line; ) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        if (n >= 6 && memcmp(line + n - 6, "[heap]", 6) == 0) {
            const char *p = line;
            *start = hex(&p);
            p++;
            *end = hex(&p);
            lines++;
        }
        line += n + (eol != NULL);
    }
    return lines;
}

int main(void) {
    unsigned long first = brk_to(0);
    unsigned long base = (first + PAGE - 1) & ~(PAGE - 1);
    CHECK(brk_to(base) == base);

    unsigned long grown = 0;
    for (unsigned long i = 1; i <= GROWTHS; i++) {
        if (brk_to(base + i * PAGE) != base + i * PAGE) {
            break;
        }
        grown = i;
    }
    CHECK(grown == GROWTHS);
    unsigned long top = base + grown * PAGE;

    /* Every 64th page written and read back. */
    for (unsigned long i = 0; i < grown; i += 64) {
        *(volatile unsigned long *)(base + i * PAGE) = i * 7 + 3;
    }
    for (unsigned long i = 0; i < grown; i += 64) {
        CHECK(*(volatile unsigned long *)(base + i * PAGE) == i * 7 + 3);
    }

    unsigned long start = 0, end = 0;
    CHECK(heap_lines(&start, &end) == 1);
    CHECK(start <= base && end == top);

    /* Shrunk by half, then grown by one page: still one line, the pages
     * below the break kept, the page above it new (zero). */
    unsigned long half = base + (grown / 2) * PAGE;
    CHECK(brk_to(half) == half);
    CHECK(heap_lines(&start, &end) == 1);
    CHECK(end == half);
    CHECK(brk_to(half + PAGE) == half + PAGE);
    CHECK(heap_lines(&start, &end) == 1);
    CHECK(end == half + PAGE);
    CHECK(*(volatile unsigned long *)half == 0);
    CHECK(*(volatile unsigned long *)base == 3);
    CHECK(*(volatile unsigned long *)(base + 64 * PAGE) == 64 * 7 + 3);

    /* Back to where it began: no heap line left. */
    CHECK(brk_to(base) == base);
    CHECK(heap_lines(&start, &end) == 0);
    return failures != 0;
}
