/*
 * task: spawning, streaming and ending one task run (see task.h).
 */
#include "workspace/task.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "workspace/utf8.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char **environ;

struct task {
    struct task_loop loop;
    struct task_events ev;
    void *ev_ud;
    pid_t pid;
    void *pid_watch;
    int pidfd;
    void *out_watch[2];
    int out_fd[2];
    char carry[2][4];
    size_t carry_len[2];
    int64_t out_bytes, max_out;
    int64_t started_ms;
    void *timeout_timer, *kill_timer;
    struct task_result r;
    int exited, finished, abandoned, terminating;
};

static void maybe_finish(struct task *t);

static void kill_group(struct task *t, int sig)
{
    /* The group outlives its leader while any member lives, so this reaches
     * grandchildren after the leader is gone too. */
    if (t->pid > 0)
        kill(-t->pid, sig);
}

static void kill_timer_cb(void *arg)
{
    struct task *t = arg;
    t->kill_timer = NULL;
    kill_group(t, SIGKILL);
}

static void terminate(struct task *t)
{
    if (t->terminating || t->exited)
        return;
    t->terminating = 1;
    kill_group(t, SIGTERM);
    t->kill_timer = t->loop.timer_start(t->loop.ud, TASK_KILL_GRACE_MS, kill_timer_cb, t);
}

static void timeout_cb(void *arg)
{
    struct task *t = arg;
    t->timeout_timer = NULL;
    t->r.timed_out = 1;
    terminate(t);
}

static void emit(struct task *t, int s, const char *data, size_t len)
{
    if (t->abandoned || len == 0)
        return;
    if (utf8_is_valid(data, len)) {
        t->ev.output(t->ev_ud, (enum task_stream)s, data, len);
        return;
    }
    char *fixed = utf8_repair(data, len);
    if (fixed) {
        t->ev.output(t->ev_ud, (enum task_stream)s, fixed, strlen(fixed));
        free(fixed);
    }
}

/* Hands out buf[0..len) (carry already in front), keeping an incomplete
 * trailing sequence for the next read unless the stream has ended. */
static void deliver(struct task *t, int s, char *buf, size_t len, int eof)
{
    int64_t room = t->max_out - t->out_bytes;
    if (room <= 0) {
        t->r.truncated = t->r.truncated || len > 0;
        t->carry_len[s] = 0;
        return;
    }
    if ((int64_t)len > room) {
        len = (size_t)room;
        t->r.truncated = 1;
        eof = 1; /* nothing after the cap will follow */
    }
    size_t keep = eof ? 0 : utf8_incomplete_tail(buf, len);
    if (eof && len > 0 && t->r.truncated)
        len -= utf8_incomplete_tail(buf, len); /* do not end on half a character */
    t->out_bytes += (int64_t)(len - keep);
    emit(t, s, buf, len - keep);
    memcpy(t->carry[s], buf + len - keep, keep);
    t->carry_len[s] = keep;
}

static void close_stream(struct task *t, int s)
{
    if (t->out_watch[s]) {
        t->loop.unwatch_fd(t->loop.ud, t->out_watch[s]);
        t->out_watch[s] = NULL;
    }
    t->out_fd[s] = -1;
}

static void on_readable(struct task *t, int s)
{
    char buf[TASK_READ_CHUNK + 4];
    size_t c = t->carry_len[s];
    memcpy(buf, t->carry[s], c);
    ssize_t n = read(t->out_fd[s], buf + c, TASK_READ_CHUNK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        deliver(t, s, buf, c, 1);
        close_stream(t, s);
        maybe_finish(t);
        return;
    }
    t->carry_len[s] = 0;
    deliver(t, s, buf, c + (size_t)n, 0);
}

static void stdout_cb(void *arg)
{
    on_readable(arg, TASK_STDOUT);
}

static void stderr_cb(void *arg)
{
    on_readable(arg, TASK_STDERR);
}

static void pid_cb(void *arg)
{
    struct task *t = arg;
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (waitid((idtype_t)P_PIDFD, (id_t)t->pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
        return;
    if (si.si_code == CLD_EXITED) {
        t->r.exit_code = si.si_status;
    } else {
        t->r.exit_code = -1;
        t->r.signal = si.si_status;
    }
    t->exited = 1;
    t->r.duration_ms = t->loop.now_ms(t->loop.ud) - t->started_ms;
    t->loop.unwatch_fd(t->loop.ud, t->pid_watch);
    t->pid_watch = NULL;
    /* The task is its leader: whatever it left behind in its group goes. */
    kill_group(t, SIGKILL);
    maybe_finish(t);
}

static void stop_timers(struct task *t)
{
    if (t->timeout_timer) {
        t->loop.timer_stop(t->loop.ud, t->timeout_timer);
        t->timeout_timer = NULL;
    }
    if (t->kill_timer) {
        t->loop.timer_stop(t->loop.ud, t->kill_timer);
        t->kill_timer = NULL;
    }
}

static void maybe_finish(struct task *t)
{
    if (!t->exited || t->out_fd[0] >= 0 || t->out_fd[1] >= 0 || t->finished)
        return;
    t->finished = 1;
    /* The group was killed when its leader exited; its id may be reused. */
    if (t->loop.group_ended)
        t->loop.group_ended(t->loop.ud, t->pid);
    stop_timers(t);
    if (t->abandoned) {
        task_free(t);
        return;
    }
    t->ev.finished(t->ev_ud, &t->r);
}

/* environ plus the task's own variables, which win over inherited ones. */
static char **build_env(const struct task_spec *spec)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = calloc(n + spec->n_env + 1, sizeof(char *));
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int overridden = 0;
        for (size_t j = 0; j < spec->n_env && !overridden; j++)
            overridden = strncmp(spec->env[j], environ[i], nl) == 0 && spec->env[j][nl] == '=';
        if (!overridden)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < spec->n_env; j++)
        env[k++] = (char *)spec->env[j];
    env[k] = NULL;
    return env;
}

