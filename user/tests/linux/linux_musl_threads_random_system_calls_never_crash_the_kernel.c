// expect-output: PASS linux musl threads random system calls
/* Random system calls from several threads at once (issue 13, item 6,
 * with the Linux personality): the test forks CHILDREN children; in each,
 * THREADS pthreads make random Linux calls with hostile arguments (as
 * linux_musl_random_system_calls_never_crash_the_kernel.c does, one
 * thread) and, among them, thread work: pthread_create/join/detach of
 * short-lived threads, futex waits and wakes on shared words, tgkill of
 * sibling threads (SIGUSR1, handled), mmap/munmap/mprotect of mappings the
 * threads share and touch (a touch of one a sibling just unmapped or
 * protected takes a SIGSEGV, whose handler leaves the touch by
 * siglongjmp), those mappings grown (moving them) by mremap and shrunk
 * back while siblings touch them, now and then with hostile lengths and
 * flags, the program break asked, grown and moved (hostile values now and
 * then), fork from a thread, pthread_exit midway, and
 * at a random point exit_group from whichever thread gets there. clone,
 * futex and exit_group thus run under fuzz.
 *
 * A random call may block for ever (a futex wait on a word nobody wakes, a
 * read of an empty pipe, a long sleep): the child's first thread makes no
 * random calls; it waits up to WATCHDOG_MS for the workers and then ends
 * the child with exit_group(0), which must end every thread, blocked or
 * not (it starts them all before they begin, and then makes raw calls
 * only, so no musl lock a worker left held stops it). Each child must end,
 * with 0 or by a signal; at least a quarter with 0. The kernel stays up (the suite's frame test then checks every frame
 * came back).
 *
 * Left out of the random calls, beside the one-thread test's list: calls
 * that reach other processes or the files other tests use (kill, tkill,
 * tgkill, rt_(tg)sigqueueinfo, ptrace, reboot, execve, open/openat/creat,
 * unlink, rename, rmdir, mkdir, mknod, link, symlink, truncate, mount),
 * exit/exit_group (made on purpose instead) and set_tid_address and
 * set_robust_list (musl's bookkeeping: see excluded()). Descriptors 0-2 are closed in
 * the children, so no call waits for the console or floods it. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "linux_meminfo.h"

/* <linux/futex.h> is not among musl's headers */
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129

#define CHILDREN 8
#define THREADS 4
#define CALLS 400          /* per worker */
#define SHORT_CALLS 20     /* per short-lived thread */
#define SHORT_LIVE 6       /* short-lived threads at once */
#define MAPS 4             /* mappings the threads share */
#define MAP_PAGES 4
#define WATCHDOG_MS 2000

static unsigned char scratch[65536];
static __thread uint64_t state;
static volatile int futex_words[4];
static volatile pid_t tids[THREADS + 1];
static volatile unsigned long maps[MAPS];
static volatile int workers_done, short_live;
static volatile long calls_made;
static volatile int go;
static long exit_group_at = -1;
static int child_seed;

#include "random_calls.h"

static uint64_t pick(uint64_t n) { return next() % n; }

static int excluded(long n)
{
    if (excluded_in_one_thread(n))
        return 1;
    switch (n) {
    /* other processes, other tests' files */
    case SYS_kill: case SYS_tkill: case SYS_tgkill: case SYS_rt_sigqueueinfo:
    case SYS_rt_tgsigqueueinfo: case SYS_ptrace: case SYS_reboot: case SYS_execve:
    case SYS_execveat: case SYS_open: case SYS_openat: case SYS_creat:
    case SYS_unlink: case SYS_unlinkat: case SYS_rename: case SYS_renameat:
    case SYS_renameat2: case SYS_rmdir: case SYS_mkdir: case SYS_mkdirat:
    case SYS_mknod: case SYS_mknodat: case SYS_link: case SYS_linkat:
    case SYS_symlink: case SYS_symlinkat: case SYS_truncate: case SYS_mount:
    case SYS_umount2: case SYS_pivot_root: case SYS_chroot:
    /* musl's own: a thread's exit releases the thread-list lock through
     * its clear-child-tid word; another word there leaves the lock held
     * by a dead thread and every later pthread call waits for ever */
    case SYS_set_tid_address: case SYS_set_robust_list:
        return 1;
    default:
        return 0;
    }
}

static void random_call(void)
{
    long n = (long)pick(460);
    if (excluded(n))
        return;
    syscall(n, argument(), argument(), argument(), argument(), argument(), argument());
}

static void on_usr1(int sig) { (void)sig; }

/* A thread's way out of a touch that faulted (set around the touch only). */
static __thread sigjmp_buf touch_escape;
static __thread volatile int touching;

static void on_segv(int sig)
{
    if (touching)
        siglongjmp(touch_escape, 1);
    signal(sig, SIG_DFL); /* any other fault: the access again, and the end */
}

