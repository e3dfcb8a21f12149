/*
 * framer: owns the LSP base-protocol state machine (header block, body,
 * oversize skip, resync) and the one buffer a frame is collected in.
 *
 * The header block is kept whole in buf until its blank line, each line
 * checked as soon as it ends; the body then reuses the same buffer. The
 * struct's fields are shared by the states: in STATE_RESYNC `len` counts the
 * bytes of "content-length:" matched so far, so a header split across two
 * reads is still found.
 */
#include "ipc/framer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    STATE_HEADER = 0, /* zero so a zeroed struct is ready */
    STATE_BODY,
    STATE_SKIP,
    STATE_RESYNC,
};

static const char CL_NAME[] = "content-length";
static const char CL_PATTERN[] = "content-length:";
#define CL_PATTERN_LEN (sizeof(CL_PATTERN) - 1)

/* A buffer this big is freed after its frame: one large message must not pin
 * its memory for the life of the connection. */
#define KEEP_CAP (64u * 1024)

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int eq_nocase(const char *s, size_t n, const char *lit)
{
    size_t i;

    if (strlen(lit) != n)
        return 0;
    for (i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != lit[i])
            return 0;
    return 1;
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_ows((*s)[0])) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_ows((*s)[*n - 1]))
        (*n)--;
}

/* One step of the search for "content-length:". The pattern's only 'c' is its
 * first byte, so on a mismatch no shorter partial match can survive except
 * one starting at this very byte. */
static size_t cl_match_step(size_t matched, char c)
{
    int lc = lower((unsigned char)c);

    if (lc == CL_PATTERN[matched])
        return matched + 1;
    return lc == 'c' ? 1 : 0;
}

static int grow(struct rpc_framer *f, size_t need)
{
    size_t cap = f->cap ? f->cap : 256;
    char *p;

    if (f->cap >= need)
        return 0;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    /* Headers grow by doubling but never past their limit; a body gets
     * exactly what its Content-Length asks for. */
    if (need <= RPC_FRAMER_HEADER_MAX && cap > RPC_FRAMER_HEADER_MAX)
        cap = RPC_FRAMER_HEADER_MAX;
    if (need > RPC_FRAMER_HEADER_MAX)
        cap = need;
    p = realloc(f->buf, cap);
    if (!p)
        return -1;
    f->buf = p;
    f->cap = cap;
    return 0;
}

static void release_if_big(struct rpc_framer *f)
{
    if (f->cap > KEEP_CAP) {
        free(f->buf);
        f->buf = NULL;
        f->cap = 0;
    }
}

/* Content-Length value: digits only, and small enough that len + 1 (for the
 * NUL) cannot wrap. */
