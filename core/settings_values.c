/*
 * settings_values: what is done with whole settings once parsed: the
 * defaults, freeing (the secret wiped), deep copies, the checks a server
 * start makes, and lookups (see settings.h).
 */
#include "core/settings.h"
#include "core/settings_impl.h"

#include "core/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* settings_init cannot report failure, so the allocating part lives here for
 * settings_parse, which can. */
int settings_defaults(struct settings *s)
{
    static const char save_all[] = "workbench.action.files.saveAll";
    *s = (struct settings){
        .auto_start = 1,
        .port = 3001,
        .alg = AUTH_ALG_HS256,
        .auth_timeout_s = 10,
        .leeway_s = 30,
        .heartbeat_interval_s = 25,
        .heartbeat_timeout_s = 60,
        .history_size = 256,
        .approval_timeout_s = 300,
        .max_connections = 64,
        .max_unauthenticated = 32,
        .max_message_bytes = 1048576,
        .commands_per_second = 20,
        .max_output_bytes = 1048576,
        .max_concurrent_tasks = 4,
        .max_conversations = 32,
        .max_agent_turns = 4,
        .agent_turn_timeout_s = 1800,
        .agent_start_timeout_s = 60,
        .agent_unwatched_s = 120,
        .max_queued_bytes = 8388608,
        .max_write_bytes = 1048576,
        .log_level = LOG_LEVEL_INFO,
    };
    if (settings_dup_str(&s->host, "127.0.0.1") != 0 || settings_dup_str(&s->audience, "") != 0 ||
        settings_dup_str(&s->issuer, "") != 0 ||
        settings_strv_push(&s->editor_commands, save_all, sizeof save_all - 1) != 0) {
        settings_free(s);
        return -1;
    }
    return 0;
}

/* Without a return value the only safe answer to running out of memory for a
 * few dozen bytes is to stop: a struct with a NULL host would crash later,
 * far from the cause. */
void settings_init(struct settings *s)
{
    if (settings_defaults(s) != 0) {
        fputs("companion-helper: out of memory initialising settings\n", stderr);
        abort();
    }
}

void settings_free(struct settings *s)
{
    if (!s)
        return;
    free(s->host);
    settings_strv_free(&s->allowed_origins);
    settings_strv_free(&s->allowed_hosts);
    settings_free_wiped(s->secret);
    free(s->public_key);
    free(s->public_key_path);
    free(s->audience);
    free(s->issuer);
    for (size_t i = 0; i < s->tasks_n; i++)
        settings_task_free(&s->tasks[i]);
    free(s->tasks);
    for (size_t i = 0; i < s->agents_n; i++)
        settings_agent_free(&s->agents[i]);
    free(s->agents);
    free(s->default_agent);
    settings_strv_free(&s->editor_commands);
    *s = (struct settings){0};
}

static int env_copy(struct settings_env **dst, size_t *dst_n, const struct settings_env *src,
                    size_t n)
{
    if (n && !(*dst = calloc(n, sizeof **dst)))
        return -1;
    for (size_t i = 0; i < n; i++) {
        (*dst_n)++; /* counted before filling, so a half-copied entry is freed too */
        if (settings_dup_str(&(*dst)[i].name, src[i].name) ||
            settings_dup_str(&(*dst)[i].value, src[i].value))
            return -1;
    }
    return 0;
}

static int task_copy(struct settings_task *dst, const struct settings_task *src)
{
    *dst = (struct settings_task){.timeout_s = src->timeout_s, .confirm = src->confirm};
    if (settings_dup_str(&dst->name, src->name) || settings_dup_str(&dst->command, src->command) ||
        settings_dup_str(&dst->cwd, src->cwd) || settings_strv_copy(&dst->args, &src->args))
        return -1;
    return env_copy(&dst->env, &dst->env_n, src->env, src->env_n);
}

static int agent_copy(struct settings_agent *dst, const struct settings_agent *src)
{
    *dst = (struct settings_agent){.type = src->type};
    if (settings_dup_str(&dst->name, src->name) || settings_dup_str(&dst->command, src->command) ||
        settings_dup_str(&dst->vendor, src->vendor) ||
        settings_dup_str(&dst->family, src->family) || settings_strv_copy(&dst->args, &src->args))
        return -1;
    return env_copy(&dst->env, &dst->env_n, src->env, src->env_n);
}

