/*
 * gitwatch_watch: inotify, debounce and comparison for git.changed, and the
 * changed paths the status cache looks at (see gitwatch.h).
 */
#include "app/gitwatch_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "server/loop.h"
#include "workspace/worker.h"
#include "workspace/workspace.h"

/* inotify watches are a per-user kernel resource: take at most half of
 * fs.inotify.max_user_watches, within these bounds. */
#define WATCH_MIN_DIRS 1024
#define WATCH_MAX_DIRS 65536
/* Changed paths kept per folder; past this, a full status is as cheap. */
#define WATCH_MAX_CHANGED 512
#define WATCH_DEBOUNCE_MS 1000
#define WATCH_QUIET_MS    300
#define WATCH_MAX_WAIT_MS 2000

/* IN_MODIFY too: a file kept open while written (a log) never closes. */
#define TREE_MASK                                                                                  \
    (IN_CLOSE_WRITE | IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |            \
     IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct wdir {
    int wd;
    int folder; /* index into watch.folders */
    int in_git; /* below the folder's .git directory */
    char *path;
};

struct wfolder {
    struct gitwatch *w;
    size_t index;
    char *name;
    char *path;
    size_t path_len;
    char *fingerprint; /* of the last status seen; NULL before the first */
    /* What changed since the last gitwatch_take_changes: these work-tree paths
     * (relative, each a file or a directory), or anything (all_changed). */
    char **changed;
    size_t n_changed, cap_changed;
    int all_changed;
    int index_changed; /* .git/index rewritten (perhaps with the same entries) */
    int local;         /* on a local file system, where inotify sees every change */
    int dirty, running, have_baseline;
    int64_t last_run_ms;
    int64_t first_change_ms; /* of the changes not yet looked at */
    int64_t timer_at;
    struct loop_timer *timer; /* armed while a run is scheduled */
};

/* The watched directories, sorted by wd. Filled by a worker thread at
 * first (struct walk_job), then owned by the loop. */
struct dirtab {
    int fd; /* the inotify instance */
    struct wdir *dirs;
    size_t n, cap, max;
    int capped; /* a directory was left out: max reached */
};

struct walk_job;

struct status_job;

struct gitwatch {
    struct gitwatch_env env;
    struct status_job *job; /* the one status run in flight */
    int fd;
    struct loop_fd *fd_watch;
    struct dirtab tab;
    int capped_logged;
    struct walk_job *walk; /* the first walk, while it runs */
    /* Events read while the walk runs, replayed once its table is in. */
    char *early;
    size_t n_early;
    int early_lost;
    struct status_cache *cache;
    struct wfolder *folders;
    size_t n_folders;
};

static void schedule(struct gitwatch *w, size_t i);

/* Index of wd in t->dirs, or where it would go (*found 0). */
static size_t wd_pos(const struct dirtab *t, int wd, int *found)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->dirs[mid].wd < wd)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < t->n && t->dirs[lo].wd == wd;
    return lo;
}

static int add_dir(struct dirtab *t, size_t folder, const char *path, int in_git)
{
    if (t->n >= t->max) {
        t->capped = 1;
        return -1;
    }
    int wd = inotify_add_watch(t->fd, path, in_git ? TREE_MASK & ~IN_MODIFY : TREE_MASK);
    if (wd < 0)
        return -1;
    int found;
    size_t at = wd_pos(t, wd, &found);
    if (found)
        return 0; /* the same directory reached twice (bind mounts) */
    char *copy = strdup(path);
    if (!copy)
        return -1;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct wdir *nd = realloc(t->dirs, cap * sizeof(*nd));
        if (!nd) {
            free(copy);
            return -1;
        }
        t->dirs = nd;
        t->cap = cap;
    }
    memmove(&t->dirs[at + 1], &t->dirs[at], (t->n - at) * sizeof(*t->dirs));
    t->dirs[at] = (struct wdir){.wd = wd, .folder = (int)folder, .in_git = in_git, .path = copy};
    t->n++;
    return 0;
}

static void remove_at(struct dirtab *t, size_t i)
{
    free(t->dirs[i].path);
    memmove(&t->dirs[i], &t->dirs[i + 1], (t->n - i - 1) * sizeof(*t->dirs));
    t->n--;
}

