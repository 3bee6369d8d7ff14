/* mm_threads_bench.c - the threads lines of docs/benchmarks.md (issue 13
 * item 7), on machines with 4 CPUs.
 *
 * One source for both systems, a Linux program: built with musl for NeoOS
 * (its Linux personality) and with static glibc for Linux, where it runs as
 * /init (argument "init": it mounts /proc first and powers off at the end).
 * Under QEMU's `-icount shift=0,sleep=off` an `rdtsc` delta counts guest
 * instructions (the clock is the machine's: while another CPU runs in the
 * same window its instructions count too, so each figure is the lowest of
 * many windows).
 *
 *  - threads_N_{mmap,fault,munmap}, N = 1, 2, 4: N threads at once, each
 *    in its own region, each mapping 16 anonymous pages, writing one byte
 *    to each (16 faults) and unmapping them, 200 times; per thread the
 *    lowest window of each step (the fault's divided by 16), and the
 *    highest of the N threads' figures. The threads wait for each other
 *    asleep in futex waits (all arrived, then one wake starts them), not
 *    spinning: under QEMU's round robin of CPUs a spinning CPU burns its
 *    whole turn while the one it waits for is not running.
 *  - shootdown_ipis_munmap_caller_only / _all_touched: TLB shootdown IPIs
 *    per munmap of 8 touched pages in a process of 4 threads, the 3 others
 *    asleep in a futex wait (only the caller touched the pages), then the 3
 *    others spinning on the other CPUs (a `pause` in each step) after each
 *    touched the pages too; the mean over 20 munmaps. NeoOS counts the
 *    IPIs it sends (/proc/meminfo TlbShootdownIpis), Linux those its CPUs
 *    took (/proc/interrupts, TLB row).
 *
 * Arguments: "threads" or "shootdown" runs only those lines (the host tool
 * boots the first on the -icount machine, the second without -icount: IPIs
 * are counted, not instructions); "init" as above, and when Linux left CPUs
 * offline (its -icount boot has `maxcpus=1`) it brings them up first: see
 * bring_up_cpus.
 *
 * Output: BENCH <name> <value>, BENCH error <name> <errno>, BENCH done. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_THREADS 4
#define ROUNDS 200
#define PAGES 16
#define SHOOTDOWN_ROUNDS 20
#define SHOOTDOWN_PAGES 8
#define AREA_PAGES 128
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129
/* How long a wait for other threads may spin (instructions) before the
 * benchmark gives up on that line. */
#define SPIN_LIMIT 2000000000ull

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* ---------------- instructions per call, 1, 2 and 4 threads ---------------- */

struct steps {
    uint64_t mmap, fault, munmap;
    int error;
};

static struct steps results[MAX_THREADS];
static volatile int arrived, go;

static void futex_wait(volatile int *word, int value)
{
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, 0, 0, 0);
}

static void futex_wake(volatile int *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, MAX_THREADS, 0, 0, 0);
}

/* One step of a spin: lets QEMU run another CPU (and a real CPU rest). */
static inline void spin_pause(void)
{
    __builtin_ia32_pause();
}

static void *worker(void *arg)
{
    int me = (int)(intptr_t)arg;
    struct steps best = {UINT64_MAX, UINT64_MAX, UINT64_MAX, 0};
    __atomic_add_fetch(&arrived, 1, __ATOMIC_SEQ_CST);
    futex_wake(&arrived);
    while (!__atomic_load_n(&go, __ATOMIC_SEQ_CST))
        futex_wait(&go, 0);
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t t0 = rdtsc();
        volatile char *p = mmap(0, PAGES * 4096, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        uint64_t t1 = rdtsc();
        if (p == MAP_FAILED) {
            best.error = errno;
            break;
        }
        for (int i = 0; i < PAGES; i++)
            p[i * 4096] = 1;
        uint64_t t2 = rdtsc();
        munmap((void *)p, PAGES * 4096);
        uint64_t t3 = rdtsc();
        best.mmap = min64(best.mmap, t1 - t0);
        best.fault = min64(best.fault, (t2 - t1) / PAGES);
        best.munmap = min64(best.munmap, t3 - t2);
    }
    results[me] = best;
    return 0;
}

static void measure_threads(int n)
{
    pthread_t t[MAX_THREADS];
    arrived = 0;
    go = 0;
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], 0, worker, (void *)(intptr_t)i) != 0) {
            printf("BENCH error threads_%d_create %d\n", n, errno);
            return;
        }
    int seen;
    while ((seen = __atomic_load_n(&arrived, __ATOMIC_SEQ_CST)) < n)
        futex_wait(&arrived, seen);
    __atomic_store_n(&go, 1, __ATOMIC_SEQ_CST);
    futex_wake(&go);
    struct steps worst = {0, 0, 0, 0};
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], 0);
        if (results[i].error)
            worst.error = results[i].error;
        worst.mmap = results[i].mmap > worst.mmap ? results[i].mmap : worst.mmap;
        worst.fault = results[i].fault > worst.fault ? results[i].fault : worst.fault;
        worst.munmap = results[i].munmap > worst.munmap ? results[i].munmap : worst.munmap;
    }
    if (worst.error) {
        printf("BENCH error threads_%d_mmap %d\n", n, worst.error);
        return;
    }
    printf("BENCH threads_%d_mmap %llu\n", n, (unsigned long long)worst.mmap);
    printf("BENCH threads_%d_fault %llu\n", n, (unsigned long long)worst.fault);
    printf("BENCH threads_%d_munmap %llu\n", n, (unsigned long long)worst.munmap);
}

