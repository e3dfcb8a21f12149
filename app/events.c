/*
 * events: the ring, the fan-out and subscriptions (see events.h).
 */
#include "app/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/client.h"
#include "core/auth.h"
#include "core/clock.h"
#include "core/settings.h"
#include "server/server.h"
#include "workspace/chat.h"

static const struct {
    enum event_kind kind;
    const char *name;
} kinds[] = {
    {EVENT_TASK_STARTED, "task.started"},
    {EVENT_TASK_FINISHED, "task.finished"},
    {EVENT_GIT_CHANGED, "git.changed"},
    {EVENT_FILE_SAVED, "file.saved"},
    {EVENT_NOTIFY, "notify"},
    {EVENT_APPROVAL_REQUESTED, "approval.requested"},
    {EVENT_APPROVAL_RESOLVED, "approval.resolved"},
    {EVENT_AGENT_TURN_FINISHED, "agent.turn_finished"},
    {EVENT_FILE_CHANGED, "file.changed"},
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

const char *event_kind_name(enum event_kind kind)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (kinds[i].kind == kind)
            return kinds[i].name;
    return "unknown";
}

static unsigned kind_from_name(const char *name)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (strcmp(kinds[i].name, name) == 0)
            return kinds[i].kind;
    return 0;
}

int events_init(struct events *ev, size_t cap, struct client **clients, const struct settings *st)
{
    memset(ev, 0, sizeof(*ev));
    ev->clients = clients;
    ev->st = st;
    ev->ring = calloc(cap, sizeof(*ev->ring));
    if (!ev->ring)
        return -1;
    ev->cap = cap;
    return 0;
}

void events_free(struct events *ev)
{
    for (size_t i = 0; i < ev->count; i++)
        json_object_put(ev->ring[(ev->head + i) % ev->cap].payload);
    free(ev->ring);
    ev->ring = NULL;
    ev->cap = ev->count = ev->head = 0;
}

int events_resize(struct events *ev, size_t cap)
{
    if (cap == ev->cap)
        return 0;
    struct event *ring = calloc(cap, sizeof(*ring));
    if (!ring)
        return -1;
    /* Keep the newest events that fit. */
    size_t keep = ev->count < cap ? ev->count : cap;
    for (size_t i = 0; i < ev->count; i++) {
        struct event *e = &ev->ring[(ev->head + i) % ev->cap];
        if (i < ev->count - keep)
            json_object_put(e->payload);
        else
            ring[i - (ev->count - keep)] = *e;
    }
    free(ev->ring);
    ev->ring = ring;
    ev->cap = cap;
    ev->count = keep;
    ev->head = 0;
    return 0;
}

/* 1 when s must not see e's task output (events.taskOutput "own" and
 * another user's task). */
static int hide_tail(const struct events *ev, const struct client *c, const struct event *e)
{
    json_object *u = NULL;
    if (!ev->st || ev->st->task_output != TASK_OUTPUT_OWN || e->kind != EVENT_TASK_FINISHED)
        return 0;
    return !json_object_object_get_ex(e->payload, "userId", &u) || !c->user_id ||
           strcmp(json_object_get_string(u), c->user_id) != 0;
}

static json_object *event_message(const struct event *e, int no_tail)
{
    json_object *d = json_object_new_object();
    json_object *payload = json_object_get(e->payload);
    if (no_tail) {
        json_object *copy = NULL;
        json_object_put(payload);
        payload = json_object_deep_copy(e->payload, &copy, NULL) == 0 ? copy : NULL;
        if (payload)
            json_object_object_del(payload, "tail");
    }
    json_object_object_add(d, "event", json_object_new_string(event_kind_name(e->kind)));
    json_object_object_add(d, "seq", json_object_new_int64((int64_t)e->seq));
    json_object_object_add(d, "payload", payload);
    json_object *m = json_object_new_object();
    json_object_object_add(m, "type", json_object_new_string("event"));
    json_object_object_add(m, "data", d);
    return m;
}

static const char *str_field(json_object *o, const char *key, const char *dflt)
{
    json_object *v = NULL;
    if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return dflt;
}

