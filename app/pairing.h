/*
 * pairing: what a pairing QR code or link carries (issue 17). The payload
 * is {v:1, url, workspaceId, token, expiresAt}; the link is the helper's own
 * page with the payload in the fragment, `http(s)://HOST:PORT/#pair=` +
 * base64url(payload), which a browser never sends to a server. Also the one
 * place that says which URL clients are told to use.
 *
 * Every result is malloc'd and owned by the caller (it may hold a token:
 * clear it with explicit_bzero before freeing).
 */
#ifndef COMPANION_PAIRING_H
#define COMPANION_PAIRING_H

#include <stddef.h>
#include <stdint.h>

struct server;
struct settings;

/* The data plane's URL clients are given: server.publicUrl's
 * (wss://box.example/ws) when set, else ws(s)://HOST:PORT/ws of the running
 * server, or of the settings while it is stopped (remote_ws_url). "" when
 * it does not fit in len bytes (REMOTE_URL_LEN always does). */
void pairing_server_url(const struct server *srv, const struct settings *st, char *buf, size_t len);
/* {v:1,url,workspaceId,token,expiresAt} as compact JSON. */
char *pairing_payload(const char *ws_url, const char *workspace_id, const char *token,
                      int64_t expires_ms);
/* http(s)://HOST:PORT/#pair=<base64url(payload)> from a ws(s):// URL;
 * NULL when the URL is not ws:// or wss://. */
char *pairing_link(const char *ws_url, const char *payload);
/* The link for a pairing token in one step (the payload in between is
 * cleared and freed here); NULL on the same errors or out of memory. */
char *pairing_link_for(const char *ws_url, const char *workspace_id, const char *token,
                       int64_t expires_ms);
/* explicit_bzero then free (NULL is fine): for a link or payload. */
void pairing_free(char *secret);

#endif
