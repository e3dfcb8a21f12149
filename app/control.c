/*
 * control: the editor's side of the helper (see control.h).
 */
#include "app/control.h"
#include "app/control_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/settings.h"
#include "ipc/rpc.h"
#include "server/loop.h"

/* Notifications dropped while the editor did not read (rpc's soft cap):
 * once the queue is down to half the cap, one companion/notificationsDropped
 * {count, total} says how many, so a gap in the audit trail is never
 * silent. */
static void report_drops(struct control *ctl)
{
    uint64_t total = rpc_out_dropped(ctl->rpc);
    if (total == ctl->drops_reported || !ctl->initialized || !ctl->stdout_w ||
        rpc_out_pending(ctl->rpc) >= RPC_OUT_SOFT_CAP / 2)
        return;
    json_object *p = json_object_new_object();
    json_object_object_add(p, "count",
                           json_object_new_int64((int64_t)(total - ctl->drops_reported)));
    json_object_object_add(p, "total", json_object_new_int64((int64_t)total));
    ctl->drops_reported = total;
    rpc_notify(ctl->rpc, "companion/notificationsDropped", p);
}

static void log_forward(void *ud, enum log_level level, const char *message)
{
    struct control *ctl = ud;
    if (!ctl->stdout_w)
        return;
    json_object *p = json_object_new_object();
    json_object_object_add(p, "type", json_object_new_int((int)level + 1));
    json_object_object_add(p, "message", json_object_new_string(message));
    rpc_notify(ctl->rpc, "window/logMessage", p);
}

/* ---- stdio ---- */

static void want_write(struct rpc *rpc, void *ud)
{
    struct control *ctl = ud;
    loop_fd_want_write(ctl->stdout_w);
}

static void cancelled(struct rpc *rpc, struct rpc_req *req, void *ud)
{
    struct control *ctl = ud;
    /* Only server/stop and shutdown wait; stopping is not undone, so the
     * request simply completes when the server is down. */
    log_msg(ctl->env.log, LOG_DEBUG, "cancel of %s ignored: it completes shortly",
            rpc_req_method(req));
}

static void protocol_error(struct rpc *rpc, const char *message, void *ud)
{
    struct control *ctl = ud;
    log_msg(ctl->env.log, LOG_WARN, "control plane: %s", message);
}

static const struct rpc_callbacks control_callbacks = {want_write, cancelled, protocol_error};

static void stdin_closed(struct control *ctl)
{
    log_msg(ctl->env.log, LOG_INFO, "stdin closed: the editor is gone, stopping");
    loop_fd_close(ctl->stdin_w);
    ctl->stdin_w = NULL;
    ctl->env.exit(ctl->env.ud, ctl->shutdown_received ? 0 : 1);
}

static void on_stdin(void *arg, unsigned events)
{
    struct control *ctl = arg;
    char buf[65536];
    ssize_t n = read(ctl->stdin_fd, buf, sizeof(buf));
    if (n > 0) {
        rpc_feed(ctl->rpc, buf, (size_t)n);
        control_schedule_deadline(ctl);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR) && !(events & LOOP_HANGUP))
        return;
    stdin_closed(ctl);
}

static void stdout_gone(struct control *ctl)
{
    log_msg(ctl->env.log, LOG_INFO, "stdout closed: the editor is gone, stopping");
    ctl->env.log->forward = NULL;
    loop_fd_close(ctl->stdout_w);
    ctl->stdout_w = NULL;
    ctl->stdout_fd = -1; /* the loop closes it: nothing may write there */
    ctl->env.exit(ctl->env.ud, 1);
}

static void on_stdout(void *arg, unsigned events)
{
    struct control *ctl = arg;
    /* Nothing is read from stdout: readable means its reader hung up
     * (libev reports a hang-up as readable, where lws's poll loop closed
     * the fd). Left open, it would be ready on every turn. */
    if (events & (LOOP_READABLE | LOOP_HANGUP)) {
        stdout_gone(ctl);
        return;
    }
    size_t len;
    const char *p = rpc_out_peek(ctl->rpc, &len);
    if (!p || !len)
        return;
    ssize_t n = write(ctl->stdout_fd, p, len);
    if (n > 0) {
        rpc_out_consume(ctl->rpc, (size_t)n);
        report_drops(ctl);
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        stdout_gone(ctl);
        return;
    }
    if (rpc_out_pending(ctl->rpc))
        loop_fd_want_write(ctl->stdout_w);
}

static void deadline_cb(void *arg)
{
    struct control *ctl = arg;
    rpc_expire(ctl->rpc, clock_mono_ms());
    control_schedule_deadline(ctl);
}

void control_schedule_deadline(struct control *ctl)
{
    int64_t d = rpc_next_deadline(ctl->rpc);
    if (d < 0) {
        loop_timer_cancel(ctl->deadline);
        return;
    }
    int64_t delay = d - clock_mono_ms();
    loop_timer_arm(ctl->deadline, delay > 0 ? delay : 0);
}

/* ---- the editor port ---- */

static int port_attached(void *ud)
{
    struct control *ctl = ud;
    return ctl->initialized && ctl->stdout_w && !ctl->exiting;
}

static void port_notify(void *ud, const char *method, json_object *params)
{
    struct control *ctl = ud;
    if (!ctl->initialized || !ctl->stdout_w) {
        json_object_put(params);
        return;
    }
    report_drops(ctl);
    rpc_notify(ctl->rpc, method, params);
}

static void unlink_call(struct control *ctl, struct editor_call *ec)
{
    for (struct editor_call **pp = &ctl->calls; *pp; pp = &(*pp)->next)
        if (*pp == ec) {
            *pp = ec->next;
            return;
        }
}

