/*
 * dataplane: what the messages of a WebSocket session mean. It implements
 * the transport's session_handler: a client is made when a session opens
 * (authenticated at once when the upgrade carried a token), each message
 * goes through the envelope checks, authentication, token refresh, ping,
 * subscriptions, chat words and commands (scope checks, rate limit), and
 * the client goes with its session. Commands run through dispatch.c.
 *
 * Ownership: the clients are the data plane's, in the list whose head the
 * caller hands in (events.c walks it too); the env's members are borrowed.
 */
#ifndef COMPANION_DATAPLANE_H
#define COMPANION_DATAPLANE_H

#include <json-c/json.h>

struct agents;
struct app_counters;
struct client;
struct dataplane;
struct devices;
struct dispatch;
struct editor_port;
struct events;
struct logger;
struct session_handler;
struct settings;
struct workspace;

struct dataplane_env {
    struct logger *log;
    const struct settings *st;
    const struct workspace *ws;
    struct app_counters *counters;
    const struct editor_port *editor;
    struct events *events;
    struct dispatch *dispatch;
    struct agents *agents;
    struct client **clients; /* the list head */
    struct devices *devices; /* the device registry: admission and revocation */
};

struct dataplane *dataplane_new(const struct dataplane_env *env);
void dataplane_free(struct dataplane *dp);
/* The transport's callbacks, bound to dp. */
void dataplane_handler(struct dataplane *dp, struct session_handler *out);

/* [{sessionId, userId, deviceId, deviceName, remoteAddress, connectedAt,
 * scopes, expiresAt}] of the authenticated clients, for server/status. */
json_object *dataplane_clients_json(const struct dataplane *dp);
/* Live authenticated sessions of that device. */
int dataplane_device_sessions(const struct dataplane *dp, const char *device_id);
/* Closes (4001) the sessions of devices the registry says are revoked;
 * returns how many. */
int dataplane_close_revoked(struct dataplane *dp);
/* The client of that session id, or NULL. */
struct client *dataplane_find(const struct dataplane *dp, const char *session_id);

#endif
