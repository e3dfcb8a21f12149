/*
 * A stand-in for the transport's sessions (server/server.h), for app/
 * tests: what a module sends is kept in order in `sent` instead of going
 * out on a socket, and a test can make a session closing, failing (a
 * full outbound queue: -1, as a slow consumer gets) or refusing one
 * message as too large. Included by one test program each; it defines
 * the seam's functions, so nothing of server/ is linked.
 */
#ifndef COMPANION_TEST_FAKE_SESSION_H
#define COMPANION_TEST_FAKE_SESSION_H

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "server/server.h"

struct session {
    char id[SESSION_ID_LEN + 1];
    int closing;   /* session_is_closing */
    int fail;      /* every send returns -1 and drops the message */
    int too_large; /* this many sends return SESSION_TOO_LARGE first */
    int attempts;  /* sends tried, including refused ones */
    json_object *sent;
};

static inline void fake_session_init(struct session *s, const char *id)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "%s", id);
    s->sent = json_object_new_array();
}

static inline void fake_session_clear(struct session *s)
{
    json_object_put(s->sent);
    s->sent = json_object_new_array();
    s->attempts = 0;
}

static inline void fake_session_free(struct session *s)
{
    json_object_put(s->sent);
    s->sent = NULL;
}

static inline size_t sent_n(const struct session *s)
{
    return json_object_array_length(s->sent);
}

static inline json_object *sent_at(const struct session *s, size_t i)
{
    return json_object_array_get_idx(s->sent, i);
}

/* msg.type of the i-th message sent. */
static inline const char *sent_type(const struct session *s, size_t i)
{
    json_object *t;
    if (!json_object_object_get_ex(sent_at(s, i), "type", &t))
        return "(no type)";
    return json_object_get_string(t);
}

/* msg.data of the i-th message sent (NULL when none). */
static inline json_object *sent_data(const struct session *s, size_t i)
{
    json_object *d = NULL;
    json_object_object_get_ex(sent_at(s, i), "data", &d);
    return d;
}

const char *session_id(const struct session *s)
{
    return s->id;
}

const char *session_remote(const struct session *s)
{
    return "127.0.0.1";
}

int session_is_closing(const struct session *s)
{
    return s->closing;
}

int session_send_obj(struct session *s, json_object *msg)
{
    s->attempts++;
    if (s->too_large > 0) {
        s->too_large--;
        json_object_put(msg);
        return SESSION_TOO_LARGE;
    }
    if (s->fail || s->closing) {
        json_object_put(msg);
        return -1;
    }
    json_object_array_add(s->sent, msg);
    return 0;
}

int session_send(struct session *s, const char *type, json_object *id, json_object *data)
{
    json_object *msg = json_object_new_object();
    json_object_object_add(msg, "type", json_object_new_string(type));
    if (id)
        json_object_object_add(msg, "id", json_object_get(id));
    if (data)
        json_object_object_add(msg, "data", data);
    return session_send_obj(s, msg);
}

void session_send_error(struct session *s, json_object *id, const char *code, const char *message)
{
    json_object *data = json_object_new_object();
    json_object_object_add(data, "code", json_object_new_string(code));
    json_object_object_add(data, "message", json_object_new_string(message));
    session_send(s, "error", id, data);
}

#endif
