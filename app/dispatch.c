/*
 * dispatch: calls, worker jobs and editor requests (see dispatch.h).
 */
#include "app/dispatch.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/dispatch_impl.h"
#include "app/approvals.h"
#include "app/client.h"
#include "app/counters.h"
#include "app/events.h"
#include "app/editor_port.h"
#include "app/gitwatch.h"
#include "core/clock.h"
#include "core/settings.h"
#include "server/server.h"
#include "workspace/chat.h"
#include "workspace/commands.h"
#include "workspace/editor_cmd.h"
#include "workspace/task.h"
#include "workspace/utf8.h"
#include "workspace/worker.h"

#define WORKER_THREADS    2
#define WORKER_QUEUE_MAX  256
#define EDITOR_TIMEOUT_MS 10000

struct cmd_job {
    struct worker_job base;
    struct dispatch *d;
    const struct cmd_def *def;
    json_object *args;
    struct workspace_folder *folders;
    size_t n_folders;
    size_t reply_max; /* see struct cmd_job_env */
    size_t write_max;
    char *key;
    struct call *waiters;
    enum cmd_status st;
    struct cmd_result res;
    struct cmd_job *next_inflight;
};

/* ---- call bookkeeping ---- */

struct call *call_new(struct dispatch *d, struct client *c, const struct cmd_def *def,
                      json_object *id)
{
    struct call *call = calloc(1, sizeof(*call));
    if (!call)
        return NULL;
    call->d = d;
    call->c = c;
    call->def = def;
    call->id = id ? json_object_get(id) : NULL;
    call->started_ms = clock_mono_ms();
    call->user = strdup(c->user_id ? c->user_id : "");
    if (c->chat_word)
        snprintf(call->chat_word, sizeof(call->chat_word), "%s", c->chat_word);
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    return call;
}

static void call_detach(struct call *call)
{
    if (!call->c)
        return;
    if (call->prev)
        call->prev->next = call->next;
    else
        call->c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
    call->c = NULL;
}

void call_free(struct call *call)
{
    call_detach(call);
    json_object_put(call->id);
    free(call->task_name);
    free(call->tail);
    free(call->user);
    free(call);
}

void call_complete(struct call *call, json_object *result, const char *code, const char *message)
{
    if (call->c)
        dispatch_reply_outcome(&call->d->reply, call->c, call->id, call->chat_word, call->def->name,
                               result, code, message, call->started_ms);
    else
        json_object_put(result);
    call_free(call);
}

void call_answer_now(struct dispatch *d, struct client *c, const struct cmd_def *def,
                     json_object *id, json_object *result, const char *code, const char *message)
{
    struct call *call = call_new(d, c, def, id);
    if (!call) {
        json_object_put(result);
        dispatch_reply_command(c, id, NULL, "PROCESSING_ERROR", "out of memory");
        return;
    }
    call_complete(call, result, code, message);
}

/* ---- worker jobs ---- */

static void job_run(struct worker_thread *t, struct worker_job *base)
{
    struct cmd_job *j = (struct cmd_job *)base;
    struct cmd_job_env env = {j->folders, j->n_folders, j->reply_max, j->write_max};
    j->st = j->def->wfn(t, j->def->name, &env, j->args, &j->res);
}

static void job_free(struct cmd_job *j)
{
    workspace_folders_free(j->folders, j->n_folders);
    json_object_put(j->args);
    free(j->key);
    free(j);
}

