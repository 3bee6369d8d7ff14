/* neo_test_disk_watch.h - watching the disk's request count from a second
 * thread while the first waits for the disk, for the in-QEMU disk tests
 * (user/tests/disk) that check a disk wait lets other calls run.
 *
 * Owns: disk_requests (the kernel's count, sys_meminfo), the counts a
 * watcher saw (note_disk_requests, seen[], seen_count) and seen_between.
 */
#ifndef NEO_TEST_DISK_WATCH_H
#define NEO_TEST_DISK_WATCH_H

#include <neo_test.h>

#define MOST_SEEN 4096

/* Each new disk request count the watcher saw, in order. */
__attribute__((unused)) static volatile long seen[MOST_SEEN];
__attribute__((unused)) static volatile int seen_count;

/* The disk requests the kernel has sent so far (-1 if it cannot say). */
__attribute__((unused)) static long disk_requests(void)
{
    struct neo_meminfo mi;
    if (sys_meminfo(&mi) != E_OK)
        return -1;
    return (long)mi.disk_requests;
}

/* Reads the count and records it in seen[] when it changed since `*last`;
 * returns it. */
__attribute__((unused)) static long note_disk_requests(long *last)
{
    long now = disk_requests();
    if (now != *last && seen_count < MOST_SEEN) {
        seen[seen_count] = now;
        seen_count = seen_count + 1;
        *last = now;
    }
    return now;
}

/* Whether the watcher saw a count strictly between `before` and `after`
 * (the counts it saw are printed, after `who`, when not). */
__attribute__((unused)) static int seen_between(const char *who, long before, long after)
{
    for (int i = 0; i < seen_count; i++)
        if (seen[i] > before && seen[i] < after)
            return 1;
    for (int i = 0; i < seen_count; i++)
        printf("%s saw %ld\n", who, seen[i]);
    return 0;
}

#endif
