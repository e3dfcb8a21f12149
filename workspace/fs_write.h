/*
 * fs_write: fs.write and fs.delete, confined to a workspace folder exactly
 * like fs.read (workspace/folder.c's walk: no absolute path, no `..`, no
 * symlink out, private files refused), and more:
 *
 * - Refused (FORBIDDEN) whatever the path or link that leads there: anything
 *   whose path inside the folder has a component named `.git` or `.vscode`
 *   (any depth, any letter case; checked on the client's path and on the
 *   directory the walk reached, as the kernel names it), so no hook, git
 *   config, task or launch setting is ever written; the helper's own files
 *   (the folder's private list: an existing one by device and inode, one
 *   that does not exist yet by its directory and name); a final component
 *   that is a symbolic link (never written or deleted through); anything but
 *   a regular file.
 * - fs.write is atomic: the content goes to a new temporary file in the same
 *   directory (O_EXCL, mode 0600, named FS_WRITE_TEMP_PREFIX...), which gets
 *   the old file's permission bits (or 0644 & ~umask for a new file), is
 *   fsync'd and renamed over the name (renameat, or renameat2
 *   RENAME_NOREPLACE for a new file), then the directory is fsync'd. A
 *   reader sees the old content or the new, never a mix; on any failure the
 *   temporary file is removed. Directories are never created.
 * - expectedSha256: the write or delete happens only when the file's current
 *   content hashes to it (checked just before the rename or unlink: a
 *   process writing at the same instant can still slip in between);
 *   otherwise CONFLICT with `data.currentSha256` (null when the file is
 *   missing).
 *
 * Errors: INVALID_ARGS (args not an object, an unknown member, wrong types,
 * bad base64, a malformed hash, the folder itself, a directory),
 * CONTENT_TOO_LARGE (decoded content beyond the cap), CONFLICT, NOT_FOUND
 * (no such directory; no such file for fs.delete or for fs.write with
 * create:false), FORBIDDEN (see above, permission denied), PROCESSING_ERROR.
 * Messages name at most the client's relative path.
 *
 * Synchronous file-system work: run on a worker thread. Results and error
 * data are owned by the caller (cmd_result).
 */
#ifndef COMPANION_FS_WRITE_H
#define COMPANION_FS_WRITE_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "workspace/result.h"
#include "workspace/workspace.h"

/* Temporary files of fs.write start with this (watchers ignore them). */
#define FS_WRITE_TEMP_PREFIX ".companion-write-"
/* Files larger than this are not hashed (sha256 null in fs.read, CONFLICT
 * for an expectedSha256): reading gigabytes to compare is not worth it. */
#define FS_HASH_MAX_BYTES (64LL * 1024 * 1024)
#define FS_SHA256_HEX     65 /* 64 hex digits and a NUL */

/* args: {path*, content*, encoding: "utf8" (default) | "base64",
 *        expectedSha256, create (default true), folder}
 * -> {path, bytes, sha256, created}
 * max_bytes: limits.maxWriteBytes (decoded content). */
enum cmd_status fs_write(const struct workspace_folder *folders, size_t n_folders,
                         json_object *args, size_t max_bytes, struct cmd_result *res);

/* args: {path*, expectedSha256, folder} -> {path, deleted: true}
 * Regular files only: never a directory, never a symbolic link. */
enum cmd_status fs_delete(const struct workspace_folder *folders, size_t n_folders,
                          json_object *args, struct cmd_result *res);

/* SHA-256 of buf[0..len) followed by what fd holds from its current offset
 * to its end, as lowercase hex. Returns 0, 1 when the whole is larger than
 * FS_HASH_MAX_BYTES (out is ""), -1 on a read error. */
int fs_sha256_rest(const void *buf, size_t len, int fd, char out[FS_SHA256_HEX]);

/* 1 when a relative path (components split on '/') has a component that is
 * `.git` or `.vscode` in any letter case. */
int fs_write_path_protected(const char *rel);

#endif
