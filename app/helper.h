/*
 * helper: the composition root. `struct helper` holds one of each module
 * and wires them together at start-up: the loop, the transport (server/),
 * the data plane and its dispatcher, events, the git watcher, and in editor
 * mode the control plane. Only helper.c and main.c see inside it; every
 * other module is handed what it needs (an env struct of borrowed
 * pointers and callbacks) when it is made.
 *
 * One thread, one event loop: stdin, stdout, the parent's pidfd, a
 * signalfd, task pipes and inotify are watched by the same loop that serves
 * the WebSocket clients, so there are no polling sleeps.
 */
#ifndef COMPANION_HELPER_H
#define COMPANION_HELPER_H

#include "app/counters.h"
#include "app/editor_port.h"
#include "app/events.h"
#include "app/private_paths.h"
#include "core/log.h"
#include "core/settings.h"
#include "server/server.h"
#include "workspace/task.h"
#include "workspace/workspace.h"

struct agents;
struct approvals;
struct client;
struct control;
struct dataplane;
struct dispatch;
struct filewatch;
struct gitwatch;
struct loop;
struct loop_fd;
struct secret_watch;

enum helper_mode { HELPER_MODE_STDIO = 0, HELPER_MODE_SERVE };

struct helper {
    enum helper_mode mode;
    struct logger log;
    struct settings settings;
    struct workspace ws;
    struct private_paths priv; /* what is never served */
    char *secret_path;         /* serve: the standalone secret the key comes from */
    struct app_counters counters;
    struct client *clients; /* the data plane's, walked by events */
    struct events events;
    struct editor_port editor; /* the control plane's, or one that says "no editor" */
    struct task_loop tasks;

    struct loop *loop;
    struct loop_fd *signal_w;
    int signal_fd;
    struct server *server;
    struct dataplane *dataplane;
    struct dispatch *dispatch;
    struct approvals *approvals;
    struct agents *agents;
    struct gitwatch *gitwatch;
    struct filewatch *filewatch;
    struct control *control; /* editor mode */
    struct secret_watch *secret_watch;
    int reaper_fd; /* to the process that kills task groups if we die */

    int exiting;
    int exit_code;
};

/* Builds everything but the control plane. */
int helper_init(struct helper *h, enum helper_mode mode, char *err, size_t errlen);
/* Editor mode: the control plane on stdin/stdout. */
int helper_start_control(struct helper *h, char *err, size_t errlen);
/* serve: watches the standalone secret (h->secret_path). */
void helper_watch_secret(struct helper *h);
/* Starts the git watcher on the current folders (again). */
void helper_watch_git(struct helper *h);
/* Starts the file watcher (file.changed) on the current folders (again). */
void helper_watch_files(struct helper *h);
/* Starts the server, and the reaper with it. */
enum server_err helper_start_server(struct helper *h, char *err, size_t errlen);
/* Runs the loop until helper_exit() has finished. Returns the exit code. */
int helper_run(struct helper *h);
/* Stops everything and leaves the loop within 2 s with `code`. */
void helper_exit(struct helper *h, int code);
void helper_free(struct helper *h);

#endif
