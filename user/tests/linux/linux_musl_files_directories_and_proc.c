// expect-output: PASS linux files, directories and /proc
/* A static musl program works with names and directories through musl's
 * own calls (Linux call numbers): the working directory, mkdir, rmdir,
 * rename, unlink, opendir/readdir (getdents64), pread/pwrite, dup3,
 * access, chmod, truncate, utimensat, readlink of /proc/self/exe,
 * /proc/self/maps, /proc/meminfo, /dev/null, time and gettimeofday,
 * setrlimit(RLIMIT_AS); the same on /tmp (RAM) and /home (ext2); errors
 * as Linux gives them, and a refused call changes nothing. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "linux_check.h"

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int make_file(const char *path, const char *text)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    if (fd < 0)
        return -1;
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    return fd;
}

/* Names of `dir` joined with commas (sorted by the kernel), "." and ".."
 * left out. */
static void list(const char *dir, char *out, size_t size)
{
    out[0] = 0;
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d)
        return;
    struct dirent *e;
    int dots = 0;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
            dots++;
            continue;
        }
        if (out[0])
            strncat(out, ",", size - strlen(out) - 1);
        strncat(out, e->d_name, size - strlen(out) - 1);
    }
    CHECK(dots == 2);
    closedir(d);
}

/* The namespace operations on one file system (`base` is /tmp or /home). */
static void namespace_on(const char *base)
{
    char a[128], b[128], f[128], g[128], names[256];
    snprintf(a, sizeof a, "%s/ns_a", base);
    snprintf(b, sizeof b, "%s/ns_a/b", base);
    snprintf(f, sizeof f, "%s/ns_a/b/f", base);
    snprintf(g, sizeof g, "%s/ns_moved", base);

    CHECK(mkdir(a, 0755) == 0);
    CHECK_ERR(mkdir(a, 0755), EEXIST);
    CHECK(mkdir(b, 0700) == 0);
    struct stat st;
    CHECK(stat(b, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
    int fd = make_file(f, "payload");
    CHECK(stat(f, &st) == 0 && st.st_size == 7 && st.st_mtime >= 0);
    CHECK_ERR(rmdir(a), ENOTEMPTY);
    CHECK_ERR(rmdir(f), ENOTDIR);
    CHECK_ERR(unlink(a), EISDIR);
    CHECK_ERR(rename(a, b), EINVAL);
    CHECK(exists(f));

    /* Relative paths from a working directory on this file system. */
    CHECK(chdir(b) == 0);
    char cwd[PATH_MAX];
    CHECK(getcwd(cwd, sizeof cwd) && !strcmp(cwd, b));
    CHECK(exists("f") && exists("../b/./f"));
    CHECK(rename("f", "../f2") == 0);
    CHECK(chdir("..") == 0);
    CHECK(exists("f2") && !exists("b/f"));
    list(".", names, sizeof names);
    CHECK(!strcmp(names, "b,f2"));
    CHECK(rename("b", "../ns_moved") == 0);
    CHECK(chdir("/") == 0);
    CHECK(exists(g));
    CHECK(rmdir(g) == 0);

    /* An unlinked file lives while open. */
    snprintf(f, sizeof f, "%s/ns_a/f2", base);
    CHECK(unlink(f) == 0);
    CHECK(!exists(f));
    char buf[16] = {0};
    CHECK(pread(fd, buf, 7, 0) == 7 && !memcmp(buf, "payload", 7));
    CHECK(close(fd) == 0);
    CHECK(rmdir(a) == 0);
    CHECK_ERR(rmdir(a), ENOENT);
}

int main(void)
{
    /* pread/pwrite leave the position alone. */
    int fd = make_file("/tmp/lx_p", "0123456789");
    CHECK(pwrite(fd, "AB", 2, 4) == 2);
    char buf[64] = {0};
    CHECK(pread(fd, buf, 6, 2) == 6 && !memcmp(buf, "23AB67", 6));
    CHECK(lseek(fd, 0, SEEK_CUR) == 10);
    CHECK_ERR(pread(fd, buf, 1, -1), EINVAL);
    int pipefd[2];
    CHECK(pipe(pipefd) == 0);
    CHECK_ERR(pread(pipefd[0], buf, 1, 0), ESPIPE);

    /* dup3. */
    CHECK(dup3(fd, 20, O_CLOEXEC) == 20);
    CHECK(fcntl(20, F_GETFD) == FD_CLOEXEC);
    CHECK_ERR(dup3(fd, fd, 0), EINVAL);
    /* musl calls dup2 for flags without O_CLOEXEC: the kernel's own check. */
    CHECK_ERR(syscall(SYS_dup3, fd, 21, O_APPEND), EINVAL);

    /* access, chmod, truncate, utimensat. */
    CHECK(access("/tmp/lx_p", R_OK | W_OK) == 0);
    CHECK_ERR(access("/tmp/lx_p", X_OK), EACCES);
    CHECK_ERR(access("/tmp/none", F_OK), ENOENT);
    CHECK(chmod("/tmp/lx_p", 0751) == 0);
    struct stat st;
    CHECK(stat("/tmp/lx_p", &st) == 0 && (st.st_mode & 07777) == 0751);
    CHECK(access("/tmp/lx_p", X_OK) == 0);
    CHECK(fchmod(fd, 0600) == 0);
    CHECK(fstat(fd, &st) == 0 && (st.st_mode & 07777) == 0600);
    CHECK(truncate("/tmp/lx_p", 3) == 0);
    CHECK(fstat(fd, &st) == 0 && st.st_size == 3);
    CHECK_ERR(truncate("/tmp", 0), EISDIR);
    CHECK_ERR(truncate("/tmp/lx_p", -1), EINVAL);
    struct timespec times[2] = {{1000, 0}, {2000, 0}};
    CHECK(utimensat(AT_FDCWD, "/tmp/lx_p", times, 0) == 0);
    CHECK(stat("/tmp/lx_p", &st) == 0 && st.st_mtime == 2000 && st.st_atime == 1000);

    /* Hostile paths. */
    char *long_path = malloc(5000);
    if (long_path) {
        memset(long_path, 'a', 4999);
        long_path[0] = '/';
        long_path[4999] = 0;
        CHECK_ERR(mkdir(long_path, 0755), ENAMETOOLONG);
        free(long_path);
    }
    CHECK_ERR(syscall(SYS_mkdir, (char *)16, 0755), EFAULT);
    CHECK_ERR(syscall(SYS_rename, "/tmp/lx_p", (char *)16), EFAULT);
    CHECK(exists("/tmp/lx_p"));
    CHECK_ERR(mkdir("/bin/lx", 0755), EPERM);
    CHECK_ERR(rmdir("/tmp"), EBUSY);

    namespace_on("/tmp");
    namespace_on("/home");
    CHECK_ERR(rename("/tmp/lx_p", "/home/lx_p"), EXDEV);
    CHECK(exists("/tmp/lx_p"));

    /* The working directory is inherited by a child. */
    CHECK(chdir("/tmp") == 0);
    pid_t child = fork();
    if (child == 0) {
        char cwd[64];
        _exit(getcwd(cwd, sizeof cwd) && !strcmp(cwd, "/tmp") ? 0 : 1);
    }
    int status = -1;
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(chdir("/") == 0);

    /* Special files. */
    char exe[PATH_MAX] = {0};
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(n > 0 && strstr(exe, "linux_musl_files_directories_and_proc") != NULL);
    CHECK_ERR(readlink("/tmp/lx_p", exe, sizeof exe), EINVAL);
    int null = open("/dev/null", O_RDWR);
    CHECK(null >= 0 && write(null, "x", 1) == 1 && read(null, buf, 8) == 0);

    char *m = mmap(NULL, 3 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    FILE *maps = fopen("/proc/self/maps", "r");
    CHECK(maps != NULL);
    int found = 0, stack = 0;
    char line[512];
    while (maps && fgets(line, sizeof line, maps)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 &&
            lo == (unsigned long)m && hi == (unsigned long)m + 3 * 4096 &&
            !strcmp(perms, "r--p"))
            found = 1;
        if (strstr(line, "[stack]"))
            stack = 1;
    }
    if (maps)
        fclose(maps);
    CHECK(found && stack);
    FILE *info = fopen("/proc/meminfo", "r");
    CHECK(info != NULL);
    unsigned long total = 0;
    if (info) {
        CHECK(fscanf(info, "MemTotal: %lu kB", &total) == 1);
        fclose(info);
    }
    CHECK(total >= 64 * 1024);

    time_t now = time(NULL);
    struct timeval tv;
    CHECK(gettimeofday(&tv, NULL) == 0 && tv.tv_sec >= now && tv.tv_usec < 1000000);

    /* RLIMIT_AS: a mapping beyond it is refused. */
    struct rlimit lim = {64UL << 20, RLIM_INFINITY};
    CHECK(setrlimit(RLIMIT_AS, &lim) == 0);
    struct rlimit got;
    CHECK(getrlimit(RLIMIT_AS, &got) == 0 && got.rlim_cur == 64UL << 20);
    void *big = mmap(NULL, 128UL << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(big == MAP_FAILED && errno == ENOMEM);
    lim.rlim_cur = RLIM_INFINITY;
    CHECK(setrlimit(RLIMIT_AS, &lim) == 0);

    CHECK(unlink("/tmp/lx_p") == 0);
    if (failures == 0)
        printf("PASS linux files, directories and /proc\n");
    return failures != 0;
}
