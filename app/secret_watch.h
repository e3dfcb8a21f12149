/*
 * secret_watch: in `serve`, the standalone secret is watched, so that
 * deleting or replacing it revokes every token at once, as the docs say:
 * on any change to the file (or its folder) the secret is read again, the
 * workspace's key derived again, and when the key changed or the secret is
 * gone every session is closed 4001. With no readable secret no token is
 * accepted until a new one appears (`companion-helper token` makes one).
 *
 * inotify on the secret's folder, adopted into the loop; when the folder
 * itself goes, it is looked for again every few seconds.
 */
#ifndef COMPANION_SECRET_WATCH_H
#define COMPANION_SECRET_WATCH_H

struct helper;
struct secret_watch;

/* Watches h->secret_path; NULL when it cannot (logged: the secret is then
 * read once, as before). */
struct secret_watch *secret_watch_start(struct helper *h);
void secret_watch_stop(struct secret_watch *w);

/* Reads the secret again and applies it (also called by the watch). */
void secret_watch_reload(struct helper *h);

#endif
