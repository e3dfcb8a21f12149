/*
 * devices: the per-workspace device registry (see devices.h). Owns the
 * entries (one malloc'd array), the registry file's text last seen (to tell
 * our own writes from another process's), the lock file while a change is
 * made, and the inotify watch on the state folder.
 */
#include "app/devices.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errbuf.h"
#include "core/log.h"
#include "core/secret.h"
#include "server/loop.h"
#include "workspace/utf8.h"

#define DEVICES_FILE_MAX   (1024 * 1024)
#define DEVICES_PRUNE_MS   (24LL * 3600 * 1000) /* expired for more than a day: dropped */
#define DEVICES_SEEN_EVERY 60000                /* lastSeen written at most once a minute */
#define DEVICES_USER_MAX   256

struct device {
    char id[AUTH_DEVICE_ID_MAX + 1];
    char name[DEVICES_NAME_MAX * 4 + 1];
    char user_id[DEVICES_USER_MAX + 1];
    unsigned scopes;
    int64_t created_ms, expires_ms, last_seen_ms, pairing_expires_ms, ttl_s;
    int revoked, paired;
    int pairing;   /* made for a pairing token */
    int unnamed;   /* a token without `dev` */
    int ephemeral; /* known from memory only (unnamed or unregistered), not yet revoked */
    int unsaved;   /* changed while the file could not be written */
    int64_t seen_saved_ms;
};

struct devices {
    struct devices_env env;
    char wsid[256];
    int bound;
    char path[PATH_MAX], lock_name[300], file_name[300], dir[PATH_MAX];
    struct device *v;
    size_t n, cap;
    char *last_text; /* the file's text as last read or written */
    /* The file as it was when last_text was read from it (device, inode,
     * size, times): while stat(2) says the same, reload need not read it.
     * Every writer replaces the file by rename, so a change is a new inode. */
    struct stat seen;
    int seen_ok;
    char problem[400];
    int dirty; /* changed since the last call of env.changed */
    int lock_fd;
    int ino_fd;
    struct loop_fd *watch;
};

/* ---- small helpers ---- */

static void warn(struct devices *d, const char *a, const char *b)
{
    if (d->env.log)
        log_msg(d->env.log, LOG_WARN, "devices: %s%s", a, b);
    else
        fprintf(stderr, "companion-helper: devices: %s%s\n", a, b);
}

static void set_problem(struct devices *d, const char *what)
{
    if (strcmp(d->problem, what) == 0)
        return;
    snprintf(d->problem, sizeof(d->problem), "%s", what);
    warn(d, what, " (the device registry is kept in memory only)");
}

int devices_name_ok(const char *name)
{
    size_t len = name ? strlen(name) : 0, chars = 0;
    if (len == 0 || !utf8_is_valid(name, len))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
        if ((c & 0xc0) != 0x80)
            chars++;
    }
    return chars <= DEVICES_NAME_MAX;
}

static struct device *find(const struct devices *d, const char *id)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->v[i].id, id) == 0)
            return &d->v[i];
    return NULL;
}

static struct device *append(struct devices *d)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        struct device *v = realloc(d->v, cap * sizeof(*v));
        if (!v)
            return NULL;
        d->v = v;
        d->cap = cap;
    }
    struct device *e = &d->v[d->n++];
    memset(e, 0, sizeof(*e));
    return e;
}

static void remove_at(struct devices *d, size_t i)
{
    memmove(&d->v[i], &d->v[i + 1], (d->n - i - 1) * sizeof(*d->v));
    d->n--;
}

static void prune(struct devices *d, int64_t now_ms)
{
    for (size_t i = d->n; i-- > 0;)
        if (d->v[i].expires_ms > 0 && d->v[i].expires_ms + DEVICES_PRUNE_MS < now_ms)
            remove_at(d, i);
}

/* ---- the file ---- */