static void *short_lived(void *arg)
{
    state = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ULL + 1;
    for (int i = 0; i < SHORT_CALLS; i++)
        random_call();
    __atomic_sub_fetch(&short_live, 1, __ATOMIC_SEQ_CST);
    return (void *)(uintptr_t)pick(2);
}

static void start_short_lived(void)
{
    if (__atomic_add_fetch(&short_live, 1, __ATOMIC_SEQ_CST) > SHORT_LIVE) {
        __atomic_sub_fetch(&short_live, 1, __ATOMIC_SEQ_CST);
        return;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, short_lived, (void *)(uintptr_t)next()) != 0) {
        __atomic_sub_fetch(&short_live, 1, __ATOMIC_SEQ_CST);
        return;
    }
    if (pick(2))
        pthread_join(t, NULL);
    else
        pthread_detach(t);
}

static void futex_call(void)
{
    volatile int *word = &futex_words[pick(4)];
    struct timespec t = {0, (long)pick(2000000)};
    switch (pick(3)) {
    case 0:
        syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, *word, &t, NULL, 0);
        break;
    case 1:
        __atomic_add_fetch(word, 1, __ATOMIC_SEQ_CST);
        syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, (int)pick(3), NULL, NULL, 0);
        break;
    default:
        /* hostile: a wait on a word that differs, bad timeouts, bad ops */
        syscall(SYS_futex, word, (int)pick(16), *word + 1, (long)argument(), NULL, 0);
        break;
    }
}

/* Grows the mapping at `at` (taken out of `slot`) with mremap, which
 * moves it when the range after it is taken, and shrinks it back; now and
 * then with a hostile length or flags. Siblings that read `at` before may
 * be touching it meanwhile (their SIGSEGV is handled). It goes back into
 * `slot`, or is unmapped if the slot was filled meanwhile. */
static void remap_call(volatile unsigned long *slot, unsigned long at)
{
    const long len = MAP_PAGES * 4096;
    long new_len = pick(8) ? 2 * len : argument();
    /* (Never MREMAP_FIXED: to a random address it would unmap the
     * program's own memory and end the child more often than not.) */
    long flags = pick(8) ? MREMAP_MAYMOVE : (long)(pick(8) & ~MREMAP_FIXED);
    long m = syscall(SYS_mremap, at, len, new_len, flags, argument());
    if (m == -1) {
        m = (long)at;
    } else if (new_len > len && syscall(SYS_mremap, m, new_len, len, 0, 0) == -1) {
        /* Could not shrink back: whatever it is now goes. */
        syscall(SYS_munmap, m, new_len);
        return;
    }
    unsigned long empty = 0;
    if (!__atomic_compare_exchange_n(slot, &empty, (unsigned long)m, 0, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST))
        syscall(SYS_munmap, m, len);
}

/* The break asked, grown by up to 64 pages above where the first call
 * found it, or moved back there; now and then a hostile value. */
