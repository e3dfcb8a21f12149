/*
 * dataplane: message semantics of a session (see dataplane.h). Replies go
 * through session_send*, so the outbound limits apply to all of them.
 */
#include "app/dataplane.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/client.h"
#include "app/counters.h"
#include "app/agents.h"
#include "app/devices.h"
#include "app/dispatch.h"
#include "app/editor_port.h"
#include "app/events.h"
#include "app/sio_events.h"
#include "core/auth.h"
#include "core/clock.h"
#include "core/envelope.h"
#include "core/guard.h"
#include "core/log.h"
#include "server/server.h"
#include "workspace/chat.h"
#include "workspace/commands.h"

_Static_assert((unsigned)CMD_SCOPE_READ == (unsigned)AUTH_SCOPE_READ &&
                   (unsigned)CMD_SCOPE_RUN == (unsigned)AUTH_SCOPE_RUN &&
                   (unsigned)CMD_SCOPE_EDITOR == (unsigned)AUTH_SCOPE_EDITOR &&
                   (unsigned)CMD_SCOPE_APPROVE == (unsigned)AUTH_SCOPE_APPROVE &&
                   (unsigned)CMD_SCOPE_AGENT == (unsigned)AUTH_SCOPE_AGENT &&
                   (unsigned)CMD_SCOPE_WRITE == (unsigned)AUTH_SCOPE_WRITE,
               "command scopes and token scopes must agree");

struct dataplane {
    struct dataplane_env env;
    json_tokener *tok; /* owned: parses every message (see envelope_parse_with) */
};

static json_object *scopes_json(unsigned scopes)
{
    json_object *arr = json_object_new_array();
    if (scopes & AUTH_SCOPE_READ)
        json_object_array_add(arr, json_object_new_string("read"));
    if (scopes & AUTH_SCOPE_RUN)
        json_object_array_add(arr, json_object_new_string("run"));
    if (scopes & AUTH_SCOPE_EDITOR)
        json_object_array_add(arr, json_object_new_string("editor"));
    if (scopes & AUTH_SCOPE_APPROVE)
        json_object_array_add(arr, json_object_new_string("approve"));
    if (scopes & AUTH_SCOPE_AGENT)
        json_object_array_add(arr, json_object_new_string("agent"));
    if (scopes & AUTH_SCOPE_WRITE)
        json_object_array_add(arr, json_object_new_string("write"));
    return arr;
}

static void auth_config_from(const struct dataplane *dp, struct auth_config *cfg)
{
    const struct settings *st = dp->env.st;
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
    cfg->workspace_id = dp->env.ws->id;
}

static void auth_fail(struct dataplane *dp, struct client *c, json_object *id, enum auth_result r,
                      const char *why)
{
    dp->env.counters->auth_failed++;
    log_msg(dp->env.log, LOG_INFO, "session %s from %s: authentication refused (%s: %s)",
            session_id(c->s), session_remote(c->s), auth_result_code(r), why);
    if (session_dialect(c->s) == SESSION_SOCKETIO) {
        /* socket.io-client raises connect_error with this message. */
        char m[220];
        snprintf(m, sizeof(m), "%s: %s", auth_result_code(r), why);
        session_sio_connect_error(c->s, m);
        return;
    }
    if (session_dialect(c->s) == SESSION_ENVELOPE) {
        session_send_error(c->s, NULL, auth_result_code(r), why);
        session_close(c->s, 4001, r == AUTH_EXPIRED ? "token expired" : "authentication failed");
        return;
    }
    json_object *data = json_object_new_object();
    json_object_object_add(data, "success", json_object_new_boolean(0));
    json_object *err = json_object_new_object();
    json_object_object_add(err, "code", json_object_new_string(auth_result_code(r)));
    json_object_object_add(err, "message", json_object_new_string(why));
    json_object_object_add(data, "error", err);
    session_send(c->s, "auth_response", id, data);
    session_close(c->s, 4001, r == AUTH_EXPIRED ? "token expired" : "authentication failed");
}

