/*
 * control_devices: the control-plane methods about who may connect:
 * auth/issueToken (a device token, or a single-use pairing token with its
 * link) and devices/list, devices/revoke, devices/rename (issue 19). The
 * tokens minted here are answered to the editor and never logged.
 */
#include "app/control_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/dataplane.h"
#include "app/devices.h"
#include "app/pairing.h"
#include "core/auth.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/remote.h"
#include "core/settings.h"
#include "workspace/workspace.h"

#define TTL_MAX_S (365LL * 24 * 3600)

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

static void respond_token(struct control *ctl, struct rpc_req *req, const char *token,
                          int64_t expires_ms, const char *dev_id, const char *dev_name, int pairing,
                          int64_t device_ttl)
{
    char url[REMOTE_URL_LEN];
    pairing_server_url(ctl->env.server, ctl->env.settings, url, sizeof(url));
    json_object *r = json_object_new_object();
    json_object_object_add(r, "token", json_object_new_string(token));
    json_object_object_add(r, "expiresAt", json_object_new_int64(expires_ms));
    json_object_object_add(r, "url", json_object_new_string(url));
    json_object_object_add(r, "workspaceId", json_object_new_string(ctl->env.ws->id));
    json_object_object_add(r, "deviceId", json_object_new_string(dev_id));
    json_object_object_add(r, "deviceName", json_object_new_string(dev_name));
    json_object_object_add(r, "pairing", json_object_new_boolean(pairing));
    if (pairing) {
        json_object_object_add(r, "deviceTtlSeconds", json_object_new_int64(device_ttl));
        char *link = pairing_link_for(url, ctl->env.ws->id, token, expires_ms);
        json_object_object_add(r, "pairUrl", link ? json_object_new_string(link) : NULL);
        pairing_free(link);
    }
    rpc_respond(req, r);
}

void control_on_issue_token(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct control *ctl = ud;
    char err[300];
    if (control_need_object(req, params) < 0)
        return;
    json_object *user = control_param(params, "userId"), *ttl = control_param(params, "ttlSeconds");
    json_object *name = control_param(params, "deviceName"),
                *pairing = control_param(params, "pairing");
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
    if (name && (!json_object_is_type(name, json_type_string) ||
                 !devices_name_ok(json_object_get_string(name)))) {
        rpc_respond_error(req, RPC_INVALID_PARAMS,
                          "deviceName: expected a string of 1 to 64 printable characters", NULL);
        return;
    }
    if (pairing && !json_object_is_type(pairing, json_type_boolean)) {
        rpc_respond_error(req, RPC_INVALID_PARAMS, "pairing: expected a boolean", NULL);
        return;
    }
    if (scopes_from_json(control_param(params, "scopes"), &scopes, err, sizeof(err)) < 0) {
        rpc_respond_error(req, RPC_INVALID_PARAMS, err, NULL);
        return;
    }
    const struct settings *st = ctl->env.settings;
    if (st->alg != AUTH_ALG_HS256 || !st->secret) {
        rpc_respond_error(req, RPC_INVALID_PARAMS,
                          st->secret ? "tokens can be issued only with auth.algorithm HS256"
                                     : "auth.secret is not set",
                          NULL);
        return;
    }
    int is_pairing = pairing && json_object_get_boolean(pairing);
    int64_t now_ms = clock_wall_ms(), ttl_s = ttl ? json_object_get_int64(ttl) : 3600;
    const char *user_id = user ? json_object_get_string(user) : "editor";
    const char *dev_name = name ? json_object_get_string(name) : "device";
    char dev_id[DEVICES_ID_LEN + 1];
    devices_bind(ctl->env.devices, ctl->env.ws->id);
    struct devices_add_req ar = {dev_name, user_id, scopes, ttl_s, is_pairing, now_ms};
    if (devices_add(ctl->env.devices, &ar, dev_id, err, sizeof(err)) < 0) {
        rpc_respond_error(req, RPC_INTERNAL_ERROR, err, NULL);
        return;
    }
    int64_t tok_ttl = is_pairing ? DEVICES_PAIRING_TTL_S : ttl_s;
    struct auth_mint_req mr = {.workspace_id = ctl->env.ws->id,
                               .user_id = user_id,
                               .scopes = scopes,
                               .iat_s = now_ms / 1000,
                               .ttl_s = tok_ttl,
                               .audience = st->audience,
                               .issuer = st->issuer,
                               .device_id = dev_id,
                               .pairing = is_pairing};
    char *token = NULL;
    if (auth_mint_hs256((const unsigned char *)st->secret, strlen(st->secret), &mr, &token, err,
                        sizeof(err)) < 0) {
        rpc_respond_error(req, RPC_INTERNAL_ERROR, err, NULL);
        return;
    }
    respond_token(ctl, req, token, (now_ms / 1000 + tok_ttl) * 1000, dev_id, dev_name, is_pairing,
                  ttl_s);
    explicit_bzero(token, strlen(token));
    free(token);
}

static int sessions_of(void *ud, const char *id)
{
    return dataplane_device_sessions(ud, id);
}

void control_on_devices_list(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct control *ctl = ud;
    if (control_need_object(req, params) < 0)
        return;
    devices_bind(ctl->env.devices, ctl->env.ws->id);
    rpc_respond(req,
                devices_list_json(ctl->env.devices, clock_wall_ms(), sessions_of, ctl->env.dp));
}

/* params.id as a device id, or an answered error. */
static const char *device_id_param(struct rpc_req *req, json_object *params)
{
    if (control_need_object(req, params) < 0)
        return NULL;
    json_object *id = control_param(params, "id");
    if (!id || !json_object_is_type(id, json_type_string) ||
        !auth_device_id_ok(json_object_get_string(id))) {
        rpc_respond_error(req, RPC_INVALID_PARAMS,
                          "id: expected a device id (1 to 64 of A-Z a-z 0-9 _ -)", NULL);
        return NULL;
    }
    return json_object_get_string(id);
}

static void unknown_device(struct rpc_req *req)
{
    json_object *data = json_object_new_object();
    json_object_object_add(data, "code", json_object_new_string("UNKNOWN_DEVICE"));
    rpc_respond_error(req, RPC_INVALID_PARAMS, "id: no such device (see devices/list)", data);
}

void control_on_devices_revoke(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct control *ctl = ud;
    const char *id = device_id_param(req, params);
    if (!id)
        return;
    devices_bind(ctl->env.devices, ctl->env.ws->id);
    if (devices_revoke(ctl->env.devices, id, clock_wall_ms()) < 0) {
        unknown_device(req);
        return;
    }
    log_msg(ctl->env.log, LOG_INFO, "device %s revoked by the editor", id);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "revoked", json_object_new_boolean(1));
    rpc_respond(req, r);
}

void control_on_devices_rename(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct control *ctl = ud;
    const char *id = device_id_param(req, params);
    if (!id)
        return;
    json_object *name = control_param(params, "name");
    if (!name || !json_object_is_type(name, json_type_string) ||
        !devices_name_ok(json_object_get_string(name))) {
        rpc_respond_error(req, RPC_INVALID_PARAMS,
                          "name: expected a string of 1 to 64 printable characters", NULL);
        return;
    }
    devices_bind(ctl->env.devices, ctl->env.ws->id);
    if (devices_rename(ctl->env.devices, id, json_object_get_string(name)) < 0) {
        unknown_device(req);
        return;
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "renamed", json_object_new_boolean(1));
    rpc_respond(req, r);
}
