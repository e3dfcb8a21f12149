/*
 * settings_commands: the commands a workspace may run, as the settings name
 * them: `tasks` (run by task.run) and `agents` with `defaultAgent` (the
 * coding agents agent.prompt talks to). Neither can come from a client.
 * Everything parsed here is owned by the struct settings it is parsed into
 * and freed by settings_free().
 */
#include "core/settings.h"
#include "core/settings_impl.h"

#include <stdlib.h>
#include <string.h>

#define TASKS_MAX  256
#define AGENTS_MAX 32

#define T struct settings_task
/* Keys of one task object; `env` has its own parser (names are keys). */
static const struct field task_fields[] = {
    STR_AT(T, NULL, "command", FIELD_STRING, command, 1, NO_LIMIT),
    STRV_AT(T, NULL, "args", args),
    STR_AT(T, NULL, "cwd", FIELD_CWD, cwd, 0, CWD_MAX),
    INT_AT(T, NULL, "timeoutSeconds", timeout_s, 1, 86400),
    BOOL_AT(T, NULL, "confirm", confirm),
};
#undef T

#define A struct settings_agent
static const char *const agent_type_names[] = {
    [AGENT_TYPE_ACP] = "acp", [AGENT_TYPE_VSCODE_LM] = "vscode-lm"};
_Static_assert(ARRAY_LEN(agent_type_names) == AGENT_TYPE_VSCODE_LM + 1, "one name per type");
/* Keys of one agent object; `env` as for tasks. */
static const struct field agent_fields[] = {
    ENUM_AT(A, NULL, "type", type, agent_type_names),
    STR_AT(A, NULL, "command", FIELD_STRING, command, 1, NO_LIMIT),
    STRV_AT(A, NULL, "args", args),
    STR_AT(A, NULL, "vendor", FIELD_STRING, vendor, 0, 256),
    STR_AT(A, NULL, "family", FIELD_STRING, family, 0, 256),
};
#undef A

static int is_task_name(const char *name)
{
    size_t len = strlen(name);
    return len >= 1 && len <= TASK_NAME_MAX &&
           strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") ==
               len;
}

static int is_env_name(const char *name)
{
    static const char first[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";
    size_t len = strlen(name);
    return len >= 1 && strchr(first, name[0]) &&
           strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789") == len;
}

static void env_free(struct settings_env *env, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(env[i].name);
        free(env[i].value);
    }
    free(env);
}

void settings_task_free(struct settings_task *t)
{
    free(t->name);
    free(t->command);
    settings_strv_free(&t->args);
    free(t->cwd);
    env_free(t->env, t->env_n);
    *t = (struct settings_task){0};
}

static int parse_env(struct settings_env **out, size_t *out_n, json_object *env, const char *prefix,
                     char *err, size_t errlen)
{
    char path[KEY_PATH_LEN];
    settings_key_path(path, sizeof path, prefix, "env", NULL);
    if (!json_object_is_type(env, json_type_object))
        return settings_fail(err, errlen, "%s: expected an object of strings", path);
    size_t n = (size_t)json_object_object_length(env);
    if (n > ARRAY_MAX)
        return settings_fail(err, errlen, "%s: expected at most %d variables", path, ARRAY_MAX);
    if (n == 0)
        return 0;
    if (!(*out = calloc(n, sizeof **out)))
        return settings_oom(err, errlen);
    struct json_object_iterator it = json_object_iter_begin(env);
    struct json_object_iterator end = json_object_iter_end(env);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *name = json_object_iter_peek_name(&it);
        json_object *v = json_object_iter_peek_value(&it);
        char vpath[KEY_PATH_LEN], shown[TASK_NAME_MAX + 8];
        const char *s = NULL;
        size_t len = 0;
        if (!v)
            continue;
        if (!is_env_name(name)) {
            settings_printable(shown, sizeof shown, name);
            return settings_fail(
                err, errlen, "%s: invalid variable name \"%s\": expected [A-Za-z_][A-Za-z0-9_]*",
                path, shown);
        }
        settings_key_path(vpath, sizeof vpath, path, name, NULL);
        if (settings_get_text(v, vpath, "a string", &s, &len, err, errlen) != 0)
            return -1;
        struct settings_env *e = &(*out)[(*out_n)++];
        if (!(e->name = strdup(name)) || !(e->value = settings_dup_text(s, len)))
            return settings_oom(err, errlen);
    }
    return 0;
}

