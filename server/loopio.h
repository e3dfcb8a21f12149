/*
 * loopio: the event-loop services workspace/ code uses without knowing lws:
 * fd watchers (adopted raw files) and one-shot timers (lws_sul), packaged
 * as a struct task_loop; and the worker pool's wake-up (lws_cancel_service,
 * the one lws call that is safe from another thread).
 */
#ifndef COMPANION_LOOPIO_H
#define COMPANION_LOOPIO_H

#include <libwebsockets.h>

#include "workspace/task.h"

struct helper;

/* Fills `loop` with the helper's implementation. */
void loopio_task_loop(struct helper *h, struct task_loop *loop);
/* From the io protocol's callback: 1 if wsi is a watcher (handled), with
 * *ret the value to return to lws. */
int loopio_handle(struct lws *wsi, enum lws_callback_reasons reason, int *ret);
/* Closes a watched fd now (not from inside its own callback). */
void loopio_close_now(void *handle);
/* For worker_pool_new. */
void loopio_wake(void *helper);

#endif
