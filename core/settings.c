/*
 * settings: the key table of the `companion` settings section (JSON name,
 * C member, range) and its parsing, from JSON or a file. Defaults, copies
 * and the checks made on whole settings are settings_values.c's.
 *
 * Every allocation inside struct settings is made here or there through
 * settings_impl.h. A parse builds a fresh struct and hands it
 * over only when every key passed, so a refused update never half-applies.
 *
 * JSON null counts as absent at every level (a key, a section, a task, an env
 * variable, the whole section): VS Code sends null for a setting the user
 * cleared, and that must mean "default", not "wrong type". Array elements are
 * values, not keys, so a null element is refused.
 */
#include "core/settings.h"
#include "core/settings_impl.h"

#include "core/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PEM_MAX    65536
#define CONFIG_MAX (1024 * 1024)

/* Indexed by enum value, so the mapping cannot drift from auth.h. Kept local
 * rather than calling auth_alg_parse() so this module links without auth.c. */
const char *const settings_alg_names[] = {
    [AUTH_ALG_HS256] = "HS256",
    [AUTH_ALG_RS256] = "RS256",
    [AUTH_ALG_ES256] = "ES256",
};
_Static_assert(ARRAY_LEN(settings_alg_names) == AUTH_ALG_ES256 + 1, "one name per enum auth_alg");

/* Who sees a task's last output in task.finished (enum settings_task_output). */
static const char *const task_output_names[] = {"all", "own"};
const char *const settings_log_level_names[] = {
    [LOG_LEVEL_ERROR] = "error",
    [LOG_LEVEL_WARN] = "warn",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_DEBUG] = "debug",
};
_Static_assert(ARRAY_LEN(settings_log_level_names) == LOG_LEVEL_DEBUG + 1,
               "one name per log level");

#define S struct settings
/* Order matters twice: the first bad key is the one reported, and publicKey
 * must come before publicKeyPath so the two can be told apart. */
static const struct field settings_fields[] = {
    BOOL_AT(S, NULL, "autoStart", auto_start),
    STR_AT(S, "server", "host", FIELD_STRING, host, 1, 255),
    INT_AT(S, "server", "port", port, 0, 65535),
    STRV_AT(S, "server", "allowedOrigins", allowed_origins),
    STRV_AT(S, "server", "allowedHosts", allowed_hosts),
    STR_AT(S, "auth", "secret", FIELD_SECRET, secret, 1, NO_LIMIT),
    ENUM_AT(S, "auth", "algorithm", alg, settings_alg_names),
    STR_AT(S, "auth", "publicKey", FIELD_PEM, public_key, 0, PEM_MAX),
    STR_AT(S, "auth", "publicKeyPath", FIELD_PEM_PATH, public_key, 0, PEM_MAX),
    STR_AT(S, "auth", "audience", FIELD_STRING, audience, 0, NO_LIMIT),
    STR_AT(S, "auth", "issuer", FIELD_STRING, issuer, 0, NO_LIMIT),
    INT_AT(S, "auth", "timeoutSeconds", auth_timeout_s, 1, 3600),
    INT_AT(S, "auth", "leewaySeconds", leeway_s, 0, 3600),
    INT_AT(S, "heartbeat", "intervalSeconds", heartbeat_interval_s, 1, 3600),
    INT_AT(S, "heartbeat", "timeoutSeconds", heartbeat_timeout_s, 1, 86400),
    INT_AT(S, "events", "historySize", history_size, 16, 100000),
    INT_AT(S, "approvals", "timeoutSeconds", approval_timeout_s, 5, 86400),
    ENUM_AT(S, "events", "taskOutput", task_output, task_output_names),
    INT_AT(S, "limits", "maxConnections", max_connections, 1, 100000),
    INT_AT(S, "limits", "maxUnauthenticated", max_unauthenticated, 1, 100000),
    INT64_AT(S, "limits", "maxMessageBytes", max_message_bytes, 256, 67108864),
    INT_AT(S, "limits", "commandsPerSecond", commands_per_second, 1, 10000),
    INT64_AT(S, "limits", "maxOutputBytes", max_output_bytes, 1024, 1073741824),
    INT_AT(S, "limits", "maxConcurrentTasks", max_concurrent_tasks, 1, 64),
    INT_AT(S, "limits", "maxConversations", max_conversations, 1, 1000),
    INT_AT(S, "limits", "maxAgentTurns", max_agent_turns, 1, 64),
    INT_AT(S, "limits", "agentTurnTimeoutSeconds", agent_turn_timeout_s, 10, 86400),
    INT_AT(S, "limits", "agentStartTimeoutSeconds", agent_start_timeout_s, 1, 600),
    INT_AT(S, "limits", "agentUnwatchedSeconds", agent_unwatched_s, 5, 86400),
    INT64_AT(S, "limits", "maxQueuedBytes", max_queued_bytes, 65536, 1073741824),
    INT64_AT(S, "limits", "maxWriteBytes", max_write_bytes, 1, 67108864),
    STRV_AT(S, NULL, "editorCommands", editor_commands),
    ENUM_AT(S, "log", "level", log_level, settings_log_level_names),
};
#undef S