/* dst is written, not freed first: pass a struct that owns nothing. On
 * failure dst is left empty (all zero). */
int settings_copy(struct settings *dst, const struct settings *src)
{
    struct settings t = *src;
    /* Detach every pointer borrowed from src first, so a failure half-way
     * frees only what this copy allocated. */
    t.host = t.secret = t.public_key = t.public_key_path = t.audience = t.issuer = NULL;
    t.allowed_origins = t.allowed_hosts = t.editor_commands = (struct settings_strv){0};
    t.tasks = NULL;
    t.tasks_n = 0;
    t.agents = NULL;
    t.agents_n = 0;
    t.default_agent = NULL;

    int rc = settings_dup_str(&t.host, src->host) || settings_dup_str(&t.secret, src->secret) ||
             settings_dup_str(&t.public_key, src->public_key) ||
             settings_dup_str(&t.public_key_path, src->public_key_path) ||
             settings_dup_str(&t.audience, src->audience) ||
             settings_dup_str(&t.issuer, src->issuer) ||
             settings_strv_copy(&t.allowed_origins, &src->allowed_origins) ||
             settings_strv_copy(&t.allowed_hosts, &src->allowed_hosts) ||
             settings_strv_copy(&t.editor_commands, &src->editor_commands) ||
             settings_dup_str(&t.default_agent, src->default_agent);
    if (!rc && src->tasks_n && !(t.tasks = calloc(src->tasks_n, sizeof *t.tasks)))
        rc = 1;
    for (size_t i = 0; !rc && i < src->tasks_n; i++) {
        t.tasks_n++; /* counted before filling, so a half-copied task is freed too */
        rc = task_copy(&t.tasks[i], &src->tasks[i]);
    }
    if (!rc && src->agents_n && !(t.agents = calloc(src->agents_n, sizeof *t.agents)))
        rc = 1;
    for (size_t i = 0; !rc && i < src->agents_n; i++) {
        t.agents_n++;
        rc = agent_copy(&t.agents[i], &src->agents[i]);
    }
    if (rc) {
        settings_free(&t);
        *dst = (struct settings){0};
        return -1;
    }
    *dst = t;
    return 0;
}

/* `out` is written, not freed first: parse into a struct that owns nothing
 * and swap it in on success; the caller's current settings are never touched.
 * obj NULL (JSON null) means "no settings": every default. */
int settings_check_server(const struct settings *s, char *err, size_t errlen)
{
    if (s->alg == AUTH_ALG_HS256) {
        if (!s->secret || !s->secret[0])
            return settings_fail(err, errlen, "auth.secret is not set");
        return 0;
    }
    if (s->alg < 0 || (size_t)s->alg >= ARRAY_LEN(settings_alg_names))
        return settings_fail(err, errlen, "auth.algorithm: unsupported algorithm");
    if (!s->public_key || !s->public_key[0])
        return settings_fail(err, errlen, "auth.publicKey or auth.publicKeyPath is required for %s",
                             settings_alg_names[s->alg]);
    return 0;
}

const struct settings_task *settings_find_task(const struct settings *s, const char *name)
{
    if (!s || !name)
        return NULL;
    for (size_t i = 0; i < s->tasks_n; i++)
        if (strcmp(s->tasks[i].name, name) == 0)
            return &s->tasks[i];
    return NULL;
}

const struct settings_agent *settings_find_agent(const struct settings *s, const char *name)
{
    if (!s || !name)
        return NULL;
    for (size_t i = 0; i < s->agents_n; i++)
        if (strcmp(s->agents[i].name, name) == 0)
            return &s->agents[i];
    return NULL;
}

const struct settings_agent *settings_default_agent(const struct settings *s)
{
    if (!s || !s->agents_n)
        return NULL;
    const struct settings_agent *a = settings_find_agent(s, s->default_agent);
    return a ? a : &s->agents[0];
}

int settings_strv_contains(const struct settings_strv *v, const char *str)
{
    if (!v || !str)
        return 0;
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->v[i], str) == 0)
            return 1;
    return 0;
}

const char *settings_log_level_name(int level)
{
    if (level < 0 || (size_t)level >= ARRAY_LEN(settings_log_level_names))
        return "unknown";
    return settings_log_level_names[level];
}