static void break_call(void)
{
    static unsigned long base;
    unsigned long now = (unsigned long)syscall(SYS_brk, 0), none = 0;
    __atomic_compare_exchange_n(&base, &none, now, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    unsigned long want = base + pick(64) * 4096 + pick(4096);
    syscall(SYS_brk, pick(16) ? want : (unsigned long)argument());
}

/* Maps, unmaps, protects, remaps or touches one of the shared mappings,
 * or moves the break. */
static void mapping_call(void)
{
    volatile unsigned long *slot = &maps[pick(MAPS)];
    unsigned long at = *slot;
    switch (pick(8)) {
    case 0:
        if (at && __atomic_compare_exchange_n(slot, &at, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            munmap((void *)at, MAP_PAGES * 4096);
        break;
    case 1:
        if (!at) {
            void *m = mmap(NULL, MAP_PAGES * 4096, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m != MAP_FAILED &&
                !__atomic_compare_exchange_n(slot, &at, (unsigned long)m, 0, __ATOMIC_SEQ_CST,
                                             __ATOMIC_SEQ_CST))
                munmap(m, MAP_PAGES * 4096);
        }
        break;
    case 2:
        if (at && pick(8) == 0)
            mprotect((void *)at, MAP_PAGES * 4096, pick(2) ? PROT_READ : PROT_READ | PROT_WRITE);
        break;
    case 3:
        if (at && __atomic_compare_exchange_n(slot, &at, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            remap_call(slot, at);
        break;
    case 4:
        if (pick(4) == 0)
            break_call();
        break;
    default:
        if (at) {
            volatile unsigned char *p = (volatile unsigned char *)at + pick(MAP_PAGES * 4096);
            unsigned char value = (unsigned char)next();
            int write = (int)pick(2);
            /* A sibling may have unmapped or protected it: the SIGSEGV
             * comes back here (on_segv), and the thread goes on. */
            if (sigsetjmp(touch_escape, 1) == 0) {
                touching = 1;
                if (write)
                    *p = value;
                else
                    (void)*p;
            }
            touching = 0;
        }
        break;
    }
}

/* One call of a worker: mostly random, sometimes thread work. */
static void worker_call(int me, long index)
{
    if (index == exit_group_at)
        syscall(SYS_exit_group, 0);
    switch (pick(32)) {
    case 0: start_short_lived(); return;
    case 1: case 2: futex_call(); return;
    case 3: {
        pid_t tid = tids[pick(THREADS + 1)];
        if (tid > 0)
            syscall(SYS_tgkill, getpid(), tid, pick(4) ? SIGUSR1 : 0);
        return;
    }
    case 4: case 5: case 6: case 7: mapping_call(); return;
    case 8:
        if (pick(8) == 0) {
            pid_t pid = fork();
            if (pid == 0)
                _exit(0);
            if (pid > 0)
                waitpid(pid, NULL, 0);
        }
        return;
    case 9:
        if (pick(64) == 0) {
            /* the thread's end while the others call: the kernel clears its
             * tid word (musl's thread-list lock) and wakes a waiter */
            __atomic_add_fetch(&workers_done, 1, __ATOMIC_SEQ_CST);
            pthread_exit(NULL);
        }
        return;
    default:
        (void)me;
        random_call();
        return;
    }
}

static void *worker(void *arg)
{
    int me = (int)(uintptr_t)arg;
    while (!go)
        syscall(SYS_sched_yield);
    state = (uint64_t)child_seed * 0x2545f4914f6cdd1dULL + (uint64_t)me * 0x9e3779b97f4a7c15ULL + 1;
    tids[me] = (pid_t)syscall(SYS_gettid);
    for (int i = 0; i < CALLS; i++)
        worker_call(me, __atomic_fetch_add(&calls_made, 1, __ATOMIC_SEQ_CST));
    __atomic_add_fetch(&workers_done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* The child of seed `seed`: THREADS workers, the first thread the watchdog. */
static void child(int seed)
{
    close(0);
    close(1);
    close(2);
    child_seed = seed;
    state = (uint64_t)seed * 0x2545f4914f6cdd1dULL + 7;
    signal(SIGUSR1, on_usr1);
    signal(SIGSEGV, on_segv);
    tids[THREADS] = (pid_t)syscall(SYS_gettid);
    if (pick(3) == 0)
        exit_group_at = (long)pick(THREADS * CALLS);
    for (int i = 0; i < THREADS; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, (void *)(uintptr_t)i) == 0)
            pthread_detach(t);
        else
            __atomic_add_fetch(&workers_done, 1, __ATOMIC_SEQ_CST);
    }
    /* From here on the first thread makes raw calls only: a lock of musl
     * a worker left held (a random call may kill it at any point) must not
     * stop the watchdog. */
    go = 1;
    for (int waited = 0; waited < WATCHDOG_MS / 10 && workers_done < THREADS; waited++) {
        struct timespec t = {0, 10 * 1000 * 1000};
        syscall(SYS_nanosleep, &t, NULL);
    }
    syscall(SYS_exit_group, 0);
}

/* Arguments (for long runs by hand): [CHILDREN [FIRST_SEED]]. */
int main(int argc, char **argv)
{
    int children = argc > 1 ? atoi(argv[1]) : CHILDREN;
    int first = argc > 2 ? atoi(argv[2]) : 1;
    int clean = 0, signalled = 0, bad = 0;
    long remaps = meminfo_now("MremapsShared:"), breaks = meminfo_now("BrksShared:");
    for (int seed = first; seed < first + children; seed++) {
        pid_t pid = fork();
        if (pid == 0)
            child(seed);
        if (pid < 0) {
            printf("FAIL fork of child %d\n", seed);
            return 1;
        }
        int status = 0;
        if (waitpid(pid, &status, 0) != pid) {
            printf("FAIL waitpid of child %d\n", seed);
            return 1;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            clean++;
        else if (WIFSIGNALED(status))
            signalled++;
        else {
            printf("FAIL child %d ended with status %#x\n", seed, status);
            bad++;
        }
    }
    printf("children: %d ended with 0, %d by a signal\n", clean, signalled);
    /* (NeoOS with several CPUs: how many of the remaps and breaks were
     * made under the read side of the kernel lock.) */
    if (remaps >= 0 && breaks >= 0)
        printf("mremaps and brks made under the read lock: %ld, %ld\n",
               meminfo_now("MremapsShared:") - remaps, meminfo_now("BrksShared:") - breaks);
    if (bad || clean * 4 < children) {
        printf("FAIL too few children ended cleanly\n");
        return 1;
    }
    printf("PASS linux musl threads random system calls\n");
    return 0;
}