int settings_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int settings_oom(char *err, size_t errlen)
{
    return settings_fail(err, errlen, "out of memory");
}

/* Names from the input (task and variable names) go into messages that reach
 * logs and JSON-RPC errors: keep only printable ASCII and bound the length. */
void settings_printable(char *dst, size_t n, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 4 < n && i < TASK_NAME_MAX; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    if (src[i] && i + 4 <= n) {
        memcpy(dst + i, "...", 3);
        i += 3;
    }
    dst[i] = '\0';
}

void settings_key_path(char *buf, size_t n, const char *a, const char *b, const char *c)
{
    const char *parts[] = {a, b, c};
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ARRAY_LEN(parts); i++) {
        if (!parts[i] || used >= n)
            continue;
        int w = snprintf(buf + used, n - used, "%s%s", used ? "." : "", parts[i]);
        if (w > 0)
            used += (size_t)w;
    }
}

/* NULL both when the key is absent and when its value is JSON null. */
json_object *settings_member(json_object *obj, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v))
        return NULL;
    return v;
}

/* json-c keeps a string's length beside it, so "a\u0000b" is a valid json-c
 * string that every C consumer after us would silently cut short. */
int settings_get_text(json_object *v, const char *path, const char *what, const char **out,
                      size_t *len, char *err, size_t errlen)
{
    if (!json_object_is_type(v, json_type_string))
        return settings_fail(err, errlen, "%s: expected %s", path, what);
    const char *s = json_object_get_string(v);
    int n = json_object_get_string_len(v);
    if (n < 0 || strlen(s) != (size_t)n)
        return settings_fail(err, errlen, "%s: must not contain NUL characters", path);
    *out = s;
    *len = (size_t)n;
    return 0;
}

/* json-c reads 1.5 as 1 through get_int64 and clamps 99999999999999999999 to
 * INT64_MAX without a word, so only a JSON integer inside the range counts;
 * 10.0 is a double and refused like 1.5. */
static int get_int(json_object *v, int64_t min, int64_t max, int64_t *out)
{
    if (!json_object_is_type(v, json_type_int))
        return -1;
    int64_t x = json_object_get_int64(v);
    if (x < min || x > max)
        return -1;
    *out = x;
    return 0;
}

