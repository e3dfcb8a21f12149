/*
 * folder: folder choice and path confinement (see folder.h). This file owns
 * the rule that nothing outside a workspace folder, and nothing private to
 * Companion inside one, is ever opened, listed or named in a reply on a
 * client's behalf.
 *
 * Resolution does what the kernel does for a path lookup, but by hand, so
 * that every step can be checked: one openat(O_PATH | O_NOFOLLOW) per
 * component from the folder's directory fd, symlinks read with readlinkat
 * and their targets spliced into the rest of the path, `..` taken only from
 * symlink targets and never above the folder. Apart from the folder's own
 * configured path, nothing is looked up by an absolute path, so a symlink
 * swapped in during the walk cannot lead outside.
 */
#include "workspace/folder.h"
#include "workspace/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Same bound as the kernel's MAXSYMLINKS: a chain longer than this is
 * treated as a loop. */
#define FOLDER_MAX_SYMLINK_HOPS 40

struct folder_id {
    dev_t dev;
    ino_t ino;
};

/* The state of one walk. `ids` holds the directories from the folder (ids[0])
 * down to the current one (ids[depth]); a `..` must land exactly on
 * ids[depth - 1], which catches a directory moved out of the folder
 * mid-walk (its real parent would then be outside). */
struct folder_walk {
    int root;              /* borrowed: the folder's O_PATH fd */
    const char *root_path; /* the folder's configured path, for absolute symlinks */
    char *root_real;       /* its realpath, computed on the first absolute symlink */
    int cur;               /* owned: O_PATH fd of the current directory */
    struct folder_id *ids;
    size_t depth, cap;
    unsigned hops;
    struct folder_private_set priv;
};

/* ---- messages ---------------------------------------------------------- */

/* Writes `"path"` for an error message: at most FOLDER_MSG_PATH_MAX bytes of the
 * client's own path, cut on a UTF-8 boundary and repaired, so a message is
 * always valid UTF-8 and never longer than cmd_result.message. */
static void shown_path(const char *path, char *out, size_t outlen)
{
    size_t len = strlen(path);
    size_t take = len > FOLDER_MSG_PATH_MAX ? FOLDER_MSG_PATH_MAX : len;
    char *r = utf8_repair(path, take);
    if (!r) {
        snprintf(out, outlen, "\"\"");
        return;
    }
    size_t rlen = strlen(r);
    /* Repair may grow the text (U+FFFD is 3 bytes); cut it back on a boundary. */
    size_t keep = utf8_valid_prefix(r, rlen > FOLDER_MSG_PATH_MAX ? FOLDER_MSG_PATH_MAX : rlen);
    snprintf(out, outlen, "\"%.*s\"%s", (int)keep, r, (take < len || keep < rlen) ? "..." : "");
    free(r);
}

enum cmd_status folder_fail_path(struct cmd_result *res, const char *code, const char *path,
                                 const char *why)
{
    char shown[FOLDER_MSG_PATH_MAX + 8];
    shown_path(path, shown, sizeof(shown));
    return cmd_fail(res, code, "%s: %s", shown, why);
}

enum cmd_status folder_fail(struct cmd_result *res, enum folder_err e, const char *path)
{
    switch (e) {
    case FOLDER_E_NOT_FOUND:
        return folder_fail_path(res, "NOT_FOUND", path, "not found");
    case FOLDER_E_ESCAPE:
        return folder_fail_path(res, "FORBIDDEN", path, "leads outside the workspace folder");
    case FOLDER_E_LOOP:
        return folder_fail_path(res, "FORBIDDEN", path, "too many levels of symbolic links");
    case FOLDER_E_TOO_LONG:
        return folder_fail_path(res, "FORBIDDEN", path, "path too long");
    case FOLDER_E_ACCESS:
        return folder_fail_path(res, "FORBIDDEN", path, "permission denied");
    case FOLDER_E_PRIVATE:
        return folder_fail_path(res, "FORBIDDEN", path,
                                "belongs to Companion itself and is never served");
    case FOLDER_E_CHANGED:
        return folder_fail_path(res, "PROCESSING_ERROR", path, "changed during the request");
    case FOLDER_OK:
    case FOLDER_E_IO:
        break;
    }
    return folder_fail_path(res, "PROCESSING_ERROR", path, "cannot be opened");
}

static enum folder_err err_from_errno(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return FOLDER_E_NOT_FOUND;
    case EACCES:
    case EPERM:
        return FOLDER_E_ACCESS;
    case ENAMETOOLONG:
        return FOLDER_E_TOO_LONG;
    case ELOOP:
        return FOLDER_E_LOOP;
    default:
        return FOLDER_E_IO;
    }
}

