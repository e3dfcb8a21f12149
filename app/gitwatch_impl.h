/*
 * gitwatch_impl: what the watcher (gitwatch_watch.c) and the status cache
 * (gitwatch_cache.c) share. Internal to those two files.
 */
#ifndef COMPANION_GITWATCH_IMPL_H
#define COMPANION_GITWATCH_IMPL_H

#include "app/gitwatch.h"

struct status_cache;

/* gitwatch_cache.c: one entry per watched folder (0..n_folders-1). */
struct status_cache *status_cache_new(struct gitwatch *gw, size_t n_folders, char *const *names);
void status_cache_free(struct status_cache *sc);
int status_cache_get(struct status_cache *sc, size_t i, gitwatch_status_cb cb, void *ud);

/* gitwatch_watch.c, for the cache. */
const struct gitwatch_env *gitwatch_env(const struct gitwatch *gw);
/* Reads the events inotify has queued, now: what a caller changed before
 * asking is then known. */
void gitwatch_sync(struct gitwatch *gw);
/* Whether folder i may have changed since the last gitwatch_take_changes. */
int gitwatch_has_changes(const struct gitwatch *gw, size_t i);
/* Hands over what changed in folder i since the last call: 1 when it may
 * be anything (*paths NULL), else 0 and the work-tree paths (relative;
 * files or directories; the caller frees each and the array), and whether
 * .git/index was rewritten. */
int gitwatch_take_changes(struct gitwatch *gw, size_t i, char ***paths, size_t *n,
                          int *index_changed);

#endif
