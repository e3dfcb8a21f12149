/*
 * reaper: the watchdog process for task groups (see reaper.h).
 */
#include "app/reaper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define REAPER_MAX 1024

int reaper_run(int rfd)
{
    pid_t groups[REAPER_MAX];
    size_t n = 0;
    char buf[4096], line[32];
    size_t ll = 0;
    prctl(PR_SET_NAME, "companion-reap", 0, 0, 0);
    /* Only the helper's end-of-file may end it: not the terminal's Ctrl+C,
     * which would otherwise reach it before the helper has cleaned up. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    for (;;) {
        ssize_t r = read(rfd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++) {
            if (buf[i] != '\n') {
                if (ll < sizeof(line) - 1)
                    line[ll++] = buf[i];
                continue;
            }
            line[ll] = '\0';
            ll = 0;
            pid_t pg = (pid_t)atoi(line + 1);
            if (pg <= 1)
                continue;
            if (line[0] == '+' && n < REAPER_MAX) {
                groups[n++] = pg;
            } else if (line[0] == '-') {
                for (size_t k = 0; k < n; k++)
                    if (groups[k] == pg) {
                        groups[k] = groups[--n];
                        break;
                    }
            }
        }
    }
    for (size_t k = 0; k < n; k++)
        kill(-groups[k], SIGKILL);
    return 0;
}

int reaper_start(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    /* A separate program (this binary with --reap), not a fork: it shows as
     * itself in ps, shares no memory with the helper, and holds only the
     * pipe's read end (fd 3). It is started once the server runs, so every
     * other fd is closed explicitly too: a socket or pipe that leaked into
     * it would stay open for as long as the reaper lives. */
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none;
    sigemptyset(&none);
    char *argv[] = {"companion-helper", "--reap", NULL};
    char *envp[] = {NULL};
    pid_t pid;
    int rc = -1;
    if (posix_spawn_file_actions_init(&fa) == 0) {
        if (posix_spawnattr_init(&attr) == 0) {
            if (posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) == 0 &&
                posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0) == 0 &&
                posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0) == 0 &&
                posix_spawn_file_actions_adddup2(&fa, p[0], REAPER_FD) == 0 &&
                posix_spawn_file_actions_addclosefrom_np(&fa, REAPER_FD + 1) == 0 &&
                posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK) == 0 &&
                posix_spawnattr_setsigmask(&attr, &none) == 0)
                rc = posix_spawn(&pid, "/proc/self/exe", &fa, &attr, argv, envp);
            posix_spawnattr_destroy(&attr);
        }
        posix_spawn_file_actions_destroy(&fa);
    }
    close(p[0]);
    if (rc != 0) {
        close(p[1]);
        return -1;
    }
    /* Never block the loop on it; a full pipe means the reaper is stuck,
     * and then tracking is best effort. */
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    return p[1];
}

static void send_line(int fd, char op, pid_t pgid)
{
    if (fd < 0 || pgid <= 1)
        return;
    char line[32];
    int n = snprintf(line, sizeof(line), "%c%d\n", op, (int)pgid);
    if (write(fd, line, (size_t)n) < 0) {
    }
}

void reaper_track(int fd, pid_t pgid)
{
    send_line(fd, '+', pgid);
}

void reaper_untrack(int fd, pid_t pgid)
{
    send_line(fd, '-', pgid);
}
