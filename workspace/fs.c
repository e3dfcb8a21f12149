/*
 * fs: fs.list and fs.read (see fs.h), and the confined path resolution they
 * share. This file owns the rule that nothing outside a workspace folder is
 * ever opened, listed or named in a reply on a client's behalf.
 *
 * Resolution does what the kernel does for a path lookup, but by hand, so
 * that every step can be checked: one openat(O_PATH | O_NOFOLLOW) per
 * component from the folder's directory fd, symlinks read with readlinkat
 * and their targets spliced into the rest of the path, `..` taken only from
 * symlink targets and never above the folder. Apart from the folder's own
 * configured path, nothing is looked up by an absolute path, so a symlink
 * swapped in during the walk cannot lead outside.
 */
#include "workspace/fs.h"
#include "workspace/utf8.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Same bound as the kernel's MAXSYMLINKS: a chain longer than this is
 * treated as a loop. */
#define FS_MAX_SYMLINK_HOPS 40
/* A client's path is echoed in error messages at most this many bytes. */
#define FS_MSG_PATH_MAX 200

/* How a resolution failed; mapped to a contract code with the user's path. */
enum fs_err {
    FS_OK = 0,
    FS_E_NOT_FOUND,
    FS_E_ESCAPE,   /* a symlink leads outside the folder */
    FS_E_LOOP,     /* too many symlinks */
    FS_E_TOO_LONG, /* a name or an expanded path beyond NAME_MAX / PATH_MAX */
    FS_E_ACCESS,   /* the OS refused (permissions) */
    FS_E_CHANGED,  /* the tree changed under the walk in a way that was caught */
    FS_E_IO,       /* anything else: out of fds, memory, I/O error */
};

struct fs_id {
    dev_t dev;
    ino_t ino;
};

/* What a successful resolution yields. The target is never a symlink. */
struct fs_target {
    int fd;                  /* O_PATH fd of the target */
    int parent;              /* O_PATH fd of its directory, -1 when the target is a directory */
    char name[NAME_MAX + 1]; /* the target's name in `parent` (non-directories only) */
    struct stat st;          /* fstat of fd */
};

/* The state of one walk. `ids` holds the directories from the folder (ids[0])
 * down to the current one (ids[depth]); a `..` must land exactly on
 * ids[depth - 1], which catches a directory moved out of the folder
 * mid-walk (its real parent would then be outside). */
struct fs_walk {
    int root;              /* borrowed: the folder's O_PATH fd */
    const char *root_path; /* the folder's configured path, for absolute symlinks */
    char *root_real;       /* its realpath, computed on the first absolute symlink */
    int cur;               /* owned: O_PATH fd of the current directory */
    struct fs_id *ids;
    size_t depth, cap;
    unsigned hops;
};

/* ---- messages ---------------------------------------------------------- */

/* Writes `"path"` for an error message: at most FS_MSG_PATH_MAX bytes of the
 * client's own path, cut on a UTF-8 boundary and repaired, so a message is
 * always valid UTF-8 and never longer than cmd_result.message. */
static void shown_path(const char *path, char *out, size_t outlen)
{
    size_t len = strlen(path);
    size_t take = len > FS_MSG_PATH_MAX ? FS_MSG_PATH_MAX : len;
    char *r = utf8_repair(path, take);
    if (!r) {
        snprintf(out, outlen, "\"\"");
        return;
    }
    size_t rlen = strlen(r);
    /* Repair may grow the text (U+FFFD is 3 bytes); cut it back on a boundary. */
    size_t keep = utf8_valid_prefix(r, rlen > FS_MSG_PATH_MAX ? FS_MSG_PATH_MAX : rlen);
    snprintf(out, outlen, "\"%.*s\"%s", (int)keep, r, (take < len || keep < rlen) ? "..." : "");
    free(r);
}

static enum cmd_status fail_path(struct cmd_result *res, const char *code, const char *path,
                                 const char *why)
{
    char shown[FS_MSG_PATH_MAX + 8];
    shown_path(path, shown, sizeof(shown));
    return cmd_fail(res, code, "%s: %s", shown, why);
}

