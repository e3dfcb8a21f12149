/*
 * calls: asynchronous commands (see calls.h).
 */
#include "app/calls.h"

#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/helper.h"
#include "server/loopio.h"
#include "server/session.h"
#include "app/status_cache.h"
#include "app/watch.h"
#include "workspace/editor_cmd.h"
#include "workspace/folder.h"
#include "workspace/git_ctx.h"
#include "workspace/chat.h"
#include "workspace/task.h"
#include "workspace/utf8.h"
#include "workspace/worker.h"

#define WORKER_THREADS     2
#define WORKER_QUEUE_MAX   256
#define EDITOR_TIMEOUT_MS  10000
#define CONFIRM_TIMEOUT_MS 60000

struct cmd_job;

struct call {
    struct call *prev, *next; /* in the session's list */
    struct helper *h;
    struct session *s; /* NULL once the session is gone */
    json_object *id;
    const struct cmd_def *def;
    int64_t started_ms;
    struct call *next_waiter; /* a worker job's callers */
    struct task *task;
    const struct settings_task *task_def; /* valid while settings do not change */
    char *task_name;
    int64_t editor_req; /* our outgoing request id, 0 when none */
    char chat_word[16]; /* non-empty: a chat message asked, answer in text */
    char *tail;         /* task runs: the last output, for chat and task.finished */
    char *user;         /* who asked (kept when the session goes) */
    size_t tail_len;
};

struct cmd_job {
    struct worker_job base;
    struct helper *h;
    const struct cmd_def *def;
    json_object *args;
    struct workspace_folder *folders;
    size_t n_folders;
    char *key;
    size_t reply_max; /* see struct cmd_job_env */
    struct call *waiters;
    /* Internal jobs (no session): called on the loop with the outcome. */
    void (*internal)(void *ud, enum cmd_status st, struct cmd_result *res);
    void *internal_ud;
    enum cmd_status st;
    struct cmd_result res;
    struct cmd_job *next_inflight;
};

/* ---- call bookkeeping ---- */

static struct call *call_new(struct session *s, const struct cmd_def *def, json_object *id)
{
    struct call *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->h = s->h;
    c->s = s;
    c->def = def;
    c->id = id ? json_object_get(id) : NULL;
    c->started_ms = clock_mono_ms();
    c->user = strdup(s->user_id ? s->user_id : "");
    if (s->chat_word)
        snprintf(c->chat_word, sizeof(c->chat_word), "%s", s->chat_word);
    c->next = s->calls;
    if (s->calls)
        s->calls->prev = c;
    s->calls = c;
    return c;
}

static void call_detach(struct call *c)
{
    if (!c->s)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->s->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->s = NULL;
}

static void call_free(struct call *c)
{
    call_detach(c);
    json_object_put(c->id);
    free(c->task_name);
    free(c->tail);
    free(c->user);
    free(c);
}

void calls_chat_send_event(struct session *s, json_object *id, const char *text, int64_t seq)
{
    char **parts = NULL;
    size_t n = chat_split(text, &parts);
    for (size_t i = 0; i < n; i++) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "text", json_object_new_string(parts[i]));
        json_object_object_add(d, "part", json_object_new_int((int)i + 1));
        json_object_object_add(d, "parts", json_object_new_int((int)n));
        if (seq > 0)
            json_object_object_add(d, "event", json_object_new_int64(seq));
        session_send(s, "chat_reply", id, d);
    }
    chat_parts_free(parts, n);
}

void calls_chat_send(struct session *s, json_object *id, const char *text)
{
    calls_chat_send_event(s, id, text, 0);
}

void calls_reply(struct session *s, json_object *id, json_object *result, const char *code,
                 const char *message)
{
    json_object *data = json_object_new_object();
    json_object_object_add(data, "success", json_object_new_boolean(code == NULL));
    if (code) {
        json_object *err = json_object_new_object();
        json_object_object_add(err, "code", json_object_new_string(code));
        json_object_object_add(err, "message", json_object_new_string(message ? message : ""));
        json_object_object_add(data, "error", err);
        json_object_put(result);
    } else {
        json_object_object_add(data, "result", result ? result : json_object_new_object());
    }
    if (session_send(s, "command_response", id, data) == SESSION_TOO_LARGE)
        calls_reply(s, id, NULL, "RESULT_TOO_LARGE",
                    "the answer is larger than limits.maxQueuedBytes: ask for less (maxBytes, "
                    "path)");
}