enum cmd_status folder_fail_errno(struct cmd_result *res, int err, const char *path)
{
    return folder_fail(res, err_from_errno(err), path);
}

/* ---- arguments --------------------------------------------------------- */

const struct workspace_folder *folder_find(const struct workspace_folder *folders, size_t n_folders,
                                           const char *name)
{
    for (size_t i = 0; name && i < n_folders; i++)
        if (folders[i].name && strcmp(folders[i].name, name) == 0)
            return &folders[i];
    return NULL;
}

const struct workspace_folder *folder_pick(const struct workspace_folder *folders, size_t n_folders,
                                           json_object *args, struct cmd_result *res)
{
    if (args && !json_object_is_type(args, json_type_object)) {
        cmd_fail(res, "INVALID_ARGS", "args: expected an object");
        return NULL;
    }
    json_object *f = cmd_arg(args, "folder");
    if (f && !json_object_is_type(f, json_type_string)) {
        cmd_fail(res, "INVALID_ARGS", "folder: expected a string");
        return NULL;
    }
    if (n_folders == 0) {
        cmd_fail(res, "NOT_FOUND", "no workspace folder");
        return NULL;
    }
    if (!f)
        return &folders[0];
    const char *name = json_object_get_string(f);
    /* A name with an embedded NUL matches nothing. */
    if ((size_t)json_object_get_string_len(f) == strlen(name)) {
        const struct workspace_folder *hit = folder_find(folders, n_folders, name);
        if (hit)
            return hit;
    }
    char shown[FOLDER_MSG_PATH_MAX + 8];
    shown_path(name, shown, sizeof(shown));
    cmd_fail(res, "NOT_FOUND", "folder %s: no such workspace folder", shown);
    return NULL;
}

/* Reads `path` into *out: the default when absent, INVALID_ARGS when it is
 * not a string, FORBIDDEN when it breaks the confinement rules (checked
 * before anything is opened). */
int folder_arg_path(json_object *args, const char *dflt, const char **out, struct cmd_result *res)
{
    json_object *v = cmd_arg(args, "path");
    if (!v) {
        if (!dflt) {
            cmd_fail(res, "INVALID_ARGS", "path: required");
            return -1;
        }
        *out = dflt;
        return 0;
    }
    if (!json_object_is_type(v, json_type_string)) {
        cmd_fail(res, "INVALID_ARGS", "path: expected a string");
        return -1;
    }
    const char *p = json_object_get_string(v);
    if (folder_check_path(p, (size_t)json_object_get_string_len(v), res) != 0)
        return -1;
    *out = p;
    return 0;
}

int folder_check_path(const char *p, size_t len, struct cmd_result *res)
{
    if (len != strlen(p)) {
        cmd_fail(res, "FORBIDDEN", "path: contains a NUL byte");
        return -1;
    }
    if (len >= PATH_MAX) {
        cmd_fail(res, "FORBIDDEN", "path: longer than %d bytes", PATH_MAX - 1);
        return -1;
    }
    if (p[0] == '/') {
        /* Not echoed: an absolute path may name a place outside the folder. */
        cmd_fail(res, "FORBIDDEN", "path: absolute paths are not allowed");
        return -1;
    }
    for (const char *c = p; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 2 && c[0] == '.' && c[1] == '.') {
            folder_fail_path(res, "FORBIDDEN", p, "'..' is not allowed");
            return -1;
        }
        c += n;
        if (*c == '/')
            c++;
    }
    return 0;
}

/* The path echoed in a result: components joined by '/', with empty and '.'
 * components dropped; "." for the folder itself. Caller frees. */
