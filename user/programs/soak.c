/* soak.c - the kernel under random system calls: runs CHILDREN copies of
 * /bin/syscall_fuzzer (seeds 1..CHILDREN, CALLS calls each) one after
 * another. A child may end by its own fault (or run out of memory); the
 * kernel must stay up, and once the children and their SysV segments are
 * gone (and the files they wrote emptied) every frame must be back. The
 * fuzzer mixes in issue 9's families: hostile flags, page-table churn, long
 * ranges, disk-full writes, and for seeds divisible by 100 heap pressure
 * (see syscall_fuzzer.c). Children of even seeds are threaded: 2 to 6
 * threads besides the first make the calls at once, starting, joining and
 * ending threads, forking, signalling, unmapping each other's memory and
 * stacks (syscall_fuzzer.c, "threaded mode"); status 77 from one means it
 * saw memory of another address, a failure. Arguments:
 * soak [CHILDREN [CALLS [THREADS]]]; THREADS, when given, makes every child
 * start that many threads (0: none; at most 8). Without arguments,
 * /etc/soak holds "CHILDREN CALLS" (the host tool's `--soak` writes it),
 * else 24 1500.
 * Exits 0 when all is well, 1 otherwise. */
#include <syscalls.h>
#include <sys/shm.h>
#include <neo.h>

static void remove_fuzzer_segments(void)
{
    for (int k = 0; k < 4; k++) {
        int id = shmget(0x46550 + k, 0, 0);
        if (id >= 0)
            shmctl(id, IPC_RMID, NULL);
    }
}

/* Empties the fuzzers' files, so the disk they may have filled (large
 * writes are one of their families) is free again for what runs next. */
static void truncate_fuzzer_files(void)
{
    static const char *const files[] = { "/tmp/fuzz0", "/tmp/fuzz1", "/tmp/fuzz2", "/tmp/fuzz3",
                                         "/home/fuzz0", "/home/fuzz1" };
    for (int k = 0; k < 6; k++) {
        int fd = sys_open(files[k], O_RDWR | O_TRUNC);
        if (fd >= 0)
            sys_close(fd);
    }
}

static long free_frames(void)
{
    struct neo_meminfo info;
    return sys_meminfo(&info) == E_OK ? (long)info.free_frames : -1;
}

/* CHILDREN and CALLS from /etc/soak, if it is there. */
static void read_settings(long *children, long *calls)
{
    char text[64] = { 0 };
    int fd = sys_open("/etc/soak", O_RDONLY);
    if (fd < 0)
        return;
    int n = sys_read(fd, text, sizeof text - 1);
    sys_close(fd);
    if (n <= 0)
        return;
    char *space = strchr(text, ' ');
    *children = neo_atol(text);
    if (space)
        *calls = neo_atol(space + 1);
}

/* Prints the files of the RAM disk's folders and their sizes (after a
 * loss of frames: a file a fuzzer created or grew holds frames). */
static void show_files(void)
{
    static const char *const folders[] = { "/", "/tmp", "/etc", "/bin" };
    static char names[8192];
    for (int k = 0; k < 4; k++) {
        int n = sys_readdir(folders[k], names, sizeof names - 1);
        if (n < 0)
            continue;
        names[n < (int)sizeof names - 1 ? n : (int)sizeof names - 1] = 0;
        for (char *name = names, *end; *name; name = end + 1) {
            end = strchr(name, '\n');
            if (!end)
                break;
            *end = 0;
            char path[300];
            snprintf(path, sizeof path, "%s%s%s", folders[k], k ? "/" : "", name);
            struct neo_stat st;
            if (sys_stat(path, &st) == E_OK && st.kind == NEO_STAT_FILE)
                eprintf("soak: %s: %lu bytes\n", path, st.size);
        }
    }
}

/* Threads a child of seed `seed` starts besides its first: none for odd
 * seeds (the one-thread fuzzer, whose run a seed reproduces), 2 to 6 for
 * even ones (all of them calling at once in one address space; seeds
 * divisible by 32 and 100, the 64 GiB mincore and the heap pressure, are
 * even: they run beside the other threads). */
