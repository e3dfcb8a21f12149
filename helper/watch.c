/*
 * watch: inotify, debounce and comparison for git.changed (see watch.h).
 */
#include "helper/watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helper/calls.h"
#include "helper/events.h"
#include "helper/helper.h"
#include "helper/loopio.h"

/* inotify watches are a per-user kernel resource: leave plenty for others. */
#define WATCH_MAX_DIRS    4096
#define WATCH_DEBOUNCE_MS 1000
#define WATCH_QUIET_MS    300
#define WATCH_MAX_WAIT_MS 2000

#define TREE_MASK                                                                                  \
    (IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB |            \
     IN_DELETE_SELF | IN_ONLYDIR)

struct wdir {
    int wd;
    int folder; /* index into watch.folders */
    char *path;
};

struct wfolder {
    struct watch *w;
    size_t index;
    char *name;
    char *path;
    char *fingerprint; /* of the last status seen; NULL before the first */
    int dirty, running, have_baseline;
    int64_t last_run_ms;
    int64_t first_change_ms; /* of the changes not yet looked at */
    int64_t timer_at;
    void *timer;
};

struct watch {
    struct helper *h;
    int fd;
    void *fd_watch;
    struct wdir *dirs;
    size_t n_dirs, cap_dirs;
    int capped;
    struct wfolder *folders;
    size_t n_folders;
};

static void schedule(struct watch *w, size_t i);

static int add_dir(struct watch *w, size_t folder, const char *path)
{
    if (w->n_dirs >= WATCH_MAX_DIRS) {
        if (!w->capped)
            log_msg(&w->h->log, LOG_WARN,
                    "watching %d folders already: deeper changes are seen through git's index "
                    "and refs only",
                    WATCH_MAX_DIRS);
        w->capped = 1;
        return -1;
    }
    int wd = inotify_add_watch(w->fd, path, TREE_MASK);
    if (wd < 0)
        return -1;
    for (size_t i = 0; i < w->n_dirs; i++)
        if (w->dirs[i].wd == wd)
            return 0; /* the same directory reached twice (bind mounts) */
    if (w->n_dirs == w->cap_dirs) {
        size_t cap = w->cap_dirs ? w->cap_dirs * 2 : 64;
        struct wdir *nd = realloc(w->dirs, cap * sizeof(*nd));
        if (!nd)
            return -1;
        w->dirs = nd;
        w->cap_dirs = cap;
    }
    w->dirs[w->n_dirs].wd = wd;
    w->dirs[w->n_dirs].folder = (int)folder;
    w->dirs[w->n_dirs].path = strdup(path);
    w->n_dirs++;
    return 0;
}

/* Adds `path` and the directories below it; skips .git (watched apart)
 * and symlinks (they may lead anywhere). */
static void add_tree(struct watch *w, size_t folder, const char *path, int depth)
{
    if (depth > 64 || add_dir(w, folder, path) < 0)
        return;
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            !strcmp(e->d_name, ".git"))
            continue;
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) < (int)sizeof(sub))
            add_tree(w, folder, sub, depth + 1);
    }
    closedir(d);
}

static void add_git_dir(struct watch *w, size_t folder, const char *git)
{
    char refs[PATH_MAX];
    add_dir(w, folder, git); /* HEAD, index, packed-refs, FETCH_HEAD */
    if (snprintf(refs, sizeof(refs), "%s/refs", git) < (int)sizeof(refs))
        add_tree(w, folder, refs, 0); /* heads, remotes, tags */
}

static struct wdir *find_wd(struct watch *w, int wd)
{
    for (size_t i = 0; i < w->n_dirs; i++)
        if (w->dirs[i].wd == wd)
            return &w->dirs[i];
    return NULL;
}