static int parse_length(const char *s, size_t n, size_t *out)
{
    size_t v = 0, i;

    trim(&s, &n);
    if (n == 0)
        return -1;
    for (i = 0; i < n; i++) {
        unsigned d;

        if (s[i] < '0' || s[i] > '9')
            return -1;
        d = (unsigned)(s[i] - '0');
        if (v > (SIZE_MAX - 1 - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Content-Type: any media type, but a charset parameter must name UTF-8,
 * the only encoding the JSON parser accepts. */
static int content_type_ok(const char *s, size_t n)
{
    const char *end = s + n;
    const char *semi = memchr(s, ';', n);

    while (semi) {
        const char *p = semi + 1;
        const char *next = memchr(p, ';', (size_t)(end - p));
        size_t plen = (size_t)((next ? next : end) - p);
        const char *eq = memchr(p, '=', plen);

        if (eq) {
            const char *name = p, *val = eq + 1;
            size_t nlen = (size_t)(eq - p), vlen = plen - nlen - 1;

            trim(&name, &nlen);
            trim(&val, &vlen);
            if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"') {
                val++;
                vlen -= 2;
            }
            if (eq_nocase(name, nlen, "charset") && !eq_nocase(val, vlen, "utf-8") &&
                !eq_nocase(val, vlen, "utf8"))
                return 0;
        }
        semi = next;
    }
    return 1;
}

/* Splits a header line (without its '\n' and trailing '\r'). */
static int split_line(const char *line, size_t n, const char **name, size_t *nlen, const char **val,
                      size_t *vlen)
{
    const char *colon = memchr(line, ':', n);

    if (!colon)
        return -1;
    *name = line;
    *nlen = (size_t)(colon - line);
    *val = colon + 1;
    *vlen = n - *nlen - 1;
    return 0;
}

/* Checks the line that just ended so a bad one is reported at once and the
 * search for the next frame starts right after it. */
static const char *check_line(const char *line, size_t n)
{
    const char *name, *val;
    size_t nlen, vlen, v;

    if (split_line(line, n, &name, &nlen, &val, &vlen) < 0)
        return "header line without ':'";
    if (eq_nocase(name, nlen, CL_NAME) && parse_length(val, vlen, &v) < 0)
        return "Content-Length is not a length";
    return NULL;
}

enum block_result { BLOCK_OK, BLOCK_RESYNC, BLOCK_SKIP };

/* The whole block has arrived (lines already checked one by one). */
static enum block_result check_block(struct rpc_framer *f, size_t *body_len, const char **why)
{
    const char *p = f->buf, *end = f->buf + f->len;
    int have_len = 0, charset_ok = 1;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        const char *name, *val;
        size_t nlen, vlen, v;

        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n > 0 && split_line(p, n, &name, &nlen, &val, &vlen) == 0) {
            if (eq_nocase(name, nlen, CL_NAME) && parse_length(val, vlen, &v) == 0) {
                if (have_len && v != *body_len) {
                    *why = "conflicting Content-Length headers";
                    return BLOCK_RESYNC;
                }
                have_len = 1;
                *body_len = v;
            } else if (eq_nocase(name, nlen, "content-type") && !content_type_ok(val, vlen)) {
                charset_ok = 0;
            }
        }
        p = nl ? nl + 1 : end;
    }
    if (!have_len) {
        *why = "missing Content-Length";
        return BLOCK_RESYNC;
    }
    if (!charset_ok) {
        *why = "Content-Type charset is not utf-8";
        return BLOCK_SKIP;
    }
    return BLOCK_OK;
}

/* Is the '\n' just stored at buf[len - 1] the end of an empty line? */
static int ends_blank_line(const struct rpc_framer *f)
{
    size_t i = f->len - 1;

    if (i == 0 || f->buf[i - 1] == '\n')
        return 1;
    return f->buf[i - 1] == '\r' && (i == 1 || f->buf[i - 2] == '\n');
}

static void start_resync(struct rpc_framer *f, size_t matched)
{
    f->state = STATE_RESYNC;
    f->len = matched;
}

/* Carries a partial "content-length:" at the end of a dropped header block
 * over into the resync search, so a header cut by the limit is not missed. */
static size_t tail_match(const struct rpc_framer *f)
{
    size_t from = f->len > CL_PATTERN_LEN ? f->len - (CL_PATTERN_LEN - 1) : 0, m = 0, i;

    for (i = from; i < f->len; i++)
        m = cl_match_step(m, f->buf[i]);
    return m;
}

static void deliver(struct rpc_framer *f, rpc_frame_cb on_frame, void *ud)
{
    f->buf[f->body_len] = '\0';
    f->state = STATE_HEADER;
    f->len = 0;
    if (on_frame)
        on_frame(ud, f->buf, f->body_len);
    release_if_big(f);
}

static void report(rpc_frame_error_cb on_error, void *ud, enum rpc_frame_error code,
                   const char *why)
{
    if (on_error)
        on_error(ud, code, why);
}

static void start_skip(struct rpc_framer *f, size_t n)
{
    f->len = 0;
    f->skip_left = n;
    f->state = n > 0 ? STATE_SKIP : STATE_HEADER;
}

/* The blank line has ended the block: decide what the body is. Returns -1
 * only when memory for the body runs out (the body is then skipped). */
static int end_of_block(struct rpc_framer *f, rpc_frame_cb on_frame, rpc_frame_error_cb on_error,
                        void *ud)
{
    size_t body_len = 0;
    const char *why = NULL;
    enum block_result r = check_block(f, &body_len, &why);
    char msg[96];

    f->len = 0;
    if (r == BLOCK_RESYNC) {
        report(on_error, ud, RPC_FRAME_BAD_HEADER, why);
        start_resync(f, 0);
        return 0;
    }
    if (r == BLOCK_SKIP) {
        report(on_error, ud, RPC_FRAME_BAD_HEADER, why);
        start_skip(f, body_len);
        return 0;
    }
    if (body_len > f->max_body) {
        snprintf(msg, sizeof(msg), "message of %zu bytes exceeds the %zu byte limit", body_len,
                 f->max_body);
        report(on_error, ud, RPC_FRAME_TOO_LARGE, msg);
        /* A body a little over the limit is skipped, keeping the stream in
         * step. An absurd length (a bug or an attack) would swallow
         * everything after it, so look for the next header instead. */
        if (body_len / RPC_FRAMER_SKIP_FACTOR > f->max_body)
            start_resync(f, 0);
        else
            start_skip(f, body_len);
        return 0;
    }
    if (grow(f, body_len + 1) < 0) {
        start_skip(f, body_len);
        return -1;
    }
    f->body_len = body_len;
    f->state = STATE_BODY;
    if (body_len == 0)
        deliver(f, on_frame, ud);
    return 0;
}

/* Consumes header bytes up to and including one '\n' (or all of data). */
static size_t feed_header(struct rpc_framer *f, const char *data, size_t len, rpc_frame_cb on_frame,
                          rpc_frame_error_cb on_error, void *ud, int *rc)
{
    const char *nl = memchr(data, '\n', len);
    size_t take = nl ? (size_t)(nl - data) + 1 : len;
    size_t room = RPC_FRAMER_HEADER_MAX - f->len;
    const char *why;
    size_t line_start, n;

    if (take > room) {
        /* Keep what fits so a partial "Content-Length:" at the cut is found. */
        if (room > 0 && grow(f, f->len + room) == 0) {
            memcpy(f->buf + f->len, data, room);
            f->len += room;
        }
        report(on_error, ud, RPC_FRAME_BAD_HEADER, "header block too large");
        start_resync(f, tail_match(f));
        return room;
    }
    if (grow(f, f->len + take) < 0) {
        *rc = -1;
        start_resync(f, 0);
        return take;
    }
    memcpy(f->buf + f->len, data, take);
    f->len += take;
    if (!nl)
        return take;

    if (ends_blank_line(f)) {
        /* Blank lines before any header are tolerated (as HTTP does). */
        if (f->len <= 2) {
            f->len = 0;
            return take;
        }
        if (end_of_block(f, on_frame, on_error, ud) < 0)
            *rc = -1;
        return take;
    }
    line_start = f->len - 1;
    while (line_start > 0 && f->buf[line_start - 1] != '\n')
        line_start--;
    n = f->len - 1 - line_start;
    if (n > 0 && f->buf[line_start + n - 1] == '\r')
        n--;
    why = check_line(f->buf + line_start, n);
    if (why) {
        report(on_error, ud, RPC_FRAME_BAD_HEADER, why);
        start_resync(f, 0);
    }
    return take;
}

static size_t feed_resync(struct rpc_framer *f, const char *data, size_t len)
{
    size_t i, m = f->len;

    for (i = 0; i < len; i++) {
        m = cl_match_step(m, data[i]);
        if (m == CL_PATTERN_LEN) {
            /* The matched bytes are gone; the block restarts with their
             * canonical spelling, which the header checks read the same. */
            f->state = STATE_HEADER;
            f->len = 0;
            if (grow(f, CL_PATTERN_LEN) == 0) {
                memcpy(f->buf, "Content-Length:", CL_PATTERN_LEN);
                f->len = CL_PATTERN_LEN;
            } else {
                start_resync(f, 0);
            }
            return i + 1;
        }
    }
    f->len = m;
    return len;
}

void rpc_framer_init(struct rpc_framer *f, size_t max_body)
{
    memset(f, 0, sizeof(*f));
    f->max_body = max_body;
    f->state = STATE_HEADER;
}

void rpc_framer_free(struct rpc_framer *f)
{
    free(f->buf);
    f->buf = NULL;
    f->len = f->cap = 0;
}

int rpc_framer_feed(struct rpc_framer *f, const char *data, size_t len, rpc_frame_cb on_frame,
                    rpc_frame_error_cb on_error, void *ud)
{
    int rc = 0;

    while (len > 0) {
        size_t used = 0;

        switch (f->state) {
        case STATE_HEADER:
            used = feed_header(f, data, len, on_frame, on_error, ud, &rc);
            break;
        case STATE_BODY:
            used = f->body_len - f->len;
            if (used > len)
                used = len;
            memcpy(f->buf + f->len, data, used);
            f->len += used;
            if (f->len == f->body_len)
                deliver(f, on_frame, ud);
            break;
        case STATE_SKIP:
            used = f->skip_left < len ? f->skip_left : len;
            start_skip(f, f->skip_left - used);
            break;
        case STATE_RESYNC:
        default:
            used = feed_resync(f, data, len);
            break;
        }
        data += used;
        len -= used;
    }
    return rc;
}

int rpc_frame_encode(char **buf, size_t *len, size_t *cap, const char *body, size_t body_len)
{
    char hdr[48];
    int n = snprintf(hdr, sizeof(hdr), "Content-Length: %zu\r\n\r\n", body_len);
    size_t need, newcap;

    if (n < 0 || *len > SIZE_MAX - (size_t)n || *len + (size_t)n > SIZE_MAX - body_len)
        return -1;
    need = *len + (size_t)n + body_len;
    if (need > *cap) {
        char *p;

        newcap = *cap ? *cap : 256;
        while (newcap < need)
            newcap = newcap > SIZE_MAX / 2 ? need : newcap * 2;
        p = realloc(*buf, newcap);
        if (!p)
            return -1;
        *buf = p;
        *cap = newcap;
    }
    memcpy(*buf + *len, hdr, (size_t)n);
    if (body_len > 0)
        memcpy(*buf + *len + (size_t)n, body, body_len);
    *len = need;
    return 0;
}
