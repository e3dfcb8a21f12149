/*
 * taskloop: struct task_loop over server/loop (see taskloop.h).
 */
#include "app/taskloop.h"

#include <stdlib.h>

#include "app/reaper.h"
#include "core/clock.h"
#include "server/loop.h"

struct taskloop {
    struct loop *loop;
    const int *reaper_fd;
};

struct tl_watch {
    struct loop_fd *w;
    void (*cb)(void *arg);
    void *arg;
};

struct tl_timer {
    struct loop_timer *t;
    void (*cb)(void *arg);
    void *arg;
};

static void on_fd(void *arg, unsigned events)
{
    struct tl_watch *w = arg;
    (void)events;
    w->cb(w->arg);
}

static void *watch_fd(void *ud, int fd, void (*cb)(void *arg), void *arg)
{
    struct taskloop *tl = ud;
    struct tl_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->cb = cb;
    w->arg = arg;
    if (!(w->w = loop_fd_watch(tl->loop, fd, on_fd, w))) {
        free(w);
        return NULL;
    }
    return w;
}

/* The watcher calls nothing once closed, so its record can go at once. */
static void unwatch_fd(void *ud, void *handle)
{
    struct tl_watch *w = handle;
    if (!w)
        return;
    loop_fd_close(w->w);
    free(w);
}

static void on_timer(void *arg)
{
    struct tl_timer *t = arg;
    void (*cb)(void *) = t->cb;
    void *cb_arg = t->arg;
    loop_timer_free(t->t);
    free(t);
    cb(cb_arg);
}

static void *timer_start(void *ud, int64_t delay_ms, void (*cb)(void *arg), void *arg)
{
    struct taskloop *tl = ud;
    struct tl_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->cb = cb;
    t->arg = arg;
    if (!(t->t = loop_timer_new(tl->loop, on_timer, t))) {
        free(t);
        return NULL;
    }
    loop_timer_arm(t->t, delay_ms);
    return t;
}

static void timer_stop(void *ud, void *handle)
{
    struct tl_timer *t = handle;
    if (!t)
        return;
    loop_timer_free(t->t);
    free(t);
}

static int64_t now_ms(void *ud)
{
    return clock_mono_ms();
}

static void group_started(void *ud, pid_t pgid)
{
    reaper_track(*((struct taskloop *)ud)->reaper_fd, pgid);
}

static void group_ended(void *ud, pid_t pgid)
{
    reaper_untrack(*((struct taskloop *)ud)->reaper_fd, pgid);
}

int taskloop_init(struct task_loop *out, struct loop *l, const int *reaper_fd)
{
    struct taskloop *tl = calloc(1, sizeof(*tl));
    out->ud = tl;
    if (!tl)
        return -1;
    tl->loop = l;
    tl->reaper_fd = reaper_fd;
    out->watch_fd = watch_fd;
    out->unwatch_fd = unwatch_fd;
    out->timer_start = timer_start;
    out->timer_stop = timer_stop;
    out->now_ms = now_ms;
    out->group_started = group_started;
    out->group_ended = group_ended;
    return 0;
}

void taskloop_free(struct task_loop *tl)
{
    free(tl->ud);
    tl->ud = NULL;
}
