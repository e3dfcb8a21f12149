/*
 * dispatch_tasks: task.list, task.run and task.cancel for a client (see
 * dispatch_impl.h).
 * A run is streamed to the client that started it (stream_start /
 * stream_chunk / stream_end, or chat text), announced to subscribers
 * (task.started / task.finished with the output's last lines), asks the
 * editor first when the task is marked `confirm`, and ends with its whole
 * process group when the client goes.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/approvals.h"
#include "app/dispatch_impl.h"
#include "app/client.h"
#include "app/editor_port.h"
#include "app/events.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/settings.h"
#include "server/server.h"
#include "workspace/chat.h"
#include "workspace/commands.h"
#include "workspace/folder.h"
#include "workspace/task.h"

/* Keeps the last CHAT_TAIL_BYTES of output, cut at a character boundary. */
#define CHAT_TAIL_BYTES 8192

static json_object *task_list_json(const struct settings *st)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < st->tasks_n; i++) {
        const struct settings_task *t = &st->tasks[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(t->name));
        json_object_object_add(o, "command", json_object_new_string(t->command));
        json_object *args = json_object_new_array();
        for (size_t k = 0; k < t->args.n; k++)
            json_object_array_add(args, json_object_new_string(t->args.v[k]));
        json_object_object_add(o, "args", args);
        json_object_object_add(o, "confirm", json_object_new_boolean(t->confirm));
        json_object_array_add(arr, o);
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "tasks", arr);
    return r;
}

static void stream_send(struct call *call, const char *type, json_object *data)
{
    if (call->c && !call->c->gone)
        session_send(call->c->s, type, call->id, data);
    else
        json_object_put(data);
}

static void tail_append(struct call *call, const char *text, size_t len)
{
    if (!call->tail && !(call->tail = malloc(CHAT_TAIL_BYTES + 1)))
        return;
    if (len >= CHAT_TAIL_BYTES) {
        text += len - CHAT_TAIL_BYTES;
        len = CHAT_TAIL_BYTES;
        call->tail_len = 0;
    }
    if (call->tail_len + len > CHAT_TAIL_BYTES) {
        size_t drop = call->tail_len + len - CHAT_TAIL_BYTES;
        memmove(call->tail, call->tail + drop, call->tail_len - drop);
        call->tail_len -= drop;
    }
    memcpy(call->tail + call->tail_len, text, len);
    call->tail_len += len;
    size_t skip = 0; /* never start inside a character */
    while (skip < call->tail_len && ((unsigned char)call->tail[skip] & 0xc0) == 0x80)
        skip++;
    memmove(call->tail, call->tail + skip, call->tail_len - skip);
    call->tail_len -= skip;
    call->tail[call->tail_len] = '\0';
}

static void task_output(void *ud, enum task_stream stream, const char *text, size_t len)
{
    struct call *call = ud;
    tail_append(call, text, len);
    if (call->chat_word[0])
        return;
    json_object *d = json_object_new_object();
    json_object_object_add(d, "stream",
                           json_object_new_string(stream == TASK_STDOUT ? "stdout" : "stderr"));
    json_object_object_add(d, "text", json_object_new_string_len(text, (int)len));
    stream_send(call, "stream_chunk", d);
}

/* The last lines of output for task.finished (at most 2 KiB, whole lines). */
static json_object *tail_json(const struct call *call)
{
    if (!call->tail || !call->tail_len)
        return json_object_new_string("");
    const char *t = call->tail;
    if (call->tail_len > 2048) {
        t = call->tail + call->tail_len - 2048;
        const char *nl = strchr(t, '\n');
        t = nl && nl[1] ? nl + 1 : t;
        while (((unsigned char)*t & 0xc0) == 0x80)
            t++;
    }
    return json_object_new_string(t);
}

static const char *signal_name(int sig)
{
    const char *n = sig ? sigabbrev_np(sig) : NULL;
    return n ? n : "UNKNOWN";
}

