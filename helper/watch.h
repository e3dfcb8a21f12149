/*
 * watch: git.changed events. Each workspace folder that is a repository is
 * watched with inotify: its work tree (directories, recursively, up to a
 * cap) and its .git directory (HEAD, index, refs). File events only mark the
 * folder dirty; at most once a second a status runs on a worker thread, and
 * git.changed goes out only when branch, head, ahead/behind or the set of
 * changed paths differs from the last one seen. Never a status per file
 * event, never on the loop.
 */
#ifndef COMPANION_WATCH_H
#define COMPANION_WATCH_H

struct helper;
struct watch;

/* Watches every repository folder of h->ws; NULL when inotify is not
 * available (logged; events simply do not come). */
struct watch *watch_start(struct helper *h);
void watch_stop(struct watch *w);
/* The workspace's folders changed: re-scan. */
void watch_restart(struct helper *h);

#endif
