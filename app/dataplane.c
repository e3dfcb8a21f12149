/*
 * dataplane: message semantics of a session (see dataplane.h). Replies go
 * through session_send*, so the outbound limits apply to all of them.
 */
#include "app/dataplane.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/auth.h"
#include "app/calls.h"
#include "core/envelope.h"
#include "core/guard.h"
#include "server/session.h"
#include "workspace/chat.h"
#include "workspace/command.h"

_Static_assert((unsigned)CMD_SCOPE_READ == (unsigned)AUTH_SCOPE_READ &&
                   (unsigned)CMD_SCOPE_RUN == (unsigned)AUTH_SCOPE_RUN &&
                   (unsigned)CMD_SCOPE_EDITOR == (unsigned)AUTH_SCOPE_EDITOR,
               "command scopes and token scopes must agree");

static json_object *scopes_json(unsigned scopes)
{
    json_object *arr = json_object_new_array();
    if (scopes & AUTH_SCOPE_READ)
        json_object_array_add(arr, json_object_new_string("read"));
    if (scopes & AUTH_SCOPE_RUN)
        json_object_array_add(arr, json_object_new_string("run"));
    if (scopes & AUTH_SCOPE_EDITOR)
        json_object_array_add(arr, json_object_new_string("editor"));
    return arr;
}

static void auth_config_from(const struct helper *h, struct auth_config *cfg)
{
    const struct settings *st = &h->settings;
    memset(cfg, 0, sizeof(*cfg));
    cfg->alg = (enum auth_alg)st->alg;
    if (st->alg == AUTH_ALG_HS256) {
        cfg->key = (const unsigned char *)st->secret;
        cfg->key_len = st->secret ? strlen(st->secret) : 0;
    } else {
        cfg->key = (const unsigned char *)st->public_key;
        cfg->key_len = st->public_key ? strlen(st->public_key) : 0;
    }
    cfg->audience = st->audience;
    cfg->issuer = st->issuer;
    cfg->leeway_s = st->leeway_s;
    cfg->workspace_id = h->ws.id;
}

static void auth_fail(struct session *s, json_object *id, enum auth_result r, const char *why)
{
    struct helper *h = s->h;
    h->counters.auth_failed++;
    log_msg(&h->log, LOG_INFO, "session %s from %s: authentication refused (%s: %s)", s->id,
            s->remote, auth_result_code(r), why);
    json_object *data = json_object_new_object();
    json_object_object_add(data, "success", json_object_new_boolean(0));
    json_object *err = json_object_new_object();
    json_object_object_add(err, "code", json_object_new_string(auth_result_code(r)));
    json_object_object_add(err, "message", json_object_new_string(why));
    json_object_object_add(data, "error", err);
    session_send(s, "auth_response", id, data);
    session_close(s, 4001, r == AUTH_EXPIRED ? "token expired" : "authentication failed");
}

/* Verifies a token and answers auth_response. Used for the first message,
 * the upgrade's header or query, and a refresh on a live session. */
static void authenticate(struct session *s, json_object *id, const char *token, size_t token_len,
                         const char *workspace_id)
{
    struct helper *h = s->h;
    struct auth_config cfg;
    auth_config_from(h, &cfg);
    struct auth_grant g = {0};
    char why[160] = "";
    enum auth_result r = auth_verify(&cfg, token, token_len, workspace_id, clock_wall_ms() / 1000,
                                     &g, why, sizeof(why));
    if (r == AUTH_OK && s->authed && strcmp(g.user_id, s->user_id) != 0) {
        r = AUTH_INVALID;
        snprintf(why, sizeof(why), "a refreshed token must be for the same user");
    }
    if (r != AUTH_OK) {
        auth_grant_clear(&g);
        auth_fail(s, id, r, why);
        return;
    }
    int refresh = s->authed;
    h->counters.auth_succeeded++;
    session_set_authed(s, g.user_id, g.scopes, g.exp);
    g.user_id = NULL;

    json_object *msg = json_object_new_object();
    json_object_object_add(msg, "type", json_object_new_string("auth_response"));
    if (id)
        json_object_object_add(msg, "id", json_object_get(id));
    json_object_object_add(msg, "sessionId", json_object_new_string(s->id));
    json_object *data = json_object_new_object();
    json_object_object_add(data, "success", json_object_new_boolean(1));
    json_object_object_add(data, "sessionId", json_object_new_string(s->id));
    json_object_object_add(data, "userId", json_object_new_string(s->user_id));
    json_object_object_add(data, "workspaceId", json_object_new_string(h->ws.id));
    json_object_object_add(data, "scopes", scopes_json(s->scopes));
    json_object_object_add(data, "heartbeatIntervalMs",
                           json_object_new_int64((int64_t)h->settings.heartbeat_interval_s * 1000));
    json_object_object_add(data, "expiresAt", json_object_new_int64(s->exp_s * 1000));
    json_object_object_add(msg, "data", data);
    session_send_obj(s, msg);

    if (!refresh) {
        log_msg(&h->log, LOG_INFO, "session %s: %s connected from %s", s->id, s->user_id,
                s->remote);
        /* Standalone (no editor): control_notify would drop it unread. */
        if (!h->rpc)
            return;
        json_object *n = json_object_new_object();
        json_object_object_add(n, "sessionId", json_object_new_string(s->id));
        json_object_object_add(n, "userId", json_object_new_string(s->user_id));
        json_object_object_add(n, "remoteAddress", json_object_new_string(s->remote));
        control_notify(h, "companion/clientConnected", n);
    }
}

