/*
 * git_ctx: git.status, git.log, git.diff and git.branches through libgit2.
 *
 * Owns the per-thread cache of opened repositories, the choice of folder for
 * git commands, the checking of their arguments and the JSON of their
 * results. Everything here only reads: the index is re-read, never written.
 *
 * Decisions (the contract leaves them open):
 * - A folder is a repository when it is a work tree or lies inside one:
 *   git_repository_open_ext searches upward (not across file systems), as
 *   `git` run in that folder would. Bare repositories and folders inside a
 *   .git directory are not repositories here (status and diff need a work
 *   tree).
 * - Results are scoped to the folder. When the folder is a subdirectory of
 *   the work tree, git.status and git.diff list only paths inside it, every
 *   path (results and `path` arguments) is relative to the folder, and the
 *   result says `folder` (its name) and `prefix` (its place in the
 *   repository, "" at the root). The patch text keeps repository-relative
 *   headers, as `git diff` prints them. git.log without `path` lists the
 *   whole history, as `git log` does in a subdirectory.
 * - `path` arguments are literal (no globs), a file or a directory; a path
 *   that matches nothing gives empty results, not NOT_FOUND (a deleted
 *   file's history is a fair question).
 * - A JSON null argument counts as absent.
 * - git.log follows `git log`'s default history simplification when `path`
 *   is given: a merge that is TREESAME to a parent follows only that parent.
 * - A repository owned by another user is refused by libgit2 (safe.directory);
 *   that is a PROCESSING_ERROR saying so, not NOT_A_REPOSITORY.
 * - Paths that are not UTF-8 are repaired with U+FFFD and the entry gets
 *   `"repaired": true`; patch text is repaired silently. Commit summaries and
 *   names are converted from the commit's `encoding` header, as `git log`
 *   does, and repaired when still not UTF-8.
 */
#include "workspace/git_ctx.h"

#include <git2.h>
#include <iconv.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "workspace/utf8.h"

/* Repositories kept open per thread; the least recently used goes first. */
#define GIT_CTX_CACHE_MAX 8
/* git.log with `path` stops looking after this many commits (`incomplete`). */
#define GIT_CTX_LOG_SCAN_MAX 100000
/* git.branches lists at most this many names of each kind (`truncated`). */
#define GIT_CTX_BRANCHES_MAX 1000

struct repo_entry {
    char *folder_path; /* the key: the folder's canonical path */
    git_repository *repo;
    char *prefix;  /* the folder inside the work tree: "" or "a/b" */
    dev_t git_dev; /* identity of the .git directory, to notice a */
    ino_t git_ino; /* repository deleted and created anew */
    unsigned long long used;
};

struct git_ctx {
    struct repo_entry cache[GIT_CTX_CACHE_MAX];
    size_t n_cache;
    unsigned long long clock;
};

/* The repository a command runs on, with the folder it answers for. */
struct git_target {
    const struct workspace_folder *folder;
    struct repo_entry *entry;
};

/* Arguments of all four commands, checked before any repository is opened
 * so that INVALID_ARGS wins over NOT_A_REPOSITORY. */
struct git_args {
    const char *folder;
    const char *path;
    const char *ref;
    int limit;
    int staged;
    size_t max_bytes;
};

void git_ctx_global_init(void)
{
    git_libgit2_init();
    /* libgit2 hashes every object it reads to check it against its id; a
     * fifth of a cold git.log with a path on a long history (bench/gitlog.mjs:
     * 225 -> 145 ms for 50 commits found among 5,000). `git log` does not
     * check the commits and trees it walks either, and zlib's checksum
     * still catches a damaged stream. */
    git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
}

void git_ctx_global_shutdown(void)
{
    git_libgit2_shutdown();
}

int git_ctx_handles(const char *name)
{
    return name && (strcmp(name, "git.status") == 0 || strcmp(name, "git.log") == 0 ||
                    strcmp(name, "git.diff") == 0 || strcmp(name, "git.branches") == 0);
}

size_t git_ctx_cache_size(const struct git_ctx *g)
{
    return g ? g->n_cache : 0;
}

struct git_ctx *git_ctx_new(void)
{
    return calloc(1, sizeof(struct git_ctx));
}

static void entry_clear(struct repo_entry *e)
{
    git_repository_free(e->repo);
    free(e->folder_path);
    free(e->prefix);
    memset(e, 0, sizeof(*e));
}

void git_ctx_free(struct git_ctx *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_cache; i++)
        entry_clear(&g->cache[i]);
    free(g);
}

/* ---- errors ---------------------------------------------------------- */

/* cmd_fail's buffer may cut a multibyte character; the message goes into
 * JSON, so drop any partial sequence at the end. */
/* libgit2's messages often name absolute paths (the repository, the index
 * file); such a path may lie outside the workspace, so a message with a '/'
 * is replaced by the operation and the error code. */
static enum cmd_status fail_git(struct cmd_result *res, const char *what, int err)
{
    const git_error *e = git_error_last();
    enum cmd_status st;
    if (e && e->message && e->message[0] && !strchr(e->message, '/'))
        st = cmd_fail(res, "PROCESSING_ERROR", "%s: %s", what, e->message);
    else
        st = cmd_fail(res, "PROCESSING_ERROR", "%s failed (libgit2 error %d)", what, err);
    git_error_clear();
    return st;
}

/* ---- arguments ------------------------------------------------------- */

/* 1 when `key` is present and of `type`, 0 when absent or null, -1 (res
 * set) when of another type. */
static int arg_get(json_object *args, const char *key, json_type type, const char *expected,
                   json_object **out, struct cmd_result *res)
{
    json_object *v = NULL;
    *out = NULL;
    if (!args || !json_object_object_get_ex(args, key, &v) || !v)
        return 0;
    if (!json_object_is_type(v, type)) {
        cmd_fail(res, "INVALID_ARGS", "%s: expected %s", key, expected);
        return -1;
    }
    *out = v;
    return 1;
}

/* Refuses revision forms that reach leaking libgit2 code: message searches
 * (`:/text`, `^{/text}`, one regex match per commit) and `@{upstream}` /
 * `@{push}` (remote lookup). Reflog forms `@{N}` and `@{-N}` stay. */
static int ref_form_ok(const char *ref)
{
    if (strstr(ref, ":/") || strstr(ref, "{/"))
        return 0;
    for (const char *p = strstr(ref, "@{"); p; p = strstr(p + 2, "@{")) {
        const char *q = p + 2 + (p[2] == '-');
        if (!(*q >= '0' && *q <= '9'))
            return 0;
        while (*q >= '0' && *q <= '9')
            q++;
        if (*q != '}')
            return 0;
    }
    return 1;
}

static int parse_args(const char *name, json_object *args, struct git_args *a,
                      struct cmd_result *res)
{
    json_object *v;
    int rc;
    memset(a, 0, sizeof(*a));
    a->limit = 20;
    a->max_bytes = GIT_CTX_DIFF_DEFAULT_BYTES;
    if (args && !json_object_is_type(args, json_type_object)) {
        cmd_fail(res, "INVALID_ARGS", "args: expected an object");
        return -1;
    }
    if ((rc = arg_get(args, "folder", json_type_string, "a string", &v, res)) < 0)
        return -1;
    if (rc) {
        a->folder = json_object_get_string(v);
        if ((size_t)json_object_get_string_len(v) != strlen(a->folder)) {
            cmd_fail(res, "NOT_FOUND", "folder: no such workspace folder");
            return -1;
        }
    }

    int is_log = strcmp(name, "git.log") == 0, is_diff = strcmp(name, "git.diff") == 0;
    if (is_log || is_diff) {
        if ((rc = arg_get(args, "path", json_type_string, "a string", &v, res)) < 0)
            return -1;
        if (rc) {
            a->path = json_object_get_string(v);
            if ((size_t)json_object_get_string_len(v) != strlen(a->path)) {
                cmd_fail(res, "INVALID_ARGS", "path: contains a NUL character");
                return -1;
            }
        }
    }
    if (is_log) {
        if ((rc = arg_get(args, "limit", json_type_int, "an integer", &v, res)) < 0)
            return -1;
        if (rc) {
            int64_t n = json_object_get_int64(v);
            if (n < 1 || n > GIT_CTX_LOG_MAX) {
                cmd_fail(res, "INVALID_ARGS", "limit: expected 1..%d", GIT_CTX_LOG_MAX);
                return -1;
            }
            a->limit = (int)n;
        }
        if ((rc = arg_get(args, "ref", json_type_string, "a string", &v, res)) < 0)
            return -1;
        if (rc) {
            a->ref = json_object_get_string(v);
            if ((size_t)json_object_get_string_len(v) != strlen(a->ref) || !a->ref[0]) {
                cmd_fail(res, "INVALID_ARGS", "ref: expected a non-empty name");
                return -1;
            }
            if (!ref_form_ok(a->ref)) {
                cmd_fail(res, "INVALID_ARGS",
                         "ref: searches, @{upstream} and @{push} are not supported");
                return -1;
            }
        }
    }
    if (is_diff) {
        if ((rc = arg_get(args, "staged", json_type_boolean, "a boolean", &v, res)) < 0)
            return -1;
        if (rc)
            a->staged = json_object_get_boolean(v);
        if ((rc = arg_get(args, "maxBytes", json_type_int, "an integer", &v, res)) < 0)
            return -1;
        if (rc) {
            int64_t n = json_object_get_int64(v);
            if (n < 1 || n > GIT_CTX_DIFF_MAX_BYTES) {
                cmd_fail(res, "INVALID_ARGS", "maxBytes: expected 1..%d", GIT_CTX_DIFF_MAX_BYTES);
                return -1;
            }
            a->max_bytes = (size_t)n;
        }
    }
    return 0;
}