/* A pairing token's first use: the long-lived token of the same device,
 * user and scopes (malloc'd), or NULL. */
static char *mint_device_token(struct dataplane *dp, const struct auth_grant *g, int64_t ttl_s,
                               int64_t now_s, char *why, size_t whylen)
{
    const struct settings *st = dp->env.st;
    char *tok = NULL;
    if (st->alg != AUTH_ALG_HS256 || !st->secret) {
        snprintf(why, whylen, "device tokens can be minted only with auth.algorithm HS256");
        return NULL;
    }
    struct auth_mint_req req = {.workspace_id = dp->env.ws->id,
                                .user_id = g->user_id,
                                .scopes = g->scopes,
                                .iat_s = now_s,
                                .ttl_s = ttl_s,
                                .audience = st->audience,
                                .issuer = st->issuer,
                                .device_id = g->device_id};
    if (auth_mint_hs256((const unsigned char *)st->secret, strlen(st->secret), &req, &tok, why,
                        whylen) < 0)
        return NULL;
    return tok;
}

static json_object *device_name_json(const struct dataplane *dp, const char *id)
{
    const char *name = dp->env.devices ? devices_name(dp->env.devices, id) : NULL;
    return name ? json_object_new_string(name) : NULL;
}

static struct sio_events_env sio_env(const struct dataplane *dp)
{
    struct sio_events_env e = {dp->env.st, dp->env.dispatch, dp->env.agents, dp->env.events,
                               dp->env.clients};
    return e;
}

/* auth_response {success, sessionId, userId, workspaceId, scopes, ...,
 * deviceId, deviceToken when a pairing token was exchanged}. */
static void authenticated_reply(struct dataplane *dp, struct client *c, json_object *id,
                                const char *device_token)
{
    const struct settings *st = dp->env.st;
    json_object *msg = json_object_new_object();
    json_object_object_add(msg, "type", json_object_new_string("auth_response"));
    if (id)
        json_object_object_add(msg, "id", json_object_get(id));
    json_object_object_add(msg, "sessionId", json_object_new_string(session_id(c->s)));
    json_object *data = json_object_new_object();
    json_object_object_add(data, "success", json_object_new_boolean(1));
    json_object_object_add(data, "sessionId", json_object_new_string(session_id(c->s)));
    json_object_object_add(data, "userId", json_object_new_string(c->user_id));
    json_object_object_add(data, "workspaceId", json_object_new_string(dp->env.ws->id));
    json_object_object_add(data, "scopes", scopes_json(c->scopes));
    json_object_object_add(data, "heartbeatIntervalMs",
                           json_object_new_int64((int64_t)st->heartbeat_interval_s * 1000));
    json_object_object_add(data, "expiresAt", json_object_new_int64(c->exp_s * 1000));
    json_object_object_add(data, "deviceId", json_object_new_string(c->device_id));
    if (device_token)
        json_object_object_add(data, "deviceToken", json_object_new_string(device_token));
    json_object_object_add(msg, "data", data);
    session_send_obj(c->s, msg);
}

/* Verifies a token and answers auth_response. Used for the first message,
 * the upgrade's header or query, and a refresh on a live session. */