static json_object *entry_json(const struct device *e, int for_file)
{
    json_object *o = json_object_new_object();
    char scopes[64];
    json_object_object_add(o, "id", json_object_new_string(e->id));
    json_object_object_add(o, "name", json_object_new_string(e->name));
    json_object_object_add(o, "userId", json_object_new_string(e->user_id));
    if (for_file) {
        json_object_object_add(
            o, "scopes",
            json_object_new_string(auth_scopes_format(e->scopes, scopes, sizeof(scopes))));
    } else {
        json_object *arr = json_object_new_array();
        auth_scopes_format(e->scopes, scopes, sizeof(scopes));
        for (char *save = NULL, *w = strtok_r(scopes, " ", &save); w;
             w = strtok_r(NULL, " ", &save))
            json_object_array_add(arr, json_object_new_string(w));
        json_object_object_add(o, "scopes", arr);
    }
    json_object_object_add(o, "created", json_object_new_int64(e->created_ms));
    json_object_object_add(o, "expires", json_object_new_int64(e->expires_ms));
    json_object_object_add(o, "lastSeen",
                           e->last_seen_ms ? json_object_new_int64(e->last_seen_ms) : NULL);
    json_object_object_add(o, "revoked", json_object_new_boolean(e->revoked));
    json_object_object_add(o, "paired", json_object_new_boolean(e->paired));
    if (e->pairing) {
        json_object_object_add(o, "pairingExpires", json_object_new_int64(e->pairing_expires_ms));
        json_object_object_add(o, "ttlSeconds", json_object_new_int64(e->ttl_s));
    }
    if (e->unnamed)
        json_object_object_add(o, "unnamed", json_object_new_boolean(1));
    return o;
}

static int64_t get_i64(json_object *o, const char *k, int *bad)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v) || json_object_is_type(v, json_type_null))
        return 0;
    if (!json_object_is_type(v, json_type_int)) {
        *bad = 1;
        return 0;
    }
    return json_object_get_int64(v);
}

static int get_bool(json_object *o, const char *k, int *bad)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v))
        return 0;
    if (!json_object_is_type(v, json_type_boolean)) {
        *bad = 1;
        return 0;
    }
    return json_object_get_boolean(v);
}

static const char *get_str(json_object *o, const char *k, int *bad)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string)) {
        *bad = 1;
        return "";
    }
    return json_object_get_string(v);
}

/* Parses the registry file's text into a fresh array; -1 when malformed. */
static int parse_file(const char *text, struct device **out, size_t *n_out)
{
    json_tokener *tok = json_tokener_new_ex(8);
    json_object *root = NULL;
    if (!tok)
        return -1;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    root = json_tokener_parse_ex(tok, text, (int)strlen(text));
    int ok = json_tokener_get_error(tok) == json_tokener_success;
    json_tokener_free(tok);
    json_object *arr = NULL, *ver = NULL;
    if (!ok || !json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "v", &ver) || !json_object_is_type(ver, json_type_int) ||
        json_object_get_int(ver) != 1 || !json_object_object_get_ex(root, "devices", &arr) ||
        !json_object_is_type(arr, json_type_array) || json_object_array_length(arr) > DEVICES_MAX) {
        json_object_put(root);
        return -1;
    }
    size_t n = json_object_array_length(arr);
    struct device *v = calloc(n ? n : 1, sizeof(*v));
    if (!v) {
        json_object_put(root);
        return -1;
    }
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++) {
        json_object *o = json_object_array_get_idx(arr, i);
        struct device *e = &v[i];
        if (!json_object_is_type(o, json_type_object)) {
            bad = 1;
            break;
        }
        const char *id = get_str(o, "id", &bad), *name = get_str(o, "name", &bad),
                   *user = get_str(o, "userId", &bad), *sc = get_str(o, "scopes", &bad);
        char err[100];
        if (bad || !auth_device_id_ok(id) || !devices_name_ok(name) ||
            strlen(user) > DEVICES_USER_MAX ||
            (sc[0] && auth_scopes_parse(sc, &e->scopes, err, sizeof(err)) < 0)) {
            bad = 1;
            break;
        }
        snprintf(e->id, sizeof(e->id), "%s", id);
        snprintf(e->name, sizeof(e->name), "%s", name);
        snprintf(e->user_id, sizeof(e->user_id), "%s", user);
        e->created_ms = get_i64(o, "created", &bad);
        e->expires_ms = get_i64(o, "expires", &bad);
        e->last_seen_ms = get_i64(o, "lastSeen", &bad);
        e->seen_saved_ms = e->last_seen_ms;
        e->pairing_expires_ms = get_i64(o, "pairingExpires", &bad);
        e->ttl_s = get_i64(o, "ttlSeconds", &bad);
        e->pairing = e->pairing_expires_ms != 0;
        e->revoked = get_bool(o, "revoked", &bad);
        e->paired = get_bool(o, "paired", &bad);
        e->unnamed = get_bool(o, "unnamed", &bad);
        for (size_t k = 0; k < i && !bad; k++)
            if (strcmp(v[k].id, e->id) == 0)
                bad = 1;
    }
    json_object_put(root);
    if (bad) {
        free(v);
        return -1;
    }
    *out = v;
    *n_out = n;
    return 0;
}