/* ------------------------- shootdown IPIs per munmap ------------------------ */

static char text[16384];

/* The number after `row` in `path`, or, with `columns`, the sum of the
 * numbers after it up to the end of its line (/proc/interrupts: one
 * column per CPU). -1 when absent. */
static long counter(const char *path, const char *row, int columns)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    long n = 0, got;
    while (n < (long)sizeof text - 1 && (got = read(fd, text + n, sizeof text - 1 - n)) > 0)
        n += got;
    close(fd);
    text[n] = 0;
    char *at = strstr(text, row);
    if (!at)
        return -1;
    at += strlen(row);
    long sum = 0;
    do {
        char *end;
        long v = strtol(at, &end, 10);
        if (end == at)
            break;
        sum += v;
        at = end;
    } while (columns && *at != '\n');
    return sum;
}

/* TLB shootdown IPIs so far: NeoOS's sent, else Linux's taken. */
static long shootdown_ipis(void)
{
    long v = counter("/proc/meminfo", "TlbShootdownIpis:", 0);
    return v >= 0 ? v : counter("/proc/interrupts", "TLB:", 1);
}

static volatile int futex_word, phase, ready[MAX_THREADS - 1];
static volatile unsigned long beat[MAX_THREADS - 1];
static char *volatile target;

static void touch(volatile char *p, int pages)
{
    for (int i = 0; i < pages; i++)
        p[i * 4096] += 1;
}

static void *other(void *arg)
{
    int me = (int)(intptr_t)arg;
    ready[me] = -1;
    while (__atomic_load_n(&futex_word, __ATOMIC_SEQ_CST) == 0)
        futex_wait(&futex_word, 0);
    for (int seen = 1; seen <= SHOOTDOWN_ROUNDS; seen++) {
        while (phase < seen)
            spin_pause();
        touch(target, SHOOTDOWN_PAGES);
        ready[me] = seen;
        while (phase == seen) {
            beat[me]++;
            spin_pause();
        }
    }
    return 0;
}

/* Whether the others all reached `seen` and all run right now (their
 * beats move while this thread spins). */
static int others_running(int seen)
{
    unsigned long before[MAX_THREADS - 1];
    for (int i = 0; i < MAX_THREADS - 1; i++) {
        if (ready[i] != seen)
            return 0;
        before[i] = beat[i];
    }
    for (int k = 0; k < 1000; k++)
        spin_pause();
    for (int i = 0; i < MAX_THREADS - 1; i++)
        if (beat[i] == before[i])
            return 0;
    return 1;
}

static int spin_until_others(int seen)
{
    uint64_t start = rdtsc();
    while (!others_running(seen))
        if (rdtsc() - start > SPIN_LIMIT)
            return 0;
    return 1;
}

/* Maps the area's pages [8, 16) again (fixed), touched by the caller. */
static char *fresh_range(char *area)
{
    char *p = mmap(area + 8 * 4096, SHOOTDOWN_PAGES * 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p != MAP_FAILED)
        touch(p, SHOOTDOWN_PAGES);
    return p;
}

static void print_mean(const char *name, long total)
{
    printf("BENCH %s %ld.%02ld\n", name, total / SHOOTDOWN_ROUNDS,
           (total % SHOOTDOWN_ROUNDS) * 100 / SHOOTDOWN_ROUNDS);
}

