/*
 * editor_port: what the data plane may ask of the editor, as a callback
 * struct the control plane (control.c) fills in, so nothing below it knows
 * JSON-RPC or stdio. In `serve` mode every member reports "no editor".
 *
 * Ownership: params passed to notify/request are taken; the result handed to
 * an answer callback is borrowed for the call.
 */
#ifndef COMPANION_EDITOR_PORT_H
#define COMPANION_EDITOR_PORT_H

#include <json-c/json.h>
#include <stdint.h>

enum editor_outcome {
    EDITOR_ANSWERED = 0,
    EDITOR_TIMED_OUT, /* no answer in time, or cancelled (the editor went) */
    EDITOR_FAILED,    /* the editor answered with an error (message set) */
};

typedef void (*editor_answer_fn)(void *ud, enum editor_outcome outcome, json_object *result,
                                 const char *message);

struct editor_port {
    void *ud;
    /* 1 when an editor is attached and listening. */
    int (*attached)(void *ud);
    /* A notification (dropped when no editor listens). */
    void (*notify)(void *ud, const char *method, json_object *params);
    /* A request with a deadline; answer(answer_ud, ...) runs once, later.
     * Returns the request's id (> 0), or -1 when it cannot be sent (answer is
     * then not called). */
    int64_t (*request)(void *ud, const char *method, json_object *params, int64_t timeout_ms,
                       editor_answer_fn answer, void *answer_ud);
    /* Drops a request: its answer callback is not called. */
    void (*forget)(void *ud, int64_t id);
};

#endif