/* The repository-relative literal pathspec for a folder-relative `path`:
 * prefix joined with the path's components ("." and empty ones dropped).
 * NULL with res set for absolute paths and "..". *out is "" for the whole
 * repository. */
static char *make_pathspec(const char *prefix, const char *path, struct cmd_result *res)
{
    size_t plen = strlen(prefix), len = path ? strlen(path) : 0;
    if (path && path[0] == '/') {
        cmd_fail(res, "INVALID_ARGS", "path: must be relative to the folder");
        return NULL;
    }
    char *out = malloc(plen + len + 2);
    if (!out) {
        cmd_fail(res, "PROCESSING_ERROR", "out of memory");
        return NULL;
    }
    memcpy(out, prefix, plen);
    size_t o = plen;
    const char *p = path;
    while (p && *p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            free(out);
            cmd_fail(res, "INVALID_ARGS", "path: must not contain '..'");
            return NULL;
        }
        if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (o > 0)
                out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
        if (*p == '/')
            p++;
    }
    out[o] = '\0';
    return out;
}

/* ---- folders and the repository cache -------------------------------- */

static int gitdir_identity(git_repository *repo, dev_t *dev, ino_t *ino)
{
    struct stat st;
    if (stat(git_repository_path(repo), &st) != 0)
        return -1;
    *dev = st.st_dev;
    *ino = st.st_ino;
    return 0;
}

static struct repo_entry *cache_slot(struct git_ctx *g)
{
    if (g->n_cache < GIT_CTX_CACHE_MAX)
        return &g->cache[g->n_cache++];
    struct repo_entry *lru = &g->cache[0];
    for (size_t i = 1; i < g->n_cache; i++)
        if (g->cache[i].used < lru->used)
            lru = &g->cache[i];
    entry_clear(lru);
    return lru;
}

/* ---- where the repository's data lives ------------------------------- */

