/*
 * guard: the checks made on an HTTP request before anything else, as pure
 * functions of header text (no lws) so they can be unit-tested and fuzzed.
 *
 * Browsers are the attack path to a localhost server: a page may open a
 * WebSocket to 127.0.0.1 (Origin check) or reach it through a rebinding DNS
 * name (Host check).
 */
#ifndef COMPANION_GUARD_H
#define COMPANION_GUARD_H

#include "core/settings.h"

/* Host must be a loopback name (localhost, 127.0.0.1, [::1]) with the
 * server's port, or match an allowedHosts entry: Host equal to the entry, or,
 * for an entry without a port, that name with the server's port (a reverse
 * proxy on 80/443 sends the bare name). Case-insensitive. NULL or empty
 * host: refused. */
int guard_host_allowed(const char *host, int port, const struct settings_strv *allowed);

/* No Origin (native clients) passes; any Origin, loopback pages included,
 * must equal an allowedOrigins entry (case-insensitive, no trailing slash). */
int guard_origin_allowed(const char *origin, const struct settings_strv *allowed);

/* 1 when origin is the page's own: "http://" (or "https://" with tls) and
 * then exactly the request's Host (case-insensitive, no trailing slash).
 * The helper serves the phone client, so that page may open /ws without
 * being listed; the Host itself must still pass guard_host_allowed. */
int guard_origin_is_self(const char *origin, const char *host, int tls);

/* 1 for a host setting that only this machine can reach. */
int guard_host_is_loopback(const char *host);

/* The credentials an upgrade request may carry: `Authorization: Bearer`, or
 * `?token=` and `&workspaceId=` in the query. Every query argument is read,
 * whatever its length: an argument too long to hold, a repeated `token` or
 * `workspaceId`, or a NUL makes the request's credentials unusable
 * (`bad` set with a reason), so nothing the client sent is silently
 * skipped. Pure: fed argument by argument (as lws splits and decodes
 * them), so it is fuzzed without a socket. */
#define GUARD_TOKEN_MAX 8192 /* = AUTH_TOKEN_MAX */
#define GUARD_WSID_MAX  128  /* = WORKSPACE_ID_MAX */
struct guard_creds {
    char token[GUARD_TOKEN_MAX + 1];
    char workspace_id[GUARD_WSID_MAX + 1];
    int has_token, has_workspace_id, from_header;
    int query_tokens, query_ids; /* how many of each the query held */
    const char *bad;             /* static text: why the credentials are refused */
};
void guard_creds_init(struct guard_creds *c);
/* An Authorization header value (len bytes). A `Bearer` token there wins
 * over one in the query; other schemes are ignored. */
void guard_creds_header(struct guard_creds *c, const char *value, size_t len);
/* One query argument, "name=value" as lws hands it (len bytes, already
 * percent-decoded). len beyond what fits: pass the real length with
 * arg NULL, and the credentials become unusable. */
void guard_creds_arg(struct guard_creds *c, const char *arg, size_t len);
/* Wipes the token. */
void guard_creds_clear(struct guard_creds *c);

#endif
