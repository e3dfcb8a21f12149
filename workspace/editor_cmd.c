/*
 * editor_cmd: editor.* argument checks and answers (see editor_cmd.h).
 */
#include "workspace/editor_cmd.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "workspace/folder.h"
#include "workspace/utf8.h"

#define EDITOR_MESSAGE_MAX 4000
#define EDITOR_LINE_MAX    10000000
#define EDITOR_DIAG_MAX    1000

/* A string argument without NUL bytes, or NULL. */
static const char *nul_free(json_object *v)
{
    if (!json_object_is_type(v, json_type_string))
        return NULL;
    const char *s = json_object_get_string(v);
    return (size_t)json_object_get_string_len(v) == strlen(s) ? s : NULL;
}

char *editor_cmd_file_uri(const char *path)
{
    size_t n = strlen(path);
    char *u = malloc(7 + n * 3 + 1);
    if (!u)
        return NULL;
    char *o = u + sprintf(u, "file://");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)path[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("/-._~", ch))
            *o++ = (char)ch;
        else
            o += sprintf(o, "%%%02X", ch);
    }
    *o = '\0';
    return u;
}

/* The confined file named by args.path, as the absolute path the kernel
 * resolved (so the editor opens exactly what was checked). Regular files
 * only; everything else is refused exactly as fs.read refuses it. */
static enum cmd_status confined_file(const struct workspace *ws, json_object *args, char *abs,
                                     size_t len, struct cmd_result *res)
{
    struct folder_target t;
    char *norm = NULL;
    if (folder_open(ws->folders, ws->n_folders, args, NULL, &t, &norm, NULL, res) != CMD_OK)
        return CMD_ERROR;
    enum cmd_status st = CMD_ERROR;
    if (S_ISDIR(t.st.st_mode))
        folder_fail_path(res, "INVALID_ARGS", norm, "is a directory");
    else if (!S_ISREG(t.st.st_mode))
        folder_fail_path(res, "FORBIDDEN", norm, "not a regular file");
    else if (folder_target_path(&t, abs, len) < 0)
        folder_fail_path(res, "PROCESSING_ERROR", norm, "cannot be opened");
    else
        st = CMD_OK;
    folder_target_close(&t);
    free(norm);
    return st;
}

static enum cmd_status open_params(const struct workspace *ws, json_object *args,
                                   json_object **params, struct cmd_result *res)
{
    char abs[PATH_MAX];
    json_object *line = cmd_arg(args, "line");
    if (line && (!json_object_is_type(line, json_type_int) || json_object_get_int64(line) < 1 ||
                 json_object_get_int64(line) > EDITOR_LINE_MAX))
        return cmd_fail(res, "INVALID_ARGS", "args.line: expected a line number from 1");
    if (confined_file(ws, args, abs, sizeof(abs), res) != CMD_OK)
        return CMD_ERROR;
    char *uri = editor_cmd_file_uri(abs);
    if (!uri)
        return cmd_fail(res, "PROCESSING_ERROR", "out of memory");
    json_object *p = json_object_new_object();
    json_object_object_add(p, "uri", json_object_new_string(uri));
    json_object_object_add(p, "path", json_object_new_string(abs));
    if (line)
        json_object_object_add(p, "line", json_object_new_int64(json_object_get_int64(line)));
    free(uri);
    *params = p;
    return CMD_OK;
}

static enum cmd_status message_params(json_object *args, json_object **params,
                                      struct cmd_result *res)
{
    json_object *v = cmd_arg(args, "text"), *sev = cmd_arg(args, "severity");
    const char *text = v ? nul_free(v) : NULL;
    if (!text || !*text || strlen(text) > EDITOR_MESSAGE_MAX)
        return cmd_fail(res, "INVALID_ARGS", "args.text: expected 1 to %d bytes of UTF-8 text",
                        EDITOR_MESSAGE_MAX);
    const char *severity = sev ? nul_free(sev) : "info";
    if (!severity ||
        (strcmp(severity, "info") && strcmp(severity, "warning") && strcmp(severity, "error")))
        return cmd_fail(res, "INVALID_ARGS", "args.severity: expected info, warning or error");
    json_object *p = json_object_new_object();
    json_object_object_add(p, "text", json_object_new_string(text));
    json_object_object_add(p, "severity", json_object_new_string(severity));
    *params = p;
    return CMD_OK;
}