char *settings_dup_text(const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

int settings_dup_str(char **dst, const char *src)
{
    *dst = NULL;
    if (!src)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : -1;
}

void settings_free_wiped(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static int replace_text(char **dst, const char *s, size_t len, char *err, size_t errlen)
{
    char *d = settings_dup_text(s, len);
    if (!d)
        return settings_oom(err, errlen);
    settings_free_wiped(*dst);
    *dst = d;
    return 0;
}

void settings_strv_free(struct settings_strv *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->v[i]);
    free(v->v);
    v->v = NULL;
    v->n = 0;
}

int settings_strv_push(struct settings_strv *v, const char *s, size_t len)
{
    char **nv = realloc(v->v, (v->n + 1) * sizeof *nv);
    if (!nv)
        return -1;
    v->v = nv;
    if (!(nv[v->n] = settings_dup_text(s, len)))
        return -1;
    v->n++;
    return 0;
}

int settings_strv_copy(struct settings_strv *dst, const struct settings_strv *src)
{
    *dst = (struct settings_strv){0};
    if (src->n == 0)
        return 0;
    if (!(dst->v = calloc(src->n, sizeof *dst->v)))
        return -1;
    for (; dst->n < src->n; dst->n++)
        if (!(dst->v[dst->n] = strdup(src->v[dst->n])))
            return -1;
    return 0;
}

static int parse_strv(json_object *v, const char *path, struct settings_strv *out, char *err,
                      size_t errlen)
{
    if (!json_object_is_type(v, json_type_array))
        return settings_fail(err, errlen, "%s: expected an array of strings", path);
    size_t n = json_object_array_length(v);
    if (n > ARRAY_MAX)
        return settings_fail(err, errlen, "%s: expected at most %d entries", path, ARRAY_MAX);
    struct settings_strv t = {0};
    if (n && !(t.v = calloc(n, sizeof *t.v)))
        return settings_oom(err, errlen);
    for (; t.n < n; t.n++) {
        char epath[KEY_PATH_LEN + sizeof "[18446744073709551615]"];
        const char *s = NULL;
        size_t len = 0;
        snprintf(epath, sizeof epath, "%s[%zu]", path, t.n);
        if (settings_get_text(json_object_array_get_idx(v, t.n), epath, "a string", &s, &len, err,
                              errlen) != 0) {
            settings_strv_free(&t);
            return -1;
        }
        if (!(t.v[t.n] = settings_dup_text(s, len))) {
            settings_strv_free(&t);
            return settings_oom(err, errlen);
        }
    }
    settings_strv_free(out);
    *out = t;
    return 0;
}

static void describe_string(char *buf, size_t n, int64_t min, int64_t max)
{
    const char *base = min > 0 ? "a non-empty string" : "a string";
    if (max == NO_LIMIT)
        snprintf(buf, n, "%s", base);
    else
        snprintf(buf, n, "%s of at most %" PRId64 " bytes", base, max);
}

static void describe_names(char *buf, size_t n, const char *const *names, size_t count)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < count && used < n; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "one of ", names[i]);
        if (w > 0)
            used += (size_t)w;
    }
}

/* The task runs in <workspace folder>/<cwd>: an absolute path or a ".."
 * component would put it outside the folder the user opened. */
static int cwd_is_contained(const char *p)
{
    if (p[0] == '/')
        return 0;
    while (*p) {
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return 0;
        p += len;
        p += strspn(p, "/");
    }
    return 1;
}

enum read_status { READ_OK = 0, READ_ERRNO, READ_TOO_BIG, READ_NOT_REGULAR };

/* Reads a whole regular file of at most max bytes into a NUL-terminated
 * buffer, with its mode and owner. On READ_ERRNO, *errnum holds the cause. */
static enum read_status read_capped(const char *path, size_t max, char **out, size_t *len,
                                    struct stat *info, int *errnum)
{
    /* O_NONBLOCK: a FIFO at the path must not hang the helper inside open(). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        *errnum = errno;
        return READ_ERRNO;
    }
    struct stat st;
    enum read_status rs = READ_OK;
    char *buf = NULL;
    size_t used = 0, cap;
    if (fstat(fd, &st) != 0) {
        *errnum = errno;
        rs = READ_ERRNO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rs = READ_NOT_REGULAR;
        goto out;
    }
    if (info)
        *info = st;
    if (st.st_size < 0 || (uintmax_t)st.st_size > max) {
        rs = READ_TOO_BIG;
        goto out;
    }
    /* One byte past the size seen by fstat, so a file that grew since is
     * still noticed and capped. */
    cap = (size_t)st.st_size + 1;
    if (!(buf = malloc(cap + 1))) {
        *errnum = ENOMEM;
        rs = READ_ERRNO;
        goto out;
    }
    for (;;) {
        if (used == cap) {
            if (cap > max) {
                rs = READ_TOO_BIG;
                goto out;
            }
            size_t ncap = cap > (max + 1) / 2 ? max + 1 : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                *errnum = ENOMEM;
                rs = READ_ERRNO;
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + used, cap - used);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *errnum = errno;
            rs = READ_ERRNO;
            goto out;
        }
        if (r == 0)
            break;
        used += (size_t)r;
    }
    buf[used] = '\0';
    *out = buf;
    *len = used;
    buf = NULL;
