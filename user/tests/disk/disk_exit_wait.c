/* Disk test of an exit's write-back, made by the flusher without the
 * kernel lock (docs/design.md, "Device interrupts and disk waits", kept
 * files), run by tests/in_qemu.rs with 2 CPUs and with 1, which then checks
 * the image.
 *
 * Exit: a child (this program with argument "dirty") maps
 * /home/usuario/datos.bin (256 pages) shared by POSIX mmap, stores to every
 * other page (128 runs: 8 batches) and ends without munmap or close. Its
 * exit writes nothing: the file is kept dirty for the flusher, which writes
 * it in batches while this process runs. After the child's end this process
 * calls sys_meminfo in a loop until the free frames are back (the kept file
 * let go once written): the disk request count must move on after the
 * child's end (the old exit wrote everything before its parent could run:
 * no request after the end at all), and this process must see a count
 * strictly between the count at the child's end and the count once the
 * frames are back, in one of at most 10 such rounds. Then the file is read
 * back (from the disk: its object went) with the child's bytes.
 *
 * Hostile: a child ("loop") storing to the mapping in a loop is killed:
 * status 137, the frames come back once the flusher has written what it
 * left. Final bytes (this process, by sys_mmap and sys_munmap): page p
 * byte i = (p * 7 + i + 3), checked on the image.
 *
 * Run with argument "eio" under blkdebug rules failing, once, the first
 * write of page 100's block: the flusher's write of what the "dirty" child
 * left fails, the file stays kept and dirty and is written again a second
 * later: the frames come back after at least 100 ticks, the file reads
 * back with the child's bytes (even page p byte i = (p * 7 + i + 5),
 * checked on the image too). */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>
#include <sys/mman.h>
#include <string.h>
#include <neo_test_disk_watch.h>

#define PAGE 4096
#define PAGES (DATOS_SIZE / PAGE)

/* The file read back (touched before the baseline is taken). */
static unsigned char back[DATOS_SIZE];

static unsigned char byte_of(long p, long i, int round)
{
    return (unsigned char)(p * 7 + i + round);
}

