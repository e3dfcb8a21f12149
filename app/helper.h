/*
 * helper: the one `struct helper` that owns all mutable state of the
 * process, and the functions other helper/ files call on it.
 *
 * One thread, one lws event loop. stdin, stdout, the parent's pidfd and a
 * signalfd are adopted into lws as raw files, so the same loop serves the
 * editor's JSON-RPC, the WebSocket clients, timers and signals, with no
 * polling sleeps.
 */
#ifndef COMPANION_HELPER_H
#define COMPANION_HELPER_H

#include <libwebsockets.h>
#include <stdint.h>
#include <sys/types.h>

#include "app/events.h"
#include "core/clock.h"
#include "core/log.h"
#include "app/private_paths.h"
#include "core/settings.h"
#include "ipc/rpc.h"
#include "workspace/task.h"
#include "workspace/workspace.h"

struct cmd_job;
struct worker_pool;

struct session;
struct listener;

enum helper_mode { HELPER_MODE_STDIO = 0, HELPER_MODE_SERVE };

/* Deadlines of ours tracked for the libev loop (helper.c). */
#define HELPER_KICKS_MAX 32

struct helper_counters {
    uint64_t connections_total;
    uint64_t connections_refused; /* 403/404/503 before the upgrade */
    uint64_t auth_succeeded;
    uint64_t auth_failed;
    uint64_t auth_timeouts;
    uint64_t messages_in;
    uint64_t messages_out;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t commands;
    uint64_t command_errors;
    uint64_t invalid_messages;
    uint64_t rate_limited;
    uint64_t slow_consumers;
    uint64_t heartbeat_timeouts;
    uint64_t oversize_messages;
    uint64_t git_status_cached;  /* answered from the last status */
    uint64_t git_status_partial; /* brought up to date from the paths that changed */
    uint64_t git_status_full;    /* walked the whole work tree (watched folders) */
};

struct helper {
    enum helper_mode mode;
    struct logger log;
    struct settings settings;
    struct workspace ws;
    struct private_paths priv; /* what is never served (private_paths.h) */
    char *secret_path;         /* serve: the standalone secret the key comes from */
    void *secret_watch;        /* serve: notices the secret changing (secret_watch.c) */

    struct lws_context *ctx;
    struct ev_loop *ev_loop;            /* the loop lws runs on (NULL: lws's own poll loop) */
    void *kick;                         /* two ev_timers: see helper_sul_schedule() */
    lws_usec_t kicks[HELPER_KICKS_MAX]; /* our pending deadlines, earliest first */
    int n_kicks;
    struct lws_vhost *io_vhost; /* no listener: stdin, stdout, pidfd, signalfd */
    struct lws_vhost *ws_vhost; /* serves the sockets our listener accepts */
    struct listener *listener;  /* the listening socket while the server runs */

    /* control plane (editor mode) */
    struct rpc *rpc;
    struct lws *stdin_wsi, *stdout_wsi, *parent_wsi, *signal_wsi;
    int stdin_fd, stdout_fd, signal_fd, parent_fd;
    pid_t parent_pid;
    int initialized;
    int shutdown_received;
    lws_sorted_usec_list_t sul_rpc;    /* deadline of our oldest request to the editor */
    lws_sorted_usec_list_t sul_parent; /* kill(pid, 0) fallback when pidfd_open fails */

    /* server */
    int running;
    int bound_port;
    char url[300];
    int64_t started_at_ms;   /* wall clock, for server/status */
    int64_t started_mono_ms; /* for /health's uptime */
    int64_t process_started_ms;
    struct session *sessions; /* every open WebSocket, doubly linked */
    int n_connections;
    int n_unauthenticated;
    struct helper_counters counters;
    lws_sorted_usec_list_t sul_tick; /* every session's deadlines (session.c) */
    int tick_armed;
    int stopping;                 /* clients are being closed after a stop */
    struct rpc_req *pending_stop; /* server/stop waits for the clients to be closed */
    int pending_stop_null;        /* answer it with null (shutdown) */
    void (*stop_done)(struct helper *h);
    lws_sorted_usec_list_t sul_stop;

    /* async commands (calls.c) */
    struct worker_pool *pool;
    struct cmd_job *inflight; /* coalescable worker jobs still running */
    struct task_loop task_loop;
    int running_tasks;

    struct events events;
    int reaper_fd;       /* to the process that kills task groups if we die */
    struct watch *watch; /* git.changed */
    void *watch_job;     /* the watcher's status run in flight */

    /* lifecycle */
    int quit;
    int exit_code;
    int exiting;
    lws_sorted_usec_list_t sul_exit;
};

/* lws_sul_schedule on the helper's context, and sure to fire on time with
 * the libev loop (see helper.c). Every deadline of ours goes through it. */
void helper_sul_schedule(struct helper *h, lws_sorted_usec_list_t *sul, sul_cb_t cb, lws_usec_t us);

/* Builds the lws context and the io vhost. */
int helper_init(struct helper *h, enum helper_mode mode, char *err, size_t errlen);
void helper_free(struct helper *h);
/* Runs the loop until helper_exit() has finished. Returns the exit code. */
int helper_run(struct helper *h);

/* Creates the vhost that serves accepted connections. */
int ws_server_init(struct helper *h, char *err, size_t errlen);
/* Starts the listener with the current settings. Returns 0, or -1 with
 * *rpc_code (-32001 port taken, -32602 bad settings) and err. */
int helper_server_start(struct helper *h, int *rpc_code, char *err, size_t errlen);
/* Closes every client with 1001 then the listener; calls done(h) when both
 * are gone (at once when the server is not running). */
void helper_server_stop(struct helper *h, void (*done)(struct helper *h));
/* Re-applies settings to a running server: when host or port changed, the
 * clients get 1001 and the listener re-binds (errors are logged). Returns 1
 * when a re-bind was started. */
int helper_server_reconfigure(struct helper *h, const struct settings *old);

/* Adopts fd into the io vhost as a raw file (lws polls it, we read/write). */
struct lws *helper_adopt_fd(struct helper *h, int fd);

/* Stops everything and leaves the loop within 2 s with `code`. */
void helper_exit(struct helper *h, int code);

/* Control plane: sets up the JSON-RPC object and adopts stdin/stdout. */
int control_init(struct helper *h, char *err, size_t errlen);
void control_free(struct helper *h);
/* Notifications to the editor; no-ops when there is none. */
void control_notify(struct helper *h, const char *method, json_object *params);
void control_on_readable(struct helper *h);
void control_on_writable(struct helper *h);
void control_schedule_deadline(struct helper *h);

#endif