static enum cmd_status diagnostics_params(const struct workspace *ws, json_object *args,
                                          json_object **params, struct cmd_result *res)
{
    char abs[PATH_MAX];
    if (args && !json_object_is_type(args, json_type_object))
        return cmd_fail(res, "INVALID_ARGS", "args: expected an object");
    if (cmd_arg(args, "path") && confined_file(ws, args, abs, sizeof(abs), res) != CMD_OK)
        return CMD_ERROR;
    json_object *p = json_object_new_object();
    if (cmd_arg(args, "path"))
        json_object_object_add(p, "path", json_object_new_string(abs));
    *params = p;
    return CMD_OK;
}

static enum cmd_status command_params(const struct editor_cmd_allow *allow, json_object *args,
                                      json_object **params, struct cmd_result *res)
{
    json_object *v = cmd_arg(args, "command"), *cargs = cmd_arg(args, "args");
    if (!v || !json_object_is_type(v, json_type_string))
        return cmd_fail(res, "INVALID_ARGS", "args.command: expected a VS Code command id");
    const char *id = nul_free(v);
    int listed = 0;
    for (size_t i = 0; id && allow && i < allow->n && !listed; i++)
        listed = strcmp(allow->ids[i], id) == 0;
    if (!listed)
        return cmd_fail(res, "FORBIDDEN", "that command is not in companion.editorCommands");
    if (cargs && !json_object_is_type(cargs, json_type_array))
        return cmd_fail(res, "INVALID_ARGS", "args.args: expected an array");
    json_object *p = json_object_new_object();
    json_object_object_add(p, "command", json_object_new_string(id));
    json_object_object_add(p, "args", cargs ? json_object_get(cargs) : json_object_new_array());
    *params = p;
    return CMD_OK;
}

enum cmd_status editor_cmd_params(const struct workspace *ws, const struct editor_cmd_allow *allow,
                                  const char *name, json_object *args, const char **method,
                                  json_object **params, struct cmd_result *res)
{
    *params = NULL;
    if (args && !json_object_is_type(args, json_type_object))
        return cmd_fail(res, "INVALID_ARGS", "args: expected an object");
    if (strcmp(name, "editor.open") == 0) {
        *method = "editor/open";
        return open_params(ws, args, params, res);
    }
    if (strcmp(name, "editor.message") == 0) {
        *method = "editor/showMessage";
        return message_params(args, params, res);
    }
    if (strcmp(name, "editor.diagnostics") == 0) {
        *method = "editor/diagnostics";
        return diagnostics_params(ws, args, params, res);
    }
    if (strcmp(name, "editor.command") == 0) {
        *method = "editor/executeCommand";
        return command_params(allow, args, params, res);
    }
    return cmd_fail(res, "UNKNOWN_COMMAND", "unknown command");
}

static json_object *diagnostics_result(const struct workspace *ws, json_object *result)
{
    json_object *in = NULL, *out = json_object_new_array();
    if (json_object_is_type(result, json_type_object))
        json_object_object_get_ex(result, "diagnostics", &in);
    size_t n = json_object_is_type(in, json_type_array) ? json_object_array_length(in) : 0;
    for (size_t i = 0; i < n && json_object_array_length(out) < EDITOR_DIAG_MAX; i++) {
        json_object *d = json_object_array_get_idx(in, i), *p = NULL, *v;
        if (!json_object_is_type(d, json_type_object) ||
            !json_object_object_get_ex(d, "path", &p) || !nul_free(p))
            continue;
        const char *abs = json_object_get_string(p);
        char *decoded = strncmp(abs, "file://", 7) == 0 ? workspace_path_from_uri(abs) : NULL;
        char rel[PATH_MAX];
        int k =
            folder_relative(ws->folders, ws->n_folders, decoded ? decoded : abs, rel, sizeof(rel));
        free(decoded);
        if (k < 0 || strcmp(rel, ".") == 0)
            continue;
        json_object *e = json_object_new_object();
        json_object_object_add(e, "path", utf8_json_string(rel));
        json_object_object_add(e, "folder", utf8_json_string(ws->folders[k].name));
        static const char *const keys[] = {"line", "severity", "message", "source"};
        for (size_t j = 0; j < 4; j++)
            if (json_object_object_get_ex(d, keys[j], &v))
                json_object_object_add(e, keys[j], json_object_get(v));
        json_object_array_add(out, e);
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "diagnostics", out);
    return r;
}

json_object *editor_cmd_result(const struct workspace *ws, const char *name, json_object *result)
{
    json_object *r;
    if (strcmp(name, "editor.diagnostics") == 0)
        return diagnostics_result(ws, result);
    r = json_object_new_object();
    if (strcmp(name, "editor.command") == 0)
        json_object_object_add(r, "result", json_object_get(result));
    else
        json_object_object_add(r, strcmp(name, "editor.open") == 0 ? "opened" : "shown",
                               json_object_new_boolean(1));
    return r;
}
