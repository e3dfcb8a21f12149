/*
 * git_ctx: the git commands (git.status, git.log, git.diff, git.branches)
 * through libgit2, as synchronous functions for a worker thread.
 *
 * libgit2 allows one git_repository per thread, so each worker thread owns
 * one git_ctx, which caches the repositories it has opened (re-opening a
 * large repository costs more than the query). Nothing here touches the
 * event loop; every string that goes into JSON is valid UTF-8 (paths that
 * are not are repaired with U+FFFD and flagged).
 */
#ifndef COMPANION_GIT_CTX_H
#define COMPANION_GIT_CTX_H

#include <json-c/json.h>
#include <stdint.h>

#include "workspace/result.h"
#include "workspace/workspace.h"

/* Entries of each status list beyond this are dropped and `truncated` set. */
#define GIT_CTX_STATUS_MAX         1000
#define GIT_CTX_LOG_MAX            100
#define GIT_CTX_DIFF_DEFAULT_BYTES (256 * 1024)
#define GIT_CTX_DIFF_MAX_BYTES     (4 * 1024 * 1024)

struct git_ctx;

/* Call git_ctx_global_init() once, before any thread starts. */
void git_ctx_global_init(void);
void git_ctx_global_shutdown(void);

struct git_ctx *git_ctx_new(void);
void git_ctx_free(struct git_ctx *g);

/* Runs `name` ("git.status", "git.log", "git.diff", "git.branches") with
 * `args` (may be NULL) over `folders` (the workspace's folders, copied by the
 * caller for this thread). `args.folder` picks a folder by name; the default
 * is the first folder that is a repository. Errors: INVALID_ARGS,
 * NOT_FOUND (no such folder / path / ref), NOT_A_REPOSITORY,
 * PROCESSING_ERROR (libgit2 failed; the message never contains paths outside
 * the workspace). On CMD_OK, res->result is owned by the caller.
 * A `path` that matches nothing gives empty lists, not NOT_FOUND; results
 * also carry `folder` (the folder's name) and `prefix` (the folder's place in
 * its repository's work tree, "" at the root; paths are relative to the
 * folder). The decisions behind these are listed at the top of git_ctx.c. */
enum cmd_status git_ctx_run(struct git_ctx *g, const char *name,
                            const struct workspace_folder *folders, size_t n_folders,
                            json_object *args, struct cmd_result *res);

/* git.status of the folder named `name` (NULL: the default, as
 * git_ctx_run picks it), computed from `base`, an earlier git.status result
 * for that folder (read only), by looking again at `paths` only: the work
 * tree entries at or below each (repository-relative, literal; n_paths may
 * be 0). The caller vouches that nothing else changed since `base`: no
 * other path in the work tree and nothing in the .git directory but the
 * index file, and sets index_changed when that may have been rewritten
 * (the helper's inotify watch knows). *digest is the index digest that
 * came with `base` and is set to the new one: a rewritten index with the
 * same entries (`git status` refreshing stat data) keeps the partial look
 * possible. Falls back to the full status when a partial look cannot give
 * the same answer (no base, other index entries, a truncated base,
 * submodules, a folder below the work tree's root, a path that is not
 * UTF-8, a list that would pass the cap); *partial says which was done.
 * Errors as git_ctx_run. */
enum cmd_status git_ctx_status_update(struct git_ctx *g, const struct workspace_folder *folders,
                                      size_t n_folders, const char *name, json_object *base,
                                      char *const *paths, size_t n_paths, int index_changed,
                                      uint64_t *digest, int *partial, struct cmd_result *res);

/* The helper does not link libgit2: git_ctx.c and libgit2 are a module
 * (companion-git.so) that the first git job loads (workspace/git_load.c).
 * Its one entry point, found with dlsym, is git_ctx_api(). Tests link
 * git_ctx.c directly and call the functions by name. */
struct git_ctx_api {
    void (*global_init)(void);
    struct git_ctx *(*new_ctx)(void);
    void (*free_ctx)(struct git_ctx *g);
    enum cmd_status (*run)(struct git_ctx *g, const char *name,
                           const struct workspace_folder *folders, size_t n_folders,
                           json_object *args, struct cmd_result *res);
    enum cmd_status (*status_update)(struct git_ctx *g, const struct workspace_folder *folders,
                                     size_t n_folders, const char *name, json_object *base,
                                     char *const *paths, size_t n_paths, int index_changed,
                                     uint64_t *digest, int *partial, struct cmd_result *res);
};
#define GIT_CTX_API_SYMBOL "git_ctx_api"
const struct git_ctx_api *git_ctx_api(void);

/* 1 for the names git_ctx_run handles. */
int git_ctx_handles(const char *name);

/* How many repositories g holds open (tests check that calls reuse them). */
size_t git_ctx_cache_size(const struct git_ctx *g);

#endif
