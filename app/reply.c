/*
 * reply: JSON, chat text and the audit trail (see reply.h).
 */
#include "app/reply.h"

#include <stdlib.h>

#include "app/client.h"
#include "app/counters.h"
#include "app/editor_port.h"
#include "core/clock.h"
#include "server/server.h"
#include "workspace/chat.h"

void reply_command(struct client *c, json_object *id, json_object *result, const char *code,
                   const char *message)
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
        json_object_object_add(data, "error", err);
        json_object_put(result);
    } else {
        json_object_object_add(data, "result", result ? result : json_object_new_object());
    }
    if (session_send(c->s, "command_response", id, data) == SESSION_TOO_LARGE)
        reply_command(c, id, NULL, "RESULT_TOO_LARGE",
                      "the answer is larger than limits.maxQueuedBytes: ask for less (maxBytes, "
                      "path)");
}

void reply_chat(struct client *c, json_object *id, const char *text, int64_t seq)
{
    if (c->gone)
        return;
    char **parts = NULL;
    size_t n = chat_split(text, &parts);
    for (size_t i = 0; i < n; i++) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "text", json_object_new_string(parts[i]));
        json_object_object_add(d, "part", json_object_new_int((int)i + 1));
        json_object_object_add(d, "parts", json_object_new_int((int)n));
        if (seq > 0)
            json_object_object_add(d, "event", json_object_new_int64(seq));
        session_send(c->s, "chat_reply", id, d);
    }
    chat_parts_free(parts, n);
}

void reply_audit(const struct reply_env *env, const struct client *c, const char *name, int ok,
                 int64_t started_ms)
{
    if (!env->editor->attached(env->editor->ud))
        return;
    json_object *n = json_object_new_object();
    json_object_object_add(n, "sessionId", json_object_new_string(session_id(c->s)));
    json_object_object_add(n, "userId", json_object_new_string(c->user_id ? c->user_id : ""));
    json_object_object_add(n, "name", json_object_new_string(name));
    json_object_object_add(n, "success", json_object_new_boolean(ok));
    json_object_object_add(n, "durationMs", json_object_new_int64(clock_mono_ms() - started_ms));
    env->editor->notify(env->editor->ud, "companion/commandExecuted", n);
}

void reply_outcome(const struct reply_env *env, struct client *c, json_object *id,
                   const char *chat_word, const char *name, json_object *result, const char *code,
                   const char *message, int64_t started_ms)
{
    if (c->gone) {
        json_object_put(result);
        return;
    }
    if (code)
        env->counters->command_errors++;
    if (chat_word && chat_word[0]) {
        char *text = code ? chat_format_error(chat_word, code, message)
                          : chat_format_result(chat_word, name, result);
        reply_chat(c, id, text ? text : "Something went wrong.", 0);
        free(text);
        json_object_put(result);
    } else {
        reply_command(c, id, result, code, message);
    }
    reply_audit(env, c, name, code == NULL, started_ms);
}