void calls_audit(struct session *s, const char *name, int ok, int64_t started_ms)
{
    json_object *n = json_object_new_object();
    json_object_object_add(n, "sessionId", json_object_new_string(s->id));
    json_object_object_add(n, "userId", json_object_new_string(s->user_id ? s->user_id : ""));
    json_object_object_add(n, "name", json_object_new_string(name));
    json_object_object_add(n, "success", json_object_new_boolean(ok));
    json_object_object_add(n, "durationMs", json_object_new_int64(clock_mono_ms() - started_ms));
    control_notify(s->h, "companion/commandExecuted", n);
}

/* Answers and frees the call (result owned). */
static void call_complete(struct call *c, json_object *result, const char *code,
                          const char *message)
{
    if (c->s && c->chat_word[0]) {
        if (code)
            c->h->counters.command_errors++;
        char *text = code ? chat_format_error(c->chat_word, code, message)
                          : chat_format_result(c->chat_word, c->def->name, result);
        calls_chat_send(c->s, c->id, text ? text : "Something went wrong.");
        free(text);
        json_object_put(result);
        calls_audit(c->s, c->def->name, code == NULL, c->started_ms);
    } else if (c->s) {
        if (code)
            c->h->counters.command_errors++;
        calls_reply(c->s, c->id, result, code, message);
        calls_audit(c->s, c->def->name, code == NULL, c->started_ms);
    } else {
        json_object_put(result);
    }
    call_free(c);
}

/* Answers at once through a call, so chat and audit work the same way. */
static void answer_now(struct session *s, const struct cmd_def *def, json_object *id,
                       json_object *result, const char *code, const char *message)
{
    struct call *c = call_new(s, def, id);
    if (!c) {
        json_object_put(result);
        calls_reply(s, id, NULL, "PROCESSING_ERROR", "out of memory");
        return;
    }
    call_complete(c, result, code, message);
}

/* ---- worker jobs ---- */

/* The largest reply a client can be sent: its whole outbound queue, less
 * what the envelope adds. */
static size_t calls_reply_max(const struct helper *h)
{
    size_t q = (size_t)h->settings.max_queued_bytes;
    return q > 1024 ? q - 1024 : q;
}

