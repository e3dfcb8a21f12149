/*
 * loop: the lws context on a libev loop, raw fd watchers, timers, the
 * wake-up and the way out (see loop.h).
 *
 * A watcher is an adopted raw file whose opaque user data points at a
 * struct loop_fd. Closing never closes the wsi from inside lws's own
 * callback: it marks the watcher dead, and the wsi returns -1 on its next
 * callback or is killed asynchronously; the watcher is freed at
 * RAW_CLOSE_FILE, when lws closes the fd. If lws closes it first (a
 * hang-up), the owner is called until it has read everything and closed.
 */
#include "server/loop.h"
#include "server/loop_lws.h"

#include <ev.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/log.h"

/* The most descriptors lws is sized for (see loop_new). */
#define LOOP_FDS_MAX 65536

/* Deadlines tracked for the libev loop (see loop_timer_arm). */
#define LOOP_KICKS_MAX 32

struct loop {
    struct lws_context *ctx;
    struct lws_vhost *io_vhost; /* no listener: the raw fds */
    struct ev_loop *ev;         /* NULL: lws's own poll loop */
    ev_timer kick, heal, deadline;
    lws_usec_t kicks[LOOP_KICKS_MAX]; /* pending deadlines, earliest first */
    int n_kicks;
    lws_sorted_usec_list_t sul_deadline; /* the exit deadline without libev */
    void (*wake_cb)(void *ud);
    void *wake_ud;
    int quit;
    struct logger *log;
};

struct loop_fd {
    struct lws *wsi;
    struct loop *l;
    void (*cb)(void *arg, unsigned events);
    void *arg;
    int dead;
    int in_cb;
    int in_writable;                  /* inside a WRITEABLE callback */
    int rearm;                        /* write wanted again from inside it */
    lws_sorted_usec_list_t rearm_sul; /* asks lws again on the next turn */
};

struct loop_timer {
    lws_sorted_usec_list_t sul;
    struct loop *l;
    void (*cb)(void *arg);
    void *arg;
    int armed;
};

/* ---- waking lws on time ----
 *
 * lws 4.1's libev plugin re-arms its timer with ev_timer_start, which does
 * nothing while the timer is already running: a deadline earlier than the
 * one armed (a session's first tick while the timer waits 30 s) would fire
 * late. So our deadlines are also kept here, the earliest armed on a timer
 * of our own that wakes lws (its idle pass runs what is due), and a
 * one-second wake-up bounds how late lws's own timeouts (handshakes, close
 * acknowledgements) and deadlines past LOOP_KICKS_MAX can be. */
static void arm_kick(struct loop *l)
{
    ev_timer_stop(l->ev, &l->kick);
    if (l->n_kicks == 0)
        return;
    lws_usec_t wait = l->kicks[0] - lws_now_usecs();
    ev_timer_set(&l->kick, wait > 0 ? (ev_tstamp)wait / 1e6 : 0., 0.);
    ev_timer_start(l->ev, &l->kick);
}

static void kick_cb(struct ev_loop *ev, ev_timer *w, int revents)
{
    struct loop *l = w->data;
    (void)ev;
    (void)revents;
    lws_usec_t now = lws_now_usecs();
    int due = 0;
    while (due < l->n_kicks && l->kicks[due] <= now)
        due++;
    memmove(l->kicks, l->kicks + due, (size_t)(l->n_kicks - due) * sizeof(l->kicks[0]));
    l->n_kicks -= due;
    lws_cancel_service(l->ctx);
    arm_kick(l);
}

static void heal_cb(struct ev_loop *ev, ev_timer *w, int revents)
{
    struct loop *l = w->data;
    (void)ev;
    (void)revents;
    lws_cancel_service(l->ctx);
}

/* The exit deadline does not wait for lws: a descriptor that is ready on
 * every turn would keep lws's idle pass, which runs its timers, from
 * running at all. */
static void deadline_cb(struct ev_loop *ev, ev_timer *w, int revents)
{
    struct loop *l = w->data;
    (void)revents;
    l->quit = 1;
    ev_break(ev, EVBREAK_ONE);
}

void loop_sul_schedule(struct loop *l, lws_sorted_usec_list_t *sul, sul_cb_t cb, lws_usec_t us)
{
    lws_sul_schedule(l->ctx, 0, sul, cb, us);
    if (!l->ev)
        return;
    /* A millisecond late, so the deadline is surely due when lws looks;
     * deadlines within a millisecond of each other share a wake-up. */
    lws_usec_t at = lws_now_usecs() + us + LWS_US_PER_MS;
    int i = 0;
    while (i < l->n_kicks && l->kicks[i] < at)
        i++;
    if ((i > 0 && at - l->kicks[i - 1] < LWS_US_PER_MS) ||
        (i < l->n_kicks && l->kicks[i] - at < LWS_US_PER_MS) || i == LOOP_KICKS_MAX)
        return;
    if (l->n_kicks == LOOP_KICKS_MAX)
        l->n_kicks--; /* the latest goes: the one-second wake-up covers it */
    memmove(l->kicks + i + 1, l->kicks + i, (size_t)(l->n_kicks - i) * sizeof(l->kicks[0]));
    l->kicks[i] = at;
    l->n_kicks++;
    if (i == 0)
        arm_kick(l);
}