static void tab_free(struct dirtab *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->dirs[i].path);
    free(t->dirs);
    t->dirs = NULL;
    t->n = t->cap = 0;
}

/* A directory moved away: its watches would report changes under its old
 * name, so they go (add_tree watches it again where it lands). */
static void drop_tree(struct dirtab *t, const char *path)
{
    size_t len = strlen(path);
    for (size_t i = 0; i < t->n;) {
        const char *p = t->dirs[i].path;
        if (strncmp(p, path, len) == 0 && (p[len] == '\0' || p[len] == '/')) {
            inotify_rm_watch(t->fd, t->dirs[i].wd);
            remove_at(t, i);
        } else {
            i++;
        }
    }
}

/* Adds `path` and the directories below it; skips .git (watched apart)
 * and symlinks (they may lead anywhere). */
static void add_tree(struct dirtab *t, size_t folder, const char *path, int depth, int in_git)
{
    if (depth > 64 || add_dir(t, folder, path, in_git) < 0)
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
            add_tree(t, folder, sub, depth + 1, in_git);
    }
    closedir(d);
}

static void add_git_dir(struct dirtab *t, size_t folder, const char *git)
{
    char refs[PATH_MAX];
    add_dir(t, folder, git, 1); /* HEAD, index, packed-refs, config */
    if (snprintf(refs, sizeof(refs), "%s/refs", git) < (int)sizeof(refs))
        add_tree(t, folder, refs, 0, 1); /* heads, remotes, tags */
    if (snprintf(refs, sizeof(refs), "%s/info", git) < (int)sizeof(refs))
        add_dir(t, folder, refs, 1); /* exclude */
}

static void log_capped(struct gitwatch *w)
{
    if (!w->tab.capped || w->capped_logged)
        return;
    w->capped_logged = 1;
    log_msg(w->env.log, LOG_WARN,
            "watching %zu folders already: deeper changes are seen through git's index and refs "
            "only, and git.status is not kept between calls",
            w->tab.max);
}

static struct wdir *find_wd(struct gitwatch *w, int wd)
{
    int found;
    size_t at = wd_pos(&w->tab, wd, &found);
    return found ? &w->tab.dirs[at] : NULL;
}

static void free_changed(struct wfolder *f)
{
    for (size_t i = 0; i < f->n_changed; i++)
        free(f->changed[i]);
    free(f->changed);
    f->changed = NULL;
    f->n_changed = f->cap_changed = 0;
}

static void mark_all(struct wfolder *f)
{
    free_changed(f);
    f->all_changed = 1;
}

/* Records that `name` in directory `dir` (absolute; name NULL: the
 * directory itself) changed. */
static void note_change(struct wfolder *f, const char *dir, const char *name)
{
    if (f->all_changed)
        return;
    const char *rel = dir[f->path_len] == '/' ? dir + f->path_len + 1 : "";
    char path[PATH_MAX];
    int n = name ? snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] ? "/" : "", name)
                 : snprintf(path, sizeof(path), "%s", rel);
    if (n <= 0 || n >= (int)sizeof(path)) {
        mark_all(f); /* the folder itself, or a name too long to keep */
        return;
    }
    for (size_t i = 0; i < f->n_changed; i++) {
        size_t len = strlen(f->changed[i]);
        if (strncmp(path, f->changed[i], len) == 0 && (path[len] == '\0' || path[len] == '/'))
            return; /* already covered */
    }
    if (f->n_changed == WATCH_MAX_CHANGED) {
        mark_all(f);
        return;
    }
    if (f->n_changed == f->cap_changed) {
        size_t cap = f->cap_changed ? f->cap_changed * 2 : 16;
        char **nc = realloc(f->changed, cap * sizeof(*nc));
        if (!nc) {
            mark_all(f);
            return;
        }
        f->changed = nc;
        f->cap_changed = cap;
    }
    if (!(f->changed[f->n_changed] = strdup(path))) {
        mark_all(f);
        return;
    }
    f->n_changed++;
}

