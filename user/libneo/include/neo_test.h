/* neo_test.h - checks for the in-QEMU test programs (user/tests).
 *
 * A test passes by exiting with status 0. A failed check prints
 *     FAIL <file>:<line>: <expr> (got X, want Y)
 * to STDERR and ends the process with sys_exit(1).
 */
#ifndef NEO_TEST_H
#define NEO_TEST_H

#include <syscalls.h>
#include <error.h>
#include <neo.h>

#define NEO_TEST_FAIL_STATUS 1

__attribute__((noreturn, unused)) static void
neo_test_fail(const char *file, int line, const char *expr, long got, long want, int has_values)
{
    if (has_values)
        eprintf("FAIL %s:%d: %s (got %ld [0x%lx], want %ld [0x%lx])\n", file, line, expr,
                got, (unsigned long)got, want, (unsigned long)want);
    else
        eprintf("FAIL %s:%d: %s (got false, want true)\n", file, line, expr);
    sys_exit(NEO_TEST_FAIL_STATUS);
}

#define CHECK(cond) do { \
        if (!(cond)) neo_test_fail(__FILE__, __LINE__, #cond, 0, 0, 0); \
    } while (0)

#define CHECK_EQ(a, b) do { \
        long neo_got_ = (long)(a), neo_want_ = (long)(b); \
        if (neo_got_ != neo_want_) \
            neo_test_fail(__FILE__, __LINE__, #a " == " #b, neo_got_, neo_want_, 1); \
    } while (0)

#define CHECK_NE(a, b) do { \
        long neo_got_ = (long)(a), neo_want_ = (long)(b); \
        if (neo_got_ == neo_want_) \
            neo_test_fail(__FILE__, __LINE__, #a " != " #b, neo_got_, neo_want_, 1); \
    } while (0)

/* a >= b (signed) */
#define CHECK_GE(a, b) do { \
        long neo_got_ = (long)(a), neo_want_ = (long)(b); \
        if (neo_got_ < neo_want_) \
            neo_test_fail(__FILE__, __LINE__, #a " >= " #b, neo_got_, neo_want_, 1); \
    } while (0)

/* a <= b (signed) */
#define CHECK_LE(a, b) do { \
        long neo_got_ = (long)(a), neo_want_ = (long)(b); \
        if (neo_got_ > neo_want_) \
            neo_test_fail(__FILE__, __LINE__, #a " <= " #b, neo_got_, neo_want_, 1); \
    } while (0)

/* Prints "PASS <file>" to STDERR and exits 0. */
#define PASS() do { eprintf("PASS %s\n", __FILE__); sys_exit(0); } while (0)

/* ---- helpers ---- */

/* Frames a test may leave allocated after a cycle, for page-table pages and
 * kernel bookkeeping that a kernel may keep for reuse (tests warm up first). */
#define NEO_TEST_FRAME_SLACK 4

/* Initial content of /home/usuario/datos.bin (1 MiB): byte i is (i*7+3) & 0xff. */
#define DATOS_PATH "/home/usuario/datos.bin"
#define DATOS_SIZE (1024 * 1024)
#define DATOS_BYTE(i) ((unsigned char)(((i) * 7 + 3) & 0xff))

__attribute__((unused)) static long test_free_frames(void)
{
    struct neo_meminfo mi;
    int r = sys_meminfo(&mi);
    CHECK_EQ(r, E_OK);
    return (long)mi.free_frames;
}

__attribute__((unused)) static struct neo_meminfo test_meminfo(void)
{
    struct neo_meminfo mi;
    CHECK_EQ(sys_meminfo(&mi), E_OK);
    return mi;
}

/* Frees at most NEO_TEST_FRAME_SLACK frames fewer than `baseline`. */
#define CHECK_FRAMES_BACK(baseline) do { \
        long neo_now_ = test_free_frames(); \
        CHECK_GE(neo_now_, (long)(baseline) - NEO_TEST_FRAME_SLACK); \
    } while (0)

/* Ticks (100 a second) WAIT_FRAMES_BACK waits at most. */
#define NEO_TEST_FRAMES_WAIT_TICKS 3000

/* Waits (yielding, at most NEO_TEST_FRAMES_WAIT_TICKS) until the free frames
 * are back to `baseline` as CHECK_FRAMES_BACK counts them, then checks it.
 * For a test whose process (or child) ended, or unmapped a file with
 * POSIX munmap, while a /home file had dirty pages: the kernel keeps that
 * file's pages until its flusher has written them (at its next pass, without
 * the kernel lock; docs/design.md, "Kept files"). Returns the ticks waited. */
__attribute__((unused)) static long test_wait_frames_back(long baseline)
{
    long start = sys_ticks();
    while (test_free_frames() < baseline - NEO_TEST_FRAME_SLACK &&
           sys_ticks() < start + NEO_TEST_FRAMES_WAIT_TICKS)
        sys_yield();
    CHECK_FRAMES_BACK(baseline);
    return sys_ticks() - start;
}

/* Creates (or truncates) `path` with `size` bytes, byte i = pattern(i) where
 * pattern is (i*mul + add) & 0xff. Fails the test on any error. */
__attribute__((unused)) static void
test_make_file(const char *path, long size, int mul, int add)
{
    static unsigned char chunk[4096];
    int fd = sys_open(path, O_RDWR | O_CREAT | O_TRUNC);
    CHECK_GE(fd, 0);
    for (long off = 0; off < size; off += (long)sizeof chunk) {
        long n = size - off < (long)sizeof chunk ? size - off : (long)sizeof chunk;
        for (long i = 0; i < n; i++)
            chunk[i] = (unsigned char)(((off + i) * mul + add) & 0xff);
        CHECK_EQ(sys_write(fd, chunk, (int)n), n);
    }
    CHECK_EQ(sys_close(fd), E_OK);
}

/* Reads `count` bytes of `path` at `offset` with sys_read (no mapping). */
__attribute__((unused)) static void
test_read_file(const char *path, long offset, void *buf, int count)
{
    static unsigned char skip[4096];
    int fd = sys_open(path, O_RDONLY);
    CHECK_GE(fd, 0);
    while (offset > 0) {
        int n = offset < (long)sizeof skip ? (int)offset : (int)sizeof skip;
        int r = sys_read(fd, skip, n);
        CHECK_EQ(r, n);
        offset -= n;
    }
    int got = 0;
    while (got < count) {
        int r = sys_read(fd, (char *)buf + got, count - got);
        CHECK_GE(r, 1);
        got += r;
    }
    CHECK_EQ(sys_close(fd), E_OK);
}

/* Runs `path` with argv (may be NULL), waits for it and returns its status. */
__attribute__((unused)) static int test_run_wait(const char *path, char *const argv[])
{
    int pid = sys_run(path, argv);
    CHECK_GE(pid, 1);
    int status = -1;
    int r = sys_wait(&status);
    CHECK_EQ(r, pid);
    return status;
}

#endif
