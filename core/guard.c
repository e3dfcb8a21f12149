/*
 * guard: Host and Origin checks (see guard.h).
 */
#include "core/guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Splits "name:port" / "[v6]:port" into name and port; port -1 when absent,
 * -2 when malformed. name keeps the brackets of a v6 literal. */
static int split_host(const char *host, char *name, size_t namelen, int *port)
{
    const char *colon;
    if (host[0] == '[') {
        const char *close = strchr(host, ']');
        if (!close)
            return -1;
        colon = close[1] == ':' ? close + 1 : NULL;
        if (close[1] && !colon)
            return -1;
    } else {
        colon = strchr(host, ':');
        if (colon && strchr(colon + 1, ':'))
            return -1;
    }
    size_t n = colon ? (size_t)(colon - host) : strlen(host);
    if (n == 0 || n >= namelen)
        return -1;
    memcpy(name, host, n);
    name[n] = '\0';
    *port = -1;
    if (colon) {
        const char *p = colon + 1;
        /* Digits only and no leading zero: the port must read as the server
         * writes it, not just evaluate to the same number. */
        if (!*p || strlen(p) > 5 || strspn(p, "0123456789") != strlen(p) || (p[0] == '0' && p[1]))
            return -1;
        *port = atoi(p);
        if (*port > 65535)
            return -1;
    }
    return 0;
}

int guard_host_is_loopback(const char *name)
{
    if (strcasecmp(name, "localhost") == 0 || strcmp(name, "[::1]") == 0 ||
        strcmp(name, "::1") == 0)
        return 1;
    /* 127.0.0.0/8, written as a plain dotted quad. */
    unsigned a, b, c, d;
    char tail;
    return sscanf(name, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 &&
           c < 256 && d < 256;
}

int guard_host_allowed(const char *host, int port, const struct settings_strv *allowed)
{
    char name[256];
    int hport;
    if (!host || !*host || split_host(host, name, sizeof(name), &hport) < 0)
        return 0;
    if (hport == port && guard_host_is_loopback(name))
        return 1;
    for (size_t i = 0; allowed && i < allowed->n; i++) {
        const char *e = allowed->v[i];
        if (strcasecmp(e, host) == 0)
            return 1;
        char ename[256];
        int eport;
        if (split_host(e, ename, sizeof(ename), &eport) == 0 && eport == -1 && hport == port &&
            strcasecmp(ename, name) == 0)
            return 1;
    }
    return 0;
}

int guard_origin_allowed(const char *origin, const struct settings_strv *allowed)
{
    if (!origin || !*origin)
        return 1;
    size_t olen = strlen(origin);
    while (olen > 0 && origin[olen - 1] == '/')
        olen--;
    for (size_t i = 0; allowed && i < allowed->n; i++) {
        const char *e = allowed->v[i];
        size_t elen = strlen(e);
        while (elen > 0 && e[elen - 1] == '/')
            elen--;
        if (elen == olen && elen > 0 && strncasecmp(e, origin, olen) == 0)
            return 1;
    }
    return 0;
}

int guard_origin_is_self(const char *origin, const char *host, int tls)
{
    if (!origin || !host || !*host)
        return 0;
    const char *scheme = tls ? "https://" : "http://";
    size_t slen = strlen(scheme);
    if (strncasecmp(origin, scheme, slen) != 0)
        return 0;
    origin += slen;
    size_t olen = strlen(origin), hlen = strlen(host);
    while (olen > 0 && origin[olen - 1] == '/')
        olen--;
    return olen == hlen && strncasecmp(origin, host, hlen) == 0;
}

void guard_creds_init(struct guard_creds *c)
{
    memset(c, 0, sizeof(*c));
}

void guard_creds_clear(struct guard_creds *c)
{
    explicit_bzero(c->token, sizeof(c->token));
    guard_creds_init(c);
}

static void set_token(struct guard_creds *c, const char *v, size_t n)
{
    if (n > GUARD_TOKEN_MAX) {
        c->bad = "token too long";
        return;
    }
    if (memchr(v, '\0', n)) {
        c->bad = "token holds a NUL";
        return;
    }
    memcpy(c->token, v, n);
    c->token[n] = '\0';
    c->has_token = 1;
}

void guard_creds_header(struct guard_creds *c, const char *value, size_t len)
{
    if (len < 7 || strncasecmp(value, "Bearer ", 7) != 0)
        return;
    value += 7;
    len -= 7;
    while (len && (*value == ' ' || *value == '\t'))
        value++, len--;
    while (len && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    if (!len)
        return;
    c->from_header = 1;
    c->has_token = 0;
    set_token(c, value, len);
}

void guard_creds_arg(struct guard_creds *c, const char *arg, size_t len)
{
    if (!arg) {
        /* Too long to read: it might have been either credential. */
        c->bad = "query argument too long";
        return;
    }
    const char *eq = memchr(arg, '=', len);
    size_t nlen = eq ? (size_t)(eq - arg) : len;
    const char *v = eq ? eq + 1 : arg + len;
    size_t vlen = len - nlen - (eq ? 1 : 0);
    if (nlen == 5 && memcmp(arg, "token", 5) == 0) {
        if (c->query_tokens++ > 0) {
            c->bad = "token given twice";
            return;
        }
        if (c->from_header || vlen == 0)
            return;
        set_token(c, v, vlen);
    } else if (nlen == 11 && memcmp(arg, "workspaceId", 11) == 0) {
        if (c->query_ids++ > 0) {
            c->bad = "workspaceId given twice";
            return;
        }
        if (vlen > GUARD_WSID_MAX || memchr(v, '\0', vlen)) {
            c->bad = "workspaceId malformed";
            return;
        }
        memcpy(c->workspace_id, v, vlen);
        c->workspace_id[vlen] = '\0';
        c->has_workspace_id = 1;
    }
}
