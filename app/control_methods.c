/*
 * control_methods: the control-plane methods the editor calls
 * (PROTOCOL section 1): initialize, the server/ methods, auth/issueToken, the
 * workspace notifications, shutdown and exit; and the watch on the editor's
 * process (see control.h).
 */
#include "app/control_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "app/agents.h"
#include "app/approvals.h"
#include "app/client.h"
#include "app/counters.h"
#include "app/dataplane.h"
#include "app/events.h"
#include "app/private_paths.h"
#include "core/auth.h"
#include "core/clock.h"
#include "server/loop.h"
#include "workspace/commands.h"
#include "workspace/folder.h"
#include "workspace/utf8.h"

#define TTL_MAX_S      (365LL * 24 * 3600)
#define PARENT_POLL_MS 500

static void apply_log_level(struct control *ctl)
{
    ctl->env.log->level = (enum log_level)ctl->env.settings->log_level;
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

/* ---- the editor's process ---- */

static void parent_gone(struct control *ctl)
{
    log_msg(ctl->env.log, LOG_INFO, "the editor process %d is gone: stopping",
            (int)ctl->parent_pid);
    ctl->env.exit(ctl->env.ud, 1);
}

static void parent_poll_cb(void *arg)
{
    struct control *ctl = arg;
    if (kill(ctl->parent_pid, 0) < 0 && errno == ESRCH) {
        parent_gone(ctl);
        return;
    }
    loop_timer_arm(ctl->parent_poll, PARENT_POLL_MS);
}

/* A pidfd becomes readable when the process exits. */
static void on_parent(void *arg, unsigned events)
{
    struct control *ctl = arg;
    (void)events;
    loop_fd_close(ctl->parent_w);
    ctl->parent_w = NULL;
    parent_gone(ctl);
}

static int watch_parent(struct control *ctl, pid_t pid)
{
    ctl->parent_pid = pid;
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0 && errno == ESRCH)
        return -1;
    if (fd >= 0) {
        ctl->parent_w = loop_fd_watch(ctl->env.loop, fd, on_parent, ctl);
        if (ctl->parent_w)
            return 0;
        close(fd);
    }
    /* No pidfd (old kernel, seccomp): ask the kernel twice a second. */
    if (!ctl->parent_poll)
        ctl->parent_poll = loop_timer_new(ctl->env.loop, parent_poll_cb, ctl);
    if (ctl->parent_poll)
        loop_timer_arm(ctl->parent_poll, PARENT_POLL_MS);
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
static int parse_settings(struct control *ctl, json_object *obj, struct settings *out, char *err,
                          size_t errlen)
{
    const struct settings *cur = ctl->env.settings;
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
    if (!out->secret && cur->secret && !(out->secret = strdup(cur->secret))) {
        settings_free(out);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* A stop asked by server/stop or shutdown is done: answer it. */
static void stop_done(void *arg)
{
    struct control *ctl = arg;
    if (!ctl->pending_stop)
        return;
    struct rpc_req *req = ctl->pending_stop;
    ctl->pending_stop = NULL;
    /* shutdown answers null, as in LSP; server/stop answers {}. */
    rpc_respond(req, ctl->pending_stop_null ? NULL : json_object_new_object());
}

/* ---- methods ---- */

static void on_initialize(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct control *ctl = ud;
    char err[300];
    if (ctl->initialized) {
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
    if (parse_settings(ctl, param(params, "settings"), &s, err, sizeof(err)) < 0) {
        rpc_respond_error(req, RPC_INVALID_PARAMS, err, NULL);
        return;
    }
    json_object *empty = NULL;
    if (!folders)
        folders = empty = json_object_new_array();
    size_t skipped = 0;
    int rc = workspace_set_folders(ctl->env.ws, wsid ? json_object_get_string(wsid) : NULL, folders,
                                   &skipped, err, sizeof(err));
    json_object_put(empty);
    if (rc < 0) {
        settings_free(&s);
        rpc_respond_error(req, RPC_INVALID_PARAMS, err, NULL);
        return;
    }
    settings_free(ctl->env.settings);
    *ctl->env.settings = s;
    apply_log_level(ctl);
    events_resize(ctl->env.events, (size_t)ctl->env.settings->history_size);
    json_object *priv = param(params, "privatePaths");
    if (priv && !json_object_is_type(priv, json_type_array))
        log_msg(ctl->env.log, LOG_WARN,
                "privatePaths: expected an array of absolute paths (ignored)");
    else if (priv)
        private_paths_set_extra(ctl->env.priv, priv);
    private_paths_apply(ctl->env.priv, ctl->env.settings, ctl->env.ws, ctl->env.log);

    if (pid && watch_parent(ctl, (pid_t)json_object_get_int64(pid)) < 0) {
        rpc_respond_error(req, RPC_INVALID_PARAMS, "processId: no such process", NULL);
        ctl->env.exit(ctl->env.ud, 1);
        return;
    }
    ctl->initialized = 1;
    rpc_set_initialized(rpc, 1);
    ctl->env.folders_changed(ctl->env.ud);
    if (skipped)
        log_msg(ctl->env.log, LOG_WARN,
                "%zu workspace folder(s) are not local folders and are ignored", skipped);
    log_msg(ctl->env.log, LOG_INFO, "initialized: workspace %s (%s), %zu folder(s)",
            ctl->env.ws->id, ctl->env.ws->name, ctl->env.ws->n_folders);

    json_object *r = json_object_new_object();
    json_object *si = json_object_new_object();
    json_object_object_add(si, "name", json_object_new_string("companion-helper"));
    json_object_object_add(si, "version", json_object_new_string(COMPANION_VERSION));
    json_object_object_add(r, "serverInfo", si);
    json_object *caps = json_object_new_object();
    json_object_object_add(caps, "commands", cmd_names_json());
    json_object_object_add(r, "capabilities", caps);
    json_object_object_add(r, "workspaceId", json_object_new_string(ctl->env.ws->id));
    rpc_respond(req, r);
}

static void on_initialized(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
}

static json_object *start_result(struct control *ctl)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "url", json_object_new_string(server_url(ctl->env.server)));
    json_object_object_add(r, "host", json_object_new_string(ctl->env.settings->host));
    json_object_object_add(r, "port", json_object_new_int(server_port(ctl->env.server)));
    return r;
}

static void on_server_start(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct control *ctl = ud;
    char err[300];
    enum server_err e = ctl->env.start_server(ctl->env.ud, err, sizeof(err));
    if (e != SERVER_OK) {
        int code = e == SERVER_E_SETTINGS   ? RPC_INVALID_PARAMS
                   : e == SERVER_E_INTERNAL ? RPC_INTERNAL_ERROR
                                            : RPC_SERVER_ERROR;
        log_msg(ctl->env.log, LOG_ERROR, "server/start: %s", err);
        json_object *data = NULL;
        if (code == RPC_SERVER_ERROR) {
            data = json_object_new_object();
            json_object_object_add(data, "port", json_object_new_int(ctl->env.settings->port));
        }
        rpc_respond_error(req, code, err, data);
        return;
    }
    rpc_respond(req, start_result(ctl));
}

static void on_server_stop(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct control *ctl = ud;
    if (!server_running(ctl->env.server) && !server_stopping(ctl->env.server)) {
        rpc_respond(req, json_object_new_object());
        return;
    }
    if (ctl->pending_stop) {
        rpc_respond_error(req, RPC_INVALID_REQUEST, "a stop is already in progress", NULL);
        return;
    }
    ctl->pending_stop = req;
    ctl->pending_stop_null = 0;
    server_stop(ctl->env.server, stop_done, ctl);
}

static json_object *counters_json(const struct control *ctl)
{
    const struct server_counters *t = server_counters(ctl->env.server);
    const struct app_counters *c = ctl->env.counters;
    json_object *o = json_object_new_object();
#define C(name, field) json_object_object_add(o, name, json_object_new_int64((int64_t)c->field))
#define T(name, field) json_object_object_add(o, name, json_object_new_int64((int64_t)t->field))
    T("connectionsTotal", connections_total);
    T("connectionsRefused", connections_refused);
    C("authSucceeded", auth_succeeded);
    C("authFailed", auth_failed);
    T("authTimeouts", auth_timeouts);
    C("messagesIn", messages_in);
    T("messagesOut", messages_out);
    T("bytesIn", bytes_in);
    T("bytesOut", bytes_out);
    C("commands", commands);
    C("commandErrors", command_errors);
    C("invalidMessages", invalid_messages);
    C("rateLimited", rate_limited);
    T("slowConsumers", slow_consumers);
    T("heartbeatTimeouts", heartbeat_timeouts);
    T("oversizeMessages", oversize_messages);
    C("gitStatusCached", git_status_cached);
    C("gitStatusPartial", git_status_partial);
    C("gitStatusFull", git_status_full);
#undef C
#undef T
    json_object_object_add(o, "connections",
                           json_object_new_int(server_connections(ctl->env.server)));
    json_object_object_add(o, "authenticating",
                           json_object_new_int(server_authenticating(ctl->env.server)));
    return o;
}

static void on_server_status(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct control *ctl = ud;
    json_object *r = json_object_new_object();
    json_object_object_add(
        r, "state",
        json_object_new_string(server_running(ctl->env.server) ? "running" : "stopped"));
    json_object_object_add(r, "url",
                           server_running(ctl->env.server)
                               ? json_object_new_string(server_url(ctl->env.server))
                               : NULL);
    json_object_object_add(r, "host", json_object_new_string(ctl->env.settings->host));
    json_object_object_add(
        r, "port",
        server_running(ctl->env.server) ? json_object_new_int(server_port(ctl->env.server)) : NULL);
    json_object_object_add(r, "startedAt",
                           server_running(ctl->env.server)
                               ? json_object_new_int64(server_started_at_ms(ctl->env.server))
                               : NULL);
    json_object_object_add(r, "workspaceId", json_object_new_string(ctl->env.ws->id));
    json_object_object_add(r, "version", json_object_new_string(COMPANION_VERSION));
    json_object_object_add(r, "clients", dataplane_clients_json(ctl->env.dp));
    json_object_object_add(r, "counters", counters_json(ctl));
    rpc_respond(req, r);
}

static void on_server_broadcast(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct control *ctl = ud;
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
        delivered = events_publish(ctl->env.events, EVENT_NOTIFY, p);
        json_object *r = json_object_new_object();
        json_object_object_add(r, "delivered", json_object_new_int(delivered));
        rpc_respond(req, r);
        return;
    }
    for (struct client *c = *ctl->env.clients; c; c = c->next) {
        if (!c->authed || c->gone || session_is_closing(c->s))
            continue;
        json_object *msg = json_object_new_object();
        json_object_object_add(msg, "type", json_object_get(type));
        if (data)
            json_object_object_add(msg, "data", json_object_get(data));
        if (session_send_obj(c->s, msg) == 0)
            delivered++;
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "delivered", json_object_new_int(delivered));
    rpc_respond(req, r);
}

static void on_server_disconnect(struct rpc *rpc, struct rpc_req *req, json_object *params,
                                 void *ud)
{
    struct control *ctl = ud;
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
    struct client *cl = dataplane_find(ctl->env.dp, json_object_get_string(sid));
    struct session *s = cl ? cl->s : NULL;
    if (!s) {
        rpc_respond_error(req, RPC_INVALID_PARAMS, "sessionId: no such session", NULL);
        return;
    }
    log_msg(ctl->env.log, LOG_INFO, "session %s: disconnected by the editor", session_id(s));
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
            snprintf(err, errlen,
                     "scopes[%zu]: expected one of read, run, editor, approve, agent, write", i);
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
    struct control *ctl = ud;
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
    if (ctl->env.settings->alg != AUTH_ALG_HS256 || !ctl->env.settings->secret) {
        rpc_respond_error(req, RPC_INVALID_PARAMS,
                          ctl->env.settings->secret
                              ? "tokens can be issued only with auth.algorithm HS256"
                              : "auth.secret is not set",
                          NULL);
        return;
    }
    int64_t now = clock_wall_ms() / 1000, ttl_s = ttl ? json_object_get_int64(ttl) : 3600;
    char *token = NULL;
    if (auth_mint_hs256(
            (const unsigned char *)ctl->env.settings->secret, strlen(ctl->env.settings->secret),
            ctl->env.ws->id, user ? json_object_get_string(user) : "editor", scopes, now, ttl_s,
            ctl->env.settings->audience, ctl->env.settings->issuer, &token, err, sizeof(err)) < 0) {
        rpc_respond_error(req, RPC_INTERNAL_ERROR, err, NULL);
        return;
    }
    char url[300];
    if (server_running(ctl->env.server))
        snprintf(url, sizeof(url), "%s", server_url(ctl->env.server));
    else
        snprintf(url, sizeof(url), "ws://%s:%d/ws", ctl->env.settings->host,
                 ctl->env.settings->port);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "token", json_object_new_string(token));
    json_object_object_add(r, "expiresAt", json_object_new_int64((now + ttl_s) * 1000));
    json_object_object_add(r, "url", json_object_new_string(url));
    json_object_object_add(r, "workspaceId", json_object_new_string(ctl->env.ws->id));
    explicit_bzero(token, strlen(token));
    free(token);
    rpc_respond(req, r);
}

