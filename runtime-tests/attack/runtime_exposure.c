/* What a container process holding CAP_SYS_PTRACE in the runtime's user namespace can reach of
 * the runtime's own processes through /proc: their executable (CVE-2019-5736), their root and
 * working directory, and their open directory fds. Built statically by the runtime tests and
 * copied into the container's rootfs.
 *
 *   runtime_exposure scan SECONDS HOST_REL CWD_NAME
 *       Watches every other process of the pid namespace until SECONDS pass or /dev/shm/stop exists.
 *   runtime_exposure pid PID SECONDS HOST_REL CWD_NAME
 *       Looks at PID once, then keeps its executable open for SECONDS.
 *
 * HOST_REL is a path (relative to the host's /) of a file that exists only on the host;
 * CWD_NAME a file in the directory the runtime was started from. One line is printed per
 * finding ("ROOT pid", "CWD pid", "FD pid n", "EXE-RW pid", "EXE-WRITTEN pid"), and at the end
 * "captured N sealed M": executables of other programs that were opened, and how many of them
 * could never be written (read-only mount or a write-sealed memfd). Nothing is ever written. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define MAX_EXES 64

static const char *host_rel, *cwd_name;
static int exe_fd[MAX_EXES], exe_pid[MAX_EXES], exe_written[MAX_EXES], n_exes, n_sealed, findings;
static struct stat own, shell;

static void finding(const char *what, int pid, int n) {
    if (n >= 0)
        printf("%s %d %d\n", what, pid, n);
    else
        printf("%s %d\n", what, pid);
    fflush(stdout);
    findings++;
}

static int sealed(int fd) {
    struct statvfs vfs;
    if (fstatvfs(fd, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
        return 1;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int rd = open(path, O_RDONLY | O_CLOEXEC);
    if (rd < 0)
        return 0;
    int seals = fcntl(rd, F_GET_SEALS);
    close(rd);
    return seals > 0 && (seals & F_SEAL_WRITE);
}

/* Tries to open a captured executable for writing (and writes nothing). */
static void try_write(int i) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", exe_fd[i]);
    int w = open(path, O_WRONLY | O_CLOEXEC);
    if (w >= 0) {
        close(w);
        if (!exe_written[i])
            finding("EXE-WRITTEN", exe_pid[i], -1);
        exe_written[i] = 1;
    }
}

static void capture_exe(int pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || (st.st_dev == own.st_dev && st.st_ino == own.st_ino) ||
        (st.st_dev == shell.st_dev && st.st_ino == shell.st_ino)) {
        close(fd);
        return;
    }
    for (int i = 0; i < n_exes; i++) {
        struct stat seen;
        if (fstat(exe_fd[i], &seen) == 0 && seen.st_dev == st.st_dev && seen.st_ino == st.st_ino) {
            close(fd);
            return;
        }
    }
    if (n_exes == MAX_EXES) {
        close(fd);
        return;
    }
    exe_fd[n_exes] = fd;
    exe_pid[n_exes] = pid;
    if (sealed(fd))
        n_sealed++;
    else
        finding("EXE-RW", pid, -1);
    try_write(n_exes);
    n_exes++;
}

static void look_at(int pid) {
    char path[4096];
    snprintf(path, sizeof path, "/proc/%d/root/%s", pid, host_rel);
    if (access(path, F_OK) == 0)
        finding("ROOT", pid, -1);
    snprintf(path, sizeof path, "/proc/%d/cwd/%s", pid, cwd_name);
    if (access(path, F_OK) == 0)
        finding("CWD", pid, -1);
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof path, "/proc/%d/fd/%s", pid, e->d_name);
            int dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (dir < 0)
                continue;
            char up[4096] = "";
            for (int i = 0; i < 24; i++)
                strcat(up, "../");
            strcat(up, host_rel);
            if (faccessat(dir, up, F_OK, 0) == 0)
                finding("FD", pid, atoi(e->d_name));
            close(dir);
        }
        closedir(d);
    }
    capture_exe(pid);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 5)
        return 2;
    stat("/proc/self/exe", &own);
    stat("/bin/busybox", &shell);
    int me = getpid();
    if (strcmp(argv[1], "scan") == 0) {
        double end = now() + atof(argv[2]);
        host_rel = argv[3];
        cwd_name = argv[4];
        while (now() < end && access("/dev/shm/stop", F_OK) != 0) {
            DIR *proc = opendir("/proc");
            struct dirent *e;
            while (proc && (e = readdir(proc))) {
                int pid = atoi(e->d_name);
                if (pid > 0 && pid != me)
                    look_at(pid);
            }
            if (proc)
                closedir(proc);
        }
    } else if (strcmp(argv[1], "pid") == 0 && argc >= 6) {
        host_rel = argv[4];
        cwd_name = argv[5];
        look_at(atoi(argv[2]));
        double end = now() + atof(argv[3]);
        while (now() < end) {
            for (int i = 0; i < n_exes; i++)
                try_write(i);
            usleep(20000);
        }
    } else {
        return 2;
    }
    for (int i = 0; i < n_exes; i++)
        try_write(i);
    printf("captured %d sealed %d\n", n_exes, n_sealed);
    return findings ? 3 : 0;
}
