/* companion-floor: the physical floor for bench/run.sh, NOT a product.
 *
 * The smallest honest C server that does what the load generator's figures
 * need (docs/performance.md, "The floor server"): one thread, level-triggered
 * epoll, the HTTP/1.1 upgrade to WebSocket (Sec-WebSocket-Accept through
 * OpenSSL SHA-1 and EVP_EncodeBlock), RFC 6455 framing (masked client
 * frames, text, continuation, close, ping/pong, 1 MiB message cap), json-c
 * parse of each message and json-c replies, the `auth` message with an
 * HS256 JWT checked with OpenSSL HMAC (alg pinned, no `crit`, exp, nbf/iat,
 * sub, the workspaceId claim equal to the message's and the server's, 30 s
 * leeway), `ping` -> `pong` and the `workspace.info` command, each reply
 * shaped like the helper's (same fields). A WebSocket PING to every
 * connection each 25 s, like the helper's heartbeat.
 *
 * Nothing else: no git, no tasks, no TLS, no rate limits, no timeouts, no
 * token in the URL (the load generator authenticates with a message). It
 * exists so that every benchmark figure can be read against what the same
 * work costs with no framework at all (helper/floor).
 *
 *   companion-floor --port P --workspace ID --folder PATH --secret-file F
 *
 * The HS256 key is the file's first line, as the load generator reads it
 * (never in argv). Loopback only. SIGTERM or SIGINT: exits 0. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_HTTP_HEAD 8192
#define MAX_MESSAGE   (1u << 20)
#define LEEWAY_S      30
#define HEARTBEAT_S   25
#define TOKEN_MAX     8192
#define VERSION       "floor"
#define TAG_LISTEN    UINT64_MAX
#define TAG_SIGNAL    (UINT64_MAX - 1)
#define TAG_HEARTBEAT (UINT64_MAX - 2)
#define WS_GUID       "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct buf {
    unsigned char *p;
    size_t len, cap;
};

enum { C_HTTP, C_OPEN, C_AUTHED, C_CLOSING };

struct conn {
    int fd;
    int state;
    bool want_out;
    bool frag;      /* a fragmented message is being assembled in msg */
    struct buf in;  /* bytes not yet parsed (partial head or frame); freed when empty */
    struct buf out; /* bytes the socket did not take; freed when empty */
    struct buf msg; /* a fragmented message being assembled */
    char session[37];
    struct conn *prev, *next; /* every connection, for the heartbeat */
};

static struct {
    int ep;
    char *secret;
    size_t secret_len;
    const char *workspace;
    const char *folder;
    const char *folder_name;
    struct conn *all;
    struct conn *dead; /* closed during this batch of events; freed after it */
    unsigned long nconns;
} S;

static _Noreturn void fail(const char *what)
{
    fprintf(stderr, "companion-floor: %s\n", what);
    exit(2);
}

