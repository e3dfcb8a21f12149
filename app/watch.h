/*
 * watch: git.changed events. Each workspace folder that is a repository is
 * watched with inotify: its work tree (directories, recursively, up to a
 * cap) and its .git directory (HEAD, index, refs). File events only mark the
 * folder dirty; at most once a second a status runs on a worker thread, and
 * git.changed goes out only when branch, head, ahead/behind or the set of
 * changed paths differs from the last one seen. Never a status per file
 * event, never on the loop. The paths that changed are kept, so that
 * git.status can look again at those only (status_cache.h).
 */
#ifndef COMPANION_WATCH_H
#define COMPANION_WATCH_H

#include <stddef.h>

struct helper;
struct watch;

/* Watches every repository folder of h->ws; NULL when inotify is not
 * available (logged; events simply do not come). */
struct watch *watch_start(struct helper *h);
void watch_stop(struct watch *w);
/* The workspace's folders changed: re-scan. */
void watch_restart(struct helper *h);

/* Reads the events inotify has queued, now: what a caller changed before
 * asking is then known. */
void watch_sync(struct watch *w);
/* The watched folder that git.status with args.folder `name` (NULL: none)
 * runs on, when its status can be kept between calls; else -1. */
int watch_folder_for(const struct watch *w, const char *name);
/* Whether folder i may have changed since the last watch_take_changes. */
int watch_has_changes(const struct watch *w, size_t i);
/* Hands over what changed in folder i since the last call: 1 when it may
 * be anything (*paths NULL), else 0 and the work-tree paths (relative;
 * files or directories; the caller frees each and the array), and whether
 * .git/index was rewritten. */
int watch_take_changes(struct watch *w, size_t i, char ***paths, size_t *n, int *index_changed);
/* The folders' git.status cache (status_cache.h). */
struct status_cache *watch_cache(struct watch *w);

#endif
