/*
 * command: the dispatch table and the commands that need no other module.
 * Each later command group (git, fs, tasks, editor) adds its rows here.
 */
#include "workspace/command.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static enum cmd_status cmd_workspace_info(const struct cmd_ctx *ctx, json_object *args,
                                          struct cmd_result *res)
{
    if (args && !json_object_is_type(args, json_type_object))
        return cmd_fail(res, "INVALID_ARGS", "args: expected an object");
    res->result = workspace_info_json(ctx->ws, ctx->version);
    return CMD_OK;
}

static const struct cmd_def commands[] = {
    {"workspace.info", CMD_SCOPE_READ, cmd_workspace_info},
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

enum cmd_status cmd_fail(struct cmd_result *res, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
    res->code = code;
    return CMD_ERROR;
}