static void authenticate(struct dataplane *dp, struct client *c, json_object *id, const char *token,
                         size_t token_len, const char *workspace_id, int from_url)
{
    const struct settings *st = dp->env.st;
    struct auth_config cfg;
    auth_config_from(dp, &cfg);
    struct auth_grant g = {0};
    char why[160] = "";
    int64_t now_ms = clock_wall_ms();
    enum auth_result r =
        auth_verify(&cfg, token, token_len, workspace_id, now_ms / 1000, &g, why, sizeof(why));
    if (r == AUTH_OK && c->authed && strcmp(g.user_id, c->user_id) != 0) {
        r = AUTH_INVALID;
        snprintf(why, sizeof(why), "a refreshed token must be for the same user");
    }
    if (r != AUTH_OK) {
        auth_grant_clear(&g);
        auth_fail(dp, c, id, r, why);
        return;
    }
    char token_key[65];
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, token_len, md);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(token_key + 2 * i, 3, "%02x", md[i]);

    /* A pairing token is exchanged for a device token in auth_response,
     * which Socket.IO and envelope sessions never get: refused there before
     * it is spent (docs/compatibility.md). */
    if (g.pairing && session_dialect(c->s) != SESSION_NATIVE) {
        auth_grant_clear(&g);
        auth_fail(dp, c, id, AUTH_INVALID,
                  "a pairing token works only on /ws (the phone app): pair there, or use a "
                  "device token");
        return;
    }
    /* The registry's word: revoked devices and spent pairing tokens. */
    struct devices_admitted adm;
    enum devices_verdict v = DEVICES_ADMIT;
    if (dp->env.devices) {
        devices_bind(dp->env.devices, dp->env.ws->id);
        v = devices_admit(dp->env.devices, &g, token_key, now_ms, &adm);
    } else {
        memset(&adm, 0, sizeof(adm));
        snprintf(adm.id, sizeof(adm.id), "%s", g.device_id);
        if (g.pairing)
            v = DEVICES_PAIRING_UNKNOWN;
    }
    if (v != DEVICES_ADMIT) {
        auth_grant_clear(&g);
        auth_fail(dp, c, id, AUTH_INVALID,
                  v == DEVICES_REVOKED        ? "this device was revoked"
                  : v == DEVICES_PAIRING_USED ? "this pairing link was already used: pair again"
                                              : "this pairing token names no device waiting to "
                                                "pair: pair again");
        return;
    }
    char *device_token = NULL;
    int64_t exp = g.exp;
    if (adm.paired_now) {
        device_token = mint_device_token(dp, &g, adm.device_ttl_s, now_ms / 1000, why, sizeof(why));
        if (!device_token) {
            auth_grant_clear(&g);
            auth_fail(dp, c, id, AUTH_INVALID, why);
            return;
        }
        exp = now_ms / 1000 + adm.device_ttl_s;
        SHA256((const unsigned char *)device_token, strlen(device_token), md);
        for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
            snprintf(token_key + 2 * i, 3, "%02x", md[i]);
    }
    int refresh = c->authed;
    dp->env.counters->auth_succeeded++;
    c->authed = 1;
    free(c->user_id);
    c->user_id = g.user_id;
    g.user_id = NULL;
    c->scopes = g.scopes;
    c->exp_s = exp;
    memcpy(c->token_key, token_key, sizeof(c->token_key));
    snprintf(c->device_id, sizeof(c->device_id), "%s", adm.id);
    /* exp was range-checked by auth_verify (or is ours), so this cannot overflow. */
    session_set_authed(c->s, (exp + st->leeway_s) * 1000);

    if (!refresh && session_dialect(c->s) == SESSION_SOCKETIO) {
        struct sio_events_env e = sio_env(dp);
        session_sio_connected(c->s);
        sio_events_connected(&e, c);
    } else if (!refresh && session_dialect(c->s) == SESSION_ENVELOPE) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "sessionId", json_object_new_string(session_id(c->s)));
        json_object_object_add(d, "userId", json_object_new_string(c->user_id));
        json_object_object_add(d, "scopes", scopes_json(c->scopes));
        session_send(c->s, "session_created", NULL, d);
    } else {
        authenticated_reply(dp, c, id, device_token);
        /* The streaming dialect's greeting, for clients that put their token
         * in the URL as that dialect's clients do (docs/protocol.md). */
        if (from_url && !refresh) {
            json_object *hello = json_object_new_object();
            json_object_object_add(hello, "type", json_object_new_string("connection_established"));
            json_object_object_add(hello, "sessionId", json_object_new_string(session_id(c->s)));
            json_object_object_add(hello, "content", json_object_new_string("Connected to server"));
            session_send_obj(c->s, hello);
        }
    }
    if (device_token) {
        explicit_bzero(device_token, strlen(device_token));
        free(device_token);
    }

    if (!refresh) {
        log_msg(dp->env.log, LOG_INFO, "session %s: %s connected from %s (device %s%s)",
                session_id(c->s), c->user_id, session_remote(c->s), c->device_id,
                adm.paired_now ? ", paired now" : "");
        const struct editor_port *ed = dp->env.editor;
        /* Standalone (no editor): nobody would read it. */
        if (!ed->attached(ed->ud))
            return;
        json_object *n = json_object_new_object();
        json_object_object_add(n, "sessionId", json_object_new_string(session_id(c->s)));
        json_object_object_add(n, "userId", json_object_new_string(c->user_id));
        json_object_object_add(n, "deviceId", json_object_new_string(c->device_id));
        json_object_object_add(n, "deviceName", device_name_json(dp, c->device_id));
        json_object_object_add(n, "remoteAddress", json_object_new_string(session_remote(c->s)));
        ed->notify(ed->ud, "companion/clientConnected", n);
    }
}