/* The file's text: malloc'd, "" when missing; NULL with err when unreadable. */
static char *read_text(const char *path, struct stat *st_out, char *err, size_t errlen)
{
    memset(st_out, 0, sizeof(*st_out));
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT)
            return strdup("");
        errbuf_set(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > DEVICES_FILE_MAX) {
        close(fd);
        errbuf_set(err, errlen, "%s is not a registry file (not a regular file or too big)", path);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    buf[got] = '\0';
    *st_out = st;
    return buf;
}

static int same_file_state(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Merges the file's entries into memory: the file is the authority, but a
 * revocation or a spent pairing is never undone, entries known from memory
 * only stay, and so do those the file could not take yet. Returns 1 when
 * the text differs from the one last seen. */
static int reload(struct devices *d)
{
    char err[400] = "";
    struct stat now, st;
    /* Every authentication asks (see devices_admit): one stat(2), not an
     * open and a read, while the file is the one already known. */
    if (d->seen_ok && stat(d->path, &now) == 0 && same_file_state(&now, &d->seen))
        return 0;
    d->seen_ok = 0;
    char *text = read_text(d->path, &st, err, sizeof(err));
    if (!text) {
        set_problem(d, err);
        return 0;
    }
    if (d->last_text && strcmp(text, d->last_text) == 0) {
        free(text);
        d->seen = st;
        d->seen_ok = st.st_ino != 0;
        return 0;
    }
    struct device *fv = NULL;
    size_t fn = 0;
    if (text[0] != '\0' && parse_file(text, &fv, &fn) < 0) {
        errbuf_set(err, sizeof(err), "%s is corrupt and is left alone", d->path);
        set_problem(d, err);
        free(text);
        return 0;
    }
    if (d->problem[0] && strstr(d->problem, "corrupt"))
        d->problem[0] = '\0';
    if (strncmp(d->problem, "cannot read", 11) == 0)
        d->problem[0] = '\0';
    for (size_t i = 0; i < fn; i++) {
        const struct device *m = find(d, fv[i].id);
        if (!m)
            continue;
        fv[i].revoked |= m->revoked;
        fv[i].paired |= m->paired;
        if (m->last_seen_ms > fv[i].last_seen_ms)
            fv[i].last_seen_ms = m->last_seen_ms;
        fv[i].unsaved = m->unsaved;
    }
    /* Memory-only entries the file does not have. */
    size_t keep = 0;
    for (size_t i = 0; i < d->n; i++) {
        int in_file = 0;
        for (size_t k = 0; k < fn && !in_file; k++)
            in_file = strcmp(fv[k].id, d->v[i].id) == 0;
        if (!in_file && (d->v[i].ephemeral || d->v[i].unsaved))
            d->v[keep++] = d->v[i];
    }
    d->n = keep;
    for (size_t i = 0; i < fn; i++) {
        struct device *e = append(d);
        if (!e)
            break;
        *e = fv[i];
    }
    free(fv);
    free(d->last_text);
    d->last_text = text;
    d->seen = st;
    d->seen_ok = st.st_ino != 0;
    d->dirty = 1;
    return 1;
}

static int lock(struct devices *d)
{
    char err[400];
    d->lock_fd = secret_state_open(d->lock_name, err, sizeof(err));
    if (d->lock_fd < 0) {
        set_problem(d, err);
        return -1;
    }
    while (flock(d->lock_fd, LOCK_EX) != 0 && errno == EINTR)
        ;
    return 0;
}

static void unlock(struct devices *d)
{
    if (d->lock_fd >= 0) {
        flock(d->lock_fd, LOCK_UN);
        close(d->lock_fd);
    }
    d->lock_fd = -1;
}

/* Writes the persisted entries; a corrupt file is left alone. */
static void save(struct devices *d)
{
    if (d->problem[0] && strstr(d->problem, "corrupt")) {
        for (size_t i = 0; i < d->n; i++)
            if (!d->v[i].ephemeral)
                d->v[i].unsaved = 1;
        return;
    }
    json_object *root = json_object_new_object(), *arr = json_object_new_array();
    json_object_object_add(root, "v", json_object_new_int(1));
    for (size_t i = 0; i < d->n; i++)
        if (!d->v[i].ephemeral)
            json_object_array_add(arr, entry_json(&d->v[i], 1));
    json_object_object_add(root, "devices", arr);
    const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE);
    char *text = malloc(strlen(s) + 2);
    char err[400];
    if (text) {
        snprintf(text, strlen(s) + 2, "%s\n", s);
        if (secret_write_private(d->path, text, strlen(text), err, sizeof(err)) == 0) {
            free(d->last_text);
            d->last_text = text;
            d->seen_ok = 0; /* the next reload reads it once and knows it */
            text = NULL;
            if (d->problem[0])
                warn(d, d->path, " is written again");
            d->problem[0] = '\0';
            for (size_t i = 0; i < d->n; i++) {
                d->v[i].unsaved = 0;
                d->v[i].seen_saved_ms = d->v[i].last_seen_ms;
            }
        } else {
            set_problem(d, err);
            for (size_t i = 0; i < d->n; i++)
                if (!d->v[i].ephemeral)
                    d->v[i].unsaved = 1;
        }
    }
    free(text);
    json_object_put(root);
}

