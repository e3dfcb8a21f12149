/*
 * Upgrade credentials (helper/guard.c guard_creds_*): the Authorization
 * header and every query argument, as lws hands them over. Input: a header
 * value, a newline, then `&`-separated arguments (an argument starting with
 * '!' stands for one too long to read). Invariants: a token is at most
 * GUARD_TOKEN_MAX bytes with no NUL; a workspace id at most GUARD_WSID_MAX;
 * a repeated token or workspaceId always makes the credentials unusable.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/guard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct guard_creds *c = malloc(sizeof(*c));
    if (!c)
        return 0;
    guard_creds_init(c);
    const char *p = (const char *)data, *end = p + size;
    const char *nl = memchr(p, '\n', size);
    if (nl) {
        guard_creds_header(c, p, (size_t)(nl - p));
        p = nl + 1;
    }
    int tokens = 0, ids = 0;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        size_t len = amp ? (size_t)(amp - p) : (size_t)(end - p);
        if (len && p[0] == '!')
            guard_creds_arg(c, NULL, len);
        else {
            if (len >= 6 && !memcmp(p, "token=", 6))
                tokens++;
            if (len >= 12 && !memcmp(p, "workspaceId=", 12))
                ids++;
            guard_creds_arg(c, p, len);
        }
        p += len + (amp != NULL);
    }
    if (c->has_token && (strlen(c->token) > GUARD_TOKEN_MAX || !c->token[0]))
        abort();
    if (c->has_workspace_id && strlen(c->workspace_id) > GUARD_WSID_MAX)
        abort();
    if ((tokens > 1 || ids > 1) && !c->bad)
        abort(); /* a repeated credential must never pass */
    guard_creds_clear(c);
    free(c);
    return 0;
}
