/*
 * settings_remote: server.publicUrl and server.tls.{certFile,keyFile}, from
 * the settings JSON into struct settings (checked here: a URL clients can
 * use, absolute paths, both files or neither). What the rest of the helper
 * does with them is core/remote.c's.
 *
 * Ownership: settings_parse_remote stores malloc'd strings in the struct
 * settings it fills (freed by settings_free); settings_url_parse and
 * settings_url_origin write into the caller's buffers.
 */
#include "core/settings.h"
#include "core/settings_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PUBLIC_URL_KEY "server.publicUrl"
#define TLS_PATH_MAX   4095
#define HOST_NAME_MAX_ 253

/* ---- server.publicUrl ---- */

static int is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.';
}

/* A DNS name or dotted quad: labels of 1-63 letters, digits and '-', not
 * starting or ending with '-', separated by single dots. */
static int host_name_ok(const char *h, size_t n)
{
    if (n == 0 || n > HOST_NAME_MAX_)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_host_char(h[i]))
            return 0;
        if (h[i] == '.') {
            if (label == 0 || h[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (h[i] == '-' && label == 0)
            return 0;
        if (++label > 63)
            return 0;
    }
    return label > 0 && h[n - 1] != '-';
}

/* The inside of [...]: hex digits, ':' and '.' (an embedded IPv4), at least
 * two colons. */
static int v6_literal_ok(const char *h, size_t n)
{
    size_t colons = 0;
    if (n < 2 || n > 45)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i] == ':')
            colons++;
        else if (!strchr("0123456789abcdefABCDEF.", h[i]))
            return 0;
    }
    return colons >= 2;
}

int settings_url_parse(const char *text, size_t len, struct settings_url *u, char *err,
                       size_t errlen)
{
    memset(u, 0, sizeof(*u));
    if (len >= SETTINGS_URL_MAX)
        return settings_fail(err, errlen, PUBLIC_URL_KEY ": longer than %d characters",
                             SETTINGS_URL_MAX - 1);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] <= 0x20 || (unsigned char)text[i] >= 0x7f)
            return settings_fail(err, errlen,
                                 PUBLIC_URL_KEY ": must not contain spaces, control or non-ASCII "
                                                "characters (write an international name in its "
                                                "xn-- form)");
    const char *p, *end = text + len;
    if (len >= 8 && strncasecmp(text, "https://", 8) == 0) {
        u->https = 1;
        p = text + 8;
    } else if (len >= 7 && strncasecmp(text, "http://", 7) == 0) {
        p = text + 7;
    } else {
        return settings_fail(err, errlen,
                             PUBLIC_URL_KEY ": expected an http:// or https:// URL (for example "
                                            "https://box.tailnet.ts.net)");
    }
    const char *auth_end = p;
    while (auth_end < end && !strchr("/?#", *auth_end))
        auth_end++;
    /* The order of these checks decides which problem is named first: the
     * credentials, then the query and fragment, then the rest. */
    if (memchr(p, '@', (size_t)(auth_end - p)))
        return settings_fail(err, errlen,
                             PUBLIC_URL_KEY ": must not contain a user name or password");
    if (memchr(auth_end, '?', (size_t)(end - auth_end)))
        return settings_fail(err, errlen, PUBLIC_URL_KEY ": must not have a query (?...)");
    if (memchr(auth_end, '#', (size_t)(end - auth_end)))
        return settings_fail(err, errlen, PUBLIC_URL_KEY ": must not have a fragment (#...)");
    if (auth_end < end && !(end - auth_end == 1 && *auth_end == '/'))
        return settings_fail(err, errlen,
                             PUBLIC_URL_KEY ": must not have a path (the helper serves its page "
                                            "at / and the WebSocket at /ws): drop \"%.64s\"",
                             auth_end);
    if (p == auth_end)
        return settings_fail(err, errlen, PUBLIC_URL_KEY ": has no host name");

    const char *host = p, *host_end, *colon = NULL;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(auth_end - p));
        if (!close || !v6_literal_ok(p + 1, (size_t)(close - p - 1)))
            return settings_fail(err, errlen,
                                 PUBLIC_URL_KEY ": expected an IPv6 address in brackets, such as "
                                                "https://[fd7a:115c::1]");
        host_end = close + 1;
        if (host_end < auth_end && *host_end != ':')
            return settings_fail(err, errlen,
                                 PUBLIC_URL_KEY ": expected ':' and a port after the IPv6 address");
        colon = host_end < auth_end ? host_end : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(auth_end - p));
        host_end = colon ? colon : auth_end;
        if (!host_name_ok(host, (size_t)(host_end - host)))
            return settings_fail(err, errlen,
                                 PUBLIC_URL_KEY ": the host must be a DNS name or an address "
                                                "(letters, digits, '-' and '.')");
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen >= sizeof(u->host))
        return settings_fail(err, errlen, PUBLIC_URL_KEY ": the host name is too long");
    for (size_t i = 0; i < hlen; i++)
        u->host[i] = (char)((host[i] >= 'A' && host[i] <= 'Z') ? host[i] - 'A' + 'a' : host[i]);
    u->host[hlen] = '\0';

    int dflt = u->https ? 443 : 80;
    u->port = dflt;
    if (colon) {
        const char *d = colon + 1;
        size_t dn = (size_t)(auth_end - d);
        long v = 0;
        /* Digits only, no leading zero: the port must read as a Host header
         * writes it. */
        int ok = dn >= 1 && dn <= 5 && d[0] != '0';
        for (size_t i = 0; ok && i < dn; i++) {
            if (d[i] < '0' || d[i] > '9')
                ok = 0;
            else
                v = v * 10 + (d[i] - '0');
        }
        if (!ok || v < 1 || v > 65535)
            return settings_fail(err, errlen,
                                 PUBLIC_URL_KEY ": the port must be a number from 1 to 65535");
        u->port = (int)v;
    }
    u->default_port = u->port == dflt;
    return 0;
}