/* Tells the owner once about every change since the last time, whoever
 * made it (a reload under the lock may be the first to see another
 * process's revocation, and the watch then sees nothing new). */
static void announce(struct devices *d)
{
    if (d->dirty && d->env.changed) {
        d->dirty = 0;
        d->env.changed(d->env.ud);
    }
}

/* A change: lock, read what others wrote, apply (in the caller), save. */
static void begin(struct devices *d)
{
    if (lock(d) == 0)
        reload(d);
}

static void commit(struct devices *d, int notify)
{
    if (notify)
        d->dirty = 1;
    save(d);
    unlock(d);
    announce(d);
}

/* ---- the watch ---- */

static void on_watch(void *arg, unsigned events)
{
    (void)events;
    struct devices *d = arg;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int hit = 0;
    for (;;) {
        ssize_t n = read(d->ino_fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            if ((e->mask & IN_Q_OVERFLOW) || (e->len && strcmp(e->name, d->file_name) == 0))
                hit = 1;
            p += sizeof(*e) + e->len;
        }
    }
    if (hit)
        reload(d);
    announce(d);
}

static void unwatch(struct devices *d)
{
    if (d->watch)
        loop_fd_close_now(d->watch);
    else if (d->ino_fd >= 0)
        close(d->ino_fd);
    d->watch = NULL;
    d->ino_fd = -1;
}

static void watch(struct devices *d)
{
    if (!d->env.loop)
        return;
    d->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (d->ino_fd < 0)
        return;
    if (inotify_add_watch(d->ino_fd, d->dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR) < 0 ||
        !(d->watch = loop_fd_watch(d->env.loop, d->ino_fd, on_watch, d))) {
        close(d->ino_fd);
        d->ino_fd = -1;
        warn(d, d->dir, ": cannot be watched: revocations made elsewhere apply on the next change");
    }
}

/* ---- public ---- */

struct devices *devices_new(const struct devices_env *env)
{
    struct devices *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->env = *env;
    d->lock_fd = -1;
    d->ino_fd = -1;
    return d;
}