static void job_done(struct worker_job *base, int cancelled)
{
    struct cmd_job *j = (struct cmd_job *)base;
    struct dispatch *d = j->d;
    for (struct cmd_job **pp = &d->inflight; *pp; pp = &(*pp)->next_inflight)
        if (*pp == j) {
            *pp = j->next_inflight;
            break;
        }
    if (!cancelled && j->st == CMD_OK && j->def->changes_files && d->env.file_changed)
        d->env.file_changed(d->env.file_changed_ud, j->args, j->res.result);
    struct call *c = j->waiters;
    while (c) {
        struct call *next = c->next_waiter;
        if (cancelled)
            call_complete(c, NULL, "PROCESSING_ERROR", "the helper is stopping");
        else if (j->st == CMD_OK)
            call_complete(c, json_object_get(j->res.result), NULL, NULL);
        else
            call_complete(c, json_object_get(j->res.data),
                          j->res.code ? j->res.code : "PROCESSING_ERROR", j->res.message);
        c = next;
    }
    json_object_put(j->res.result);
    json_object_put(j->res.data);
    job_free(j);
}

static char *job_key(const struct cmd_def *def, json_object *args)
{
    const char *a = args ? json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN) : "{}";
    size_t len = strlen(def->name) + strlen(a) + 2;
    char *k = malloc(len);
    if (k)
        snprintf(k, len, "%s %s", def->name, a);
    return k;
}

/* The largest reply a client can be sent: its whole outbound queue, less
 * what the envelope adds. */
static size_t reply_max(const struct dispatch *d)
{
    size_t q = (size_t)d->env.st->max_queued_bytes;
    return q > 1024 ? q - 1024 : q;
}

static void watched_done(void *ud, enum cmd_status st, struct cmd_result *res)
{
    struct call *call = ud;
    if (st == CMD_OK)
        call_complete(call, json_object_get(res->result), NULL, NULL);
    else
        call_complete(call, NULL, res->code ? res->code : "PROCESSING_ERROR", res->message);
}

/* A watched folder's answer from the git watcher. 0 when it is not one the
 * watcher can take. */
static int dispatch_watched(struct dispatch *d, struct client *c, const struct cmd_def *def,
                            json_object *id, json_object *args)
{
    int i = d->gitwatch ? gitwatch_folder_for(d->gitwatch, args) : -1;
    if (i < 0)
        return 0;
    struct call *call = call_new(d, c, def, id);
    if (!call)
        return 0;
    if (gitwatch_status(d->gitwatch, (size_t)i, watched_done, call) < 0)
        call_complete(call, NULL, "BUSY", "too many commands in progress; try again shortly");
    return 1;
}

static void dispatch_worker(struct dispatch *d, struct client *c, const struct cmd_def *def,
                            json_object *id, json_object *args)
{
    if (def->watched && dispatch_watched(d, c, def, id, args))
        return;
    char *key = def->coalesce ? job_key(def, args) : NULL;
    if (key) {
        for (struct cmd_job *j = d->inflight; j; j = j->next_inflight) {
            if (j->key && strcmp(j->key, key) == 0) {
                struct call *call = call_new(d, c, def, id);
                if (call) {
                    call->next_waiter = j->waiters;
                    j->waiters = call;
                }
                free(key);
                return;
            }
        }
    }
    struct cmd_job *j = calloc(1, sizeof(*j));
    struct call *call = j ? call_new(d, c, def, id) : NULL;
    if (!j || !call) {
        free(j);
        free(key);
        dispatch_reply_command(c, id, NULL, "PROCESSING_ERROR", "out of memory");
        return;
    }
    j->base.run = job_run;
    j->base.done = job_done;
    j->d = d;
    j->def = def;
    j->key = key;
    j->reply_max = reply_max(d);
    j->write_max = (size_t)d->env.st->max_write_bytes;
    /* The worker gets its own copies: json-c and our folder list are not
     * shared across threads. */
    j->args = NULL;
    if (args && json_object_deep_copy(args, &j->args, NULL) != 0)
        j->args = NULL;
    j->folders = workspace_folders_copy(d->env.ws, &j->n_folders);
    j->waiters = call;
    if ((args && !j->args) || !j->folders || worker_pool_submit(d->pool, &j->base) < 0) {
        j->waiters = NULL;
        job_free(j);
        call_complete(call, NULL, "BUSY", "too many commands in progress; try again shortly");
        return;
    }
    if (key) {
        j->next_inflight = d->inflight;
        d->inflight = j;
    }
}