/* task.started / task.finished for subscribers (r NULL: started). */
static void publish_task(struct call *call, enum event_kind kind, const struct task_result *r)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "name", json_object_new_string(call->task_name));
    json_object_object_add(p, "id", call->id ? json_object_get(call->id) : NULL);
    json_object_object_add(p, "userId", json_object_new_string(call->user ? call->user : ""));
    if (r) {
        json_object_object_add(p, "exitCode", r->signal ? NULL : json_object_new_int(r->exit_code));
        json_object_object_add(p, "signal",
                               r->signal ? json_object_new_string(signal_name(r->signal)) : NULL);
        json_object_object_add(p, "durationMs", json_object_new_int64(r->duration_ms));
        json_object_object_add(p, "truncated", json_object_new_boolean(r->truncated));
        json_object_object_add(p, "timedOut", json_object_new_boolean(r->timed_out));
        json_object_object_add(p, "cancelled", json_object_new_boolean(r->cancelled));
        json_object_object_add(p, "tail", tail_json(call));
    }
    events_publish(call->d->env.events, kind, p);
}

static void task_finished(void *ud, const struct task_result *r)
{
    struct call *call = ud;
    struct dispatch *d = call->d;
    d->running_tasks--;
    json_object *data = json_object_new_object();
    json_object_object_add(data, "exitCode", r->signal ? NULL : json_object_new_int(r->exit_code));
    json_object_object_add(data, "signal",
                           r->signal ? json_object_new_string(signal_name(r->signal)) : NULL);
    json_object_object_add(data, "durationMs", json_object_new_int64(r->duration_ms));
    json_object_object_add(data, "truncated", json_object_new_boolean(r->truncated));
    json_object_object_add(data, "timedOut", json_object_new_boolean(r->timed_out));
    json_object_object_add(data, "cancelled", json_object_new_boolean(r->cancelled));
    log_msg(d->env.log, LOG_INFO, "task %s ended: exit %d signal %d in %lld ms", call->task_name,
            r->exit_code, r->signal, (long long)r->duration_ms);
    if (call->chat_word[0]) {
        if (call->c) {
            char *text = chat_format_task_end(
                call->task_name, r->exit_code, r->signal ? sigabbrev_np(r->signal) : NULL,
                r->duration_ms, r->timed_out, r->cancelled, call->tail, r->truncated);
            events_chat_reply(call->c, call->id, text ? text : "The task ended.", 0);
            free(text);
        }
        json_object_put(data);
    } else {
        stream_send(call, "stream_end", data);
    }
    if (call->c)
        dispatch_reply_audit(d->reply.editor, call->c, call->def->name, r->exit_code == 0,
                             call->started_ms);
    publish_task(call, EVENT_TASK_FINISHED, r);
    task_free(call->task);
    call->task = NULL;
    call_free(call);
}

/* Resolves the task's cwd inside the first folder, confined like every
 * client path (a cwd from the workspace's settings must not leave it). */
static int task_cwd(const struct dispatch *d, const struct settings_task *t, char out[PATH_MAX],
                    struct cmd_result *res)
{
    const struct workspace *ws = d->env.ws;
    const char *rel = t->cwd ? t->cwd : ".";
    struct folder_target ft;
    if (ws->n_folders == 0) {
        cmd_fail(res, "NOT_FOUND", "no workspace folder to run in");
        return -1;
    }
    if (folder_check_path(rel, strlen(rel), res) < 0)
        return -1;
    enum folder_err e = folder_resolve(&ws->folders[0], rel, &ft);
    if (e != FOLDER_OK) {
        folder_fail(res, e, rel);
        if (e == FOLDER_E_NOT_FOUND)
            cmd_fail(res, "NOT_FOUND", "the task's cwd %.200s does not exist", rel);
        return -1;
    }
    int rc = 0;
    if (!S_ISDIR(ft.st.st_mode)) {
        cmd_fail(res, "NOT_FOUND", "the task's cwd %.200s is not a folder", rel);
        rc = -1;
    } else if (folder_target_path(&ft, out, PATH_MAX) < 0) {
        cmd_fail(res, "PROCESSING_ERROR", "the task's cwd cannot be opened");
        rc = -1;
    }
    folder_target_close(&ft);
    return rc;
}

