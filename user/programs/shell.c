/* shell.c - a tiny interactive shell.
 * Commands: ls [dir], cat <file>, run <prog> [args...] [&], sh [args...],
 *           maps, mem, kill <pid>, help, exit. A program name without '/'
 *           is looked up in /bin; sh is busybox's shell (/bin/busybox sh,
 *           a Linux program), `exit` there comes back here. */
#include <error.h>
#include <syscalls.h>
#include <neo.h>

#define LINE_MAX 256
#define MAX_ARGS 16

static char buf[8192];

static int read_line(char *line, int cap)
{
    int n = 0;
    for (;;) {
        char c;
        int r = sys_read_console(&c, 1);
        if (r <= 0)
            return -1;
        if (c == '\r' || c == '\n') {
            sys_write(STDOUT, "\n", 1);
            line[n] = 0;
            return n;
        }
        if (c == 0x7f || c == '\b') {
            if (n > 0) {
                n--;
                sys_write(STDOUT, "\b \b", 3);
            }
            continue;
        }
        if (c == 0x03) { /* ^C */
            sys_write(STDOUT, "^C\n", 3);
            line[0] = 0;
            return 0;
        }
        if ((unsigned char)c < 0x20 || n >= cap - 1)
            continue;
        line[n++] = c;
        sys_write(STDOUT, &c, 1); /* echo */
    }
}

static int split(char *line, char **argv)
{
    int argc = 0;
    while (*line && argc < MAX_ARGS) {
        while (*line == ' ' || *line == '\t')
            *line++ = 0;
        if (!*line)
            break;
        argv[argc++] = line;
        while (*line && *line != ' ' && *line != '\t')
            line++;
    }
    argv[argc] = NULL;
    return argc;
}

static void cmd_ls(const char *dir)
{
    int n = sys_readdir(dir, buf, sizeof buf);
    if (n < 0) {
        printf("ls: %s: %s\n", dir, neo_strerror(n));
        return;
    }
    if (n > (int)sizeof buf)
        n = (int)sizeof buf;
    sys_write(STDOUT, buf, n);
}

static void cmd_cat(const char *path)
{
    int fd = sys_open(path, O_RDONLY);
    if (fd < 0) {
        printf("cat: %s: %s\n", path, neo_strerror(fd));
        return;
    }
    int n;
    while ((n = sys_read(fd, buf, sizeof buf)) > 0)
        sys_write(STDOUT, buf, n);
    sys_close(fd);
}

static void cmd_run(int argc, char **argv)
{
    static char path[LINE_MAX + 8];
    if (argc < 2) {
        printf("usage: run <prog> [args...]\n");
        return;
    }
    if (strchr(argv[1], '/'))
        snprintf(path, sizeof path, "%s", argv[1]);
    else
        snprintf(path, sizeof path, "/bin/%s", argv[1]);
    int background = 0;
    if (argc > 2 && !strcmp(argv[argc - 1], "&")) {
        background = 1;
        argv[--argc] = NULL;
    }
    argv[1] = path;
    int pid = sys_run(path, argv + 1);
    if (pid < 0) {
        printf("run: %s: %s\n", path, neo_strerror(pid));
        return;
    }
    if (background) {
        printf("[pid %d running in the background; 'kill %d' ends it]\n", pid, pid);
        return;
    }
    int status = -1, w;
    while ((w = sys_wait(&status)) >= 0 && w != pid)
        printf("[background pid %d exited with status %d]\n", w, status);
    const char *why = status == NEO_STATUS_SEGFAULT ? " (segmentation fault)"
                    : status == NEO_STATUS_BUSERROR ? " (bus error)"
                    : status == NEO_STATUS_KILLED ? " (killed)"
                    : status == NEO_STATUS_CRASHED ? " (crashed)" : "";
    printf("[pid %d exited with status %d%s]\n", w, status, why);
}

static void cmd_mem(void)
{
    struct neo_meminfo mi;
    if (sys_meminfo(&mi) != E_OK) {
        printf("mem: error\n");
        return;
    }
    printf("frames: %lu free of %lu (%lu KiB free)\n", mi.free_frames, mi.total_frames, mi.free_frames * 4);
    printf("this shell: %lu mappings, %lu resident pages\n", mi.mappings, mi.resident_pages);
    printf("writeback: %lu requests, %lu bytes; TLB flushes: %lu page, %lu full\n",
           mi.writeback_requests, mi.writeback_bytes, mi.tlb_flush_page, mi.tlb_flush_all);
}

int main(void)
{
    static char line[LINE_MAX];
    char *argv[MAX_ARGS + 1];
    printf("NeoOS shell. Commands: ls [dir], cat <file>, run <prog> [args], sh (busybox), maps, mem, kill <pid>, help, exit\n");
    for (;;) {
        printf("neo$ ");
        if (read_line(line, sizeof line) < 0)
            return 0;
        int argc = split(line, argv);
        if (argc == 0)
            continue;
        if (!strcmp(argv[0], "exit"))
            return 0;
        else if (!strcmp(argv[0], "help"))
            printf("ls [dir] | cat <file> | run <prog> [args] | sh [args] | maps | mem | kill <pid> | exit\n");
        else if (!strcmp(argv[0], "ls"))
            cmd_ls(argc > 1 ? argv[1] : "/");
        else if (!strcmp(argv[0], "cat") && argc > 1)
            cmd_cat(argv[1]);
        else if (!strcmp(argv[0], "run"))
            cmd_run(argc, argv);
        else if (!strcmp(argv[0], "sh")) {
            /* run busybox sh [args]: argv shifted up by one for "run". */
            char *run[MAX_ARGS + 3];
            run[0] = "run";
            run[1] = "/bin/busybox";
            int n = 2;
            for (int i = 0; i < argc && n < MAX_ARGS + 2; i++)
                run[n++] = argv[i];
            run[n] = NULL;
            cmd_run(n, run);
        }
        else if (!strcmp(argv[0], "maps")) {
            int n = sys_maps(buf, sizeof buf);
            if (n > (int)sizeof buf)
                n = (int)sizeof buf;
            if (n > 0)
                sys_write(STDOUT, buf, n);
        } else if (!strcmp(argv[0], "mem"))
            cmd_mem();
        else if (!strcmp(argv[0], "kill") && argc > 1) {
            int r = sys_kill((int)neo_atol(argv[1]));
            if (r != E_OK)
                printf("kill: %s: %s\n", argv[1], neo_strerror(r));
        } else
            printf("%s: unknown command (try help)\n", argv[0]);
    }
}