/* 1 when `path` (canonical) is `root` or below it. */
static int under(const char *root, const char *path)
{
    size_t n = strlen(root);
    if (n > 1 && root[n - 1] == '/')
        n--;
    if (n == 1 && root[0] == '/')
        return 1;
    return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* The first line of a small file, or NULL. malloc'd. */
static char *first_line(const char *dir, const char *name)
{
    char path[PATH_MAX], buf[PATH_MAX + 16];
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return NULL;
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *line = fgets(buf, sizeof(buf), f);
    fclose(f);
    if (!line)
        return NULL;
    buf[strcspn(buf, "\r\n")] = '\0';
    return strdup(buf);
}

/* realpath of `p`, relative paths taken from `base`. malloc'd or NULL. */
static char *real_from(const char *base, const char *p)
{
    char joined[PATH_MAX];
    if (p[0] == '/')
        return realpath(p, NULL);
    if (snprintf(joined, sizeof(joined), "%s/%s", base, p) >= (int)sizeof(joined))
        return NULL;
    return realpath(joined, NULL);
}

/* A git dir outside the work tree is one git itself made for it when it
 * points back: a linked worktree's `<gitdir>/gitdir` names this work tree's
 * .git file; a submodule's `core.worktree` names this work tree. A `.git`
 * file written by anyone else (an unpacked archive, a cloned folder) has no
 * such link back, and its repository is not served. */
static int links_back(git_repository *repo, const char *gitdir, const char *workdir)
{
    char dotgit[PATH_MAX];
    int ok = 0;
    if (snprintf(dotgit, sizeof(dotgit), "%s/.git", workdir) >= (int)sizeof(dotgit))
        return 0;
    char *back = first_line(gitdir, "gitdir");
    if (back) {
        char *real = real_from(gitdir, back), *mine = realpath(dotgit, NULL);
        ok = real && mine && strcmp(real, mine) == 0;
        free(real);
        free(mine);
        free(back);
        if (ok)
            return 1;
    }
    git_config *cfg = NULL;
    git_buf wt = {0};
    if (git_repository_config_snapshot(&cfg, repo) == 0 &&
        git_config_get_string_buf(&wt, cfg, "core.worktree") == 0 && wt.ptr) {
        char *real = real_from(gitdir, wt.ptr);
        ok = real && strcmp(real, workdir) == 0;
        free(real);
    }
    git_buf_dispose(&wt);
    git_config_free(cfg);
    git_error_clear();
    return ok;
}

/* Every object store the repository reads from: `objects/info/alternates`
 * lines (relative to the objects folder), followed as libgit2 does, a few
 * levels deep. Each must lie under one of the allowed roots. */
static int alternates_confined(const char *objects, const char *const *roots, size_t n_roots,
                               int depth)
{
    char path[PATH_MAX], line[PATH_MAX + 2];
    if (depth > 5)
        return 0;
    if (snprintf(path, sizeof(path), "%s/info/alternates", objects) >= (int)sizeof(path))
        return 0;
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT || errno == ENOTDIR;
    int ok = 1;
    while (ok && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        char *real = real_from(objects, line);
        int inside = 0;
        for (size_t i = 0; real && i < n_roots && !inside; i++)
            inside = under(roots[i], real);
        ok = inside && alternates_confined(real, roots, n_roots, depth + 1);
        free(real);
    }
    fclose(f);
    return ok;
}

/* The git dir, the common dir and the alternates must belong to this work
 * tree: inside it, or (linked worktrees, submodules) linked back to it. A
 * `.git` file pointing at another repository would otherwise serve that
 * repository's log, staged diff and status to any `read` token. */
static enum cmd_status gitdir_confined(git_repository *repo, const char *workdir,
                                       struct cmd_result *res)
{
    char *gitdir = realpath(git_repository_path(repo), NULL);
    char *common = realpath(git_repository_commondir(repo), NULL);
    char objects[PATH_MAX];
    int ok = gitdir && common;
    if (ok && !under(workdir, gitdir))
        ok = links_back(repo, gitdir, workdir);
    if (ok && !under(workdir, common) && strcmp(common, gitdir) != 0) {
        /* A linked worktree's git dir is <common>/worktrees/<name>. */
        char wt[PATH_MAX];
        ok = snprintf(wt, sizeof(wt), "%s/worktrees", common) < (int)sizeof(wt) &&
             under(wt, gitdir) && !under(workdir, gitdir);
    }
    const char *roots[2] = {workdir, common};
    if (ok)
        ok = snprintf(objects, sizeof(objects), "%s/objects", common) < (int)sizeof(objects) &&
             alternates_confined(objects, roots, under(workdir, common) ? 1 : 2, 0);
    free(gitdir);
    free(common);
    if (!ok)
        return cmd_fail(res, "FORBIDDEN",
                        "the repository's data is outside this folder (a .git file, commondir or "
                        "alternates pointing elsewhere): not served");
    return CMD_OK;
}

/* Opens (or finds in the cache) the repository of `folder`. On failure
 * returns CMD_ERROR with NOT_A_REPOSITORY or PROCESSING_ERROR in res. */
static enum cmd_status open_folder(struct git_ctx *g, const struct workspace_folder *folder,
                                   struct repo_entry **out, struct cmd_result *res)
{
    for (size_t i = 0; i < g->n_cache; i++) {
        struct repo_entry *e = &g->cache[i];
        if (strcmp(e->folder_path, folder->path) != 0)
            continue;
        dev_t dev;
        ino_t ino;
        /* Reuse only while the same .git directory is there: a repository
         * deleted and re-created must not be served from stale objects. */
        if (gitdir_identity(e->repo, &dev, &ino) == 0 && dev == e->git_dev && ino == e->git_ino) {
            e->used = ++g->clock;
            *out = e;
            return CMD_OK;
        }
        entry_clear(e);
        *e = g->cache[--g->n_cache];
        memset(&g->cache[g->n_cache], 0, sizeof(g->cache[0]));
        break;
    }

    git_repository *repo = NULL;
    int err = git_repository_open_ext(&repo, folder->path, 0, NULL);
    if (err < 0) {
        const git_error *e = git_error_last();
        int owner = err == GIT_EOWNER || (e && e->message && strstr(e->message, "safe.directory"));
        git_error_clear();
        if (owner)
            return cmd_fail(res, "PROCESSING_ERROR",
                            "repository is owned by another user (safe.directory)");
        if (err == GIT_ENOTFOUND)
            return cmd_fail(res, "NOT_A_REPOSITORY", "folder is not a git repository");
        return cmd_fail(res, "PROCESSING_ERROR", "cannot open the repository (libgit2 error %d)",
                        err);
    }
    const char *workdir = git_repository_workdir(repo);
    if (git_repository_is_bare(repo) || !workdir) {
        git_repository_free(repo);
        return cmd_fail(res, "NOT_A_REPOSITORY", "folder is in a bare repository");
    }
    /* Both paths are canonical (libgit2 resolves the work dir with
     * realpath; the workspace stores canonical paths). */
    char *canon = realpath(workdir, NULL);
    size_t wlen = canon ? strlen(canon) : 0;
    const char *rest = NULL;
    if (canon && strncmp(folder->path, canon, wlen) == 0 &&
        (folder->path[wlen] == '/' || folder->path[wlen] == '\0'))
        rest = folder->path + wlen + (folder->path[wlen] == '/');
    else if (canon && strcmp(canon, "/") == 0 && folder->path[0] == '/')
        rest = folder->path + 1;
    free(canon);
    if (!rest || strcmp(rest, ".git") == 0 || strncmp(rest, ".git/", 5) == 0) {
        git_repository_free(repo);
        return cmd_fail(res, "NOT_A_REPOSITORY", "folder is not in a repository's work tree");
    }
    char *wd = realpath(workdir, NULL);
    enum cmd_status confined = wd ? gitdir_confined(repo, wd, res)
                                  : cmd_fail(res, "PROCESSING_ERROR", "cannot open the repository");
    free(wd);
    if (confined != CMD_OK) {
        git_repository_free(repo);
        return CMD_ERROR;
    }

    struct repo_entry *e = cache_slot(g);
    e->folder_path = strdup(folder->path);
    e->prefix = strdup(rest);
    e->repo = repo;
    e->used = ++g->clock;
    if (!e->folder_path || !e->prefix || gitdir_identity(repo, &e->git_dev, &e->git_ino) != 0) {
        entry_clear(e);
        *e = g->cache[--g->n_cache];
        memset(&g->cache[g->n_cache], 0, sizeof(g->cache[0]));
        return cmd_fail(res, "PROCESSING_ERROR", "cannot open the repository");
    }
    *out = e;
    return CMD_OK;
}

static enum cmd_status pick_target(struct git_ctx *g, const struct workspace_folder *folders,
                                   size_t n_folders, const char *name, struct git_target *t,
                                   struct cmd_result *res)
{
    if (name) {
        for (size_t i = 0; i < n_folders; i++) {
            if (strcmp(folders[i].name, name) == 0) {
                t->folder = &folders[i];
                return open_folder(g, &folders[i], &t->entry, res);
            }
        }
        return cmd_fail(res, "NOT_FOUND", "no workspace folder named \"%.100s\"", name);
    }
    /* The first folder that is a repository; a repository that fails to
     * open for another reason is skipped but reported if nothing else
     * answers. */
    struct cmd_result first_err = {0};
    for (size_t i = 0; i < n_folders; i++) {
        struct cmd_result r = {0};
        if (open_folder(g, &folders[i], &t->entry, &r) == CMD_OK) {
            t->folder = &folders[i];
            return CMD_OK;
        }
        if (strcmp(r.code, "NOT_A_REPOSITORY") != 0 && !first_err.code)
            first_err = r;
    }
    if (first_err.code) {
        *res = first_err;
        return CMD_ERROR;
    }
    return cmd_fail(res, "NOT_A_REPOSITORY", "no workspace folder is a git repository");
}

/* ---- JSON helpers ---------------------------------------------------- */

/* A repository-relative path made relative to the folder, or NULL when it
 * lies outside the folder. */
static const char *folder_relative(const struct repo_entry *e, const char *path)
{
    size_t n = strlen(e->prefix);
    if (n == 0)
        return path;
    if (strncmp(path, e->prefix, n) != 0 || path[n] != '/')
        return NULL;
    return path[n + 1] ? path + n + 1 : ".";
}

/* Adds entry[key] = path (repaired if needed, then `repaired: true`). */
static void add_path(json_object *entry, const char *key, const char *path)
{
    json_object_object_add(entry, key, utf8_json_string(path));
    if (!utf8_is_valid(path, strlen(path)))
        json_object_object_add(entry, "repaired", json_object_new_boolean(1));
}

static json_object *string_or_null(const char *s)
{
    return s ? utf8_json_string(s) : NULL;
}

/* "refs/heads/x" -> "x", "refs/remotes/o/x" -> "o/x"; else unchanged. */
static const char *short_ref(const char *name)
{
    if (strncmp(name, "refs/heads/", 11) == 0)
        return name + 11;
    if (strncmp(name, "refs/remotes/", 13) == 0)
        return name + 13;
    return name;
}

/* ---- HEAD, branch, upstream ------------------------------------------ */

struct head_info {
    int unborn, detached;
    int has_oid;
    git_oid oid;
    char *refname; /* "refs/heads/x" when HEAD names a branch (maybe unborn) */
};

static void head_info_free(struct head_info *h)
{
    free(h->refname);
}

static int read_head(git_repository *repo, struct head_info *h, struct cmd_result *res)
{
    memset(h, 0, sizeof(*h));
    git_reference *head = NULL;
    int err = git_reference_lookup(&head, repo, "HEAD");
    if (err < 0) {
        fail_git(res, "reading HEAD", err);
        return -1;
    }
    if (git_reference_type(head) == GIT_REFERENCE_SYMBOLIC) {
        const char *target = git_reference_symbolic_target(head);
        if (strncmp(target, "refs/heads/", 11) == 0 && !(h->refname = strdup(target))) {
            git_reference_free(head);
            cmd_fail(res, "PROCESSING_ERROR", "out of memory");
            return -1;
        }
        h->detached = 0;
    } else {
        h->detached = 1;
    }
    git_reference_free(head);
    err = git_reference_name_to_id(&h->oid, repo, "HEAD");
    if (err == 0) {
        h->has_oid = 1;
    } else if (err == GIT_ENOTFOUND || err == GIT_EUNBORNBRANCH) {
        h->unborn = 1;
        git_error_clear();
    } else {
        head_info_free(h);
        fail_git(res, "resolving HEAD", err);
        return -1;
    }
    return 0;
}

/* libgit2 1.5.1 leaks the pcre2 match data (~20 KiB) of every config entry
 * that a regex-filtered config walk does not match (git_regexp_match; fixed
 * upstream in 1.6). git_remote_lookup, the submodule code and revparse's `:/` and
 * describe forms walk that way, so this file avoids them: the upstream is
 * read from the config here, submodules are handled below, and refs are
 * resolved without those forms. */

struct fetch_match {
    const char *merge;
    git_buf *out;
    int found;
};

static int fetch_spec_cb(const git_config_entry *e, void *payload)
{
    struct fetch_match *m = payload;
    git_refspec *spec = NULL;
    if (m->found || e->value[0] == '^' || git_refspec_parse(&spec, e->value, 1) < 0) {
        git_error_clear();
        return 0;
    }
    if (git_refspec_src_matches(spec, m->merge) &&
        git_refspec_transform(m->out, spec, m->merge) == 0)
        m->found = 1;
    git_error_clear();
    git_refspec_free(spec);
    return 0;
}

/* The full name of the upstream of branch `refname` ("refs/heads/x"), as
 * git_branch_upstream_name finds it: branch.x.remote and branch.x.merge,
 * mapped through the remote's first matching fetch refspec ("." = a local
 * branch). A malloc'd string, or NULL when there is none. */
static char *upstream_name(git_repository *repo, const char *refname)
{
    git_config *cfg = NULL;
    const char *branch = refname + 11;
    size_t klen = strlen(branch) + 32;
    char *key = malloc(klen), *result = NULL;
    if (!key || git_repository_config_snapshot(&cfg, repo) < 0) {
        free(key);
        git_error_clear();
        return NULL;
    }
    const char *remote = NULL, *merge = NULL;
    snprintf(key, klen, "branch.%s.remote", branch);
    int ok = git_config_get_string(&remote, cfg, key) == 0;
    snprintf(key, klen, "branch.%s.merge", branch);
    ok = ok && git_config_get_string(&merge, cfg, key) == 0 && remote[0] && merge[0];
    if (ok && strcmp(remote, ".") == 0) {
        result = strdup(merge);
    } else if (ok) {
        git_buf out = {0};
        struct fetch_match m = {merge, &out, 0};
        size_t flen = strlen(remote) + 32;
        char *fkey = malloc(flen);
        if (fkey) {
            snprintf(fkey, flen, "remote.%s.fetch", remote);
            git_config_get_multivar_foreach(cfg, fkey, NULL, fetch_spec_cb, &m);
            free(fkey);
        }
        if (m.found)
            result = strdup(out.ptr);
        git_buf_dispose(&out);
    }
    git_error_clear();
    git_config_free(cfg);
    free(key);
    return result;
}

/* branch, head, detached, unborn, upstream, ahead, behind. A broken or
 * missing upstream is reported as none (it must not fail git.status). */
static int add_head_fields(git_repository *repo, json_object *out, struct cmd_result *res)
{
    struct head_info h;
    if (read_head(repo, &h, res) < 0)
        return -1;
    char hex[GIT_OID_HEXSZ + 1];
    json_object_object_add(out, "branch", string_or_null(h.refname ? short_ref(h.refname) : NULL));
    json_object_object_add(
        out, "head",
        h.has_oid ? json_object_new_string(git_oid_tostr(hex, sizeof(hex), &h.oid)) : NULL);
    json_object_object_add(out, "detached", json_object_new_boolean(h.detached));
    json_object_object_add(out, "unborn", json_object_new_boolean(h.unborn));

    size_t ahead = 0, behind = 0;
    json_object *upstream = NULL;
    int gone = 0;
    char *up = h.refname ? upstream_name(repo, h.refname) : NULL;
    if (up) {
        upstream = utf8_json_string(short_ref(up));
        git_oid uoid;
        if (git_reference_name_to_id(&uoid, repo, up) != 0)
            gone = 1;
        else if (h.has_oid && git_graph_ahead_behind(&ahead, &behind, repo, &h.oid, &uoid) != 0)
            ahead = behind = 0;
    }
    free(up);
    git_error_clear();
    json_object_object_add(out, "upstream", upstream);
    if (gone)
        json_object_object_add(out, "upstreamGone", json_object_new_boolean(1));
    json_object_object_add(out, "ahead", json_object_new_int64((int64_t)ahead));
    json_object_object_add(out, "behind", json_object_new_int64((int64_t)behind));
    head_info_free(&h);
    return 0;
}

/* ---- git.status ------------------------------------------------------ */

static char index_letter(unsigned s)
{
    if (s & GIT_STATUS_INDEX_NEW)
        return 'A';
    if (s & GIT_STATUS_INDEX_DELETED)
        return 'D';
    if (s & GIT_STATUS_INDEX_RENAMED)
        return 'R';
    if (s & GIT_STATUS_INDEX_TYPECHANGE)
        return 'T';
    if (s & GIT_STATUS_INDEX_MODIFIED)
        return 'M';
    return 0;
}

static char workdir_letter(unsigned s)
{
    if (s & GIT_STATUS_WT_DELETED)
        return 'D';
    if (s & GIT_STATUS_WT_RENAMED)
        return 'R';
    if (s & GIT_STATUS_WT_TYPECHANGE)
        return 'T';
    if (s & GIT_STATUS_WT_MODIFIED)
        return 'M';
    return 0;
}

static const char *delta_path(const git_diff_delta *d)
{
    if (!d)
        return NULL;
    return d->new_file.path ? d->new_file.path : d->old_file.path;
}

struct status_lists {
    json_object *staged, *unstaged, *untracked, *conflicted;
    int truncated;
};

/* Appends entry to list unless it is full (then frees it, sets truncated). */
static void list_add(json_object *list, json_object *entry, int *truncated)
{
    if (json_object_array_length(list) >= GIT_CTX_STATUS_MAX) {
        json_object_put(entry);
        *truncated = 1;
        return;
    }
    json_object_array_add(list, entry);
}

static json_object *path_entry(const char *path, char status)
{
    json_object *o = json_object_new_object();
    add_path(o, "path", path);
    if (status) {
        char s[2] = {status, '\0'};
        json_object_object_add(o, "status", json_object_new_string(s));
    }
    return o;
}

/* Conflicted paths can come from both halves of the status (HEAD to index
 * and index to work tree); list each once. */
static void add_conflicted(struct status_lists *l, const char *path)
{
    json_object *list = l->conflicted;
    char *fixed = utf8_repair(path, strlen(path));
    for (size_t i = 0; fixed && i < json_object_array_length(list); i++) {
        json_object *p = json_object_object_get(json_object_array_get_idx(list, i), "path");
        if (strcmp(json_object_get_string(p), fixed) == 0) {
            free(fixed);
            return;
        }
    }
    free(fixed);
    list_add(list, path_entry(path, 0), &l->truncated);
}

static void status_entry(const struct repo_entry *re, const git_status_entry *se,
                         struct status_lists *l)
{
    unsigned s = se->status;
    if (s & GIT_STATUS_IGNORED)
        return;
    if (s & GIT_STATUS_CONFLICTED) {
        const char *p = folder_relative(re, se->index_to_workdir ? delta_path(se->index_to_workdir)
                                                                 : delta_path(se->head_to_index));
        if (p)
            add_conflicted(l, p);
        return;
    }
    char x = index_letter(s);
    if (x && se->head_to_index) {
        const char *p = folder_relative(re, delta_path(se->head_to_index));
        if (p) {
            json_object *o = path_entry(p, x);
            const char *from =
                x == 'R' ? folder_relative(re, se->head_to_index->old_file.path) : NULL;
            if (from)
                add_path(o, "from", from);
            list_add(l->staged, o, &l->truncated);
        }
    }
    if (!se->index_to_workdir)
        return;
    const char *p = folder_relative(re, delta_path(se->index_to_workdir));
    if (!p)
        return;
    if (s & GIT_STATUS_WT_NEW) {
        list_add(l->untracked, path_entry(p, 0), &l->truncated);
        return;
    }
    char y = workdir_letter(s);
    if (y)
        list_add(l->unstaged, path_entry(p, y), &l->truncated);
}

/* ---- submodules -------------------------------------------------------
 * libgit2's own submodule handling leaks (see above) on every status or
 * work-tree diff of a repository with submodules, so those run with
 * submodules excluded and the work-tree state of each submodule is found
 * here, as `git status` reports it: the checked-out commit against the one
 * recorded in the index, and changes (untracked files included) inside.
 * Nested submodules and `submodule.<name>.ignore` are not considered.
 * Changes between HEAD and the index need no submodule code and stay with
 * libgit2. Still leaking, and rare: an untracked nested repository in a
 * repository that has a .gitmodules (libgit2 looks it up as a submodule on
 * every status), and opening a repository with repositoryformatversion 1
 * (its extensions check; once per cached repository, per call for such a
 * submodule). */

/* Changes inside a submodule's checkout: to tracked files, untracked files. */
enum { SUB_DIRTY = 1, SUB_UNTRACKED = 2 };

struct sub_change {
    char *path;       /* repository-relative */
    char status;      /* 'M' (another commit, or changes inside) or 'D' (gone) */
    git_oid recorded; /* in the index */
    git_oid current;  /* checked out ('M' only) */
    int inside;       /* SUB_DIRTY | SUB_UNTRACKED */
};

struct sub_changes {
    struct sub_change *v;
    size_t n;
};

static void sub_changes_free(struct sub_changes *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].path);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* SUB_DIRTY and/or SUB_UNTRACKED for the checkout of a submodule. */
static int sub_changes_inside(git_repository *sub)
{
    git_status_options opts;
    git_status_options_init(&opts, GIT_STATUS_OPTIONS_VERSION);
    opts.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
    opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
    git_status_list *list = NULL;
    int found = 0;
    if (git_status_list_new(&list, sub, &opts) == 0) {
        size_t n = git_status_list_entrycount(list);
        for (size_t i = 0; i < n && found != (SUB_DIRTY | SUB_UNTRACKED); i++)
            found |= git_status_byindex(list, i)->status == GIT_STATUS_WT_NEW ? SUB_UNTRACKED
                                                                              : SUB_DIRTY;
    }
    git_status_list_free(list);
    git_error_clear();
    return found;
}

