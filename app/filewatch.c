/*
 * filewatch: inotify over the workspace folders -> file.changed (see
 * filewatch.h). Directories are added through folder.c's confined walk
 * (folder_resolve) and watched through /proc/self/fd, so a symbolic link
 * swapped in while the tree is walked never makes the watch reach outside.
 */
#include "app/filewatch.h"

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

#include "core/log.h"
#include "server/loop.h"
#include "workspace/folder.h"
#include "workspace/fs_write.h"
#include "workspace/utf8.h"
#include "workspace/workspace.h"

#define WATCH_MIN_DIRS 256
#define WATCH_MAX_DIRS 16384
/* Directories added per turn of the loop while the trees are walked. */
#define WALK_PER_TURN 128

#define DIR_MASK                                                                                   \
    (IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |            \
     IN_ONLYDIR | IN_EXCL_UNLINK)

enum change { CH_NONE = 0, CH_CREATED, CH_CHANGED, CH_DELETED };
static const char *const change_names[] = {"", "created", "changed", "deleted"};

struct fdir {
    int wd;
    size_t folder;
    char *rel; /* folder-relative; "" for the folder itself */
};

struct pending {
    size_t folder;
    char *rel;
    enum change ch;
};

struct walk_item {
    size_t folder;
    char *rel;
};

struct filewatch {
    struct filewatch_env env;
    struct workspace_folder *folders; /* a copy (names, paths, private lists) */
    size_t n_folders;
    int fd;
    struct loop_fd *fd_watch;
    struct fdir *dirs; /* sorted by wd */
    size_t n_dirs, cap_dirs, max_dirs;
    int capped_logged;
    struct walk_item *walk; /* directories still to add (a stack) */
    size_t n_walk, cap_walk;
    struct loop_timer *walk_timer;
    struct pending batch[FILEWATCH_MAX_BATCH];
    size_t n_batch;
    unsigned char *overflow; /* per folder: too much changed this window */
    struct loop_timer *flush_timer;
};

static size_t max_watches(void)
{
    unsigned long max = 0;
    FILE *fp = fopen("/proc/sys/fs/inotify/max_user_watches", "re");
    if (fp) {
        if (fscanf(fp, "%lu", &max) != 1)
            max = 0;
        fclose(fp);
    }
    max /= 4;
    return max < WATCH_MIN_DIRS ? WATCH_MIN_DIRS : max > WATCH_MAX_DIRS ? WATCH_MAX_DIRS : max;
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    if (a)
        p[a++] = '/';
    memcpy(p + a, name, b + 1);
    return p;
}

/* ---- the table of watched directories ---------------------------------- */

static size_t wd_pos(const struct filewatch *fw, int wd, int *found)
{
    size_t lo = 0, hi = fw->n_dirs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (fw->dirs[mid].wd < wd)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < fw->n_dirs && fw->dirs[lo].wd == wd;
    return lo;
}

static void remove_dir_at(struct filewatch *fw, size_t i)
{
    free(fw->dirs[i].rel);
    memmove(&fw->dirs[i], &fw->dirs[i + 1], (fw->n_dirs - i - 1) * sizeof(*fw->dirs));
    fw->n_dirs--;
}

/* A directory moved away: its watches would report under its old name. */
static void drop_tree(struct filewatch *fw, size_t folder, const char *rel)
{
    size_t len = strlen(rel);
    for (size_t i = 0; i < fw->n_dirs;) {
        const char *p = fw->dirs[i].rel;
        if (fw->dirs[i].folder == folder && strncmp(p, rel, len) == 0 &&
            (p[len] == '\0' || p[len] == '/')) {
            inotify_rm_watch(fw->fd, fw->dirs[i].wd);
            remove_dir_at(fw, i);
        } else {
            i++;
        }
    }
}

static void log_capped(struct filewatch *fw)
{
    if (fw->capped_logged)
        return;
    fw->capped_logged = 1;
    log_msg(fw->env.log, LOG_WARN,
            "watching %zu folders for file.changed already: changes deeper in the workspace are "
            "not reported",
            fw->max_dirs);
}