/* The rpc layer answers each request once (answer, timeout, or failure when
 * the helper exits): the record goes with it. */
static void port_done(void *cbud, json_object *result, const struct rpc_error *err)
{
    struct editor_call *ec = cbud;
    editor_answer_fn answer = ec->answer;
    void *ud = ec->ud;
    unlink_call(ec->ctl, ec);
    free(ec);
    if (!err)
        answer(ud, EDITOR_ANSWERED, result, NULL);
    else if (err->code == RPC_REQUEST_TIMEOUT || err->code == RPC_REQUEST_CANCELLED)
        answer(ud, EDITOR_TIMED_OUT, NULL, err->message);
    else
        answer(ud, EDITOR_FAILED, NULL, err->message);
}

static int64_t port_request(void *ud, const char *method, json_object *params, int64_t timeout_ms,
                            editor_answer_fn answer, void *answer_ud)
{
    struct control *ctl = ud;
    struct editor_call *ec = calloc(1, sizeof(*ec));
    if (!ec) {
        json_object_put(params);
        return -1;
    }
    ec->ctl = ctl;
    ec->answer = answer;
    ec->ud = answer_ud;
    ec->next = ctl->calls;
    ctl->calls = ec;
    int64_t id = rpc_request(ctl->rpc, method, params, clock_mono_ms(), timeout_ms, port_done, ec);
    if (id < 0) {
        unlink_call(ctl, ec);
        free(ec);
        return -1;
    }
    ec->id = id;
    control_schedule_deadline(ctl);
    return id;
}

static void port_forget(void *ud, int64_t id)
{
    struct control *ctl = ud;
    for (struct editor_call *ec = ctl->calls; ec; ec = ec->next) {
        if (ec->id == id) {
            rpc_forget(ctl->rpc, id);
            unlink_call(ctl, ec);
            free(ec);
            return;
        }
    }
}

void control_editor_port(struct control *ctl, struct editor_port *out)
{
    out->ud = ctl;
    out->attached = port_attached;
    out->notify = port_notify;
    out->request = port_request;
    out->forget = port_forget;
}

/* ---- life ---- */

struct control *control_new(const struct control_env *env, char *err, size_t errlen)
{
    struct control *ctl = calloc(1, sizeof(*ctl));
    if (!ctl) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ctl->env = *env;
    ctl->stdin_fd = STDIN_FILENO;
    ctl->stdout_fd = dup(STDOUT_FILENO);
    if (ctl->stdout_fd < 0) {
        snprintf(err, errlen, "cannot use stdout: %s", strerror(errno));
        free(ctl);
        return NULL;
    }
    /* Keep fd 1 away from anything else that might print: only framed
     * messages may reach the editor. */
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull >= 0) {
        dup2(devnull, STDOUT_FILENO);
        close(devnull);
    }
    fcntl(ctl->stdout_fd, F_SETFD, FD_CLOEXEC);
    fcntl(ctl->stdout_fd, F_SETFL, fcntl(ctl->stdout_fd, F_GETFL) | O_NONBLOCK);
    fcntl(ctl->stdin_fd, F_SETFL, fcntl(ctl->stdin_fd, F_GETFL) | O_NONBLOCK);

    ctl->rpc = rpc_new(control_methods, &control_callbacks, ctl,
                       (size_t)env->settings->max_message_bytes * 4);
    ctl->deadline = loop_timer_new(env->loop, deadline_cb, ctl);
    if (!ctl->rpc || !ctl->deadline) {
        snprintf(err, errlen, "out of memory");
        control_free(ctl);
        return NULL;
    }
    /* Once adopted, the loop owns the fds and closes them. */
    ctl->stdin_w = loop_fd_watch(env->loop, ctl->stdin_fd, on_stdin, ctl);
    ctl->stdout_w = loop_fd_watch(env->loop, ctl->stdout_fd, on_stdout, ctl);
    if (!ctl->stdin_w || !ctl->stdout_w) {
        snprintf(err, errlen, "stdin and stdout must be pipes or sockets");
        control_free(ctl);
        return NULL;
    }
    env->log->forward = log_forward;
    env->log->forward_ud = ctl;
    return ctl;
}

void control_exiting(struct control *ctl)
{
    if (!ctl)
        return;
    ctl->exiting = 1;
    rpc_fail_outgoing(ctl->rpc, RPC_REQUEST_CANCELLED, "the helper is exiting");
}

void control_flush(struct control *ctl)
{
    if (!ctl || ctl->stdout_fd < 0)
        return;
    int64_t deadline = clock_mono_ms() + 300;
    size_t len;
    const char *p;
    while ((p = rpc_out_peek(ctl->rpc, &len)) && len > 0) {
        int64_t left = deadline - clock_mono_ms();
        struct pollfd pfd = {.fd = ctl->stdout_fd, .events = POLLOUT};
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return;
        ssize_t n = write(ctl->stdout_fd, p, len);
        if (n <= 0 && errno != EAGAIN && errno != EINTR)
            return;
        if (n > 0)
            rpc_out_consume(ctl->rpc, (size_t)n);
    }
}

void control_free(struct control *ctl)
{
    if (!ctl)
        return;
    if (ctl->env.log->forward_ud == ctl)
        ctl->env.log->forward = NULL;
    /* The loop keeps the fds until it goes, and calls nobody about them. */
    loop_fd_close(ctl->stdin_w);
    loop_fd_close(ctl->stdout_w);
    loop_fd_close(ctl->parent_w);
    while (ctl->calls) {
        struct editor_call *ec = ctl->calls;
        ctl->calls = ec->next;
        free(ec);
    }
    loop_timer_free(ctl->deadline);
    loop_timer_free(ctl->parent_poll);
    rpc_free(ctl->rpc);
    free(ctl);
}
