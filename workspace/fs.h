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
 * outside. Synchronous: run on a worker thread.
 */
#ifndef COMPANION_FS_H
#define COMPANION_FS_H

#include <json-c/json.h>

#include "workspace/command.h"
#include "workspace/workspace.h"

#define FS_READ_DEFAULT_BYTES (256 * 1024)
#define FS_READ_MAX_BYTES (8 * 1024 * 1024)
#define FS_LIST_MAX_ENTRIES 5000

/* args: {path (default "."), folder}
 * -> {path, entries:[{name, type:"file"|"dir"|"symlink"|"other", size}], truncated}
 * entries sorted by name; names that are not UTF-8 are repaired. */
enum cmd_status fs_list(const struct workspace_folder *folders, size_t n_folders,
                        json_object *args, struct cmd_result *res);

/* args: {path*, maxBytes (1..FS_READ_MAX_BYTES, default FS_READ_DEFAULT_BYTES), folder}
 * -> {path, size, encoding:"utf8"|"base64", content, truncated}
 * utf8 when the bytes read are valid UTF-8 (a sequence cut by the cap is
 * dropped from the end) and contain no NUL; base64 otherwise. */
enum cmd_status fs_read(const struct workspace_folder *folders, size_t n_folders,
                        json_object *args, struct cmd_result *res);

/* Picks a folder by `args.folder` name, default the first. NULL with res set
 * (NOT_FOUND / INVALID_ARGS) when there is none. */
const struct workspace_folder *fs_pick_folder(const struct workspace_folder *folders,
                                              size_t n_folders, json_object *args,
                                              struct cmd_result *res);

#endif
