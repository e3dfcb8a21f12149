/*
 * calls: asynchronous commands (see calls.h).
 */
#include "helper/calls.h"

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "helper/helper.h"
#include "helper/loopio.h"
#include "helper/session.h"
#include "workspace/git_ctx.h"
#include "workspace/task.h"
#include "workspace/worker.h"

#define WORKER_THREADS 2
#define WORKER_QUEUE_MAX 256
#define EDITOR_TIMEOUT_MS 10000
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
};

struct cmd_job {
    struct worker_job base;
    struct helper *h;
    const struct cmd_def *def;
    json_object *args;
    struct workspace_folder *folders;
    size_t n_folders;
    char *key;
    struct call *waiters;
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
    c->started_ms = helper_now_ms();
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
    free(c);
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
    session_send(s, "command_response", id, data);
}

void calls_audit(struct session *s, const char *name, int ok, int64_t started_ms)
{
    json_object *n = json_object_new_object();
    json_object_object_add(n, "sessionId", json_object_new_string(s->id));
    json_object_object_add(n, "userId", json_object_new_string(s->user_id ? s->user_id : ""));
    json_object_object_add(n, "name", json_object_new_string(name));
    json_object_object_add(n, "success", json_object_new_boolean(ok));
    json_object_object_add(n, "durationMs", json_object_new_int64(helper_now_ms() - started_ms));
    control_notify(s->h, "companion/commandExecuted", n);
}

/* Answers and frees the call (result owned). */
static void call_complete(struct call *c, json_object *result, const char *code,
                          const char *message)
{
    if (c->s) {
        if (code)
            c->h->counters.command_errors++;
        calls_reply(c->s, c->id, result, code, message);
        calls_audit(c->s, c->def->name, code == NULL, c->started_ms);
    } else {
        json_object_put(result);
    }
    call_free(c);
}

/* ---- worker jobs ---- */

static void job_run(struct worker_thread *t, struct worker_job *base)
{
    struct cmd_job *j = (struct cmd_job *)base;
    j->st = j->def->wfn(t, j->def->name, j->folders, j->n_folders, j->args, &j->res);
}