static void walk_push(struct filewatch *fw, size_t folder, const char *dir, const char *name)
{
    if (fw->n_walk + fw->n_dirs >= fw->max_dirs) {
        log_capped(fw);
        return;
    }
    if (fw->n_walk == fw->cap_walk) {
        size_t cap = fw->cap_walk ? fw->cap_walk * 2 : 64;
        struct walk_item *n = realloc(fw->walk, cap * sizeof(*n));
        if (!n)
            return;
        fw->walk = n;
        fw->cap_walk = cap;
    }
    char *rel = name ? join(dir, name) : strdup(dir);
    if (!rel)
        return;
    fw->walk[fw->n_walk++] = (struct walk_item){folder, rel};
    if (!loop_timer_armed(fw->walk_timer))
        loop_timer_arm(fw->walk_timer, 0);
}

/* Watches one directory (reached by the confined walk) and queues the
 * directories in it. */
static void add_dir(struct filewatch *fw, size_t folder, const char *rel)
{
    struct folder_target t;
    char proc[64];
    if (fw->n_dirs >= fw->max_dirs) {
        log_capped(fw);
        return;
    }
    if (folder_resolve(&fw->folders[folder], rel[0] ? rel : ".", &t) != FOLDER_OK)
        return; /* gone, private, or leads elsewhere */
    if (t.parent >= 0) {
        folder_target_close(&t);
        return;
    }
    /* The magic link names exactly the directory the walk reached (so no
     * IN_DONT_FOLLOW: the link must be followed). */
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", t.fd);
    int wd = inotify_add_watch(fw->fd, proc, DIR_MASK);
    int found;
    size_t at = wd >= 0 ? wd_pos(fw, wd, &found) : 0;
    if (wd < 0 || found) { /* the same directory twice (a bind mount, nested folders) */
        folder_target_close(&t);
        return;
    }
    char *copy = strdup(rel);
    if (fw->n_dirs == fw->cap_dirs) {
        size_t cap = fw->cap_dirs ? fw->cap_dirs * 2 : 64;
        struct fdir *n = copy ? realloc(fw->dirs, cap * sizeof(*n)) : NULL;
        if (n) {
            fw->dirs = n;
            fw->cap_dirs = cap;
        }
    }
    if (!copy || fw->n_dirs == fw->cap_dirs) {
        free(copy);
        inotify_rm_watch(fw->fd, wd);
        folder_target_close(&t);
        return;
    }
    memmove(&fw->dirs[at + 1], &fw->dirs[at], (fw->n_dirs - at) * sizeof(*fw->dirs));
    fw->dirs[at] = (struct fdir){.wd = wd, .folder = folder, .rel = copy};
    fw->n_dirs++;
    int dfd = openat(t.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d && dfd >= 0)
        close(dfd);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        struct stat st;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, ".git"))
            continue;
        if (e->d_type == DT_DIR ||
            (e->d_type == DT_UNKNOWN &&
             fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)))
            walk_push(fw, folder, rel, e->d_name);
    }
    if (d)
        closedir(d);
    folder_target_close(&t);
}

static void walk_step(void *arg)
{
    struct filewatch *fw = arg;
    for (int i = 0; i < WALK_PER_TURN && fw->n_walk; i++) {
        struct walk_item it = fw->walk[--fw->n_walk];
        add_dir(fw, it.folder, it.rel);
        free(it.rel);
    }
    if (fw->n_walk)
        loop_timer_arm(fw->walk_timer, 0);
}

/* ---- coalescing and publishing ----------------------------------------- */

static enum change merge(enum change old, enum change now)
{
    switch (old) {
    case CH_NONE:
        return now;
    case CH_CREATED:
        return now == CH_DELETED ? CH_NONE : CH_CREATED;
    case CH_CHANGED:
        return now == CH_DELETED ? CH_DELETED : CH_CHANGED;
    case CH_DELETED:
        return now == CH_DELETED ? CH_DELETED : CH_CHANGED;
    }
    return now;
}

