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
#include "core/log.h"
#include "core/secret.h"
#include "core/settings.h"
#include "server/loop.h"
#include "server/server.h"

/* While the secret's folder does not exist, how often it is looked for. */
#define SECRET_RETRY_MS 2000

struct secret_watch {
    struct secret_watch_env env;
    struct loop_fd *watch;    /* the inotify fd in the loop, NULL while the folder is missing */
    int fd;                   /* that fd (owned by the loop once watched) */
    struct loop_timer *retry; /* armed while the folder is missing */
    char dir[PATH_MAX];
    char name[NAME_MAX + 1];
};

/* Reads the secret again and applies it. */
static void reload(struct secret_watch *w)
{
    const struct secret_watch_env *env = &w->env;
    char err[512], key[AUTH_KEY_HEX_LEN + 1];
    char *raw = NULL;
    const char *why = NULL;
    if (secret_load(env->path, 0, &raw, err, sizeof(err)) < 0)
        why = err;
    else if (auth_derive_workspace_key(raw, strlen(raw), env->workspace_id, key) < 0)
        why = "the secret cannot be used";
    secret_free(raw);
    const char *cur = env->settings->secret;
    if (!why && cur && strcmp(cur, key) == 0) {
        explicit_bzero(key, sizeof(key));
        return; /* touched, not changed */
    }
    if (env->settings->secret) {
        explicit_bzero(env->settings->secret, strlen(env->settings->secret));
        free(env->settings->secret);
    }
    env->settings->secret = why ? NULL : strdup(key);
    explicit_bzero(key, sizeof(key));
    int n = server_close_all(env->server, 4001, why ? "the secret is gone" : "the secret changed");
    if (why)
        log_msg(env->log, LOG_WARN,
                "%s; no token is accepted until there is a secret again (%d session(s) closed)",
                why, n);
    else
        log_msg(env->log, LOG_INFO,
                "the secret changed: tokens signed before are refused (%d session(s) closed)", n);
}

static int add_watch(struct secret_watch *w);

static void on_retry(void *arg)
{
    struct secret_watch *w = arg;
    if (add_watch(w) == 0)
        reload(w);
}

static void schedule_retry(struct secret_watch *w)
{
    if (!loop_timer_armed(w->retry))
        loop_timer_arm(w->retry, SECRET_RETRY_MS);
}

static void on_events(void *arg, unsigned events)
{
    (void)events;
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
        loop_fd_close(w->watch);
        w->watch = NULL;
        w->fd = -1;
        schedule_retry(w);
    }
    if (changed)
        reload(w);
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
    w->watch = loop_fd_watch(w->env.loop, fd, on_events, w);
    if (!w->watch) {
        close(fd);
        w->fd = -1;
        schedule_retry(w);
        return -1;
    }
    return 0;
}

struct secret_watch *secret_watch_start(const struct secret_watch_env *env)
{
    struct secret_watch *w = calloc(1, sizeof(*w));
    const char *slash = env->path ? strrchr(env->path, '/') : NULL;
    if (!w || !slash || (size_t)(slash - env->path) >= sizeof(w->dir) ||
        strlen(slash + 1) >= sizeof(w->name) ||
        !(w->retry = loop_timer_new(env->loop, on_retry, w))) {
        free(w);
        log_msg(env->log, LOG_WARN, "cannot watch the secret: a change needs a restart");
        return NULL;
    }
    w->env = *env;
    w->fd = -1;
    memcpy(w->dir, env->path, (size_t)(slash - env->path));
    w->dir[slash - env->path] = '\0';
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
    loop_timer_free(w->retry);
    if (w->watch)
        loop_fd_close_now(w->watch);
    free(w);
}
