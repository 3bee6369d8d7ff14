// expect-output: PASS linux pthreads map touch unmap
/* A static musl pthreads program (pthread_create: clone with CLONE_VM,
 * CLONE_THREAD, CLONE_SETTLS, CLONE_PARENT_SETTID, CLONE_CHILD_CLEARTID):
 * four threads, each in rounds, map its own range, fill it with its own
 * pattern, yield, check every byte and unmap it (another thread may get the
 * same addresses right after: ranges are disjoint while held). A mutex and
 * a condition variable (futex wait and wake) count the rounds; each thread
 * has its own thread id (gettid, not the pid) and its own TLS (a __thread
 * variable). pthread_join takes each thread's result (the join waits on
 * the clear-child-tid futex). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "linux_check.h"

/* The C library named in the PASS line (the glibc build of this test sets
 * it: user/tests/glibc/). */
#ifndef LIBC_NAME
#define LIBC_NAME "linux"
#endif

#define THREADS 4
#define ROUNDS 6
#define PAGES 24

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_done = PTHREAD_COND_INITIALIZER;
static int rounds_done;
static long tids[THREADS];
static __thread long my_index = -1;

static unsigned char pattern(long thread, long round, long off)
{
    return (unsigned char)(off * 13 + thread * 31 + round * 7 + 1);
}

static void *worker(void *arg)
{
    long i = (long)arg;
    my_index = i;
    tids[i] = syscall(SYS_gettid);
    long page = sysconf(_SC_PAGESIZE);
    long len = PAGES * page;
    long bad = 0, bad_bytes = 0, bad_tls = 0, bad_unmap = 0;
    for (long round = 0; round < ROUNDS; round++) {
        unsigned char *r = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (r == MAP_FAILED)
            return (void *)1000;
        for (long off = 0; off < len; off++)
            r[off] = pattern(i, round, off);
        sched_yield();
        for (long off = 0; off < len; off++)
            bad_bytes += r[off] != pattern(i, round, off);
        bad_tls += my_index != i;
        bad_unmap += munmap(r, len) != 0;
        pthread_mutex_lock(&lock);
        rounds_done++;
        pthread_cond_broadcast(&all_done);
        pthread_mutex_unlock(&lock);
    }
    bad = bad_bytes + bad_tls + bad_unmap;
    if (bad)
        fprintf(stderr, "thread %ld: %ld bytes wrong, TLS wrong %ld times, munmap failed %ld times\n",
                i, bad_bytes, bad_tls, bad_unmap);
    return (void *)(bad + 10 * (i + 1));
}

int main(void)
{
    pthread_t threads[THREADS];
    for (long i = 0; i < THREADS; i++)
        CHECK(pthread_create(&threads[i], 0, worker, (void *)i) == 0);
    pthread_mutex_lock(&lock);
    while (rounds_done < THREADS * ROUNDS)
        pthread_cond_wait(&all_done, &lock);
    pthread_mutex_unlock(&lock);
    for (long i = 0; i < THREADS; i++) {
        void *result = 0;
        CHECK(pthread_join(threads[i], &result) == 0);
        CHECK((long)result == 10 * (i + 1));
    }
    long pid = getpid();
    CHECK(syscall(SYS_gettid) == pid);
    for (int i = 0; i < THREADS; i++) {
        CHECK(tids[i] > 0 && tids[i] != pid);
        for (int j = 0; j < i; j++)
            CHECK(tids[i] != tids[j]);
    }
    CHECK(my_index == -1);
    CHECK(rounds_done == THREADS * ROUNDS);
    if (failures == 0)
        printf("PASS " LIBC_NAME " pthreads map touch unmap\n");
    return failures != 0;
}