static void on_opened(void *ud, struct session *s, const struct guard_creds *creds)
{
    struct dataplane *dp = ud;
    struct client *c = calloc(1, sizeof(*c));
    if (!c) {
        session_close(s, 1011, "out of memory");
        return;
    }
    c->s = s;
    ratelimit_init(&c->rl, dp->env.st->commands_per_second, clock_mono_ms());
    c->next = *dp->env.clients;
    if (c->next)
        c->next->prev = c;
    *dp->env.clients = c;
    session_set_data(s, c);
    int dialect = session_dialect(s);
    if (creds->bad && (creds->has_token || creds->from_header || creds->has_workspace_id)) {
        auth_fail(dp, c, NULL, AUTH_INVALID, creds->bad);
    } else if (creds->has_token && dialect == SESSION_ENVELOPE &&
               strncmp(creds->token, "guest_", 6) == 0) {
        /* The envelope pattern's unauthenticated guests (docs/security.md). */
        auth_fail(dp, c, NULL, AUTH_INVALID,
                  "guest tokens are not accepted: use a Companion token");
    } else if (!creds->has_token && dialect == SESSION_ENVELOPE) {
        session_send_error(s, NULL, "AUTH_REQUIRED", "a token is required: /socket.io/?token=...");
        session_close(s, 4001, "authentication required");
    } else if (!creds->has_token && dialect == SESSION_SOCKETIO) {
        dp->env.counters->auth_failed++;
        session_sio_connect_error(s, "AUTH_REQUIRED: a token is required (auth: {token})");
    } else if (creds->has_token)
        authenticate(dp, c, NULL, creds->token, strlen(creds->token),
                     creds->has_workspace_id ? creds->workspace_id : NULL, !creds->from_header);
}

