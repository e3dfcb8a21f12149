/*
 * task: spawning, streaming and ending one task run (see task.h).
 */
#include "workspace/task.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "workspace/spawn.h"
#include "workspace/utf8.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

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

struct task *task_start(const struct task_loop *loop, const struct task_spec *spec,
                        const struct task_events *ev, void *ev_ud, char *err, size_t errlen)
{
    struct task *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->loop = *loop;
    t->ev = *ev;
    t->ev_ud = ev_ud;
    t->pidfd = -1;
    t->out_fd[0] = t->out_fd[1] = -1;
    t->max_out = spec->max_output_bytes;
    t->r.exit_code = -1;
    struct spawn_spec ss = {
        .command = spec->command,
        .args = spec->args,
        .n_args = spec->n_args,
        .cwd = spec->cwd,
        .env = spec->env,
        .n_env = spec->n_env,
    };
    struct spawn_result sr;
    if (spawn_group(&ss, &sr, err, errlen) < 0) {
        free(t);
        return NULL;
    }
    t->pid = sr.pid;
    t->started_ms = loop->now_ms(loop->ud);
    if (loop->group_started)
        loop->group_started(loop->ud, t->pid);
    t->out_fd[0] = sr.out_fd;
    t->out_fd[1] = sr.err_fd;
    t->out_watch[0] = loop->watch_fd(loop->ud, sr.out_fd, stdout_cb, t);
    t->out_watch[1] = loop->watch_fd(loop->ud, sr.err_fd, stderr_cb, t);
    t->pidfd = sr.pidfd;
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
        free(t);
        return NULL;
    }
    if (spec->timeout_s > 0)
        t->timeout_timer =
            loop->timer_start(loop->ud, (int64_t)spec->timeout_s * 1000, timeout_cb, t);
    return t;
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
