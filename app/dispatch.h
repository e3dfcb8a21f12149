/*
 * dispatch: running a command for a client once its scope is checked, the
 * way the command table says: synchronous handlers on the loop; worker jobs
 * (git, files) on the worker pool it owns, identical concurrent calls of a
 * coalescing command sharing one run, and a watched folder's git.status
 * from the git watcher's cache; tasks (dispatch_tasks.c); editor actions forwarded
 * through the editor port. It also owns how an answer reaches a client:
 * a `command_response` (JSON), or chat text through events_chat_reply(),
 * and every outcome in the editor's audit trail (`companion/commandExecuted`).
 */
#ifndef COMPANION_DISPATCH_H
#define COMPANION_DISPATCH_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

struct app_counters;
struct approvals;
struct client;
struct cmd_def;
struct dispatch;
struct editor_port;
struct events;
struct gitwatch;
struct logger;
struct settings;
struct task_loop;
struct worker_pool;
struct workspace;

/* Borrowed, all of them, for the dispatcher's life. */
struct dispatch_env {
    struct logger *log;
    const struct settings *st;
    const struct workspace *ws;
    struct app_counters *counters;
    const struct editor_port *editor;
    struct events *events;
    const struct task_loop *tasks;
    struct approvals *approvals;
    /* Wakes the loop from a worker thread (then call dispatch_drain). */
    void (*wake)(void *ud);
    void *wake_ud;
    /* A command that changes files (cmd_def.changes_files) succeeded: its
     * args and result, borrowed. May be NULL. */
    void (*file_changed)(void *ud, json_object *args, json_object *result);
    void *file_changed_ud;
};

struct dispatch *dispatch_new(const struct dispatch_env *env, char *err, size_t errlen);
/* Ends every worker job (their callers hear "stopping") and frees d. */
void dispatch_free(struct dispatch *d);

/* Runs a command for c (scope already checked). chat_word non-NULL: a chat
 * message asked, so answers are chat_reply text. */
void dispatch_command(struct dispatch *d, struct client *c, const struct cmd_def *def,
                      json_object *id, json_object *args, const char *chat_word);
/* chat `cancel`: the client's latest chat-started task; its name in name.
 * 0 when none. */
int dispatch_chat_cancel(struct dispatch *d, struct client *c, char *name, size_t len);
/* The client is going: detach and end what it started. */
void dispatch_client_gone(struct dispatch *d, struct client *c);
/* Worker results are ready (after the wake-up). */
void dispatch_drain(struct dispatch *d);

struct worker_pool *dispatch_pool(struct dispatch *d);
/* Tasks running now (for GET /metrics). */
int dispatch_running_tasks(const struct dispatch *d);
/* The watcher whose cache answers watched git.status calls (NULL: none). */
void dispatch_set_gitwatch(struct dispatch *d, struct gitwatch *gw);

/* {type:"command_response", id, data:{success, result | error:{code,
 * message, data}}} (result owned; code NULL: success; with a code, a
 * non-NULL result is the error's data). An answer too large for the
 * client's queue becomes RESULT_TOO_LARGE. */
void dispatch_reply_command(struct client *c, json_object *id, json_object *result,
                            const char *code, const char *message);
/* companion/commandExecuted to the editor (when one is attached). */
void dispatch_reply_audit(const struct editor_port *editor, const struct client *c,
                          const char *name, int ok, int64_t started_ms);

#endif
