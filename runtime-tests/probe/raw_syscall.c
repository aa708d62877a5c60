/* raw_syscall NR [ARG...]: makes syscall NR with the given integer arguments and prints what
 * it returned, as "-ERRNO" when it failed. The seccomp tests use it to see a filter's verdict
 * on calls no shell utility makes (an unknown number, process_vm_readv on a given pid). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(int argc, char **argv) {
    long a[6] = {0};
    if (argc < 2 || argc > 8) {
        fprintf(stderr, "usage: raw_syscall NR [ARG...]\n");
        return 2;
    }
    for (int i = 2; i < argc; i++)
        a[i - 2] = strtol(argv[i], NULL, 0);
    long ret = syscall(strtol(argv[1], NULL, 0), a[0], a[1], a[2], a[3], a[4], a[5]);
    printf("%ld\n", ret == -1 ? -(long)errno : ret);
    return 0;
}