static void on_inotify(void *arg)
{
    struct watch *w = arg;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof(buf));
        if (n <= 0)
            return;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            p += sizeof(*e) + e->len;
            struct wdir *d = find_wd(w, e->wd);
            if (!d)
                continue;
            /* A lock file appearing is git at work, not a change yet. */
            if (e->len && strstr(e->name, ".lock"))
                continue;
            if ((e->mask & IN_ISDIR) && (e->mask & (IN_CREATE | IN_MOVED_TO)) && e->len &&
                strcmp(e->name, ".git") != 0) {
                char sub[PATH_MAX];
                int folder = d->folder;
                if (snprintf(sub, sizeof(sub), "%s/%s", d->path, e->name) < (int)sizeof(sub))
                    add_tree(w, (size_t)folder, sub, 0);
                d = NULL; /* add_tree may have moved the array */
                schedule(w, (size_t)folder);
                continue;
            }
            schedule(w, (size_t)d->folder);
        }
    }
}

/* What git.changed compares: the status without its volatile parts. */
static char *fingerprint(json_object *r)
{
    static const char *const keys[] = {"branch", "head",     "detached",  "ahead",     "behind",
                                       "staged", "unstaged", "untracked", "conflicted"};
    json_object *o = json_object_new_object(), *v;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (json_object_object_get_ex(r, keys[i], &v))
            json_object_object_add(o, keys[i], json_object_get(v));
    char *fp = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return fp;
}

static int list_len(json_object *r, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(r, key, &v) && json_object_is_type(v, json_type_array)
               ? (int)json_object_array_length(v)
               : 0;
}

struct status_job {
    struct watch *w;
    size_t folder;
    int cancelled; /* the watch stopped while the job ran */
};

static void status_done(void *ud, enum cmd_status st, struct cmd_result *res)
{
    struct status_job *sj = ud;
    struct watch *w = sj->w;
    if (sj->cancelled || !w) {
        free(sj);
        return;
    }
    struct wfolder *f = &w->folders[sj->folder];
    f->running = 0;
    w->h->watch_job = NULL;
    free(sj);
    if (st == CMD_OK && res->result) {
        char *fp = fingerprint(res->result);
        int changed = f->have_baseline && fp && (!f->fingerprint || strcmp(fp, f->fingerprint));
        free(f->fingerprint);
        f->fingerprint = fp;
        f->have_baseline = 1;
        if (changed) {
            json_object *r = res->result, *v, *p = json_object_new_object();
            json_object_object_add(p, "folder", json_object_new_string(f->name));
            static const char *const keys[] = {"branch", "head", "ahead", "behind"};
            for (size_t i = 0; i < 4; i++)
                json_object_object_add(
                    p, keys[i],
                    json_object_object_get_ex(r, keys[i], &v) ? json_object_get(v) : NULL);
            json_object_object_add(
                p, "changed",
                json_object_new_int(list_len(r, "staged") + list_len(r, "unstaged") +
                                    list_len(r, "untracked") + list_len(r, "conflicted")));
            events_publish(w->h, EVENT_GIT_CHANGED, p);
        }
    }
    /* One status runs at a time: folders that changed meanwhile, this one
     * or others held back by it, get their turn now. */
    for (size_t i = 0; i < w->n_folders; i++)
        if (w->folders[i].dirty && !w->folders[i].timer && !w->folders[i].running)
            schedule(w, i);
}

static void run_now(struct watch *w, size_t i)
{
    struct wfolder *f = &w->folders[i];
    f->timer = NULL;
    if (f->running || w->h->watch_job) {
        /* One status at a time: the next runs when this one is done. */
        f->dirty = 1;
        return;
    }
    struct status_job *sj = calloc(1, sizeof(*sj));
    json_object *args = json_object_new_object();
    json_object_object_add(args, "folder", json_object_new_string(f->name));
    if (!sj) {
        json_object_put(args);
        return;
    }
    sj->w = w;
    sj->folder = i;
    f->dirty = 0;
    f->running = 1;
    f->last_run_ms = helper_mono_ms();
    w->h->watch_job = sj;
    if (calls_run_internal(w->h, "git.status", args, status_done, sj) < 0) {
        f->running = 0;
        f->dirty = 1;
        w->h->watch_job = NULL;
        free(sj);
    }
}

static void run_status(void *arg)
{
    struct wfolder *f = arg;
    run_now(f->w, f->index);
}