static void buf_add(struct buf *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (p == NULL)
            fail("out of memory");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void buf_drop(struct buf *b, size_t n)
{
    if (n >= b->len) {
        free(b->p);
        memset(b, 0, sizeof(*b));
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

/* ---------- connections ---------- */

static void set_out_interest(struct conn *c, bool want)
{
    if (want == c->want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.ptr = c};
    epoll_ctl(S.ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
}

/* Closes now; the memory goes after the current batch of events, which may
 * still name this connection. */
static void conn_free(struct conn *c)
{
    if (c->fd < 0)
        return;
    epoll_ctl(S.ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        S.all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = NULL;
    c->next = S.dead;
    S.dead = c;
    S.nconns--;
}

static void reap_dead(void)
{
    while (S.dead != NULL) {
        struct conn *c = S.dead;
        S.dead = c->next;
        free(c->in.p);
        free(c->out.p);
        free(c->msg.p);
        free(c);
    }
}

/* Writes what the socket takes now; the rest waits for EPOLLOUT.
 * Returns false when the connection is gone. */
static bool conn_write(struct conn *c, const void *d, size_t n)
{
    if (c->out.len == 0) {
        while (n > 0) {
            ssize_t w = send(c->fd, d, n, MSG_NOSIGNAL);
            if (w > 0) {
                d = (const char *)d + w;
                n -= (size_t)w;
            } else if (w < 0 && errno == EINTR) {
                continue;
            } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                break;
            } else {
                conn_free(c);
                return false;
            }
        }
    }
    if (n > 0) {
        buf_add(&c->out, d, n);
        set_out_interest(c, true);
    }
    return true;
}

static bool conn_flush(struct conn *c)
{
    while (c->out.len > 0) {
        ssize_t w = send(c->fd, c->out.p, c->out.len, MSG_NOSIGNAL);
        if (w > 0) {
            buf_drop(&c->out, (size_t)w);
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return true;
        } else {
            conn_free(c);
            return false;
        }
    }
    set_out_interest(c, false);
    if (c->state == C_CLOSING) {
        conn_free(c);
        return false;
    }
    return true;
}

/* One unmasked server frame, header and payload in one write. */
static bool ws_frame(struct conn *c, int opcode, const void *d, size_t n)
{
    unsigned char stackbuf[4096];
    unsigned char *f = stackbuf;
    size_t h = 0;
    if (n + 10 > sizeof(stackbuf)) {
        f = malloc(n + 10);
        if (f == NULL)
            fail("out of memory");
    }
    f[h++] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        f[h++] = (unsigned char)n;
    } else if (n < 65536) {
        f[h++] = 126;
        f[h++] = (unsigned char)(n >> 8);
        f[h++] = (unsigned char)n;
    } else {
        f[h++] = 127;
        for (int i = 7; i >= 0; i--)
            f[h++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    memcpy(f + h, d, n);
    bool ok = conn_write(c, f, h + n);
    if (f != stackbuf)
        free(f);
    return ok;
}

/* Sends a close frame and ends the connection once it is written. */
static bool ws_close(struct conn *c, unsigned code, const char *reason)
{
    unsigned char p[128];
    size_t rl = strlen(reason);
    if (rl > sizeof(p) - 2)
        rl = sizeof(p) - 2;
    p[0] = (unsigned char)(code >> 8);
    p[1] = (unsigned char)code;
    memcpy(p + 2, reason, rl);
    if (!ws_frame(c, 8, p, rl + 2))
        return false;
    c->state = C_CLOSING;
    if (c->out.len == 0) {
        shutdown(c->fd, SHUT_WR);
        conn_free(c);
    }
    return false;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Adds timestamp, serialises with json-c, sends one text frame, frees msg. */
static bool send_json(struct conn *c, json_object *msg)
{
    json_object_object_add(msg, "timestamp", json_object_new_int64(now_ms()));
    size_t n = 0;
    const char *s = json_object_to_json_string_length(
        msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    bool ok = ws_frame(c, 1, s, n);
    json_object_put(msg);
    return ok;
}

static json_object *envelope(const char *type, json_object *id)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "type", json_object_new_string(type));
    if (id != NULL)
        json_object_object_add(m, "id", json_object_get(id));
    return m;
}

static json_object *error_obj(const char *code, const char *message)
{
    json_object *e = json_object_new_object();
    json_object_object_add(e, "code", json_object_new_string(code));
    json_object_object_add(e, "message", json_object_new_string(message));
    return e;
}

static bool send_error(struct conn *c, json_object *id, const char *code, const char *message)
{
    json_object *m = envelope("error", id);
    json_object_object_add(m, "data", error_obj(code, message));
    return send_json(c, m);
}

/* ---------- JWT (HS256) ---------- */

/* Exactly one JSON value filling all n bytes, or NULL. One tokener, reused. */
static json_object *parse_json(const unsigned char *p, size_t n)
{
    static json_tokener *tk;
    if (tk == NULL && (tk = json_tokener_new()) == NULL)
        fail("out of memory");
    if (n > INT32_MAX)
        return NULL;
    json_tokener_reset(tk);
    json_object *o = json_tokener_parse_ex(tk, (const char *)p, (int)n);
    if (json_tokener_get_error(tk) != json_tokener_success || json_tokener_get_parse_end(tk) != n) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* base64url without padding -> bytes; returns the length or -1. */
static long b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)in[i];
        int v = ch >= 'A' && ch <= 'Z'   ? ch - 'A'
                : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26
                : ch >= '0' && ch <= '9' ? ch - '0' + 52
                : ch == '-'              ? 62
                : ch == '_'              ? 63
                                         : -1;
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (bits >= 6) /* a single leftover character is never valid */
        return -1;
    return (long)o;
}

static json_object *b64url_json(const char *in, size_t n)
{
    unsigned char raw[TOKEN_MAX];
    long len = b64url_decode(in, n, raw, sizeof(raw));
    if (len <= 0)
        return NULL;
    json_object *o = parse_json(raw, (size_t)len);
    if (o != NULL && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static bool int_claim(json_object *p, const char *k, int64_t *v, bool required)
{
    json_object *o;
    if (!json_object_object_get_ex(p, k, &o))
        return !required;
    if (!json_object_is_type(o, json_type_int))
        return false;
    *v = json_object_get_int64(o);
    return true;
}

/* Returns NULL when the token is good (claims in *out), else the error code. */
static const char *verify_jwt(const char *tok, size_t len, const char *msg_ws, json_object **out)
{
    *out = NULL;
    if (len == 0 || len > TOKEN_MAX)
        return "AUTH_INVALID";
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
    if (d1 == NULL || d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) != NULL)
        return "AUTH_INVALID";
    /* signature first: nothing of an unsigned token is parsed */
    unsigned char sig[64], mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    long siglen = b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - tok), sig, sizeof(sig));
    if (siglen != 32 ||
        HMAC(EVP_sha256(), S.secret, (int)S.secret_len, (const unsigned char *)tok,
             (size_t)(d2 - tok), mac, &maclen) == NULL ||
        maclen != 32 || CRYPTO_memcmp(sig, mac, 32) != 0)
        return "AUTH_INVALID";
    json_object *hdr = b64url_json(tok, (size_t)(d1 - tok));
    json_object *alg = NULL;
    bool hdr_ok = hdr != NULL && json_object_object_get_ex(hdr, "alg", &alg) &&
                  json_object_is_type(alg, json_type_string) &&
                  strcmp(json_object_get_string(alg), "HS256") == 0 &&
                  !json_object_object_get_ex(hdr, "crit", NULL);
    json_object_put(hdr);
    if (!hdr_ok)
        return "AUTH_INVALID";
    json_object *p = b64url_json(d1 + 1, (size_t)(d2 - d1 - 1));
    if (p == NULL)
        return "AUTH_INVALID";
    int64_t now = (int64_t)time(NULL), exp = 0, nbf = 0, iat = 0;
    json_object *sub = NULL, *ws = NULL;
    if (!int_claim(p, "exp", &exp, true) || !int_claim(p, "nbf", &nbf, false) ||
        !int_claim(p, "iat", &iat, false) || nbf > now + LEEWAY_S || iat > now + LEEWAY_S ||
        !json_object_object_get_ex(p, "sub", &sub) || !json_object_is_type(sub, json_type_string) ||
        json_object_get_string_len(sub) == 0) {
        json_object_put(p);
        return "AUTH_INVALID";
    }
    if (exp + LEEWAY_S <= now) {
        json_object_put(p);
        return "AUTH_EXPIRED";
    }
    if (!json_object_object_get_ex(p, "workspaceId", &ws) ||
        !json_object_is_type(ws, json_type_string) || msg_ws == NULL ||
        strcmp(json_object_get_string(ws), msg_ws) != 0 ||
        strcmp(json_object_get_string(ws), S.workspace) != 0) {
        json_object_put(p);
        return "WORKSPACE_MISMATCH";
    }
    *out = p;
    return NULL;
}

static json_object *scopes_of(json_object *claims)
{
    static const char *const known[] = {"read", "run", "editor", "write", "approve"};
    json_object *arr = json_object_new_array();
    json_object *sc;
    if (!json_object_object_get_ex(claims, "scope", &sc) ||
        !json_object_is_type(sc, json_type_string)) {
        json_object_array_add(arr, json_object_new_string("read"));
        return arr;
    }
    const char *s = json_object_get_string(sc);
    for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
        size_t kl = strlen(known[k]);
        for (const char *w = s; *w;) {
            size_t wl = strcspn(w, " ");
            if (wl == kl && strncmp(w, known[k], kl) == 0) {
                json_object_array_add(arr, json_object_new_string(known[k]));
                break;
            }
            w += wl;
            w += strspn(w, " ");
        }
    }
    return arr;
}

/* ---------- messages ---------- */

static bool on_auth(struct conn *c, json_object *id, json_object *data)
{
    json_object *tok = NULL, *ws = NULL, *claims = NULL;
    const char *err = "AUTH_INVALID";
    if (json_object_object_get_ex(data, "token", &tok) &&
        json_object_is_type(tok, json_type_string)) {
        json_object_object_get_ex(data, "workspaceId", &ws);
        err = verify_jwt(
            json_object_get_string(tok), (size_t)json_object_get_string_len(tok),
            ws && json_object_is_type(ws, json_type_string) ? json_object_get_string(ws) : NULL,
            &claims);
    }
    if (err != NULL) {
        json_object *m = envelope("auth_response", id);
        json_object *d = json_object_new_object();
        json_object_object_add(d, "success", json_object_new_boolean(0));
        json_object_object_add(d, "error", error_obj(err, "authentication failed"));
        json_object_object_add(m, "data", d);
        if (!send_json(c, m))
            return false;
        return ws_close(c, 4001, "authentication failed");
    }
    int64_t exp = 0;
    int_claim(claims, "exp", &exp, true);
    json_object *sub = NULL;
    json_object_object_get_ex(claims, "sub", &sub);
    c->state = C_AUTHED;
    json_object *m = envelope("auth_response", id);
    json_object_object_add(m, "sessionId", json_object_new_string(c->session));
    json_object *d = json_object_new_object();
    json_object_object_add(d, "success", json_object_new_boolean(1));
    json_object_object_add(d, "sessionId", json_object_new_string(c->session));
    json_object_object_add(d, "userId", json_object_get(sub));
    json_object_object_add(d, "workspaceId", json_object_new_string(S.workspace));
    json_object_object_add(d, "scopes", scopes_of(claims));
    json_object_object_add(d, "heartbeatIntervalMs", json_object_new_int64(HEARTBEAT_S * 1000));
    json_object_object_add(d, "expiresAt", json_object_new_int64(exp * 1000));
    json_object_object_add(d, "deviceId", json_object_new_string(""));
    json_object_object_add(m, "data", d);
    json_object_put(claims);
    return send_json(c, m);
}

static bool on_command(struct conn *c, json_object *id, json_object *data)
{
    json_object *name = NULL;
    if (data == NULL || !json_object_object_get_ex(data, "name", &name) ||
        !json_object_is_type(name, json_type_string))
        return send_error(c, id, "INVALID_MESSAGE", "command needs data.name");
    if (strcmp(json_object_get_string(name), "workspace.info") != 0)
        return send_error(c, id, "UNKNOWN_COMMAND", "unknown command");
    json_object *r = json_object_new_object();
    json_object_object_add(r, "workspaceId", json_object_new_string(S.workspace));
    json_object_object_add(r, "name", json_object_new_string(S.folder_name));
    json_object *folders = json_object_new_array();
    json_object *f = json_object_new_object();
    json_object_object_add(f, "name", json_object_new_string(S.folder_name));
    json_object_object_add(f, "path", json_object_new_string(S.folder));
    json_object_array_add(folders, f);
    json_object_object_add(r, "folders", folders);
    json_object_object_add(r, "version", json_object_new_string(VERSION));
    json_object *d = json_object_new_object();
    json_object_object_add(d, "success", json_object_new_boolean(1));
    json_object_object_add(d, "result", r);
    json_object *m = envelope("command_response", id);
    json_object_object_add(m, "data", d);
    return send_json(c, m);
}

/* One whole text message. Returns false when the connection is gone. */
static bool on_message(struct conn *c, const unsigned char *p, size_t n)
{
    json_tokener *tk = json_tokener_new();
    if (tk == NULL)
        fail("out of memory");
    json_object *msg = json_tokener_parse_ex(tk, (const char *)p, (int)n);
    bool whole =
        json_tokener_get_error(tk) == json_tokener_success && json_tokener_get_parse_end(tk) == n;
    json_tokener_free(tk);
    json_object *type = NULL, *id = NULL, *data = NULL;
    if (!whole || !json_object_is_type(msg, json_type_object) ||
        !json_object_object_get_ex(msg, "type", &type) ||
        !json_object_is_type(type, json_type_string)) {
        json_object_put(msg);
        return send_error(c, NULL, "INVALID_MESSAGE", "invalid envelope");
    }
    json_object_object_get_ex(msg, "id", &id);
    json_object_object_get_ex(msg, "data", &data);
    if (data != NULL && !json_object_is_type(data, json_type_object))
        data = NULL;
    const char *t = json_object_get_string(type);
    bool ok;
    if (strcmp(t, "auth") == 0) {
        ok = on_auth(c, id, data ? data : msg);
    } else if (c->state != C_AUTHED) {
        json_object *m = envelope("error", id);
        json_object_object_add(m, "data", error_obj("AUTH_REQUIRED", "authenticate first"));
        ok = send_json(c, m) && ws_close(c, 4001, "authentication required");
    } else if (strcmp(t, "ping") == 0) {
        ok = send_json(c, envelope("pong", id));
    } else if (strcmp(t, "command") == 0) {
        ok = on_command(c, id, data);
    } else {
        ok = send_error(c, id, "UNKNOWN_TYPE", "unknown type");
    }
    json_object_put(msg);
    return ok;
}

/* Parses whole frames at the front of d. Returns the bytes used, or -1 when
 * the connection is gone. */
static long on_frames(struct conn *c, unsigned char *d, size_t avail)
{
    size_t used = 0;
    while (avail - used >= 2) {
        unsigned char *p = d + used;
        size_t left = avail - used;
        bool fin = p[0] & 0x80;
        int op = p[0] & 0x0f;
        uint64_t len = p[1] & 0x7f;
        size_t h = 2;
        if ((p[0] & 0x70) != 0 || !(p[1] & 0x80))
            return ws_close(c, 1002, "protocol error"), -1; /* RSV bits; unmasked client frame */
        if (len == 126) {
            if (left < 4)
                break;
            len = (uint64_t)p[2] << 8 | p[3];
            h = 4;
        } else if (len == 127) {
            if (left < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | p[2 + i];
            h = 10;
        }
        if (len > MAX_MESSAGE || c->msg.len + len > MAX_MESSAGE)
            return ws_close(c, 1009, "message too big"), -1;
        if (op >= 8 && (len > 125 || !fin))
            return ws_close(c, 1002, "protocol error"), -1;
        if (left < h + 4 + len)
            break;
        unsigned char *mask = p + h, *pl = p + h + 4;
        for (uint64_t i = 0; i < len; i++)
            pl[i] ^= mask[i & 3];
        used += h + 4 + (size_t)len;
        if (op == 8) { /* close: answer with the same code, then end */
            return ws_close(c, len >= 2 ? (unsigned)pl[0] << 8 | pl[1] : 1000, ""), -1;
        } else if (op == 9) {
            if (!ws_frame(c, 10, pl, (size_t)len))
                return -1;
        } else if (op == 10) {
            /* pong: nothing to do */
        } else if (op == 1 || op == 0) {
            if ((op == 1) == c->frag) /* text inside a fragmented one, or a stray continuation */
                return ws_close(c, 1002, "protocol error"), -1;
            if (fin && !c->frag) {
                if (!on_message(c, pl, (size_t)len))
                    return -1;
            } else {
                buf_add(&c->msg, pl, (size_t)len);
                c->frag = !fin;
                if (fin) {
                    bool ok = on_message(c, c->msg.p, c->msg.len);
                    if (!ok)
                        return -1;
                    buf_drop(&c->msg, c->msg.len);
                }
            }
        } else {
            return ws_close(c, 1003, "text frames only"), -1;
        }
        if (c->state == C_CLOSING)
            return -1;
    }
    return (long)used;
}

/* ---------- the HTTP upgrade ---------- */

/* The value of header `name` in the head (case-insensitive name), trimmed. */
static bool header(const char *head, const char *name, const char **v, size_t *vl)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l != NULL; l = strstr(l, "\r\n")) {
        l += 2;
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *s = l + nl + 1;
            while (*s == ' ' || *s == '\t')
                s++;
            const char *e = strstr(s, "\r\n");
            while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            *v = s;
            *vl = (size_t)(e - s);
            return true;
        }
    }
    return false;
}

