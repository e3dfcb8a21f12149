/*
 * workspace: the folders a helper serves and their stable id.
 *
 * The id of a standalone workspace is the first 16 hex digits of SHA-256 of
 * its canonical path, so the same folder always pairs with the same tokens.
 * In editor mode the extension chooses the id and sends the folders as
 * `file://` URIs, which are decoded here.
 */
#ifndef COMPANION_WORKSPACE_H
#define COMPANION_WORKSPACE_H

#include <stdatomic.h>
#include <stddef.h>
#include <json-c/json.h>

#define WORKSPACE_ID_MAX 128

/* Paths the helper must never serve from any folder (its own secret, its
 * companions' state, the extension's storage, key files named in settings):
 * an immutable list shared by reference between the workspace and the
 * folder copies that worker jobs hold. folder.c compares them by device and
 * inode. */
struct workspace_private {
    _Atomic long refs;
    size_t n;
    char *paths[];
};

struct workspace_folder {
    char *name;
    char *path;                     /* canonical absolute path */
    struct workspace_private *priv; /* a reference (may be NULL: nothing private) */
};

struct workspace {
    char id[WORKSPACE_ID_MAX + 1];
    char *name;
    struct workspace_folder *folders;
    size_t n_folders;
    struct workspace_private *priv; /* handed to every folder */
};

void workspace_init(struct workspace *w);
void workspace_free(struct workspace *w);

/* One folder, given as a directory path (relative paths resolve against the
 * current directory). Sets the id from the canonical path. */
int workspace_open_dir(struct workspace *w, const char *dir, char *err, size_t errlen);

/* Replaces the folders with `folders` ([{uri, name}] from the editor). Folders
 * whose URI is not a local `file://` directory are skipped and counted in
 * *skipped. `id` may be NULL or empty: then it is derived from the first
 * folder. Returns 0, or -1 with err (the workspace is unchanged). */
int workspace_set_folders(struct workspace *w, const char *id, json_object *folders,
                          size_t *skipped, char *err, size_t errlen);

/* Applies a didChangeWorkspaceFolders event {added, removed}. */
int workspace_change_folders(struct workspace *w, json_object *event, char *err, size_t errlen);

/* The stable id for a canonical path: 16 lowercase hex digits. */
void workspace_id_for_path(const char *path, char out[17]);

/* Percent-decodes a file:// URI into a path; returns a malloc'd string or
 * NULL (not a file URI, a host part other than empty/localhost, bad escape,
 * or an embedded NUL). */
char *workspace_path_from_uri(const char *uri);

/* Replaces the private paths (absolute; copied). Every folder, and every
 * folder added later, refers to the new list; copies already made keep
 * theirs. Returns 0 or -1 (out of memory: unchanged). */
int workspace_set_private(struct workspace *w, const char *const *paths, size_t n);

/* A copy of w's folders for another thread (*n set). NULL when out of
 * memory; free with workspace_folders_free. */
struct workspace_folder *workspace_folders_copy(const struct workspace *w, size_t *n);
void workspace_folders_free(struct workspace_folder *f, size_t n);

/* {workspaceId, name, folders:[{name,path}], version} */
json_object *workspace_info_json(const struct workspace *w, const char *version);

#endif