static void task_begin(struct call *call)
{
    struct dispatch *d = call->d;
    const struct settings *st = d->env.st;
    const struct settings_task *t = settings_find_task(st, call->task_name);
    struct cmd_result res = {0};
    char msg[256], cwd[PATH_MAX];
    if (!call->c) {
        call_free(call);
        return;
    }
    if (!t) {
        call_complete(call, NULL, "NOT_FOUND", "no such task");
        return;
    }
    if (d->running_tasks >= st->max_concurrent_tasks) {
        call_complete(call, NULL, "BUSY", "too many tasks are running");
        return;
    }
    if (task_cwd(d, t, cwd, &res) < 0) {
        call_complete(call, NULL, res.code, res.message);
        return;
    }
    char **env = settings_env_strings(t->env, t->env_n);
    if (!env) {
        call_complete(call, NULL, "PROCESSING_ERROR", "out of memory");
        return;
    }
    struct task_spec spec = {
        .command = t->command,
        .args = (const char *const *)t->args.v,
        .n_args = t->args.n,
        .cwd = cwd,
        .env = (const char *const *)env,
        .n_env = t->env_n,
        .timeout_s = t->timeout_s,
        .max_output_bytes = st->max_output_bytes,
    };
    static const struct task_events events = {task_output, task_finished};
    call->task = task_start(d->env.tasks, &spec, &events, call, msg, sizeof(msg));
    settings_env_strings_free(env);
    if (!call->task) {
        call_complete(call, NULL, "PROCESSING_ERROR", msg);
        return;
    }
    d->running_tasks++;
    publish_task(call, EVENT_TASK_STARTED, NULL);
    log_msg(d->env.log, LOG_INFO, "task %s started for %s (pid %d)", t->name, call->c->user_id,
            (int)task_pid(call->task));
    if (call->chat_word[0]) {
        char *text = chat_format_task_start(t->name);
        events_chat_reply(call->c, call->id, text ? text : "Started.", 0);
        free(text);
        return;
    }
    json_object *data = json_object_new_object();
    json_object_object_add(data, "name", json_object_new_string(t->name));
    stream_send(call, "stream_start", data);
}

/* The answer to a confirm task's approval. */
static void approval_done(void *ud, enum approval_outcome outcome, const char *by)
{
    struct call *call = ud;
    char msg[160];
    call->approval_id = 0;
    if (!call->c) {
        call_free(call); /* its client went: the approval was withdrawn */
        return;
    }
    switch (outcome) {
    case APPROVAL_ALLOWED_ONCE:
    case APPROVAL_ALLOWED_ALWAYS:
        task_begin(call);
        return;
    case APPROVAL_DENIED:
        snprintf(msg, sizeof(msg), "denied by %s", by);
        call_complete(call, NULL, "FORBIDDEN", msg);
        return;
    case APPROVAL_EXPIRED:
        call_complete(call, NULL, "FORBIDDEN", "nobody approved it in time");
        return;
    case APPROVAL_WITHDRAWN:
        call_complete(call, NULL, "FORBIDDEN",
                      call->cancelled ? "cancelled before it started"
                                      : "the approval was withdrawn");
        return;
    }
}

/* A task marked `confirm` waits for an approval (approvals.h): from the
 * editor or any client with the approve scope. The caller hears at once
 * which approval it waits for. */
static void ask_approval(struct dispatch *d, struct call *call, const struct settings_task *t)
{
    struct client *c = call->c;
    char title[160], err[160];
    snprintf(title, sizeof(title), "Run task \"%s\"", t->name);
    json_object *action = json_object_new_object();
    json_object *args = json_object_new_array();
    for (size_t i = 0; i < t->args.n; i++)
        json_object_array_add(args, json_object_new_string(t->args.v[i]));
    json_object_object_add(action, "task", json_object_new_string(t->name));
    json_object_object_add(action, "command", json_object_new_string(t->command));
    json_object_object_add(action, "args", args);
    json_object_object_add(action, "cwd", json_object_new_string(t->cwd ? t->cwd : "."));
    json_object_object_add(
        action, "folder",
        json_object_new_string(d->env.ws->n_folders ? d->env.ws->folders[0].name : ""));
    struct approval_request req = {
        .kind = "task",
        .title = title,
        .action = action,
        .options = APPROVAL_ALL_OPTIONS,
        .user_id = c->user_id,
        .session_id = session_id(c->s),
        .owner = c,
        .remember_key = c->token_key,
        .done = approval_done,
        .ud = call,
    };
    int64_t aid = approvals_request(d->env.approvals, &req, err, sizeof(err));
    if (aid < 0) {
        call_complete(call, NULL, "FORBIDDEN", err);
        return;
    }
    if (aid == 0)
        return; /* allowed always: approval_done started it */
    call->approval_id = aid;
    if (call->chat_word[0]) {
        char text[200];
        snprintf(text, sizeof(text),
                 "Waiting for approval %lld: a device with the approve scope answers \"yes %lld\".",
                 (long long)aid, (long long)aid);
        events_chat_reply(c, call->id, text, 0);
        return;
    }
    json_object *data = json_object_new_object();
    json_object_object_add(data, "approvalId", json_object_new_int64(aid));
    json_object_object_add(data, "title", json_object_new_string(title));
    json_object_object_add(data, "expiresAt",
                           json_object_new_int64(approvals_expires_at(d->env.approvals, aid)));
    stream_send(call, "approval_pending", data);
}

