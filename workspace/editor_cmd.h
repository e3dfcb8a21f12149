/*
 * editor_cmd: the argument checks of the editor.* commands and the
 * editor/... request each one becomes. Pure apart from the path
 * confinement of editor.open and editor.diagnostics, which is folder.c's
 * (the same rule as fs.read). The helper forwards only what was checked:
 * every string it interprets is refused if it holds a NUL byte, and the
 * value sent is the one compared.
 *
 * Allocation: *params is a new object owned by the caller.
 */
#ifndef COMPANION_EDITOR_CMD_H
#define COMPANION_EDITOR_CMD_H

#include <json-c/json.h>

#include "workspace/result.h"
#include "workspace/workspace.h"

/* What editor.command may run: the user's `editorCommands` list. */
struct editor_cmd_allow {
    char *const *ids;
    size_t n;
};

/* Checks args of `name` (editor.open, editor.message, editor.diagnostics,
 * editor.command) and builds the request: *method and *params on CMD_OK. */
enum cmd_status editor_cmd_params(const struct workspace *ws, const struct editor_cmd_allow *allow,
                                  const char *name, json_object *args, const char **method,
                                  json_object **params, struct cmd_result *res);

/* The command's result from the editor's answer (borrowed): {opened: true},
 * {shown: true}, {result} for editor.command, and for editor.diagnostics
 * the diagnostics inside the workspace's folders only, with folder-relative,
 * normalised paths (`..` resolved; absolute paths would reveal the
 * machine's layout). New object. */
json_object *editor_cmd_result(const struct workspace *ws, const char *name, json_object *result);

/* file:// URI of an absolute path, percent-encoded. malloc'd or NULL. */
char *editor_cmd_file_uri(const char *path);

#endif
