// expect-output: PASS linux cow copies are made outside the kernel lock
/* Issue 13 item 2: no kernel lock held across a page fault's copy. On the
 * 4-CPU boot a fork's child writes each of 64 pages it shares copy-on-write
 * with its parent: each write fault's copy is made outside the kernel lock
 * (the first attempt leaves it, the kernel copies with no lock held, the
 * fault again takes the copy), which /proc/meminfo's CopiesUnlocked row
 * counts. Checked: the row rose by at least half the pages and at most
 * 16 more (the child's stack and data pages are copied too; a copy is
 * dropped, and made again under the lock, only when some frame was given
 * back while it was made), every byte on both sides is what that side
 * wrote, and once the child is gone the parent's writes copy nothing (the
 * pages are its alone). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../linux/linux_check.h"
#include "smp_spin.h"

#define PAGES 64
#define PAGE 4096

static int page_is(const unsigned char *p, unsigned char value)
{
    for (int i = 0; i < PAGE; i++)
        if (p[i] != value)
            return 0;
    return 1;
}

int main(void)
{
    unsigned char *area = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(area != MAP_FAILED);
    if (area == MAP_FAILED)
        return 1;
    for (int i = 0; i < PAGES; i++)
        memset(area + i * PAGE, i, PAGE);
    long before = meminfo_now("CopiesUnlocked:");
    CHECK(before >= 0);
    pid_t child = fork();
    if (child == 0) {
        int bad = 0;
        for (int i = 0; i < PAGES; i++)
            memset(area + i * PAGE, 0x80 + i, PAGE);
        for (int i = 0; i < PAGES; i++)
            bad += !page_is(area + i * PAGE, 0x80 + i);
        _exit(bad != 0);
    }
    CHECK(child > 0);
    int status = -1;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    long after = meminfo_now("CopiesUnlocked:");
    printf("copies made outside the kernel lock: %ld -> %ld for %d pages\n", before, after,
           PAGES);
    CHECK(after - before >= PAGES / 2);
    CHECK(after - before <= PAGES + 16); /* and the child's stack and data pages */
    for (int i = 0; i < PAGES; i++)
        CHECK(page_is(area + i * PAGE, i));
    for (int i = 0; i < PAGES; i++)
        memset(area + i * PAGE, 0x40 + i, PAGE);
    long alone = meminfo_now("CopiesUnlocked:");
    CHECK(alone == after);
    for (int i = 0; i < PAGES; i++)
        CHECK(page_is(area + i * PAGE, 0x40 + i));
    CHECK(munmap(area, PAGES * PAGE) == 0);
    if (failures == 0)
        printf("PASS linux cow copies are made outside the kernel lock\n");
    return failures != 0;
}
