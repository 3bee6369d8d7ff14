/* exit_status.c - helper: `int main` that returns neo_atol(argv[1]). */
#include <syscalls.h>
#include <neo.h>

int main(int argc, char **argv)
{
    return argc >= 2 ? (int)neo_atol(argv[1]) : 99;
}