static enum cmd_status fail_walk(struct cmd_result *res, enum fs_err e, const char *path)
{
    switch (e) {
    case FS_E_NOT_FOUND:
        return fail_path(res, "NOT_FOUND", path, "not found");
    case FS_E_ESCAPE:
        return fail_path(res, "FORBIDDEN", path, "leads outside the workspace folder");
    case FS_E_LOOP:
        return fail_path(res, "FORBIDDEN", path, "too many levels of symbolic links");
    case FS_E_TOO_LONG:
        return fail_path(res, "FORBIDDEN", path, "path too long");
    case FS_E_ACCESS:
        return fail_path(res, "FORBIDDEN", path, "permission denied");
    case FS_E_CHANGED:
        return fail_path(res, "PROCESSING_ERROR", path, "changed during the request");
    case FS_OK:
    case FS_E_IO:
        break;
    }
    return fail_path(res, "PROCESSING_ERROR", path, "cannot be opened");
}

static enum fs_err err_from_errno(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return FS_E_NOT_FOUND;
    case EACCES:
    case EPERM:
        return FS_E_ACCESS;
    case ENAMETOOLONG:
        return FS_E_TOO_LONG;
    case ELOOP:
        return FS_E_LOOP;
    default:
        return FS_E_IO;
    }
}

/* ---- arguments --------------------------------------------------------- */

/* An optional member; a JSON null counts as absent, as clients often send
 * null for "unset". */
static json_object *arg(json_object *args, const char *key)
{
    json_object *v = NULL;
    if (!args || !json_object_object_get_ex(args, key, &v) ||
        json_object_is_type(v, json_type_null))
        return NULL;
    return v;
}

const struct workspace_folder *fs_pick_folder(const struct workspace_folder *folders,
                                              size_t n_folders, json_object *args,
                                              struct cmd_result *res)
{
    if (args && !json_object_is_type(args, json_type_object)) {
        cmd_fail(res, "INVALID_ARGS", "args: expected an object");
        return NULL;
    }
    json_object *f = arg(args, "folder");
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
    if ((size_t)json_object_get_string_len(f) == strlen(name))
        for (size_t i = 0; i < n_folders; i++)
            if (folders[i].name && strcmp(folders[i].name, name) == 0)
                return &folders[i];
    char shown[FS_MSG_PATH_MAX + 8];
    shown_path(name, shown, sizeof(shown));
    cmd_fail(res, "NOT_FOUND", "folder %s: no such workspace folder", shown);
    return NULL;
}

/* Reads `path` into *out: the default when absent, INVALID_ARGS when it is
 * not a string, FORBIDDEN when it breaks the confinement rules (checked
 * before anything is opened). */
static int get_path(json_object *args, const char *dflt, const char **out, struct cmd_result *res)
{
    json_object *v = arg(args, "path");
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
    size_t len = (size_t)json_object_get_string_len(v);
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
            fail_path(res, "FORBIDDEN", p, "'..' is not allowed");
            return -1;
        }
        c += n;
        if (*c == '/')
            c++;
    }
    *out = p;
    return 0;
}

/* The path echoed in a result: components joined by '/', with empty and '.'
 * components dropped; "." for the folder itself. Caller frees. */
static char *normalize(const char *p)
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