/* The work-tree state of one gitlink: fills c and returns 1 when it
 * differs from the index, 0 when not (or not checked out). A gitlink
 * replaced by a file is a type change that libgit2 reports itself. */
static int sub_state(const char *workdir, const git_index_entry *e, struct sub_change *c)
{
    size_t len = strlen(workdir) + strlen(e->path) + 1;
    char *full = malloc(len);
    if (!full)
        return 0;
    snprintf(full, len, "%s%s", workdir, e->path);
    memset(c, 0, sizeof(*c));
    c->recorded = e->id;
    struct stat st;
    int changed = 0;
    if (lstat(full, &st) != 0) {
        c->status = 'D';
        changed = errno == ENOENT || errno == ENOTDIR;
    } else if (S_ISDIR(st.st_mode)) {
        git_repository *sub = NULL;
        struct cmd_result ignored = {0};
        char *sub_real = realpath(full, NULL);
        if (sub_real &&
            git_repository_open_ext(&sub, full, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) == 0 &&
            gitdir_confined(sub, sub_real, &ignored) == CMD_OK &&
            git_reference_name_to_id(&c->current, sub, "HEAD") == 0) {
            c->status = 'M';
            c->inside = sub_changes_inside(sub);
            changed = c->inside || !git_oid_equal(&c->current, &c->recorded);
        }
        git_repository_free(sub);
        free(sub_real);
        git_error_clear();
    }
    free(full);
    return changed;
}

/* The submodules matching the literal pathspec `spec` ("" for all) whose
 * work tree differs from the index (stage-0 gitlinks only: conflicts are
 * reported as such). */
static int find_sub_changes(git_repository *repo, git_index *index, const char *spec,
                            struct sub_changes *out)
{
    const char *workdir = git_repository_workdir(repo);
    size_t plen = strlen(spec), cap = 0;
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < git_index_entrycount(index); i++) {
        const git_index_entry *e = git_index_get_byindex(index, i);
        if (!e || e->mode != GIT_FILEMODE_COMMIT || git_index_entry_stage(e) != 0)
            continue;
        if (plen && (strncmp(e->path, spec, plen) != 0 || (e->path[plen] && e->path[plen] != '/')))
            continue;
        struct sub_change c;
        if (!sub_state(workdir, e, &c))
            continue;
        if (out->n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct sub_change *v = realloc(out->v, ncap * sizeof(*v));
            if (!v)
                return -1;
            out->v = v;
            cap = ncap;
        }
        if (!(c.path = strdup(e->path)))
            return -1;
        out->v[out->n++] = c;
    }
    return 0;
}

static int cmp_entry_path(const void *a, const void *b)
{
    json_object *const *x = a, *const *y = b;
    return strcmp(json_object_get_string(json_object_object_get(*x, "path")),
                  json_object_get_string(json_object_object_get(*y, "path")));
}

/* Runs one half of the status into l. */
static int status_half(const struct repo_entry *re, git_status_show_t show, unsigned flags,
                       struct status_lists *l)
{
    git_status_options opts;
    git_status_options_init(&opts, GIT_STATUS_OPTIONS_VERSION);
    opts.show = show;
    opts.flags = flags | GIT_STATUS_OPT_SORT_CASE_SENSITIVELY;
    char *spec = re->prefix;
    if (spec[0]) {
        opts.pathspec.strings = &spec;
        opts.pathspec.count = 1;
        opts.flags |= GIT_STATUS_OPT_DISABLE_PATHSPEC_MATCH;
    }
    git_status_list *list = NULL;
    int err = git_status_list_new(&list, re->repo, &opts);
    if (err < 0)
        return err;
    size_t n = git_status_list_entrycount(list);
    for (size_t i = 0; i < n; i++)
        status_entry(re, git_status_byindex(list, i), l);
    git_status_list_free(list);
    return 0;
}

static enum cmd_status run_status(const struct git_target *t, json_object *out,
                                  struct cmd_result *res)
{
    git_repository *repo = t->entry->repo;
    if (add_head_fields(repo, out, res) < 0)
        return CMD_ERROR;

    /* Another process may have staged or committed since the last call:
     * re-read the index if its file changed (never written back). */
    git_index *index = NULL;
    int err = git_repository_index(&index, repo);
    if (err == 0)
        err = git_index_read(index, 0);
    if (err < 0) {
        git_index_free(index);
        return fail_git(res, "reading the index", err);
    }