static void job_run(struct worker_thread *t, struct worker_job *base)
{
    struct cmd_job *j = (struct cmd_job *)base;
    struct cmd_job_env env = {j->folders, j->n_folders, j->reply_max};
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
    struct helper *h = j->h;
    for (struct cmd_job **pp = &h->inflight; *pp; pp = &(*pp)->next_inflight)
        if (*pp == j) {
            *pp = j->next_inflight;
            break;
        }
    if (j->internal) {
        if (cancelled)
            cmd_fail(&j->res, "PROCESSING_ERROR", "the helper is stopping");
        j->internal(j->internal_ud, cancelled ? CMD_ERROR : j->st, &j->res);
    }
    struct call *c = j->waiters;
    while (c) {
        struct call *next = c->next_waiter;
        if (cancelled)
            call_complete(c, NULL, "PROCESSING_ERROR", "the helper is stopping");
        else if (j->st == CMD_OK)
            call_complete(c, json_object_get(j->res.result), NULL, NULL);
        else
            call_complete(c, NULL, j->res.code ? j->res.code : "PROCESSING_ERROR", j->res.message);
        c = next;
    }
    json_object_put(j->res.result);
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

static void status_cached_done(void *ud, enum cmd_status st, struct cmd_result *res)
{
    struct call *c = ud;
    if (st == CMD_OK)
        call_complete(c, json_object_get(res->result), NULL, NULL);
    else
        call_complete(c, NULL, res->code ? res->code : "PROCESSING_ERROR", res->message);
}

/* git.status of a watched folder: from the status cache. 0 when the call
 * is not one it can take (arguments to be checked by git_ctx, a folder
 * that is not watched). */
static int dispatch_status(struct session *s, const struct cmd_def *def, json_object *id,
                           json_object *args)
{
    struct helper *h = s->h;
    json_object *folder = NULL;
    if (!h->watch || strcmp(def->name, "git.status") != 0 ||
        (args && !json_object_is_type(args, json_type_object)))
        return 0;
    if (args && json_object_object_get_ex(args, "folder", &folder) && folder &&
        !json_object_is_type(folder, json_type_string))
        return 0;
    int i = watch_folder_for(h->watch, folder ? json_object_get_string(folder) : NULL);
    if (i < 0)
        return 0;
    struct call *c = call_new(s, def, id);
    if (!c)
        return 0;
    if (status_cache_get(watch_cache(h->watch), (size_t)i, status_cached_done, c) < 0)
        call_complete(c, NULL, "BUSY", "too many commands in progress; try again shortly");
    return 1;
}

static void dispatch_worker(struct session *s, const struct cmd_def *def, json_object *id,
                            json_object *args)
{
    struct helper *h = s->h;
    if (dispatch_status(s, def, id, args))
        return;
    char *key = def->coalesce ? job_key(def, args) : NULL;
    if (key) {
        for (struct cmd_job *j = h->inflight; j; j = j->next_inflight) {
            if (j->key && strcmp(j->key, key) == 0) {
                struct call *c = call_new(s, def, id);
                if (c) {
                    c->next_waiter = j->waiters;
                    j->waiters = c;
                }
                free(key);
                return;
            }
        }
    }
    struct cmd_job *j = calloc(1, sizeof(*j));
    struct call *c = j ? call_new(s, def, id) : NULL;
    if (!j || !c) {
        free(j);
        free(key);
        calls_reply(s, id, NULL, "PROCESSING_ERROR", "out of memory");
        return;
    }
    j->base.run = job_run;
    j->base.done = job_done;
    j->h = h;
    j->def = def;
    j->key = key;
    j->reply_max = calls_reply_max(h);
    /* The worker gets its own copies: json-c and our folder list are not
     * shared across threads. */
    j->args = NULL;
    if (args && json_object_deep_copy(args, &j->args, NULL) != 0)
        j->args = NULL;
    j->folders = workspace_folders_copy(&h->ws, &j->n_folders);
    j->waiters = c;
    if ((args && !j->args) || !j->folders || worker_pool_submit(h->pool, &j->base) < 0) {
        j->waiters = NULL;
        job_free(j);
        call_complete(c, NULL, "BUSY", "too many commands in progress; try again shortly");
        return;
    }
    if (key) {
        j->next_inflight = h->inflight;
        h->inflight = j;
    }
}

int calls_run_internal(struct helper *h, const char *name, json_object *args,
                       void (*done)(void *ud, enum cmd_status st, struct cmd_result *res), void *ud)
{
    const struct cmd_def *def = cmd_lookup(name);
    struct cmd_job *j = def && def->kind == CMD_KIND_WORKER ? calloc(1, sizeof(*j)) : NULL;
    if (!j) {
        json_object_put(args);
        return -1;
    }
    j->base.run = job_run;
    j->base.done = job_done;
    j->h = h;
    j->def = def;
    j->args = args;
    j->reply_max = SIZE_MAX; /* read by the helper, not sent */
    j->internal = done;
    j->internal_ud = ud;
    j->folders = workspace_folders_copy(&h->ws, &j->n_folders);
    if (!j->folders || worker_pool_submit(h->pool, &j->base) < 0) {
        job_free(j);
        return -1;
    }
    return 0;
}

/* ---- tasks ---- */

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

static void stream_send(struct call *c, const char *type, json_object *data)
{
    if (c->s)
        session_send(c->s, type, c->id, data);
    else
        json_object_put(data);
}

/* Keeps the last CHAT_TAIL_BYTES of output, cut at a character boundary. */
#define CHAT_TAIL_BYTES 8192
static void tail_append(struct call *c, const char *text, size_t len)
{
    if (!c->tail && !(c->tail = malloc(CHAT_TAIL_BYTES + 1)))
        return;
    if (len >= CHAT_TAIL_BYTES) {
        text += len - CHAT_TAIL_BYTES;
        len = CHAT_TAIL_BYTES;
        c->tail_len = 0;
    }
    if (c->tail_len + len > CHAT_TAIL_BYTES) {
        size_t drop = c->tail_len + len - CHAT_TAIL_BYTES;
        memmove(c->tail, c->tail + drop, c->tail_len - drop);
        c->tail_len -= drop;
    }
    memcpy(c->tail + c->tail_len, text, len);
    c->tail_len += len;
    size_t skip = 0; /* never start inside a character */
    while (skip < c->tail_len && ((unsigned char)c->tail[skip] & 0xc0) == 0x80)
        skip++;
    memmove(c->tail, c->tail + skip, c->tail_len - skip);
    c->tail_len -= skip;
    c->tail[c->tail_len] = '\0';
}

static void task_output(void *ud, enum task_stream stream, const char *text, size_t len)
{
    struct call *c = ud;
    tail_append(c, text, len);
    if (c->chat_word[0])
        return;
    json_object *d = json_object_new_object();
    json_object_object_add(d, "stream",
                           json_object_new_string(stream == TASK_STDOUT ? "stdout" : "stderr"));
    json_object_object_add(d, "text", json_object_new_string_len(text, (int)len));
    stream_send(c, "stream_chunk", d);
}

/* The last lines of output for task.finished (at most 2 KiB, whole lines). */
static json_object *tail_json(const struct call *c)
{
    if (!c->tail || !c->tail_len)
        return json_object_new_string("");
    const char *t = c->tail;
    if (c->tail_len > 2048) {
        t = c->tail + c->tail_len - 2048;
        const char *nl = strchr(t, '\n');
        t = nl && nl[1] ? nl + 1 : t;
        while (((unsigned char)*t & 0xc0) == 0x80)
            t++;
    }
    return json_object_new_string(t);
}

/* task.started / task.finished for subscribers (r NULL: started). */
static void publish_task(struct call *c, enum event_kind kind, const struct task_result *r)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "name", json_object_new_string(c->task_name));
    json_object_object_add(p, "id", c->id ? json_object_get(c->id) : NULL);
    json_object_object_add(p, "userId", json_object_new_string(c->user ? c->user : ""));
    if (r) {
        const char *sig = r->signal ? sigabbrev_np(r->signal) : NULL;
        json_object_object_add(p, "exitCode", r->signal ? NULL : json_object_new_int(r->exit_code));
        json_object_object_add(p, "signal",
                               r->signal ? json_object_new_string(sig ? sig : "UNKNOWN") : NULL);
        json_object_object_add(p, "durationMs", json_object_new_int64(r->duration_ms));
        json_object_object_add(p, "truncated", json_object_new_boolean(r->truncated));
        json_object_object_add(p, "timedOut", json_object_new_boolean(r->timed_out));
        json_object_object_add(p, "cancelled", json_object_new_boolean(r->cancelled));
        json_object_object_add(p, "tail", tail_json(c));
    }
    events_publish(c->h, kind, p);
}