void dataplane_on_established(struct session *s)
{
    struct guard_creds c;
    char buf[GUARD_TOKEN_MAX + 32];
    struct lws *wsi = s->wsi;
    guard_creds_init(&c);

    int hl = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (hl > 0) {
        int n = lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_AUTHORIZATION);
        if (n < 0)
            c.bad = "Authorization header too long";
        else
            guard_creds_header(&c, buf, (size_t)n);
    }
    /* Every query argument, long or not: lws_get_urlarg_by_name stops at
     * the first one longer than its buffer, which hid a workspaceId. */
    /* lws counts one separator between fragments in the total. */
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS), seen = 0;
    for (int idx = 0; seen < total && idx < 256; idx++) {
        int fl = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, idx);
        seen += fl + (idx > 0);
        if (fl <= 0)
            continue;
        int n = fl < (int)sizeof(buf)
                    ? lws_hdr_copy_fragment(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_URI_ARGS, idx)
                    : -1;
        guard_creds_arg(&c, n < 0 ? NULL : buf, n < 0 ? (size_t)fl : (size_t)n);
    }
    if (seen < total)
        c.bad = "too many query arguments";
    explicit_bzero(buf, sizeof(buf));
    if (c.bad && (c.has_token || c.from_header || c.has_workspace_id)) {
        auth_fail(s, NULL, AUTH_INVALID, c.bad);
    } else if (c.has_token) {
        authenticate(s, NULL, c.token, strlen(c.token), c.has_workspace_id ? c.workspace_id : NULL);
    }
    guard_creds_clear(&c);
}

void dataplane_session_closed(struct session *s)
{
    struct helper *h = s->h;
    if (!s->authed)
        return;
    log_msg(&h->log, LOG_INFO, "session %s: %s disconnected (%d %s)", s->id, s->user_id,
            s->close_code, s->close_reason);
    if (!h->rpc)
        return; /* no editor to tell */
    json_object *n = json_object_new_object();
    json_object_object_add(n, "sessionId", json_object_new_string(s->id));
    json_object_object_add(n, "userId", json_object_new_string(s->user_id));
    json_object_object_add(n, "remoteAddress", json_object_new_string(s->remote));
    json_object_object_add(
        n, "reason", json_object_new_string(s->close_code ? s->close_reason : "client closed"));
    control_notify(h, "companion/clientDisconnected", n);
}

static void on_auth_message(struct session *s, json_object *id, json_object *data)
{
    json_object *tok = NULL, *wsid = NULL;
    if (!data || !json_object_object_get_ex(data, "token", &tok) ||
        !json_object_is_type(tok, json_type_string)) {
        auth_fail(s, id, AUTH_INVALID, "data.token: expected a string");
        return;
    }
    if (json_object_object_get_ex(data, "workspaceId", &wsid) &&
        !json_object_is_type(wsid, json_type_string)) {
        auth_fail(s, id, AUTH_INVALID, "data.workspaceId: expected a string");
        return;
    }
    authenticate(s, id, json_object_get_string(tok), (size_t)json_object_get_string_len(tok),
                 wsid ? json_object_get_string(wsid) : NULL);
}

static void on_command(struct session *s, json_object *id, json_object *data)
{
    struct helper *h = s->h;
    json_object *name_o = NULL, *args = NULL;
    if (!data || !json_object_object_get_ex(data, "name", &name_o) ||
        !json_object_is_type(name_o, json_type_string)) {
        session_send_error(s, id, "INVALID_MESSAGE", "data.name: expected a string");
        return;
    }
    json_object_object_get_ex(data, "args", &args);
    if (args && !json_object_is_type(args, json_type_null) &&
        !json_object_is_type(args, json_type_object)) {
        calls_reply(s, id, NULL, "INVALID_ARGS", "args: expected an object");
        return;
    }
    if (args && json_object_is_type(args, json_type_null))
        args = NULL;

    const char *name = json_object_get_string(name_o);
    int64_t started = clock_mono_ms();
    h->counters.commands++;
    const struct cmd_def *def = cmd_lookup(name);
    if (!def) {
        h->counters.command_errors++;
        calls_reply(s, id, NULL, "UNKNOWN_COMMAND", "unknown command");
        return;
    }
    if ((def->scope & s->scopes) != def->scope) {
        h->counters.command_errors++;
        calls_reply(s, id, NULL, "FORBIDDEN", "the token's scopes do not allow this command");
        calls_audit(s, def->name, 0, started);
        return;
    }
    if (def->kind != CMD_KIND_SYNC) {
        calls_dispatch(s, def, id, args, NULL);
        return;
    }
    struct cmd_ctx ctx = {
        .ws = &h->ws,
        .version = COMPANION_VERSION,
        .session_id = s->id,
        .user_id = s->user_id,
        .scopes = s->scopes,
    };
    struct cmd_result res = {0};
    enum cmd_status st = def->fn(&ctx, args, &res);
    if (st == CMD_OK) {
        calls_reply(s, id, res.result, NULL, NULL);
    } else {
        h->counters.command_errors++;
        calls_reply(s, id, NULL, res.code ? res.code : "PROCESSING_ERROR", res.message);
    }
    calls_audit(s, def->name, st == CMD_OK, started);
}

