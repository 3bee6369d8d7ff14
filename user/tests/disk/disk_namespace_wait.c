/* Disk test of /home namespace calls that read their metadata without the
 * kernel lock (docs/design.md, "Namespace calls without the kernel
 * lock"), run by tests/in_qemu.rs with 2 CPUs and with 1 on an image
 * whose /arbol holds DIRS directories dNN, each with FILES files
 * fichero-NN-MMM (4 bytes each: "NNMM" as text, MMM < 100), nothing of it
 * cached at boot.
 *
 * A stat of /arbol/dNN/fichero-NN-000 reads several metadata blocks one
 * directory level after another (the inode table blocks, the directory
 * blocks of /, /arbol and dNN). Each level is read with the caller asleep
 * and the call made again after, so a watcher thread calling sys_meminfo
 * in a loop must see a disk request count strictly between the counts
 * before and after the stat (in one of at most WATCH_ROUNDS stats, each
 * of a directory not touched before). Were the reads made under the
 * kernel lock, as before, no call of another thread could run in between.
 * No timing: only the order of the counts. An open with O_CREAT of a new
 * file in another untouched directory is watched the same way.
 *
 * Then the hostile part: a child process (this program with argument
 * "walker") stats the files of the directories not touched yet in a
 * loop; once its requests are seen going, it is killed (sys_kill) while
 * it most likely waits for a metadata read; its end is status 137; the
 * frames come back, and this process then stats and reads every file and
 * creates one more (the harness checks the image with e2fsck and
 * debugfs).
 *
 * With argument "eio", under a blkdebug rule failing once the first read
 * of /arbol/d07's directory block: a stat of a file in it is E_OK (the
 * failed read is made again) with the right size. */
#include <error.h>
#include <syscalls.h>
#include <neo_test.h>
#include <sys/mman.h>
#include <neo_test_disk_watch.h>

#define DIRS 48
#define FILES 64
#define STACK_SIZE (64 * 1024)
#define WATCH_ROUNDS 10

static volatile int stop;

/* The watcher: records each new disk request count it sees. */
static int watcher(void *arg)
{
    (void)arg;
    long last = -2;
    while (!stop)
        note_disk_requests(&last);
    return 0;
}

static int start_watcher(void)
{
    stop = 0;
    seen_count = 0;
    void *stack = mmap(0, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    CHECK(stack != MAP_FAILED);
    int tid = sys_thread_create(watcher, 0, stack, STACK_SIZE);
    CHECK_GE(tid, 1);
    while (seen_count == 0)
        sys_yield();
    return tid;
}

static void stop_watcher(int tid)
{
    stop = 1;
    int status = -1;
    CHECK_EQ(sys_thread_join(tid, &status), E_OK);
    CHECK_EQ(status, 0);
}

/* Writes /home/arbol/dNN/fichero-NN-MMM into `out`. */
static void file_path(char *out, int dir, int file)
{
    char *p = out;
    const char *head = "/home/arbol/d";
    while (*head)
        *p++ = *head++;
    *p++ = (char)('0' + dir / 10);
    *p++ = (char)('0' + dir % 10);
    const char *mid = "/fichero-";
    while (*mid)
        *p++ = *mid++;
    *p++ = (char)('0' + dir / 10);
    *p++ = (char)('0' + dir % 10);
    *p++ = '-';
    *p++ = (char)('0' + file / 100);
    *p++ = (char)('0' + file / 10 % 10);
    *p++ = (char)('0' + file % 10);
    *p = 0;
}

/* A watched stat of the first file of untouched directory `dir`: whether
 * the watcher saw a count strictly between. */
static int stat_round(int dir)
{
    char path[64];
    file_path(path, dir, 0);
    int tid = start_watcher();
    long before = disk_requests();
    struct neo_stat st;
    CHECK_EQ(sys_stat(path, &st), E_OK);
    long after = disk_requests();
    stop_watcher(tid);
    CHECK_EQ(st.kind, NEO_STAT_FILE);
    CHECK_EQ(st.size, 4);
    printf("disk_namespace_wait: stat %s: requests %ld..%ld, watcher saw %d counts\n", path,
           before, after, seen_count);
    CHECK(after - before >= 2);
    return seen_between("disk_namespace_wait: the watcher", before, after);
}

/* A watched open creating a file in untouched directory `dir`. */
static int create_round(int dir)
{
    char path[64];
    file_path(path, dir, 999);
    int tid = start_watcher();
    long before = disk_requests();
    int fd = sys_open(path, O_RDWR | O_CREAT);
    long after = disk_requests();
    stop_watcher(tid);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_write(fd, "new!", 4), 4);
    CHECK_EQ(sys_close(fd), E_OK);
    printf("disk_namespace_wait: create %s: requests %ld..%ld, watcher saw %d counts\n", path,
           before, after, seen_count);
    return seen_between("disk_namespace_wait: the watcher", before, after);
}