out:
    if (buf) {
        /* The settings file may hold auth.secret. */
        explicit_bzero(buf, used);
        free(buf);
    }
    close(fd);
    return rs;
}

static const char *errno_text(int e, char *buf, size_t n)
{
    return strerror_r(e, buf, n);
}

/* The message names the key and the path, never a byte of the file. */
static int read_pem_file(const char *path, const char *file, char **dst, char *err, size_t errlen)
{
    char *buf = NULL, ebuf[128];
    size_t len = 0;
    int e = 0;
    switch (read_capped(file, PEM_MAX, &buf, &len, NULL, &e)) {
    case READ_OK:
        break;
    case READ_ERRNO:
        return settings_fail(err, errlen, "%s: cannot read \"%s\": %s", path, file,
                             errno_text(e, ebuf, sizeof ebuf));
    case READ_TOO_BIG:
        return settings_fail(err, errlen, "%s: cannot read \"%s\": larger than %d bytes", path,
                             file, PEM_MAX);
    case READ_NOT_REGULAR:
        return settings_fail(err, errlen, "%s: cannot read \"%s\": not a regular file", path, file);
    }
    int rc = 0;
    if (len == 0)
        rc = settings_fail(err, errlen, "%s: cannot read \"%s\": the file is empty", path, file);
    else if (strlen(buf) != len)
        rc = settings_fail(err, errlen, "%s: cannot read \"%s\": not a PEM text file", path, file);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    free(*dst);
    *dst = buf;
    return 0;
}

/* `dst` points at the member the descriptor names inside the struct being built. */
static int parse_field(const struct field *f, json_object *v, void *dst, const char *path,
                       char *err, size_t errlen)
{
    char what[96];
    const char *s = NULL;
    size_t len = 0;
    int64_t x;

    switch (f->kind) {
    case FIELD_BOOL:
        if (!json_object_is_type(v, json_type_boolean))
            return settings_fail(err, errlen, "%s: expected a boolean", path);
        *(int *)dst = json_object_get_boolean(v) ? 1 : 0;
        return 0;
    case FIELD_INT:
    case FIELD_INT64:
        if (get_int(v, f->min, f->max, &x) != 0)
            return settings_fail(err, errlen,
                                 "%s: expected an integer from %" PRId64 " to %" PRId64, path,
                                 f->min, f->max);
        if (f->kind == FIELD_INT)
            *(int *)dst = (int)x;
        else
            *(int64_t *)dst = x;
        return 0;
    case FIELD_STRING:
        describe_string(what, sizeof what, f->min, f->max);
        if (settings_get_text(v, path, what, &s, &len, err, errlen) != 0)
            return -1;
        if ((uint64_t)len < (uint64_t)f->min || (uint64_t)len > (uint64_t)f->max)
            return settings_fail(err, errlen, "%s: expected %s", path, what);
        return replace_text(dst, s, len, err, errlen);
    case FIELD_STRV:
        return parse_strv(v, path, dst, err, errlen);
    case FIELD_ENUM:
        describe_names(what, sizeof what, f->names, f->names_n);
        if (settings_get_text(v, path, what, &s, &len, err, errlen) != 0)
            return -1;
        for (size_t i = 0; i < f->names_n; i++) {
            if (strcmp(s, f->names[i]) == 0) {
                *(int *)dst = (int)i;
                return 0;
            }
        }
        return settings_fail(err, errlen, "%s: expected %s", path, what);
    case FIELD_SECRET:
        if (settings_get_text(v, path, "a string", &s, &len, err, errlen) != 0)
            return -1;
        /* An empty HS256 key makes libjwt skip verification altogether, and
         * a short one can be guessed offline from any token. */
        if (len == 0)
            return settings_fail(err, errlen, "%s: must not be empty", path);
        if (len < SETTINGS_SECRET_MIN)
            return settings_fail(err, errlen,
                                 "%s: must be at least %d bytes (64 random hex digits)", path,
                                 SETTINGS_SECRET_MIN);
        return replace_text(dst, s, len, err, errlen);
    case FIELD_PEM:
        describe_string(what, sizeof what, f->min, f->max);
        if (settings_get_text(v, path, what, &s, &len, err, errlen) != 0)
            return -1;
        if ((uint64_t)len > (uint64_t)f->max)
            return settings_fail(err, errlen, "%s: expected %s", path, what);
        /* The contract's default is "": the setting exists but is unused. */
        return len == 0 ? 0 : replace_text(dst, s, len, err, errlen);
    case FIELD_PEM_PATH:
        if (settings_get_text(v, path, "a file path", &s, &len, err, errlen) != 0)
            return -1;
        if (len == 0)
            return 0;
        /* Two keys, one of which would win silently: make the user pick. */
        if (*(char **)dst)
            return settings_fail(
                err, errlen, "%s: set either auth.publicKey or auth.publicKeyPath, not both", path);
        return read_pem_file(path, s, dst, err, errlen);
    case FIELD_CWD:
        if (settings_get_text(v, path, "a string", &s, &len, err, errlen) != 0)
            return -1;
        if (len == 0) {
            s = ".";
            len = 1;
        }
        if ((uint64_t)len > (uint64_t)f->max || !cwd_is_contained(s))
            return settings_fail(
                err, errlen,
                "%s: expected a relative path inside the workspace folder (no leading "
                "'/', no '..')",
                path);
        return replace_text(dst, s, len, err, errlen);
    }
    return settings_fail(err, errlen, "%s: unsupported setting", path);
}