/* Names in the work tree whose change can alter the status of any path. */
static int changes_everything(const char *name)
{
    return !strcmp(name, ".gitignore") || !strcmp(name, ".gitattributes") ||
           !strcmp(name, ".gitmodules");
}

static void on_event(struct gitwatch *w, const struct inotify_event *e)
{
    if (e->mask & IN_Q_OVERFLOW) {
        /* Events were lost: nothing is known any more. */
        for (size_t i = 0; i < w->n_folders; i++) {
            mark_all(&w->folders[i]);
            schedule(w, i);
        }
        return;
    }
    struct wdir *d = find_wd(w, e->wd);
    if (!d)
        return;
    size_t folder = (size_t)d->folder;
    struct wfolder *f = &w->folders[folder];
    if (e->mask & IN_IGNORED) {
        /* The directory is gone (its parent reported it) or unwatched. */
        remove_at(&w->tab, (size_t)(d - w->tab.dirs));
        return;
    }
    if (d->in_git) {
        /* A lock file appearing is git at work, not a change yet. */
        if (e->len && strstr(e->name, ".lock"))
            return;
        if (e->len && !strcmp(e->name, "index") && d->path[f->path_len + 5] == '\0')
            f->index_changed = 1; /* `git status` in a terminal refreshes it */
        else
            mark_all(f); /* HEAD, a ref, the config, the excludes */
        schedule(w, folder);
        return;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", d->path); /* d may move below */
    if (!e->len) {
        /* The directory itself was deleted or moved. */
        note_change(f, dir, NULL);
    } else if (changes_everything(e->name)) {
        mark_all(f);
    } else if (!strcmp(e->name, ".git")) {
        note_change(f, dir, NULL); /* a nested repository: its folder lists differently */
    } else {
        note_change(f, dir, e->name);
        char sub[PATH_MAX];
        if ((e->mask & IN_ISDIR) &&
            snprintf(sub, sizeof(sub), "%s/%s", dir, e->name) < (int)sizeof(sub)) {
            if (e->mask & IN_MOVED_FROM)
                drop_tree(&w->tab, sub);
            if (e->mask & (IN_CREATE | IN_MOVED_TO)) {
                add_tree(&w->tab, folder, sub, 0, 0);
                log_capped(w);
            }
        }
    }
    schedule(w, folder);
}

/* Events read while the first walk runs are kept (up to this much) and
 * replayed when its table is in: a directory created meanwhile must still
 * be watched. Past it, what was missed is unknown. */
#define WATCH_EARLY_MAX (1024 * 1024)

static void keep_early(struct gitwatch *w, const char *buf, size_t n)
{
    if (w->early_lost)
        return;
    char *nb = w->n_early + n <= WATCH_EARLY_MAX ? realloc(w->early, w->n_early + n) : NULL;
    if (!nb) {
        w->early_lost = 1;
        return;
    }
    memcpy(nb + w->n_early, buf, n);
    w->early = nb;
    w->n_early += n;
}

static void on_events(struct gitwatch *w, char *buf, size_t n)
{
    for (char *p = buf; p < buf + n;) {
        struct inotify_event *e = (struct inotify_event *)p;
        p += sizeof(*e) + e->len;
        on_event(w, e);
    }
}

static void on_inotify(void *arg)
{
    struct gitwatch *w = arg;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof(buf));
        if (n <= 0)
            return;
        if (w->walk) {
            keep_early(w, buf, (size_t)n);
            continue;
        }
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            p += sizeof(*e) + e->len;
            on_event(w, e);
        }
    }
}

static void on_inotify_events(void *arg, unsigned events)
{
    (void)events;
    on_inotify(arg);
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
    struct gitwatch *w;
    size_t folder;
    int cancelled; /* the watch stopped while the job ran */
};

static void status_done(void *ud, enum cmd_status st, struct cmd_result *res)
{
    struct status_job *sj = ud;
    struct gitwatch *w = sj->w;
    if (sj->cancelled || !w) {
        free(sj);
        return;
    }
    struct wfolder *f = &w->folders[sj->folder];
    f->running = 0;
    w->job = NULL;
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
            w->env.publish(w->env.publish_ud, p);
        }
    }
    /* One status runs at a time: folders that changed meanwhile, this one
     * or others held back by it, get their turn now. */
    for (size_t i = 0; i < w->n_folders; i++)
        if (w->folders[i].dirty && !loop_timer_armed(w->folders[i].timer) && !w->folders[i].running)
            schedule(w, i);
}

