/*
 * chat_text: the growing string and the UTF-8 cleaning every chat reply
 * goes through (see chat_impl.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "workspace/chat.h"
#include "workspace/chat_impl.h"
#include "workspace/commands.h"
#include "workspace/utf8.h"

/* ------------------------------------------------------------------------ */
/* Growing string: every formatter writes into one and hands its buffer on. */

void chat_sb_putn(struct sb *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void chat_sb_puts(struct sb *b, const char *s)
{
    chat_sb_putn(b, s, strlen(s));
}

void chat_sb_printf(struct sb *b, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* Only short numeric pieces go through here; anything longer is a bug. */
    if (n < 0 || (size_t)n >= sizeof buf)
        n = 0;
    chat_sb_putn(b, buf, (size_t)n);
}

/* The text, or NULL on OOM. Checked once more so no path can hand out
 * invalid UTF-8 even if a formatter has a bug. */
char *chat_sb_finish(struct sb *b)
{
    if (!b->oom && !b->p)
        chat_sb_putn(b, "", 0);
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    if (!utf8_is_valid(b->p, b->len)) {
        char *r = utf8_repair(b->p, b->len);
        free(b->p);
        return r;
    }
    return b->p;
}

/* ------------------------------------------------------------------------ */
/* Code points */

/* Length of the sequence starting with lead byte c of valid UTF-8. */
size_t chat_seq_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* Decodes the code point at s (valid UTF-8), returns its length. */
size_t chat_cp_at(const char *s, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = chat_seq_len(u[0]);
    uint32_t c = n == 1 ? u[0] : u[0] & (0x7fu >> n);
    for (size_t i = 1; i < n; i++)
        c = (c << 6) | (u[i] & 0x3fu);
    *cp = c;
    return n;
}

size_t chat_cp_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

/* Characters that would break a phone line or reorder the text around them. */
int chat_cp_unsafe(uint32_t c)
{
    return c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2066 && c <= 0x2069);
}

/* Appends untrusted text: repaired to UTF-8, tab and line ends as spaces,
 * other unsafe characters as '?', cut to max_cp code points in all with a
 * final "…" when cut. */
void chat_sb_clean(struct sb *b, const char *s, size_t len, size_t max_cp)
{
    char *fixed = NULL;
    if (!s)
        return;
    if (!utf8_is_valid(s, len)) {
        fixed = utf8_repair(s, len);
        if (!fixed) {
            b->oom = 1;
            return;
        }
        s = fixed;
        len = strlen(fixed);
    }
    size_t total = chat_cp_count(s, len), keep = total;
    if (max_cp && total > max_cp)
        keep = max_cp - 1;
    size_t i = 0;
    for (size_t k = 0; k < keep && i < len; k++) {
        uint32_t c;
        size_t n = chat_cp_at(s + i, &c);
        if (c == '\t' || c == '\n' || c == '\r')
            chat_sb_putn(b, " ", 1);
        else if (chat_cp_unsafe(c))
            chat_sb_putn(b, "?", 1);
        else
            chat_sb_putn(b, s + i, n);
        i += n;
    }
    if (keep < total)
        chat_sb_puts(b, "…");
    free(fixed);
}

void chat_sb_cleans(struct sb *b, const char *s, size_t max_cp)
{
    if (s)
        chat_sb_clean(b, s, strlen(s), max_cp);
}

void chat_sb_quoted(struct sb *b, const char *s, size_t len)
{
    chat_sb_putn(b, "\"", 1);
    chat_sb_clean(b, s, len, ECHO_MAX);
    chat_sb_putn(b, "\"", 1);
}

int chat_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
