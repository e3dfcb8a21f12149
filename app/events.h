/*
 * events: the workspace's event stream (PROTOCOL "Events").
 *
 * One sequence per workspace, a ring of the last events.historySize events,
 * and fan-out to subscribed sessions through their bounded outbound queues,
 * so a subscriber that does not read is closed 1008 by the queue limit and
 * never slows the others. subscribe / unsubscribe / since replay / resync.
 * A chat that said "notify on" receives task.finished and notify as
 * chat_reply text.
 */
#ifndef COMPANION_EVENTS_H
#define COMPANION_EVENTS_H

#include <json-c/json.h>
#include <stdint.h>

#include "core/metrics.h"

struct client;
struct settings;

enum event_kind {
    EVENT_TASK_STARTED = 1u << 0,
    EVENT_TASK_FINISHED = 1u << 1,
    EVENT_GIT_CHANGED = 1u << 2,
    EVENT_FILE_SAVED = 1u << 3,
    EVENT_NOTIFY = 1u << 4,
    EVENT_APPROVAL_REQUESTED = 1u << 5, /* only to clients with the approve scope */
    EVENT_APPROVAL_RESOLVED = 1u << 6,
    EVENT_AGENT_TURN_FINISHED = 1u << 7, /* only to clients with the agent scope */
    EVENT_FILE_CHANGED = 1u << 8,        /* a file in a workspace folder (app/filewatch.h) */
};
#define EVENT_ALL      0x1ffu
#define EVENT_APPROVAL (EVENT_APPROVAL_REQUESTED | EVENT_APPROVAL_RESOLVED)

struct event {
    uint64_t seq;
    enum event_kind kind;
    json_object *payload;
};

struct events {
    struct event *ring;
    size_t cap, count, head;        /* head: index of the oldest */
    uint64_t seq;                   /* newest seq, 0 before any */
    struct client **clients;        /* borrowed: the data plane's list head */
    const struct settings *st;      /* borrowed: events.taskOutput */
    struct metrics_table published; /* by kind name, for GET /metrics */
};

/* clients and st are borrowed for the events' life. */
int events_init(struct events *ev, size_t cap, struct client **clients, const struct settings *st);
void events_free(struct events *ev);
/* Resizes the ring (events.historySize changed), keeping the newest. */
int events_resize(struct events *ev, size_t cap);

/* Records an event (payload owned) and pushes it to every subscriber. */
/* Returns how many sessions it was pushed to. */
int events_publish(struct events *ev, enum event_kind kind, json_object *payload);

/* {"type":"subscribe"|"unsubscribe"} from an authenticated client. */
void events_on_subscribe(struct events *ev, struct client *c, json_object *id, json_object *data,
                         int subscribe);
/* Chat "notify on|off". Returns the text to answer with. */
const char *events_chat_notify(struct client *c, int on);

const char *event_kind_name(enum event_kind kind);

/* text to c as chat_reply parts (4096 characters at most each, split
 * where a phone reads best); seq > 0 marks them as that event's. Any chat
 * answer goes this way, asked or not. */
void events_chat_reply(struct client *c, json_object *id, const char *text, int64_t seq);

#endif