static void task_finished(void *ud, const struct task_result *r)
{
    struct call *c = ud;
    struct helper *h = c->h;
    h->running_tasks--;
    json_object *d = json_object_new_object();
    json_object_object_add(d, "exitCode", r->signal ? NULL : json_object_new_int(r->exit_code));
    json_object_object_add(
        d, "signal",
        r->signal
            ? json_object_new_string(sigabbrev_np(r->signal) ? sigabbrev_np(r->signal) : "UNKNOWN")
            : NULL);
    json_object_object_add(d, "durationMs", json_object_new_int64(r->duration_ms));
    json_object_object_add(d, "truncated", json_object_new_boolean(r->truncated));
    json_object_object_add(d, "timedOut", json_object_new_boolean(r->timed_out));
    json_object_object_add(d, "cancelled", json_object_new_boolean(r->cancelled));
    log_msg(&h->log, LOG_INFO, "task %s ended: exit %d signal %d in %lld ms", c->task_name,
            r->exit_code, r->signal, (long long)r->duration_ms);
    if (c->chat_word[0]) {
        if (c->s) {
            char *text = chat_format_task_end(
                c->task_name, r->exit_code, r->signal ? sigabbrev_np(r->signal) : NULL,
                r->duration_ms, r->timed_out, r->cancelled, c->tail, r->truncated);
            calls_chat_send(c->s, c->id, text ? text : "The task ended.");
            free(text);
        }
        json_object_put(d);
    } else {
        stream_send(c, "stream_end", d);
    }
    if (c->s)
        calls_audit(c->s, c->def->name, r->exit_code == 0, c->started_ms);
    publish_task(c, EVENT_TASK_FINISHED, r);
    task_free(c->task);
    c->task = NULL;
    call_free(c);
}

/* Resolves the task's cwd inside the first folder, confined like every
 * client path (a cwd from the workspace's settings must not leave it). */