static void schedule(struct watch *w, size_t i)
{
    struct wfolder *f = &w->folders[i];
    int64_t now = helper_mono_ms();
    if (!f->dirty)
        f->first_change_ms = now;
    f->dirty = 1;
    if (f->running)
        return; /* status_done reschedules */
    /* A burst is one run: wait until the folder has been quiet for
     * WATCH_QUIET_MS, but no more than WATCH_MAX_WAIT_MS after its first
     * change, and never sooner than a second after the last run. */
    int64_t at = now + WATCH_QUIET_MS;
    if (at > f->first_change_ms + WATCH_MAX_WAIT_MS)
        at = f->first_change_ms + WATCH_MAX_WAIT_MS;
    if (at < f->last_run_ms + WATCH_DEBOUNCE_MS)
        at = f->last_run_ms + WATCH_DEBOUNCE_MS;
    if (f->timer) {
        if (at <= f->timer_at)
            return;
        w->h->task_loop.timer_stop(w->h, f->timer);
    }
    f->timer_at = at;
    f->timer = w->h->task_loop.timer_start(w->h, at - now, run_status, f);
}

static int is_repo(const char *path)
{
    char git[PATH_MAX];
    struct stat st;
    snprintf(git, sizeof(git), "%s/.git", path);
    return stat(git, &st) == 0 && S_ISDIR(st.st_mode);
}

struct watch *watch_start(struct helper *h)
{
    struct watch *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->h = h;
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    w->folders = calloc(h->ws.n_folders ? h->ws.n_folders : 1, sizeof(*w->folders));
    if (w->fd < 0 || !w->folders) {
        log_msg(&h->log, LOG_WARN, "cannot watch repositories (%s): no git.changed events",
                strerror(errno));
        if (w->fd >= 0)
            close(w->fd);
        free(w->folders);
        free(w);
        return NULL;
    }
    for (size_t i = 0; i < h->ws.n_folders; i++) {
        const struct workspace_folder *wf = &h->ws.folders[i];
        struct wfolder *f = &w->folders[w->n_folders];
        if (!is_repo(wf->path))
            continue;
        f->w = w;
        f->index = w->n_folders;
        f->name = strdup(wf->name);
        f->path = strdup(wf->path);
        char git[PATH_MAX];
        snprintf(git, sizeof(git), "%s/.git", wf->path);
        add_git_dir(w, w->n_folders, git);
        add_tree(w, w->n_folders, wf->path, 0);
        w->n_folders++;
    }
    if (w->n_folders == 0) {
        close(w->fd);
        free(w->folders);
        free(w->dirs);
        free(w);
        return NULL;
    }
    w->fd_watch = h->task_loop.watch_fd(h, w->fd, on_inotify, w);
    if (!w->fd_watch) {
        close(w->fd);
        w->fd = -1;
    }
    /* The first status is the baseline: it publishes nothing. */
    for (size_t i = 0; i < w->n_folders; i++)
        schedule(w, i);
    log_msg(&h->log, LOG_DEBUG, "watching %zu repositories (%zu folders)", w->n_folders, w->n_dirs);
    return w;
}

void watch_stop(struct watch *w)
{
    if (!w)
        return;
    struct helper *h = w->h;
    if (h->watch_job) {
        ((struct status_job *)h->watch_job)->cancelled = 1;
        h->watch_job = NULL;
    }
    for (size_t i = 0; i < w->n_folders; i++) {
        if (w->folders[i].timer)
            h->task_loop.timer_stop(h, w->folders[i].timer);
        free(w->folders[i].name);
        free(w->folders[i].path);
        free(w->folders[i].fingerprint);
    }
    if (w->fd_watch)
        loopio_close_now(w->fd_watch);
    for (size_t i = 0; i < w->n_dirs; i++)
        free(w->dirs[i].path);
    free(w->dirs);
    free(w->folders);
    free(w);
}

void watch_restart(struct helper *h)
{
    watch_stop(h->watch);
    h->watch = watch_start(h);
}