static void run_now(struct gitwatch *w, size_t i)
{
    struct wfolder *f = &w->folders[i];
    if (f->running || w->job) {
        /* One status at a time: the next runs when this one is done. */
        f->dirty = 1;
        return;
    }
    struct status_job *sj = calloc(1, sizeof(*sj));
    if (!sj)
        return;
    sj->w = w;
    sj->folder = i;
    f->dirty = 0;
    f->running = 1;
    f->last_run_ms = clock_mono_ms();
    w->job = sj;
    /* status_done may run before this returns (nothing changed). */
    if (status_cache_get(w->cache, i, status_done, sj) < 0) {
        f->running = 0;
        f->dirty = 1;
        w->job = NULL;
        free(sj);
    }
}

static void run_status(void *arg)
{
    struct wfolder *f = arg;
    run_now(f->w, f->index);
}

static void schedule(struct gitwatch *w, size_t i)
{
    struct wfolder *f = &w->folders[i];
    int64_t now = clock_mono_ms();
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
    if (loop_timer_armed(f->timer) && at <= f->timer_at)
        return;
    f->timer_at = at;
    loop_timer_arm(f->timer, at - now);
}

/* inotify sees changes made through this machine's kernel only: not those
 * made on a file server by others. */
static int is_local(const char *path)
{
    struct statfs sf;
    if (statfs(path, &sf) != 0)
        return 0;
    switch ((unsigned long)sf.f_type) {
    case 0x6969UL:     /* NFS */
    case 0x517BUL:     /* SMB */
    case 0xFF534D42UL: /* CIFS */
    case 0xFE534D42UL: /* SMB2 */
    case 0x65735546UL: /* FUSE (sshfs and friends) */
    case 0x01021997UL: /* 9P */
    case 0x00C36400UL: /* Ceph */
    case 0x5346414FUL: /* AFS */
    case 0x73757245UL: /* Coda */
        return 0;
    default:
        return 1;
    }
}

static size_t max_dirs(void)
{
    unsigned long max = 0;
    FILE *fp = fopen("/proc/sys/fs/inotify/max_user_watches", "re");
    if (fp) {
        if (fscanf(fp, "%lu", &max) != 1)
            max = 0;
        fclose(fp);
    }
    max /= 2;
    return max < WATCH_MIN_DIRS ? WATCH_MIN_DIRS : max > WATCH_MAX_DIRS ? WATCH_MAX_DIRS : max;
}

