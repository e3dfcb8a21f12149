/*
 * workspace: folder list, id derivation and URI decoding (see workspace.h).
 */
#include "workspace/workspace.h"
#include "workspace/utf8.h"

#include <errno.h>
#include <limits.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void workspace_init(struct workspace *w)
{
    memset(w, 0, sizeof(*w));
}

static struct workspace_private *priv_ref(struct workspace_private *p)
{
    if (p)
        atomic_fetch_add(&p->refs, 1);
    return p;
}

static void priv_unref(struct workspace_private *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->paths[i]);
    free(p);
}

static void free_folders(struct workspace_folder *f, size_t n)
{
    for (size_t i = 0; f && i < n; i++) {
        free(f[i].name);
        free(f[i].path);
        priv_unref(f[i].priv);
    }
    free(f);
}

/* Every folder of w refers to w->priv. */
static void share_private(struct workspace *w)
{
    for (size_t i = 0; i < w->n_folders; i++) {
        if (w->folders[i].priv == w->priv)
            continue;
        priv_unref(w->folders[i].priv);
        w->folders[i].priv = priv_ref(w->priv);
    }
}

void workspace_free(struct workspace *w)
{
    free_folders(w->folders, w->n_folders);
    free(w->name);
    priv_unref(w->priv);
    workspace_init(w);
}

int workspace_set_private(struct workspace *w, const char *const *paths, size_t n)
{
    struct workspace_private *p = calloc(1, sizeof(*p) + n * sizeof(char *));
    if (!p)
        return -1;
    atomic_init(&p->refs, 1);
    for (size_t i = 0; i < n; i++) {
        if (!(p->paths[p->n] = strdup(paths[i]))) {
            priv_unref(p);
            return -1;
        }
        p->n++;
    }
    priv_unref(w->priv);
    w->priv = p;
    share_private(w);
    return 0;
}

