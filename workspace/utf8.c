/*
 * utf8: a strict decoder (RFC 3629: no overlongs, no surrogates, nothing past
 * U+10FFFF) used to validate, cut at sequence boundaries, and repair.
 */
#include "workspace/utf8.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid sequence at s[0..len), 0 if invalid, -1 if truncated. */
static int seq_len(const unsigned char *s, size_t len)
{
    unsigned c = s[0];
    int n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    unsigned cp = c & (0x3f >> (n - 1));
    for (int i = 1; i < n; i++) {
        if ((size_t)i >= len)
            return -1;
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
        /* Reject early so a truncated overlong is not mistaken for a prefix. */
        if (i == 1 &&
            ((n == 3 && c == 0xe0 && s[1] < 0xa0) || (n == 4 && c == 0xf0 && s[1] < 0x90) ||
             (n == 4 && c == 0xf4 && s[1] > 0x8f) || (n == 3 && c == 0xed && s[1] > 0x9f)))
            return 0;
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

size_t utf8_valid_prefix(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        int n = seq_len(u + i, len - i);
        if (n <= 0)
            break;
        i += (size_t)n;
    }
    return i;
}

size_t utf8_incomplete_tail(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t back = 1; back <= 3 && back <= len; back++)
        if (seq_len(u + len - back, back) == -1)
            return back;
    return 0;
}

int utf8_is_valid(const char *s, size_t len)
{
    return utf8_valid_prefix(s, len) == len;
}

char *utf8_repair(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        int n = seq_len(u + i, len - i);
        if (n > 0 && !(n == 1 && u[i] == 0)) {
            memcpy(out + o, s + i, (size_t)n);
            o += (size_t)n;
            i += (size_t)n;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return out;
}

json_object *utf8_json_string(const char *s)
{
    size_t len = strlen(s);
    if (utf8_is_valid(s, len))
        return json_object_new_string_len(s, (int)len);
    char *r = utf8_repair(s, len);
    if (!r)
        return json_object_new_string("");
    json_object *o = json_object_new_string(r);
    free(r);
    return o;
}
