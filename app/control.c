/*
 * control: the editor's side of the helper (PROTOCOL section 1). Reads
 * stdin into the JSON-RPC layer, drains its queue into a non-blocking
 * stdout, and implements every control-plane method. The secret arrives only
 * inside settings and is never logged or echoed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/auth.h"
#include "app/helper.h"
#include "server/session.h"
#include "app/watch.h"
#include "app/private_paths.h"
#include "workspace/command.h"
#include "workspace/folder.h"
#include "workspace/utf8.h"

#define TTL_MAX_S      (365LL * 24 * 3600)
#define PARENT_POLL_MS 500

static struct helper *H(void *ud)
{
    return ud;
}

void control_notify(struct helper *h, const char *method, json_object *params)
{
    if (!h->rpc || !h->initialized || !h->stdout_wsi) {
        json_object_put(params);
        return;
    }
    rpc_notify(h->rpc, method, params);
}

static void log_forward(void *ud, enum log_level level, const char *message)
{
    struct helper *h = ud;
    if (!h->rpc || !h->stdout_wsi)
        return;
    json_object *p = json_object_new_object();
    json_object_object_add(p, "type", json_object_new_int((int)level + 1));
    json_object_object_add(p, "message", json_object_new_string(message));
    rpc_notify(h->rpc, "window/logMessage", p);
}

static void apply_log_level(struct helper *h)
{
    h->log.level = (enum log_level)h->settings.log_level;
}

/* ---- parameters ---- */

static json_object *param(json_object *params, const char *key)
{
    json_object *v = NULL;
    if (params && json_object_is_type(params, json_type_object) &&
        json_object_object_get_ex(params, key, &v) && !json_object_is_type(v, json_type_null))
        return v;
    return NULL;
}

static int need_object_params(struct rpc_req *req, json_object *params)
{
    if (params && !json_object_is_type(params, json_type_object)) {
        rpc_respond_error(req, RPC_INVALID_PARAMS, "params: expected an object", NULL);
        return -1;
    }
    return 0;
}

/* ---- parent watch ---- */

static void parent_poll_cb(lws_sorted_usec_list_t *sul)
{
    struct helper *h = lws_container_of(sul, struct helper, sul_parent);
    if (kill(h->parent_pid, 0) < 0 && errno == ESRCH) {
        log_msg(&h->log, LOG_INFO, "the editor process %d is gone: stopping", (int)h->parent_pid);
        helper_exit(h, 1);
        return;
    }
    helper_sul_schedule(h, &h->sul_parent, parent_poll_cb,
                        (lws_usec_t)PARENT_POLL_MS * LWS_US_PER_MS);
}

static int watch_parent(struct helper *h, pid_t pid)
{
    h->parent_pid = pid;
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0 && errno == ESRCH)
        return -1;
    if (fd >= 0) {
        h->parent_wsi = helper_adopt_fd(h, fd);
        if (h->parent_wsi)
            return 0;
        close(fd);
    }
    /* No pidfd (old kernel, seccomp): ask the kernel twice a second. */
    helper_sul_schedule(h, &h->sul_parent, parent_poll_cb,
                        (lws_usec_t)PARENT_POLL_MS * LWS_US_PER_MS);
    return 0;
}

/* ---- settings ---- */

static int auth_material_changed(const struct settings *a, const struct settings *b)
{
    const char *sa = a->secret ? a->secret : "", *sb = b->secret ? b->secret : "";
    const char *pa = a->public_key ? a->public_key : "", *pb = b->public_key ? b->public_key : "";
    return a->alg != b->alg || strcmp(sa, sb) != 0 || strcmp(pa, pb) != 0 ||
           strcmp(a->audience, b->audience) != 0 || strcmp(a->issuer, b->issuer) != 0;
}

/* Parses `obj` into *out; a section without auth.secret keeps the current
 * secret, since the extension may send settings before it has read it. */