static int push_id(struct fs_walk *w, const struct stat *st)
{
    if (w->depth + 1 >= w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 16;
        struct fs_id *n = realloc(w->ids, ncap * sizeof(*n));
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
static enum fs_err reset_to_root(struct fs_walk *w)
{
    int fd = fcntl(w->root, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return FS_E_IO;
    close(w->cur);
    w->cur = fd;
    w->depth = 0;
    return FS_OK;
}

/* For an absolute symlink target: the part after the folder's real path, or
 * NULL when the target is outside it. Purely textual, so a target spelt
 * through another symlink or with "//" is refused even if it would land
 * inside: escaping must be impossible, not merely unlikely. */
static const char *strip_root(struct fs_walk *w, const char *target, enum fs_err *err)
{
    if (!w->root_real) {
        struct stat a, b;
        w->root_real = realpath(w->root_path, NULL);
        if (!w->root_real) {
            *err = FS_E_IO;
            return NULL;
        }
        /* The folder's path must still name the directory we walk in. */
        if (stat(w->root_real, &a) != 0 || fstat(w->root, &b) != 0 || a.st_dev != b.st_dev ||
            a.st_ino != b.st_ino) {
            *err = FS_E_CHANGED;
            return NULL;
        }
    }
    size_t n = strlen(w->root_real);
    if (strcmp(w->root_real, "/") == 0)
        return target + 1;
    if (strncmp(target, w->root_real, n) == 0 && (target[n] == '\0' || target[n] == '/'))
        return target + n;
    *err = FS_E_ESCAPE;
    return NULL;
}

/* Replaces the rest of the walk with `target` + `rest`, from the directory
 * holding the symlink (or from the folder, for an absolute target). */
static enum fs_err follow_link(struct fs_walk *w, int linkfd, char *path, const char **rest)
{
    char target[PATH_MAX];
    if (++w->hops > FS_MAX_SYMLINK_HOPS)
        return FS_E_LOOP;
    ssize_t n = readlinkat(linkfd, "", target, sizeof(target));
    if (n < 0)
        return err_from_errno(errno);
    if ((size_t)n >= sizeof(target))
        return FS_E_TOO_LONG;
    target[n] = '\0';
    const char *t = target;
    if (t[0] == '/') {
        enum fs_err e = FS_OK;
        t = strip_root(w, target, &e);
        if (!t)
            return e;
        if ((e = reset_to_root(w)) != FS_OK)
            return e;
    }
    size_t tl = strlen(t), rl = strlen(*rest);
    if (tl + rl + 1 >= PATH_MAX)
        return FS_E_TOO_LONG;
    /* *rest points into path: move it first, then put the target before it. */
    memmove(path + tl + 1, *rest, rl + 1);
    memcpy(path, t, tl);
    path[tl] = '/';
    *rest = path;
    return FS_OK;
}

/* `..` from a symlink target: one directory up, never above the folder. */
static enum fs_err walk_up(struct fs_walk *w)
{
    struct stat st;
    if (w->depth == 0)
        return FS_E_ESCAPE;
    int fd = openat(w->cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return err_from_errno(errno);
    if (fstat(fd, &st) != 0 || st.st_dev != w->ids[w->depth - 1].dev ||
        st.st_ino != w->ids[w->depth - 1].ino) {
        close(fd);
        return FS_E_CHANGED;
    }
    close(w->cur);
    w->cur = fd;
    w->depth--;
    return FS_OK;
}

/* The loop of resolve(): consumes `path` (a buffer of PATH_MAX bytes). */
static enum fs_err walk(struct fs_walk *w, char *path, struct fs_target *out)
{
    const char *rest = path;
    const char *c;
    size_t len;
    while ((c = next_comp(&rest, &len)) != NULL) {
        char name[NAME_MAX + 1];
        enum fs_err e;
        if (len > NAME_MAX)
            return FS_E_TOO_LONG;
        memcpy(name, c, len);
        name[len] = '\0';
        if (strcmp(name, "..") == 0) {
            if ((e = walk_up(w)) != FS_OK)
                return e;
            continue;
        }
        struct stat st;
        int fd = openat(w->cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return err_from_errno(errno);
        if (fstat(fd, &st) != 0) {
            close(fd);
            return FS_E_IO;
        }
        if (S_ISLNK(st.st_mode)) {
            e = follow_link(w, fd, path, &rest);
            close(fd);
            if (e != FS_OK)
                return e;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (push_id(w, &st) != 0) {
                close(fd);
                return FS_E_IO;
            }
            close(w->cur);
            w->cur = fd;
            continue;
        }
        /* Not a directory: it must be the last component ("file/x" is not found). */
        const char *more = rest;
        if (next_comp(&more, &len) != NULL) {
            close(fd);
            return FS_E_NOT_FOUND;
        }
        out->fd = fd;
        out->parent = w->cur;
        w->cur = -1;
        memcpy(out->name, name, strlen(name) + 1);
        out->st = st;
        return FS_OK;
    }
    if (fstat(w->cur, &out->st) != 0)
        return FS_E_IO;
    out->fd = w->cur;
    out->parent = -1;
    out->name[0] = '\0';
    w->cur = -1;
    return FS_OK;
}

/* Resolves the relative `rel` (already checked by get_path) inside the folder
 * open at `root`. On FS_OK the caller owns out->fd and out->parent. */
static enum fs_err resolve(int root, const char *root_path, const char *rel, struct fs_target *out)
{
    char path[PATH_MAX];
    struct stat st;
    struct fs_walk w = {.root = root, .root_path = root_path, .cur = -1};
    enum fs_err e;
    out->fd = out->parent = -1;
    if (strlen(rel) >= sizeof(path))
        return FS_E_TOO_LONG;
    strcpy(path, rel);
    w.cap = 16;
    w.ids = malloc(w.cap * sizeof(*w.ids));
    if (!w.ids || fstat(root, &st) != 0) {
        free(w.ids);
        return FS_E_IO;
    }
    w.ids[0].dev = st.st_dev; /* depth 0: the folder itself */
    w.ids[0].ino = st.st_ino;
    w.cur = fcntl(root, F_DUPFD_CLOEXEC, 0);
    if (w.cur < 0)
        e = FS_E_IO;
    else
        e = walk(&w, path, out);
    if (w.cur >= 0)
        close(w.cur);
    free(w.ids);
    free(w.root_real);
    return e;
}

static void target_close(struct fs_target *t)
{
    if (t->fd >= 0)
        close(t->fd);
    if (t->parent >= 0)
        close(t->parent);
    t->fd = t->parent = -1;
}

/* Common front of both commands: folder, path, resolution. On CMD_OK, *norm
 * is the path to echo (caller frees) and t is open. */
static enum cmd_status open_target(const struct workspace_folder *folders, size_t n_folders,
                                   json_object *args, const char *dflt, struct fs_target *t,
                                   char **norm, struct cmd_result *res)
{
    const char *path;
    t->fd = t->parent = -1;
    *norm = NULL;
    if (args && !json_object_is_type(args, json_type_object))
        return cmd_fail(res, "INVALID_ARGS", "args: expected an object");
    if (get_path(args, dflt, &path, res) != 0)
        return CMD_ERROR;
    if (!dflt && path[0] == '\0')
        return cmd_fail(res, "INVALID_ARGS", "path: must not be empty");
    const struct workspace_folder *f = fs_pick_folder(folders, n_folders, args, res);
    if (!f)
        return CMD_ERROR;
    /* The folder path is the user's own configuration, so it may itself be
     * (or pass through) a symlink; confinement starts below it. */
    int root = f->path ? open(f->path, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
    if (root < 0) {
        char shown[FS_MSG_PATH_MAX + 8];
        shown_path(f->name ? f->name : "", shown, sizeof(shown));
        return cmd_fail(res, "NOT_FOUND", "folder %s: not available", shown);
    }
    enum fs_err e = resolve(root, f->path, path, t);
    close(root);
    if (e != FS_OK)
        return fail_walk(res, e, path);
    *norm = normalize(path);
    if (!*norm) {
        target_close(t);
        return cmd_fail(res, "PROCESSING_ERROR", "out of memory");
    }
    return CMD_OK;
}

/* ---- fs.list ------------------------------------------------------------ */

/* The FS_LIST_MAX_ENTRIES smallest names, kept as a max-heap so a directory
 * of any size costs bounded memory and the reply is the start of the sorted
 * listing, the same on every call. */
struct name_heap {
    char **v;
    size_t n, cap;
};

static void heap_sift_down(struct name_heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && strcmp(h->v[l], h->v[m]) > 0)
            m = l;
        if (r < h->n && strcmp(h->v[r], h->v[m]) > 0)
            m = r;
        if (m == i)
            return;
        char *tmp = h->v[i];
        h->v[i] = h->v[m];
        h->v[m] = tmp;
        i = m;
    }
}

static int heap_offer(struct name_heap *h, const char *name)
{
    if (h->n < h->cap) {
        char *s = strdup(name);
        if (!s)
            return -1;
        size_t i = h->n++;
        h->v[i] = s;
        while (i > 0 && strcmp(h->v[(i - 1) / 2], h->v[i]) < 0) {
            char *tmp = h->v[i];
            h->v[i] = h->v[(i - 1) / 2];
            h->v[(i - 1) / 2] = tmp;
            i = (i - 1) / 2;
        }
        return 0;
    }
    if (h->n == 0 || strcmp(name, h->v[0]) >= 0)
        return 0;
    char *s = strdup(name);
    if (!s)
        return -1;
    free(h->v[0]);
    h->v[0] = s;
    heap_sift_down(h, 0);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static json_object *entry_json(int dfd, const char *name)
{
    struct stat st;
    const char *type = "other";
    int64_t size = 0;
    /* Never followed: a symlink is reported as itself, whatever it points to. */
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return NULL; /* removed since readdir */
    } else if (S_ISLNK(st.st_mode)) {
        type = "symlink";
        size = (int64_t)st.st_size;
    } else if (S_ISDIR(st.st_mode)) {
        type = "dir";
    } else if (S_ISREG(st.st_mode)) {
        type = "file";
        size = (int64_t)st.st_size;
    }
    json_object *e = json_object_new_object();
    json_object_object_add(e, "name", utf8_json_string(name));
    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "size", json_object_new_int64(size));
    return e;
}

enum cmd_status fs_list(const struct workspace_folder *folders, size_t n_folders, json_object *args,
                        struct cmd_result *res)
{
    struct fs_target t;
    char *norm;
    if (open_target(folders, n_folders, args, ".", &t, &norm, res) != CMD_OK)
        return CMD_ERROR;
    enum cmd_status rc = CMD_ERROR;
    DIR *d = NULL;
    struct name_heap h = {NULL, 0, FS_LIST_MAX_ENTRIES};
    if (!S_ISDIR(t.st.st_mode)) {
        fail_path(res, "INVALID_ARGS", norm, "not a directory");
        goto out;
    }
    /* t.fd is O_PATH; "." reopens that same directory for reading. */
    int dfd = openat(t.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || !(d = fdopendir(dfd))) {
        enum fs_err e = err_from_errno(errno);
        if (dfd >= 0)
            close(dfd);
        fail_walk(res, e, norm);
        goto out;
    }
    h.v = malloc(h.cap * sizeof(*h.v));
    if (!h.v) {
        cmd_fail(res, "PROCESSING_ERROR", "out of memory");
        goto out;
    }
    size_t total = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        total++;
        if (heap_offer(&h, de->d_name) != 0) {
            cmd_fail(res, "PROCESSING_ERROR", "out of memory");
            goto out;
        }
        errno = 0;
    }
    if (errno != 0) {
        fail_path(res, "PROCESSING_ERROR", norm, "cannot be read");
        goto out;
    }
    qsort(h.v, h.n, sizeof(*h.v), cmp_names);
    json_object *entries = json_object_new_array();
    for (size_t i = 0; i < h.n; i++) {
        json_object *e = entry_json(dirfd(d), h.v[i]);
        if (e)
            json_object_array_add(entries, e);
    }
    res->result = json_object_new_object();
    json_object_object_add(res->result, "path", utf8_json_string(norm));
    json_object_object_add(res->result, "entries", entries);
    json_object_object_add(res->result, "truncated", json_object_new_boolean(total > h.n));
    rc = CMD_OK;
out:
    for (size_t i = 0; i < h.n; i++)
        free(h.v[i]);
    free(h.v);
    if (d)
        closedir(d);
    target_close(&t);
    free(norm);
    return rc;
}

/* ---- fs.read ------------------------------------------------------------ */

/* maxBytes: an integer in 1..FS_READ_MAX_BYTES, default FS_READ_DEFAULT_BYTES. */
static int get_max_bytes(json_object *args, size_t *out, struct cmd_result *res)
{
    json_object *v = arg(args, "maxBytes");
    *out = FS_READ_DEFAULT_BYTES;
    if (!v)
        return 0;
    if (!json_object_is_type(v, json_type_int)) {
        cmd_fail(res, "INVALID_ARGS", "maxBytes: expected an integer");
        return -1;
    }
    int64_t n = json_object_get_int64(v);
    if (n < 1 || n > FS_READ_MAX_BYTES) {
        cmd_fail(res, "INVALID_ARGS", "maxBytes: must be between 1 and %d", FS_READ_MAX_BYTES);
        return -1;
    }
    *out = (size_t)n;
    return 0;
}

/* Reads up to `limit` bytes; the buffer grows from the file's size so a small
 * file does not cost a maxBytes allocation. Returns the count or -1. */
static ssize_t read_upto(int fd, off_t size_hint, size_t limit, char **out)
{
    size_t cap = size_hint >= 0 && (uint64_t)size_hint + 1 < limit ? (size_t)size_hint + 1 : limit;
    if (cap < 64)
        cap = limit < 64 ? limit : 64;
    char *buf = malloc(cap);
    size_t n = 0;
    if (!buf)
        return -1;
    while (n < limit) {
        if (n == cap) {
            size_t ncap = cap * 2 < limit ? cap * 2 : limit;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                return -1;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *out = buf;
    return (ssize_t)n;
}

static json_object *base64_json(const char *buf, size_t len)
{
    char *b = malloc(4 * ((len + 2) / 3) + 1);
    if (!b)
        return NULL;
    int n = EVP_EncodeBlock((unsigned char *)b, (const unsigned char *)buf, (int)len);
    json_object *s = json_object_new_string_len(b, n);
    free(b);
    return s;
}

/* Opens the resolved regular file for reading. The type was checked on the
 * O_PATH fd; the open is by name in the same directory with O_NOFOLLOW and
 * O_NONBLOCK (a FIFO swapped in cannot block us), and must reach the same
 * inode, so a swap between the check and the open is refused. */
static int open_for_read(const struct fs_target *t, struct stat *st, const char *norm,
                         struct cmd_result *res)
{
    int fd = openat(t->parent, t->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        /* ELOOP: a symlink was swapped in for the file after the walk;
         * ENXIO/ENODEV: a socket or device was. */
        if (errno == ENXIO || errno == ENODEV)
            fail_path(res, "FORBIDDEN", norm, "not a regular file");
        else
            fail_walk(res, errno == ELOOP ? FS_E_CHANGED : err_from_errno(errno), norm);
        return -1;
    }
    if (fstat(fd, st) != 0) {
        close(fd);
        fail_walk(res, FS_E_IO, norm);
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        fail_path(res, "FORBIDDEN", norm, "not a regular file");
        return -1;
    }
    if (st->st_dev != t->st.st_dev || st->st_ino != t->st.st_ino) {
        close(fd);
        fail_walk(res, FS_E_CHANGED, norm);
        return -1;
    }
    return fd;
}

enum cmd_status fs_read(const struct workspace_folder *folders, size_t n_folders, json_object *args,
                        struct cmd_result *res)
{
    size_t max;
    if (args && !json_object_is_type(args, json_type_object))
        return cmd_fail(res, "INVALID_ARGS", "args: expected an object");
    if (get_max_bytes(args, &max, res) != 0)
        return CMD_ERROR;
    struct fs_target t;
    char *norm;
    if (open_target(folders, n_folders, args, NULL, &t, &norm, res) != CMD_OK)
        return CMD_ERROR;
    enum cmd_status rc = CMD_ERROR;
    char *buf = NULL;
    int fd = -1;
    struct stat st;
    if (S_ISDIR(t.st.st_mode)) {
        fail_path(res, "INVALID_ARGS", norm, "is a directory");
        goto out;
    }
    /* Checked before any open: opening a device can have side effects. */
    if (!S_ISREG(t.st.st_mode)) {
        fail_path(res, "FORBIDDEN", norm, "not a regular file");
        goto out;
    }
    if ((fd = open_for_read(&t, &st, norm, res)) < 0)
        goto out;
    /* 3 bytes past the cap tell a valid character cut by the cap from
     * invalid bytes. */
    ssize_t got = read_upto(fd, st.st_size, max + 3, &buf);
    if (got < 0) {
        fail_path(res, "PROCESSING_ERROR", norm, "cannot be read");
        goto out;
    }
    size_t n = (size_t)got, take = n < max ? n : max;
    size_t ulen = utf8_valid_prefix(buf, take);
    int is_text;
    if (ulen == take)
        is_text = 1;
    else /* invalid, unless the one bad spot is a character the cap cut */
        is_text = n > max && utf8_valid_prefix(buf, n) >= max;
    size_t out_len = is_text ? ulen : take;
    if (is_text && memchr(buf, '\0', out_len)) {
        is_text = 0;
        out_len = take;
    }
    json_object *content =
        is_text ? json_object_new_string_len(buf, (int)out_len) : base64_json(buf, out_len);
    if (!content) {
        cmd_fail(res, "PROCESSING_ERROR", "out of memory");
        goto out;
    }
    res->result = json_object_new_object();
    json_object_object_add(res->result, "path", utf8_json_string(norm));
    json_object_object_add(res->result, "size", json_object_new_int64((int64_t)st.st_size));
    json_object_object_add(res->result, "encoding",
                           json_object_new_string(is_text ? "utf8" : "base64"));
    json_object_object_add(res->result, "content", content);
    json_object_object_add(
        res->result, "truncated",
        json_object_new_boolean(n > out_len || (uint64_t)st.st_size > (uint64_t)out_len));
    rc = CMD_OK;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    target_close(&t);
    free(norm);
    return rc;
}
