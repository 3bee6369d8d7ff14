// expect-output: PASS linux execve failures
/* A failed execve returns -1 with the reason and the caller goes on as it
 * was (its memory, descriptors and pid): a missing file (ENOENT), a file
 * that is no program (ENOEXEC), a directory (EACCES), argv, envp, path or
 * an argument string in unmapped memory, a string without its NUL before
 * unmapped memory (EFAULT), one argument longer than Linux's 128 KiB or
 * more vectors than fit (E2BIG). A program whose segment lies at a kernel
 * address is refused with ENOEXEC: NeoOS checks it before the old image
 * goes (Linux, past its point of no return there, kills the caller). */
#include <elf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "exec_helpers.h"
#include "linux_check.h"

static char *const argv_x[] = {"x", NULL};
/* An address below every mapping (volatile: the compiler cannot see it). */
static void *volatile unmapped = (void *)16;
static char *const no_env[] = {NULL};

/* The state every failed execve must leave as it was. */
static char *keep_page;
static int keep_fd;
static pid_t me;

static void still_the_same(void)
{
    CHECK(memcmp(keep_page, "keep", 5) == 0);
    CHECK(lseek(keep_fd, 0, SEEK_CUR) == 3);
    CHECK(getpid() == me);
}

int main(int argc, char **argv)
{
    /* Started as "x" by an execve that should have failed. */
    if (argc == 1 && strcmp(argv[0], "x") == 0)
        return 3;
    me = getpid();
    keep_page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(keep_page != MAP_FAILED);
    memcpy(keep_page, "keep", 5);
    keep_fd = open(argv[0], O_RDONLY);
    CHECK(keep_fd >= 0 && lseek(keep_fd, 3, SEEK_SET) == 3);

    CHECK_ERR(execve("/nonexistent/program", argv_x, no_env), ENOENT);
    still_the_same();
    int text = open("/tmp/not_a_program", O_WRONLY | O_CREAT | O_TRUNC, 0755);
    CHECK(text >= 0 && write(text, "just words\n", 11) == 11 && close(text) == 0);
    CHECK_ERR(execve("/tmp/not_a_program", argv_x, no_env), ENOEXEC);
    still_the_same();
    CHECK_ERR(execve("/tmp", argv_x, no_env), EACCES);
    still_the_same();

    /* Pointers into unmapped memory. */
    CHECK_ERR(execve(unmapped, argv_x, no_env), EFAULT);
    CHECK_ERR(execve(argv[0], unmapped, no_env), EFAULT);
    CHECK_ERR(execve(argv[0], argv_x, unmapped), EFAULT);
    char *bad_string[] = {"x", unmapped, NULL};
    CHECK_ERR(execve(argv[0], bad_string, no_env), EFAULT);
    CHECK_ERR(execve(argv[0], argv_x, bad_string), EFAULT);
    char *two = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(two != MAP_FAILED && munmap(two + 4096, 4096) == 0);
    memset(two, 'a', 4096);
    char *unterminated[] = {two, NULL};
    CHECK_ERR(execve(argv[0], unterminated, no_env), EFAULT);
    still_the_same();

    /* Too big: one string over 128 KiB; then 300,000 empty strings. */
    size_t huge_len = 200 * 1024;
    char *huge = malloc(huge_len + 1);
    CHECK(huge != NULL);
    memset(huge, 'b', huge_len);
    huge[huge_len] = 0;
    char *one_huge[] = {"x", huge, NULL};
    CHECK_ERR(execve(argv[0], one_huge, no_env), E2BIG);
    CHECK_ERR(execve(argv[0], argv_x, one_huge), E2BIG);
    size_t many = 300000;
    char **lots = malloc((many + 1) * sizeof *lots);
    CHECK(lots != NULL);
    for (size_t i = 0; i < many; i++)
        lots[i] = "";
    lots[many] = NULL;
    CHECK_ERR(execve(argv[0], lots, no_env), E2BIG);
    still_the_same();
    free(lots);
    free(huge);

    /* A copy of this program whose first loaded segment is moved to a
     * kernel address, tried in a child (Linux kills it, see above). */
    CHECK(copy_file(argv[0], "/tmp/kernel_segment", 0755) == 0);
    int elf = open("/tmp/kernel_segment", O_RDWR);
    Elf64_Ehdr eh;
    CHECK(elf >= 0 && read(elf, &eh, sizeof eh) == sizeof eh);
    int moved = 0;
    for (int i = 0; i < eh.e_phnum && i < 64 && !moved; i++) {
        Elf64_Phdr ph;
        off_t at = eh.e_phoff + (off_t)i * eh.e_phentsize;
        CHECK(lseek(elf, at, SEEK_SET) == at && read(elf, &ph, sizeof ph) == sizeof ph);
        if (ph.p_type == PT_LOAD) {
            ph.p_vaddr = 0xffff800000000000ull;
            ph.p_paddr = ph.p_vaddr;
            CHECK(lseek(elf, at, SEEK_SET) == at && write(elf, &ph, sizeof ph) == sizeof ph);
            moved = 1;
        }
    }
    CHECK(moved);
    close(elf);
    pid_t child = fork();
    if (child == 0) {
        errno = 0;
        execve("/tmp/kernel_segment", argv_x, no_env);
        _exit(errno == ENOEXEC ? 0 : 1);
    }
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    unlink("/tmp/kernel_segment");
    unlink("/tmp/not_a_program");
    still_the_same();

    if (failures == 0)
        printf("PASS linux execve failures\n");
    return failures != 0;
}