static int parse_settings(struct helper *h, json_object *obj, struct settings *out, char *err,
                          size_t errlen)
{
    if (!obj)
        obj = json_object_new_object();
    else
        json_object_get(obj);
    if (!json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        snprintf(err, errlen, "settings: expected an object");
        return -1;
    }
    int rc = settings_parse(out, obj, err, errlen);
    json_object_put(obj);
    if (rc < 0)
        return -1;
    if (!out->secret && h->settings.secret && !(out->secret = strdup(h->settings.secret))) {
        settings_free(out);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* ---- methods ---- */

static void on_initialize(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct helper *h = H(ud);
    char err[300];
    if (h->initialized) {
        rpc_respond_error(req, RPC_INVALID_REQUEST, "already initialized", NULL);
        return;
    }
    if (need_object_params(req, params) < 0)
        return;
    json_object *pid = param(params, "processId"), *wsid = param(params, "workspaceId");
    json_object *folders = param(params, "workspaceFolders");
    if (pid && (!json_object_is_type(pid, json_type_int) || json_object_get_int64(pid) <= 0 ||
                json_object_get_int64(pid) > INT32_MAX)) {
        rpc_respond_error(req, RPC_INVALID_PARAMS, "processId: expected a positive integer", NULL);
        return;
    }
    if (wsid &&
        (!json_object_is_type(wsid, json_type_string) || json_object_get_string_len(wsid) == 0)) {
        rpc_respond_error(req, RPC_INVALID_PARAMS, "workspaceId: expected a non-empty string",
                          NULL);
        return;
    }
    struct settings s;
    if (parse_settings(h, param(params, "settings"), &s, err, sizeof(err)) < 0) {
        rpc_respond_error(req, RPC_INVALID_PARAMS, err, NULL);
        return;
    }
    json_object *empty = NULL;
    if (!folders)
        folders = empty = json_object_new_array();
    size_t skipped = 0;
    int rc = workspace_set_folders(&h->ws, wsid ? json_object_get_string(wsid) : NULL, folders,
                                   &skipped, err, sizeof(err));
    json_object_put(empty);
    if (rc < 0) {
        settings_free(&s);
        rpc_respond_error(req, RPC_INVALID_PARAMS, err, NULL);
        return;
    }
    settings_free(&h->settings);
    h->settings = s;
    apply_log_level(h);
    events_resize(&h->events, (size_t)h->settings.history_size);
    json_object *priv = param(params, "privatePaths");
    if (priv && !json_object_is_type(priv, json_type_array))
        log_msg(&h->log, LOG_WARN, "privatePaths: expected an array of absolute paths (ignored)");
    else if (priv)
        private_paths_set_extra(&h->priv, priv);
    private_paths_apply(&h->priv, &h->settings, &h->ws, &h->log);

    if (pid && watch_parent(h, (pid_t)json_object_get_int64(pid)) < 0) {
        rpc_respond_error(req, RPC_INVALID_PARAMS, "processId: no such process", NULL);
        helper_exit(h, 1);
        return;
    }
    h->initialized = 1;
    rpc_set_initialized(rpc, 1);
    watch_restart(h);
    if (skipped)
        log_msg(&h->log, LOG_WARN, "%zu workspace folder(s) are not local folders and are ignored",
                skipped);
    log_msg(&h->log, LOG_INFO, "initialized: workspace %s (%s), %zu folder(s)", h->ws.id,
            h->ws.name, h->ws.n_folders);

    json_object *r = json_object_new_object();
    json_object *si = json_object_new_object();
    json_object_object_add(si, "name", json_object_new_string("companion-helper"));
    json_object_object_add(si, "version", json_object_new_string(COMPANION_VERSION));
    json_object_object_add(r, "serverInfo", si);
    json_object *caps = json_object_new_object();
    json_object_object_add(caps, "commands", cmd_names_json());
    json_object_object_add(r, "capabilities", caps);
    json_object_object_add(r, "workspaceId", json_object_new_string(h->ws.id));
    rpc_respond(req, r);
}

static void on_initialized(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
}

static json_object *start_result(struct helper *h)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "url", json_object_new_string(h->url));
    json_object_object_add(r, "host", json_object_new_string(h->settings.host));
    json_object_object_add(r, "port", json_object_new_int(h->bound_port));
    return r;
}

static void on_server_start(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct helper *h = H(ud);
    char err[300];
    int code;
    if (helper_server_start(h, &code, err, sizeof(err)) < 0) {
        log_msg(&h->log, LOG_ERROR, "server/start: %s", err);
        json_object *data = NULL;
        if (code == RPC_SERVER_ERROR) {
            data = json_object_new_object();
            json_object_object_add(data, "port", json_object_new_int(h->settings.port));
        }
        rpc_respond_error(req, code, err, data);
        return;
    }
    rpc_respond(req, start_result(h));
}