static int64_t int_field(json_object *o, const char *key, int64_t dflt)
{
    json_object *v = NULL;
    if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int))
        return json_object_get_int64(v);
    return dflt;
}

/* The text a phone gets for an event in "notify on" mode. */
static char *chat_text(const struct event *e, int no_tail)
{
    json_object *p = e->payload, *v = NULL;
    if (e->kind == EVENT_TASK_FINISHED) {
        int exit_code = (int)int_field(p, "exitCode", -1);
        const char *sig = str_field(p, "signal", NULL);
        int timed_out = json_object_object_get_ex(p, "timedOut", &v) && json_object_get_boolean(v);
        int cancelled = json_object_object_get_ex(p, "cancelled", &v) && json_object_get_boolean(v);
        int truncated = json_object_object_get_ex(p, "truncated", &v) && json_object_get_boolean(v);
        return chat_format_task_end(str_field(p, "name", "task"), exit_code, sig,
                                    int_field(p, "durationMs", 0), timed_out, cancelled,
                                    no_tail ? NULL : str_field(p, "tail", NULL), truncated);
    }
    if (e->kind == EVENT_APPROVAL_REQUESTED)
        return chat_format_approval(p, clock_wall_ms() / 1000);
    if (e->kind == EVENT_APPROVAL_RESOLVED)
        return chat_format_approval_resolved(p);
    const char *title = str_field(p, "title", ""), *msg = str_field(p, "message", "");
    size_t n = strlen(title) + strlen(msg) + 16;
    char *t = malloc(n);
    if (t)
        snprintf(t, n, "🔔 %s%s%s", title, *title && *msg ? ": " : "", msg);
    return t;
}

static void chat_push(const struct events *ev, struct client *c, const struct event *e)
{
    char *text = chat_text(e, hide_tail(ev, c, e));
    if (!text)
        return;
    events_chat_reply(c, NULL, text, (int64_t)e->seq);
    free(text);
}

#define CHAT_KINDS (EVENT_TASK_FINISHED | EVENT_NOTIFY | EVENT_APPROVAL)

/* The scope an event kind needs: approvals go only to those who may answer
 * them, agents' turns to those who may prompt them, everything else to
 * readers. */
static unsigned kind_scope(unsigned kind)
{
    if (kind & EVENT_APPROVAL)
        return AUTH_SCOPE_APPROVE;
    return (kind & EVENT_AGENT_TURN_FINISHED) ? AUTH_SCOPE_AGENT : AUTH_SCOPE_READ;
}

static const char *scope_name(unsigned scope)
{
    return scope == AUTH_SCOPE_APPROVE ? "approve" : scope == AUTH_SCOPE_AGENT ? "agent" : "read";
}

static int may_receive(const struct client *c, unsigned kind)
{
    return c->authed && !c->gone && !session_is_closing(c->s) && (c->scopes & kind_scope(kind));
}

int events_publish(struct events *ev, enum event_kind kind, json_object *payload)
{
    metrics_table_add_literal(&ev->published, event_kind_name(kind), 1);
    if (!ev->cap) {
        json_object_put(payload);
        return 0;
    }
    if (ev->count == ev->cap) {
        json_object_put(ev->ring[ev->head].payload);
        ev->head = (ev->head + 1) % ev->cap;
        ev->count--;
    }
    struct event *e = &ev->ring[(ev->head + ev->count) % ev->cap];
    e->seq = ++ev->seq;
    e->kind = kind;
    e->payload = payload;
    ev->count++;

    int delivered = 0;
    json_object *msg[2] = {NULL, NULL}; /* with and without the task's output */
    for (struct client *c = *ev->clients; c; c = c->next) {
        if (!may_receive(c, kind))
            continue;
        if (c->event_mask & kind) {
            int hide = hide_tail(ev, c, e);
            if (!msg[hide])
                msg[hide] = event_message(e, hide);
            /* Each session gets its own copy of the envelope: session_send_obj
             * adds a timestamp and takes ownership. */
            json_object *copy = NULL;
            if (json_object_deep_copy(msg[hide], &copy, NULL) == 0 &&
                session_send_obj(c->s, copy) == 0)
                delivered++;
        }
        if (c->chat_notify && (kind & CHAT_KINDS)) {
            chat_push(ev, c, e);
            delivered++;
        }
    }
    json_object_put(msg[0]);
    json_object_put(msg[1]);
    return delivered;
}

