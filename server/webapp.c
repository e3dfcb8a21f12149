/*
 * webapp: the phone client's files, answered from the table embedded at
 * build time (core/web_assets.h; see server/webapp.h for what this owns).
 * Every file is stored gzipped: a client that takes gzip gets those bytes
 * as they are, any other gets them inflated once for its reply.
 */
#include "server/webapp.h"

#include <ctype.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "core/web_assets.h"

/* Written per HTTP_WRITEABLE, so one client cannot hold the loop long. */
#define WEBAPP_PIECE 16384

int webapp_has(const char *path)
{
    return path && web_asset_find(path, strlen(path)) != NULL;
}

int webapp_pending(const struct webapp_reply *r)
{
    return r->data != NULL && r->off < r->len;
}

void webapp_reply_free(struct webapp_reply *r)
{
    free(r->owned);
    memset(r, 0, sizeof(*r));
}

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

int webapp_accepts_gzip(const char *ae)
{
    if (!ae)
        return 0;
    const char *s = ae;
    while (*s) {
        s = skip_ws(s);
        const char *tok = s;
        while (*s && *s != ',' && *s != ';' && *s != ' ' && *s != '\t')
            s++;
        size_t tlen = (size_t)(s - tok);
        int is_gzip = tlen == 4 && strncasecmp(tok, "gzip", 4) == 0;
        int q_zero = 0;
        /* Parameters: only q matters; q=0 (0, 0.0, 0.000) refuses. */
        while (*s && *s != ',') {
            s = skip_ws(s);
            if (*s == ';') {
                s = skip_ws(s + 1);
                if ((*s == 'q' || *s == 'Q') && *skip_ws(s + 1) == '=') {
                    const char *v = skip_ws(skip_ws(s + 1) + 1);
                    if (*v == '0') {
                        q_zero = 1;
                        v++;
                        if (*v == '.')
                            for (v++; isdigit((unsigned char)*v); v++)
                                if (*v != '0')
                                    q_zero = 0;
                    }
                    s = v;
                    continue;
                }
            }
            if (*s && *s != ',')
                s++;
        }
        if (is_gzip)
            return !q_zero;
        if (*s == ',')
            s++;
    }
    return 0;
}

int webapp_etag_matches(const char *inm, const char *etag)
{
    if (!inm || !etag)
        return 0;
    size_t elen = strlen(etag);
    const char *s = inm;
    while (*s) {
        s = skip_ws(s);
        if (*s == '*')
            return 1;
        if (s[0] == 'W' && s[1] == '/')
            s += 2; /* If-None-Match compares weakly */
        const char *tok = s;
        while (*s && *s != ',' && *s != ' ' && *s != '\t')
            s++;
        if ((size_t)(s - tok) == elen && memcmp(tok, etag, elen) == 0)
            return 1;
        while (*s && *s != ',')
            s++;
        if (*s == ',')
            s++;
    }
    return 0;
}

/* A header's value, or "" when absent or longer than the buffer. */
static void header(struct lws *wsi, enum lws_token_indexes t, char *buf, size_t size)
{
    buf[0] = '\0';
    int n = lws_hdr_total_length(wsi, t);
    if (n <= 0 || n >= (int)size || lws_hdr_copy(wsi, buf, (int)size, t) < 0)
        buf[0] = '\0';
}

static unsigned char *inflate_all(const struct web_asset *a)
{
    unsigned char *out = malloc(a->size ? a->size : 1);
    if (!out)
        return NULL;
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        free(out);
        return NULL;
    }
    z.next_in = (unsigned char *)a->gzip_bytes;
    z.avail_in = (uInt)a->gzip_len;
    z.next_out = out;
    z.avail_out = (uInt)a->size;
    int rc = inflate(&z, Z_FINISH);
    size_t got = z.total_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END || got != a->size) {
        free(out);
        return NULL;
    }
    return out;
}

static int add(struct lws *wsi, const char *name, const char *value, unsigned char **p,
               unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

int webapp_serve(struct lws *wsi, const char *path, struct webapp_reply *r)
{
    const struct web_asset *a = web_asset_find(path, strlen(path));
    if (!a)
        return 1;
    char *uri;
    int uri_len;
    int method = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
    int head = method == LWSHUMETH_HEAD;

    char buf[512];
    header(wsi, WSI_TOKEN_HTTP_ACCEPT_ENCODING, buf, sizeof(buf));
    int gzip = webapp_accepts_gzip(buf);
    header(wsi, WSI_TOKEN_HTTP_IF_NONE_MATCH, buf, sizeof(buf));
    int not_modified = webapp_etag_matches(buf, a->etag);

    webapp_reply_free(r);
    size_t len = gzip ? a->gzip_len : a->size;
    if (!head && !not_modified) {
        if (gzip) {
            r->data = a->gzip_bytes;
        } else {
            r->owned = inflate_all(a);
            if (!r->owned)
                return -1;
            r->data = r->owned;
        }
        r->len = len;
    }

    unsigned char hbuf[LWS_PRE + 2048];
    unsigned char *start = hbuf + LWS_PRE, *p = start, *end = hbuf + sizeof(hbuf) - 1;
    if (lws_add_http_common_headers(wsi, not_modified ? 304 : 200,
                                    not_modified ? NULL : a->content_type, len, &p, end) ||
        add(wsi, "etag:", a->etag, &p, end) ||
        add(wsi, "cache-control:",
            a->immutable ? "public, max-age=31536000, immutable" : "no-cache", &p, end) ||
        add(wsi, "vary:", "Accept-Encoding", &p, end) ||
        (gzip && !not_modified && add(wsi, "content-encoding:", "gzip", &p, end)) ||
        add(wsi, "content-security-policy:", WEBAPP_CSP, &p, end) ||
        add(wsi, "referrer-policy:", "no-referrer", &p, end) ||
        add(wsi, "x-content-type-options:", "nosniff", &p, end) ||
        add(wsi, "cross-origin-resource-policy:", "same-origin", &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end)) {
        webapp_reply_free(r);
        return 1;
    }
    if (!r->data) /* HEAD or 304: headers only */
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    lws_callback_on_writable(wsi);
    return 0;
}

int webapp_write(struct lws *wsi, struct webapp_reply *r)
{
    unsigned char buf[LWS_PRE + WEBAPP_PIECE];
    size_t n = r->len - r->off;
    if (n > WEBAPP_PIECE)
        n = WEBAPP_PIECE;
    int last = r->off + n == r->len;
    memcpy(buf + LWS_PRE, r->data + r->off, n);
    if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n) {
        webapp_reply_free(r);
        return -1;
    }
    r->off += n;
    if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    webapp_reply_free(r);
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}
