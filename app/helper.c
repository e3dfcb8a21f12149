/*
 * helper: builds the modules, wires them, runs the loop, and the way out:
 * helper_exit() stops the server, fails what waits on the editor and
 * leaves the loop, with a hard deadline so the process is gone within 2 s
 * of stdin EOF or the editor's death (see helper.h).
 */
#include "app/helper.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "app/approvals.h"
#include "app/control.h"
#include "app/dataplane.h"
#include "app/devices.h"
#include "app/dispatch.h"
#include "app/filewatch.h"
#include "app/gitwatch.h"
#include "app/metrics_page.h"
#include "app/agents.h"
#include "app/reaper.h"
#include "app/secret_watch.h"
#include "app/taskloop.h"
#include "server/loop.h"

/* Whatever is left is abandoned this long after helper_exit(). */
#define EXIT_DEADLINE_MS 1500

/* ---- the editor port when there is no editor (serve) ---- */

static int none_attached(void *ud)
{
    return 0;
}

static void none_notify(void *ud, const char *method, json_object *params)
{
    json_object_put(params);
}

static int64_t none_request(void *ud, const char *method, json_object *params, int64_t timeout_ms,
                            editor_answer_fn answer, void *answer_ud)
{
    json_object_put(params);
    return -1;
}

static void none_forget(void *ud, int64_t id)
{
}

static const struct editor_port no_editor = {NULL, none_attached, none_notify, none_request,
                                             none_forget};

/* ---- callbacks the modules are handed ---- */

static void on_signal(void *arg, unsigned events)
{
    struct helper *h = arg;
    struct signalfd_siginfo si;
    (void)events;
    while (read(h->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM || si.ssi_signo == SIGHUP) {
            log_msg(&h->log, LOG_INFO, "signal %u: stopping", si.ssi_signo);
            helper_exit(h, 0);
        }
    }
}

static void wake(void *ud)
{
    struct helper *h = ud;
    loop_wake(h->loop);
}

static void drained(void *ud)
{
    struct helper *h = ud;
    if (h->dispatch)
        dispatch_drain(h->dispatch);
}

static void publish_git(void *ud, json_object *payload)
{
    struct helper *h = ud;
    events_publish(&h->events, EVENT_GIT_CHANGED, payload);
}

static void publish_file(void *ud, json_object *payload)
{
    struct helper *h = ud;
    events_publish(&h->events, EVENT_FILE_CHANGED, payload);
}

static void file_env(struct helper *h, struct filewatch_env *fe)
{
    *fe = (struct filewatch_env){
        .log = &h->log,
        .ws = &h->ws,
        .loop = h->loop,
        .publish = publish_file,
        .publish_ud = h,
    };
}

/* fs.write or fs.delete succeeded: file.changed, exactly what it did. */
static void file_changed(void *ud, json_object *args, json_object *result)
{
    struct helper *h = ud;
    struct filewatch_env fe;
    json_object *folder = NULL, *path = NULL, *created = NULL;
    if (!json_object_object_get_ex(result, "path", &path))
        return;
    if (args && json_object_object_get_ex(args, "folder", &folder) &&
        !json_object_is_type(folder, json_type_string))
        folder = NULL;
    const char *change =
        json_object_object_get_ex(result, "deleted", NULL) ? "deleted"
        : json_object_object_get_ex(result, "created", &created) && json_object_get_boolean(created)
            ? "created"
            : "changed";
    file_env(h, &fe);
    filewatch_note(h->filewatch, &fe, folder ? json_object_get_string(folder) : NULL,
                   json_object_get_string(path), change);
}

static void exit_cb(void *ud, int code)
{
    helper_exit(ud, code);
}

static enum server_err start_server_cb(void *ud, char *err, size_t errlen)
{
    return helper_start_server(ud, err, errlen);
}

static void folders_changed(void *ud)
{
    helper_bind_devices(ud);
    helper_watch_git(ud);
    helper_watch_files(ud);
}

/* The registry changed (here, or a revocation by the CLI): revoked devices
 * lose their sessions at once, and the editor hears of it. */
