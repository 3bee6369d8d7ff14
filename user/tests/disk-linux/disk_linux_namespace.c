/* disk_linux_namespace.c - a musl (Linux) program that changes the names
 * on /home, the ext2 volume: the host then checks the image with e2fsck
 * -fn and reads the tree back with debugfs (tests/in_qemu.rs,
 * disk_linux_namespace_operations_leave_a_clean_image_with_the_tree).
 *
 * The tree it leaves:
 *   /home/tree/kept/data.txt   "kept bytes\n" (made as a/b/file, moved)
 *   /home/tree/replaced.txt    "new\n" (a rename over "old\n")
 *   /home/tree/mode.txt        mode 0600
 * and nothing else: a/b, empty/ and open.txt (unlinked while open, 64 KiB,
 * its data freed with the last descriptor) are gone. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures;
#define CHECK(c)                                                            \
    do {                                                                    \
        if (!(c)) {                                                         \
            fprintf(stderr, "FAIL line %d: %s (errno %d)\n", __LINE__, #c,  \
                    errno);                                                 \
            failures++;                                                     \
        }                                                                   \
    } while (0)

static void put(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    CHECK(close(fd) == 0);
}

int main(void)
{
    CHECK(mkdir("/home/tree", 0755) == 0);
    CHECK(chdir("/home/tree") == 0);
    CHECK(mkdir("a", 0755) == 0);
    CHECK(mkdir("a/b", 0755) == 0);
    CHECK(mkdir("empty", 0755) == 0);
    put("a/b/file", "kept bytes\n");
    put("old.txt", "old\n");
    put("new.txt", "new\n");
    put("mode.txt", "m");

    errno = 0;
    CHECK(rmdir("a") == -1 && errno == ENOTEMPTY);
    errno = 0;
    CHECK(rename("a", "a/b/inside") == -1 && errno == EINVAL);
    errno = 0;
    CHECK(rename("a/b/file", "/tmp/file") == -1 && errno == EXDEV);
    errno = 0;
    CHECK(rmdir("/home") == -1 && errno == EBUSY);

    CHECK(rename("a/b/file", "a/data.txt") == 0);
    CHECK(rmdir("a/b") == 0);
    CHECK(rename("a", "kept") == 0);
    CHECK(rename("old.txt", "replaced.txt") == 0);
    CHECK(rename("new.txt", "replaced.txt") == 0);
    CHECK(rmdir("empty") == 0);
    CHECK(chmod("mode.txt", 0600) == 0);
    struct stat st;
    CHECK(stat("mode.txt", &st) == 0 && (st.st_mode & 07777) == 0600);
    CHECK(stat("kept/data.txt", &st) == 0 && st.st_size == 11);

    /* Unlinked while open: the data stays readable until the close. */
    static char block[65536];
    memset(block, 'o', sizeof block);
    int fd = open("open.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, block, sizeof block) == (ssize_t)sizeof block);
    CHECK(fsync(fd) == 0);
    CHECK(unlink("open.txt") == 0);
    CHECK(access("open.txt", F_OK) == -1);
    memset(block, 0, sizeof block);
    CHECK(pread(fd, block, sizeof block, 0) == (ssize_t)sizeof block);
    CHECK(block[0] == 'o' && block[sizeof block - 1] == 'o');
    CHECK(close(fd) == 0);

    if (failures == 0)
        printf("disk_linux_namespace: done\n");
    return failures != 0;
}
