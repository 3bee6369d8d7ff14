/* neoos-api.md: sys_run starts an independent child with argv; sys_wait returns
 * its pid and status (E_NOENT without children); sys_kill ends a process with
 * NEO_STATUS_KILLED; exit statuses follow the void-main rule and status & 0xff. */
#include <neo_test.h>

int main(void)
{
    int st = -1;
    CHECK_EQ(sys_wait(&st), E_NOENT);            /* no children yet */

    char *argv[] = { "/bin/argv_check", "alpha", "beta gamma", "", NULL };
    CHECK_EQ(test_run_wait("/bin/argv_check", argv), 0);

    char *e42[] = { "/bin/exit_status", "42", NULL };
    CHECK_EQ(test_run_wait("/bin/exit_status", e42), 42);
    char *e300[] = { "/bin/exit_status", "300", NULL };
    CHECK_EQ(test_run_wait("/bin/exit_status", e300), 300 & 0xff);
    CHECK_EQ(test_run_wait("/bin/void_main_garbage", NULL), 0);
    CHECK_EQ(test_run_wait("/bin/exit_status", NULL), 99); /* argv NULL = { path } */

    /* kill */
    int pid = sys_run("/bin/spin", NULL);
    CHECK_GE(pid, 1);
    CHECK(pid != sys_getpid());
    for (int i = 0; i < 10; i++)
        sys_yield();
    CHECK_EQ(sys_kill(pid), E_OK);
    CHECK_EQ(sys_wait(&st), pid);
    CHECK_EQ(st, NEO_STATUS_KILLED);
    CHECK_EQ(sys_kill(pid), E_NOENT);            /* gone */
    CHECK_EQ(sys_kill(0), E_INVAL);
    CHECK_EQ(sys_kill(-5), E_INVAL);

    /* sys_wait with a NULL status pointer */
    pid = sys_run("/bin/hello", NULL);
    CHECK_GE(pid, 1);
    CHECK_EQ(sys_wait(NULL), pid);
    CHECK_EQ(sys_wait(&st), E_NOENT);

    /* errors of sys_run */
    CHECK_EQ(sys_run("/bin/no_such_program", NULL), E_NOENT);
    CHECK_EQ(sys_run("/etc/motd", NULL), E_PERM);   /* not an executable */
    CHECK_EQ(sys_run("/bin", NULL), E_PERM);        /* a directory */
    return 0;
}