int settings_parse_fields(const struct field *fields, size_t n, json_object *obj, void *base,
                          const char *prefix, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const struct field *f = &fields[i];
        json_object *holder = obj;
        char path[KEY_PATH_LEN];
        if (f->section) {
            if (!(holder = settings_member(obj, f->section)))
                continue;
            if (!json_object_is_type(holder, json_type_object)) {
                settings_key_path(path, sizeof path, prefix, f->section, NULL);
                return settings_fail(err, errlen, "%s: expected an object", path);
            }
        }
        json_object *v = settings_member(holder, f->key);
        if (!v)
            continue;
        settings_key_path(path, sizeof path, prefix, f->section, f->key);
        if (parse_field(f, v, (char *)base + f->offset, path, err, errlen) != 0)
            return -1;
    }
    return 0;
}

int settings_parse(struct settings *out, json_object *obj, char *err, size_t errlen)
{
    struct settings t;
    *out = (struct settings){0};
    if (obj && !json_object_is_type(obj, json_type_object))
        return settings_fail(err, errlen, "settings: expected an object");
    if (settings_defaults(&t) != 0)
        return settings_oom(err, errlen);
    if (obj && (settings_parse_fields(settings_fields, ARRAY_LEN(settings_fields), obj, &t, NULL,
                                      err, errlen) != 0 ||
                settings_parse_commands(&t, obj, err, errlen) != 0)) {
        settings_free(&t);
        return -1;
    }
    /* Kept so the file is never served (it was read above). */
    json_object *auth = NULL, *kp = NULL;
    if (obj && json_object_object_get_ex(obj, "auth", &auth) &&
        json_object_is_type(auth, json_type_object) &&
        json_object_object_get_ex(auth, "publicKeyPath", &kp) &&
        json_object_is_type(kp, json_type_string) && json_object_get_string_len(kp) > 0 &&
        !(t.public_key_path = strdup(json_object_get_string(kp)))) {
        settings_free(&t);
        return settings_oom(err, errlen);
    }
    *out = t;
    return 0;
}

