/*
 * command: the dispatch table and the commands that need no other module.
 */
#include "workspace/command.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "workspace/fs.h"
#include "workspace/git_ctx.h"
#include "workspace/worker.h"

static enum cmd_status cmd_workspace_info(const struct cmd_ctx *ctx, json_object *args,
                                          struct cmd_result *res)
{
    if (args && !json_object_is_type(args, json_type_object))
        return cmd_fail(res, "INVALID_ARGS", "args: expected an object");
    res->result = workspace_info_json(ctx->ws, ctx->version);
    return CMD_OK;
}

static enum cmd_status run_git(struct worker_thread *t, const char *name,
                               const struct cmd_job_env *env, json_object *args,
                               struct cmd_result *res)
{
    const struct git_ctx_api *api = NULL;
    char err[160];
    struct git_ctx *g = worker_git(t, &api, err, sizeof(err));
    if (!g)
        return cmd_fail(res, "PROCESSING_ERROR", "%s", err);
    return api->run(g, name, env->folders, env->n_folders, args, res);
}

static enum cmd_status run_fs(struct worker_thread *t, const char *name,
                              const struct cmd_job_env *env, json_object *args,
                              struct cmd_result *res)
{
    return strcmp(name, "fs.list") == 0
               ? fs_list(env->folders, env->n_folders, args, res)
               : fs_read_within(env->folders, env->n_folders, args, env->reply_max, res);
}

static const struct cmd_def commands[] = {
    {"workspace.info", CMD_SCOPE_READ, CMD_KIND_SYNC, cmd_workspace_info, NULL, 0},
    {"git.status", CMD_SCOPE_READ, CMD_KIND_WORKER, NULL, run_git, 1},
    {"git.log", CMD_SCOPE_READ, CMD_KIND_WORKER, NULL, run_git, 0},
    {"git.diff", CMD_SCOPE_READ, CMD_KIND_WORKER, NULL, run_git, 0},
    {"git.branches", CMD_SCOPE_READ, CMD_KIND_WORKER, NULL, run_git, 0},
    {"fs.list", CMD_SCOPE_READ, CMD_KIND_WORKER, NULL, run_fs, 0},
    {"fs.read", CMD_SCOPE_READ, CMD_KIND_WORKER, NULL, run_fs, 0},
    {"task.list", CMD_SCOPE_READ, CMD_KIND_TASK, NULL, NULL, 0},
    {"task.run", CMD_SCOPE_RUN, CMD_KIND_TASK, NULL, NULL, 0},
    {"task.cancel", CMD_SCOPE_RUN, CMD_KIND_TASK, NULL, NULL, 0},
    {"editor.open", CMD_SCOPE_EDITOR, CMD_KIND_EDITOR, NULL, NULL, 0},
    {"editor.message", CMD_SCOPE_EDITOR, CMD_KIND_EDITOR, NULL, NULL, 0},
    {"editor.diagnostics", CMD_SCOPE_READ, CMD_KIND_EDITOR, NULL, NULL, 0},
    {"editor.command", CMD_SCOPE_EDITOR, CMD_KIND_EDITOR, NULL, NULL, 0},
};

const struct cmd_def *cmd_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

json_object *cmd_names_json(void)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        json_object_array_add(arr, json_object_new_string(commands[i].name));
    return arr;
}

json_object *cmd_arg(json_object *args, const char *key)
{
    json_object *v = NULL;
    if (!args || !json_object_is_type(args, json_type_object) ||
        !json_object_object_get_ex(args, key, &v) || json_object_is_type(v, json_type_null))
        return NULL;
    return v;
}

enum cmd_status cmd_fail(struct cmd_result *res, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
    res->code = code;
    return CMD_ERROR;
}