/* ---- editor actions ---- */

static void editor_answer(void *ud, enum editor_outcome outcome, json_object *result,
                          const char *message)
{
    struct call *call = ud;
    call->editor_req = 0;
    if (outcome == EDITOR_TIMED_OUT) {
        call_complete(call, NULL, "EDITOR_UNAVAILABLE", "the editor did not answer in time");
    } else if (outcome == EDITOR_FAILED) {
        char msg[256];
        snprintf(msg, sizeof(msg), "the editor could not do it: %.200s", message ? message : "");
        char *clean = utf8_repair(msg, strlen(msg));
        call_complete(call, NULL, "PROCESSING_ERROR", clean ? clean : "the editor failed");
        free(clean);
    } else {
        call_complete(call, editor_cmd_result(call->d->env.ws, call->def->name, result), NULL,
                      NULL);
    }
}

static void dispatch_editor(struct dispatch *d, struct client *c, const struct cmd_def *def,
                            json_object *id, json_object *args)
{
    const struct editor_port *ed = d->env.editor;
    const char *method = NULL;
    json_object *params = NULL;
    struct cmd_result res = {0};
    if (!ed->attached(ed->ud)) {
        call_answer_now(d, c, def, id, NULL, "EDITOR_UNAVAILABLE",
                        "no editor is attached to this helper");
        return;
    }
    const struct settings_strv *ids = &d->env.st->editor_commands;
    struct editor_cmd_allow allow = {ids->v, ids->n};
    if (editor_cmd_params(d->env.ws, &allow, def->name, args, &method, &params, &res) != CMD_OK) {
        call_answer_now(d, c, def, id, NULL, res.code ? res.code : "PROCESSING_ERROR", res.message);
        return;
    }
    struct call *call = call_new(d, c, def, id);
    if (!call) {
        json_object_put(params);
        dispatch_reply_command(c, id, NULL, "PROCESSING_ERROR", "out of memory");
        return;
    }
    call->editor_req = ed->request(ed->ud, method, params, EDITOR_TIMEOUT_MS, editor_answer, call);
    if (call->editor_req < 0) {
        call->editor_req = 0;
        call_complete(call, NULL, "EDITOR_UNAVAILABLE", "cannot reach the editor");
    }
}

/* ---- approvals ---- */

static int64_t approval_id_arg(json_object *v)
{
    if (json_object_is_type(v, json_type_int))
        return json_object_get_int64(v);
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        char *end;
        long long n = strtoll(s, &end, 10);
        if (*s >= '0' && *s <= '9' && !*end && (size_t)json_object_get_string_len(v) == strlen(s))
            return n;
    }
    return -1;
}

static void dispatch_approval(struct dispatch *d, struct client *c, const struct cmd_def *def,
                              json_object *id, json_object *args)
{
    if (args && !json_object_is_type(args, json_type_object)) {
        call_answer_now(d, c, def, id, NULL, "INVALID_ARGS", "args: expected an object");
        return;
    }
    if (def->approval_op == CMD_APPROVAL_LIST) {
        call_answer_now(d, c, def, id, approvals_list_json(d->env.approvals), NULL, NULL);
        return;
    }
    int64_t aid = approval_id_arg(cmd_arg(args, "approvalId"));
    json_object *dv = cmd_arg(args, "decision");
    unsigned decision = json_object_is_type(dv, json_type_string)
                            ? approval_decision_parse(json_object_get_string(dv))
                            : 0;
    if (aid <= 0) {
        call_answer_now(d, c, def, id, NULL, "INVALID_ARGS", "args.approvalId: expected a number");
        return;
    }
    if (!decision) {
        call_answer_now(d, c, def, id, NULL, "INVALID_ARGS",
                        "args.decision: expected allow_once, allow_always or deny");
        return;
    }
    char msg[200];
    enum approval_answer ans = approvals_decide(
        d->env.approvals, aid, (enum approval_decision)decision, c->user_id, msg, sizeof(msg));
    switch (ans) {
    case APPROVAL_UNKNOWN:
        call_answer_now(d, c, def, id, NULL, "NOT_FOUND", msg);
        return;
    case APPROVAL_NOT_OFFERED:
        call_answer_now(d, c, def, id, NULL, "INVALID_ARGS", msg);
        return;
    case APPROVAL_TOOK:
    case APPROVAL_DECIDED: {
        json_object *r = json_object_new_object();
        json_object_object_add(r, "approvalId", json_object_new_int64(aid));
        json_object_object_add(r, "decision", json_object_get(dv));
        json_object_object_add(r, "took", json_object_new_boolean(ans == APPROVAL_TOOK));
        json_object_object_add(r, "message", json_object_new_string(msg));
        call_answer_now(d, c, def, id, r, NULL, NULL);
        return;
    }
    }
}