static bool has_token(const char *v, size_t vl, const char *tok)
{
    size_t tl = strlen(tok);
    for (size_t i = 0; i + tl <= vl; i++) {
        if (strncasecmp(v + i, tok, tl) == 0 && (i == 0 || v[i - 1] == ' ' || v[i - 1] == ',') &&
            (i + tl == vl || v[i + tl] == ' ' || v[i + tl] == ','))
            return true;
    }
    return false;
}

static bool http_refuse(struct conn *c, const char *status)
{
    char r[128];
    int n = snprintf(r, sizeof(r), "HTTP/1.1 %s\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                     status);
    if (!conn_write(c, r, (size_t)n))
        return false;
    c->state = C_CLOSING;
    if (c->out.len == 0)
        conn_free(c);
    return false;
}

/* Handles a complete head (NUL-terminated, ends with the blank line). */
static bool on_http_head(struct conn *c, char *head)
{
    const char *v, *key;
    size_t vl, kl;
    if (strncmp(head, "GET /ws", 7) != 0 || (head[7] != ' ' && head[7] != '?'))
        return http_refuse(c, "404 Not Found");
    if (header(head, "Origin", &v, &vl))
        return http_refuse(c, "403 Forbidden");
    if (!header(head, "Host", &v, &vl) ||
        !((vl >= 9 && strncmp(v, "127.0.0.1", 9) == 0 && (vl == 9 || v[9] == ':')) ||
          (vl >= 9 && strncasecmp(v, "localhost", 9) == 0 && (vl == 9 || v[9] == ':')) ||
          (vl >= 5 && strncmp(v, "[::1]", 5) == 0 && (vl == 5 || v[5] == ':'))))
        return http_refuse(c, "403 Forbidden");
    if (!header(head, "Upgrade", &v, &vl) || !has_token(v, vl, "websocket") ||
        !header(head, "Connection", &v, &vl) || !has_token(v, vl, "upgrade") ||
        !header(head, "Sec-WebSocket-Version", &v, &vl) || vl != 2 || strncmp(v, "13", 2) != 0 ||
        !header(head, "Sec-WebSocket-Key", &key, &kl) || kl != 24)
        return http_refuse(c, "400 Bad Request");
    unsigned char cat[24 + sizeof(WS_GUID) - 1], md[SHA_DIGEST_LENGTH];
    memcpy(cat, key, 24);
    memcpy(cat + 24, WS_GUID, sizeof(WS_GUID) - 1);
    SHA1(cat, sizeof(cat), md);
    unsigned char accept[32];
    EVP_EncodeBlock(accept, md, SHA_DIGEST_LENGTH);
    char r[256];
    int n = snprintf(r, sizeof(r),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     (const char *)accept);
    c->state = C_OPEN;
    return conn_write(c, r, (size_t)n);
}

/* ---------- the loop ---------- */

static void on_readable(struct conn *c)
{
    unsigned char tmp[65536];
    ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR && errno != EWOULDBLOCK)) {
        conn_free(c);
        return;
    }
    if (n < 0)
        return;
    if (c->state == C_CLOSING)
        return; /* draining what we owe; input ignored */
    /* Parse straight from the stack buffer when nothing is pending. */
    unsigned char *d = tmp;
    size_t len = (size_t)n;
    if (c->in.len > 0) {
        buf_add(&c->in, tmp, (size_t)n);
        d = c->in.p;
        len = c->in.len;
    }
    size_t used = 0;
    if (c->state == C_HTTP) {
        unsigned char *end = memmem(d, len, "\r\n\r\n", 4);
        if (end == NULL) {
            if (len > MAX_HTTP_HEAD) {
                http_refuse(c, "431 Request Header Fields Too Large");
                return;
            }
            if (d == tmp)
                buf_add(&c->in, tmp, len);
            return;
        }
        size_t hl = (size_t)(end - d) + 4;
        char head[MAX_HTTP_HEAD + 1];
        if (hl > MAX_HTTP_HEAD) {
            http_refuse(c, "431 Request Header Fields Too Large");
            return;
        }
        memcpy(head, d, hl);
        head[hl] = '\0';
        if (!on_http_head(c, head))
            return;
        used = hl;
    }
    long u = on_frames(c, d + used, len - used);
    if (u < 0)
        return;
    used += (size_t)u;
    if (d == tmp) {
        if (used < len)
            buf_add(&c->in, tmp + used, len - used);
    } else {
        buf_drop(&c->in, used);
    }
}

