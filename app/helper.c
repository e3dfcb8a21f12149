/*
 * helper: the lws context and its non-listening io vhost, the raw fds
 * adopted into it (stdin, stdout, the editor's pidfd, a signalfd), the loop,
 * and the way out: helper_exit() stops the server, fails what waits on the
 * editor and leaves the loop, with a hard deadline so the process is gone
 * within 2 s of stdin EOF or the editor's death.
 */
#include "app/helper.h"
#include "app/secret_watch.h"
#include "app/calls.h"
#include "server/loopio.h"
#include "server/session.h"
#include "app/watch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <ev.h>

/* Whatever is left is abandoned this long after helper_exit(). */
#define EXIT_DEADLINE_MS 1500

/* lws 4.1's libev plugin re-arms its timer with ev_timer_start, which does
 * nothing while the timer is already running: a deadline earlier than the
 * one armed (a session's first tick while the timer waits 30 s) would fire
 * late. So the deadlines of ours are also kept here, the earliest armed on a
 * timer of our own that wakes lws (its idle pass runs what is due), and a
 * one-second wake-up bounds how late lws's own timeouts (handshakes, close
 * acknowledgements) and deadlines past HELPER_KICKS_MAX can be. */
static void arm_kick(struct helper *h)
{
    ev_timer *k = h->kick;
    ev_timer_stop(h->ev_loop, k);
    if (h->n_kicks == 0)
        return;
    lws_usec_t wait = h->kicks[0] - lws_now_usecs();
    ev_timer_set(k, wait > 0 ? (ev_tstamp)wait / 1e6 : 0., 0.);
    ev_timer_start(h->ev_loop, k);
}

static void kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct helper *h = w->data;
    (void)loop;
    (void)revents;
    lws_usec_t now = lws_now_usecs();
    int due = 0;
    while (due < h->n_kicks && h->kicks[due] <= now)
        due++;
    memmove(h->kicks, h->kicks + due, (size_t)(h->n_kicks - due) * sizeof(h->kicks[0]));
    h->n_kicks -= due;
    lws_cancel_service(h->ctx);
    arm_kick(h);
}

/* The exit deadline does not wait for lws: a descriptor that is ready on
 * every turn would keep lws's idle pass, which runs its timers, from
 * running at all. */
static void exit_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct helper *h = w->data;
    (void)revents;
    h->quit = 1;
    ev_break(loop, EVBREAK_ONE);
}

static void heal_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct helper *h = w->data;
    (void)loop;
    (void)revents;
    lws_cancel_service(h->ctx);
}

void helper_sul_schedule(struct helper *h, lws_sorted_usec_list_t *sul, sul_cb_t cb, lws_usec_t us)
{
    lws_sul_schedule(h->ctx, 0, sul, cb, us);
    if (!h->ev_loop || !h->kick)
        return;
    /* A millisecond late, so the deadline is surely due when lws looks;
     * deadlines within a millisecond of each other share a wake-up. */
    lws_usec_t at = lws_now_usecs() + us + LWS_US_PER_MS;
    int i = 0;
    while (i < h->n_kicks && h->kicks[i] < at)
        i++;
    if ((i > 0 && at - h->kicks[i - 1] < LWS_US_PER_MS) ||
        (i < h->n_kicks && h->kicks[i] - at < LWS_US_PER_MS) || i == HELPER_KICKS_MAX)
        return;
    if (h->n_kicks == HELPER_KICKS_MAX)
        h->n_kicks--; /* the latest goes: the one-second wake-up covers it */
    memmove(h->kicks + i + 1, h->kicks + i, (size_t)(h->n_kicks - i) * sizeof(h->kicks[0]));
    h->kicks[i] = at;
    h->n_kicks++;
    if (i == 0)
        arm_kick(h);
}

static void on_signal(struct helper *h)
{
    struct signalfd_siginfo si;
    while (read(h->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM || si.ssi_signo == SIGHUP) {
            log_msg(&h->log, LOG_INFO, "signal %u: stopping", si.ssi_signo);
            helper_exit(h, 0);
        }
    }
}