    struct status_lists l = {
        .staged = json_object_new_array(),
        .unstaged = json_object_new_array(),
        .untracked = json_object_new_array(),
        .conflicted = json_object_new_array(),
    };
    struct sub_changes subs = {0};
    /* Like `git status --porcelain=v2 -uall`: renames found between HEAD
     * and the index, untracked files one by one; submodules as above. */
    err =
        status_half(t->entry, GIT_STATUS_SHOW_INDEX_ONLY, GIT_STATUS_OPT_RENAMES_HEAD_TO_INDEX, &l);
    if (err == 0)
        err = status_half(t->entry, GIT_STATUS_SHOW_WORKDIR_ONLY,
                          GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
                              GIT_STATUS_OPT_EXCLUDE_SUBMODULES,
                          &l);
    if (err == 0 && find_sub_changes(repo, index, t->entry->prefix, &subs) < 0)
        err = -1;
    git_index_free(index);
    for (size_t i = 0; i < subs.n; i++) {
        const char *p = folder_relative(t->entry, subs.v[i].path);
        if (p)
            list_add(l.unstaged, path_entry(p, subs.v[i].status), &l.truncated);
    }
    if (subs.n)
        json_object_array_sort(l.unstaged, cmp_entry_path);
    sub_changes_free(&subs);
    json_object_object_add(out, "staged", l.staged);
    json_object_object_add(out, "unstaged", l.unstaged);
    json_object_object_add(out, "untracked", l.untracked);
    json_object_object_add(out, "conflicted", l.conflicted);
    json_object_object_add(out, "truncated", json_object_new_boolean(l.truncated));
    if (err < 0)
        return fail_git(res, "git status", err);
    return CMD_OK;
}

/* ---- git.status from an earlier answer -------------------------------- */

/* 1 when `path` is one of `paths` or lies below one of them. */
static int path_in(const char *path, char *const *paths, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(paths[i]);
        if (strncmp(path, paths[i], len) == 0 && (path[len] == '\0' || path[len] == '/'))
            return 1;
    }
    return 0;
}

/* base_list's entries outside `paths`, shared (not copied) into a new list. */
static json_object *keep_outside(json_object *base_list, char *const *paths, size_t n)
{
    json_object *out = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(base_list); i++) {
        json_object *e = json_object_array_get_idx(base_list, i);
        json_object *p = json_object_object_get(e, "path");
        if (!path_in(json_object_get_string(p), paths, n))
            json_object_array_add(out, json_object_get(e));
    }
    return out;
}

/* Moves every entry of `from` to the end of `to`, then sorts `to` by path
 * as the full status orders it. -1 when `to` would go past the list cap
 * (the full status must then decide what is dropped). */
static int merge_list(json_object *to, json_object *from)
{
    size_t n = json_object_array_length(from);
    if (json_object_array_length(to) + n > GIT_CTX_STATUS_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        json_object_array_add(to, json_object_get(json_object_array_get_idx(from, i)));
    if (n)
        json_object_array_sort(to, cmp_entry_path);
    return 0;
}

/* A list of `base` that can be reused: present, an array, not truncated. */
static json_object *base_list(json_object *base, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(base, key, &v) && json_object_is_type(v, json_type_array)
               ? v
               : NULL;
}

/* 1 when the index has a gitlink: submodules are found by walking them all
 * (find_sub_changes), which a partial look cannot do. */
static int index_has_gitlink(git_index *index)
{
    for (size_t i = 0; i < git_index_entrycount(index); i++) {
        const git_index_entry *e = git_index_get_byindex(index, i);
        if (e && e->mode == GIT_FILEMODE_COMMIT)
            return 1;
    }
    return 0;
}

/* What of the index the status depends on: each entry's path, mode, object
 * and stage or flags, not its stat data (which `git status` itself rewrites
 * when it refreshes the index). FNV-1a, 64 bits. */
static uint64_t index_digest(git_index *index)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t n = git_index_entrycount(index);
    for (size_t i = 0; i < n; i++) {
        const git_index_entry *e = git_index_get_byindex(index, i);
        if (!e)
            continue;
        uint32_t meta[3] = {e->mode, e->flags, e->flags_extended};
        const unsigned char *parts[3] = {(const unsigned char *)e->path, e->id.id,
                                         (const unsigned char *)meta};
        size_t lens[3] = {strlen(e->path) + 1, sizeof(e->id.id), sizeof(meta)};
        for (int p = 0; p < 3; p++)
            for (size_t k = 0; k < lens[p]; k++)
                h = (h ^ parts[p][k]) * 0x100000001b3ULL;
    }
    h ^= n;
    return h ? h : 1; /* 0 means "unknown" */
}

/* The index's digest, 0 when it cannot be read (the next update then runs
 * the full status). */
static uint64_t current_index_digest(git_repository *repo)
{
    git_index *index = NULL;
    uint64_t d = 0;
    if (git_repository_index(&index, repo) == 0 && git_index_read(index, 0) == 0)
        d = index_digest(index);
    git_index_free(index);
    git_error_clear();
    return d;
}

/* The work-tree status of `paths` only, into l. */
static int collect_paths(const struct git_target *t, char *const *paths, size_t n_paths,
                         struct status_lists *l, struct cmd_result *res)
{
    git_status_options opts;
    git_status_options_init(&opts, GIT_STATUS_OPTIONS_VERSION);
    opts.show = GIT_STATUS_SHOW_WORKDIR_ONLY;
    opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
                 GIT_STATUS_OPT_EXCLUDE_SUBMODULES | GIT_STATUS_OPT_DISABLE_PATHSPEC_MATCH |
                 GIT_STATUS_OPT_SORT_CASE_SENSITIVELY;
    opts.pathspec.strings = (char **)paths;
    opts.pathspec.count = n_paths;
    git_status_list *list = NULL;
    int err = git_status_list_new(&list, t->entry->repo, &opts);
    if (err < 0) {
        fail_git(res, "git status", err);
        return -1;
    }
    size_t n = git_status_list_entrycount(list);
    for (size_t i = 0; i < n; i++)
        status_entry(t->entry, git_status_byindex(list, i), l);
    git_status_list_free(list);
    return 0;
}

/* The status as `base` said, with the work-tree state of `paths` looked at
 * again. 1 when it cannot give the full status's answer (the caller runs
 * that instead), 0 with out filled, -1 with res set. */
static int update_status(const struct git_target *t, json_object *base, char *const *paths,
                         size_t n_paths, int index_changed, uint64_t *digest, json_object *out,
                         struct cmd_result *res)
{
    json_object *b_staged = base_list(base, "staged"), *b_unstaged = base_list(base, "unstaged"),
                *b_untracked = base_list(base, "untracked"),
                *b_conflicted = base_list(base, "conflicted"), *trunc = NULL;
    if (t->entry->prefix[0] || !b_staged || !b_unstaged || !b_untracked || !b_conflicted ||
        !json_object_object_get_ex(base, "truncated", &trunc) || json_object_get_boolean(trunc))
        return 1;
    for (size_t i = 0; i < n_paths; i++)
        if (!paths[i][0] || !utf8_is_valid(paths[i], strlen(paths[i])))
            return 1;

    git_repository *repo = t->entry->repo;
    git_index *index = NULL;
    int err = git_repository_index(&index, repo);
    if (err == 0)
        err = git_index_read(index, 0);
    if (err < 0) {
        git_index_free(index);
        fail_git(res, "reading the index", err);
        return -1;
    }
    int subs = index_has_gitlink(index);
    uint64_t d = index_changed ? index_digest(index) : *digest;
    git_index_free(index);
    if (subs || d != *digest || !d)
        return 1; /* the index says something else now: staged lists too */

    struct status_lists fresh = {
        .staged = json_object_new_array(),
        .unstaged = json_object_new_array(),
        .untracked = json_object_new_array(),
        .conflicted = json_object_new_array(),
    };
    if (n_paths > 0 && collect_paths(t, paths, n_paths, &fresh, res) < 0) {
        json_object_put(fresh.staged);
        json_object_put(fresh.unstaged);
        json_object_put(fresh.untracked);
        json_object_put(fresh.conflicted);
        return -1;
    }

    /* The index did not change (the caller knows: it watches .git), so the
     * staged and conflicted lists stand; the work-tree lists are the old
     * ones outside `paths` and the fresh ones inside. */
    json_object *unstaged = keep_outside(b_unstaged, paths, n_paths);
    json_object *untracked = keep_outside(b_untracked, paths, n_paths);
    int over = fresh.truncated || merge_list(unstaged, fresh.unstaged) < 0 ||
               merge_list(untracked, fresh.untracked) < 0;
    json_object_put(fresh.staged);
    json_object_put(fresh.unstaged);
    json_object_put(fresh.untracked);
    json_object_put(fresh.conflicted);
    if (over || add_head_fields(repo, out, res) < 0) {
        json_object_put(unstaged);
        json_object_put(untracked);
        return over ? 1 : -1;
    }
    json_object_object_add(out, "staged", json_object_get(b_staged));
    json_object_object_add(out, "unstaged", unstaged);
    json_object_object_add(out, "untracked", untracked);
    json_object_object_add(out, "conflicted", json_object_get(b_conflicted));
    json_object_object_add(out, "truncated", json_object_new_boolean(0));
    return 0;
}

/* Every answer says which folder it is for and where that lies in the
 * repository. Takes out. */
static enum cmd_status finish_result(const struct git_target *t, json_object *out,
                                     struct cmd_result *res)
{
    json_object_object_add(out, "folder", utf8_json_string(t->folder->name));
    json_object_object_add(out, "prefix", utf8_json_string(t->entry->prefix));
    res->result = out;
    return CMD_OK;
}

