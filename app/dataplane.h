/*
 * dataplane: what the messages of a WebSocket session mean. The envelope
 * checks, authentication (first message, Authorization header or ?token=),
 * token refresh, ping, and command dispatch through workspace/command's
 * table with scope checks, rate limit and the audit notification.
 */
#ifndef COMPANION_DATAPLANE_H
#define COMPANION_DATAPLANE_H

#include <stddef.h>

struct session;

void dataplane_on_message(struct session *s, const char *msg, size_t len, int binary);
/* Right after the upgrade: authenticates from the header or query when the
 * client sent a token there. */
void dataplane_on_established(struct session *s);
void dataplane_session_closed(struct session *s);

#endif