void devices_free(struct devices *d)
{
    if (!d)
        return;
    unwatch(d);
    unlock(d);
    free(d->v);
    free(d->last_text);
    free(d);
}

int devices_bind(struct devices *d, const char *workspace_id)
{
    if (!workspace_id || !workspace_id[0])
        return 0;
    if (d->bound && strcmp(d->wsid, workspace_id) == 0)
        return 0;
    unwatch(d);
    d->n = 0;
    free(d->last_text);
    d->last_text = NULL;
    d->seen_ok = 0;
    d->problem[0] = '\0';
    snprintf(d->wsid, sizeof(d->wsid), "%s", workspace_id);
    d->bound = 1;
    /* Workspace ids are [A-Za-z0-9._-] (workspace.h); refuse a path in any case. */
    if (strchr(workspace_id, '/') || workspace_id[0] == '.') {
        set_problem(d, "the workspace id cannot name a file");
        d->path[0] = '\0';
        return 0;
    }
    char err[400];
    snprintf(d->file_name, sizeof(d->file_name), "devices-%s.json", workspace_id);
    snprintf(d->lock_name, sizeof(d->lock_name), "devices-%s.lock", workspace_id);
    if (secret_state_path(d->file_name, d->path, sizeof(d->path), err, sizeof(err)) < 0) {
        set_problem(d, err);
        d->path[0] = '\0';
        return 0;
    }
    memcpy(d->dir, d->path, sizeof(d->dir));
    char *slash = strrchr(d->dir, '/');
    if (slash)
        *slash = '\0';
    /* The lock file makes the private folder the watch needs. */
    if (lock(d) == 0)
        unlock(d);
    reload(d);
    d->dirty = 0; /* loading is no change */
    watch(d);
    return 0;
}

/* The entry to forget when the registry is full: one known from memory
 * only, else the oldest expired one, else the oldest not revoked; -1 when
 * every entry is a revocation still in force. */
static ssize_t evictable(const struct devices *d, int64_t now_ms)
{
    ssize_t expired = -1, live = -1;
    for (size_t i = 0; i < d->n; i++) {
        const struct device *e = &d->v[i];
        if (e->ephemeral)
            return (ssize_t)i;
        if (e->expires_ms > 0 && e->expires_ms < now_ms) {
            if (expired < 0 || e->created_ms < d->v[expired].created_ms)
                expired = (ssize_t)i;
        } else if (!e->revoked && (live < 0 || e->created_ms < d->v[live].created_ms)) {
            live = (ssize_t)i;
        }
    }
    return expired >= 0 ? expired : live;
}