static void on_accept(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or out of descriptors: retried on the next event */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        if (c == NULL)
            fail("out of memory");
        c->fd = fd;
        unsigned char u[16];
        if (RAND_bytes(u, sizeof(u)) != 1)
            fail("RAND_bytes failed");
        u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
        u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
        snprintf(c->session, sizeof(c->session),
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
                 u[15]);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(S.ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = S.all;
        if (S.all)
            S.all->prev = c;
        S.all = c;
        S.nconns++;
    }
}

static void heartbeat(void)
{
    for (struct conn *c = S.all, *next; c != NULL; c = next) {
        next = c->next;
        if (c->state == C_OPEN || c->state == C_AUTHED)
            ws_frame(c, 9, "", 0);
    }
}

static void read_secret(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    if (f == NULL)
        fail("cannot open the secret file");
    if (fgets(line, sizeof(line), f) == NULL)
        fail("empty secret file");
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] == '\0')
        fail("empty secret file");
    S.secret = strdup(line);
    S.secret_len = strlen(line);
    OPENSSL_cleanse(line, sizeof(line));
    if (S.secret == NULL)
        fail("out of memory");
}

static void usage(void)
{
    fputs("usage: companion-floor --port P --workspace ID --folder PATH --secret-file F\n", stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    long port = -1;
    const char *secret_file = NULL;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--port") == 0) {
            char *end;
            port = strtol(argv[i + 1], &end, 10);
            if (*end != '\0' || port < 0 || port > 65535)
                usage();
        } else if (strcmp(argv[i], "--workspace") == 0) {
            S.workspace = argv[i + 1];
        } else if (strcmp(argv[i], "--folder") == 0) {
            S.folder = argv[i + 1];
        } else if (strcmp(argv[i], "--secret-file") == 0) {
            secret_file = argv[i + 1];
        } else {
            usage();
        }
    }
    if (port < 0 || S.workspace == NULL || S.workspace[0] == '\0' || S.folder == NULL ||
        secret_file == NULL)
        usage();
    read_secret(secret_file);
    const char *slash = strrchr(S.folder, '/');
    S.folder_name = slash && slash[1] ? slash + 1 : S.folder;

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0) {
        fprintf(stderr, "companion-floor: cannot listen on 127.0.0.1:%ld: %s\n", port,
                strerror(errno));
        return 1;
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    struct itimerspec its = {.it_interval = {HEARTBEAT_S, 0}, .it_value = {HEARTBEAT_S, 0}};
    S.ep = epoll_create1(EPOLL_CLOEXEC);
    if (sfd < 0 || tfd < 0 || S.ep < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0)
        fail("cannot set up epoll, signalfd or timerfd");
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_LISTEN};
    epoll_ctl(S.ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.u64 = TAG_SIGNAL;
    epoll_ctl(S.ep, EPOLL_CTL_ADD, sfd, &ev);
    ev.data.u64 = TAG_HEARTBEAT;
    epoll_ctl(S.ep, EPOLL_CTL_ADD, tfd, &ev);
    fprintf(stderr, "companion-floor listening on ws://127.0.0.1:%ld/ws\n", port);

    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(S.ep, evs, 256, -1);
        if (n < 0 && errno != EINTR)
            fail("epoll_wait failed");
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == TAG_LISTEN) {
                on_accept(lfd);
            } else if (evs[i].data.u64 == TAG_SIGNAL) {
                OPENSSL_cleanse(S.secret, S.secret_len);
                return 0;
            } else if (evs[i].data.u64 == TAG_HEARTBEAT) {
                uint64_t ticks;
                if (read(tfd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks))
                    heartbeat();
            } else {
                struct conn *c = evs[i].data.ptr;
                if (c->fd < 0)
                    continue;
                if (evs[i].events & EPOLLOUT) {
                    if (!conn_flush(c))
                        continue;
                }
                if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    on_readable(c);
            }
        }
        reap_dead();
    }
}