/* ---- entry points ---- */

static void dispatch_sync(struct dispatch *d, struct client *c, const struct cmd_def *def,
                          json_object *id, json_object *args)
{
    struct cmd_ctx ctx = {
        .ws = d->env.ws,
        .version = COMPANION_VERSION,
        .session_id = session_id(c->s),
        .user_id = c->user_id,
        .scopes = c->scopes,
    };
    struct cmd_result res = {0};
    int64_t started = clock_mono_ms();
    if (def->fn(&ctx, args, &res) == CMD_OK)
        dispatch_reply_outcome(&d->reply, c, id, c->chat_word, def->name, res.result, NULL, NULL,
                               started);
    else
        dispatch_reply_outcome(&d->reply, c, id, c->chat_word, def->name, res.data,
                               res.code ? res.code : "PROCESSING_ERROR", res.message, started);
}

void dispatch_command(struct dispatch *d, struct client *c, const struct cmd_def *def,
                      json_object *id, json_object *args, const char *chat_word)
{
    /* Calls made during this dispatch take the word from the client. */
    c->chat_word = chat_word;
    switch (def->kind) {
    case CMD_KIND_SYNC:
        dispatch_sync(d, c, def, id, args);
        break;
    case CMD_KIND_WORKER:
        dispatch_worker(d, c, def, id, args);
        break;
    case CMD_KIND_TASK:
        tasks_dispatch(d, c, def, id, args);
        break;
    case CMD_KIND_EDITOR:
        dispatch_editor(d, c, def, id, args);
        break;
    case CMD_KIND_APPROVAL:
        dispatch_approval(d, c, def, id, args);
        break;
    case CMD_KIND_AGENT: /* the data plane hands these to agents.c */
        dispatch_reply_command(c, id, NULL, "UNKNOWN_COMMAND", "unknown command");
        break;
    }
    c->chat_word = NULL;
}

int dispatch_chat_cancel(struct dispatch *d, struct client *c, char *name, size_t len)
{
    /* The list is newest first, so the first chat task found is the latest. */
    for (struct call *call = c->calls; call; call = call->next) {
        if (call->chat_word[0] && call->task_name && (call->task || call->approval_id)) {
            snprintf(name, len, "%s", call->task_name);
            if (call->task)
                task_cancel(call->task);
            else
                tasks_cancel_waiting(call);
            return 1;
        }
    }
    return 0;
}

void dispatch_client_gone(struct dispatch *d, struct client *c)
{
    struct call *call = c->calls;
    while (call) {
        struct call *next = call->next;
        call_detach(call);
        if (call->task) {
            tasks_abandon(call);
        } else if (call->approval_id) {
            /* Withdrawn and announced; the call goes with the answer. */
            approvals_withdraw(d->env.approvals, call->approval_id);
        } else if (call->editor_req) {
            d->env.editor->forget(d->env.editor->ud, call->editor_req);
            call_free(call);
        }
        /* Worker calls stay on their job's list and are freed when it ends. */
        call = next;
    }
    c->calls = NULL;
}

