/*
 * calls: commands that answer later. Worker jobs (git, files) with identical
 * concurrent git.status calls sharing one run; task runs streamed to their
 * session; editor actions forwarded as editor/... requests. A call holds its
 * session weakly: when the session goes, its tasks are killed, its editor
 * requests forgotten, and worker results are dropped on arrival.
 */
#ifndef COMPANION_CALLS_H
#define COMPANION_CALLS_H

#include <json-c/json.h>
#include <stdint.h>

#include "workspace/command.h"

struct helper;
struct session;
struct call;

int calls_init(struct helper *h, char *err, size_t errlen);
/* Kills every task at once and drops all calls (the helper is exiting). */
void calls_shutdown(struct helper *h);
/* Runs a command for session s (scope already checked). chat_word non-NULL:
 * a chat message asked, so answers are chat_reply text. */
void calls_dispatch(struct session *s, const struct cmd_def *def, json_object *id,
                    json_object *args, const char *chat_word);
/* Sends text as chat_reply parts of at most 4096 characters; with seq > 0
 * each part carries data.event = seq (an event pushed to a chat). */
void calls_chat_send(struct session *s, json_object *id, const char *text);
void calls_chat_send_event(struct session *s, json_object *id, const char *text, int64_t seq);
/* chat `cancel`: the session's latest chat-started task. 0 when none. */
int calls_chat_cancel(struct session *s, char *name, size_t len);
/* The session is closing: detach and end what it started. */
void calls_session_closed(struct session *s);
/* Worker results are ready (from the loop's wake-up). */
void calls_drain(struct helper *h);
int calls_running_tasks(const struct helper *h);
/* Runs a worker command for the helper itself (args owned); done(ud, ...)
 * runs on the loop, also when the pool is freed (CMD_ERROR). -1 when it
 * could not be queued (done is not called then). */
int calls_run_internal(struct helper *h, const char *name, json_object *args,
                       void (*done)(void *ud, enum cmd_status st, struct cmd_result *res),
                       void *ud);

/* Shared by the sync and async paths of dataplane.c. */
void calls_reply(struct session *s, json_object *id, json_object *result, const char *code,
                 const char *message);
void calls_audit(struct session *s, const char *name, int ok, int64_t started_ms);

#endif
