/*
 * gitwatch: the workspace's repositories, watched. Two halves behind this
 * one header:
 *
 * - the watcher (gitwatch_watch.c): each folder that is a repository is
 *   watched with inotify, its work tree (recursively, up to a cap) and its
 *   .git directory. File events only mark the folder dirty; at most once a
 *   second a status runs on a worker thread, and git.changed is published
 *   only when branch, head, ahead/behind or the set of changed paths
 *   differs from the last one seen. Never a status per file event, never on
 *   the loop. The paths that changed are kept for the cache.
 * - the status cache (gitwatch_cache.c): git.status answered from the last
 *   answer while nothing changed, brought up to date by looking again only
 *   at the paths that changed (git_ctx_status_update), a full run at first,
 *   when the index, HEAD, a ref or an ignore file changed, when too much
 *   changed, and when the last full run is older than
 *   GITWATCH_FULL_MS. One run per folder at a time: a caller that asks while
 *   one is out shares it when nothing changed since it started, and waits
 *   for the next one otherwise, so no answer predates the caller's writes.
 *
 * Nothing flows upward: git.changed goes out through the publish callback
 * handed in at start. Ownership: gitwatch_start returns a watcher freed by
 * gitwatch_stop; the env's members are borrowed for its life.
 */
#ifndef COMPANION_GITWATCH_H
#define COMPANION_GITWATCH_H

#include <json-c/json.h>
#include <stddef.h>

#include "workspace/result.h"

#define GITWATCH_FULL_MS 30000

struct app_counters;
struct gitwatch;
struct logger;
struct loop;
struct worker_pool;
struct workspace;

struct gitwatch_env {
    struct logger *log;
    const struct workspace *ws;
    struct worker_pool *pool;
    struct loop *loop;
    struct app_counters *counters;
    /* git.changed, payload owned by the callee. */
    void (*publish)(void *ud, json_object *payload);
    void *publish_ud;
};

/* Watches every repository folder of env->ws; NULL when there is none or
 * inotify is not available (logged; git.changed then does not come). */
struct gitwatch *gitwatch_start(const struct gitwatch_env *env);
/* Runs still out finish on their own and answer their callers. */
void gitwatch_stop(struct gitwatch *gw);

/* The watched folder that git.status with these args (args.folder names
 * it; none: the first folder) runs on, when its status can be kept between
 * calls; else -1 (the caller runs git.status itself). */
int gitwatch_folder_for(const struct gitwatch *gw, json_object *args);

/* res->result is borrowed: take a reference to keep it. */
typedef void (*gitwatch_status_cb)(void *ud, enum cmd_status st, struct cmd_result *res);
/* Calls cb with the status of watched folder i: at once when the last
 * answer stands, else when a run finishes (also when the helper stops: an
 * error). -1 when no run could be queued (cb is not called). */
int gitwatch_status(struct gitwatch *gw, size_t i, gitwatch_status_cb cb, void *ud);

#endif
