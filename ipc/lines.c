/*
 * lines: newline framing (see lines.h).
 */
#include "ipc/lines.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void rpc_lines_init(struct rpc_lines *l, size_t max_line)
{
    memset(l, 0, sizeof(*l));
    l->max_line = max_line;
}

void rpc_lines_free(struct rpc_lines *l)
{
    free(l->buf);
    memset(l, 0, sizeof(*l));
}

static int append(struct rpc_lines *l, const char *p, size_t n)
{
    if (l->len + n + 1 > l->cap) {
        size_t cap = l->cap ? l->cap : 1024;
        while (cap < l->len + n + 1)
            cap *= 2;
        char *nb = realloc(l->buf, cap);
        if (!nb)
            return -1;
        l->buf = nb;
        l->cap = cap;
    }
    memcpy(l->buf + l->len, p, n);
    l->len += n;
    return 0;
}

int rpc_lines_feed(struct rpc_lines *l, const char *data, size_t len, rpc_line_cb on_line,
                   rpc_line_error_cb on_error, void *ud)
{
    int rc = 0;
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (!l->skipping && l->len + take > l->max_line) {
            l->skipping = 1;
            l->len = 0;
            if (on_error)
                on_error(ud, "a line longer than the limit was dropped");
        }
        if (!l->skipping && append(l, data, take) < 0) {
            l->skipping = 1; /* the rest of this line cannot be kept either */
            l->len = 0;
            rc = -1;
        }
        data += take;
        len -= take;
        if (!nl)
            break;
        data++;
        len--;
        if (l->skipping) {
            l->skipping = 0;
            l->len = 0;
            continue;
        }
        size_t n = l->len;
        if (n && l->buf[n - 1] == '\r')
            n--;
        l->len = 0;
        if (n == 0)
            continue;
        l->buf[n] = '\0';
        on_line(ud, l->buf, n);
    }
    return rc;
}

int rpc_line_encode(char **buf, size_t *len, size_t *cap, const char *body, size_t body_len)
{
    if (*len > SIZE_MAX - body_len - 1)
        return -1;
    size_t need = *len + body_len + 1;
    if (need > *cap) {
        size_t newcap = *cap ? *cap : 256;
        while (newcap < need)
            newcap = newcap > SIZE_MAX / 2 ? need : newcap * 2;
        char *p = realloc(*buf, newcap);
        if (!p)
            return -1;
        *buf = p;
        *cap = newcap;
    }
    memcpy(*buf + *len, body, body_len);
    (*buf)[*len + body_len] = '\n';
    *len = need;
    return 0;
}
