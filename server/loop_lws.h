/*
 * loop_lws: what server/ files (and only they) need of the loop's
 * libwebsockets side: the context, to make the WebSocket vhost on it, and
 * lws timers that fire on time with the libev loop.
 */
#ifndef COMPANION_LOOP_LWS_H
#define COMPANION_LOOP_LWS_H

#include <libwebsockets.h>

#include "server/loop.h"

struct lws_context *loop_lws_context(struct loop *l);
/* lws_sul_schedule, and sure to fire on time with the libev loop. */
void loop_sul_schedule(struct loop *l, lws_sorted_usec_list_t *sul, sul_cb_t cb, lws_usec_t us);

#endif