static void pend(struct filewatch *fw, size_t folder, const char *rel, enum change ch, int exact)
{
    for (size_t i = 0; i < fw->n_batch; i++) {
        struct pending *p = &fw->batch[i];
        if (p->folder == folder && strcmp(p->rel, rel) == 0) {
            p->ch = exact ? ch : merge(p->ch, ch);
            return;
        }
    }
    if (!loop_timer_armed(fw->flush_timer))
        loop_timer_arm(fw->flush_timer, FILEWATCH_WINDOW_MS);
    char *copy = fw->n_batch < FILEWATCH_MAX_BATCH ? strdup(rel) : NULL;
    if (!copy) {
        fw->overflow[folder] = 1;
        return;
    }
    fw->batch[fw->n_batch++] = (struct pending){folder, copy, ch};
}

/* The helper's own files are never named: by path (a private path or
 * below one) or, when it exists, by device and inode. */
static int is_private(const struct workspace_folder *f, const struct folder_private_set *set,
                      const char *rel)
{
    char abs[PATH_MAX];
    struct stat st;
    if ((size_t)snprintf(abs, sizeof(abs), "%s/%s", f->path, rel) >= sizeof(abs))
        return 1;
    for (size_t i = 0; f->priv && i < f->priv->n; i++)
        if (folder_path_inside(f->priv->paths[i], abs))
            return 1;
    return lstat(abs, &st) == 0 && folder_private_has(set, &st);
}

static void publish(struct filewatch *fw, size_t folder, const char *rel, const char *change,
                    int overflow)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "folder", json_object_new_string(fw->folders[folder].name));
    json_object_object_add(p, "path", utf8_json_string(rel));
    json_object_object_add(p, "change", json_object_new_string(change));
    if (overflow)
        json_object_object_add(p, "overflow", json_object_new_boolean(1));
    fw->env.publish(fw->env.publish_ud, p);
}

static void flush(void *arg)
{
    struct filewatch *fw = arg;
    size_t n = fw->n_batch;
    fw->n_batch = 0; /* publishing may reach us again: start a new window */
    struct pending batch[FILEWATCH_MAX_BATCH];
    memcpy(batch, fw->batch, n * sizeof(*batch));
    for (size_t i = 0; i < n; i++) {
        const struct workspace_folder *f = &fw->folders[batch[i].folder];
        struct folder_private_set set;
        folder_private_load(f, &set);
        if (batch[i].ch != CH_NONE && !fw->overflow[batch[i].folder] &&
            !is_private(f, &set, batch[i].rel))
            publish(fw, batch[i].folder, batch[i].rel, change_names[batch[i].ch], 0);
        free(batch[i].rel);
    }
    for (size_t i = 0; i < fw->n_folders; i++)
        if (fw->overflow[i]) {
            fw->overflow[i] = 0;
            publish(fw, i, ".", "changed", 1);
        }
}

/* ---- inotify ------------------------------------------------------------ */

static void on_event(struct filewatch *fw, const struct inotify_event *e)
{
    if (e->mask & IN_Q_OVERFLOW) {
        memset(fw->overflow, 1, fw->n_folders);
        if (!loop_timer_armed(fw->flush_timer))
            loop_timer_arm(fw->flush_timer, FILEWATCH_WINDOW_MS);
        return;
    }
    int found;
    size_t at = wd_pos(fw, e->wd, &found);
    if (!found)
        return;
    if (e->mask & IN_IGNORED) {
        remove_dir_at(fw, at);
        return;
    }
    if (!e->len || !strcmp(e->name, ".git") ||
        strncmp(e->name, FS_WRITE_TEMP_PREFIX, strlen(FS_WRITE_TEMP_PREFIX)) == 0)
        return;
    size_t folder = fw->dirs[at].folder;
    char *rel = join(fw->dirs[at].rel, e->name);
    if (!rel)
        return;
    int isdir = !!(e->mask & IN_ISDIR);
    enum change ch = CH_NONE;
    if (e->mask & IN_CREATE) {
        ch = CH_CREATED;
    } else if (e->mask & IN_MOVED_TO) {
        ch = isdir ? CH_CREATED : CH_CHANGED; /* a file may have replaced one */
    } else if (e->mask & (IN_DELETE | IN_MOVED_FROM)) {
        ch = CH_DELETED;
        if (isdir && (e->mask & IN_MOVED_FROM))
            drop_tree(fw, folder, rel);
    } else if (!isdir) {
        ch = CH_CHANGED; /* IN_MODIFY, IN_CLOSE_WRITE */
    }
    if (isdir && (e->mask & (IN_CREATE | IN_MOVED_TO)))
        walk_push(fw, folder, rel, NULL);
    if (ch != CH_NONE)
        pend(fw, folder, rel, ch, 0);
    free(rel);
}

