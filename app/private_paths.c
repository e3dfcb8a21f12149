/*
 * private_paths: what the helper never serves (see private_paths.h).
 */
#include "app/private_paths.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workspace/folder.h"

#define PRIVATE_MAX 16

static void strs_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void private_paths_free(struct private_paths *p)
{
    free(p->config_file);
    strs_free(p->extra, p->n_extra);
    strs_free(p->warned, p->n_warned);
    memset(p, 0, sizeof(*p));
}

int private_paths_set_extra(struct private_paths *p, json_object *arr)
{
    size_t n = json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
    char **v = calloc(n ? n : 1, sizeof(char *));
    size_t k = 0;
    if (!v)
        return -1;
    for (size_t i = 0; i < n && k < PRIVATE_MAX; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        const char *s = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : "";
        if (s[0] != '/' || (size_t)json_object_get_string_len(e) != strlen(s))
            continue;
        if (!(v[k] = strdup(s))) {
            strs_free(v, k);
            return -1;
        }
        k++;
    }
    strs_free(p->extra, p->n_extra);
    p->extra = v;
    p->n_extra = k;
    return 0;
}

/* dir/companion under an XDG base folder (or its default under $HOME). */
static int xdg_companion(const char *env, const char *home_default, char *out, size_t len)
{
    const char *base = getenv(env), *home = getenv("HOME");
    int n;
    /* The XDG spec ignores a relative base. */
    if (base && base[0] == '/')
        n = snprintf(out, len, "%s/companion", base);
    else if (home && home[0] == '/')
        n = snprintf(out, len, "%s/%s/companion", home, home_default);
    else
        return -1;
    return n > 0 && (size_t)n < len ? 0 : -1;
}

static int warned(struct private_paths *p, const char *key)
{
    for (size_t i = 0; i < p->n_warned; i++)
        if (strcmp(p->warned[i], key) == 0)
            return 1;
    char **nv = realloc(p->warned, (p->n_warned + 1) * sizeof(char *));
    if (!nv)
        return 1;
    p->warned = nv;
    if ((p->warned[p->n_warned] = strdup(key)) != NULL)
        p->n_warned++;
    return 0;
}

/* Tells the user, once, that a served folder holds a private path. */
static void warn_inside(struct private_paths *p, const struct workspace *ws, const char *path,
                        struct logger *log)
{
    char *real = realpath(path, NULL), rel[PATH_MAX], key[2 * PATH_MAX + 2];
    if (!real)
        return;
    int k = folder_relative(ws->folders, ws->n_folders, real, rel, sizeof(rel));
    if (k >= 0) {
        snprintf(key, sizeof(key), "%s\n%s", ws->folders[k].path, real);
        if (!warned(p, key))
            log_msg(log, LOG_WARN,
                    "workspace folder %s contains Companion's private %s (%s): it is never "
                    "served, but a folder you share should not hold it",
                    ws->folders[k].name, strcmp(rel, ".") ? "files" : "folder", rel);
    }
    free(real);
}

int private_paths_apply(struct private_paths *p, const struct settings *st, struct workspace *ws,
                        struct logger *log)
{
    /* The files that matter most are named too: a folder's inode does not
     * catch a hard link to a file inside it. */
    static const char *const config_files[] = {
        "secret", "whatsapp.token", "whatsapp-auth/creds.json", "api-token"}; /* the bridge's API */
    enum { N_FILES = sizeof(config_files) / sizeof(config_files[0]) };
    char config[PATH_MAX], state[PATH_MAX], key_file[PATH_MAX], tls_key[PATH_MAX],
        files[N_FILES][PATH_MAX];
    const char *v[PRIVATE_MAX + N_FILES + 8];
    size_t n = 0;
    int have_config = xdg_companion("XDG_CONFIG_HOME", ".config", config, sizeof(config)) == 0;
    if (have_config)
        v[n++] = config;
    if (xdg_companion("XDG_STATE_HOME", ".local/state", state, sizeof(state)) == 0)
        v[n++] = state;
    if (p->config_file)
        v[n++] = p->config_file;
    if (st && st->public_key_path && realpath(st->public_key_path, key_file))
        v[n++] = key_file;
    /* The TLS key: whoever reads it can pose as this helper. */
    if (st && st->tls_key_file && realpath(st->tls_key_file, tls_key))
        v[n++] = tls_key;
    for (size_t i = 0; i < p->n_extra && i < PRIVATE_MAX; i++)
        v[n++] = p->extra[i];
    size_t n_warn = n; /* the files below are inside `config`: one warning is enough */
    for (size_t i = 0; have_config && i < N_FILES; i++)
        if ((size_t)snprintf(files[i], sizeof(files[i]), "%s/%s", config, config_files[i]) <
            sizeof(files[i]))
            v[n++] = files[i];
    if (workspace_set_private(ws, v, n) < 0)
        return -1;
    for (size_t i = 0; i < n_warn; i++)
        warn_inside(p, ws, v[i], log);
    return 0;
}