struct task *task_start(const struct task_loop *loop, const struct task_spec *spec,
                        const struct task_events *ev, void *ev_ud, char *err, size_t errlen)
{
    struct task *t = calloc(1, sizeof(*t));
    char **argv = calloc(spec->n_args + 2, sizeof(char *));
    char **env = build_env(spec);
    int outp[2] = {-1, -1}, errp[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int fa_ok = 0, attr_ok = 0;
    if (!t || !argv || !env || pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "cannot start the task: %s", strerror(errno ? errno : ENOMEM));
        goto fail;
    }
    t->loop = *loop;
    t->ev = *ev;
    t->ev_ud = ev_ud;
    t->pidfd = -1;
    t->out_fd[0] = t->out_fd[1] = -1;
    t->max_out = spec->max_output_bytes;
    t->r.exit_code = -1;

    argv[0] = (char *)spec->command;
    for (size_t i = 0; i < spec->n_args; i++)
        argv[i + 1] = (char *)spec->args[i];

    fa_ok = posix_spawn_file_actions_init(&fa) == 0;
    attr_ok = posix_spawnattr_init(&attr) == 0;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (!fa_ok || !attr_ok ||
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, outp[1], 1) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, errp[1], 2) != 0 ||
        posix_spawn_file_actions_addchdir_np(&fa, spec->cwd) != 0 ||
        /* Nothing else the helper holds reaches the task, not even an fd
         * it inherited without close-on-exec from whoever started it. */
        posix_spawn_file_actions_addclosefrom_np(&fa, 3) != 0 ||
        /* Own group for the whole tree; default signal handling and an empty
         * mask, since the helper blocks and ignores some signals. */
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                            POSIX_SPAWN_SETSIGDEF) != 0 ||
        posix_spawnattr_setpgroup(&attr, 0) != 0 || posix_spawnattr_setsigmask(&attr, &none) != 0 ||
        posix_spawnattr_setsigdefault(&attr, &all) != 0) {
        snprintf(err, errlen, "cannot prepare the task");
        goto fail;
    }
    int rc = posix_spawnp(&t->pid, spec->command, &fa, &attr, argv, env);
    if (rc != 0) {
        t->pid = 0;
        if (rc == ENOENT)
            snprintf(err, errlen, "command not found: %s", spec->command);
        else if (rc == EACCES)
            snprintf(err, errlen, "command not executable: %s", spec->command);
        else
            snprintf(err, errlen, "cannot start %s: %s", spec->command, strerror(rc));
        goto fail;
    }
    t->started_ms = loop->now_ms(loop->ud);
    if (loop->group_started)
        loop->group_started(loop->ud, t->pid);
    close(outp[1]);
    close(errp[1]);
    outp[1] = errp[1] = -1;
    fcntl(outp[0], F_SETFL, O_NONBLOCK);
    fcntl(errp[0], F_SETFL, O_NONBLOCK);
    t->out_fd[0] = outp[0];
    t->out_fd[1] = errp[0];
    t->out_watch[0] = loop->watch_fd(loop->ud, outp[0], stdout_cb, t);
    t->out_watch[1] = loop->watch_fd(loop->ud, errp[0], stderr_cb, t);
    t->pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
    if (t->pidfd < 0 || !t->out_watch[0] || !t->out_watch[1] ||
        !(t->pid_watch = loop->watch_fd(loop->ud, t->pidfd, pid_cb, t))) {
        /* Without a way to see the end, the run cannot be supervised. */
        kill_group(t, SIGKILL);
        waitpid(t->pid, NULL, 0);
        if (loop->group_ended)
            loop->group_ended(loop->ud, t->pid);
        snprintf(err, errlen, "cannot supervise the task");
        if (t->pidfd >= 0 && !t->pid_watch)
            close(t->pidfd);
        for (int s = 0; s < 2; s++)
            if (t->out_watch[s])
                loop->unwatch_fd(loop->ud, t->out_watch[s]);
            else
                close(t->out_fd[s]);
        t->pid = 0;
        goto fail_spawned;
    }
    if (spec->timeout_s > 0)
        t->timeout_timer =
            loop->timer_start(loop->ud, (int64_t)spec->timeout_s * 1000, timeout_cb, t);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(argv);
    free(env);
    return t;

fail:
    for (int i = 0; i < 2; i++) {
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
fail_spawned:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    free(argv);
    free(env);
    free(t);
    return NULL;
}

void task_cancel(struct task *t)
{
    t->r.cancelled = 1;
    terminate(t);
}

void task_abandon(struct task *t)
{
    t->abandoned = 1;
    if (t->finished) {
        task_free(t);
        return;
    }
    /* Nobody is listening: end the whole group now rather than gracefully. */
    kill_group(t, SIGKILL);
}

void task_free(struct task *t)
{
    if (!t)
        return;
    stop_timers(t);
    for (int s = 0; s < 2; s++)
        close_stream(t, s);
    if (t->pid_watch)
        t->loop.unwatch_fd(t->loop.ud, t->pid_watch);
    free(t);
}

pid_t task_pid(const struct task *t)
{
    return t->pid;
}
