/*
 * The JWT validator. Half the inputs are tokens as they come; the other
 * half are split into a header and a payload that are then correctly
 * signed, so the claim checks (exp, nbf, iat, sub, aud, iss, workspaceId,
 * scope, alg) see fuzzed values behind a valid signature.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/auth.h"

static const char key[] = "0123456789abcdef0123456789abcdef";

static size_t b64url(const unsigned char *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    size_t o = 0;
    for (int i = 0; i < len; i++) {
        char c = out[i];
        if (c == '=')
            break;
        out[o++] = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    out[o] = '\0';
    return o;
}

static void verify(const char *token, size_t len)
{
    struct auth_config cfg = {
        .alg = AUTH_ALG_HS256,
        .key = (const unsigned char *)key,
        .key_len = sizeof(key) - 1,
        .audience = "companion",
        .issuer = "",
        .leeway_s = 30,
        .workspace_id = "ws-1",
    };
    struct auth_grant g = {0};
    char err[160];
    enum auth_result r = auth_verify(&cfg, token, len, "ws-1", 1795300000, &g, err, sizeof(err));
    if (r == AUTH_OK && (!g.user_id || !*g.user_id || g.exp + 30 < 1795300000))
        abort();
    if (r != AUTH_OK && g.user_id)
        abort();
    auth_grant_clear(&g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    if (size == 0 || data[0] & 1) {
        verify((const char *)data, size);
        return 0;
    }
    const uint8_t *sep = memchr(data + 1, 0xff, size - 1);
    size_t hlen = sep ? (size_t)(sep - data - 1) : (size - 1) / 2;
    const uint8_t *payload = sep ? sep + 1 : data + 1 + hlen;
    size_t plen = size - (size_t)(payload - data);
    char *token = malloc(2 * (hlen + plen) + 128);
    if (!token)
        return 0;
    size_t n = b64url(data + 1, hlen, token);
    token[n++] = '.';
    n += b64url(payload, plen, token + n);
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), key, sizeof(key) - 1, (const unsigned char *)token, n, mac, &maclen);
    token[n++] = '.';
    n += b64url(mac, maclen, token + n);
    verify(token, n);
    free(token);
    return 0;
}