static int task_cwd(struct helper *h, const struct settings_task *t, char out[PATH_MAX],
                    struct cmd_result *res)
{
    const char *rel = t->cwd ? t->cwd : ".";
    struct folder_target ft;
    if (h->ws.n_folders == 0) {
        cmd_fail(res, "NOT_FOUND", "no workspace folder to run in");
        return -1;
    }
    if (folder_check_path(rel, strlen(rel), res) < 0)
        return -1;
    enum folder_err e = folder_resolve(&h->ws.folders[0], rel, &ft);
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

static void task_begin(struct call *c)
{
    struct helper *h = c->h;
    const struct settings_task *t = settings_find_task(&h->settings, c->task_name);
    struct cmd_result res = {0};
    char msg[256], cwd[PATH_MAX];
    if (!c->s) {
        call_free(c);
        return;
    }
    if (!t) {
        call_complete(c, NULL, "NOT_FOUND", "no such task");
        return;
    }
    if (h->running_tasks >= h->settings.max_concurrent_tasks) {
        call_complete(c, NULL, "BUSY", "too many tasks are running");
        return;
    }
    if (task_cwd(h, t, cwd, &res) < 0) {
        call_complete(c, NULL, res.code, res.message);
        return;
    }
    const char **env = calloc(t->env_n + 1, sizeof(char *));
    char **env_owned = calloc(t->env_n + 1, sizeof(char *));
    for (size_t i = 0; env && env_owned && i < t->env_n; i++) {
        size_t n = strlen(t->env[i].name) + strlen(t->env[i].value) + 2;
        env_owned[i] = malloc(n);
        if (env_owned[i])
            snprintf(env_owned[i], n, "%s=%s", t->env[i].name, t->env[i].value);
        env[i] = env_owned[i] ? env_owned[i] : "COMPANION_ENV_OOM=1";
    }
    struct task_spec spec = {
        .command = t->command,
        .args = (const char *const *)t->args.v,
        .n_args = t->args.n,
        .cwd = cwd,
        .env = env,
        .n_env = env ? t->env_n : 0,
        .timeout_s = t->timeout_s,
        .max_output_bytes = h->settings.max_output_bytes,
    };
    static const struct task_events events = {task_output, task_finished};
    c->task = task_start(&h->task_loop, &spec, &events, c, msg, sizeof(msg));
    for (size_t i = 0; env_owned && i < t->env_n; i++)
        free(env_owned[i]);
    free(env_owned);
    free(env);
    if (!c->task) {
        call_complete(c, NULL, "PROCESSING_ERROR", msg);
        return;
    }
    h->running_tasks++;
    publish_task(c, EVENT_TASK_STARTED, NULL);
    log_msg(&h->log, LOG_INFO, "task %s started for %s (pid %d)", t->name, c->s->user_id,
            (int)task_pid(c->task));
    if (c->chat_word[0]) {
        char *text = chat_format_task_start(t->name);
        calls_chat_send(c->s, c->id, text ? text : "Started.");
        free(text);
        return;
    }
    json_object *d = json_object_new_object();
    json_object_object_add(d, "name", json_object_new_string(t->name));
    stream_send(c, "stream_start", d);
}

static void confirm_answer(void *ud, json_object *result, const struct rpc_error *err)
{
    struct call *c = ud;
    c->editor_req = 0;
    json_object *approved = NULL;
    if (err) {
        call_complete(c, NULL, "EDITOR_UNAVAILABLE", "no answer from the editor");
        return;
    }
    if (!json_object_is_type(result, json_type_object) ||
        !json_object_object_get_ex(result, "approved", &approved) ||
        !json_object_get_boolean(approved)) {
        call_complete(c, NULL, "FORBIDDEN", "declined at the editor");
        return;
    }
    task_begin(c);
}

static int editor_attached(const struct helper *h)
{
    return h->mode == HELPER_MODE_STDIO && h->rpc && h->initialized && h->stdout_wsi && !h->exiting;
}

static void dispatch_task_run(struct session *s, const struct cmd_def *def, json_object *id,
                              json_object *args)
{
    struct helper *h = s->h;
    json_object *name = NULL;
    if (!args || !json_object_object_get_ex(args, "name", &name) ||
        !json_object_is_type(name, json_type_string)) {
        answer_now(s, def, id, NULL, "INVALID_ARGS", "args.name: expected a task name");
        return;
    }
    const struct settings_task *t = settings_find_task(&h->settings, json_object_get_string(name));
    if (!t) {
        answer_now(s, def, id, NULL, "NOT_FOUND", "no such task (see task.list)");
        return;
    }
    struct call *c = call_new(s, def, id);
    if (!c || !(c->task_name = strdup(t->name))) {
        if (c)
            call_free(c);
        calls_reply(s, id, NULL, "PROCESSING_ERROR", "out of memory");
        return;
    }
    if (!t->confirm) {
        task_begin(c);
        return;
    }
    if (!editor_attached(h)) {
        call_complete(c, NULL, "EDITOR_UNAVAILABLE",
                      "this task needs approval at the editor and no editor is attached");
        return;
    }
    json_object *p = json_object_new_object();
    char title[160], detail[1024];
    snprintf(title, sizeof(title), "Run task \"%s\"?", t->name);
    int off = snprintf(detail, sizeof(detail), "%s (%s) asks to run: %s", s->user_id, s->remote,
                       t->command);
    for (size_t i = 0; i < t->args.n && off > 0 && (size_t)off < sizeof(detail); i++)
        off += snprintf(detail + off, sizeof(detail) - (size_t)off, " %s", t->args.v[i]);
    json_object_object_add(p, "title", json_object_new_string(title));
    json_object_object_add(p, "detail", json_object_new_string(detail));
    c->editor_req = rpc_request(h->rpc, "editor/confirm", p, clock_mono_ms(), CONFIRM_TIMEOUT_MS,
                                confirm_answer, c);
    control_schedule_deadline(h);
    if (c->editor_req < 0) {
        c->editor_req = 0;
        call_complete(c, NULL, "EDITOR_UNAVAILABLE", "cannot reach the editor");
    }
}

static int ids_equal(json_object *a, json_object *b)
{
    if (!a || !b || json_object_get_type(a) != json_object_get_type(b))
        return 0;
    return strcmp(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN),
                  json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN)) == 0;
}

