/* disk_request_watch.h - the watcher the musl disk-wait tests (user/tests/
 * disk-linux) run beside a call: a thread that records each new disk
 * request count /proc/meminfo shows until told to stop, and whether it saw
 * one strictly between a call's counts before and after (the call waited
 * for the disk while this thread ran; disk_linux_pread_wait). Owns: stop,
 * seen, seen_count. */
#ifndef DISK_REQUEST_WATCH_H
#define DISK_REQUEST_WATCH_H

#include "../linux/linux_meminfo.h"

#define MOST_SEEN 4096

static volatile int stop;
static volatile long seen[MOST_SEEN];
static volatile int seen_count;

/* The disk's request count from /proc/meminfo; -1 if not found. */
static long disk_requests(void)
{
    return meminfo_now("DiskRequests:");
}

/* Records each new disk request count it sees until told to stop. */
static void *watcher(void *arg)
{
    (void)arg;
    long last = -2;
    while (!stop) {
        long now = disk_requests();
        if (now != last && seen_count < MOST_SEEN) {
            seen[seen_count] = now;
            seen_count = seen_count + 1;
            last = now;
        }
    }
    return 0;
}

/* Whether the watcher saw a count strictly between `before` and `after`. */
static int seen_between(long before, long after)
{
    for (int i = 0; i < seen_count; i++)
        if (seen[i] > before && seen[i] < after)
            return 1;
    return 0;
}

#endif