static void on_did_change_configuration(struct rpc *rpc, struct rpc_req *req, json_object *params,
                                        void *ud)
{
    struct control *ctl = ud;
    char err[300];
    struct settings s, old;
    if (parse_settings(ctl, param(params, "settings"), &s, err, sizeof(err)) < 0) {
        log_msg(ctl->env.log, LOG_ERROR, "settings refused, keeping the current ones: %s", err);
        return;
    }
    old = *ctl->env.settings;
    *ctl->env.settings = s;
    apply_log_level(ctl);
    events_resize(ctl->env.events, (size_t)ctl->env.settings->history_size);
    private_paths_apply(ctl->env.priv, ctl->env.settings, ctl->env.ws, ctl->env.log);
    if (auth_material_changed(&old, ctl->env.settings)) {
        int n = server_close_all(ctl->env.server, 4001, "credentials changed");
        if (n)
            log_msg(ctl->env.log, LOG_INFO, "auth settings changed: %d session(s) closed", n);
    }
    server_reconfigure(ctl->env.server, old.host, old.port);
    agents_settings_changed(ctl->env.agents);
    settings_free(&old);
    log_msg(ctl->env.log, LOG_INFO, "settings applied");
}

/* companion/lmChunk: a fragment of a vscode-lm agent's answer. */
static void on_lm_chunk(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    (void)rpc;
    (void)req;
    struct control *ctl = ud;
    agents_lm_chunk(ctl->env.agents, params);
}