/* The child of the hostile part: stats files of directories from 20 on. */
static void walker_forever(void)
{
    for (;;)
        for (int dir = 20; dir < DIRS; dir++) {
            char path[64];
            file_path(path, dir, 5);
            struct neo_stat st;
            CHECK_EQ(sys_stat(path, &st), E_OK);
        }
}

/* The "eio" run: a failed directory read is made again. */
static int eio_run(void)
{
    char path[64];
    file_path(path, 7, 3);
    struct neo_stat st;
    CHECK_EQ(sys_stat(path, &st), E_OK);
    CHECK_EQ(st.size, 4);
    printf("disk_namespace_wait: eio: stat E_OK after a failed read\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "walker") == 0) {
        walker_forever();
        return 1;
    }
    if (argc > 1 && strcmp(argv[1], "eio") == 0)
        return eio_run();

    int seen = 0;
    for (int dir = 0; dir < WATCH_ROUNDS && !seen; dir++)
        seen = stat_round(dir);
    CHECK(seen);
    seen = 0;
    for (int dir = WATCH_ROUNDS; dir < 2 * WATCH_ROUNDS && !seen; dir++)
        seen = create_round(dir);
    CHECK(seen);

    /* Hostile: a walker killed while its stats wait for the disk. */
    long baseline = test_free_frames();
    char *child_argv[] = {"disk_namespace_wait", "walker", 0};
    long start = disk_requests();
    int child = sys_run("/bin/disk_namespace_wait", child_argv);
    CHECK_GE(child, 1);
    while (disk_requests() < start + 6)
        sys_yield();
    CHECK_EQ(sys_kill(child), E_OK);
    int status = -1;
    CHECK_EQ(sys_wait(&status), child);
    CHECK_EQ(status, NEO_STATUS_KILLED);
    test_wait_frames_back(baseline);

    /* Everything still works: every file there, with its bytes. */
    for (int dir = 0; dir < DIRS; dir++)
        for (int file = 0; file < FILES; file += 9) {
            char path[64];
            file_path(path, dir, file);
            int fd = sys_open(path, O_RDONLY);
            CHECK_GE(fd, 0);
            char bytes[8];
            CHECK_EQ(sys_read(fd, bytes, sizeof bytes), 4);
            CHECK_EQ(bytes[0], (char)('0' + dir / 10));
            CHECK_EQ(bytes[1], (char)('0' + dir % 10));
            CHECK_EQ(bytes[2], (char)('0' + file / 10));
            CHECK_EQ(bytes[3], (char)('0' + file % 10));
            CHECK_EQ(sys_close(fd), E_OK);
        }
    char path[64];
    file_path(path, DIRS - 1, 999);
    int fd = sys_open(path, O_RDWR | O_CREAT);
    CHECK_GE(fd, 0);
    CHECK_EQ(sys_write(fd, "new!", 4), 4);
    CHECK_EQ(sys_close(fd), E_OK);
    printf("disk_namespace_wait: done\n");
    return 0;
}