static int random_id(char out[DEVICES_ID_LEN + 1])
{
    unsigned char b[DEVICES_ID_LEN / 2];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
        return -1;
    for (size_t i = 0; i < sizeof(b); i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

int devices_add(struct devices *d, const struct devices_add_req *req,
                char id_out[DEVICES_ID_LEN + 1], char *err, size_t errlen)
{
    if (!d->bound) {
        snprintf(err, errlen, "no workspace yet");
        return -1;
    }
    if (!devices_name_ok(req->name)) {
        snprintf(err, errlen, "deviceName: expected 1 to %d printable characters",
                 DEVICES_NAME_MAX);
        return -1;
    }
    if (!req->user_id || strlen(req->user_id) > DEVICES_USER_MAX || req->ttl_s <= 0) {
        snprintf(err, errlen, "bad device request");
        return -1;
    }
    if (d->path[0])
        begin(d);
    prune(d, req->now_ms);
    /* Full: make room without ever forgetting a revocation that still
     * matters. Forgetting anything else is harmless: its tokens are then
     * admitted as unregistered, as any token signed with the key is. */
    while (d->n >= DEVICES_MAX) {
        ssize_t pick = evictable(d, req->now_ms);
        if (pick < 0)
            break;
        remove_at(d, (size_t)pick);
    }
    struct device *e = NULL;
    char id[DEVICES_ID_LEN + 1];
    if (d->n >= DEVICES_MAX || random_id(id) < 0 || find(d, id) || !(e = append(d))) {
        if (d->path[0])
            unlock(d);
        announce(d);
        snprintf(err, errlen,
                 d->n >= DEVICES_MAX ? "the device registry is full (%d revoked devices whose "
                                       "tokens have not expired yet)"
                                     : "cannot register the device",
                 DEVICES_MAX);
        return -1;
    }
    snprintf(e->id, sizeof(e->id), "%s", id);
    snprintf(e->name, sizeof(e->name), "%s", req->name);
    snprintf(e->user_id, sizeof(e->user_id), "%s", req->user_id);
    e->scopes = req->scopes;
    e->created_ms = req->now_ms;
    e->ttl_s = req->ttl_s;
    if (req->pairing) {
        e->pairing = 1;
        e->pairing_expires_ms = req->now_ms + DEVICES_PAIRING_TTL_S * 1000LL;
        e->expires_ms = e->pairing_expires_ms;
    } else {
        e->expires_ms = req->now_ms + req->ttl_s * 1000;
    }
    snprintf(id_out, DEVICES_ID_LEN + 1, "%s", id);
    if (d->path[0])
        commit(d, 1);
    else {
        d->dirty = 1;
        announce(d);
    }
    return 0;
}

static enum devices_verdict admit(struct devices *d, const struct auth_grant *g,
                                  const char *token_sha_hex, int64_t now_ms,
                                  struct devices_admitted *out);

enum devices_verdict devices_admit(struct devices *d, const struct auth_grant *g,
                                   const char *token_sha_hex, int64_t now_ms,
                                   struct devices_admitted *out)
{
    /* What the file says now (a revocation by the CLI a moment ago may not
     * have reached the watch yet); a pairing token reads it under the lock. */
    if (d->bound && d->path[0] && !g->pairing)
        reload(d);
    enum devices_verdict v = admit(d, g, token_sha_hex, now_ms, out);
    announce(d);
    return v;
}

static enum devices_verdict admit(struct devices *d, const struct auth_grant *g,
                                  const char *token_sha_hex, int64_t now_ms,
                                  struct devices_admitted *out)
{
    memset(out, 0, sizeof(*out));
    if (g->device_id[0])
        snprintf(out->id, sizeof(out->id), "%s", g->device_id);
    else
        snprintf(out->id, sizeof(out->id), "t-%.12s", token_sha_hex);
    if (!d->bound)
        return g->pairing ? DEVICES_PAIRING_UNKNOWN : DEVICES_ADMIT;

    if (g->pairing) {
        /* Spent under the lock: two helpers (or a helper and a retry) can
         * never both accept one pairing token. */
        if (d->path[0])
            begin(d);
        struct device *e = find(d, out->id);
        enum devices_verdict v = DEVICES_ADMIT;
        if (!e || !e->pairing)
            v = DEVICES_PAIRING_UNKNOWN;
        else if (e->revoked)
            v = DEVICES_REVOKED;
        else if (e->paired)
            v = DEVICES_PAIRING_USED;
        if (v != DEVICES_ADMIT) {
            if (d->path[0])
                unlock(d);
            announce(d);
            return v;
        }
        e->paired = 1;
        e->expires_ms = now_ms + e->ttl_s * 1000;
        e->last_seen_ms = now_ms;
        out->paired_now = 1;
        out->device_ttl_s = e->ttl_s;
        if (d->path[0])
            commit(d, 1);
        else {
            d->dirty = 1;
            announce(d);
        }
        return DEVICES_ADMIT;
    }

    struct device *e = find(d, out->id);
    if (e && e->revoked)
        return DEVICES_REVOKED;
    if (!e) {
        /* Unnamed (no dev) or unregistered (a dev minted elsewhere):
         * listed from memory, so it can be seen and revoked. */
        prune(d, now_ms);
        if (d->n >= DEVICES_MAX || !(e = append(d)))
            return DEVICES_ADMIT;
        snprintf(e->id, sizeof(e->id), "%s", out->id);
        snprintf(e->name, sizeof(e->name), "%s", g->device_id[0] ? "unregistered" : "unnamed");
        snprintf(e->user_id, sizeof(e->user_id), "%.256s", g->user_id ? g->user_id : "");
        e->scopes = g->scopes;
        e->created_ms = now_ms;
        e->expires_ms = g->exp * 1000;
        e->last_seen_ms = now_ms;
        e->unnamed = !g->device_id[0];
        e->ephemeral = 1;
        d->dirty = 1;
        announce(d);
        return DEVICES_ADMIT;
    }
    if (e->ephemeral && g->exp * 1000 > e->expires_ms)
        e->expires_ms = g->exp * 1000;
    e->last_seen_ms = now_ms;
    if (!e->ephemeral && d->path[0] && now_ms - e->seen_saved_ms >= DEVICES_SEEN_EVERY) {
        begin(d);
        if ((e = find(d, out->id)) != NULL)
            e->last_seen_ms = now_ms;
        commit(d, 0);
    }
    return DEVICES_ADMIT;
}

/* An entry to change, read fresh under the lock when there is a file; NULL
 * (lock released, watchers told) when id names none. */
static struct device *edit_begin(struct devices *d, const char *id)
{
    if (d->path[0])
        begin(d);
    struct device *e = find(d, id);
    if (!e) {
        if (d->path[0])
            unlock(d);
        announce(d);
    }
    return e;
}

/* Writes the change (file) or keeps it in memory, and tells the watchers. */
static void edit_end(struct devices *d)
{
    if (d->path[0]) {
        commit(d, 1);
    } else {
        d->dirty = 1;
        announce(d);
    }
}

int devices_revoke(struct devices *d, const char *id, int64_t now_ms)
{
    if (!d->bound || !id)
        return -1;
    struct device *e = edit_begin(d, id);
    if (!e)
        return -1;
    e->revoked = 1;
    if (e->ephemeral) {
        /* Persisted from now on, so the revocation survives a restart. */
        e->ephemeral = 0;
        if (e->expires_ms <= 0)
            e->expires_ms = now_ms;
    }
    edit_end(d);
    return 0;
}

int devices_rename(struct devices *d, const char *id, const char *name)
{
    if (!d->bound || !id || !devices_name_ok(name))
        return -1;
    struct device *e = edit_begin(d, id);
    if (!e)
        return -1;
    snprintf(e->name, sizeof(e->name), "%s", name);
    if (e->ephemeral)
        e->ephemeral = 0; /* a name given is worth keeping */
    edit_end(d);
    return 0;
}

int devices_is_revoked(const struct devices *d, const char *id)
{
    const struct device *e = find(d, id);
    return e && e->revoked;
}

const char *devices_name(const struct devices *d, const char *id)
{
    const struct device *e = find(d, id);
    return e ? e->name : NULL;
}

json_object *devices_list_json(struct devices *d, int64_t now_ms,
                               int (*connected)(void *ud, const char *id), void *ud)
{
    json_object *r = json_object_new_object(), *arr = json_object_new_array();
    if (d->bound && d->path[0] && !d->env.loop)
        reload(d); /* the CLI: what the file says now */
    for (size_t i = 0; i < d->n; i++) {
        const struct device *e = &d->v[i];
        json_object *o = entry_json(e, 0);
        json_object_object_del(o, "pairingExpires");
        json_object_object_del(o, "ttlSeconds");
        const char *state = e->revoked                                ? "revoked"
                            : e->expires_ms && e->expires_ms < now_ms ? "expired"
                            : e->pairing && !e->paired                ? "pending"
                                                                      : "active";
        json_object_object_add(o, "state", json_object_new_string(state));
        int live = connected ? connected(ud, e->id) : 0;
        json_object_object_add(o, "connected", json_object_new_boolean(live > 0));
        json_object_object_add(o, "sessions", json_object_new_int(live));
        json_object_array_add(arr, o);
    }
    json_object_object_add(r, "devices", arr);
    if (d->problem[0])
        json_object_object_add(r, "problem", json_object_new_string(d->problem));
    return r;
}

const char *devices_problem(const struct devices *d)
{
    return d->problem[0] ? d->problem : NULL;
}