int settings_url_origin(const struct settings_url *u, char *buf, size_t n)
{
    int w = u->default_port
                ? snprintf(buf, n, "%s://%s", u->https ? "https" : "http", u->host)
                : snprintf(buf, n, "%s://%s:%d", u->https ? "https" : "http", u->host, u->port);
    return w > 0 && (size_t)w < n ? 0 : -1;
}

/* ---- parsing ---- */

static int parse_tls_path(json_object *tls, const char *name, char **dst, char *err, size_t errlen)
{
    char path[KEY_PATH_LEN];
    const char *t;
    size_t len;
    json_object *v = settings_member(tls, name);
    if (!v)
        return 0;
    settings_key_path(path, sizeof(path), "server", "tls", name);
    if (settings_get_text(v, path, "an absolute file path", &t, &len, err, errlen) != 0)
        return -1;
    if (len == 0)
        return 0;
    if (t[0] != '/' || len > TLS_PATH_MAX)
        return settings_fail(err, errlen, "%s: expected an absolute file path", path);
    if (!(*dst = settings_dup_text(t, len)))
        return settings_oom(err, errlen);
    return 0;
}

int settings_parse_remote(struct settings *s, json_object *root, char *err, size_t errlen)
{
    json_object *server = settings_member(root, "server");
    /* A server that is not an object was refused by the key table already. */
    if (!server || !json_object_is_type(server, json_type_object))
        return 0;
    json_object *v = settings_member(server, "publicUrl");
    if (v) {
        const char *t;
        size_t len;
        struct settings_url u;
        char origin[SETTINGS_URL_MAX + 16];
        if (settings_get_text(v, PUBLIC_URL_KEY, "a URL such as https://box.tailnet.ts.net", &t,
                              &len, err, errlen) != 0)
            return -1;
        if (len > 0) {
            if (settings_url_parse(t, len, &u, err, errlen) != 0)
                return -1;
            if (settings_url_origin(&u, origin, sizeof(origin)) != 0)
                return settings_fail(err, errlen, PUBLIC_URL_KEY ": too long");
            if (!(s->public_url = strdup(origin)))
                return settings_oom(err, errlen);
        }
    }
    json_object *tls = settings_member(server, "tls");
    if (!tls)
        return 0;
    if (!json_object_is_type(tls, json_type_object))
        return settings_fail(err, errlen, "server.tls: expected an object");
    if (parse_tls_path(tls, "certFile", &s->tls_cert_file, err, errlen) != 0 ||
        parse_tls_path(tls, "keyFile", &s->tls_key_file, err, errlen) != 0)
        return -1;
    if (!s->tls_cert_file != !s->tls_key_file)
        return settings_fail(err, errlen, "server.tls: set both certFile and keyFile, or neither");
    return 0;
}