void tasks_cancel_waiting(struct call *call)
{
    call->cancelled = 1;
    approvals_withdraw(call->d->env.approvals, call->approval_id);
}

static void task_run(struct dispatch *d, struct client *c, const struct cmd_def *def,
                     json_object *id, json_object *args)
{
    json_object *name = cmd_arg(args, "name");
    if (!name || !json_object_is_type(name, json_type_string)) {
        call_answer_now(d, c, def, id, NULL, "INVALID_ARGS", "args.name: expected a task name");
        return;
    }
    const struct settings_task *t = settings_find_task(d->env.st, json_object_get_string(name));
    if (!t) {
        call_answer_now(d, c, def, id, NULL, "NOT_FOUND", "no such task (see task.list)");
        return;
    }
    struct call *call = call_new(d, c, def, id);
    if (!call || !(call->task_name = strdup(t->name))) {
        if (call)
            call_free(call);
        dispatch_reply_command(c, id, NULL, "PROCESSING_ERROR", "out of memory");
        return;
    }
    if (!t->confirm) {
        task_begin(call);
        return;
    }
    ask_approval(d, call, t);
}

static int ids_equal(json_object *a, json_object *b)
{
    if (!a || !b || json_object_get_type(a) != json_object_get_type(b))
        return 0;
    return strcmp(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN),
                  json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN)) == 0;
}

static void task_cancel_cmd(struct dispatch *d, struct client *c, const struct cmd_def *def,
                            json_object *id, json_object *args)
{
    json_object *target = cmd_arg(args, "id");
    if (!target || !(json_object_is_type(target, json_type_string) ||
                     json_object_is_type(target, json_type_int))) {
        call_answer_now(d, c, def, id, NULL, "INVALID_ARGS",
                        "args.id: expected the id of a task.run request");
        return;
    }
    for (struct call *call = c->calls; call; call = call->next) {
        if (call->task_name && ids_equal(call->id, target)) {
            if (call->task)
                task_cancel(call->task);
            else if (call->approval_id)
                tasks_cancel_waiting(call);
            json_object *r = json_object_new_object();
            json_object_object_add(r, "cancelled", json_object_new_boolean(1));
            call_answer_now(d, c, def, id, r, NULL, NULL);
            return;
        }
    }
    call_answer_now(d, c, def, id, NULL, "NOT_FOUND",
                    "no running task with that id in this session");
}

void tasks_dispatch(struct dispatch *d, struct client *c, const struct cmd_def *def,
                    json_object *id, json_object *args)
{
    switch (def->task_op) {
    case CMD_TASK_LIST:
        call_answer_now(d, c, def, id, task_list_json(d->env.st), NULL, NULL);
        return;
    case CMD_TASK_RUN:
        task_run(d, c, def, id, args);
        return;
    case CMD_TASK_CANCEL:
        task_cancel_cmd(d, c, def, id, args);
        return;
    case CMD_TASK_NONE:
        break;
    }
    call_answer_now(d, c, def, id, NULL, "UNKNOWN_COMMAND", "unknown command");
}

void tasks_abandon(struct call *call)
{
    call->d->running_tasks--;
    task_abandon(call->task);
    /* Subscribers still hear of its end; the exit status is not awaited,
     * since the group is being killed. */
    struct task_result r = {.exit_code = -1,
                            .signal = SIGKILL,
                            .duration_ms = clock_mono_ms() - call->started_ms,
                            .cancelled = 1};
    publish_task(call, EVENT_TASK_FINISHED, &r);
    call->task = NULL;
    call_free(call);
}