static void line_column(const char *buf, size_t off, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (buf[i] == '\n') {
            ++*line;
            *col = 1;
        } else {
            ++*col;
        }
    }
}

static int parse_json_text(const char *path, const char *buf, size_t len, json_object **out,
                           char *err, size_t errlen)
{
    size_t start = 0, line, col;
    /* Editors on some systems save UTF-8 with a byte order mark json-c refuses. */
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        start = 3;
    json_tokener *tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
    if (!tok)
        return settings_oom(err, errlen);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    /* The length includes the terminating NUL: json-c's way of saying "end
     * of input", and a NUL byte inside the file then stops the parse early,
     * which the trailing-data check below reports. */
    json_object *obj = json_tokener_parse_ex(tok, buf + start, (int)(len - start + 1));
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = start + json_tokener_get_parse_end(tok);
    json_tokener_free(tok);

    int rc = 0;
    if (jerr == json_tokener_continue) {
        line_column(buf, len, &line, &col);
        rc = settings_fail(err, errlen, "%s: line %zu, column %zu: unexpected end of file", path,
                           line, col);
    } else if (jerr != json_tokener_success) {
        line_column(buf, end > len ? len : end, &line, &col);
        rc = settings_fail(err, errlen, "%s: line %zu, column %zu: %s", path, line, col,
                           json_tokener_error_desc(jerr));
    } else {
        while (end < len && buf[end] && strchr(" \t\r\n", buf[end]))
            end++;
        if (end < len) {
            line_column(buf, end, &line, &col);
            rc = settings_fail(err, errlen,
                               "%s: line %zu, column %zu: unexpected data after the JSON value",
                               path, line, col);
        } else if (!json_object_is_type(obj, json_type_object)) {
            rc = settings_fail(err, errlen, "%s: expected a JSON object at the top level", path);
        }
    }
    if (rc != 0) {
        json_object_put(obj);
        return -1;
    }
    *out = obj;
    return 0;
}

int settings_load_file(struct settings *out, const char *path, char *err, size_t errlen)
{
    char *buf = NULL, ebuf[128], sub[512];
    size_t len = 0;
    int e = 0;
    struct stat info;
    *out = (struct settings){0};
    switch (read_capped(path, CONFIG_MAX, &buf, &len, &info, &e)) {
    case READ_OK:
        break;
    case READ_ERRNO:
        return settings_fail(err, errlen, "%s: cannot read: %s", path,
                             errno_text(e, ebuf, sizeof ebuf));
    case READ_TOO_BIG:
        return settings_fail(err, errlen, "%s: larger than %d bytes", path, CONFIG_MAX);
    case READ_NOT_REGULAR:
        return settings_fail(err, errlen, "%s: not a regular file", path);
    }
    json_object *obj = NULL;
    int rc = parse_json_text(path, buf, len, &obj, err, errlen);
    /* The file may hold auth.secret; the parsed copy lives on in obj only
     * until json_object_put below. */
    explicit_bzero(buf, len);
    free(buf);
    if (rc != 0)
        return -1;
    rc = settings_parse(out, obj, sub, sizeof sub);
    json_object_put(obj);
    if (rc != 0)
        return settings_fail(err, errlen, "%s: %s", path, sub);
    /* Whoever can read the file can mint tokens; whoever can write it can
     * replace the key. */
    if (out->secret && ((info.st_mode & (S_IRWXG | S_IRWXO)) || info.st_uid != geteuid())) {
        settings_free(out);
        return settings_fail(
            err, errlen,
            "%s: holds auth.secret but other users can read or change it, or it is not "
            "yours (chmod 600 %s)",
            path, path);
    }
    return 0;
}

char **settings_env_strings(const struct settings_env *env, size_t n)
{
    char **v = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; v && i < n; i++) {
        size_t len = strlen(env[i].name) + strlen(env[i].value) + 2;
        if (!(v[i] = malloc(len))) {
            settings_env_strings_free(v);
            return NULL;
        }
        snprintf(v[i], len, "%s=%s", env[i].name, env[i].value);
    }
    return v;
}

void settings_env_strings_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}