static void dispatch_task_cancel(struct session *s, const struct cmd_def *def, json_object *id,
                                 json_object *args)
{
    json_object *target = NULL;
    if (!args || !json_object_object_get_ex(args, "id", &target) ||
        !(json_object_is_type(target, json_type_string) ||
          json_object_is_type(target, json_type_int))) {
        answer_now(s, def, id, NULL, "INVALID_ARGS",
                   "args.id: expected the id of a task.run request");
        return;
    }
    for (struct call *c = s->calls; c; c = c->next) {
        if (c->task_name && ids_equal(c->id, target)) {
            if (c->task)
                task_cancel(c->task);
            else if (c->editor_req) {
                rpc_forget(s->h->rpc, c->editor_req);
                c->editor_req = 0;
                call_complete(c, NULL, "FORBIDDEN", "cancelled before it started");
            }
            json_object *r = json_object_new_object();
            json_object_object_add(r, "cancelled", json_object_new_boolean(1));
            answer_now(s, def, id, r, NULL, NULL);
            return;
        }
    }
    answer_now(s, def, id, NULL, "NOT_FOUND", "no running task with that id in this session");
}

/* ---- editor actions ---- */

static void editor_answer(void *ud, json_object *result, const struct rpc_error *err)
{
    struct call *c = ud;
    c->editor_req = 0;
    if (err) {
        if (err->code == RPC_REQUEST_TIMEOUT || err->code == RPC_REQUEST_CANCELLED) {
            call_complete(c, NULL, "EDITOR_UNAVAILABLE", "the editor did not answer in time");
        } else {
            char msg[256];
            snprintf(msg, sizeof(msg), "the editor could not do it: %.200s",
                     err->message ? err->message : "");
            char *clean = utf8_repair(msg, strlen(msg));
            call_complete(c, NULL, "PROCESSING_ERROR", clean ? clean : "the editor failed");
            free(clean);
        }
        return;
    }
    json_object *r = editor_cmd_result(&c->h->ws, c->def->name, result);
    call_complete(c, r, NULL, NULL);
}

