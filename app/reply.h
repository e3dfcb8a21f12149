/*
 * reply: how an answer reaches a client, whatever produced it. A command's
 * outcome becomes a `command_response` (JSON) or, when a chat message asked,
 * `chat_reply` text written for a phone (in 4096-character parts); every
 * command's outcome also goes to the editor's audit trail
 * (`companion/commandExecuted`). Counts errors.
 */
#ifndef COMPANION_REPLY_H
#define COMPANION_REPLY_H

#include <json-c/json.h>
#include <stdint.h>

struct app_counters;
struct client;
struct editor_port;

struct reply_env {
    const struct editor_port *editor;
    struct app_counters *counters;
};

/* {type:"command_response", id, data:{success, result | error:{code,
 * message}}} (result owned; code NULL: success). An answer too large for
 * the client's queue becomes RESULT_TOO_LARGE. */
void reply_command(struct client *c, json_object *id, json_object *result, const char *code,
                   const char *message);
/* text as chat_reply parts; seq > 0 marks them as that event's. */
void reply_chat(struct client *c, json_object *id, const char *text, int64_t seq);
/* companion/commandExecuted to the editor. */
void reply_audit(const struct reply_env *env, const struct client *c, const char *name, int ok,
                 int64_t started_ms);

/* A command's outcome to c as it asked (chat_word: chat text, else JSON),
 * counted and audited. result owned. */
void reply_outcome(const struct reply_env *env, struct client *c, json_object *id,
                   const char *chat_word, const char *name, json_object *result, const char *code,
                   const char *message, int64_t started_ms);

#endif