static void on_server_stop(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct helper *h = H(ud);
    if (!h->running && !h->stopping) {
        rpc_respond(req, json_object_new_object());
        return;
    }
    if (h->pending_stop) {
        rpc_respond_error(req, RPC_INVALID_REQUEST, "a stop is already in progress", NULL);
        return;
    }
    h->pending_stop = req;
    h->pending_stop_null = 0;
    helper_server_stop(h, NULL);
}

static json_object *counters_json(const struct helper *h)
{
    const struct helper_counters *c = &h->counters;
    json_object *o = json_object_new_object();
#define C(name, field) json_object_object_add(o, name, json_object_new_int64((int64_t)c->field))
    C("connectionsTotal", connections_total);
    C("connectionsRefused", connections_refused);
    C("authSucceeded", auth_succeeded);
    C("authFailed", auth_failed);
    C("authTimeouts", auth_timeouts);
    C("messagesIn", messages_in);
    C("messagesOut", messages_out);
    C("bytesIn", bytes_in);
    C("bytesOut", bytes_out);
    C("commands", commands);
    C("commandErrors", command_errors);
    C("invalidMessages", invalid_messages);
    C("rateLimited", rate_limited);
    C("slowConsumers", slow_consumers);
    C("heartbeatTimeouts", heartbeat_timeouts);
    C("oversizeMessages", oversize_messages);
    C("gitStatusCached", git_status_cached);
    C("gitStatusPartial", git_status_partial);
    C("gitStatusFull", git_status_full);
#undef C
    json_object_object_add(o, "connections", json_object_new_int(h->n_connections));
    json_object_object_add(o, "authenticating", json_object_new_int(h->n_unauthenticated));
    return o;
}

static void on_server_status(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct helper *h = H(ud);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "state", json_object_new_string(h->running ? "running" : "stopped"));
    json_object_object_add(r, "url", h->running ? json_object_new_string(h->url) : NULL);
    json_object_object_add(r, "host", json_object_new_string(h->settings.host));
    json_object_object_add(r, "port", h->running ? json_object_new_int(h->bound_port) : NULL);
    json_object_object_add(r, "startedAt",
                           h->running ? json_object_new_int64(h->started_at_ms) : NULL);
    json_object_object_add(r, "workspaceId", json_object_new_string(h->ws.id));
    json_object_object_add(r, "version", json_object_new_string(COMPANION_VERSION));
    json_object *clients = json_object_new_array();
    for (struct session *s = h->sessions; s; s = s->next)
        if (s->authed)
            json_object_array_add(clients, session_status_json(s));
    json_object_object_add(r, "clients", clients);
    json_object_object_add(r, "counters", counters_json(h));
    rpc_respond(req, r);
}

static void on_server_broadcast(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct helper *h = H(ud);
    if (need_object_params(req, params) < 0)
        return;
    json_object *type = param(params, "type"), *data = param(params, "data");
    if (!type || !json_object_is_type(type, json_type_string) ||
        json_object_get_string_len(type) == 0 || json_object_get_string_len(type) > 64) {
        rpc_respond_error(req, RPC_INVALID_PARAMS, "type: expected a string of 1 to 64 characters",
                          NULL);
        return;
    }
    int delivered = 0;
    if (strcmp(json_object_get_string(type), "notify") == 0) {
        json_object *p = json_object_new_object(), *v;
        const char *keys[] = {"title", "message", "level"};
        for (size_t i = 0; i < 3; i++) {
            if (data && json_object_is_type(data, json_type_object) &&
                json_object_object_get_ex(data, keys[i], &v) &&
                !json_object_is_type(v, json_type_string)) {
                json_object_put(p);
                rpc_respond_error(req, RPC_INVALID_PARAMS,
                                  "data: title, message and level must be strings", NULL);
                return;
            }
            json_object_object_add(p, keys[i],
                                   data && json_object_object_get_ex(data, keys[i], &v)
                                       ? json_object_get(v)
                                       : json_object_new_string(i == 2 ? "info" : ""));
        }
        delivered = events_publish(h, EVENT_NOTIFY, p);
        json_object *r = json_object_new_object();
        json_object_object_add(r, "delivered", json_object_new_int(delivered));
        rpc_respond(req, r);
        return;
    }
    for (struct session *s = h->sessions; s; s = s->next) {
        if (!s->authed || session_is_closing(s))
            continue;
        json_object *msg = json_object_new_object();
        json_object_object_add(msg, "type", json_object_get(type));
        if (data)
            json_object_object_add(msg, "data", json_object_get(data));
        if (session_send_obj(s, msg) == 0)
            delivered++;
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "delivered", json_object_new_int(delivered));
    rpc_respond(req, r);
}