static void devices_changed(void *ud)
{
    struct helper *h = ud;
    int n = dataplane_close_revoked(h->dataplane);
    if (n)
        log_msg(&h->log, LOG_INFO, "%d session(s) of revoked devices closed", n);
    if (h->editor.attached(h->editor.ud))
        h->editor.notify(h->editor.ud, "companion/devicesChanged", json_object_new_object());
}

/* ---- building ---- */

/* GET /metrics (server/ asks through its session_handler). */
static void write_metrics(void *ud, struct metrics_buf *b)
{
    struct helper *h = ud;
    struct metrics_page_src src = {
        .server = h->server,
        .counters = &h->counters,
        .events = &h->events,
        .dispatch = h->dispatch,
        .approvals = h->approvals,
        .agents = h->agents,
    };
    metrics_page_write(&src, b);
}

int helper_init(struct helper *h, enum helper_mode mode, char *err, size_t errlen)
{
    memset(h, 0, sizeof(*h));
    h->mode = mode;
    /* Started with the server (helper_start_server), not here: only clients
     * start tasks, and an editor's start-up should not wait for a second
     * process to load every library. */
    h->reaper_fd = -1;
    log_init(&h->log, LOG_INFO);
    settings_init(&h->settings);
    workspace_init(&h->ws);
    h->editor = no_editor;
    /* A client names its messages' types: only these are counted by name. */
    static const char *const in_types[] = {"auth",         "ping",      "command",
                                           "chat",         "subscribe", "unsubscribe",
                                           "user_message", "invalid",   "socketio"};
    metrics_table_close(&h->counters.in_by_type, in_types, sizeof(in_types) / sizeof(in_types[0]));

    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    h->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);

    if (!(h->loop = loop_new(&h->log, err, errlen))) {
        if (h->signal_fd >= 0)
            close(h->signal_fd);
        return -1;
    }
    loop_set_wake(h->loop, drained, h);
    /* Once watched, the loop owns the fd and closes it. */
    if (h->signal_fd >= 0 && !(h->signal_w = loop_fd_watch(h->loop, h->signal_fd, on_signal, h)))
        close(h->signal_fd);
    if (taskloop_init(&h->tasks, h->loop, &h->reaper_fd) < 0 ||
        events_init(&h->events, 256, &h->clients, &h->settings) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct approvals_env ae = {
        .log = &h->log,
        .st = &h->settings,
        .events = &h->events,
        .editor = &h->editor,
        .loop = h->loop,
    };
    if (!(h->approvals = approvals_new(&ae))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct agents_env ge = {
        .log = &h->log,
        .st = &h->settings,
        .ws = &h->ws,
        .loop = h->loop,
        .reaper_fd = &h->reaper_fd,
        .approvals = h->approvals,
        .events = &h->events,
        .editor = &h->editor,
    };
    if (!(h->agents = agents_new(&ge))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct dispatch_env de = {
        .log = &h->log,
        .st = &h->settings,
        .ws = &h->ws,
        .counters = &h->counters,
        .editor = &h->editor,
        .events = &h->events,
        .tasks = &h->tasks,
        .approvals = h->approvals,
        .wake = wake,
        .wake_ud = h,
        .file_changed = file_changed,
        .file_changed_ud = h,
    };
    if (!(h->dispatch = dispatch_new(&de, err, errlen)))
        return -1;
    struct devices_env dve = {
        .loop = h->loop,
        .log = &h->log,
        .changed = devices_changed,
        .ud = h,
    };
    if (!(h->devices = devices_new(&dve))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct dataplane_env pe = {
        .log = &h->log,
        .st = &h->settings,
        .ws = &h->ws,
        .counters = &h->counters,
        .editor = &h->editor,
        .events = &h->events,
        .dispatch = h->dispatch,
        .agents = h->agents,
        .clients = &h->clients,
        .devices = h->devices,
    };
    if (!(h->dataplane = dataplane_new(&pe))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct session_handler handler;
    dataplane_handler(h->dataplane, &handler);
    handler.metrics = write_metrics;
    handler.metrics_ud = h;
    if (!(h->server = server_new(h->loop, &h->settings, &h->log, &handler, err, errlen)))
        return -1;
    return 0;
}

int helper_start_control(struct helper *h, char *err, size_t errlen)
{
    struct control_env ce = {
        .loop = h->loop,
        .log = &h->log,
        .settings = &h->settings,
        .ws = &h->ws,
        .priv = &h->priv,
        .events = &h->events,
        .server = h->server,
        .dp = h->dataplane,
        .clients = &h->clients,
        .counters = &h->counters,
        .approvals = h->approvals,
        .agents = h->agents,
        .devices = h->devices,
        .ud = h,
        .exit = exit_cb,
        .start_server = start_server_cb,
        .folders_changed = folders_changed,
    };
    if (!(h->control = control_new(&ce, err, errlen)))
        return -1;
    control_editor_port(h->control, &h->editor);
    return 0;
}

void helper_watch_secret(struct helper *h)
{
    if (!h->secret_path)
        return;
    struct secret_watch_env se = {
        .loop = h->loop,
        .log = &h->log,
        .path = h->secret_path,
        .workspace_id = h->ws.id,
        .settings = &h->settings,
        .server = h->server,
    };
    h->secret_watch = secret_watch_start(&se);
}

void helper_bind_devices(struct helper *h)
{
    devices_bind(h->devices, h->ws.id);
}

void helper_watch_git(struct helper *h)
{
    dispatch_set_gitwatch(h->dispatch, NULL);
    gitwatch_stop(h->gitwatch);
    struct gitwatch_env ge = {
        .log = &h->log,
        .ws = &h->ws,
        .pool = dispatch_pool(h->dispatch),
        .loop = h->loop,
        .counters = &h->counters,
        .publish = publish_git,
        .publish_ud = h,
    };
    h->gitwatch = gitwatch_start(&ge);
    dispatch_set_gitwatch(h->dispatch, h->gitwatch);
}

void helper_watch_files(struct helper *h)
{
    struct filewatch_env fe;
    filewatch_stop(h->filewatch);
    file_env(h, &fe);
    h->filewatch = filewatch_start(&fe);
}

enum server_err helper_start_server(struct helper *h, char *err, size_t errlen)
{
    enum server_err e = server_start(h->server, err, errlen);
    /* Tasks are started by clients only, so their reaper is needed from
     * here on; a reaper that could not start is tried again next time. */
    if (e == SERVER_OK && h->reaper_fd < 0)
        h->reaper_fd = reaper_start();
    return e;
}

/* ---- running and leaving ---- */

static void exit_after_stop(void *ud)
{
    struct helper *h = ud;
    loop_stop(h->loop);
}

void helper_exit(struct helper *h, int code)
{
    if (h->exiting)
        return;
    h->exiting = 1;
    h->exit_code = code;
    loop_stop_within(h->loop, EXIT_DEADLINE_MS);
    control_exiting(h->control);
    /* Closing the sessions (server stop) ends every task they started. */
    server_stop(h->server, exit_after_stop, h);
}

int helper_run(struct helper *h)
{
    loop_run(h->loop);
    control_flush(h->control);
    return h->exit_code;
}

void helper_free(struct helper *h)
{
    /* Sessions still open hold tasks: their groups are killed as the
     * server closes them. */
    server_free(h->server);
    h->server = NULL;
    dispatch_set_gitwatch(h->dispatch, NULL);
    gitwatch_stop(h->gitwatch);
    h->gitwatch = NULL;
    filewatch_stop(h->filewatch);
    h->filewatch = NULL;
    secret_watch_stop(h->secret_watch);
    h->secret_watch = NULL;
    agents_free(h->agents); /* withdraws its approvals, kills its agents */
    h->agents = NULL;
    approvals_free(h->approvals);
    h->approvals = NULL;
    dispatch_free(h->dispatch);
    h->dispatch = NULL;
    dataplane_free(h->dataplane);
    h->dataplane = NULL;
    devices_free(h->devices); /* before the loop: its watch is in it */
    h->devices = NULL;
    control_free(h->control);
    h->control = NULL;
    loop_fd_close(h->signal_w);
    h->signal_w = NULL;
    h->editor = no_editor;
    loop_free(h->loop);
    h->loop = NULL;
    taskloop_free(&h->tasks);
    events_free(&h->events);
    private_paths_free(&h->priv);
    free(h->secret_path);
    h->secret_path = NULL;
    if (h->reaper_fd >= 0)
        close(h->reaper_fd); /* the reaper kills what is left, then exits */
    settings_free(&h->settings);
    workspace_free(&h->ws);
}