static int parse_tasks(struct settings *s, json_object *root, char *err, size_t errlen)
{
    json_object *tasks = settings_member(root, "tasks");
    if (!tasks)
        return 0;
    if (!json_object_is_type(tasks, json_type_object))
        return settings_fail(err, errlen, "tasks: expected an object");
    size_t n = (size_t)json_object_object_length(tasks);
    if (n > TASKS_MAX)
        return settings_fail(err, errlen, "tasks: expected at most %d tasks", TASKS_MAX);
    if (n == 0)
        return 0;
    if (!(s->tasks = calloc(n, sizeof *s->tasks)))
        return settings_oom(err, errlen);
    /* json-c iterates an object in insertion order, which is the order the
     * user wrote and the order clients list the tasks in. */
    struct json_object_iterator it = json_object_iter_begin(tasks);
    struct json_object_iterator end = json_object_iter_end(tasks);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *name = json_object_iter_peek_name(&it);
        json_object *spec = json_object_iter_peek_value(&it);
        char prefix[KEY_PATH_LEN], shown[TASK_NAME_MAX + 8];
        if (!spec)
            continue;
        if (!is_task_name(name)) {
            settings_printable(shown, sizeof shown, name);
            return settings_fail(
                err, errlen,
                "tasks: invalid task name \"%s\": expected 1 to %d characters from "
                "A-Z a-z 0-9 . _ : -",
                shown, TASK_NAME_MAX);
        }
        settings_key_path(prefix, sizeof prefix, "tasks", name, NULL);
        if (!json_object_is_type(spec, json_type_object))
            return settings_fail(err, errlen, "%s: expected an object", prefix);
        struct settings_task *t = &s->tasks[s->tasks_n++];
        t->timeout_s = 600;
        if (!(t->name = strdup(name)) || !(t->cwd = strdup(".")))
            return settings_oom(err, errlen);
        if (settings_parse_fields(task_fields, ARRAY_LEN(task_fields), spec, t, prefix, err,
                                  errlen) != 0)
            return -1;
        json_object *env = settings_member(spec, "env");
        if (env && parse_env(&t->env, &t->env_n, env, prefix, err, errlen) != 0)
            return -1;
        if (!t->command)
            return settings_fail(err, errlen, "%s.command: expected a non-empty string", prefix);
    }
    return 0;
}

void settings_agent_free(struct settings_agent *a)
{
    free(a->name);
    free(a->command);
    settings_strv_free(&a->args);
    env_free(a->env, a->env_n);
    free(a->vendor);
    free(a->family);
    *a = (struct settings_agent){0};
}

const char *settings_agent_type_name(int type)
{
    return type >= 0 && (size_t)type < ARRAY_LEN(agent_type_names) ? agent_type_names[type] : "?";
}

static int parse_agents(struct settings *s, json_object *root, char *err, size_t errlen)
{
    json_object *agents = settings_member(root, "agents");
    if (agents) {
        if (!json_object_is_type(agents, json_type_object))
            return settings_fail(err, errlen, "agents: expected an object");
        size_t n = (size_t)json_object_object_length(agents);
        if (n > AGENTS_MAX)
            return settings_fail(err, errlen, "agents: expected at most %d agents", AGENTS_MAX);
        if (n && !(s->agents = calloc(n, sizeof *s->agents)))
            return settings_oom(err, errlen);
        struct json_object_iterator it = json_object_iter_begin(agents);
        struct json_object_iterator end = json_object_iter_end(agents);
        for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
            const char *name = json_object_iter_peek_name(&it);
            json_object *spec = json_object_iter_peek_value(&it);
            char prefix[KEY_PATH_LEN], shown[TASK_NAME_MAX + 8];
            if (!spec)
                continue;
            if (!is_task_name(name)) {
                settings_printable(shown, sizeof shown, name);
                return settings_fail(err, errlen,
                                     "agents: invalid agent name \"%s\": expected 1 to %d "
                                     "characters from A-Z a-z 0-9 . _ : -",
                                     shown, TASK_NAME_MAX);
            }
            settings_key_path(prefix, sizeof prefix, "agents", name, NULL);
            if (!json_object_is_type(spec, json_type_object))
                return settings_fail(err, errlen, "%s: expected an object", prefix);
            struct settings_agent *a = &s->agents[s->agents_n++];
            if (!(a->name = strdup(name)) || !(a->vendor = strdup("")) || !(a->family = strdup("")))
                return settings_oom(err, errlen);
            if (settings_parse_fields(agent_fields, ARRAY_LEN(agent_fields), spec, a, prefix, err,
                                      errlen) != 0)
                return -1;
            json_object *env = settings_member(spec, "env");
            if (env && parse_env(&a->env, &a->env_n, env, prefix, err, errlen) != 0)
                return -1;
            if (a->type == AGENT_TYPE_ACP && !a->command)
                return settings_fail(err, errlen, "%s.command: expected a non-empty string",
                                     prefix);
            if (a->type == AGENT_TYPE_VSCODE_LM && (a->command || a->args.n || a->env_n))
                return settings_fail(err, errlen,
                                     "%s: a vscode-lm agent is the editor's model: no command, "
                                     "args or env",
                                     prefix);
        }
    }
    json_object *def = settings_member(root, "defaultAgent");
    if (!def)
        return 0;
    const char *name = NULL;
    size_t len = 0;
    if (settings_get_text(def, "defaultAgent", "a string", &name, &len, err, errlen) != 0)
        return -1;
    if (len == 0)
        return 0;
    if (!settings_find_agent(s, name)) {
        char shown[TASK_NAME_MAX + 8];
        settings_printable(shown, sizeof shown, name);
        return settings_fail(err, errlen, "defaultAgent: \"%s\" is not one of agents", shown);
    }
    if (!(s->default_agent = settings_dup_text(name, len)))
        return settings_oom(err, errlen);
    return 0;
}

int settings_parse_commands(struct settings *s, json_object *root, char *err, size_t errlen)
{
    if (parse_tasks(s, root, err, errlen) != 0)
        return -1;
    return parse_agents(s, root, err, errlen);
}
