// expect-output: PASS glibc pthreads map touch unmap
/* linux_musl_pthreads_four_threads_map_touch_unmap built with glibc
 * (gcc -static): glibc's pthread_create tries clone3 first (ENOSYS on
 * NeoOS), then clone with CLONE_VM, CLONE_THREAD, CLONE_SETTLS,
 * CLONE_PARENT_SETTID, CLONE_CHILD_CLEARTID; its mutexes and condition
 * variables use FUTEX_WAIT_BITSET and FUTEX_WAKE. Four threads, each in
 * rounds, map its own range, fill it with its own pattern, yield, check
 * every byte and unmap it; each has its own thread id and TLS; joins take
 * each result. */
#define LIBC_NAME "glibc"
#include "../linux/linux_musl_pthreads_four_threads_map_touch_unmap.c"