static long every_child_threads = -1; /* the THREADS argument, or -1 */

static long threads_of(long seed)
{
    if (every_child_threads >= 0)
        return every_child_threads;
    return seed % 2 ? 0 : 2 + (seed / 2) % 5;
}

int main(int argc, char **argv)
{
    long children = 24, calls = 1500;
    if (argc > 1) {
        children = neo_atol(argv[1]);
        if (argc > 2)
            calls = neo_atol(argv[2]);
        if (argc > 3)
            every_child_threads = neo_atol(argv[3]);
    } else {
        read_settings(&children, &calls);
    }
    remove_fuzzer_segments();
    truncate_fuzzer_files();
    long free0 = free_frames();
    long clean = 0, faulted = 0, threaded_clean = 0;
    for (long seed = 1; seed <= children; seed++) {
        char seed_text[24], calls_text[24], threads_text[24];
        snprintf(seed_text, sizeof seed_text, "%ld", seed);
        snprintf(calls_text, sizeof calls_text, "%ld", calls);
        snprintf(threads_text, sizeof threads_text, "%ld", threads_of(seed));
        char *child_argv[] = { "/bin/syscall_fuzzer", seed_text, calls_text,
                               threads_of(seed) ? threads_text : NULL, NULL };
        int pid = sys_run("/bin/syscall_fuzzer", child_argv);
        int status = -1;
        if (pid < 0 || sys_wait(&status) != pid) {
            eprintf("soak: cannot run the fuzzer: %s\n", neo_strerror(pid < 0 ? pid : E_UNKNOWN));
            return 1;
        }
        if (status == 0)
            clean++, threaded_clean += threads_of(seed) != 0;
        else if (status == NEO_STATUS_SEGFAULT || status == NEO_STATUS_BUSERROR ||
                 status == NEO_STATUS_CRASHED || status == NEO_STATUS_KILLED)
            faulted++; /* KILLED: out of memory (it never calls sys_kill), e.g. after
                          mapping 2 GiB over its own code and running the zeros;
                          CRASHED: e.g. its own debug trap after setting TF */
        else {
            eprintf("soak: seed %ld ended with status %d\n", seed, status);
            return 1;
        }
        remove_fuzzer_segments();
        if (seed % 100 == 0)
            printf("soak: %ld of %ld children done, %ld frames free\n", seed, children,
                   free_frames());
    }
    /* Programs the fuzzers started and left running (orphans: programs
     * they ran, children they forked) still hold memory for a moment, and
     * may still write the files: give them up to ten seconds to end,
     * emptying the files again each time round. */
    long deadline = sys_ticks() + 1000;
    for (;;) {
        truncate_fuzzer_files();
        if (free_frames() >= free0 || sys_ticks() >= deadline)
            break;
        sys_yield();
    }
    long free1 = free_frames();
    printf("soak: %ld children x %ld calls: %ld ended cleanly (%ld of them threaded), "
           "%ld by their own fault; %ld frames free before, %ld after\n",
           children, calls, clean, threaded_clean, faulted, free0, free1);
    /* A fuzzer that mostly kills itself tests little: at least half the
     * one-thread children and a fifth of the threaded ones less two (their
     * threads unmap what the others touch: a fault there is the race at
     * work; with 1500 calls about half get through, with 5000 about a
     * quarter; a threaded run is not reproducible, so a short soak's 12
     * threaded children need only one) must get through their calls. */
    long threaded = 0;
    for (long seed = 1; seed <= children; seed++)
        threaded += threads_of(seed) != 0;
    if ((clean - threaded_clean) * 2 < children - threaded || threaded_clean * 5 < threaded - 10) {
        eprintf("soak: too few children got through their calls\n");
        return 1;
    }
    if (free1 < free0) {
        eprintf("soak: %ld frames were not given back\n", free0 - free1);
        show_files();
        return 1;
    }
    return 0;
}