static void on_inotify(struct filewatch *fw)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(fw->fd, buf, sizeof(buf));
        if (n <= 0)
            return;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            p += sizeof(*e) + e->len;
            on_event(fw, e);
        }
    }
}

static void on_inotify_events(void *arg, unsigned events)
{
    (void)events;
    on_inotify(arg);
}

/* ---- start, stop, notes ------------------------------------------------- */

struct filewatch *filewatch_start(const struct filewatch_env *env)
{
    struct filewatch *fw = calloc(1, sizeof(*fw));
    if (!fw)
        return NULL;
    fw->env = *env;
    fw->max_dirs = max_watches();
    fw->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    fw->folders = workspace_folders_copy(env->ws, &fw->n_folders);
    fw->overflow = calloc(fw->n_folders ? fw->n_folders : 1, 1);
    fw->walk_timer = loop_timer_new(env->loop, walk_step, fw);
    fw->flush_timer = loop_timer_new(env->loop, flush, fw);
    if (fw->fd >= 0 && fw->folders && fw->n_folders && fw->overflow && fw->walk_timer &&
        fw->flush_timer &&
        (fw->fd_watch = loop_fd_watch(env->loop, fw->fd, on_inotify_events, fw))) {
        for (size_t i = 0; i < fw->n_folders; i++)
            walk_push(fw, i, "", NULL);
        return fw;
    }
    if (fw->n_folders)
        log_msg(env->log, LOG_WARN,
                "cannot watch the workspace folders (%s): no file.changed "
                "events for changes made by others",
                strerror(errno));
    if (fw->fd >= 0)
        close(fw->fd);
    fw->fd = -1;
    filewatch_stop(fw);
    return NULL;
}

void filewatch_stop(struct filewatch *fw)
{
    if (!fw)
        return;
    loop_timer_free(fw->walk_timer);
    loop_timer_free(fw->flush_timer);
    if (fw->fd_watch)
        loop_fd_close_now(fw->fd_watch);
    for (size_t i = 0; i < fw->n_dirs; i++)
        free(fw->dirs[i].rel);
    for (size_t i = 0; i < fw->n_walk; i++)
        free(fw->walk[i].rel);
    for (size_t i = 0; i < fw->n_batch; i++)
        free(fw->batch[i].rel);
    free(fw->dirs);
    free(fw->walk);
    free(fw->overflow);
    workspace_folders_free(fw->folders, fw->n_folders);
    free(fw);
}

void filewatch_note(struct filewatch *fw, const struct filewatch_env *env, const char *folder,
                    const char *path, const char *change)
{
    enum change ch = CH_NONE;
    for (int i = CH_CREATED; i <= CH_DELETED; i++)
        if (strcmp(change_names[i], change) == 0)
            ch = (enum change)i;
    size_t i = 0;
    if (fw) {
        on_inotify(fw); /* what the kernel saw of it comes first */
        while (folder && i < fw->n_folders && strcmp(fw->folders[i].name, folder) != 0)
            i++;
    }
    if (fw && i < fw->n_folders && ch != CH_NONE) {
        pend(fw, i, path, ch, 1);
        return;
    }
    json_object *p = json_object_new_object();
    const struct workspace *ws = env->ws;
    const char *name = folder ? folder : ws->n_folders ? ws->folders[0].name : "";
    json_object_object_add(p, "folder", json_object_new_string(name));
    json_object_object_add(p, "path", utf8_json_string(path));
    json_object_object_add(p, "change", json_object_new_string(change));
    env->publish(env->publish_ud, p);
}
