/* linux_check.h - the checks of the Linux test programs (user/tests/linux),
 * which are built with musl and also run unchanged on Linux.
 *
 * Owns: failures (the count of failed checks), CHECK (a condition that
 * must hold, reported with errno) and CHECK_ERR (a call that must fail
 * with -1 and errno `code`). A program ends with `return failures != 0`. */
#ifndef LINUX_CHECK_H
#define LINUX_CHECK_H

#include <errno.h>
#include <stdio.h>

static int failures;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "FAIL %s:%d: %s (errno %d)\n", __FILE__,       \
                    __LINE__, #cond, errno);                               \
            failures++;                                                    \
        }                                                                  \
    } while (0)

#define CHECK_ERR(call, code)                                              \
    do {                                                                   \
        errno = 0;                                                         \
        long r_ = (long)(call);                                            \
        CHECK(r_ == -1 && errno == (code));                                \
    } while (0)

#endif