/* ---- the raw fds ---- */

static void rearm_fire(lws_sorted_usec_list_t *sul)
{
    struct loop_fd *w = lws_container_of(sul, struct loop_fd, rearm_sul);
    w->rearm = 0;
    if (!w->dead)
        lws_callback_on_writable(w->wsi);
}

static int io_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    struct loop *l = lws_context_user(lws_get_context(wsi));
    if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
        if (l && l->wake_cb)
            l->wake_cb(l->wake_ud);
        return 0;
    }
    struct loop_fd *w = lws_get_opaque_user_data(wsi);
    if (!w)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (!w->dead && w->cb) {
            int writable = reason == LWS_CALLBACK_RAW_WRITEABLE_FILE;
            w->in_cb = 1;
            w->in_writable = writable;
            w->cb(w->arg, writable ? LOOP_WRITABLE : LOOP_READABLE);
            w->in_cb = 0;
            w->in_writable = 0;
            /* lws 4.1 clears a raw file's POLLOUT after its WRITEABLE
             * callback returns, so a write wanted again from inside it (a
             * partial write to a full pipe) would be forgotten and the rest
             * never sent: ask again on the next turn of the loop. */
            if (w->rearm && !w->dead)
                loop_sul_schedule(w->l, &w->rearm_sul, rearm_fire, 1);
        }
        return w->dead ? -1 : 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        /* lws closes a raw file on POLLHUP without an RX callback (a pipe
         * whose writer is gone). The owner must still see its data and its
         * end, so it is called until it closes; each call reads at most one
         * chunk, and a pipe holds at most its buffer. */
        for (int i = 0; i < 4096 && !w->dead && w->cb; i++) {
            w->in_cb = 1;
            w->cb(w->arg, LOOP_READABLE | LOOP_HANGUP);
            w->in_cb = 0;
        }
        lws_set_opaque_user_data(wsi, NULL);
        lws_sul_cancel(&w->rearm_sul);
        free(w);
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols io_protocols[] = {
    {"companion-io", io_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

struct loop_fd *loop_fd_watch(struct loop *l, int fd, void (*cb)(void *arg, unsigned events),
                              void *arg)
{
    struct loop_fd *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->l = l;
    w->cb = cb;
    w->arg = arg;
    lws_sock_file_fd_type u;
    memset(&u, 0, sizeof(u));
    u.filefd = (lws_filefd_type)(intptr_t)fd;
    w->wsi =
        lws_adopt_descriptor_vhost(l->io_vhost, LWS_ADOPT_RAW_FILE_DESC, u, "companion-io", NULL);
    if (!w->wsi) {
        free(w);
        return NULL;
    }
    lws_set_opaque_user_data(w->wsi, w);
    return w;
}

void loop_fd_want_write(struct loop_fd *w)
{
    if (!w || w->dead)
        return;
    if (w->in_writable)
        w->rearm = 1; /* after lws is done with this callback (io_callback) */
    else
        lws_callback_on_writable(w->wsi);
}

void loop_fd_close(struct loop_fd *w)
{
    if (!w || w->dead)
        return;
    w->dead = 1;
    w->cb = NULL;
    if (!w->in_cb)
        lws_set_timeout(w->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void loop_fd_close_now(struct loop_fd *w)
{
    if (!w || w->dead)
        return;
    w->dead = 1;
    w->cb = NULL;
    lws_set_timeout(w->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}

/* ---- timers ---- */

static void timer_fire(lws_sorted_usec_list_t *sul)
{
    struct loop_timer *t = lws_container_of(sul, struct loop_timer, sul);
    t->armed = 0;
    t->cb(t->arg);
}

struct loop_timer *loop_timer_new(struct loop *l, void (*cb)(void *arg), void *arg)
{
    struct loop_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->l = l;
    t->cb = cb;
    t->arg = arg;
    return t;
}

void loop_timer_arm(struct loop_timer *t, int64_t delay_ms)
{
    t->armed = 1;
    /* 0: the next turn of the loop, never from inside this call. */
    loop_sul_schedule(t->l, &t->sul, timer_fire,
                      delay_ms > 0 ? (lws_usec_t)delay_ms * LWS_US_PER_MS : 1);
}

void loop_timer_cancel(struct loop_timer *t)
{
    if (!t)
        return;
    lws_sul_cancel(&t->sul);
    t->armed = 0;
}

int loop_timer_armed(const struct loop_timer *t)
{
    return t && t->armed;
}

void loop_timer_free(struct loop_timer *t)
{
    if (!t)
        return;
    lws_sul_cancel(&t->sul);
    free(t);
}

/* ---- the loop ---- */

void loop_set_wake(struct loop *l, void (*cb)(void *ud), void *ud)
{
    l->wake_cb = cb;
    l->wake_ud = ud;
}

void loop_wake(struct loop *l)
{
    lws_cancel_service(l->ctx);
}

struct lws_context *loop_lws_context(struct loop *l)
{
    return l->ctx;
}

struct loop *loop_new(struct logger *log, char *err, size_t errlen)
{
    struct loop *l = calloc(1, sizeof(*l));
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->log = log;
    /* lws writes its own errors to stderr; nothing it logs at these levels
     * carries request URLs (where a ?token= could be). */
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    /* lws 4.1 reads VALIDATE_UTF8 from the context, not the vhost. */
    /* DO_SSL_GLOBAL_INIT: the server's vhost speaks TLS when server.tls is
     * set (ws_server.c); lws registers its OpenSSL ex_data slots here. */
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS |
                   LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.user = l;
    info.port = CONTEXT_PORT_NO_LISTEN;
    /* lws sizes its fd tables by `ulimit -n`, and Debian's build (with
     * _DEBUG) scans the whole table for every socket it adds or removes: in
     * a container whose soft limit is 1048576 that is 8 MiB read per
     * connection and 16 MiB of tables. More than LOOP_FDS_MAX descriptors
     * is not a helper's job. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
        (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > LOOP_FDS_MAX))
        info.fd_limit_per_thread = LOOP_FDS_MAX;
    /* lws 4.1's own loop polls every socket with poll(2) on each turn, so
     * idle connections slow the busy ones; its libev plugin uses epoll. The
     * loop is ours (foreign to lws): lws then installs no signal watcher,
     * and EVFLAG_NOSIGMASK keeps libev off the signal mask, so SIGTERM
     * keeps reaching the signalfd. (Not the libuv plugin: Debian builds lws
     * with _DEBUG, which makes it close every wsi twice under libuv, and
     * the second close drops the close frame.) */
    struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    void *loops[1] = {ev};
    if (ev) {
        info.options |= LWS_SERVER_OPTION_LIBEV;
        info.foreign_loops = loops;
        l->ctx = lws_create_context(&info);
        if (l->ctx) {
            l->ev = ev;
            ev_timer_init(&l->kick, kick_cb, 0., 0.);
            ev_timer_init(&l->heal, heal_cb, 1., 1.);
            ev_timer_init(&l->deadline, deadline_cb, 0., 0.);
            l->kick.data = l->heal.data = l->deadline.data = l;
            ev_timer_start(ev, &l->heal);
        } else {
            ev_loop_destroy(ev);
            info.options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
            info.foreign_loops = NULL;
        }
    }
    if (!l->ev) {
        log_msg(log, LOG_WARN,
                "libwebsockets' libev plugin is not available (package "
                "libwebsockets-evlib-ev): using poll(2), slower with many connections");
        l->ctx = lws_create_context(&info);
    }
    if (!l->ctx) {
        snprintf(err, errlen, "cannot create the event loop");
        free(l);
        return NULL;
    }
    struct lws_context_creation_info vinfo;
    memset(&vinfo, 0, sizeof(vinfo));
    vinfo.port = CONTEXT_PORT_NO_LISTEN;
    vinfo.protocols = io_protocols;
    vinfo.vhost_name = "companion-io";
    l->io_vhost = lws_create_vhost(l->ctx, &vinfo);
    if (!l->io_vhost) {
        snprintf(err, errlen, "cannot create the io vhost");
        loop_free(l);
        return NULL;
    }
    return l;
}

static void sul_deadline_cb(lws_sorted_usec_list_t *sul)
{
    struct loop *l = lws_container_of(sul, struct loop, sul_deadline);
    l->quit = 1;
}

void loop_stop_within(struct loop *l, int64_t ms)
{
    loop_sul_schedule(l, &l->sul_deadline, sul_deadline_cb, (lws_usec_t)ms * LWS_US_PER_MS);
    if (l->ev) {
        ev_timer_stop(l->ev, &l->deadline);
        ev_timer_set(&l->deadline, (ev_tstamp)ms / 1e3, 0.);
        ev_timer_start(l->ev, &l->deadline);
    }
}

void loop_stop(struct loop *l)
{
    l->quit = 1;
    lws_cancel_service(l->ctx);
}

void loop_run(struct loop *l)
{
    while (!l->quit) {
        if (l->ev)
            ev_run(l->ev, EVRUN_ONCE);
        else if (lws_service(l->ctx, 0) < 0)
            break;
    }
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    if (l->ctx)
        lws_context_destroy(l->ctx);
    if (l->ev) {
        ev_timer_stop(l->ev, &l->kick);
        ev_timer_stop(l->ev, &l->heal);
        ev_timer_stop(l->ev, &l->deadline);
        ev_loop_destroy(l->ev);
    }
    free(l);
}
