/*
 * settings_impl: what settings.c (the key table and parsing),
 * settings_commands.c (tasks and agents) and settings_values.c (defaults,
 * copies, whole-settings checks) share. Internal to those files.
 */
#ifndef COMPANION_SETTINGS_IMPL_H
#define COMPANION_SETTINGS_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "core/settings.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define ARRAY_MAX     1024
#define TASK_NAME_MAX 64
#define CWD_MAX       4095
#define KEY_PATH_LEN  256
#define NO_LIMIT      INT64_MAX

/* The key tables: one row per key, parsed by settings_parse_fields(). */
enum field_kind {
    FIELD_BOOL,
    FIELD_INT,      /* int within [min, max] */
    FIELD_INT64,    /* int64_t within [min, max] */
    FIELD_STRING,   /* char *, length within [min, max] */
    FIELD_STRV,     /* struct settings_strv */
    FIELD_ENUM,     /* int: index into names */
    FIELD_SECRET,   /* char *: non-empty, wiped when replaced, never echoed */
    FIELD_PEM,      /* char *: "" = not set */
    FIELD_PEM_PATH, /* char *: the contents of the named file; "" = not set */
    FIELD_CWD,      /* char *: relative, no ".." component; "" = "." */
};

struct field {
    const char *section; /* object holding the key; NULL: the parsed object itself */
    const char *key;
    enum field_kind kind;
    size_t offset;
    int64_t min, max;
    const char *const *names;
    size_t names_n;
};

/* _Generic turns a member of the wrong C type into a compile error instead of
 * a silent write of the wrong width through the offset. */
#define MEMBER(T, m, ctype) _Generic(((T *)0)->m, ctype : offsetof(T, m))

/* clang-format would split each braced initializer below over four lines. */
// clang-format off
#define BOOL_AT(T, sec, key, m) \
    {sec, key, FIELD_BOOL, MEMBER(T, m, int), 0, 1, NULL, 0}
#define INT_AT(T, sec, key, m, lo, hi) \
    {sec, key, FIELD_INT, MEMBER(T, m, int), lo, hi, NULL, 0}
#define INT64_AT(T, sec, key, m, lo, hi) \
    {sec, key, FIELD_INT64, MEMBER(T, m, int64_t), lo, hi, NULL, 0}
#define STR_AT(T, sec, key, kind, m, lo, hi) \
    {sec, key, kind, MEMBER(T, m, char *), lo, hi, NULL, 0}
#define STRV_AT(T, sec, key, m) \
    {sec, key, FIELD_STRV, MEMBER(T, m, struct settings_strv), 0, ARRAY_MAX, NULL, 0}
#define ENUM_AT(T, sec, key, m, names) \
    {sec, key, FIELD_ENUM, MEMBER(T, m, int), 0, 0, names, ARRAY_LEN(names)}
// clang-format on

/* Parses the rows of `fields` found in obj into base; prefix names obj in
 * messages ("tasks.build"). */
int settings_parse_fields(const struct field *fields, size_t n, json_object *obj, void *base,
                          const char *prefix, char *err, size_t errlen);
/* "a.b.c" from the non-NULL parts. */
void settings_key_path(char *buf, size_t n, const char *a, const char *b, const char *c);
/* NULL both when the key is absent and when its value is JSON null. */
json_object *settings_member(json_object *obj, const char *key);
/* A name from the input made safe for a message: printable ASCII, bounded. */
void settings_printable(char *dst, size_t n, const char *src);
/* A JSON string without NUL characters, or -1 with "<path>: expected <what>". */
int settings_get_text(json_object *v, const char *path, const char *what, const char **out,
                      size_t *len, char *err, size_t errlen);
char *settings_dup_text(const char *s, size_t len);
/* -1 with "out of memory". */
int settings_oom(char *err, size_t errlen);
/* tasks, agents and defaultAgent (settings_commands.c). */
int settings_parse_commands(struct settings *s, json_object *root, char *err, size_t errlen);
/* server.publicUrl and server.tls (settings_remote.c). */
int settings_parse_remote(struct settings *s, json_object *root, char *err, size_t errlen);

/* Indexed by enum auth_alg and enum settings_log_level. */
extern const char *const settings_alg_names[3];
extern const char *const settings_log_level_names[4];

/* -1 with a formatted message in err (when err is not NULL). */
int settings_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* *dst = a copy of src (NULL stays NULL); -1 when out of memory. */
int settings_dup_str(char **dst, const char *src);
/* Overwrites, then frees (the secret). */
void settings_free_wiped(char *s);
void settings_strv_free(struct settings_strv *v);
int settings_strv_push(struct settings_strv *v, const char *s, size_t len);
int settings_strv_copy(struct settings_strv *dst, const struct settings_strv *src);
void settings_task_free(struct settings_task *t);
void settings_agent_free(struct settings_agent *a);
/* The defaults, allocated (-1 when out of memory: s is then empty). */
int settings_defaults(struct settings *s);

#endif
