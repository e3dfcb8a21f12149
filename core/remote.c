/*
 * remote: how the helper is reached from another machine (see remote.h).
 * The settings it reads were checked by core/settings_remote.c.
 */
#include "core/remote.h"

#include "core/guard.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* -1 with a formatted message in err (when err is not NULL). */
static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* The stored publicUrl, parsed again (it was checked when the settings were
 * parsed, so this fails only for a struct filled by hand). */
static int public_url(const struct settings *s, struct settings_url *u)
{
    if (!s || !s->public_url || !s->public_url[0])
        return -1;
    return settings_url_parse(s->public_url, strlen(s->public_url), u, NULL, 0);
}

int remote_tls_enabled(const struct settings *s)
{
    return s && s->tls_cert_file && s->tls_cert_file[0] && s->tls_key_file && s->tls_key_file[0];
}

int remote_base_url(const struct settings *s, int port, char *buf, size_t n)
{
    struct settings_url u;
    if (public_url(s, &u) == 0)
        return settings_url_origin(&u, buf, n);
    const char *host = s->host ? s->host : "127.0.0.1";
    int v6 = strchr(host, ':') && host[0] != '[';
    int w = snprintf(buf, n, v6 ? "%s://[%s]:%d" : "%s://%s:%d",
                     remote_tls_enabled(s) ? "https" : "http", host, port);
    return w > 0 && (size_t)w < n ? 0 : -1;
}

int remote_ws_url(const struct settings *s, int port, char *buf, size_t n)
{
    char base[SETTINGS_URL_MAX + 64];
    if (remote_base_url(s, port, base, sizeof(base)) < 0)
        return -1;
    /* "http..." -> "ws...": the scheme's tail ("s://" or "://") stays. */
    int w = snprintf(buf, n, "ws%s/ws", base + 4);
    return w > 0 && (size_t)w < n ? 0 : -1;
}

int remote_host_allowed(const struct settings *s, const char *host)
{
    struct settings_url u;
    char full[300];
    if (!host || !*host || public_url(s, &u) < 0)
        return 0;
    if (strcasecmp(host, u.host) == 0)
        return u.default_port;
    snprintf(full, sizeof(full), "%s:%d", u.host, u.port);
    return strcasecmp(host, full) == 0;
}

int remote_origin_allowed(const struct settings *s, const char *origin)
{
    struct settings_url u;
    char want[SETTINGS_URL_MAX + 16];
    if (!origin || !*origin || public_url(s, &u) < 0 || settings_url_origin(&u, want, sizeof(want)))
        return 0;
    size_t olen = strlen(origin);
    while (olen > 0 && origin[olen - 1] == '/')
        olen--;
    return olen == strlen(want) && strncasecmp(origin, want, olen) == 0;
}

size_t remote_warnings(const struct settings *s, char (*out)[REMOTE_WARNING_MAX], size_t max)
{
    size_t n = 0;
    struct settings_url u;
    if (!s)
        return 0;
    if (n < max && s->host && !guard_host_is_loopback(s->host) && !remote_tls_enabled(s))
        snprintf(out[n++], REMOTE_WARNING_MAX,
                 "listening on %.64s without TLS: tokens and everything the workspace shows cross "
                 "the network unencrypted, and anyone who can reach the port may try tokens. Set "
                 "server.tls.certFile and server.tls.keyFile, or listen on 127.0.0.1 behind an "
                 "HTTPS proxy (docs/remote-access.md)",
                 s->host);
    if (n < max && public_url(s, &u) == 0 && !u.https && !guard_host_is_loopback(u.host))
        snprintf(out[n++], REMOTE_WARNING_MAX,
                 "server.publicUrl %.128s is plain http:// on a name other machines reach: tokens "
                 "cross the network unencrypted unless the path itself is encrypted (a VPN, an "
                 "SSH tunnel); prefer https:// (docs/remote-access.md)",
                 s->public_url);
    return n;
}

/* ---- server.tls ---- */

/* Opens a file named by a setting, read-only, following links (certbot's
 * live/ files are links), refusing what is not a regular file. */
static FILE *open_setting_file(const char *key, const char *path, struct stat *st, char *err,
                               size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        fail(err, errlen, "%s: cannot read \"%s\": %s", key, path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        fail(err, errlen, "%s: cannot read \"%s\": not a regular file", key, path);
        close(fd);
        return NULL;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        fail(err, errlen, "%s: cannot read \"%s\": %s", key, path, strerror(errno));
        close(fd);
    }
    return f;
}

/* A key with a passphrase is refused rather than prompted for on a
 * terminal the helper may not have. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int remote_tls_check(const struct settings *s, char *err, size_t errlen)
{
    if (!s || (!s->tls_cert_file && !s->tls_key_file))
        return 0;
    if (!remote_tls_enabled(s))
        return fail(err, errlen, "server.tls: set both certFile and keyFile, or neither");
    struct stat st;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int rc = -1;
    FILE *f = open_setting_file("server.tls.certFile", s->tls_cert_file, &st, err, errlen);
    if (!f)
        goto out;
    cert = PEM_read_X509(f, NULL, no_passphrase, NULL);
    fclose(f);
    if (!cert) {
        fail(err, errlen, "server.tls.certFile: \"%s\" holds no PEM certificate", s->tls_cert_file);
        goto out;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
        fail(err, errlen,
             "server.tls.certFile: the certificate in \"%s\" has expired: make a new one",
             s->tls_cert_file);
        goto out;
    }
    if (!(f = open_setting_file("server.tls.keyFile", s->tls_key_file, &st, err, errlen)))
        goto out;
    /* Whoever can read the key can impersonate the helper to a phone that
     * trusts its certificate. */
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        fclose(f);
        fail(err, errlen,
             "server.tls.keyFile: other users can read or change \"%s\" (mode %04o): "
             "chmod 600 %s",
             s->tls_key_file, (unsigned)(st.st_mode & 07777), s->tls_key_file);
        goto out;
    }
    key = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
    fclose(f);
    if (!key) {
        fail(err, errlen,
             "server.tls.keyFile: \"%s\" holds no unencrypted PEM private key (a key "
             "with a passphrase cannot be used: openssl pkey -in KEY -out PLAIN)",
             s->tls_key_file);
        goto out;
    }
    if (X509_check_private_key(cert, key) != 1) {
        fail(err, errlen, "server.tls: the certificate in \"%s\" is not for the key in \"%s\"",
             s->tls_cert_file, s->tls_key_file);
        goto out;
    }
    rc = 0;
out:
    /* libcrypto queues why a read failed; none of it is ours to report. */
    ERR_clear_error();
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}
