/*
 * folder: the one place where a command's workspace folder is chosen and a
 * client's path is confined to it. fs.*, editor.open, editor.diagnostics,
 * task cwds, saved-file events and the git commands' folder choice all go
 * through here, so there is one rule, written once.
 *
 * The rule (see also docs/security.md):
 * - A path from a client is relative, with `/` separators. Refused before
 *   anything is opened: absolute paths, any component that is exactly `..`,
 *   NUL bytes, PATH_MAX bytes or more (FORBIDDEN).
 * - Resolution walks the path component by component with
 *   openat(O_PATH | O_NOFOLLOW) from the folder's directory fd. Symlinks are
 *   followed at every component while the resolution stays inside the
 *   folder: a relative target resolves from the link's directory and may use
 *   `..` down to, not above, the folder; an absolute target must begin with
 *   the folder's real path (compared as text). A link that leaves is
 *   FORBIDDEN whether or not its target exists (so no answer tells whether
 *   something exists outside); a dangling link inside is NOT_FOUND; more than
 *   40 links is FORBIDDEN. Each `..` must land on the directory the walk came
 *   from, so a directory moved out mid-walk is caught.
 * - Private files: every directory passed and the target itself are compared
 *   (device and inode) with the folder's `deny` list, the helper's own files
 *   and its companions' (the secret, the bridge's session, the extension's
 *   storage, key files named in settings). A match is FORBIDDEN whatever the
 *   path or link that led there; fs.list leaves such entries out.
 * - Reading opens the resolved name again with O_NOFOLLOW | O_NONBLOCK and
 *   requires the same inode and a regular file, so a swap between check and
 *   open is refused and a FIFO never blocks.
 * - Messages name at most the client's own relative path (200 bytes, UTF-8
 *   repaired), never an absolute path or a link's target.
 *
 * Synchronous file-system work: called on worker threads (fs.*, git) or for
 * a handful of syscalls on local paths (editor.open, task cwd).
 * Allocation: results are owned by the caller as documented per function.
 */
#ifndef COMPANION_FOLDER_H
#define COMPANION_FOLDER_H

#include <json-c/json.h>
#include <limits.h>
#include <sys/stat.h>

#include "workspace/result.h"
#include "workspace/workspace.h"

/* A client's path is echoed in error messages at most this many bytes. */
#define FOLDER_MSG_PATH_MAX 200

/* How a resolution failed; mapped to a contract code with the user's path. */
enum folder_err {
    FOLDER_OK = 0,
    FOLDER_E_NOT_FOUND,
    FOLDER_E_ESCAPE,   /* a symlink leads outside the folder */
    FOLDER_E_LOOP,     /* too many symlinks */
    FOLDER_E_TOO_LONG, /* a name or an expanded path beyond NAME_MAX / PATH_MAX */
    FOLDER_E_ACCESS,   /* the OS refused (permissions) */
    FOLDER_E_CHANGED,  /* the tree changed under the walk in a way that was caught */
    FOLDER_E_PRIVATE,  /* one of the helper's own files, or under one of its folders */
    FOLDER_E_IO,       /* anything else: out of fds, memory, I/O error */
};

/* What a successful resolution yields. The target is never a symlink. */
struct folder_target {
    int fd;                  /* O_PATH fd of the target */
    int parent;              /* O_PATH fd of its directory, -1 when the target is a directory */
    char name[NAME_MAX + 1]; /* the target's name in `parent` (non-directories only) */
    struct stat st;          /* fstat of fd */
};

/* Picks a folder by `args.folder` name, default the first. NULL with res set
 * (NOT_FOUND, INVALID_ARGS) when there is none. A JSON null is absent. */
const struct workspace_folder *folder_pick(const struct workspace_folder *folders, size_t n_folders,
                                           json_object *args, struct cmd_result *res);

/* The folder named `name` (NUL-free), or NULL. */
const struct workspace_folder *folder_find(const struct workspace_folder *folders, size_t n_folders,
                                           const char *name);

/* Reads args.path into *out (borrowed from args): the default when absent
 * (NULL default: INVALID_ARGS "required"), INVALID_ARGS when not a string,
 * FORBIDDEN when it breaks the rules above. Returns 0 or -1. */
int folder_arg_path(json_object *args, const char *dflt, const char **out, struct cmd_result *res);

/* Checks a relative path given as text (len bytes) by the same rules. */
int folder_check_path(const char *p, size_t len, struct cmd_result *res);

/* Components joined by '/', empty and '.' dropped; "." for the folder
 * itself. malloc'd, NULL when out of memory. */
char *folder_normalize(const char *p);

/* Resolves `rel` (already checked) inside f. On FOLDER_OK the caller owns
 * out->fd and out->parent (folder_target_close). */
enum folder_err folder_resolve(const struct workspace_folder *f, const char *rel,
                               struct folder_target *out);
void folder_target_close(struct folder_target *t);

/* folder_pick + folder_arg_path + folder_resolve with the errors as a
 * cmd_result. On CMD_OK *norm is the normalized path (caller frees), *picked
 * the folder, and t is open. */
enum cmd_status folder_open(const struct workspace_folder *folders, size_t n_folders,
                            json_object *args, const char *dflt, struct folder_target *t,
                            char **norm, const struct workspace_folder **picked,
                            struct cmd_result *res);

/* Opens a resolved regular file for reading (see the rule). Returns the fd,
 * or -1 with res set. */
int folder_open_regular(const struct folder_target *t, struct stat *st, const char *norm,
                        struct cmd_result *res);

/* The absolute path of a resolved target as the kernel sees it (through
 * /proc/self/fd), into out. Returns 0 or -1. */
int folder_target_path(const struct folder_target *t, char *out, size_t len);

/* The private files and folders of f that exist now, by device and inode
 * (they may appear, a bridge linked later, or be replaced while the helper
 * runs, so they are looked up per request). */
#define FOLDER_PRIVATE_MAX 32
struct folder_private_set {
    size_t n;
    struct {
        dev_t dev;
        ino_t ino;
    } id[FOLDER_PRIVATE_MAX];
};
void folder_private_load(const struct workspace_folder *f, struct folder_private_set *set);
/* 1 when st is one of them. */
int folder_private_has(const struct folder_private_set *set, const struct stat *st);

/* Sets res from a resolution error for `path`; returns CMD_ERROR. */
enum cmd_status folder_fail(struct cmd_result *res, enum folder_err e, const char *path);
/* Sets res from an errno met on a resolved target; returns CMD_ERROR. */
enum cmd_status folder_fail_errno(struct cmd_result *res, int err, const char *path);
/* Sets res to `code` with `"path": why`; returns CMD_ERROR. */
enum cmd_status folder_fail_path(struct cmd_result *res, const char *code, const char *path,
                                 const char *why);

/* Maps an absolute path (as the editor or a watcher reports it) to the
 * folder holding it, lexically: `.` and `..` components are resolved as
 * text, and a path that is not inside any folder afterwards gives -1.
 * On success returns the folder's index and writes the folder-relative
 * path ("." for the folder itself) into rel. */
int folder_relative(const struct workspace_folder *folders, size_t n_folders, const char *abs,
                    char *rel, size_t rel_len);

/* 1 when path is root or below it (a '/' boundary, not a name prefix). */
int folder_path_inside(const char *root, const char *path);

#endif
