/* Prints what the kernel holds for the calling process that busybox has no applet to show:
 * its scheduling attributes (sched_getattr), I/O priority (ioprio_get) and personality.
 * Built static by the runtime tests (runtime-tests/src/lib.rs, probe()) and installed into
 * the container's rootfs, so the tests observe from inside what the runtime applied.
 *
 *   sched policy=1 flags=0 nice=0 priority=10 runtime=0 deadline=0 period=0
 *   ioprio class=2 level=4
 *   personality 0x8
 *
 * With an argument it then sleeps that many seconds (a container that stays up for exec). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

struct sched_attr_v1 {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
    uint32_t util_min, util_max;
};

int main(int argc, char **argv) {
    struct sched_attr_v1 a = {0};
    if (syscall(SYS_sched_getattr, 0, &a, sizeof a, 0) != 0) {
        perror("sched_getattr");
        return 1;
    }
    printf("sched policy=%u flags=%llu nice=%d priority=%u runtime=%llu deadline=%llu period=%llu\n", a.policy,
           (unsigned long long)a.flags, a.nice, a.priority, (unsigned long long)a.runtime,
           (unsigned long long)a.deadline, (unsigned long long)a.period);
    long io = syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, 0);
    if (io < 0) {
        perror("ioprio_get");
        return 1;
    }
    printf("ioprio class=%ld level=%ld\n", io >> 13, io & 0x1fff);
    printf("personality %#x\n", personality(0xffffffff));
    fflush(stdout);
    if (argc > 1)
        sleep(atoi(argv[1]));
    return 0;
}