static void measure_shootdowns(void)
{
    if (shootdown_ipis() < 0) {
        printf("BENCH error shootdown_counter %d\n", errno);
        return;
    }
    /* The area's first page stays mapped: its page table is never freed. */
    char *area = mmap(0, AREA_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    if (area == MAP_FAILED) {
        printf("BENCH error shootdown_area %d\n", errno);
        return;
    }
    touch(area, 1);
    pthread_t t[MAX_THREADS - 1];
    for (int i = 0; i < MAX_THREADS - 1; i++)
        if (pthread_create(&t[i], 0, other, (void *)(intptr_t)i) != 0) {
            printf("BENCH error shootdown_create %d\n", errno);
            return;
        }
    for (int i = 0; i < MAX_THREADS - 1; i++)
        while (ready[i] != -1)
            usleep(1000);
    usleep(200000); /* each is in its futex wait by now */
    long total = 0;
    for (int r = 0; r < SHOOTDOWN_ROUNDS; r++) {
        char *p = fresh_range(area);
        long before = shootdown_ipis();
        munmap(p, SHOOTDOWN_PAGES * 4096);
        total += shootdown_ipis() - before;
    }
    print_mean("shootdown_ipis_munmap_caller_only", total);

    __atomic_store_n(&futex_word, 1, __ATOMIC_SEQ_CST);
    futex_wake(&futex_word);
    total = 0;
    int r;
    for (r = 0; r < SHOOTDOWN_ROUNDS; r++) {
        char *p = fresh_range(area);
        target = p;
        phase = r + 1;
        if (!spin_until_others(r + 1))
            break;
        long before = shootdown_ipis();
        munmap(p, SHOOTDOWN_PAGES * 4096);
        total += shootdown_ipis() - before;
    }
    if (r == SHOOTDOWN_ROUNDS)
        print_mean("shootdown_ipis_munmap_all_touched", total);
    else
        printf("BENCH error shootdown_others_not_running %d\n", r);
    phase = SHOOTDOWN_ROUNDS + 1;
    for (int i = 0; i < MAX_THREADS - 1; i++)
        pthread_join(t[i], 0);
}

/* ------------- Linux as /init: bringing up the CPUs it left offline ------------ */

/* Executes a `pause` every millisecond, asleep in between (so that its CPU
 * still idles, and the instruction clock jumps, when nothing else is to be
 * done), until killed. */
static void pause_every_millisecond(void)
{
    for (;;) {
        spin_pause();
        usleep(1000);
    }
}

/* Lets the calling thread run on CPUs 0 to count - 1 only. */
static int run_on_cpus(int count)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < count; i++)
        CPU_SET(i, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : errno;
}

/* Writes "1" to CPU `cpu`'s online file unless it reads "1" already. */
static int online_cpu(int cpu)
{
    char path[64], state = 0;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/online", cpu);
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return errno;
    int error = 0;
    if (read(fd, &state, 1) != 1)
        error = errno ? errno : EIO;
    else if (state != '1' && pwrite(fd, "1", 1, 0) != 1)
        error = errno;
    close(fd);
    return error;
}

/* Brings CPUs 1 to MAX_THREADS - 1 up through sysfs (Linux booted with
 * `maxcpus=1`); 0 or an errno. Under QEMU 7.2's -icount round robin a CPU
 * keeps its turn until its instruction budget (up to the next timer) runs
 * out or it pauses, halts or sends an IPI, and Linux's CPU bring-up waits
 * for the new CPU in a loop that calls schedule(): alone on CPU 0 that loop
 * never lets the new CPU run (a boot with 4 CPUs stalls at "Booting SMP
 * configuration"). So a second process on CPU 0 executes a `pause` each
 * millisecond, when that loop lets it run, which ends CPU 0's turn. */
static int bring_up_cpus(void)
{
    int error = run_on_cpus(1); /* the pauser inherits it */
    if (error)
        return error;
    /* A process, not a thread: the benchmark's address space stays as it
     * would be without it (a thread's stack would be reused by a worker). */
    pid_t pauser = fork();
    if (pauser < 0)
        return errno;
    if (pauser == 0)
        pause_every_millisecond();
    for (int cpu = 1; cpu < MAX_THREADS && !error; cpu++) {
        error = online_cpu(cpu);
        if (!error) /* the host tool gives up a silent console */
            printf("mm_threads_bench: CPU %d up\n", cpu);
    }
    kill(pauser, SIGKILL);
    waitpid(pauser, 0, 0);
    if (!error)
        error = run_on_cpus(MAX_THREADS);
    if (!error && sysconf(_SC_NPROCESSORS_ONLN) < MAX_THREADS)
        error = ENODEV;
    return error;
}

/* Whether `word` is among the arguments. */
static int has_arg(int argc, char **argv, const char *word)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], word) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    int as_init = has_arg(argc, argv, "init");
    int threads = has_arg(argc, argv, "threads"), shootdown = has_arg(argc, argv, "shootdown");
    int cpus_error = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (as_init) {
        mkdir("/proc", 0555);
        mount("proc", "/proc", "proc", 0, NULL);
        mkdir("/sys", 0555);
        mount("sysfs", "/sys", "sysfs", 0, NULL);
        if (sysconf(_SC_NPROCESSORS_ONLN) < MAX_THREADS)
            cpus_error = bring_up_cpus();
        if (cpus_error)
            printf("BENCH error cpus_online %d\n", cpus_error);
    }
    if ((threads || !shootdown) && !cpus_error)
        for (int n = 1; n <= MAX_THREADS; n *= 2)
            measure_threads(n);
    if ((shootdown || !threads) && !cpus_error)
        measure_shootdowns();
    printf("BENCH done\n");
    fflush(stdout);
    if (as_init) {
        sync();
        reboot(RB_POWER_OFF);
    }
    return 0;
}