static void on_server_disconnect(struct rpc *rpc, struct rpc_req *req, json_object *params,
                                 void *ud)
{
    struct helper *h = H(ud);
    if (need_object_params(req, params) < 0)
        return;
    json_object *sid = param(params, "sessionId"), *reason = param(params, "reason");
    if (!sid || !json_object_is_type(sid, json_type_string)) {
        rpc_respond_error(req, RPC_INVALID_PARAMS, "sessionId: expected a string", NULL);
        return;
    }
    if (reason && !json_object_is_type(reason, json_type_string)) {
        rpc_respond_error(req, RPC_INVALID_PARAMS, "reason: expected a string", NULL);
        return;
    }
    struct session *s = session_find(h, json_object_get_string(sid));
    if (!s) {
        rpc_respond_error(req, RPC_INVALID_PARAMS, "sessionId: no such session", NULL);
        return;
    }
    log_msg(&h->log, LOG_INFO, "session %s: disconnected by the editor", s->id);
    session_close(s, 1000, reason ? json_object_get_string(reason) : "disconnected by the editor");
    rpc_respond(req, json_object_new_object());
}

/* scopes: ["read","run"] or "read run". */
static int scopes_from_json(json_object *v, unsigned *out, char *err, size_t errlen)
{
    if (!v) {
        *out = AUTH_SCOPE_READ;
        return 0;
    }
    if (json_object_is_type(v, json_type_string))
        return auth_scopes_parse(json_object_get_string(v), out, err, errlen);
    if (!json_object_is_type(v, json_type_array)) {
        snprintf(err, errlen, "scopes: expected an array of strings");
        return -1;
    }
    *out = 0;
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        json_object *e = json_object_array_get_idx(v, i);
        unsigned one;
        if (!json_object_is_type(e, json_type_string) ||
            auth_scopes_parse(json_object_get_string(e), &one, err, errlen) < 0) {
            snprintf(err, errlen, "scopes[%zu]: expected one of read, run, editor", i);
            return -1;
        }
        *out |= one;
    }
    if (!*out) {
        snprintf(err, errlen, "scopes: at least one scope is needed");
        return -1;
    }
    return 0;
}

static void on_issue_token(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct helper *h = H(ud);
    char err[300];
    if (need_object_params(req, params) < 0)
        return;
    json_object *user = param(params, "userId"), *ttl = param(params, "ttlSeconds");
    unsigned scopes;
    if (user && (!json_object_is_type(user, json_type_string) ||
                 json_object_get_string_len(user) == 0 || json_object_get_string_len(user) > 256)) {
        rpc_respond_error(req, RPC_INVALID_PARAMS,
                          "userId: expected a string of 1 to 256 characters", NULL);
        return;
    }
    if (ttl && (!json_object_is_type(ttl, json_type_int) || json_object_get_int64(ttl) < 1 ||
                json_object_get_int64(ttl) > TTL_MAX_S)) {
        rpc_respond_error(req, RPC_INVALID_PARAMS,
                          "ttlSeconds: expected an integer from 1 to 31536000", NULL);
        return;
    }
    if (scopes_from_json(param(params, "scopes"), &scopes, err, sizeof(err)) < 0) {
        rpc_respond_error(req, RPC_INVALID_PARAMS, err, NULL);
        return;
    }
    if (h->settings.alg != AUTH_ALG_HS256 || !h->settings.secret) {
        rpc_respond_error(req, RPC_INVALID_PARAMS,
                          h->settings.secret ? "tokens can be issued only with auth.algorithm HS256"
                                             : "auth.secret is not set",
                          NULL);
        return;
    }
    int64_t now = clock_wall_ms() / 1000, ttl_s = ttl ? json_object_get_int64(ttl) : 3600;
    char *token = NULL;
    if (auth_mint_hs256((const unsigned char *)h->settings.secret, strlen(h->settings.secret),
                        h->ws.id, user ? json_object_get_string(user) : "editor", scopes, now,
                        ttl_s, h->settings.audience, h->settings.issuer, &token, err,
                        sizeof(err)) < 0) {
        rpc_respond_error(req, RPC_INTERNAL_ERROR, err, NULL);
        return;
    }
    char url[300];
    if (h->running)
        snprintf(url, sizeof(url), "%s", h->url);
    else
        snprintf(url, sizeof(url), "ws://%s:%d/ws", h->settings.host, h->settings.port);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "token", json_object_new_string(token));
    json_object_object_add(r, "expiresAt", json_object_new_int64((now + ttl_s) * 1000));
    json_object_object_add(r, "url", json_object_new_string(url));
    json_object_object_add(r, "workspaceId", json_object_new_string(h->ws.id));
    explicit_bzero(token, strlen(token));
    free(token);
    rpc_respond(req, r);
}

