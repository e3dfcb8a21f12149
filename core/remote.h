/*
 * remote: how the helper is reached from another machine (a phone), as pure
 * functions of the settings (no libwebsockets): the base URL clients are
 * given (server.publicUrl, else the listener's own address), the Host and
 * Origin that publicUrl adds to the HTTP gate, the optional TLS files
 * (server.tls.certFile / keyFile, checked with libcrypto before the server
 * uses them) and the warnings a risky listen address deserves.
 *
 * server.publicUrl and server.tls.* are parsed and checked by
 * core/settings_remote.c into struct settings (public_url, tls_cert_file,
 * tls_key_file; settings_url_parse splits a URL); nothing here allocates
 * except remote_tls_check's transient libcrypto objects. URLs built here fit
 * in REMOTE_URL_LEN bytes.
 */
#ifndef COMPANION_REMOTE_H
#define COMPANION_REMOTE_H

#include <stddef.h>

#include "core/settings.h"

#define REMOTE_URL_LEN      (SETTINGS_URL_MAX + 64)
#define REMOTE_WARNING_MAX  400
#define REMOTE_WARNINGS_MAX 2

/* 1 when both server.tls files are set: the listener speaks TLS. */
int remote_tls_enabled(const struct settings *s);

/* The base URL clients should use, without a trailing slash:
 * server.publicUrl when set, else http(s)://HOST:PORT of the listener (port:
 * the bound port, or the settings' when not running). 0, or -1 when it does
 * not fit in n bytes. */
int remote_base_url(const struct settings *s, int port, char *buf, size_t n);
/* The WebSocket URL on that base: ws(s)://…/ws. */
int remote_ws_url(const struct settings *s, int port, char *buf, size_t n);

/* 1 when Host is publicUrl's host and port: "name:port", or the bare name
 * when the port is the scheme's default (what a proxy on 443 sends).
 * Case-insensitive. 0 without a publicUrl. */
int remote_host_allowed(const struct settings *s, const char *host);
/* 1 when Origin is publicUrl's origin (the page the helper serves, as the
 * browser reached it through the proxy). 0 without a publicUrl. */
int remote_origin_allowed(const struct settings *s, const char *origin);

/* What is risky about how the server is reached, one sentence each
 * (listening beyond loopback without TLS; an http:// publicUrl on a name
 * other machines resolve). Returns how many were written to out. */
size_t remote_warnings(const struct settings *s, char (*out)[REMOTE_WARNING_MAX], size_t max);

/* Before a TLS listener starts: both files are regular and readable, the
 * certificate is PEM, the key is PEM, unencrypted and readable by its owner
 * only (no group or other permission bits), and the certificate is for that
 * key (X509_check_private_key). 0 (also without TLS), or -1 with err naming
 * the key and the file; never a byte of the key. */
int remote_tls_check(const struct settings *s, char *err, size_t errlen);

#endif