static int is_repo(const char *path)
{
    char git[PATH_MAX];
    struct stat st;
    snprintf(git, sizeof(git), "%s/.git", path);
    return stat(git, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The first walk of every folder's tree, on a worker thread: thousands of
 * inotify_add_watch calls and directory reads would hold the loop (140 ms
 * for 5,000 folders). It works on its own table and its own descriptor of
 * the inotify instance, so the watch may stop meanwhile. */
struct walk_job {
    struct worker_job base;
    struct gitwatch *w; /* NULL once the watch stopped */
    struct dirtab tab;
    char **paths; /* each folder's path */
    size_t n_paths;
};

static void walk_run(struct worker_thread *t, struct worker_job *base)
{
    struct walk_job *j = (struct walk_job *)base;
    (void)t;
    for (size_t i = 0; i < j->n_paths; i++) {
        char git[PATH_MAX];
        snprintf(git, sizeof(git), "%s/.git", j->paths[i]);
        add_git_dir(&j->tab, i, git);
        add_tree(&j->tab, i, j->paths[i], 0, 0);
    }
}

static void walk_free(struct walk_job *j)
{
    tab_free(&j->tab);
    if (j->tab.fd >= 0)
        close(j->tab.fd);
    for (size_t i = 0; i < j->n_paths; i++)
        free(j->paths[i]);
    free(j->paths);
    free(j);
}

/* The table is in: changes from now on are known by path. */
static void walk_finished(struct gitwatch *w)
{
    if (w->early_lost) {
        /* Too much happened to know which new directories need a watch. */
        w->tab.capped = 1;
        log_msg(w->env.log, LOG_WARN,
                "too many changes while the repositories were first watched: git.status is not "
                "kept between calls");
        w->capped_logged = 1;
    }
    log_capped(w);
    on_events(w, w->early, w->n_early);
    free(w->early);
    w->early = NULL;
    w->n_early = 0;
    /* The first status is the baseline: it publishes nothing. */
    for (size_t i = 0; i < w->n_folders; i++) {
        mark_all(&w->folders[i]);
        schedule(w, i);
    }
    log_msg(w->env.log, LOG_DEBUG, "watching %zu repositories (%zu folders)", w->n_folders,
            w->tab.n);
}

static void walk_done(struct worker_job *base, int cancelled)
{
    struct walk_job *j = (struct walk_job *)base;
    struct gitwatch *w = j->w;
    if (w) {
        w->walk = NULL;
        if (!cancelled) {
            w->tab.dirs = j->tab.dirs;
            w->tab.n = j->tab.n;
            w->tab.cap = j->tab.cap;
            w->tab.capped = j->tab.capped;
            j->tab.dirs = NULL;
            j->tab.n = j->tab.cap = 0;
        } else {
            w->tab.capped = 1; /* nothing is watched below the roots */
        }
        walk_finished(w);
    }
    walk_free(j);
}

/* Starts the first walk; on the loop when no worker can take it. */
static void start_walk(struct gitwatch *w)
{
    struct walk_job *j = calloc(1, sizeof(*j));
    if (j) {
        j->base.run = walk_run;
        j->base.done = walk_done;
        j->w = w;
        j->tab.fd = fcntl(w->fd, F_DUPFD_CLOEXEC, 0);
        j->tab.max = w->tab.max;
        j->paths = calloc(w->n_folders, sizeof(*j->paths));
        for (size_t i = 0; j->paths && i < w->n_folders; i++)
            if ((j->paths[i] = strdup(w->folders[i].path)))
                j->n_paths++;
    }
    if (j && j->tab.fd >= 0 && j->n_paths == w->n_folders &&
        worker_pool_submit(w->env.pool, &j->base) == 0) {
        w->walk = j;
        return;
    }
    if (j)
        walk_free(j);
    for (size_t i = 0; i < w->n_folders; i++) {
        char git[PATH_MAX];
        snprintf(git, sizeof(git), "%s/.git", w->folders[i].path);
        add_git_dir(&w->tab, i, git);
        add_tree(&w->tab, i, w->folders[i].path, 0, 0);
    }
    walk_finished(w);
}

struct gitwatch *gitwatch_start(const struct gitwatch_env *env)
{
    const struct workspace *ws = env->ws;
    struct gitwatch *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->env = *env;
    w->tab.max = max_dirs();
    w->fd = w->tab.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    w->folders = calloc(ws->n_folders ? ws->n_folders : 1, sizeof(*w->folders));
    if (w->fd < 0 || !w->folders) {
        log_msg(env->log, LOG_WARN, "cannot watch repositories (%s): no git.changed events",
                strerror(errno));
        if (w->fd >= 0)
            close(w->fd);
        free(w->folders);
        free(w);
        return NULL;
    }
    for (size_t i = 0; i < ws->n_folders; i++) {
        const struct workspace_folder *wf = &ws->folders[i];
        struct wfolder *f = &w->folders[w->n_folders];
        if (!is_repo(wf->path))
            continue;
        f->w = w;
        f->index = w->n_folders;
        f->name = strdup(wf->name);
        f->path = strdup(wf->path);
        f->path_len = strlen(wf->path);
        f->all_changed = 1;
        f->local = is_local(wf->path);
        f->timer = loop_timer_new(env->loop, run_status, f);
        w->n_folders++;
    }
    char **names = calloc(w->n_folders ? w->n_folders : 1, sizeof(*names));
    for (size_t i = 0; names && i < w->n_folders; i++)
        names[i] = w->folders[i].name ? w->folders[i].name : "";
    if (names && w->n_folders)
        w->cache = status_cache_new(w, w->n_folders, names);
    free(names);
    int ok = w->n_folders > 0 && w->cache;
    for (size_t i = 0; ok && i < w->n_folders; i++)
        ok = w->folders[i].name && w->folders[i].path && w->folders[i].timer;
    if (!ok) {
        status_cache_free(w->cache);
        for (size_t i = 0; i < w->n_folders; i++) {
            free(w->folders[i].name);
            free(w->folders[i].path);
            loop_timer_free(w->folders[i].timer);
        }
        close(w->fd);
        free(w->folders);
        free(w);
        return NULL;
    }
    w->fd_watch = loop_fd_watch(env->loop, w->fd, on_inotify_events, w);
    if (!w->fd_watch) {
        close(w->fd);
        w->fd = w->tab.fd = -1;
        for (size_t i = 0; i < w->n_folders; i++)
            schedule(w, i);
        return w;
    }
    start_walk(w);
    return w;
}

void gitwatch_stop(struct gitwatch *w)
{
    if (!w)
        return;
    if (w->job) {
        w->job->cancelled = 1;
        w->job = NULL;
    }
    status_cache_free(w->cache);
    if (w->walk)
        w->walk->w = NULL; /* it finishes on its own and frees itself */
    free(w->early);
    for (size_t i = 0; i < w->n_folders; i++) {
        loop_timer_free(w->folders[i].timer);
        free(w->folders[i].name);
        free(w->folders[i].path);
        free(w->folders[i].fingerprint);
        free_changed(&w->folders[i]);
    }
    if (w->fd_watch)
        loop_fd_close_now(w->fd_watch);
    tab_free(&w->tab);
    free(w->folders);
    free(w);
}

const struct gitwatch_env *gitwatch_env(const struct gitwatch *w)
{
    return &w->env;
}

void gitwatch_sync(struct gitwatch *w)
{
    if (w && w->fd_watch)
        on_inotify(w);
}

int gitwatch_folder_for(const struct gitwatch *w, json_object *args)
{
    json_object *folder = NULL;
    if (!w || !w->fd_watch || w->walk || w->tab.capped)
        return -1;
    /* Arguments git_ctx must check itself are not taken here. */
    if (args && !json_object_is_type(args, json_type_object))
        return -1;
    if (args && json_object_object_get_ex(args, "folder", &folder) && folder &&
        !json_object_is_type(folder, json_type_string))
        return -1;
    const char *name = folder ? json_object_get_string(folder) : NULL;
    const struct workspace *ws = w->env.ws;
    /* git_ctx picks the first folder that is a repository when none is
     * named: only when that is folder 0 is it surely a watched one. */
    const char *path = NULL;
    for (size_t i = 0; i < ws->n_folders && !path; i++)
        if (name ? strcmp(ws->folders[i].name, name) == 0 : i == 0)
            path = ws->folders[i].path;
    for (size_t i = 0; path && i < w->n_folders; i++)
        if (strcmp(w->folders[i].path, path) == 0)
            return w->folders[i].local ? (int)i : -1;
    return -1;
}

int gitwatch_status(struct gitwatch *w, size_t i, gitwatch_status_cb cb, void *ud)
{
    return status_cache_get(w->cache, i, cb, ud);
}
int gitwatch_has_changes(const struct gitwatch *w, size_t i)
{
    const struct wfolder *f = &w->folders[i];
    return w->tab.capped || w->walk || !f->local || !w->fd_watch || f->all_changed ||
           f->index_changed || f->n_changed > 0;
}

int gitwatch_take_changes(struct gitwatch *w, size_t i, char ***paths, size_t *n,
                          int *index_changed)
{
    struct wfolder *f = &w->folders[i];
    int all = w->tab.capped || w->walk || !f->local || !w->fd_watch || f->all_changed;
    *paths = NULL;
    *n = 0;
    *index_changed = f->index_changed;
    f->index_changed = 0;
    if (all) {
        free_changed(f);
    } else {
        *paths = f->changed;
        *n = f->n_changed;
        f->changed = NULL;
        f->n_changed = f->cap_changed = 0;
    }
    f->all_changed = 0;
    return all;
}