static void on_did_change_folders(struct rpc *rpc, struct rpc_req *req, json_object *params,
                                  void *ud)
{
    struct control *ctl = ud;
    char err[300];
    if (workspace_change_folders(ctl->env.ws, param(params, "event"), err, sizeof(err)) < 0)
        log_msg(ctl->env.log, LOG_ERROR, "workspace folders change refused: %s", err);
    else {
        log_msg(ctl->env.log, LOG_INFO, "workspace folders: %zu", ctl->env.ws->n_folders);
        private_paths_apply(ctl->env.priv, ctl->env.settings, ctl->env.ws, ctl->env.log);
        ctl->env.folders_changed(ctl->env.ud);
    }
}

static void on_did_save(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct control *ctl = ud;
    json_object *uri = param(params, "uri");
    char *path = uri && json_object_is_type(uri, json_type_string)
                     ? workspace_path_from_uri(json_object_get_string(uri))
                     : NULL;
    char rel[PATH_MAX];
    int k =
        path ? folder_relative(ctl->env.ws->folders, ctl->env.ws->n_folders, path, rel, sizeof(rel))
             : -1;
    if (k >= 0 && strcmp(rel, ".") != 0) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "folder", utf8_json_string(ctl->env.ws->folders[k].name));
        json_object_object_add(p, "path", utf8_json_string(rel));
        events_publish(ctl->env.events, EVENT_FILE_SAVED, p);
    }
    free(path);
}

