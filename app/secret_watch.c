/*
 * secret_watch: the standalone secret, watched (see secret_watch.h).
 */
#include "app/secret_watch.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "core/auth.h"
#include "app/helper.h"
#include "server/loopio.h"
#include "core/secret.h"
#include "server/session.h"

/* While the secret's folder does not exist, how often it is looked for. */
#define SECRET_RETRY_MS 2000

struct secret_watch {
    struct helper *h;
    void *watch; /* the inotify fd in the loop, or NULL while the folder is missing */
    int fd;      /* that fd (owned by the loop once watched) */
    void *retry; /* timer while the folder is missing */
    char dir[PATH_MAX];
    char name[NAME_MAX + 1];
};

void secret_watch_reload(struct helper *h)
{
    char err[512], key[AUTH_KEY_HEX_LEN + 1];
    char *raw = NULL;
    const char *why = NULL;
    if (secret_load(h->secret_path, 0, &raw, err, sizeof(err)) < 0)
        why = err;
    else if (auth_derive_workspace_key(raw, strlen(raw), h->ws.id, key) < 0)
        why = "the secret cannot be used";
    secret_free(raw);
    const char *cur = h->settings.secret;
    if (!why && cur && strcmp(cur, key) == 0) {
        explicit_bzero(key, sizeof(key));
        return; /* touched, not changed */
    }
    if (h->settings.secret) {
        explicit_bzero(h->settings.secret, strlen(h->settings.secret));
        free(h->settings.secret);
    }
    h->settings.secret = why ? NULL : strdup(key);
    explicit_bzero(key, sizeof(key));
    int n = session_close_all(h, 4001, why ? "the secret is gone" : "the secret changed");
    if (why)
        log_msg(&h->log, LOG_WARN,
                "%s; no token is accepted until there is a secret again (%d session(s) closed)",
                why, n);
    else
        log_msg(&h->log, LOG_INFO,
                "the secret changed: tokens signed before are refused (%d session(s) closed)", n);
}

static int add_watch(struct secret_watch *w);

static void on_retry(void *arg)
{
    struct secret_watch *w = arg;
    w->retry = NULL;
    if (add_watch(w) == 0)
        secret_watch_reload(w->h);
}

static void schedule_retry(struct secret_watch *w)
{
    if (!w->retry)
        w->retry = w->h->task_loop.timer_start(w->h, SECRET_RETRY_MS, on_retry, w);
}

static void on_events(void *arg)
{
    struct secret_watch *w = arg;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int changed = 0, gone = 0;
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            if (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_Q_OVERFLOW))
                changed = gone = 1;
            else if (e->len && strcmp(e->name, w->name) == 0)
                changed = 1;
            p += sizeof(*e) + e->len;
        }
    }
    if (gone) {
        w->h->task_loop.unwatch_fd(w->h, w->watch);
        w->watch = NULL;
        w->fd = -1;
        schedule_retry(w);
    }
    if (changed)
        secret_watch_reload(w->h);
}

static int add_watch(struct secret_watch *w)
{
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return -1;
    if (inotify_add_watch(fd, w->dir,
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE |
                              IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR) < 0) {
        close(fd);
        schedule_retry(w);
        return -1;
    }
    w->fd = fd;
    w->watch = w->h->task_loop.watch_fd(w->h, fd, on_events, w);
    if (!w->watch) {
        close(fd);
        w->fd = -1;
        schedule_retry(w);
        return -1;
    }
    return 0;
}

struct secret_watch *secret_watch_start(struct helper *h)
{
    struct secret_watch *w = calloc(1, sizeof(*w));
    const char *slash = h->secret_path ? strrchr(h->secret_path, '/') : NULL;
    if (!w || !slash || (size_t)(slash - h->secret_path) >= sizeof(w->dir) ||
        strlen(slash + 1) >= sizeof(w->name)) {
        free(w);
        log_msg(&h->log, LOG_WARN, "cannot watch the secret: a change needs a restart");
        return NULL;
    }
    w->h = h;
    w->fd = -1;
    memcpy(w->dir, h->secret_path, (size_t)(slash - h->secret_path));
    w->dir[slash - h->secret_path] = '\0';
    if (!w->dir[0])
        strcpy(w->dir, "/");
    strcpy(w->name, slash + 1);
    add_watch(w);
    return w;
}

void secret_watch_stop(struct secret_watch *w)
{
    if (!w)
        return;
    if (w->retry)
        w->h->task_loop.timer_stop(w->h, w->retry);
    if (w->watch)
        loopio_close_now(w->watch);
    free(w);
}
