/*
 * commands: the dispatch table and the commands that need no other module.
 */
#include "workspace/commands.h"

#include <stdio.h>
#include <string.h>

#include "workspace/fs.h"
#include "workspace/fs_write.h"
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
    if (strcmp(name, "fs.list") == 0)
        return fs_list(env->folders, env->n_folders, args, res);
    if (strcmp(name, "fs.write") == 0)
        return fs_write(env->folders, env->n_folders, args, env->write_max, res);
    if (strcmp(name, "fs.delete") == 0)
        return fs_delete(env->folders, env->n_folders, args, res);
    return fs_read_within(env->folders, env->n_folders, args, env->reply_max, res);
}

#define R CMD_SCOPE_READ
static const struct cmd_def commands[] = {
    {.name = "workspace.info", .scope = R, .kind = CMD_KIND_SYNC, .fn = cmd_workspace_info},
    {.name = "git.status",
     .scope = R,
     .kind = CMD_KIND_WORKER,
     .wfn = run_git,
     .coalesce = 1,
     .watched = 1},
    {.name = "git.log", .scope = R, .kind = CMD_KIND_WORKER, .wfn = run_git},
    {.name = "git.diff", .scope = R, .kind = CMD_KIND_WORKER, .wfn = run_git},
    {.name = "git.branches", .scope = R, .kind = CMD_KIND_WORKER, .wfn = run_git},
    {.name = "fs.list", .scope = R, .kind = CMD_KIND_WORKER, .wfn = run_fs},
    {.name = "fs.read", .scope = R, .kind = CMD_KIND_WORKER, .wfn = run_fs},
    {.name = "fs.write",
     .scope = CMD_SCOPE_WRITE,
     .kind = CMD_KIND_WORKER,
     .wfn = run_fs,
     .changes_files = 1},
    {.name = "fs.delete",
     .scope = CMD_SCOPE_WRITE,
     .kind = CMD_KIND_WORKER,
     .wfn = run_fs,
     .changes_files = 1},
    {.name = "task.list", .scope = R, .kind = CMD_KIND_TASK, .task_op = CMD_TASK_LIST},
    {.name = "task.run", .scope = CMD_SCOPE_RUN, .kind = CMD_KIND_TASK, .task_op = CMD_TASK_RUN},
    {.name = "task.cancel",
     .scope = CMD_SCOPE_RUN,
     .kind = CMD_KIND_TASK,
     .task_op = CMD_TASK_CANCEL},
    {.name = "editor.open", .scope = CMD_SCOPE_EDITOR, .kind = CMD_KIND_EDITOR},
    {.name = "editor.message", .scope = CMD_SCOPE_EDITOR, .kind = CMD_KIND_EDITOR},
    {.name = "editor.diagnostics", .scope = R, .kind = CMD_KIND_EDITOR},
    {.name = "editor.command", .scope = CMD_SCOPE_EDITOR, .kind = CMD_KIND_EDITOR},
    {.name = "approvals.list",
     .scope = CMD_SCOPE_APPROVE,
     .kind = CMD_KIND_APPROVAL,
     .approval_op = CMD_APPROVAL_LIST},
    {.name = "approve",
     .scope = CMD_SCOPE_APPROVE,
     .kind = CMD_KIND_APPROVAL,
     .approval_op = CMD_APPROVAL_DECIDE},
#define AGENT(n, op)                                                                               \
    {                                                                                              \
        .name = n, .scope = CMD_SCOPE_AGENT, .kind = CMD_KIND_AGENT, .agent_op = op                \
    }
    AGENT("agent.prompt", CMD_AGENT_PROMPT),
    AGENT("agent.cancel", CMD_AGENT_CANCEL),
    AGENT("agent.list", CMD_AGENT_LIST),
    AGENT("agent.conversations", CMD_AGENT_CONVERSATIONS),
    AGENT("agent.new", CMD_AGENT_NEW),
    AGENT("agent.follow", CMD_AGENT_FOLLOW),
    AGENT("agent.unfollow", CMD_AGENT_UNFOLLOW),
#undef AGENT
};
#undef R

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
