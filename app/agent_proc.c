/*
 * agent_proc: one ACP agent process (see agent_proc.h).
 */
#include "app/agent_proc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app/reaper.h"
#include "core/clock.h"
#include "server/loop.h"
#include "workspace/spawn.h"

#define STDERR_TAIL 1024
/* An agent that wrote this many lines that are not ACP messages is broken. */
#define BAD_LINES_MAX 256
#define EOF_GRACE_MS  1000
#define READ_CHUNK    65536

struct agent_proc {
    struct loop *loop;
    const int *reaper_fd;
    struct agent_proc_events ev;
    void *ud;
    struct rpc *rpc;
    pid_t pid;
    int in_fd, out_fd, err_fd, pidfd;
    struct loop_fd *in_w, *out_w, *err_w, *pid_w;
    struct loop_timer *deadline;
    struct loop_timer *eof_grace; /* stdout closed: its exit status is awaited a moment */
    json_object *caps;            /* agentCapabilities */
    int ready_reported;
    int gone;
    int exit_code, exit_signal; /* -1 while running */
    uint64_t bad_lines;
    char err_tail[STDERR_TAIL + 1];
    size_t err_len;
};

static void finish(struct agent_proc *a, const char *message);

static void schedule_deadline(struct agent_proc *a)
{
    int64_t d = a->rpc ? rpc_next_deadline(a->rpc) : -1;
    if (d < 0) {
        loop_timer_cancel(a->deadline);
        return;
    }
    loop_timer_arm(a->deadline, d - clock_mono_ms());
}

static void deadline_cb(void *arg)
{
    struct agent_proc *a = arg;
    rpc_expire(a->rpc, clock_mono_ms());
    schedule_deadline(a);
}

/* ---- the agent's requests and notifications ---- */

static void on_update(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    (void)rpc;
    (void)req;
    struct agent_proc *a = ud;
    if (!a->gone && params)
        a->ev.update(a->ud, params);
}

static void on_request(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    (void)rpc;
    struct agent_proc *a = ud;
    if (a->gone) {
        rpc_respond_error(req, RPC_INTERNAL_ERROR, "the client is stopping", NULL);
        return;
    }
    a->ev.request(a->ud, req, rpc_req_method(req), params);
}

/* fs/..., terminal/... and anything else the client does not offer:
 * method not found (the agent uses its own tools for files and commands). */
static const struct rpc_method agent_methods[] = {
    {"session/update", RPC_NOTIFICATION | RPC_BEFORE_INIT, on_update},
    {"session/request_permission", RPC_BEFORE_INIT, on_request},
    {NULL, 0, NULL},
};

static void want_write(struct rpc *rpc, void *ud)
{
    (void)rpc;
    struct agent_proc *a = ud;
    if (a->in_w)
        loop_fd_want_write(a->in_w);
}

static void protocol_error(struct rpc *rpc, const char *message, void *ud)
{
    (void)rpc;
    (void)message;
    struct agent_proc *a = ud;
    a->bad_lines++;
}

static const struct rpc_callbacks agent_rpc_callbacks = {want_write, NULL, protocol_error};

/* ---- descriptors ---- */

static void on_stdin(void *arg, unsigned events)
{
    struct agent_proc *a = arg;
    if (events & (LOOP_READABLE | LOOP_HANGUP)) {
        /* The agent closed its stdin: nothing more can be asked. The watch
         * is closed here (the loop would free it otherwise); an exit status
         * that follows says more than this. */
        loop_fd_close(a->in_w); /* closes the fd too */
        a->in_w = NULL;
        a->in_fd = -1;
        if (a->pid_w && a->eof_grace)
            loop_timer_arm(a->eof_grace, EOF_GRACE_MS);
        else
            finish(a, "the agent closed its input");
        return;
    }
    size_t len;
    const char *p = rpc_out_peek(a->rpc, &len);
    if (!p || !len)
        return;
    ssize_t n = write(a->in_fd, p, len);
    if (n > 0) {
        rpc_out_consume(a->rpc, (size_t)n);
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        finish(a, "the agent stopped reading its input");
        return;
    }
    if (rpc_out_pending(a->rpc))
        loop_fd_want_write(a->in_w);
}

