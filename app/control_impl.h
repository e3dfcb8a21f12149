/*
 * control_impl: the control plane's state, shared by control.c (stdio, the
 * editor port, life) and control_methods.c (the methods the editor calls).
 * Internal to those two files.
 */
#ifndef COMPANION_CONTROL_IMPL_H
#define COMPANION_CONTROL_IMPL_H

#include <sys/types.h>

#include "app/control.h"
#include "app/editor_port.h"
#include "ipc/rpc.h"

/* One request to the editor made through the editor port. */
struct editor_call {
    struct editor_call *next;
    struct control *ctl;
    int64_t id;
    editor_answer_fn answer;
    void *ud;
};

struct control {
    struct control_env env;
    struct rpc *rpc;
    int stdin_fd, stdout_fd;
    struct loop_fd *stdin_w, *stdout_w, *parent_w;
    pid_t parent_pid;
    struct loop_timer *parent_poll; /* kill(pid, 0) when pidfd_open fails */
    struct loop_timer *deadline;    /* of our oldest request to the editor */
    int initialized;
    int shutdown_received;
    int exiting;
    struct rpc_req *pending_stop; /* server/stop or shutdown, answered when stopped */
    int pending_stop_null;        /* answer it with null (shutdown) */
    struct editor_call *calls;
    uint64_t drops_reported; /* rpc_out_dropped() when the editor was last told */
};

/* control_methods.c: params[key] unless absent or null. */
json_object *control_param(json_object *params, const char *key);
/* -1 (and the error answered) when params is there but not an object. */
int control_need_object(struct rpc_req *req, json_object *params);

/* control_devices.c: auth/issueToken and devices/list, revoke, rename. */
void control_on_issue_token(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud);
void control_on_devices_list(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud);
void control_on_devices_revoke(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud);
void control_on_devices_rename(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud);

/* control_methods.c: the method table handed to the rpc layer. */
extern const struct rpc_method control_methods[];

/* control.c: re-arms the deadline of our oldest request to the editor. */
void control_schedule_deadline(struct control *ctl);

#endif