/* The person at the editor answers an approval. */
static void on_approval_decide(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct control *ctl = ud;
    if (need_object_params(req, params) < 0)
        return;
    json_object *idv = param(params, "approvalId"), *dv = param(params, "decision");
    unsigned decision = json_object_is_type(dv, json_type_string)
                            ? approval_decision_parse(json_object_get_string(dv))
                            : 0;
    if (!idv || !json_object_is_type(idv, json_type_int) || json_object_get_int64(idv) <= 0) {
        rpc_respond_error(req, RPC_INVALID_PARAMS, "approvalId: expected a positive integer", NULL);
        return;
    }
    if (!decision) {
        rpc_respond_error(req, RPC_INVALID_PARAMS,
                          "decision: expected allow_once, allow_always or deny", NULL);
        return;
    }
    char msg[200];
    static const char *const names[] = {"took", "unknown", "decided", "not_offered"};
    enum approval_answer a =
        approvals_decide(ctl->env.approvals, json_object_get_int64(idv),
                         (enum approval_decision)decision, "editor", msg, sizeof(msg));
    json_object *r = json_object_new_object();
    json_object_object_add(r, "approvalId", json_object_get(idv));
    json_object_object_add(r, "decision", json_object_get(dv));
    json_object_object_add(r, "took", json_object_new_boolean(a == APPROVAL_TOOK));
    json_object_object_add(r, "outcome", json_object_new_string(names[a]));
    json_object_object_add(r, "message", json_object_new_string(msg));
    rpc_respond(req, r);
}

static void on_approvals_list(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct control *ctl = ud;
    rpc_respond(req, approvals_list_json(ctl->env.approvals));
}

static void on_shutdown(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct control *ctl = ud;
    ctl->shutdown_received = 1;
    rpc_set_shutdown(rpc, 1);
    if ((server_running(ctl->env.server) || server_stopping(ctl->env.server)) &&
        !ctl->pending_stop) {
        ctl->pending_stop = req; /* answered null once clients are closed */
        ctl->pending_stop_null = 1;
        server_stop(ctl->env.server, stop_done, ctl);
        return;
    }
    rpc_respond(req, NULL);
}

static void on_exit_notification(struct rpc *rpc, struct rpc_req *req, json_object *params,
                                 void *ud)
{
    struct control *ctl = ud;
    ctl->env.exit(ctl->env.ud, ctl->shutdown_received ? 0 : 1);
}

const struct rpc_method control_methods[] = {
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
    {"approval/decide", 0, on_approval_decide},
    {"approvals/list", 0, on_approvals_list},
    {"companion/lmChunk", RPC_NOTIFICATION, on_lm_chunk},
    {"shutdown", 0, on_shutdown},
    {"exit", RPC_NOTIFICATION | RPC_BEFORE_INIT, on_exit_notification},
    {NULL, 0, NULL},
};