enum cmd_status git_ctx_status_update(struct git_ctx *g, const struct workspace_folder *folders,
                                      size_t n_folders, const char *name, json_object *base,
                                      char *const *paths, size_t n_paths, int index_changed,
                                      uint64_t *digest, int *partial, struct cmd_result *res)
{
    res->result = NULL;
    *partial = 0;
    struct git_target t = {0};
    if (pick_target(g, folders, n_folders, name, &t, res) != CMD_OK)
        return CMD_ERROR;
    json_object *out = json_object_new_object();
    int rc = base ? update_status(&t, base, paths, n_paths, index_changed, digest, out, res) : 1;
    if (rc == 1) {
        /* Start again: update_status adds nothing before it decides. The
         * digest is taken before the walk: an index rewritten during it then
         * shows as a difference next time, never the other way round. */
        json_object_put(out);
        out = json_object_new_object();
        *digest = current_index_digest(t.entry->repo);
        rc = run_status(&t, out, res) == CMD_OK ? 0 : -1;
    } else if (rc == 0) {
        *partial = 1;
    }
    if (rc < 0) {
        json_object_put(out);
        return CMD_ERROR;
    }
    return finish_result(&t, out, res);
}

/* ---- git.log --------------------------------------------------------- */

/* The walk queue: newest commit time first, ties in insertion order, as
 * `git log` orders commits. */
struct walk_item {
    git_oid oid;
    int64_t time;
    uint64_t seq;
};

struct walk {
    struct walk_item *heap;
    size_t n, cap;
    uint64_t seq;
    git_oid *seen; /* open addressing; all-zero oid = empty slot */
    size_t seen_n, seen_cap;
};

static int item_before(const struct walk_item *a, const struct walk_item *b)
{
    return a->time > b->time || (a->time == b->time && a->seq < b->seq);
}

static int heap_push(struct walk *w, const git_oid *oid, int64_t time)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct walk_item *h = realloc(w->heap, cap * sizeof(*h));
        if (!h)
            return -1;
        w->heap = h;
        w->cap = cap;
    }
    size_t i = w->n++;
    w->heap[i] = (struct walk_item){*oid, time, w->seq++};
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!item_before(&w->heap[i], &w->heap[p]))
            break;
        struct walk_item tmp = w->heap[i];
        w->heap[i] = w->heap[p];
        w->heap[p] = tmp;
        i = p;
    }
    return 0;
}

static struct walk_item heap_pop(struct walk *w)
{
    struct walk_item top = w->heap[0];
    w->heap[0] = w->heap[--w->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < w->n && item_before(&w->heap[l], &w->heap[m]))
            m = l;
        if (r < w->n && item_before(&w->heap[r], &w->heap[m]))
            m = r;
        if (m == i)
            break;
        struct walk_item tmp = w->heap[i];
        w->heap[i] = w->heap[m];
        w->heap[m] = tmp;
        i = m;
    }
    return top;
}

static size_t oid_hash(const git_oid *oid)
{
    size_t h;
    memcpy(&h, oid->id, sizeof(h));
    return h;
}

/* 1 if newly added, 0 if already seen, -1 out of memory. */
static int seen_add(struct walk *w, const git_oid *oid)
{
    if ((w->seen_n + 1) * 2 > w->seen_cap) {
        size_t cap = w->seen_cap ? w->seen_cap * 2 : 256;
        git_oid *t = calloc(cap, sizeof(*t));
        if (!t)
            return -1;
        for (size_t i = 0; i < w->seen_cap; i++) {
            if (git_oid_is_zero(&w->seen[i]))
                continue;
            size_t j = oid_hash(&w->seen[i]) & (cap - 1);
            while (!git_oid_is_zero(&t[j]))
                j = (j + 1) & (cap - 1);
            t[j] = w->seen[i];
        }
        free(w->seen);
        w->seen = t;
        w->seen_cap = cap;
    }
    size_t j = oid_hash(oid) & (w->seen_cap - 1);
    while (!git_oid_is_zero(&w->seen[j])) {
        if (git_oid_equal(&w->seen[j], oid))
            return 0;
        j = (j + 1) & (w->seen_cap - 1);
    }
    w->seen[j] = *oid;
    w->seen_n++;
    return 1;
}

/* Queues a commit once; the all-zero oid cannot be a commit. */
static int walk_push(struct walk *w, const git_commit *c)
{
    const git_oid *oid = git_commit_id(c);
    int added = seen_add(w, oid);
    if (added <= 0)
        return added;
    return heap_push(w, oid, (int64_t)git_commit_time(c));
}

/* The tree entry at `path` in commit c: 1 found (oid, mode set), 0 absent. */
static int entry_at(const git_commit *c, const char *path, git_oid *oid, unsigned *mode)
{
    git_tree *tree = NULL;
    git_tree_entry *e = NULL;
    int err = git_commit_tree(&tree, c);
    if (err < 0)
        return err;
    err = git_tree_entry_bypath(&e, tree, path);
    git_tree_free(tree);
    if (err == GIT_ENOTFOUND) {
        git_error_clear();
        return 0;
    }
    if (err < 0)
        return err;
    *oid = *git_tree_entry_id(e);
    *mode = (unsigned)git_tree_entry_filemode(e);
    git_tree_entry_free(e);
    return 1;
}

/* Commit text as UTF-8: converted from the commit's `encoding` header when
 * it names another encoding (as `git log` does), else repaired if needed. */
static json_object *commit_text(const char *s, iconv_t cd)
{
    if (cd != (iconv_t)-1) {
        size_t inlen = strlen(s), outlen = inlen * 4 + 1;
        char *out = malloc(outlen), *o = out, *in = (char *)s;
        iconv(cd, NULL, NULL, NULL, NULL);
        if (out && iconv(cd, &in, &inlen, &o, &outlen) != (size_t)-1 && outlen > 0) {
            *o = '\0';
            json_object *j = utf8_json_string(out);
            free(out);
            return j;
        }
        free(out);
    }
    return utf8_json_string(s);
}

static json_object *commit_json(git_commit *c)
{
    char hex[GIT_OID_HEXSZ + 1], abbrev[8];
    const git_signature *a = git_commit_author(c);
    const char *summary = git_commit_summary(c);
    const char *enc = git_commit_message_encoding(c);
    iconv_t cd = (iconv_t)-1;
    if (enc && strcasecmp(enc, "UTF-8") != 0 && strcasecmp(enc, "UTF8") != 0)
        cd = iconv_open("UTF-8", enc);
    json_object *o = json_object_new_object();
    json_object_object_add(
        o, "id", json_object_new_string(git_oid_tostr(hex, sizeof(hex), git_commit_id(c))));
    json_object_object_add(
        o, "shortId",
        json_object_new_string(git_oid_tostr(abbrev, sizeof(abbrev), git_commit_id(c))));
    json_object_object_add(o, "summary", commit_text(summary ? summary : "", cd));
    json_object_object_add(o, "author", commit_text(a && a->name ? a->name : "", cd));
    json_object_object_add(o, "email", commit_text(a && a->email ? a->email : "", cd));
    json_object_object_add(o, "time", json_object_new_int64(a ? (int64_t)a->when.time : 0));
    if (cd != (iconv_t)-1)
        iconv_close(cd);
    return o;
}

/* Decides whether commit c is shown for `path` and queues the parents to
 * follow: a commit TREESAME to a parent (same entry at path) is hidden and
 * only that parent followed; otherwise it is shown and all parents
 * followed. A root commit is shown when the path exists in it. */
static int walk_step(struct walk *w, git_commit *c, const char *path, int *show)
{
    unsigned n = git_commit_parentcount(c);
    git_oid coid, poid;
    unsigned cmode = 0, pmode = 0;
    int chas = 0, err;
    if (path && (chas = entry_at(c, path, &coid, &cmode)) < 0)
        return chas;
    *show = path ? (n > 0 || chas) : 1;
    for (unsigned i = 0; path && i < n; i++) {
        git_commit *p = NULL;
        if ((err = git_commit_parent(&p, c, i)) < 0)
            return err;
        int phas = entry_at(p, path, &poid, &pmode);
        if (phas < 0) {
            git_commit_free(p);
            return phas;
        }
        if (phas == chas && (!chas || (git_oid_equal(&poid, &coid) && pmode == cmode))) {
            *show = 0;
            err = walk_push(w, p);
            git_commit_free(p);
            return err < 0 ? -1 : 0;
        }
        git_commit_free(p);
    }
    for (unsigned i = 0; i < n; i++) {
        git_commit *p = NULL;
        if ((err = git_commit_parent(&p, c, i)) < 0)
            return err;
        err = walk_push(w, p);
        git_commit_free(p);
        if (err < 0)
            return -1;
    }
    return 0;
}

static int all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdefABCDEF", s[i]))
            return 0;
    return 1;
}

/* What git_revparse_single does for a plain name (full id, ref name, short
 * id, `git describe` output), without its regex-based describe check. */