static void on_stdout(void *arg, unsigned events)
{
    struct agent_proc *a = arg;
    char buf[READ_CHUNK];
    ssize_t n = read(a->out_fd, buf, sizeof buf);
    if (n > 0) {
        rpc_feed(a->rpc, buf, (size_t)n);
        if (a->bad_lines >= BAD_LINES_MAX) {
            char msg[96];
            snprintf(msg, sizeof msg, "the agent wrote %d lines that are not ACP messages",
                     BAD_LINES_MAX);
            finish(a, msg);
            return;
        }
        schedule_deadline(a);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR) && !(events & LOOP_HANGUP))
        return;
    loop_fd_close(a->out_w);
    a->out_w = NULL;
    a->out_fd = -1;
    /* An agent that exits closes its output first: its exit status says
     * more, so it is awaited a moment before saying only this. */
    if (a->pid_w && a->eof_grace)
        loop_timer_arm(a->eof_grace, EOF_GRACE_MS);
    else
        finish(a, NULL);
}

static void eof_grace_cb(void *arg)
{
    finish(arg, NULL);
}

static void on_stderr(void *arg, unsigned events)
{
    struct agent_proc *a = arg;
    char buf[4096];
    ssize_t n = read(a->err_fd, buf, sizeof buf);
    if (n > 0) {
        /* Keep the last STDERR_TAIL bytes. */
        size_t k = (size_t)n;
        if (k >= STDERR_TAIL) {
            memcpy(a->err_tail, buf + k - STDERR_TAIL, STDERR_TAIL);
            a->err_len = STDERR_TAIL;
        } else {
            if (a->err_len + k > STDERR_TAIL) {
                size_t drop = a->err_len + k - STDERR_TAIL;
                memmove(a->err_tail, a->err_tail + drop, a->err_len - drop);
                a->err_len -= drop;
            }
            memcpy(a->err_tail + a->err_len, buf, k);
            a->err_len += k;
        }
        a->err_tail[a->err_len] = '\0';
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR) && !(events & LOOP_HANGUP))
        return;
    loop_fd_close(a->err_w);
    a->err_w = NULL;
    a->err_fd = -1;
}