static void on_did_change_configuration(struct rpc *rpc, struct rpc_req *req, json_object *params,
                                        void *ud)
{
    struct helper *h = H(ud);
    char err[300];
    struct settings s, old;
    if (parse_settings(h, param(params, "settings"), &s, err, sizeof(err)) < 0) {
        log_msg(&h->log, LOG_ERROR, "settings refused, keeping the current ones: %s", err);
        return;
    }
    old = h->settings;
    h->settings = s;
    apply_log_level(h);
    events_resize(&h->events, (size_t)h->settings.history_size);
    private_paths_apply(&h->priv, &h->settings, &h->ws, &h->log);
    if (auth_material_changed(&old, &h->settings)) {
        int n = session_close_all(h, 4001, "credentials changed");
        if (n)
            log_msg(&h->log, LOG_INFO, "auth settings changed: %d session(s) closed", n);
    }
    helper_server_reconfigure(h, &old);
    settings_free(&old);
    log_msg(&h->log, LOG_INFO, "settings applied");
}

static void on_did_change_folders(struct rpc *rpc, struct rpc_req *req, json_object *params,
                                  void *ud)
{
    struct helper *h = H(ud);
    char err[300];
    if (workspace_change_folders(&h->ws, param(params, "event"), err, sizeof(err)) < 0)
        log_msg(&h->log, LOG_ERROR, "workspace folders change refused: %s", err);
    else {
        log_msg(&h->log, LOG_INFO, "workspace folders: %zu", h->ws.n_folders);
        private_paths_apply(&h->priv, &h->settings, &h->ws, &h->log);
        watch_restart(h);
    }
}

static void on_did_save(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct helper *h = H(ud);
    json_object *uri = param(params, "uri");
    char *path = uri && json_object_is_type(uri, json_type_string)
                     ? workspace_path_from_uri(json_object_get_string(uri))
                     : NULL;
    char rel[PATH_MAX];
    int k = path ? folder_relative(h->ws.folders, h->ws.n_folders, path, rel, sizeof(rel)) : -1;
    if (k >= 0 && strcmp(rel, ".") != 0) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "folder", utf8_json_string(h->ws.folders[k].name));
        json_object_object_add(p, "path", utf8_json_string(rel));
        events_publish(h, EVENT_FILE_SAVED, p);
    }
    free(path);
}

static void on_shutdown(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct helper *h = H(ud);
    h->shutdown_received = 1;
    rpc_set_shutdown(rpc, 1);
    if ((h->running || h->stopping) && !h->pending_stop) {
        h->pending_stop = req; /* answered null once clients are closed */
        h->pending_stop_null = 1;
        helper_server_stop(h, NULL);
        return;
    }
    rpc_respond(req, NULL);
}

static void on_exit_notification(struct rpc *rpc, struct rpc_req *req, json_object *params,
                                 void *ud)
{
    struct helper *h = H(ud);
    helper_exit(h, h->shutdown_received ? 0 : 1);
}

static const struct rpc_method control_methods[] = {
    {"initialize", RPC_BEFORE_INIT, on_initialize},
    {"initialized", RPC_NOTIFICATION | RPC_BEFORE_INIT, on_initialized},
    {"server/start", 0, on_server_start},
    {"server/stop", 0, on_server_stop},
    {"server/status", 0, on_server_status},
    {"server/broadcast", 0, on_server_broadcast},
    {"server/disconnect", 0, on_server_disconnect},
    {"auth/issueToken", 0, on_issue_token},
    {"workspace/didChangeConfiguration", RPC_NOTIFICATION, on_did_change_configuration},
    {"workspace/didChangeWorkspaceFolders", RPC_NOTIFICATION, on_did_change_folders},
    {"workspace/didSaveTextDocument", RPC_NOTIFICATION, on_did_save},
    {"shutdown", 0, on_shutdown},
    {"exit", RPC_NOTIFICATION | RPC_BEFORE_INIT, on_exit_notification},
    {NULL, 0, NULL},
};