static void job_free(struct cmd_job *j)
{
    for (size_t i = 0; i < j->n_folders; i++) {
        free(j->folders[i].name);
        free(j->folders[i].path);
    }
    free(j->folders);
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
    struct call *c = j->waiters;
    while (c) {
        struct call *next = c->next_waiter;
        if (cancelled)
            call_complete(c, NULL, "PROCESSING_ERROR", "the helper is stopping");
        else if (j->st == CMD_OK)
            call_complete(c, json_object_get(j->res.result), NULL, NULL);
        else
            call_complete(c, NULL, j->res.code ? j->res.code : "PROCESSING_ERROR",
                          j->res.message);
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

static void dispatch_worker(struct session *s, const struct cmd_def *def, json_object *id,
                            json_object *args)
{
    struct helper *h = s->h;
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
    /* The worker gets its own copies: json-c and our folder list are not
     * shared across threads. */
    j->args = args ? json_object_get(NULL) : NULL;
    if (args && json_object_deep_copy(args, &j->args, NULL) != 0)
        j->args = NULL;
    j->folders = calloc(h->ws.n_folders ? h->ws.n_folders : 1, sizeof(*j->folders));
    for (size_t i = 0; j->folders && i < h->ws.n_folders; i++) {
        j->folders[i].name = strdup(h->ws.folders[i].name);
        j->folders[i].path = strdup(h->ws.folders[i].path);
        j->n_folders++;
    }
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

static void task_output(void *ud, enum task_stream stream, const char *text, size_t len)
{
    struct call *c = ud;
    json_object *d = json_object_new_object();
    json_object_object_add(d, "stream",
                           json_object_new_string(stream == TASK_STDOUT ? "stdout" : "stderr"));
    json_object_object_add(d, "text", json_object_new_string_len(text, (int)len));
    stream_send(c, "stream_chunk", d);
}

static void task_finished(void *ud, const struct task_result *r)
{
    struct call *c = ud;
    struct helper *h = c->h;
    h->running_tasks--;
    json_object *d = json_object_new_object();
    json_object_object_add(d, "exitCode", r->signal ? NULL : json_object_new_int(r->exit_code));
    json_object_object_add(d, "signal", r->signal ? json_object_new_string(sigabbrev_np(r->signal)
                                                                                ? sigabbrev_np(r->signal)
                                                                                : "UNKNOWN")
                                                  : NULL);
    json_object_object_add(d, "durationMs", json_object_new_int64(r->duration_ms));
    json_object_object_add(d, "truncated", json_object_new_boolean(r->truncated));
    json_object_object_add(d, "timedOut", json_object_new_boolean(r->timed_out));
    json_object_object_add(d, "cancelled", json_object_new_boolean(r->cancelled));
    log_msg(&h->log, LOG_INFO, "task %s ended: exit %d signal %d in %lld ms", c->task_name,
            r->exit_code, r->signal, (long long)r->duration_ms);
    stream_send(c, "stream_end", d);
    if (c->s)
        calls_audit(c->s, c->def->name, r->exit_code == 0, c->started_ms);
    task_free(c->task);
    c->task = NULL;
    call_free(c);
}

/* Resolves the task's cwd inside the first folder. */
static int task_cwd(struct helper *h, const struct settings_task *t, char *out, size_t len,
                    const char **code, char *msg, size_t msglen)
{
    if (h->ws.n_folders == 0) {
        *code = "NOT_FOUND";
        snprintf(msg, msglen, "no workspace folder to run in");
        return -1;
    }
    const char *root = h->ws.folders[0].path;
    char joined[PATH_MAX];
    snprintf(joined, sizeof(joined), "%s/%s", root, t->cwd ? t->cwd : ".");
    if (!realpath(joined, out)) {
        *code = "NOT_FOUND";
        snprintf(msg, msglen, "the task's cwd %s does not exist", t->cwd ? t->cwd : ".");
        return -1;
    }
    size_t rl = strlen(root);
    if (strncmp(out, root, rl) != 0 || (out[rl] != '/' && out[rl] != '\0')) {
        *code = "FORBIDDEN";
        snprintf(msg, msglen, "the task's cwd leaves the workspace");
        return -1;
    }
    (void)len;
    return 0;
}

static void task_begin(struct call *c)
{
    struct helper *h = c->h;
    const struct settings_task *t = settings_find_task(&h->settings, c->task_name);
    const char *code = NULL;
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
    if (task_cwd(h, t, cwd, sizeof(cwd), &code, msg, sizeof(msg)) < 0) {
        call_complete(c, NULL, code, msg);
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
    log_msg(&h->log, LOG_INFO, "task %s started for %s (pid %d)", t->name, c->s->user_id,
            (int)task_pid(c->task));
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
    return h->mode == HELPER_MODE_STDIO && h->rpc && h->initialized && h->stdout_wsi &&
           !h->exiting;
}

static void dispatch_task_run(struct session *s, const struct cmd_def *def, json_object *id,
                              json_object *args)
{
    struct helper *h = s->h;
    json_object *name = NULL;
    if (!args || !json_object_object_get_ex(args, "name", &name) ||
        !json_object_is_type(name, json_type_string)) {
        calls_reply(s, id, NULL, "INVALID_ARGS", "args.name: expected a task name");
        return;
    }
    const struct settings_task *t = settings_find_task(&h->settings, json_object_get_string(name));
    if (!t) {
        calls_reply(s, id, NULL, "NOT_FOUND", "no such task (see task.list)");
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
    c->editor_req = rpc_request(h->rpc, "editor/confirm", p, helper_now_ms(), CONFIRM_TIMEOUT_MS,
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

static void dispatch_task_cancel(struct session *s, json_object *id, json_object *args)
{
    json_object *target = NULL;
    if (!args || !json_object_object_get_ex(args, "id", &target) ||
        !(json_object_is_type(target, json_type_string) ||
          json_object_is_type(target, json_type_int))) {
        calls_reply(s, id, NULL, "INVALID_ARGS", "args.id: expected the id of a task.run request");
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
            calls_reply(s, id, r, NULL, NULL);
            return;
        }
    }
    calls_reply(s, id, NULL, "NOT_FOUND", "no running task with that id in this session");
}

/* ---- entry points ---- */

void calls_dispatch(struct session *s, const struct cmd_def *def, json_object *id,
                    json_object *args)
{
    struct helper *h = s->h;
    switch (def->kind) {
    case CMD_KIND_WORKER:
        dispatch_worker(s, def, id, args);
        return;
    case CMD_KIND_TASK:
        if (strcmp(def->name, "task.list") == 0) {
            calls_reply(s, id, task_list_json(&h->settings), NULL, NULL);
            calls_audit(s, def->name, 1, helper_now_ms());
        } else if (strcmp(def->name, "task.run") == 0) {
            dispatch_task_run(s, def, id, args);
        } else {
            dispatch_task_cancel(s, id, args);
        }
        return;
    default:
        calls_reply(s, id, NULL, "UNKNOWN_COMMAND", "unknown command");
        return;
    }
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