void dispatch_drain(struct dispatch *d)
{
    if (d->pool)
        worker_pool_drain(d->pool);
}

struct worker_pool *dispatch_pool(struct dispatch *d)
{
    return d->pool;
}

int dispatch_running_tasks(const struct dispatch *d)
{
    return d->running_tasks;
}

void dispatch_set_gitwatch(struct dispatch *d, struct gitwatch *gw)
{
    d->gitwatch = gw;
}

struct dispatch *dispatch_new(const struct dispatch_env *env, char *err, size_t errlen)
{
    struct dispatch *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->env = *env;
    d->reply.editor = env->editor;
    d->reply.counters = env->counters;
    d->pool = worker_pool_new(WORKER_THREADS, WORKER_QUEUE_MAX, env->wake, env->wake_ud);
    if (!d->pool) {
        snprintf(err, errlen, "cannot start worker threads");
        free(d);
        return NULL;
    }
    return d;
}

void dispatch_free(struct dispatch *d)
{
    if (!d)
        return;
    worker_pool_free(d->pool);
    free(d);
}

/* ---- answers: JSON, chat text and the audit trail ---- */

void dispatch_reply_command(struct client *c, json_object *id, json_object *result,
                            const char *code, const char *message)
{
    if (c->gone) {
        json_object_put(result);
        return;
    }
    json_object *data = json_object_new_object();
    json_object_object_add(data, "success", json_object_new_boolean(code == NULL));
    if (code) {
        json_object *err = json_object_new_object();
        json_object_object_add(err, "code", json_object_new_string(code));
        json_object_object_add(err, "message", json_object_new_string(message ? message : ""));
        if (result) /* with an error: its details */
            json_object_object_add(err, "data", result);
        json_object_object_add(data, "error", err);
    } else {
        json_object_object_add(data, "result", result ? result : json_object_new_object());
    }
    if (session_send(c->s, "command_response", id, data) == SESSION_TOO_LARGE)
        dispatch_reply_command(
            c, id, NULL, "RESULT_TOO_LARGE",
            "the answer is larger than limits.maxQueuedBytes: ask for less (maxBytes, "
            "path)");
}

void dispatch_reply_audit(const struct editor_port *editor, const struct client *c,
                          const char *name, int ok, int64_t started_ms)
{
    if (!editor->attached(editor->ud))
        return;
    json_object *n = json_object_new_object();
    json_object_object_add(n, "sessionId", json_object_new_string(session_id(c->s)));
    json_object_object_add(n, "userId", json_object_new_string(c->user_id ? c->user_id : ""));
    json_object_object_add(n, "name", json_object_new_string(name));
    json_object_object_add(n, "success", json_object_new_boolean(ok));
    json_object_object_add(n, "durationMs", json_object_new_int64(clock_mono_ms() - started_ms));
    editor->notify(editor->ud, "companion/commandExecuted", n);
}

void dispatch_reply_outcome(const struct reply_env *env, struct client *c, json_object *id,
                            const char *chat_word, const char *name, json_object *result,
                            const char *code, const char *message, int64_t started_ms)
{
    metrics_hist_table_observe(&env->counters->command_latency, name,
                               (clock_mono_ms() - started_ms) * 1000);
    if (code)
        metrics_table_add(&env->counters->command_errors_by_code, code, 1);
    if (c->gone) {
        json_object_put(result);
        return;
    }
    if (code)
        env->counters->command_errors++;
    if (chat_word && chat_word[0]) {
        char *text = code ? chat_format_error(chat_word, code, message)
                          : chat_format_result(chat_word, name, result);
        events_chat_reply(c, id, text ? text : "Something went wrong.", 0);
        free(text);
        json_object_put(result);
    } else {
        dispatch_reply_command(c, id, result, code, message);
    }
    dispatch_reply_audit(env->editor, c, name, code == NULL, started_ms);
}