static void on_closed(void *ud, struct session *s)
{
    struct dataplane *dp = ud;
    struct client *c = session_data(s);
    if (!c)
        return;
    c->gone = 1;
    dispatch_client_gone(dp->env.dispatch, c);
    agents_client_gone(dp->env.agents, c);
    sio_events_client_gone(c);
    if (c->authed) {
        log_msg(dp->env.log, LOG_INFO, "session %s: %s disconnected (%d %s)", session_id(s),
                c->user_id, session_close_code(s),
                session_close_code(s) ? session_close_reason(s) : "");
        const struct editor_port *ed = dp->env.editor;
        if (ed->attached(ed->ud)) {
            json_object *n = json_object_new_object();
            json_object_object_add(n, "sessionId", json_object_new_string(session_id(s)));
            json_object_object_add(n, "userId", json_object_new_string(c->user_id));
            json_object_object_add(n, "deviceId", json_object_new_string(c->device_id));
            json_object_object_add(n, "deviceName", device_name_json(dp, c->device_id));
            json_object_object_add(n, "remoteAddress", json_object_new_string(session_remote(s)));
            json_object_object_add(n, "reason", json_object_new_string(session_close_reason(s)));
            ed->notify(ed->ud, "companion/clientDisconnected", n);
        }
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        *dp->env.clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    session_set_data(s, NULL);
    free(c->user_id);
    free(c);
}

static void on_auth_message(struct dataplane *dp, struct client *c, json_object *id,
                            json_object *data)
{
    json_object *tok = NULL, *wsid = NULL;
    if (!data || !json_object_object_get_ex(data, "token", &tok) ||
        !json_object_is_type(tok, json_type_string)) {
        auth_fail(dp, c, id, AUTH_INVALID, "data.token: expected a string");
        return;
    }
    if (json_object_object_get_ex(data, "workspaceId", &wsid) &&
        !json_object_is_type(wsid, json_type_string)) {
        auth_fail(dp, c, id, AUTH_INVALID, "data.workspaceId: expected a string");
        return;
    }
    authenticate(dp, c, id, json_object_get_string(tok), (size_t)json_object_get_string_len(tok),
                 wsid ? json_object_get_string(wsid) : NULL, 0);
}

/* The streaming dialect: {type:"user_message", content, sessionId} to the
 * agent; a bad one gets {type:"error", sessionId, error}. */
static void on_user_message(struct dataplane *dp, struct client *c, json_object *root)
{
    json_object *content = NULL, *sid = NULL;
    const char *session = session_id(c->s);
    if (json_object_object_get_ex(root, "sessionId", &sid) &&
        !json_object_is_type(sid, json_type_null)) {
        if (!json_object_is_type(sid, json_type_string) || json_object_get_string_len(sid) < 1 ||
            json_object_get_string_len(sid) > 128 ||
            strlen(json_object_get_string(sid)) != (size_t)json_object_get_string_len(sid)) {
            agents_stream_error(c, session, "sessionId: expected a string of 1 to 128 bytes");
            return;
        }
        session = json_object_get_string(sid);
    }
    if (!json_object_object_get_ex(root, "content", &content) ||
        !json_object_is_type(content, json_type_string) ||
        json_object_get_string_len(content) == 0 ||
        json_object_get_string_len(content) > AGENTS_PROMPT_MAX ||
        strlen(json_object_get_string(content)) != (size_t)json_object_get_string_len(content)) {
        agents_stream_error(c, session,
                            "content: expected a non-empty string (at most 64 KiB, no NUL)");
        return;
    }
    if (!(c->scopes & AUTH_SCOPE_AGENT)) {
        metrics_table_add_literal(&dp->env.counters->command_errors_by_code, "FORBIDDEN", 1);
        agents_stream_error(c, session, "this token may not talk to the agent (scope agent)");
        return;
    }
    dp->env.counters->commands++;
    agents_user_message(dp->env.agents, c, session, json_object_get_string(content));
}

static void on_command(struct dataplane *dp, struct client *c, json_object *id, json_object *data)
{
    json_object *name_o = NULL, *args = NULL;
    if (!data || !json_object_object_get_ex(data, "name", &name_o) ||
        !json_object_is_type(name_o, json_type_string)) {
        session_send_error(c->s, id, "INVALID_MESSAGE", "data.name: expected a string");
        return;
    }
    json_object_object_get_ex(data, "args", &args);
    if (args && !json_object_is_type(args, json_type_null) &&
        !json_object_is_type(args, json_type_object)) {
        dispatch_reply_command(c, id, NULL, "INVALID_ARGS", "args: expected an object");
        return;
    }
    if (args && json_object_is_type(args, json_type_null))
        args = NULL;

    int64_t started = clock_mono_ms();
    dp->env.counters->commands++;
    const struct cmd_def *def = cmd_lookup(json_object_get_string(name_o));
    if (!def) {
        metrics_table_add_literal(&dp->env.counters->command_errors_by_code, "UNKNOWN_COMMAND", 1);
        dp->env.counters->command_errors++;
        dispatch_reply_command(c, id, NULL, "UNKNOWN_COMMAND", "unknown command");
        return;
    }
    if ((def->scope & c->scopes) != def->scope) {
        metrics_table_add_literal(&dp->env.counters->command_errors_by_code, "FORBIDDEN", 1);
        dp->env.counters->command_errors++;
        dispatch_reply_command(c, id, NULL, "FORBIDDEN",
                               "the token's scopes do not allow this command");
        dispatch_reply_audit(dp->env.editor, c, def->name, 0, started);
        return;
    }
    if (def->kind == CMD_KIND_AGENT)
        agents_command(dp->env.agents, c, (int)def->agent_op, id, args);
    else
        dispatch_command(dp->env.dispatch, c, def, id, args, NULL);
}

static void on_chat(struct dataplane *dp, struct client *c, json_object *id, json_object *data)
{
    const struct settings *st = dp->env.st;
    json_object *text = NULL;
    if (!data || !json_object_object_get_ex(data, "text", &text) ||
        !json_object_is_type(text, json_type_string)) {
        session_send_error(c->s, id, "INVALID_MESSAGE", "data.text: expected a string");
        return;
    }
    /* data.chat: which of the bridge's chats this is (its agent conversation). */
    json_object *key_o = NULL;
    const char *key = NULL;
    if (json_object_object_get_ex(data, "chat", &key_o) &&
        !json_object_is_type(key_o, json_type_null)) {
        if (!json_object_is_type(key_o, json_type_string) ||
            json_object_get_string_len(key_o) < 1 || json_object_get_string_len(key_o) > 128) {
            session_send_error(c->s, id, "INVALID_MESSAGE",
                               "data.chat: expected a string of 1 to 128 bytes");
            return;
        }
        key = json_object_get_string(key_o);
    }
    const char **names = calloc(st->tasks_n + 1, sizeof(char *));
    for (size_t i = 0; names && i < st->tasks_n; i++)
        names[i] = st->tasks[i].name;
    /* With a default agent, prose goes to it (chat.h says what a command is). */
    struct chat_env env = {c->scopes, names, names ? st->tasks_n : 0,
                           agents_default_name(dp->env.agents)};
    struct chat_request req;
    memset(&req, 0, sizeof(req));
    if (chat_parse(json_object_get_string(text), (size_t)json_object_get_string_len(text), &env,
                   &req) < 0) {
        free(names);
        session_send_error(c->s, id, "PROCESSING_ERROR", "out of memory");
        return;
    }
    free(names);
    dp->env.counters->commands++;
    switch (req.kind) {
    case CHAT_REPLY:
        events_chat_reply(c, id, req.text ? req.text : "", 0);
        break;
    case CHAT_NOTIFY:
        events_chat_reply(c, id, events_chat_notify(c, req.notify_on), 0);
        break;
    case CHAT_AGENT_ASK:
        agents_chat(dp->env.agents, c, id, key, req.text, 0);
        break;
    case CHAT_AGENT_NEW:
        agents_chat(dp->env.agents, c, id, key, req.text, 1);
        break;
    case CHAT_AGENT_STOP:
        agents_chat_stop(dp->env.agents, c, id, key);
        break;
    case CHAT_CANCEL: {
        char name[128], msg[200];
        if (dispatch_chat_cancel(dp->env.dispatch, c, name, sizeof(name)))
            snprintf(msg, sizeof(msg), "Cancelling %s…", name);
        else
            snprintf(msg, sizeof(msg), "No task started from this chat is running.");
        events_chat_reply(c, id, msg, 0);
        break;
    }
    case CHAT_COMMAND: {
        const struct cmd_def *def = cmd_lookup(req.command);
        if (!def) {
            events_chat_reply(c, id, "That command is not available.", 0);
        } else if ((def->scope & c->scopes) != def->scope) {
            char *t =
                chat_format_error(req.word, "FORBIDDEN", "the token's scopes do not allow this");
            events_chat_reply(c, id, t ? t : "Not allowed.", 0);
            free(t);
        } else {
            dispatch_command(dp->env.dispatch, c, def, id, req.args, req.word);
        }
        break;
    }
    }
    chat_request_clear(&req);
}

/* One message allowed by the rate limit, or refused (and the client closed
 * 4008 when it keeps flooding). */
static int rate_take(struct dataplane *dp, struct client *c)
{
    switch (ratelimit_take(&c->rl, dp->env.st->commands_per_second, clock_mono_ms())) {
    case RATELIMIT_ALLOW:
        return 1;
    case RATELIMIT_ABUSE:
        dp->env.counters->rate_limited++;
        session_close(c->s, 4008, "rate limit exceeded");
        return 0;
    case RATELIMIT_REFUSE:
        break;
    }
    dp->env.counters->rate_limited++;
    return 0;
}

static void on_message(void *ud, struct session *s, const char *msg, size_t len, int binary)
{
    struct dataplane *dp = ud;
    struct client *c = session_data(s);
    if (!c)
        return;
    dp->env.counters->messages_in++;
    if (binary) {
        metrics_table_add_literal(&dp->env.counters->in_by_type, "invalid", 1);
        dp->env.counters->invalid_messages++;
        session_send_error(s, NULL, "INVALID_MESSAGE", "binary frames are not supported");
        return;
    }
    struct envelope env;
    char why[160];
    if (envelope_parse_with(dp->tok, msg, len, &env, why, sizeof(why)) < 0) {
        metrics_table_add_literal(&dp->env.counters->in_by_type, "invalid", 1);
        dp->env.counters->invalid_messages++;
        session_send_error(s, env.id, "INVALID_MESSAGE", why);
        envelope_clear(&env);
        return;
    }
    json_object *id = env.id, *data = env.data;
    const char *type = env.type;
    metrics_table_add(&dp->env.counters->in_by_type, type, 1); /* a closed table */

    if (!c->authed) {
        if (strcmp(type, "auth") == 0) {
            on_auth_message(dp, c, id, data);
        } else {
            session_send_error(s, id, "AUTH_REQUIRED", "authenticate first");
            session_close(s, 4001, "authentication required");
        }
    } else if (strcmp(type, "auth") == 0) {
        on_auth_message(dp, c, id, data);
    } else if (strcmp(type, "ping") == 0) {
        session_send(s, "pong", id, NULL);
    } else if (strcmp(type, "subscribe") == 0 || strcmp(type, "unsubscribe") == 0) {
        if (rate_take(dp, c))
            events_on_subscribe(dp->env.events, c, id, data, type[0] == 's');
        else
            session_send_error(s, id, "RATE_LIMITED", "too many messages; slow down");
    } else if (strcmp(type, "chat") == 0) {
        if (rate_take(dp, c))
            on_chat(dp, c, id, data);
        else
            session_send_error(s, id, "RATE_LIMITED", "too many messages; slow down");
    } else if (strcmp(type, "command") == 0) {
        if (rate_take(dp, c))
            on_command(dp, c, id, data);
        else
            session_send_error(s, id, "RATE_LIMITED", "too many commands; slow down");
    } else if (strcmp(type, "user_message") == 0) {
        if (rate_take(dp, c))
            on_user_message(dp, c, env.root);
        else
            agents_stream_error(c, session_id(s), "too many messages; slow down");
    } else {
        dp->env.counters->invalid_messages++;
        session_send_error(s, id, "UNKNOWN_TYPE", "unknown message type");
    }
    envelope_clear(&env);
}

static void on_sio_event(void *ud, struct session *s, const char *name, json_object *args,
                         int64_t ack)
{
    struct dataplane *dp = ud;
    struct client *c = session_data(s);
    if (!c || !c->authed)
        return;
    dp->env.counters->messages_in++;
    metrics_table_add_literal(&dp->env.counters->in_by_type, "socketio", 1);
    if (!rate_take(dp, c)) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "code", json_object_new_string("RATE_LIMITED"));
        json_object_object_add(e, "message",
                               json_object_new_string("too many messages; slow down"));
        session_sio_emit(s, "error", e);
        return;
    }
    dp->env.counters->commands++;
    struct sio_events_env e = sio_env(dp);
    sio_events_event(&e, c, name, args, ack);
}

