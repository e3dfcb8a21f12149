/*
 * status_cache: git.status answered from the last answer while the watcher
 * (watch.c) has seen nothing change, and brought up to date by looking
 * again only at the paths it saw change (git_ctx_status_update). A full
 * status runs at first, when the index, HEAD, a ref or an ignore file
 * changed, when too much changed, and when the last full run is older
 * than STATUS_CACHE_FULL_MS (changes inotify cannot see: the global
 * excludes file, a hard link edited elsewhere). One run per folder at a
 * time: a caller that asks while one is out shares it when nothing changed
 * since it started, and waits for the next one otherwise, so no answer
 * predates the caller's own writes.
 */
#ifndef COMPANION_STATUS_CACHE_H
#define COMPANION_STATUS_CACHE_H

#include <stddef.h>

#include "workspace/command.h"

#define STATUS_CACHE_FULL_MS 30000

struct helper;
struct watch;
struct status_cache;

/* res->result is borrowed: take a reference to keep it. */
typedef void (*status_cache_cb)(void *ud, enum cmd_status st, struct cmd_result *res);

/* One entry per folder of w (0..n_folders-1); names as the workspace's. */
struct status_cache *status_cache_new(struct helper *h, struct watch *w, size_t n_folders,
                                      char *const *names);
/* Runs still out finish on their own and answer their callers. */
void status_cache_free(struct status_cache *sc);
/* Calls cb with the status of folder i: at once when the last answer
 * stands, else when a run finishes (also when the helper stops: an error).
 * -1 when no run could be queued (cb is not called). */
int status_cache_get(struct status_cache *sc, size_t i, status_cache_cb cb, void *ud);

#endif
