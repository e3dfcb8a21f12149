/*
 * loopio: fd watchers and timers on the lws loop (see loopio.h).
 *
 * A watcher is an adopted raw file whose opaque user data points at a
 * struct watcher. Unwatching never closes the wsi from inside lws's own
 * callback: it marks the watcher dead, and the wsi returns -1 on its next
 * callback or is killed asynchronously; the watcher is freed at
 * RAW_CLOSE_FILE, when lws closes the fd; if lws closes it first (hang-up),
 * the owner is called until it has read everything and unwatched.
 */
#include "server/loopio.h"

#include <stdlib.h>
#include <unistd.h>

#include "app/helper.h"
#include "app/reaper.h"

struct watcher {
    struct lws *wsi;
    void (*cb)(void *arg);
    void *arg;
    int dead;
    int in_cb;
};

struct timer {
    lws_sorted_usec_list_t sul;
    void (*cb)(void *arg);
    void *arg;
};

static void *watch_fd(void *ud, int fd, void (*cb)(void *arg), void *arg)
{
    struct helper *h = ud;
    struct watcher *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->cb = cb;
    w->arg = arg;
    w->wsi = helper_adopt_fd(h, fd);
    if (!w->wsi) {
        free(w);
        return NULL;
    }
    lws_set_opaque_user_data(w->wsi, w);
    return w;
}

static void unwatch_fd(void *ud, void *handle)
{
    struct watcher *w = handle;
    if (!w || w->dead)
        return;
    w->dead = 1;
    w->cb = NULL;
    if (!w->in_cb)
        lws_set_timeout(w->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void loopio_close_now(void *handle)
{
    struct watcher *w = handle;
    if (!w || w->dead)
        return;
    w->dead = 1;
    w->cb = NULL;
    lws_set_timeout(w->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}

int loopio_handle(struct lws *wsi, enum lws_callback_reasons reason, int *ret)
{
    struct watcher *w = lws_get_opaque_user_data(wsi);
    if (!w)
        return 0;
    *ret = 0;
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (!w->dead && w->cb) {
            w->in_cb = 1;
            w->cb(w->arg);
            w->in_cb = 0;
        }
        *ret = w->dead ? -1 : 0;
        return 1;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        /* lws closes a raw file on POLLHUP without an RX callback (a pipe
         * whose writer is gone). The owner must still see its data and its
         * end, so it reads until it unwatches; each call reads at most one
         * chunk, and a pipe holds at most its buffer. */
        for (int i = 0; i < 4096 && !w->dead && w->cb; i++) {
            w->in_cb = 1;
            w->cb(w->arg);
            w->in_cb = 0;
        }
        lws_set_opaque_user_data(wsi, NULL);
        free(w);
        return 1;
    default:
        return 1;
    }
}

static void timer_fire(lws_sorted_usec_list_t *sul)
{
    struct timer *t = lws_container_of(sul, struct timer, sul);
    void (*cb)(void *) = t->cb;
    void *arg = t->arg;
    free(t);
    cb(arg);
}

static void *timer_start(void *ud, int64_t delay_ms, void (*cb)(void *arg), void *arg)
{
    struct helper *h = ud;
    struct timer *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->cb = cb;
    t->arg = arg;
    helper_sul_schedule(h, &t->sul, timer_fire,
                        (lws_usec_t)(delay_ms > 0 ? delay_ms : 0) * LWS_US_PER_MS);
    return t;
}

static void timer_stop(void *ud, void *handle)
{
    struct timer *t = handle;
    if (!t)
        return;
    lws_sul_cancel(&t->sul);
    free(t);
}

static int64_t now_ms(void *ud)
{
    return clock_mono_ms();
}

static void group_started(void *ud, pid_t pgid)
{
    reaper_track(((struct helper *)ud)->reaper_fd, pgid);
}

static void group_ended(void *ud, pid_t pgid)
{
    reaper_untrack(((struct helper *)ud)->reaper_fd, pgid);
}

void loopio_task_loop(struct helper *h, struct task_loop *loop)
{
    loop->group_started = group_started;
    loop->group_ended = group_ended;
    loop->ud = h;
    loop->watch_fd = watch_fd;
    loop->unwatch_fd = unwatch_fd;
    loop->timer_start = timer_start;
    loop->timer_stop = timer_stop;
    loop->now_ms = now_ms;
}

void loopio_wake(void *ud)
{
    struct helper *h = ud;
    lws_cancel_service(h->ctx);
}