void workspace_id_for_path(const char *path, char out[17])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)path, strlen(path), md);
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return (slash && slash[1]) ? slash + 1 : path;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int workspace_open_dir(struct workspace *w, const char *dir, char *err, size_t errlen)
{
    char *real = realpath(dir, NULL);
    if (!real || !is_dir(real)) {
        snprintf(err, errlen, "workspace folder %s: %s", dir,
                 real ? "not a directory" : strerror(errno));
        free(real);
        return -1;
    }
    struct workspace_folder *f = calloc(1, sizeof(*f));
    char *name = strdup(base_name(real));
    char *fname = strdup(base_name(real));
    if (!f || !name || !fname) {
        free(f);
        free(name);
        free(fname);
        free(real);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct workspace_private *priv = priv_ref(w->priv);
    workspace_free(w);
    w->priv = priv;
    f->name = fname;
    f->path = real;
    w->folders = f;
    w->n_folders = 1;
    w->name = name;
    share_private(w);
    workspace_id_for_path(real, w->id);
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *workspace_path_from_uri(const char *uri)
{
    if (!uri || strncmp(uri, "file://", 7) != 0)
        return NULL;
    const char *p = uri + 7;
    if (strncmp(p, "localhost/", 10) == 0)
        p += 9;
    if (*p != '/')
        return NULL;
    size_t len = strlen(p);
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '%') {
            int hi = i + 2 < len ? hexval(p[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(p[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (p[i] == '?' || p[i] == '#') {
            break;
        } else {
            out[o++] = p[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* Builds a folder list from [{uri, name}]; entries that are not local
 * directories are counted in *skipped rather than failing the whole list,
 * because a multi-root workspace may mix local and remote folders. */
static int folders_from_json(json_object *arr, struct workspace_folder **out, size_t *n_out,
                             size_t *skipped, char *err, size_t errlen)
{
    *out = NULL;
    *n_out = 0;
    if (!json_object_is_type(arr, json_type_array)) {
        snprintf(err, errlen, "workspaceFolders: expected an array");
        return -1;
    }
    size_t n = json_object_array_length(arr);
    struct workspace_folder *f = calloc(n ? n : 1, sizeof(*f));
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i), *uri, *name;
        if (!json_object_is_type(e, json_type_object) ||
            !json_object_object_get_ex(e, "uri", &uri) ||
            !json_object_is_type(uri, json_type_string)) {
            free_folders(f, k);
            snprintf(err, errlen, "workspaceFolders[%zu]: expected {uri, name}", i);
            return -1;
        }
        char *path = workspace_path_from_uri(json_object_get_string(uri));
        char *real = path ? realpath(path, NULL) : NULL;
        free(path);
        if (!real || !is_dir(real)) {
            free(real);
            if (skipped)
                (*skipped)++;
            continue;
        }
        const char *nm =
            (json_object_object_get_ex(e, "name", &name) &&
             json_object_is_type(name, json_type_string) && json_object_get_string_len(name) > 0)
                ? json_object_get_string(name)
                : base_name(real);
        f[k].name = strdup(nm);
        f[k].path = real;
        if (!f[k].name) {
            free_folders(f, k + 1);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        k++;
    }
    *out = f;
    *n_out = k;
    return 0;
}

int workspace_set_folders(struct workspace *w, const char *id, json_object *folders,
                          size_t *skipped, char *err, size_t errlen)
{
    struct workspace_folder *f;
    size_t n;
    if (id && strlen(id) > WORKSPACE_ID_MAX) {
        snprintf(err, errlen, "workspaceId: longer than %d characters", WORKSPACE_ID_MAX);
        return -1;
    }
    if (folders_from_json(folders, &f, &n, skipped, err, errlen) < 0)
        return -1;
    if ((!id || !*id) && n == 0) {
        free_folders(f, n);
        snprintf(err, errlen, "workspaceId: required when no local folder is open");
        return -1;
    }
    char *name = strdup(n ? f[0].name : "workspace");
    if (!name) {
        free_folders(f, n);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct workspace_private *priv = priv_ref(w->priv);
    workspace_free(w);
    w->priv = priv;
    w->folders = f;
    w->n_folders = n;
    w->name = name;
    share_private(w);
    if (id && *id)
        snprintf(w->id, sizeof(w->id), "%s", id);
    else
        workspace_id_for_path(f[0].path, w->id);
    return 0;
}

int workspace_change_folders(struct workspace *w, json_object *event, char *err, size_t errlen)
{
    json_object *added = NULL, *removed = NULL;
    if (!json_object_is_type(event, json_type_object)) {
        snprintf(err, errlen, "event: expected an object");
        return -1;
    }
    json_object_object_get_ex(event, "added", &added);
    json_object_object_get_ex(event, "removed", &removed);
    struct workspace_folder *add = NULL, *rem = NULL;
    size_t n_add = 0, n_rem = 0;
    if (added && folders_from_json(added, &add, &n_add, NULL, err, errlen) < 0)
        return -1;
    if (removed && folders_from_json(removed, &rem, &n_rem, NULL, err, errlen) < 0) {
        free_folders(add, n_add);
        return -1;
    }
    struct workspace_folder *nf = calloc(w->n_folders + n_add + 1, sizeof(*nf));
    if (!nf) {
        free_folders(add, n_add);
        free_folders(rem, n_rem);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < w->n_folders; i++) {
        int gone = 0;
        for (size_t j = 0; j < n_rem && !gone; j++)
            gone = strcmp(w->folders[i].path, rem[j].path) == 0;
        if (gone) {
            free(w->folders[i].name);
            free(w->folders[i].path);
            priv_unref(w->folders[i].priv);
        } else {
            nf[k++] = w->folders[i];
        }
    }
    for (size_t j = 0; j < n_add; j++) {
        int dup = 0;
        for (size_t i = 0; i < k && !dup; i++)
            dup = strcmp(nf[i].path, add[j].path) == 0;
        if (dup) {
            free(add[j].name);
            free(add[j].path);
        } else {
            nf[k++] = add[j];
        }
    }
    free(add);
    free_folders(rem, n_rem);
    free(w->folders);
    w->folders = nf;
    w->n_folders = k;
    share_private(w);
    return 0;
}

json_object *workspace_info_json(const struct workspace *w, const char *version)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "workspaceId", json_object_new_string(w->id));
    json_object_object_add(o, "name", utf8_json_string(w->name ? w->name : ""));
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < w->n_folders; i++) {
        json_object *f = json_object_new_object();
        json_object_object_add(f, "name", utf8_json_string(w->folders[i].name));
        json_object_object_add(f, "path", utf8_json_string(w->folders[i].path));
        json_object_array_add(arr, f);
    }
    json_object_object_add(o, "folders", arr);
    json_object_object_add(o, "version", json_object_new_string(version));
    return o;
}

struct workspace_folder *workspace_folders_copy(const struct workspace *w, size_t *n)
{
    struct workspace_folder *f = calloc(w->n_folders ? w->n_folders : 1, sizeof(*f));
    *n = 0;
    for (size_t i = 0; f && i < w->n_folders; i++) {
        f[i].name = strdup(w->folders[i].name);
        f[i].path = strdup(w->folders[i].path);
        f[i].priv = priv_ref(w->folders[i].priv);
        *n = i + 1;
        if (!f[i].name || !f[i].path) {
            workspace_folders_free(f, *n);
            return NULL;
        }
    }
    return f;
}

void workspace_folders_free(struct workspace_folder *f, size_t n)
{
    free_folders(f, n);
}