/* The file mapped shared by POSIX mmap (the descriptor left open). */
static unsigned char *map_file(void)
{
    int fd = sys_open(DATOS_PATH, O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = mmap(0, DATOS_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    return m;
}

/* Every even page of mapping `m` stored to. */
static void store(unsigned char *m, int round)
{
    for (long p = 0; p < PAGES; p += 2)
        for (long i = 0; i < PAGE; i++)
            m[p * PAGE + i] = byte_of(p, i, round);
}

/* The child's end as status, and checks it. */
static void wait_child(int child, int want)
{
    int status = -1;
    CHECK_EQ(sys_wait(&status), child);
    CHECK_EQ(status, want);
}

/* Starts this program with argument `mode`. */
static int run_child(const char *mode)
{
    char *argv[] = {"disk_exit_wait", (char *)mode, 0};
    int child = sys_run("/bin/disk_exit_wait", argv);
    CHECK_GE(child, 1);
    return child;
}

/* Reads the whole file back: even pages `round`'s bytes, odd ones the
 * seeds' file. */
static void check_file(int round)
{
    int fd = sys_open(DATOS_PATH, O_RDONLY);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_read(fd, back, DATOS_SIZE), DATOS_SIZE);
    CHECK_EQ(sys_close(fd), E_OK);
    for (long p = 0; p < PAGES; p++)
        for (long i = 0; i < PAGE; i += 37)
            CHECK_EQ(back[p * PAGE + i], p % 2 ? DATOS_BYTE(p * PAGE + i) : byte_of(p, i, round));
}

/* A "dirty" child's exit: the request counts after its end (none when
 * the exit wrote its pages itself) until the frames are back (the flusher
 * wrote them and let the file go); whether this process saw one strictly
 * between; the ticks waited in `*waited`. */
static int exit_round(int round, long baseline, long *waited)
{
    int child = run_child(round == 5 ? "dirty5" : "dirty1");
    wait_child(child, 0);
    long ended = disk_requests();
    seen_count = 0;
    long last = -2;
    long start = sys_ticks();
    while (test_free_frames() < baseline - NEO_TEST_FRAME_SLACK &&
           sys_ticks() < start + NEO_TEST_FRAMES_WAIT_TICKS) {
        note_disk_requests(&last);
        sys_yield();
    }
    *waited = sys_ticks() - start;
    CHECK_FRAMES_BACK(baseline);
    long after = disk_requests();
    printf("disk_exit_wait: exit: requests %ld..%ld after the child's end, %d counts seen, "
           "frames back in %ld ticks\n",
           ended, after, seen_count, *waited);
    CHECK(after > ended);
    check_file(round);
    return seen_between("disk_exit_wait: the parent", ended, after);
}

/* Exit rounds until this process sees a request count strictly between
 * (the window can be short: with one CPU, the completion interrupts taken
 * in user mode step the flusher's batches one after the other), at most
 * 10; the ticks the first round waited. */
static long exit_rounds(int round, long baseline)
{
    long first = -1, waited;
    for (int i = 0; i < 10; i++) {
        int seen = exit_round(round, baseline, &waited);
        if (first < 0)
            first = waited;
        if (seen)
            return first;
    }
    CHECK(!"a request count seen between an exit and its write-back's end");
    return first;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "dirty1") == 0) {
        store(map_file(), 1);
        return 0; /* no munmap, no close */
    }
    if (argc > 1 && strcmp(argv[1], "dirty5") == 0) {
        store(map_file(), 5);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "loop") == 0) {
        unsigned char *m = map_file();
        for (int round = 10;; round++)
            store(m, round);
    }
    /* Warm-up: what this process touches later is touched before the
     * baseline (its buffers, the mapping's page tables). */
    memset(back, 1, sizeof back);
    for (int i = 0; i < MOST_SEEN; i++)
        seen[i] = 0;
    int warm = sys_open(DATOS_PATH, O_RDWR);
    CHECK_GE(warm, 0);
    unsigned char *w = (unsigned char *)sys_mmap(warm, 0, DATOS_SIZE);
    CHECK(w != NULL);
    CHECK_EQ(w[PAGE], DATOS_BYTE(PAGE));
    CHECK_EQ(sys_munmap(w, DATOS_SIZE), E_OK);
    CHECK_EQ(sys_close(warm), E_OK);
    long baseline = test_free_frames();
    if (argc > 1 && strcmp(argv[1], "eio") == 0) {
        long waited = exit_rounds(5, baseline);
        /* The first write failed: tried again a second later. */
        CHECK_GE(waited, 100);
        printf("disk_exit_wait: eio: written again, frames back after %ld ticks\n", waited);
        return 0;
    }
    exit_rounds(1, baseline);

    /* Hostile: a child killed while it stores. */
    int child = run_child("loop");
    long start = sys_ticks();
    while (sys_ticks() < start + 30)
        sys_yield();
    CHECK_EQ(sys_kill(child), E_OK);
    wait_child(child, NEO_STATUS_KILLED);
    long waited = test_wait_frames_back(baseline);
    printf("disk_exit_wait: killed: frames back after %ld ticks\n", waited);

    /* Everything still works: the whole file written again, by mapping. */
    int fd = sys_open(DATOS_PATH, O_RDWR);
    CHECK_GE(fd, 0);
    unsigned char *m = (unsigned char *)sys_mmap(fd, 0, DATOS_SIZE);
    CHECK(m != NULL);
    for (long p = 0; p < PAGES; p++)
        for (long i = 0; i < PAGE; i++)
            m[p * PAGE + i] = byte_of(p, i, 3);
    CHECK_EQ(sys_munmap(m, DATOS_SIZE), E_OK);
    CHECK_EQ(sys_close(fd), E_OK);
    CHECK_FRAMES_BACK(baseline);
    printf("disk_exit_wait: done\n");
    return 0;
}
