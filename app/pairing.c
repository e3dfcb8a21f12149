/*
 * pairing: the pairing payload and link, and the URL clients are given
 * (see pairing.h).
 */
#include "app/pairing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/auth.h"
#include "core/remote.h"
#include "core/settings.h"
#include "server/server.h"

void pairing_server_url(const struct server *srv, const struct settings *st, char *buf, size_t len)
{
    /* server.publicUrl's when set, else the listener's (wss:// with TLS). */
    int port = srv && server_running(srv) ? server_port(srv) : st->port;
    if (remote_ws_url(st, port, buf, len) < 0 && len)
        buf[0] = '\0';
}

char *pairing_payload(const char *ws_url, const char *workspace_id, const char *token,
                      int64_t expires_ms)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "v", json_object_new_int(1));
    json_object_object_add(p, "url", json_object_new_string(ws_url));
    json_object_object_add(p, "workspaceId", json_object_new_string(workspace_id));
    json_object_object_add(p, "token", json_object_new_string(token));
    json_object_object_add(p, "expiresAt", json_object_new_int64(expires_ms));
    const char *s =
        json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    char *out = s ? strdup(s) : NULL;
    /* json-c keeps its own copy of the text until the object goes. */
    if (s)
        explicit_bzero((char *)s, strlen(s));
    json_object_put(p);
    return out;
}

char *pairing_link(const char *ws_url, const char *payload)
{
    const char *scheme, *rest;
    if (strncmp(ws_url, "ws://", 5) == 0)
        scheme = "http", rest = ws_url + 5;
    else if (strncmp(ws_url, "wss://", 6) == 0)
        scheme = "https", rest = ws_url + 6;
    else
        return NULL;
    size_t host_len = strcspn(rest, "/?#");
    size_t plen = strlen(payload);
    size_t b64_len = (plen + 2) / 3 * 4 + 1;
    size_t total = strlen(scheme) + 3 + host_len + 7 + b64_len + 1;
    char *b64 = malloc(b64_len), *out = malloc(total);
    if (!b64 || !out) {
        free(b64);
        free(out);
        return NULL;
    }
    auth_b64url_encode((const unsigned char *)payload, plen, b64);
    snprintf(out, total, "%s://%.*s/#pair=%s", scheme, (int)host_len, rest, b64);
    explicit_bzero(b64, b64_len);
    free(b64);
    return out;
}

char *pairing_link_for(const char *ws_url, const char *workspace_id, const char *token,
                       int64_t expires_ms)
{
    char *payload = pairing_payload(ws_url, workspace_id, token, expires_ms);
    char *link = payload ? pairing_link(ws_url, payload) : NULL;
    pairing_free(payload);
    return link;
}

void pairing_free(char *secret)
{
    if (secret)
        explicit_bzero(secret, strlen(secret));
    free(secret);
}
