/*
 * webapp: serving the phone client (web/) over HTTP from the table embedded
 * in the binary (core/web_assets.h). Owns the answers to GET and HEAD of
 * "/" and the app's files: gzip when the client takes it (inflated
 * otherwise), ETag and 304, Cache-Control (a year for hashed names,
 * revalidate for the rest), and the security headers (CSP, no referrer,
 * nosniff). Paths, Host and Origin are gated by ws_server.c before any of
 * this; nothing here reads the file system.
 */
#ifndef COMPANION_SERVER_WEBAPP_H
#define COMPANION_SERVER_WEBAPP_H

#include <stddef.h>

struct lws;

/* A body being written on HTTP_WRITEABLE, a piece at a time. */
struct webapp_reply {
    const unsigned char *data;
    size_t len, off;
    unsigned char *owned; /* data when it was inflated for this reply */
};

/* The Content-Security-Policy the app is served with. */
#define WEBAPP_CSP                                                                                 \
    "default-src 'self'; connect-src 'self' ws: wss:; base-uri 'none'; frame-ancestors 'none'"

/* 1 when path names an embedded file (or is "/"). */
int webapp_has(const char *path);

/* Answers a request for path (webapp_has was 1): headers now, the body
 * later through webapp_write. Returns 0 when the transaction goes on, 1 or
 * -1 to close the connection (lws's convention for LWS_CALLBACK_HTTP). */
int webapp_serve(struct lws *wsi, const char *path, struct webapp_reply *r);

/* On LWS_CALLBACK_HTTP_WRITEABLE with a reply pending: writes the next
 * piece. Returns 0 to go on, -1 to close. */
int webapp_write(struct lws *wsi, struct webapp_reply *r);

/* Whether r still has something to write. */
int webapp_pending(const struct webapp_reply *r);

void webapp_reply_free(struct webapp_reply *r);

/* 1 when an Accept-Encoding value takes gzip (listed, q not 0). Pure. */
int webapp_accepts_gzip(const char *accept_encoding);

/* 1 when an If-None-Match value names etag (or is "*"). Pure. */
int webapp_etag_matches(const char *if_none_match, const char *etag);

#endif
