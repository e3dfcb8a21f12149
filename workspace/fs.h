/*
 * fs: fs.list and fs.read, confined to a workspace folder.
 *
 * Paths in arguments are relative to the chosen folder with `/` separators.
 * Refused without touching anything outside the folder: absolute paths, any
 * `..` component, NUL bytes, symlinks (at any component) that resolve outside
 * the folder (FORBIDDEN); FIFOs, sockets and devices (FORBIDDEN: reading a
 * FIFO would block); missing entries (NOT_FOUND). Resolution walks the path
 * component by component with openat(O_NOFOLLOW | O_PATH) relative to the
 * folder's directory fd, so a symlink swapped in during the walk cannot lead
 * outside. Synchronous: run on a worker thread. The folder choice and the
 * confinement are workspace/folder.c's (the one implementation every
 * command uses); private files are left out of listings and refused.
 *
 * The rules in detail:
 * - Empty and `.` components are dropped ("a//./b/" is "a/b"; the `path` in a
 *   result is the path so normalized, "." for the folder itself). Only a
 *   component that is exactly `..` is refused ("..." is a name).
 * - Symlinks are followed at every component, the last included, as long as
 *   the resolution never leaves the folder: a relative target resolves from
 *   the link's directory and may use `..` down to, not above, the folder; an
 *   absolute target must begin with the folder's real path followed by `/`
 *   or end (compared as text: no other spelling is accepted). A link that
 *   leaves is FORBIDDEN whether or not its target exists; a dangling link
 *   inside is NOT_FOUND; more than 40 links in one resolution is FORBIDDEN.
 * - Errors: INVALID_ARGS (args not an object, path/folder/maxBytes of the
 *   wrong type or range, fs.read of "" or of a directory, fs.list of a
 *   non-directory), FORBIDDEN (absolute path, `..`, NUL byte, path of
 *   PATH_MAX bytes or more, a name longer than NAME_MAX, symlink escape or
 *   loop, not a regular file, permission denied), NOT_FOUND (no such folder,
 *   no workspace folder, no such entry), PROCESSING_ERROR (anything else).
 *   A message names at most the client's own relative path (200 bytes,
 *   UTF-8 repaired), never an absolute path or a symlink's target.
 * - A JSON null argument counts as absent.
 */
#ifndef COMPANION_FS_H
#define COMPANION_FS_H

#include <json-c/json.h>

#include "workspace/result.h"
#include "workspace/workspace.h"

#define FS_READ_DEFAULT_BYTES (256 * 1024)
#define FS_READ_MAX_BYTES     (8 * 1024 * 1024)
#define FS_LIST_MAX_ENTRIES   5000
/* The default limits.maxQueuedBytes, and what a reply needs besides the
 * content (envelope, id, timestamp, other members). */
#define FS_READ_REPLY_DEFAULT  (8 * 1024 * 1024)
#define FS_READ_REPLY_OVERHEAD 2048

/* args: {path (default "."), folder}
 * -> {path, entries:[{name, type:"file"|"dir"|"symlink"|"other", size}], truncated}
 * entries sorted by name (strcmp of the raw bytes); names that are not UTF-8
 * are repaired. Entries are never followed: a symlink is "symlink" with the
 * size of its target text; size is 0 for "dir" and "other". Beyond
 * FS_LIST_MAX_ENTRIES the first entries in that order are kept and
 * `truncated` is set. */
enum cmd_status fs_list(const struct workspace_folder *folders, size_t n_folders, json_object *args,
                        struct cmd_result *res);

/* args: {path*, maxBytes (1..FS_READ_MAX_BYTES, default FS_READ_DEFAULT_BYTES), folder}
 * -> {path, size, encoding:"utf8"|"base64", content, truncated, sha256}
 * sha256: lowercase hex of the whole file's content (not only what is
 * returned), null for a file larger than FS_HASH_MAX_BYTES.
 * utf8 when the bytes read are valid UTF-8 (a sequence cut by the cap is
 * dropped from the end) and contain no NUL; base64 otherwise (of the raw
 * bytes, at most maxBytes). `size` is the file's size; `truncated` is set
 * when fewer bytes are returned than the file holds. Regular files only. */
enum cmd_status fs_read(const struct workspace_folder *folders, size_t n_folders, json_object *args,
                        struct cmd_result *res);
/* fs.read whose whole reply, once JSON-encoded, fits in reply_max bytes:
 * content that would not fit (base64 grows by a third, escapes up to six
 * times) is cut on a character boundary and `truncated` set, so an answer
 * is always deliverable within limits.maxQueuedBytes. fs_read uses
 * FS_READ_REPLY_DEFAULT (the default queue limit). */
enum cmd_status fs_read_within(const struct workspace_folder *folders, size_t n_folders,
                               json_object *args, size_t reply_max, struct cmd_result *res);

#endif
