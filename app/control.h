/*
 * control: the editor's side of the helper (the stdio contract, PROTOCOL
 * section 1). Reads stdin into the JSON-RPC layer (ipc/rpc), drains its
 * queue into a non-blocking stdout, implements every control-plane method,
 * watches the editor's process, and is the editor_port the data plane asks
 * the editor through. The secret arrives only inside settings and is never
 * logged or echoed.
 *
 * Ownership: control_new adopts stdin and a duplicate of stdout into the
 * loop; control_free releases the rpc object. The env's members are
 * borrowed; the settings it points at are replaced in place on a change.
 */
#ifndef COMPANION_CONTROL_H
#define COMPANION_CONTROL_H

#include <stddef.h>

#include "server/server.h"

struct app_counters;
struct agents;
struct approvals;
struct client;
struct control;
struct dataplane;
struct devices;
struct editor_port;
struct events;
struct logger;
struct loop;
struct private_paths;
struct settings;
struct workspace;

struct control_env {
    struct loop *loop;
    struct logger *log;
    struct settings *settings;
    struct workspace *ws;
    struct private_paths *priv;
    struct events *events;
    struct server *server;
    struct dataplane *dp;
    struct client **clients;
    const struct app_counters *counters;
    struct approvals *approvals;
    struct agents *agents;
    struct devices *devices;
    /* What only the composition root does. */
    void *ud;
    void (*exit)(void *ud, int code);
    /* Starts the server (and what must run with it). */
    enum server_err (*start_server)(void *ud, char *err, size_t errlen);
    /* The workspace's folders changed (the git watcher starts again). */
    void (*folders_changed)(void *ud);
};

struct control *control_new(const struct control_env *env, char *err, size_t errlen);
void control_free(struct control *ctl);
/* The editor port that goes through this control plane. */
void control_editor_port(struct control *ctl, struct editor_port *out);
/* The helper is exiting: requests to the editor fail at once. */
void control_exiting(struct control *ctl);
/* Last words to the editor: a bounded, blocking flush of what is queued. */
void control_flush(struct control *ctl);

#endif
