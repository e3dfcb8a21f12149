/*
 * sio_events: the events of the Claude Code Socket.IO server, for clients
 * that speak Socket.IO (server/eio.c): chat_message to the agent
 * conversation named by sessionId, broadcast to the session's room;
 * terminal_command running a configured task (never an arbitrary command)
 * with its output as terminal_output; tts_notification both ways (notify
 * events); join_session / join_project rooms; system_status; acks. Each
 * event is turned into the same internal calls a /ws client makes (agents,
 * dispatch, events), so scopes, rate limits, approvals and events apply.
 * The native messages those calls answer with come back through
 * sio_events_outgoing and become events.
 *
 * Ownership: a client's rooms (struct sio_rooms) are made on its first
 * join and freed by sio_events_client_gone; env members are borrowed.
 */
#ifndef COMPANION_SIO_EVENTS_H
#define COMPANION_SIO_EVENTS_H

#include <json-c/json.h>
#include <stdint.h>

struct agents;
struct client;
struct dispatch;
struct events;
struct settings;

/* Borrowed from the data plane for one call. */
struct sio_events_env {
    const struct settings *st;
    struct dispatch *dispatch;
    struct agents *agents;
    struct events *events;
    struct client **clients; /* the list head */
};

/* A Socket.IO client authenticated (CONNECT accepted): hears notify. */
void sio_events_connected(const struct sio_events_env *env, struct client *c);
/* One EVENT (rate limit already taken): args is [name, ...], borrowed. */
void sio_events_event(const struct sio_events_env *env, struct client *c, const char *name,
                      json_object *args, int64_t ack);
/* A native message (owned) queued for a Socket.IO client. */
void sio_events_outgoing(const struct sio_events_env *env, struct client *c, json_object *msg);
void sio_events_client_gone(struct client *c);

#endif