static int resolve_name(git_repository *repo, const char *name, git_object **out)
{
    size_t len = strlen(name);
    git_oid oid;
    if (len == GIT_OID_HEXSZ && all_hex(name, len) && git_oid_fromstr(&oid, name) == 0 &&
        git_object_lookup(out, repo, &oid, GIT_OBJECT_ANY) == 0)
        return 0;
    git_error_clear();
    git_reference *ref = NULL, *resolved = NULL;
    int err = git_reference_dwim(&ref, repo, name);
    if (err == 0 && (err = git_reference_resolve(&resolved, ref)) == 0)
        err = git_object_lookup(out, repo, git_reference_target(resolved), GIT_OBJECT_ANY);
    git_reference_free(ref);
    git_reference_free(resolved);
    if (err != GIT_ENOTFOUND && err != GIT_EINVALIDSPEC)
        return err;
    git_error_clear();
    /* A short id, or the id at the end of "name-N-g<id>". */
    const char *id = name;
    const char *g = len > 2 ? strstr(name, "-g") : NULL;
    while (g && strstr(g + 2, "-g"))
        g = strstr(g + 2, "-g");
    if (!(len >= 4 && len < GIT_OID_HEXSZ && all_hex(name, len)) && g && g > name) {
        const char *d = g;
        while (d > name && d[-1] >= '0' && d[-1] <= '9')
            d--;
        if (d < g && d > name + 1 && d[-1] == '-')
            id = g + 2;
    }
    size_t idlen = strlen(id);
    if (idlen >= 4 && idlen < GIT_OID_HEXSZ && all_hex(id, idlen) &&
        git_oid_fromstrn(&oid, id, idlen) == 0)
        return git_object_lookup_prefix(out, repo, &oid, idlen, GIT_OBJECT_ANY);
    return GIT_ENOTFOUND;
}

/* A `ref` argument: a plain name, or a revision expression (`main~2`,
 * `v1^{commit}`, `@{1}`) whose base name must resolve first, so that
 * revparse never falls back to its describe check. */
static int resolve_ref(git_repository *repo, const char *ref, git_object **out)
{
    size_t base = strcspn(ref, "~^@:");
    if (!ref[base])
        return resolve_name(repo, ref, out);
    if (base > 0) {
        char *name = strndup(ref, base);
        git_object *obj = NULL;
        int err = name ? resolve_name(repo, name, &obj) : -1;
        free(name);
        git_object_free(obj);
        if (err < 0)
            return err;
    }
    return git_revparse_single(out, repo, ref);
}

static enum cmd_status run_log(const struct git_target *t, const struct git_args *a,
                               json_object *out, struct cmd_result *res)
{
    git_repository *repo = t->entry->repo;
    char *spec = NULL;
    if (a->path && !(spec = make_pathspec(t->entry->prefix, a->path, res)))
        return CMD_ERROR;
    if (spec && !spec[0]) { /* "." at the repository root: no filter */
        free(spec);
        spec = NULL;
    }

    git_object *obj = NULL;
    git_commit *start = NULL;
    int err;
    if (a->ref) {
        err = resolve_ref(repo, a->ref, &obj);
        if (err == GIT_ENOTFOUND || err == GIT_EAMBIGUOUS || err == GIT_EINVALIDSPEC ||
            err == GIT_EUNBORNBRANCH) {
            git_error_clear();
            free(spec);
            return cmd_fail(res, "NOT_FOUND", "unknown ref \"%.100s\"", a->ref);
        }
        if (err < 0) {
            free(spec);
            return fail_git(res, "resolving the ref", err);
        }
        err = git_object_peel((git_object **)&start, obj, GIT_OBJECT_COMMIT);
        git_object_free(obj);
        if (err < 0) {
            git_error_clear();
            free(spec);
            return cmd_fail(res, "NOT_FOUND", "ref \"%.100s\" does not name a commit", a->ref);
        }
    } else {
        git_oid oid;
        err = git_reference_name_to_id(&oid, repo, "HEAD");
        if (err == GIT_ENOTFOUND || err == GIT_EUNBORNBRANCH) {
            git_error_clear();
            free(spec);
            json_object_object_add(out, "commits", json_object_new_array());
            return CMD_OK;
        }
        if (err == 0)
            err = git_commit_lookup(&start, repo, &oid);
        if (err < 0) {
            free(spec);
            return fail_git(res, "resolving HEAD", err);
        }
    }

    struct walk w = {0};
    json_object *commits = json_object_new_array();
    size_t scanned = 0;
    int incomplete = 0;
    err = walk_push(&w, start) < 0 ? -1 : 0;
    git_commit_free(start);
    while (err == 0 && w.n > 0 && json_object_array_length(commits) < (size_t)a->limit) {
        if (++scanned > GIT_CTX_LOG_SCAN_MAX) {
            incomplete = 1;
            break;
        }
        struct walk_item it = heap_pop(&w);
        git_commit *c = NULL;
        int show = 0;
        if ((err = git_commit_lookup(&c, repo, &it.oid)) < 0)
            break;
        if ((err = walk_step(&w, c, spec, &show)) == 0 && show)
            json_object_array_add(commits, commit_json(c));
        git_commit_free(c);
    }
    free(w.heap);
    free(w.seen);
    free(spec);
    if (err < 0) {
        json_object_put(commits);
        return fail_git(res, "walking the history", err);
    }
    json_object_object_add(out, "commits", commits);
    if (incomplete)
        json_object_object_add(out, "incomplete", json_object_new_boolean(1));
    return CMD_OK;
}

/* ---- git.diff -------------------------------------------------------- */

/* The patch text, kept to at most cap bytes (a few past maxBytes, so the
 * cut can be placed on a character boundary after repair). */
struct text {
    char *buf;
    size_t len, cap;
    int over;
};