static json_object *mask_names(unsigned mask)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < N_KINDS; i++)
        if (mask & kinds[i].kind)
            json_object_array_add(arr, json_object_new_string(kinds[i].name));
    return arr;
}

void events_on_subscribe(struct events *ev, struct client *c, json_object *id, json_object *data,
                         int subscribe)
{
    struct session *s = c->s;
    json_object *list = NULL, *since_o = NULL;
    if (!(c->scopes & (AUTH_SCOPE_READ | AUTH_SCOPE_APPROVE | AUTH_SCOPE_AGENT))) {
        session_send_error(s, id, "FORBIDDEN", "events need the read scope");
        return;
    }
    if (!data || !json_object_object_get_ex(data, "events", &list) ||
        !json_object_is_type(list, json_type_array)) {
        session_send_error(s, id, "INVALID_MESSAGE", "data.events: expected an array of names");
        return;
    }
    unsigned mask = 0;
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *n = json_object_array_get_idx(list, i);
        unsigned k = json_object_is_type(n, json_type_string)
                         ? kind_from_name(json_object_get_string(n))
                         : 0;
        if (!k) {
            char msg[96];
            snprintf(msg, sizeof(msg), "data.events[%zu]: not an event name", i);
            session_send_error(s, id, "INVALID_MESSAGE", msg);
            return;
        }
        if (subscribe && !(c->scopes & kind_scope(k))) {
            char msg[120];
            snprintf(msg, sizeof(msg), "%s needs the %s scope", json_object_get_string(n),
                     scope_name(kind_scope(k)));
            session_send_error(s, id, "FORBIDDEN", msg);
            return;
        }
        mask |= k;
    }
    int64_t since = -1;
    if (subscribe && json_object_object_get_ex(data, "since", &since_o) &&
        !json_object_is_type(since_o, json_type_null)) {
        if (!json_object_is_type(since_o, json_type_int) || json_object_get_int64(since_o) < 0) {
            session_send_error(s, id, "INVALID_MESSAGE", "data.since: expected a sequence number");
            return;
        }
        since = json_object_get_int64(since_o);
    }
    if (!subscribe) {
        c->event_mask &= ~mask;
        session_send(s, "unsubscribed", id, NULL);
        return;
    }
    c->event_mask |= mask;
    json_object *d = json_object_new_object();
    json_object_object_add(d, "events", mask_names(c->event_mask));
    json_object_object_add(d, "seq", json_object_new_int64((int64_t)ev->seq));
    session_send(s, "subscribed", id, d);
    if (since < 0)
        return;

    uint64_t oldest = ev->count ? ev->ring[ev->head].seq : ev->seq + 1;
    /* Events after `since` are gone, or `since` comes from an earlier run of
     * the helper (its sequence restarted): the client must resynchronise. */
    if ((uint64_t)since + 1 < oldest || (uint64_t)since > ev->seq) {
        json_object *rd = json_object_new_object();
        json_object_object_add(rd, "event", json_object_new_string("resync"));
        json_object_object_add(rd, "seq", json_object_new_int64((int64_t)(oldest - 1)));
        session_send(s, "event", NULL, rd);
        if ((uint64_t)since > ev->seq)
            since = (int64_t)oldest - 1;
    }
    for (size_t i = 0; i < ev->count; i++) {
        const struct event *e = &ev->ring[(ev->head + i) % ev->cap];
        if (e->seq > (uint64_t)since && (e->kind & c->event_mask))
            if (session_send_obj(s, event_message(e, hide_tail(ev, c, e))) < 0)
                return;
    }
}

const char *events_chat_notify(struct client *c, int on)
{
    c->chat_notify = on;
    return on ? "Notifications on: you will hear when a task ends and when the editor sends one."
              : "Notifications off.";
}

void events_chat_reply(struct client *c, json_object *id, const char *text, int64_t seq)
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