static int io_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    struct helper *h = lws_context_user(lws_get_context(wsi));
    int ret;
    if (loopio_handle(wsi, reason, &ret))
        return ret;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        calls_drain(h);
        return 0;
    case LWS_CALLBACK_RAW_RX_FILE:
        if (wsi == h->stdin_wsi) {
            control_on_readable(h);
            return h->stdin_wsi ? 0 : -1;
        }
        if (wsi == h->signal_wsi) {
            on_signal(h);
            return 0;
        }
        if (wsi == h->parent_wsi) {
            log_msg(&h->log, LOG_INFO, "the editor process %d is gone: stopping",
                    (int)h->parent_pid);
            h->parent_wsi = NULL;
            helper_exit(h, 1);
            return -1;
        }
        if (wsi == h->stdout_wsi) {
            /* Nothing is read from stdout: readable means its reader hung up
             * (libev reports a hang-up as readable, where lws's poll loop
             * closed the fd). Left open, it would be ready on every turn. */
            h->stdout_wsi = NULL;
            h->stdout_fd = -1; /* lws closes it: nothing may write there */
            helper_exit(h, 1);
            return -1;
        }
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (wsi == h->stdout_wsi)
            control_on_writable(h);
        return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        /* A hang-up closes the wsi without an RX callback: for stdin that
         * is the editor going away, exactly like a read of 0. */
        if (wsi == h->stdin_wsi) {
            h->stdin_wsi = NULL;
            log_msg(&h->log, LOG_INFO, "stdin closed: the editor is gone, stopping");
            helper_exit(h, h->shutdown_received ? 0 : 1);
        }
        if (wsi == h->parent_wsi) {
            h->parent_wsi = NULL;
            helper_exit(h, 1);
        }
        if (wsi == h->stdout_wsi)
            h->stdout_wsi = NULL;
        if (wsi == h->signal_wsi)
            h->signal_wsi = NULL;
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols io_protocols[] = {
    {"companion-io", io_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

struct lws *helper_adopt_fd(struct helper *h, int fd)
{
    lws_sock_file_fd_type u;
    memset(&u, 0, sizeof(u));
    u.filefd = (lws_filefd_type)(intptr_t)fd;
    return lws_adopt_descriptor_vhost(h->io_vhost, LWS_ADOPT_RAW_FILE_DESC, u, "companion-io",
                                      NULL);
}

int helper_init(struct helper *h, enum helper_mode mode, char *err, size_t errlen)
{
    memset(h, 0, sizeof(*h));
    h->mode = mode;
    h->stdin_fd = h->stdout_fd = h->signal_fd = h->parent_fd = -1;
    /* Started with the server (helper_server_start), not here: only clients
     * start tasks, and an editor's start-up should not wait for a second
     * process to load every library. */
    h->reaper_fd = -1;
    h->process_started_ms = clock_wall_ms();
    log_init(&h->log, LOG_INFO);
    settings_init(&h->settings);
    workspace_init(&h->ws);

    /* lws writes its own errors to stderr; nothing it logs at these levels
     * carries request URLs (where a ?token= could be). */
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);

    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    h->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    /* lws 4.1 reads VALIDATE_UTF8 from the context, not the vhost. */
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS |
                   LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.user = h;
    info.port = CONTEXT_PORT_NO_LISTEN;
    /* lws 4.1's own loop polls every socket with poll(2) on each turn, so
     * idle connections slow the busy ones; its libev plugin uses epoll. The
     * loop is ours (foreign to lws): lws then installs no signal watcher,
     * and EVFLAG_NOSIGMASK keeps libev off the signal mask, so SIGTERM
     * keeps reaching the signalfd. (Not the libuv plugin: Debian builds lws
     * with _DEBUG, which makes it close every wsi twice under libuv, and
     * the second close drops the close frame.) */
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    void *loops[1] = {loop};
    if (loop) {
        info.options |= LWS_SERVER_OPTION_LIBEV;
        info.foreign_loops = loops;
        h->ctx = lws_create_context(&info);
        ev_timer *kick = h->ctx ? calloc(3, sizeof(*kick)) : NULL;
        if (kick) {
            ev_timer_init(&kick[0], kick_cb, 0., 0.);
            ev_timer_init(&kick[1], heal_cb, 1., 1.);
            ev_timer_init(&kick[2], exit_timer_cb, (ev_tstamp)EXIT_DEADLINE_MS / 1e3, 0.);
            kick[0].data = kick[1].data = kick[2].data = h;
            ev_timer_start(loop, &kick[1]);
            h->kick = kick;
        }
        if (h->ctx) {
            h->ev_loop = loop;
        } else {
            ev_loop_destroy(loop);
            info.options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
            info.foreign_loops = NULL;
        }
    }
    if (!h->ev_loop) {
        log_msg(&h->log, LOG_WARN,
                "libwebsockets' libev plugin is not available (package "
                "libwebsockets-evlib-ev): using poll(2), slower with many connections");
        h->ctx = lws_create_context(&info);
    }
    if (!h->ctx) {
        snprintf(err, errlen, "cannot create the event loop");
        return -1;
    }
    struct lws_context_creation_info vinfo;
    memset(&vinfo, 0, sizeof(vinfo));
    vinfo.port = CONTEXT_PORT_NO_LISTEN;
    vinfo.protocols = io_protocols;
    vinfo.vhost_name = "companion-io";
    h->io_vhost = lws_create_vhost(h->ctx, &vinfo);
    if (!h->io_vhost) {
        snprintf(err, errlen, "cannot create the io vhost");
        return -1;
    }
    /* Once adopted, lws owns the fd and closes it with the context. */
    if (h->signal_fd >= 0 && !(h->signal_wsi = helper_adopt_fd(h, h->signal_fd))) {
        close(h->signal_fd);
        h->signal_fd = -1;
    }
    if (calls_init(h, err, errlen) < 0 || events_init(&h->events, 256) < 0)
        return -1;
    return ws_server_init(h, err, errlen);
}

static void exit_deadline_cb(lws_sorted_usec_list_t *sul)
{
    struct helper *h = lws_container_of(sul, struct helper, sul_exit);
    h->quit = 1;
}

static void exit_after_stop(struct helper *h)
{
    h->quit = 1;
    lws_cancel_service(h->ctx);
}

void helper_exit(struct helper *h, int code)
{
    if (h->exiting)
        return;
    h->exiting = 1;
    h->exit_code = code;
    helper_sul_schedule(h, &h->sul_exit, exit_deadline_cb,
                        (lws_usec_t)EXIT_DEADLINE_MS * LWS_US_PER_MS);
    if (h->ev_loop && h->kick)
        ev_timer_start(h->ev_loop, &((ev_timer *)h->kick)[2]);
    if (h->rpc)
        rpc_fail_outgoing(h->rpc, RPC_REQUEST_CANCELLED, "the helper is exiting");
    /* Closing the sessions (server stop) ends every task they started. */
    helper_server_stop(h, exit_after_stop);
}

/* Last words to the editor: a bounded, blocking flush of what is queued. */
static void flush_stdout(struct helper *h)
{
    if (!h->rpc || h->stdout_fd < 0)
        return;
    int64_t deadline = clock_mono_ms() + 300;
    size_t len;
    const char *p;
    while ((p = rpc_out_peek(h->rpc, &len)) && len > 0) {
        int64_t left = deadline - clock_mono_ms();
        struct pollfd pfd = {.fd = h->stdout_fd, .events = POLLOUT};
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return;
        ssize_t n = write(h->stdout_fd, p, len);
        if (n <= 0 && errno != EAGAIN && errno != EINTR)
            return;
        if (n > 0)
            rpc_out_consume(h->rpc, (size_t)n);
    }
}

int helper_run(struct helper *h)
{
    while (!h->quit) {
        if (h->ev_loop)
            ev_run(h->ev_loop, EVRUN_ONCE);
        else if (lws_service(h->ctx, 0) < 0)
            break;
    }
    flush_stdout(h);
    return h->exit_code;
}

void helper_free(struct helper *h)
{
    /* Sessions still open hold tasks: kill those groups before the loop goes. */
    for (struct session *s = h->sessions; s; s = s->next)
        calls_session_closed(s);
    watch_stop(h->watch);
    h->watch = NULL;
    secret_watch_stop(h->secret_watch);
    h->secret_watch = NULL;
    calls_shutdown(h);
    if (h->ctx) {
        lws_context_destroy(h->ctx);
        h->ctx = NULL;
    }
    if (h->ev_loop) {
        if (h->kick) {
            for (int i = 0; i < 3; i++)
                ev_timer_stop(h->ev_loop, &((ev_timer *)h->kick)[i]);
        }
        free(h->kick);
        h->kick = NULL;
        ev_loop_destroy(h->ev_loop);
        h->ev_loop = NULL;
    }
    control_free(h);
    events_free(&h->events);
    private_paths_free(&h->priv);
    free(h->secret_path);
    h->secret_path = NULL;
    if (h->reaper_fd >= 0)
        close(h->reaper_fd); /* the reaper kills what is left, then exits */
    settings_free(&h->settings);
    workspace_free(&h->ws);
}