static int text_append(struct text *t, const char *s, size_t n)
{
    if (t->len + n > t->cap) {
        n = t->cap - t->len;
        t->over = 1;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    return 0;
}

static char delta_letter(git_delta_t s)
{
    switch (s) {
    case GIT_DELTA_ADDED:
        return 'A';
    case GIT_DELTA_DELETED:
        return 'D';
    case GIT_DELTA_RENAMED:
        return 'R';
    case GIT_DELTA_COPIED:
        return 'C';
    case GIT_DELTA_TYPECHANGE:
        return 'T';
    case GIT_DELTA_CONFLICTED:
        return 'U';
    default:
        return 'M';
    }
}

/* The tree of HEAD, or NULL (with 0) when HEAD is unborn. */
static int head_tree(git_repository *repo, git_tree **out)
{
    git_oid oid;
    git_commit *c = NULL;
    *out = NULL;
    int err = git_reference_name_to_id(&oid, repo, "HEAD");
    if (err == GIT_ENOTFOUND || err == GIT_EUNBORNBRANCH) {
        git_error_clear();
        return 0;
    }
    if (err == 0 && (err = git_commit_lookup(&c, repo, &oid)) == 0) {
        err = git_commit_tree(out, c);
        git_commit_free(c);
    }
    return err;
}

/* A type change comes as a deletion and an addition of the same path (so
 * the patch reads as `git diff` prints it); like `git diff --numstat`, the
 * files list shows it once, as T, with the counts of both. */
static void merge_typechange(json_object *f, size_t adds, int binary)
{
    binary = binary || json_object_get_boolean(json_object_object_get(f, "binary"));
    json_object_object_add(f, "status", json_object_new_string("T"));
    json_object_object_add(f, "additions", json_object_new_int64(binary ? 0 : (int64_t)adds));
    if (binary)
        json_object_object_add(f, "deletions", json_object_new_int64(0));
    json_object_object_add(f, "binary", json_object_new_boolean(binary));
}

/* A submodule's entry and patch, as `git diff` prints them: one line per
 * side, "-dirty" for changed tracked files inside, counted only when the
 * commit moved; untracked files inside alone make no entry. */
static void sub_diff(const struct git_target *t, const struct sub_change *c, json_object *files,
                     struct text *text, int *files_truncated)
{
    char rec[GIT_OID_HEXSZ + 1], cur[GIT_OID_HEXSZ + 1], rabbrev[8], cabbrev[8];
    int moved = !git_oid_equal(&c->recorded, &c->current), dirty = c->inside & SUB_DIRTY;
    if (!moved && !dirty)
        return;
    git_oid_tostr(rec, sizeof(rec), &c->recorded);
    git_oid_tostr(cur, sizeof(cur), &c->current);
    git_oid_tostr(rabbrev, sizeof(rabbrev), &c->recorded);
    git_oid_tostr(cabbrev, sizeof(cabbrev), &c->current);
    if (!text->over) {
        size_t len = 3 * strlen(c->path) + 256;
        char *patch = malloc(len);
        if (patch) {
            int n = snprintf(patch, len,
                             "diff --git a/%s b/%s\n%s%s%s%s%s--- a/%s\n+++ b/%s\n@@ -1 +1 @@\n"
                             "-Subproject commit %s\n+Subproject commit %s%s\n",
                             c->path, c->path, moved ? "index " : "", moved ? rabbrev : "",
                             moved ? ".." : "", moved ? cabbrev : "", moved ? " 160000\n" : "",
                             c->path, c->path, rec, cur, dirty ? "-dirty" : "");
            if (n > 0)
                text_append(text, patch, (size_t)n < len ? (size_t)n : len - 1);
            free(patch);
        }
    }
    const char *p = folder_relative(t->entry, c->path);
    if (!p)
        return;
    if (json_object_array_length(files) >= GIT_CTX_STATUS_MAX) {
        *files_truncated = 1;
        return;
    }
    json_object *f = json_object_new_object();
    add_path(f, "path", p);
    json_object_object_add(f, "status", json_object_new_string("M"));
    json_object_object_add(f, "additions", json_object_new_int64(moved));
    json_object_object_add(f, "deletions", json_object_new_int64(moved));
    json_object_object_add(f, "binary", json_object_new_boolean(0));
    json_object_array_add(files, f);
}

static enum cmd_status diff_files(const struct git_target *t, git_diff *diff,
                                  const struct sub_changes *subs, const struct git_args *a,
                                  json_object *out, struct cmd_result *res)
{
    size_t next_sub = 0;
    struct text text = {0};
    text.cap = a->max_bytes + 4;
    if (!(text.buf = malloc(text.cap)))
        return cmd_fail(res, "PROCESSING_ERROR", "out of memory");
    json_object *files = json_object_new_array();
    json_object *last = NULL; /* the entry of the delta before, while mergeable */
    const git_diff_delta *last_delta = NULL;
    int files_truncated = 0, err = 0;
    size_t n = git_diff_num_deltas(diff);
    for (size_t i = 0; i < n; i++) {
        if (text.over && json_object_array_length(files) >= GIT_CTX_STATUS_MAX) {
            files_truncated = 1;
            break;
        }
        const git_diff_delta *d = git_diff_get_delta(diff, i);
        /* Submodule changes go in path order, as `git diff` lists them. */
        while (next_sub < subs->n && subs->v[next_sub].status == 'M' &&
               strcmp(subs->v[next_sub].path, delta_path(d)) < 0)
            sub_diff(t, &subs->v[next_sub++], files, &text, &files_truncated);
        git_patch *patch = NULL;
        if ((err = git_patch_from_diff(&patch, diff, i)) < 0)
            break;
        size_t adds = 0, dels = 0;
        int binary = (d->flags & GIT_DIFF_FLAG_BINARY) != 0;
        if (patch && !binary && (err = git_patch_line_stats(NULL, &adds, &dels, patch)) < 0) {
            git_patch_free(patch);
            break;
        }
        if (patch && !text.over) {
            git_buf buf = {0};
            if ((err = git_patch_to_buf(&buf, patch)) == 0)
                text_append(&text, buf.ptr, buf.size);
            git_buf_dispose(&buf);
        }
        git_patch_free(patch);
        if (err < 0)
            break;

        const char *p = folder_relative(t->entry, delta_path(d));
        if (p && last && d->status == GIT_DELTA_ADDED && last_delta->status == GIT_DELTA_DELETED &&
            strcmp(delta_path(last_delta), delta_path(d)) == 0) {
            merge_typechange(last, adds, binary);
            last = NULL;
            continue;
        }
        last = NULL;
        if (!p)
            continue;
        if (json_object_array_length(files) >= GIT_CTX_STATUS_MAX) {
            files_truncated = 1;
            continue;
        }
        char letter[2] = {delta_letter(d->status), '\0'};
        json_object *f = json_object_new_object();
        add_path(f, "path", p);
        const char *from = d->status == GIT_DELTA_RENAMED || d->status == GIT_DELTA_COPIED
                               ? folder_relative(t->entry, d->old_file.path)
                               : NULL;
        if (from)
            add_path(f, "from", from);
        json_object_object_add(f, "status", json_object_new_string(letter));
        json_object_object_add(f, "additions", json_object_new_int64((int64_t)adds));
        json_object_object_add(f, "deletions", json_object_new_int64((int64_t)dels));
        json_object_object_add(f, "binary", json_object_new_boolean(binary));
        json_object_array_add(files, f);
        last = f;
        last_delta = d;
    }
    for (; err == 0 && next_sub < subs->n; next_sub++)
        if (subs->v[next_sub].status == 'M')
            sub_diff(t, &subs->v[next_sub], files, &text, &files_truncated);
    if (err < 0) {
        free(text.buf);
        json_object_put(files);
        return fail_git(res, "git diff", err);
    }

    /* Repair first (it may grow the text), then cut at maxBytes on a
     * character boundary: a partial character left by the cap above became
     * U+FFFD starting past maxBytes - 3, so it never fits. */
    char *fixed = utf8_repair(text.buf, text.len);
    free(text.buf);
    if (!fixed) {
        json_object_put(files);
        return cmd_fail(res, "PROCESSING_ERROR", "out of memory");
    }
    size_t len = strlen(fixed);
    int cut = text.over || len > a->max_bytes;
    if (len > a->max_bytes)
        len = utf8_valid_prefix(fixed, a->max_bytes);
    json_object_object_add(out, "files", files);
    json_object_object_add(out, "patch", json_object_new_string_len(fixed, (int)len));
    json_object_object_add(out, "truncated", json_object_new_boolean(cut || files_truncated));
    if (files_truncated)
        json_object_object_add(out, "filesTruncated", json_object_new_boolean(1));
    free(fixed);
    return CMD_OK;
}

static enum cmd_status run_diff(const struct git_target *t, const struct git_args *a,
                                json_object *out, struct cmd_result *res)
{
    git_repository *repo = t->entry->repo;
    char *spec = make_pathspec(t->entry->prefix, a->path, res);
    if (!spec)
        return CMD_ERROR;

    git_diff_options opts;
    git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
    if (spec[0]) {
        opts.pathspec.strings = &spec;
        opts.pathspec.count = 1;
        opts.flags |= GIT_DIFF_DISABLE_PATHSPEC_MATCH;
    }
    git_index *index = NULL;
    git_tree *tree = NULL;
    git_diff *diff = NULL;
    struct sub_changes subs = {0};
    int err = git_repository_index(&index, repo);
    if (err == 0)
        err = git_index_read(index, 0);
    if (err == 0 && a->staged && (err = head_tree(repo, &tree)) == 0) {
        err = git_diff_tree_to_index(&diff, repo, tree, index, &opts);
    } else if (err == 0 && !a->staged) {
        /* Submodules are found without libgit2's submodule code (above). */
        opts.flags |= GIT_DIFF_IGNORE_SUBMODULES;
        err = git_diff_index_to_workdir(&diff, repo, index, &opts);
        if (err == 0 && find_sub_changes(repo, index, spec, &subs) < 0)
            err = -1;
    }
    /* Renames as `git diff` finds them (diff.renames, default on). */
    if (err == 0)
        err = git_diff_find_similar(diff, NULL);
    git_tree_free(tree);
    git_index_free(index);
    free(spec);
    enum cmd_status st =
        err < 0 ? fail_git(res, "git diff", err) : diff_files(t, diff, &subs, a, out, res);
    sub_changes_free(&subs);
    git_diff_free(diff);
    return st;
}

/* ---- git.branches ---------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted short names of one kind of branch, symbolic refs (origin/HEAD)
 * left out. */
static int list_branches(git_repository *repo, git_branch_t kind, json_object **out, int *truncated)
{
    git_branch_iterator *it = NULL;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int err = git_branch_iterator_new(&it, repo, kind);
    git_reference *ref;
    git_branch_t type;
    while (err == 0 && (err = git_branch_next(&ref, &type, it)) == 0) {
        const char *name = NULL;
        if (git_reference_type(ref) == GIT_REFERENCE_DIRECT &&
            (err = git_branch_name(&name, ref)) == 0) {
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 32;
                char **t = realloc(names, ncap * sizeof(*t));
                if (t) {
                    names = t;
                    cap = ncap;
                }
            }
            if (n < cap && (names[n] = strdup(name)))
                n++;
            else
                err = -1;
        }
        git_reference_free(ref);
    }
    git_branch_iterator_free(it);
    if (err == GIT_ITEROVER)
        err = 0;
    if (err == 0) {
        if (n > 1)
            qsort(names, n, sizeof(*names), cmp_str);
        *out = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
            if (i >= GIT_CTX_BRANCHES_MAX) {
                *truncated = 1;
                break;
            }
            json_object_array_add(*out, utf8_json_string(names[i]));
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return err;
}

static enum cmd_status run_branches(const struct git_target *t, json_object *out,
                                    struct cmd_result *res)
{
    git_repository *repo = t->entry->repo;
    struct head_info h;
    if (read_head(repo, &h, res) < 0)
        return CMD_ERROR;
    json_object_object_add(out, "current", string_or_null(h.refname ? short_ref(h.refname) : NULL));
    head_info_free(&h);
    json_object *local = NULL, *remote = NULL;
    int truncated = 0;
    int err = list_branches(repo, GIT_BRANCH_LOCAL, &local, &truncated);
    if (err == 0)
        err = list_branches(repo, GIT_BRANCH_REMOTE, &remote, &truncated);
    if (err < 0) {
        json_object_put(local);
        return fail_git(res, "listing branches", err);
    }
    json_object_object_add(out, "local", local);
    json_object_object_add(out, "remote", remote);
    json_object_object_add(out, "truncated", json_object_new_boolean(truncated));
    return CMD_OK;
}

/* ---- entry point ----------------------------------------------------- */

enum cmd_status git_ctx_run(struct git_ctx *g, const char *name,
                            const struct workspace_folder *folders, size_t n_folders,
                            json_object *args, struct cmd_result *res)
{
    res->result = NULL;
    if (!git_ctx_handles(name))
        return cmd_fail(res, "UNKNOWN_COMMAND", "not a git command");
    struct git_args a;
    if (parse_args(name, args, &a, res) < 0)
        return CMD_ERROR;
    struct git_target t = {0};
    if (pick_target(g, folders, n_folders, a.folder, &t, res) != CMD_OK)
        return CMD_ERROR;

    json_object *out = json_object_new_object();
    enum cmd_status st;
    if (strcmp(name, "git.status") == 0)
        st = run_status(&t, out, res);
    else if (strcmp(name, "git.log") == 0)
        st = run_log(&t, &a, out, res);
    else if (strcmp(name, "git.diff") == 0)
        st = run_diff(&t, &a, out, res);
    else
        st = run_branches(&t, out, res);
    if (st != CMD_OK) {
        json_object_put(out);
        return st;
    }
    return finish_result(&t, out, res);
}

const struct git_ctx_api *git_ctx_api(void)
{
    static const struct git_ctx_api api = {
        .global_init = git_ctx_global_init,
        .new_ctx = git_ctx_new,
        .free_ctx = git_ctx_free,
        .run = git_ctx_run,
        .status_update = git_ctx_status_update,
    };
    return &api;
}