/* ---- stdio ---- */

static void want_write(struct rpc *rpc, void *ud)
{
    struct helper *h = ud;
    if (h->stdout_wsi)
        lws_callback_on_writable(h->stdout_wsi);
}

static void cancelled(struct rpc *rpc, struct rpc_req *req, void *ud)
{
    struct helper *h = ud;
    /* Only server/stop and shutdown wait; stopping is not undone, so the
     * request simply completes when the server is down. */
    log_msg(&h->log, LOG_DEBUG, "cancel of %s ignored: it completes shortly", rpc_req_method(req));
}

static void protocol_error(struct rpc *rpc, const char *message, void *ud)
{
    struct helper *h = ud;
    log_msg(&h->log, LOG_WARN, "control plane: %s", message);
}

static const struct rpc_callbacks control_callbacks = {want_write, cancelled, protocol_error};

void control_on_readable(struct helper *h)
{
    char buf[65536];
    ssize_t n = read(h->stdin_fd, buf, sizeof(buf));
    if (n > 0) {
        rpc_feed(h->rpc, buf, (size_t)n);
        control_schedule_deadline(h);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    log_msg(&h->log, LOG_INFO, "stdin closed: the editor is gone, stopping");
    h->stdin_wsi = NULL; /* tells io_callback to let lws close it */
    helper_exit(h, h->shutdown_received ? 0 : 1);
}

void control_on_writable(struct helper *h)
{
    size_t len;
    const char *p = rpc_out_peek(h->rpc, &len);
    if (!p || !len)
        return;
    ssize_t n = write(h->stdout_fd, p, len);
    if (n > 0)
        rpc_out_consume(h->rpc, (size_t)n);
    else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        log_msg(&h->log, LOG_INFO, "stdout closed: the editor is gone, stopping");
        h->log.forward = NULL;
        helper_exit(h, 1);
        return;
    }
    if (rpc_out_pending(h->rpc) && h->stdout_wsi)
        lws_callback_on_writable(h->stdout_wsi);
}

static void rpc_deadline_cb(lws_sorted_usec_list_t *sul)
{
    struct helper *h = lws_container_of(sul, struct helper, sul_rpc);
    rpc_expire(h->rpc, clock_mono_ms());
    control_schedule_deadline(h);
}

void control_schedule_deadline(struct helper *h)
{
    if (!h->rpc)
        return;
    int64_t d = rpc_next_deadline(h->rpc);
    if (d < 0) {
        lws_sul_cancel(&h->sul_rpc);
        return;
    }
    int64_t delay = d - clock_mono_ms();
    helper_sul_schedule(h, &h->sul_rpc, rpc_deadline_cb,
                        (lws_usec_t)(delay > 0 ? delay : 0) * LWS_US_PER_MS);
}

int control_init(struct helper *h, char *err, size_t errlen)
{
    h->stdin_fd = STDIN_FILENO;
    h->stdout_fd = dup(STDOUT_FILENO);
    if (h->stdout_fd < 0) {
        snprintf(err, errlen, "cannot use stdout: %s", strerror(errno));
        return -1;
    }
    /* Keep fd 1 away from anything else that might print: only framed
     * messages may reach the editor. */
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull >= 0) {
        dup2(devnull, STDOUT_FILENO);
        close(devnull);
    }
    fcntl(h->stdout_fd, F_SETFD, FD_CLOEXEC);
    fcntl(h->stdout_fd, F_SETFL, fcntl(h->stdout_fd, F_GETFL) | O_NONBLOCK);
    fcntl(h->stdin_fd, F_SETFL, fcntl(h->stdin_fd, F_GETFL) | O_NONBLOCK);

    h->rpc =
        rpc_new(control_methods, &control_callbacks, h, (size_t)h->settings.max_message_bytes * 4);
    if (!h->rpc) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    h->stdin_wsi = helper_adopt_fd(h, h->stdin_fd);
    h->stdout_wsi = helper_adopt_fd(h, h->stdout_fd);
    if (!h->stdin_wsi || !h->stdout_wsi) {
        snprintf(err, errlen, "stdin and stdout must be pipes or sockets");
        return -1;
    }
    h->log.forward = log_forward;
    h->log.forward_ud = h;
    return 0;
}

void control_free(struct helper *h)
{
    if (h->rpc) {
        rpc_free(h->rpc);
        h->rpc = NULL;
    }
}
