/*
 * dispatch_impl: one command still running for a client, and the dispatcher's
 * state, shared by dispatch.c (bookkeeping, worker jobs, editor requests)
 * and dispatch_tasks.c (task runs). Internal to those two files.
 *
 * A call holds its client weakly: when the client goes its tasks are
 * killed, its editor requests forgotten, and worker results are dropped on
 * arrival. Ownership: a call is freed by call_complete (or call_free when
 * nothing is to be answered).
 */
#ifndef COMPANION_DISPATCH_IMPL_H
#define COMPANION_DISPATCH_IMPL_H

#include <json-c/json.h>
#include <stdint.h>

#include "app/dispatch.h"

struct task;
struct app_counters;
struct editor_port;

/* What an answer needs besides the client. */
struct reply_env {
    const struct editor_port *editor;
    struct app_counters *counters;
};

/* A command's outcome to c as it asked (chat_word: chat text, else JSON),
 * counted and audited. result owned. */
void dispatch_reply_outcome(const struct reply_env *env, struct client *c, json_object *id,
                            const char *chat_word, const char *name, json_object *result,
                            const char *code, const char *message, int64_t started_ms);
struct cmd_job;
struct worker_pool;

struct dispatch {
    struct dispatch_env env;
    struct reply_env reply;
    struct worker_pool *pool;
    struct cmd_job *inflight; /* coalescable worker jobs still running */
    struct gitwatch *gitwatch;
    int running_tasks;
};

struct call {
    struct call *prev, *next; /* in the client's list */
    struct dispatch *d;
    struct client *c; /* NULL once the client is gone */
    json_object *id;
    const struct cmd_def *def;
    int64_t started_ms;
    struct call *next_waiter; /* a worker job's callers */
    struct task *task;
    char *task_name;
    int64_t editor_req;  /* our outgoing request id, 0 when none */
    int64_t approval_id; /* the approval it waits for, 0 when none */
    int cancelled;       /* its client cancelled it before it started */
    char chat_word[16];  /* non-empty: a chat message asked, answer in text */
    char *tail;          /* task runs: the last output, for chat and task.finished */
    size_t tail_len;
    char *user; /* who asked (kept when the client goes) */
};

/* NULL when out of memory. */
struct call *call_new(struct dispatch *d, struct client *c, const struct cmd_def *def,
                      json_object *id);
void call_free(struct call *call);
/* Answers (result owned) and frees the call. */
void call_complete(struct call *call, json_object *result, const char *code, const char *message);
/* Answers at once through a call, so chat and audit work the same way. */
void call_answer_now(struct dispatch *d, struct client *c, const struct cmd_def *def,
                     json_object *id, json_object *result, const char *code, const char *message);

/* dispatch_tasks.c */
void tasks_dispatch(struct dispatch *d, struct client *c, const struct cmd_def *def,
                    json_object *id, json_object *args);
/* The client went: its running task goes too, whole group. */
void tasks_abandon(struct call *call);
/* Stops a call that has not started its task (waiting for approval). */
void tasks_cancel_waiting(struct call *call);

#endif
