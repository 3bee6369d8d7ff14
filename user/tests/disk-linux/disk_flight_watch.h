/* disk_flight_watch.h - the watcher of the musl disk-wait tests that ask
 * what was on the device while a call had not returned (user/tests/
 * disk-linux: disk_linux_flush_wait, disk_linux_meta_wait,
 * disk_linux_writev_wait): a thread that
 * reads /proc/meminfo in a loop (DiskRequests, then DiskInterrupts, then
 * whether the call returned) and records each change until told to stop.
 * Owns: stop, returned, seen_requests, seen_interrupts, seen_returned,
 * seen_count. */
#ifndef DISK_FLIGHT_WATCH_H
#define DISK_FLIGHT_WATCH_H

#include "../linux/linux_meminfo.h"

#define MOST_SEEN 4096

static volatile int stop;
static volatile int returned;
static volatile long seen_requests[MOST_SEEN];
static volatile long seen_interrupts[MOST_SEEN];
static volatile int seen_returned[MOST_SEEN];
static volatile int seen_count;

/* Records each change of the two counts, with whether the call had
 * returned, until told to stop. */
static void *watcher(void *arg)
{
    (void)arg;
    long last_r = -2, last_i = -2;
    while (!stop) {
        long r = meminfo_now("DiskRequests:");
        long i = meminfo_now("DiskInterrupts:");
        int done = returned;
        if ((r != last_r || i != last_i) && seen_count < MOST_SEEN) {
            seen_requests[seen_count] = r;
            seen_interrupts[seen_count] = i;
            seen_returned[seen_count] = done;
            seen_count = seen_count + 1;
            last_r = r;
            last_i = i;
        }
    }
    return 0;
}

#endif
