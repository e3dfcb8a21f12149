/*
 * settings_impl: what settings.c (the key table and parsing) and
 * settings_values.c (defaults, copies, whole-settings checks) share.
 * Internal to those two files.
 */
#ifndef COMPANION_SETTINGS_IMPL_H
#define COMPANION_SETTINGS_IMPL_H

#include <stddef.h>

#include "core/settings.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

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
/* The defaults, allocated (-1 when out of memory: s is then empty). */
int settings_defaults(struct settings *s);

#endif