char *folder_normalize(const char *p)
{
    char *out = malloc(strlen(p) + 2);
    if (!out)
        return NULL;
    size_t o = 0;
    for (const char *c = p; *c;) {
        size_t n = strcspn(c, "/");
        if (n > 0 && !(n == 1 && c[0] == '.')) {
            if (o)
                out[o++] = '/';
            memcpy(out + o, c, n);
            o += n;
        }
        c += n;
        if (*c == '/')
            c++;
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = '\0';
    return out;
}

/* ---- confined resolution ----------------------------------------------- */

static int push_id(struct folder_walk *w, const struct stat *st)
{
    if (w->depth + 1 >= w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 16;
        struct folder_id *n = realloc(w->ids, ncap * sizeof(*n));
        if (!n)
            return -1;
        w->ids = n;
        w->cap = ncap;
    }
    w->depth++;
    w->ids[w->depth].dev = st->st_dev;
    w->ids[w->depth].ino = st->st_ino;
    return 0;
}

/* Next component of *p that is neither empty nor "."; its length in *len,
 * NULL at the end. Advances *p past it. */
static const char *next_comp(const char **p, size_t *len)
{
    for (;;) {
        const char *c = *p;
        while (*c == '/')
            c++;
        if (!*c) {
            *p = c;
            return NULL;
        }
        size_t n = strcspn(c, "/");
        *p = c + n;
        if (n == 1 && c[0] == '.')
            continue;
        *len = n;
        return c;
    }
}

/* Back to the folder itself, for an absolute symlink that points inside. */
static enum folder_err reset_to_root(struct folder_walk *w)
{
    int fd = fcntl(w->root, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return FOLDER_E_IO;
    close(w->cur);
    w->cur = fd;
    w->depth = 0;
    return FOLDER_OK;
}

/* For an absolute symlink target: the part after the folder's real path, or
 * NULL when the target is outside it. Purely textual, so a target spelt
 * through another symlink or with "//" is refused even if it would land
 * inside: escaping must be impossible, not merely unlikely. */
static const char *strip_root(struct folder_walk *w, const char *target, enum folder_err *err)
{
    if (!w->root_real) {
        struct stat a, b;
        w->root_real = realpath(w->root_path, NULL);
        if (!w->root_real) {
            *err = FOLDER_E_IO;
            return NULL;
        }
        /* The folder's path must still name the directory we walk in. */
        if (stat(w->root_real, &a) != 0 || fstat(w->root, &b) != 0 || a.st_dev != b.st_dev ||
            a.st_ino != b.st_ino) {
            *err = FOLDER_E_CHANGED;
            return NULL;
        }
    }
    size_t n = strlen(w->root_real);
    if (strcmp(w->root_real, "/") == 0)
        return target + 1;
    if (strncmp(target, w->root_real, n) == 0 && (target[n] == '\0' || target[n] == '/'))
        return target + n;
    *err = FOLDER_E_ESCAPE;
    return NULL;
}

/* Replaces the rest of the walk with `target` + `rest`, from the directory
 * holding the symlink (or from the folder, for an absolute target). */
static enum folder_err follow_link(struct folder_walk *w, int linkfd, char *path, const char **rest)
{
    char target[PATH_MAX];
    if (++w->hops > FOLDER_MAX_SYMLINK_HOPS)
        return FOLDER_E_LOOP;
    ssize_t n = readlinkat(linkfd, "", target, sizeof(target));
    if (n < 0)
        return err_from_errno(errno);
    if ((size_t)n >= sizeof(target))
        return FOLDER_E_TOO_LONG;
    target[n] = '\0';
    const char *t = target;
    if (t[0] == '/') {
        enum folder_err e = FOLDER_OK;
        t = strip_root(w, target, &e);
        if (!t)
            return e;
        if ((e = reset_to_root(w)) != FOLDER_OK)
            return e;
    }
    size_t tl = strlen(t), rl = strlen(*rest);
    if (tl + rl + 1 >= PATH_MAX)
        return FOLDER_E_TOO_LONG;
    /* *rest points into path: move it first, then put the target before it. */
    memmove(path + tl + 1, *rest, rl + 1);
    memcpy(path, t, tl);
    path[tl] = '/';
    *rest = path;
    return FOLDER_OK;
}

/* `..` from a symlink target: one directory up, never above the folder. */
static enum folder_err walk_up(struct folder_walk *w)
{
    struct stat st;
    if (w->depth == 0)
        return FOLDER_E_ESCAPE;
    int fd = openat(w->cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return err_from_errno(errno);
    if (fstat(fd, &st) != 0 || st.st_dev != w->ids[w->depth - 1].dev ||
        st.st_ino != w->ids[w->depth - 1].ino) {
        close(fd);
        return FOLDER_E_CHANGED;
    }
    close(w->cur);
    w->cur = fd;
    w->depth--;
    return FOLDER_OK;
}

void folder_private_load(const struct workspace_folder *f, struct folder_private_set *set)
{
    set->n = 0;
    for (size_t i = 0; f->priv && i < f->priv->n && set->n < FOLDER_PRIVATE_MAX; i++) {
        struct stat st;
        if (stat(f->priv->paths[i], &st) == 0) {
            set->id[set->n].dev = st.st_dev;
            set->id[set->n].ino = st.st_ino;
            set->n++;
        }
    }
}

int folder_private_has(const struct folder_private_set *set, const struct stat *st)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->id[i].dev == st->st_dev && set->id[i].ino == st->st_ino)
            return 1;
    return 0;
}

/* The loop of resolve(): consumes `path` (a buffer of PATH_MAX bytes). */
static enum folder_err walk(struct folder_walk *w, char *path, struct folder_target *out)
{
    const char *rest = path;
    const char *c;
    size_t len;
    while ((c = next_comp(&rest, &len)) != NULL) {
        char name[NAME_MAX + 1];
        enum folder_err e;
        if (len > NAME_MAX)
            return FOLDER_E_TOO_LONG;
        memcpy(name, c, len);
        name[len] = '\0';
        if (strcmp(name, "..") == 0) {
            if ((e = walk_up(w)) != FOLDER_OK)
                return e;
            continue;
        }
        struct stat st;
        int fd = openat(w->cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return err_from_errno(errno);
        if (fstat(fd, &st) != 0) {
            close(fd);
            return FOLDER_E_IO;
        }
        if (S_ISLNK(st.st_mode)) {
            e = follow_link(w, fd, path, &rest);
            close(fd);
            if (e != FOLDER_OK)
                return e;
            continue;
        }
        if (folder_private_has(&w->priv, &st)) {
            close(fd);
            return FOLDER_E_PRIVATE;
        }
        if (S_ISDIR(st.st_mode)) {
            if (push_id(w, &st) != 0) {
                close(fd);
                return FOLDER_E_IO;
            }
            close(w->cur);
            w->cur = fd;
            continue;
        }
        /* Not a directory: it must be the last component ("file/x" is not found). */
        const char *more = rest;
        if (next_comp(&more, &len) != NULL) {
            close(fd);
            return FOLDER_E_NOT_FOUND;
        }
        out->fd = fd;
        out->parent = w->cur;
        w->cur = -1;
        memcpy(out->name, name, strlen(name) + 1);
        out->st = st;
        return FOLDER_OK;
    }
    if (fstat(w->cur, &out->st) != 0)
        return FOLDER_E_IO;
    out->fd = w->cur;
    out->parent = -1;
    out->name[0] = '\0';
    w->cur = -1;
    return FOLDER_OK;
}

enum folder_err folder_resolve(const struct workspace_folder *f, const char *rel,
                               struct folder_target *out)
{
    char path[PATH_MAX];
    struct stat st;
    struct folder_walk w = {.root_path = f->path, .cur = -1};
    enum folder_err e;
    out->fd = out->parent = -1;
    if (strlen(rel) >= sizeof(path))
        return FOLDER_E_TOO_LONG;
    strcpy(path, rel);
    /* The folder path is the user's own configuration, so it may itself be
     * (or pass through) a symlink; confinement starts below it. */
    w.root = f->path ? open(f->path, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
    if (w.root < 0)
        return FOLDER_E_NOT_FOUND;
    folder_private_load(f, &w.priv);
    w.cap = 16;
    w.ids = malloc(w.cap * sizeof(*w.ids));
    if (!w.ids || fstat(w.root, &st) != 0) {
        free(w.ids);
        close(w.root);
        return FOLDER_E_IO;
    }
    w.ids[0].dev = st.st_dev; /* depth 0: the folder itself */
    w.ids[0].ino = st.st_ino;
    if (folder_private_has(&w.priv, &st))
        e = FOLDER_E_PRIVATE; /* a folder that is itself private serves nothing */
    else if ((w.cur = fcntl(w.root, F_DUPFD_CLOEXEC, 0)) < 0)
        e = FOLDER_E_IO;
    else
        e = walk(&w, path, out);
    if (w.cur >= 0)
        close(w.cur);
    close(w.root);
    free(w.ids);
    free(w.root_real);
    return e;
}

void folder_target_close(struct folder_target *t)
{
    if (t->fd >= 0)
        close(t->fd);
    if (t->parent >= 0)
        close(t->parent);
    t->fd = t->parent = -1;
}

enum cmd_status folder_open(const struct workspace_folder *folders, size_t n_folders,
                            json_object *args, const char *dflt, struct folder_target *t,
                            char **norm, const struct workspace_folder **picked,
                            struct cmd_result *res)
{
    const char *path;
    t->fd = t->parent = -1;
    *norm = NULL;
    if (args && !json_object_is_type(args, json_type_object))
        return cmd_fail(res, "INVALID_ARGS", "args: expected an object");
    if (folder_arg_path(args, dflt, &path, res) != 0)
        return CMD_ERROR;
    if (!dflt && path[0] == '\0')
        return cmd_fail(res, "INVALID_ARGS", "path: must not be empty");
    const struct workspace_folder *f = folder_pick(folders, n_folders, args, res);
    if (!f)
        return CMD_ERROR;
    if (picked)
        *picked = f;
    enum folder_err e = folder_resolve(f, path, t);
    if (e == FOLDER_E_NOT_FOUND && access(f->path, F_OK) != 0) {
        char shown[FOLDER_MSG_PATH_MAX + 8];
        shown_path(f->name ? f->name : "", shown, sizeof(shown));
        return cmd_fail(res, "NOT_FOUND", "folder %s: not available", shown);
    }
    if (e != FOLDER_OK)
        return folder_fail(res, e, path);
    *norm = folder_normalize(path);
    if (!*norm) {
        folder_target_close(t);
        return cmd_fail(res, "PROCESSING_ERROR", "out of memory");
    }
    return CMD_OK;
}

/* Opens the resolved regular file for reading. The type was checked on the
 * O_PATH fd; the open is by name in the same directory with O_NOFOLLOW and
 * O_NONBLOCK (a FIFO swapped in cannot block us), and must reach the same
 * inode, so a swap between the check and the open is refused. */
int folder_open_regular(const struct folder_target *t, struct stat *st, const char *norm,
                        struct cmd_result *res)
{
    if (t->parent < 0) {
        folder_fail_path(res, "INVALID_ARGS", norm, "is a directory");
        return -1;
    }
    /* Checked before any open: opening a device can have side effects. */
    if (!S_ISREG(t->st.st_mode)) {
        folder_fail_path(res, "FORBIDDEN", norm, "not a regular file");
        return -1;
    }
    int fd = openat(t->parent, t->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        /* ELOOP: a symlink was swapped in for the file after the walk;
         * ENXIO/ENODEV: a socket or device was. */
        if (errno == ENXIO || errno == ENODEV)
            folder_fail_path(res, "FORBIDDEN", norm, "not a regular file");
        else
            folder_fail(res, errno == ELOOP ? FOLDER_E_CHANGED : err_from_errno(errno), norm);
        return -1;
    }
    if (fstat(fd, st) != 0) {
        close(fd);
        folder_fail(res, FOLDER_E_IO, norm);
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        folder_fail_path(res, "FORBIDDEN", norm, "not a regular file");
        return -1;
    }
    if (st->st_dev != t->st.st_dev || st->st_ino != t->st.st_ino) {
        close(fd);
        folder_fail(res, FOLDER_E_CHANGED, norm);
        return -1;
    }
    return fd;
}

int folder_target_path(const struct folder_target *t, char *out, size_t len)
{
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", t->fd);
    ssize_t n = readlink(proc, out, len);
    if (n <= 0 || (size_t)n >= len || out[0] != '/')
        return -1;
    out[n] = '\0';
    return 0;
}

int folder_path_inside(const char *root, const char *path)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/')
        return path[0] == '/';
    return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* `abs` with `.`, `..` and empty components resolved as text into out.
 * Returns 0, or -1 when it is not absolute or does not fit. */
static int lexical_clean(const char *abs, char *out, size_t len)
{
    size_t o = 0;
    if (abs[0] != '/' || len < 2)
        return -1;
    out[o++] = '/';
    for (const char *c = abs; *c;) {
        while (*c == '/')
            c++;
        size_t n = strcspn(c, "/");
        if (n == 0)
            break;
        if (n == 1 && c[0] == '.') {
            /* nothing */
        } else if (n == 2 && c[0] == '.' && c[1] == '.') {
            while (o > 1 && out[o - 1] != '/')
                o--;
            if (o > 1)
                o--; /* the slash before the dropped name */
        } else {
            if (o + (o > 1) + n + 1 > len)
                return -1;
            if (o > 1)
                out[o++] = '/';
            memcpy(out + o, c, n);
            o += n;
        }
        c += n;
    }
    out[o] = '\0';
    return 0;
}

int folder_relative(const struct workspace_folder *folders, size_t n_folders, const char *abs,
                    char *rel, size_t rel_len)
{
    char clean[PATH_MAX];
    if (!abs || lexical_clean(abs, clean, sizeof(clean)) < 0)
        return -1;
    /* The deepest folder wins when folders nest. */
    int best = -1;
    size_t best_len = 0;
    for (size_t i = 0; i < n_folders; i++) {
        size_t n = strlen(folders[i].path);
        if (folder_path_inside(folders[i].path, clean) && (best < 0 || n > best_len)) {
            best = (int)i;
            best_len = n;
        }
    }
    if (best < 0)
        return -1;
    const char *r = clean + best_len;
    if (best_len == 1) /* the folder is "/" */
        r = clean;
    while (*r == '/')
        r++;
    if ((size_t)snprintf(rel, rel_len, "%s", *r ? r : ".") >= rel_len)
        return -1;
    return best;
}
