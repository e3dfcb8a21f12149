/*
 * secret_watch: in `serve`, the standalone secret is watched, so that
 * deleting or replacing it revokes every token at once, as the docs say:
 * on any change to the file (or its folder) the secret is read again, the
 * workspace's key derived again, and when the key changed or the secret is
 * gone every session is closed 4001. With no readable secret no token is
 * accepted until a new one appears (`companion-helper token` makes one).
 *
 * inotify on the secret's folder, adopted into the loop; when the folder
 * itself goes, it is looked for again every few seconds. Ownership: the
 * env's members are borrowed; settings->secret is replaced in place.
 */
#ifndef COMPANION_SECRET_WATCH_H
#define COMPANION_SECRET_WATCH_H

struct logger;
struct loop;
struct server;
struct settings;
struct secret_watch;

struct secret_watch_env {
    struct loop *loop;
    struct logger *log;
    const char *path;         /* the secret file */
    const char *workspace_id; /* the key is derived for it */
    struct settings *settings;
    struct server *server;
};

/* NULL when it cannot watch (logged: the secret is then read once). */
struct secret_watch *secret_watch_start(const struct secret_watch_env *env);
void secret_watch_stop(struct secret_watch *w);

#endif