static void on_chat(struct session *s, json_object *id, json_object *data)
{
    struct helper *h = s->h;
    json_object *text = NULL;
    if (!data || !json_object_object_get_ex(data, "text", &text) ||
        !json_object_is_type(text, json_type_string)) {
        session_send_error(s, id, "INVALID_MESSAGE", "data.text: expected a string");
        return;
    }
    const char **names = calloc(h->settings.tasks_n + 1, sizeof(char *));
    for (size_t i = 0; names && i < h->settings.tasks_n; i++)
        names[i] = h->settings.tasks[i].name;
    struct chat_env env = {s->scopes, names, names ? h->settings.tasks_n : 0};
    struct chat_request req;
    memset(&req, 0, sizeof(req));
    if (chat_parse(json_object_get_string(text), (size_t)json_object_get_string_len(text), &env,
                   &req) < 0) {
        free(names);
        session_send_error(s, id, "PROCESSING_ERROR", "out of memory");
        return;
    }
    free(names);
    h->counters.commands++;
    switch (req.kind) {
    case CHAT_REPLY:
        calls_chat_send(s, id, req.text ? req.text : "");
        break;
    case CHAT_NOTIFY:
        calls_chat_send(s, id, events_chat_notify(s, req.notify_on));
        break;
    case CHAT_CANCEL: {
        char name[128], msg[200];
        if (calls_chat_cancel(s, name, sizeof(name)))
            snprintf(msg, sizeof(msg), "Cancelling %s…", name);
        else
            snprintf(msg, sizeof(msg), "No task started from this chat is running.");
        calls_chat_send(s, id, msg);
        break;
    }
    case CHAT_COMMAND: {
        const struct cmd_def *def = cmd_lookup(req.command);
        if (!def) {
            calls_chat_send(s, id, "That command is not available.");
        } else if ((def->scope & s->scopes) != def->scope) {
            char *t =
                chat_format_error(req.word, "FORBIDDEN", "the token's scopes do not allow this");
            calls_chat_send(s, id, t ? t : "Not allowed.");
            free(t);
        } else {
            calls_dispatch(s, def, id, req.args, req.word);
        }
        break;
    }
    }
    chat_request_clear(&req);
}

void dataplane_on_message(struct session *s, const char *msg, size_t len, int binary)
{
    struct helper *h = s->h;
    h->counters.messages_in++;
    if (binary) {
        h->counters.invalid_messages++;
        session_send_error(s, NULL, "INVALID_MESSAGE", "binary frames are not supported");
        return;
    }
    struct envelope env;
    char why[160];
    if (envelope_parse(msg, len, &env, why, sizeof(why)) < 0) {
        h->counters.invalid_messages++;
        session_send_error(s, env.id, "INVALID_MESSAGE", why);
        envelope_clear(&env);
        return;
    }
    json_object *id = env.id, *data = env.data;
    const char *type = env.type;

    if (!s->authed) {
        if (strcmp(type, "auth") == 0) {
            on_auth_message(s, id, data);
        } else {
            session_send_error(s, id, "AUTH_REQUIRED", "authenticate first");
            session_close(s, 4001, "authentication required");
        }
    } else if (strcmp(type, "auth") == 0) {
        on_auth_message(s, id, data);
    } else if (strcmp(type, "ping") == 0) {
        session_send(s, "pong", id, NULL);
    } else if (strcmp(type, "subscribe") == 0 || strcmp(type, "unsubscribe") == 0) {
        if (session_rate_take(s))
            events_on_subscribe(s, id, data, type[0] == 's');
        else
            session_send_error(s, id, "RATE_LIMITED", "too many messages; slow down");
    } else if (strcmp(type, "chat") == 0) {
        if (session_rate_take(s))
            on_chat(s, id, data);
        else
            session_send_error(s, id, "RATE_LIMITED", "too many messages; slow down");
    } else if (strcmp(type, "command") == 0) {
        if (session_rate_take(s))
            on_command(s, id, data);
        else
            session_send_error(s, id, "RATE_LIMITED", "too many commands; slow down");
    } else {
        h->counters.invalid_messages++;
        session_send_error(s, id, "UNKNOWN_TYPE", "unknown message type");
    }
    envelope_clear(&env);
}
