/*
 * client: what the data plane knows of one WebSocket session (the
 * transport's is in server/): who it is (user, scopes, token expiry), what
 * it started (commands still running), what it listens to (events, chat
 * notifications), and its rate limit. Owned by dataplane.c: made when the
 * session opens, freed when it closes; other app/ files borrow it.
 */
#ifndef COMPANION_CLIENT_H
#define COMPANION_CLIENT_H

#include <stdint.h>

#include "core/ratelimit.h"

struct session;
struct call;
struct sio_rooms;

struct client {
    struct client *prev, *next; /* in the data plane's list */
    struct session *s;
    int authed;
    char *user_id; /* malloc'd: the token's `sub` */
    unsigned scopes;
    int64_t exp_s;
    char token_key[65];    /* SHA-256 (hex) of the token: "the same token" for allow_always */
    char device_id[65];    /* the registry's id of the device (devices.h), "" before auth */
    struct call *calls;    /* commands still running (dispatch.c) */
    const char *chat_word; /* set while a chat message is being dispatched */
    unsigned event_mask;   /* subscribed event kinds (events.c) */
    int chat_notify;       /* "notify on": events as chat_reply text */
    int gone;              /* the session closed: nothing more is sent */
    struct ratelimit rl;
    struct sio_rooms *sio; /* Socket.IO rooms joined (sio_events.c) */
};

#endif