static void dispatch_editor(struct session *s, const struct cmd_def *def, json_object *id,
                            json_object *args)
{
    struct helper *h = s->h;
    const char *method = NULL;
    json_object *params = NULL;
    struct cmd_result res = {0};
    if (!editor_attached(h)) {
        answer_now(s, def, id, NULL, "EDITOR_UNAVAILABLE", "no editor is attached to this helper");
        return;
    }
    struct editor_cmd_allow allow = {h->settings.editor_commands.v, h->settings.editor_commands.n};
    if (editor_cmd_params(&h->ws, &allow, def->name, args, &method, &params, &res) != CMD_OK) {
        answer_now(s, def, id, NULL, res.code ? res.code : "PROCESSING_ERROR", res.message);
        return;
    }
    struct call *c = call_new(s, def, id);
    if (!c) {
        json_object_put(params);
        calls_reply(s, id, NULL, "PROCESSING_ERROR", "out of memory");
        return;
    }
    c->editor_req =
        rpc_request(h->rpc, method, params, clock_mono_ms(), EDITOR_TIMEOUT_MS, editor_answer, c);
    control_schedule_deadline(h);
    if (c->editor_req < 0) {
        c->editor_req = 0;
        call_complete(c, NULL, "EDITOR_UNAVAILABLE", "cannot reach the editor");
    }
}

/* ---- entry points ---- */

static void dispatch_kind(struct session *s, const struct cmd_def *def, json_object *id,
                          json_object *args)
{
    struct helper *h = s->h;
    switch (def->kind) {
    case CMD_KIND_WORKER:
        dispatch_worker(s, def, id, args);
        return;
    case CMD_KIND_TASK:
        if (strcmp(def->name, "task.list") == 0) {
            struct call *c = call_new(s, def, id);
            if (c)
                call_complete(c, task_list_json(&h->settings), NULL, NULL);
        } else if (strcmp(def->name, "task.run") == 0) {
            dispatch_task_run(s, def, id, args);
        } else {
            dispatch_task_cancel(s, def, id, args);
        }
        return;
    case CMD_KIND_EDITOR:
        dispatch_editor(s, def, id, args);
        return;
    default:
        answer_now(s, def, id, NULL, "UNKNOWN_COMMAND", "unknown command");
        return;
    }
}

void calls_dispatch(struct session *s, const struct cmd_def *def, json_object *id,
                    json_object *args, const char *chat_word)
{
    /* Calls made during this dispatch take the word from the session. */
    s->chat_word = chat_word;
    dispatch_kind(s, def, id, args);
    s->chat_word = NULL;
}

int calls_chat_cancel(struct session *s, char *name, size_t len)
{
    /* The list is newest first, so the first chat task found is the latest. */
    for (struct call *c = s->calls; c; c = c->next) {
        if (c->chat_word[0] && c->task_name && (c->task || c->editor_req)) {
            snprintf(name, len, "%s", c->task_name);
            if (c->task) {
                task_cancel(c->task);
            } else {
                rpc_forget(s->h->rpc, c->editor_req);
                c->editor_req = 0;
                call_complete(c, NULL, "FORBIDDEN", "cancelled before it started");
            }
            return 1;
        }
    }
    return 0;
}

void calls_session_closed(struct session *s)
{
    struct call *c = s->calls;
    while (c) {
        struct call *next = c->next;
        call_detach(c);
        if (c->task) {
            /* The client is gone: its task goes too, whole group. */
            c->h->running_tasks--;
            task_abandon(c->task);
            /* Subscribers still hear of its end; the exit status is not
             * awaited, since the group is being killed. */
            struct task_result r = {.exit_code = -1,
                                    .signal = SIGKILL,
                                    .duration_ms = clock_mono_ms() - c->started_ms,
                                    .cancelled = 1};
            publish_task(c, EVENT_TASK_FINISHED, &r);
            c->task = NULL;
            call_free(c);
        } else if (c->editor_req) {
            rpc_forget(c->h->rpc, c->editor_req);
            call_free(c);
        }
        /* Worker calls stay on their job's list and are freed when it ends. */
        c = next;
    }
    s->calls = NULL;
}

void calls_drain(struct helper *h)
{
    if (h->pool)
        worker_pool_drain(h->pool);
}

int calls_running_tasks(const struct helper *h)
{
    return h->running_tasks;
}

int calls_init(struct helper *h, char *err, size_t errlen)
{
    loopio_task_loop(h, &h->task_loop);
    h->pool = worker_pool_new(WORKER_THREADS, WORKER_QUEUE_MAX, loopio_wake, h);
    if (!h->pool) {
        snprintf(err, errlen, "cannot start worker threads");
        return -1;
    }
    return 0;
}

void calls_shutdown(struct helper *h)
{
    worker_pool_free(h->pool);
    h->pool = NULL;
}
