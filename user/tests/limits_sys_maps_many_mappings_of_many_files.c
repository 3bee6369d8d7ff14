/* docs/abi.md, Limits ("Long calls") and sys_maps: a listing of 20,000
 * mappings of 2,000 files completes (each file is named in one index lookup,
 * not a scan of every file), lists every mapping once with its file's path,
 * and reports its whole length. */
#include <neo_test.h>
#include <sys/mman.h>
#include <errno.h>

#define FILES 2000
#define PER_FILE 10
#define MAPPINGS (FILES * PER_FILE)
#define SLOTS 65536 /* open-addressing table of our mappings, by page number */
#define PREFIX "/tmp/limits_maps_"

static unsigned long slot_page[SLOTS];
static int slot_file[SLOTS];
static char seen[SLOTS];

static unsigned slot_of(unsigned long page)
{
    unsigned s = (unsigned)(page * 2654435761u) % SLOTS;
    while (slot_page[s] != 0 && slot_page[s] != page)
        s = (s + 1) % SLOTS;
    return s;
}

static void name_of(int i, char *out)
{
    const char *p = PREFIX;
    int n = 0;
    while (*p)
        out[n++] = *p++;
    char digits[8];
    int d = 0;
    do {
        digits[d++] = (char)('0' + i % 10);
        i /= 10;
    } while (i);
    while (d)
        out[n++] = digits[--d];
    out[n] = 0;
}

static unsigned long parse_hex(const char *s, int n)
{
    unsigned long v = 0;
    for (int i = 0; i < n; i++) {
        char c = s[i];
        v = v * 16 + (unsigned long)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return v;
}

static int starts_with(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return 0;
    return 1;
}

int main(void)
{
    char path[64];
    for (int i = 0; i < FILES; i++) {
        name_of(i, path);
        int fd = sys_open(path, O_RDWR | O_CREAT);
        CHECK_GE(fd, 0);
        for (int j = 0; j < PER_FILE; j++) {
            char *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, (long)j * 4096);
            CHECK(m != MAP_FAILED);
            unsigned long page = (unsigned long)m / 4096;
            unsigned s = slot_of(page);
            CHECK_EQ(slot_page[s], 0);
            slot_page[s] = page;
            slot_file[s] = i;
        }
        CHECK_EQ(sys_close(fd), E_OK);
    }

    int len = 4 << 20;
    char *buf = mmap(NULL, (unsigned long)len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(buf != MAP_FAILED);
    for (int i = 0; i < len; i += 4096)
        buf[i] = 0; /* resident now: the listing's counts stay as they are */
    int total = sys_maps(buf, len);
    CHECK_GE(total, MAPPINGS * 60);
    CHECK(total < len);
    CHECK_EQ(sys_maps(buf, 100), total); /* the whole length when cut */
    CHECK_EQ(sys_maps(buf, len), total);

    int ours = 0;
    for (int at = 0; at < total;) {
        const char *line = buf + at;
        int n = 0;
        while (at + n < total && line[n] != '\n')
            n++;
        CHECK(at + n < total); /* every line ends with a newline */
        /* START-END r--s file PATH resident=N dirty=N */
        const char *kind = line + 34;
        if (starts_with(kind, "r--s file " PREFIX)) {
            unsigned long start = parse_hex(line, 16);
            unsigned long end = parse_hex(line + 17, 16);
            CHECK_EQ(end - start, 4096);
            unsigned s = slot_of(start / 4096);
            CHECK_EQ(slot_page[s], start / 4096);
            CHECK_EQ(seen[s], 0);
            seen[s] = 1;
            name_of(slot_file[s], path);
            const char *named = kind + 10;
            int k = 0;
            while (path[k] && named[k] == path[k])
                k++;
            CHECK_EQ(path[k], 0);
            CHECK(named[k] == ' ');
            ours++;
        }
        at += n + 1;
    }
    CHECK_EQ(ours, MAPPINGS);
    return 0;
}