static void on_sio_outgoing(void *ud, struct session *s, json_object *msg)
{
    struct dataplane *dp = ud;
    struct client *c = session_data(s);
    if (!c) {
        json_object_put(msg);
        return;
    }
    struct sio_events_env e = sio_env(dp);
    sio_events_outgoing(&e, c, msg);
}

struct dataplane *dataplane_new(const struct dataplane_env *env)
{
    struct dataplane *dp = calloc(1, sizeof(*dp));
    if (!dp)
        return NULL;
    dp->env = *env;
    dp->tok = envelope_tokener_new();
    if (!dp->tok) {
        free(dp);
        return NULL;
    }
    return dp;
}

void dataplane_free(struct dataplane *dp)
{
    if (dp)
        json_tokener_free(dp->tok);
    free(dp);
}

void dataplane_handler(struct dataplane *dp, struct session_handler *out)
{
    memset(out, 0, sizeof(*out));
    out->ud = dp;
    out->opened = on_opened;
    out->message = on_message;
    out->closed = on_closed;
    out->sio_event = on_sio_event;
    out->sio_outgoing = on_sio_outgoing;
}

json_object *dataplane_clients_json(const struct dataplane *dp)
{
    json_object *arr = json_object_new_array();
    for (const struct client *c = *dp->env.clients; c; c = c->next) {
        if (!c->authed)
            continue;
        json_object *o = json_object_new_object();
        char scopes[64];
        json_object_object_add(o, "sessionId", json_object_new_string(session_id(c->s)));
        json_object_object_add(o, "userId", json_object_new_string(c->user_id ? c->user_id : ""));
        json_object_object_add(o, "deviceId", json_object_new_string(c->device_id));
        json_object_object_add(o, "deviceName", device_name_json(dp, c->device_id));
        json_object_object_add(o, "remoteAddress", json_object_new_string(session_remote(c->s)));
        json_object_object_add(o, "connectedAt", json_object_new_int64(session_connected_ms(c->s)));
        json_object_object_add(
            o, "scopes",
            json_object_new_string(auth_scopes_format(c->scopes, scopes, sizeof(scopes))));
        json_object_object_add(o, "expiresAt", json_object_new_int64(c->exp_s * 1000));
        json_object_array_add(arr, o);
    }
    return arr;
}

int dataplane_device_sessions(const struct dataplane *dp, const char *device_id)
{
    int n = 0;
    for (const struct client *c = *dp->env.clients; c; c = c->next)
        if (c->authed && !c->gone && strcmp(c->device_id, device_id) == 0)
            n++;
    return n;
}

int dataplane_close_revoked(struct dataplane *dp)
{
    int n = 0;
    if (!dp->env.devices)
        return 0;
    for (struct client *c = *dp->env.clients; c; c = c->next) {
        if (!c->authed || c->gone || session_is_closing(c->s) || !c->device_id[0] ||
            !devices_is_revoked(dp->env.devices, c->device_id))
            continue;
        log_msg(dp->env.log, LOG_INFO, "session %s: device %s was revoked: closing",
                session_id(c->s), c->device_id);
        session_close(c->s, 4001, "this device was revoked");
        n++;
    }
    return n;
}

struct client *dataplane_find(const struct dataplane *dp, const char *session)
{
    for (struct client *c = *dp->env.clients; c; c = c->next)
        if (strcmp(session_id(c->s), session) == 0)
            return c;
    return NULL;
}
