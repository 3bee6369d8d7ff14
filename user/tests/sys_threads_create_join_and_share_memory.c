/* sys_thread_create / sys_thread_join / sys_thread_exit (docs/abi.md,
 * "Threads"): four threads of one process share its memory and
 * descriptors, each fills its own mapping and checks it, each ends with its
 * own status (by returning or by sys_thread_exit); joins take each status
 * once; bad joins and bad creates fail with their codes and change nothing;
 * the frames of the stacks and mappings come back after munmap. */
#include <neo_test.h>
#include <sys/mman.h>

#define THREADS 4
#define STACK_SIZE (64 * 1024)
#define REGION (256 * 1024)

static volatile long shared_sum;
static volatile int started[THREADS];
static int pid_seen[THREADS];

static int worker(void *arg)
{
    long i = (long)arg;
    pid_seen[i] = sys_getpid();
    started[i] = 1;
    unsigned char *r = mmap(0, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    if (r == MAP_FAILED)
        return 100;
    for (int round = 0; round < 3; round++) {
        for (long off = 0; off < REGION; off++)
            r[off] = (unsigned char)(off * 7 + i + round);
        sys_yield(); /* the others run over their own regions meanwhile */
        for (long off = 0; off < REGION; off++)
            if (r[off] != (unsigned char)(off * 7 + i + round))
                return 101;
    }
    if (munmap(r, REGION) != 0)
        return 102;
    __atomic_add_fetch(&shared_sum, i + 1, __ATOMIC_SEQ_CST); /* threads run on several CPUs at once */
    if (i == 3)
        sys_thread_exit(40 + (int)i);
    return 40 + (int)i;
}

int main(void)
{
    long free_before = test_free_frames();
    int me = sys_getpid();
    void *stacks[THREADS];
    int tids[THREADS];
    for (long i = 0; i < THREADS; i++) {
        stacks[i] = mmap(0, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
        CHECK(stacks[i] != MAP_FAILED);
        tids[i] = sys_thread_create(worker, (void *)i, stacks[i], STACK_SIZE);
        CHECK_GE(tids[i], 1);
        CHECK_NE(tids[i], me);
        for (long j = 0; j < i; j++)
            CHECK_NE(tids[i], tids[j]);
    }
    /* bad creates: no entry, a non-canonical stack */
    CHECK_EQ(sys_thread_create(0, 0, stacks[0], STACK_SIZE), E_INVAL);
    CHECK_EQ(neo_syscall(SYS_THREAD_CREATE, (long)worker, 0x800000000000L, 0, 0, 0, 0), E_INVAL);
    /* bad joins: itself, an unknown thread, a bad status pointer */
    CHECK_EQ(sys_thread_join(me, 0), E_INVAL);
    CHECK_EQ(sys_thread_join(999999, 0), E_NOENT);
    CHECK_EQ(sys_thread_join(tids[0], (int *)8), E_INVAL);
    int statuses[THREADS];
    for (int i = 0; i < THREADS; i++) {
        statuses[i] = -1;
        CHECK_EQ(sys_thread_join(tids[i], &statuses[i]), E_OK);
        CHECK_EQ(statuses[i], 40 + i);
        CHECK_EQ(pid_seen[i], me);
        CHECK(started[i]);
        CHECK_EQ(sys_thread_join(tids[i], 0), E_NOENT); /* taken once */
    }
    CHECK_EQ(shared_sum, 1 + 2 + 3 + 4);
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ(munmap(stacks[i], STACK_SIZE), 0);
    CHECK_FRAMES_BACK(free_before);
    PASS();
}