static void on_exit_fd(void *arg, unsigned events)
{
    (void)events;
    struct agent_proc *a = arg;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid((idtype_t)P_PIDFD, (id_t)a->pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
        return;
    if (si.si_code == CLD_EXITED)
        a->exit_code = si.si_status;
    else
        a->exit_signal = si.si_status;
    loop_fd_close(a->pid_w);
    a->pid_w = NULL;
    a->pidfd = -1;
    char msg[96];
    if (a->exit_signal > 0)
        snprintf(msg, sizeof msg, "the agent was killed by signal %d", a->exit_signal);
    else
        snprintf(msg, sizeof msg, "the agent exited with code %d", a->exit_code);
    finish(a, msg);
}

/* ---- lifecycle ---- */

static void kill_group(struct agent_proc *a)
{
    if (a->pid > 0 && a->exit_code < 0 && a->exit_signal < 0)
        kill(-a->pid, SIGKILL);
}

/* The end, once: everything outgoing fails, the owner hears why. */
static void finish(struct agent_proc *a, const char *message)
{
    if (a->gone)
        return;
    a->gone = 1;
    kill_group(a);
    char msg[256];
    snprintf(msg, sizeof msg, "%s", message ? message : "the agent closed its output");
    loop_timer_cancel(a->deadline);
    loop_timer_cancel(a->eof_grace);
    if (!a->ready_reported) {
        a->ready_reported = 1;
        a->ev.ready(a->ud, 0, msg);
    }
    /* The owner first, so it can end its work with the whole story; then
     * what it still waits for fails. */
    a->ev.gone(a->ud, msg);
    rpc_fail_outgoing(a->rpc, RPC_INTERNAL_ERROR, msg);
}

static void initialized(void *cbud, json_object *result, const struct rpc_error *err)
{
    struct agent_proc *a = cbud;
    if (a->gone || a->ready_reported)
        return;
    char msg[256];
    json_object *v = NULL, *caps = NULL;
    if (err) {
        snprintf(msg, sizeof msg, "%s",
                 err->code == RPC_REQUEST_TIMEOUT ? "the agent did not answer initialize in time"
                                                  : err->message);
    } else if (!json_object_is_type(result, json_type_object) ||
               !json_object_object_get_ex(result, "protocolVersion", &v) ||
               !json_object_is_type(v, json_type_int)) {
        snprintf(msg, sizeof msg, "the agent's initialize answer has no protocolVersion");
    } else if (json_object_get_int64(v) != AGENT_PROTOCOL_VERSION) {
        snprintf(msg, sizeof msg, "the agent speaks ACP version %lld, not %d",
                 (long long)json_object_get_int64(v), AGENT_PROTOCOL_VERSION);
    } else {
        if (json_object_object_get_ex(result, "agentCapabilities", &caps) &&
            json_object_is_type(caps, json_type_object))
            a->caps = json_object_get(caps);
        else
            a->caps = json_object_new_object();
        a->ready_reported = 1;
        a->ev.ready(a->ud, 1, NULL);
        return;
    }
    a->ready_reported = 1;
    a->ev.ready(a->ud, 0, msg);
    finish(a, msg);
}

static json_object *initialize_params(void)
{
    json_object *p = json_object_new_object(), *caps = json_object_new_object();
    json_object *fs = json_object_new_object(), *info = json_object_new_object();
    json_object_object_add(p, "protocolVersion", json_object_new_int(AGENT_PROTOCOL_VERSION));
    json_object_object_add(fs, "readTextFile", json_object_new_boolean(0));
    json_object_object_add(fs, "writeTextFile", json_object_new_boolean(0));
    json_object_object_add(caps, "fs", fs);
    json_object_object_add(caps, "terminal", json_object_new_boolean(0));
    json_object_object_add(p, "clientCapabilities", caps);
    json_object_object_add(info, "name", json_object_new_string("companion-helper"));
    json_object_object_add(info, "version", json_object_new_string(COMPANION_VERSION));
    json_object_object_add(p, "clientInfo", info);
    return p;
}

struct agent_proc *agent_proc_start(struct loop *l, const int *reaper_fd,
                                    const struct agent_proc_spec *spec,
                                    const struct agent_proc_events *ev, void *ud, char *err,
                                    size_t errlen)
{
    struct agent_proc *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->loop = l;
    a->reaper_fd = reaper_fd;
    a->ev = *ev;
    a->ud = ud;
    a->exit_code = a->exit_signal = -1;
    a->in_fd = a->out_fd = a->err_fd = a->pidfd = -1;
    a->rpc = rpc_new_framed(agent_methods, &agent_rpc_callbacks, a, spec->max_message_bytes,
                            RPC_FRAMING_LINES);
    a->deadline = loop_timer_new(l, deadline_cb, a);
    a->eof_grace = loop_timer_new(l, eof_grace_cb, a);
    if (!a->rpc || !a->deadline || !a->eof_grace) {
        snprintf(err, errlen, "out of memory");
        agent_proc_free(a);
        return NULL;
    }
    /* Our side needs no initialize from the agent: its requests are served
     * as soon as they come. */
    rpc_set_initialized(a->rpc, 1);
    struct spawn_spec ss = {
        .command = spec->command,
        .args = spec->args,
        .n_args = spec->n_args,
        .cwd = spec->cwd,
        .env = spec->env,
        .n_env = spec->n_env,
        .stdin_pipe = 1,
    };
    struct spawn_result sr;
    if (spawn_group(&ss, &sr, err, errlen) < 0) {
        agent_proc_free(a);
        return NULL;
    }
    a->pid = sr.pid;
    if (reaper_fd && *reaper_fd >= 0)
        reaper_track(*reaper_fd, a->pid);
    a->in_fd = sr.in_fd;
    a->out_fd = sr.out_fd;
    a->err_fd = sr.err_fd;
    a->pidfd = sr.pidfd;
    int ok = a->pidfd >= 0;
    if (ok && !(a->in_w = loop_fd_watch(l, a->in_fd, on_stdin, a)))
        ok = 0;
    if (ok && !(a->out_w = loop_fd_watch(l, a->out_fd, on_stdout, a)))
        ok = 0;
    if (ok && !(a->err_w = loop_fd_watch(l, a->err_fd, on_stderr, a)))
        ok = 0;
    if (ok && !(a->pid_w = loop_fd_watch(l, a->pidfd, on_exit_fd, a)))
        ok = 0;
    if (!ok) {
        snprintf(err, errlen, "cannot supervise the agent");
        agent_proc_free(a);
        return NULL;
    }
    if (rpc_request(a->rpc, "initialize", initialize_params(), clock_mono_ms(),
                    spec->start_timeout_ms, initialized, a) < 0) {
        snprintf(err, errlen, "out of memory");
        agent_proc_free(a);
        return NULL;
    }
    schedule_deadline(a);
    return a;
}

void agent_proc_free(struct agent_proc *a)
{
    if (!a)
        return;
    a->gone = 1; /* no callback from here on but the failed requests' */
    kill_group(a);
    if (a->rpc)
        rpc_free(a->rpc);
    /* Watched fds belong to the loop; the others are still ours. */
    if (a->in_w)
        loop_fd_close(a->in_w);
    else if (a->in_fd >= 0)
        close(a->in_fd);
    if (a->out_w)
        loop_fd_close(a->out_w);
    else if (a->out_fd >= 0)
        close(a->out_fd);
    if (a->err_w)
        loop_fd_close(a->err_w);
    else if (a->err_fd >= 0)
        close(a->err_fd);
    if (a->pid > 0) {
        /* Killed above (or already ended): collect it now, it cannot take long. */
        if (a->exit_code < 0 && a->exit_signal < 0)
            waitpid(a->pid, NULL, 0);
        if (a->reaper_fd && *a->reaper_fd >= 0)
            reaper_untrack(*a->reaper_fd, a->pid);
    }
    if (a->pid_w)
        loop_fd_close(a->pid_w);
    else if (a->pidfd >= 0)
        close(a->pidfd);
    if (a->deadline)
        loop_timer_free(a->deadline);
    if (a->eof_grace)
        loop_timer_free(a->eof_grace);
    json_object_put(a->caps);
    free(a);
}

int64_t agent_proc_request(struct agent_proc *a, const char *method, json_object *params,
                           int64_t timeout_ms, rpc_response_cb cb, void *cbud)
{
    if (a->gone) {
        json_object_put(params);
        return -1;
    }
    int64_t id = rpc_request(a->rpc, method, params, clock_mono_ms(),
                             timeout_ms > 0 ? timeout_ms : INT32_MAX, cb, cbud);
    schedule_deadline(a);
    return id;
}

void agent_proc_notify(struct agent_proc *a, const char *method, json_object *params)
{
    if (a->gone) {
        json_object_put(params);
        return;
    }
    rpc_notify(a->rpc, method, params);
}

json_object *agent_proc_capabilities(const struct agent_proc *a)
{
    return a->caps;
}

int agent_proc_can_load(const struct agent_proc *a)
{
    json_object *v = NULL;
    return a->caps && json_object_object_get_ex(a->caps, "loadSession", &v) &&
           json_object_get_boolean(v);
}

uint64_t agent_proc_bad_lines(const struct agent_proc *a)
{
    return a->bad_lines;
}

const char *agent_proc_stderr_tail(const struct agent_proc *a)
{
    return a->err_tail;
}
