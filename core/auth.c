/*
 * auth: owns every decision about a data-plane JWT — the algorithm pin, the
 * signature, each registered and Companion claim — and the HS256 tokens the
 * helper mints for pairing, plus the scope words and alg names of settings.
 *
 * libjwt 1.10 is used for decoding and signing only: it trusts the header's
 * alg, skips verification for an empty key and checks no claim. Claims are read back as JSON and
 * type-checked with json-c rather than through jwt_get_grant_int, whose error values (-1, 0) are
 * also valid numbers.
 */
#include "core/errbuf.h"
#include "core/auth.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* Longest `sub` accepted (and minted), in bytes. */
#define AUTH_SUB_MAX 256
/* Nesting allowed in a payload; claims we read are at most two deep. */
#define AUTH_JSON_DEPTH 32
/* libjwt takes NumericDates as long. */
_Static_assert(sizeof(long) >= sizeof(int64_t), "long must hold an int64_t");
/* base64url of a 32-byte HMAC-SHA256, without padding. */
#define HS256_SIG_B64_LEN 43

const char *auth_alg_name(enum auth_alg alg)
{
    switch (alg) {
    case AUTH_ALG_HS256:
        return "HS256";
    case AUTH_ALG_RS256:
        return "RS256";
    case AUTH_ALG_ES256:
        return "ES256";
    }
    return "unknown";
}

int auth_alg_parse(const char *name)
{
    /* JWA names are case-sensitive; one spelling keeps settings and tokens alike. */
    if (name == NULL)
        return -1;
    if (strcmp(name, "HS256") == 0)
        return AUTH_ALG_HS256;
    if (strcmp(name, "RS256") == 0)
        return AUTH_ALG_RS256;
    if (strcmp(name, "ES256") == 0)
        return AUTH_ALG_ES256;
    return -1;
}

static int alg_to_jwt(enum auth_alg alg, jwt_alg_t *out)
{
    switch (alg) {
    case AUTH_ALG_HS256:
        *out = JWT_ALG_HS256;
        return 0;
    case AUTH_ALG_RS256:
        *out = JWT_ALG_RS256;
        return 0;
    case AUTH_ALG_ES256:
        *out = JWT_ALG_ES256;
        return 0;
    }
    return -1;
}

const char *auth_result_code(enum auth_result r)
{
    /* The contract's names: note WORKSPACE_MISMATCH has no AUTH_ prefix on the wire. */
    switch (r) {
    case AUTH_OK:
        return "OK";
    case AUTH_INVALID:
        return "AUTH_INVALID";
    case AUTH_EXPIRED:
        return "AUTH_EXPIRED";
    case AUTH_WORKSPACE_MISMATCH:
        return "WORKSPACE_MISMATCH";
    }
    return "AUTH_INVALID";
}

int auth_ct_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

static const struct {
    const char *word;
    unsigned bit;
} scope_words[] = {
    {"read", AUTH_SCOPE_READ},       {"run", AUTH_SCOPE_RUN},     {"editor", AUTH_SCOPE_EDITOR},
    {"approve", AUTH_SCOPE_APPROVE}, {"agent", AUTH_SCOPE_AGENT}, {"write", AUTH_SCOPE_WRITE},
};

static unsigned scope_bit(const char *word, size_t len)
{
    for (size_t i = 0; i < sizeof(scope_words) / sizeof(scope_words[0]); i++) {
        if (strlen(scope_words[i].word) == len && memcmp(scope_words[i].word, word, len) == 0)
            return scope_words[i].bit;
    }
    return 0;
}

const char *auth_scopes_format(unsigned scopes, char *buf, size_t len)
{
    size_t used = 0;

    if (buf == NULL || len == 0)
        return "";
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(scope_words) / sizeof(scope_words[0]); i++) {
        if (!(scopes & scope_words[i].bit))
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? " " : "", scope_words[i].word);
        if (n < 0 || (size_t)n >= len - used) {
            /* Half a scope list would grant less than asked and look valid. */
            buf[0] = '\0';
            return buf;
        }
        used += (size_t)n;
    }
    return buf;
}

int auth_scopes_parse(const char *text, unsigned *out, char *err, size_t errlen)
{
    unsigned mask = 0;
    const char *p = text;

    if (text == NULL || out == NULL) {
        errbuf_set(err, errlen, "no scopes given");
        return -1;
    }
    /* Commas separate items, spaces separate words inside an item: so
     * "read, run" is fine but ",," or a trailing comma is an empty word. */
    for (;;) {
        const char *item_end = strchr(p, ',');
        size_t item_len = item_end ? (size_t)(item_end - p) : strlen(p);
        size_t words = 0;
        size_t i = 0;

        while (i < item_len) {
            while (i < item_len && (p[i] == ' ' || p[i] == '\t'))
                i++;
            if (i == item_len)
                break;
            size_t start = i;
            while (i < item_len && p[i] != ' ' && p[i] != '\t')
                i++;
            unsigned bit = scope_bit(p + start, i - start);
            if (bit == 0) {
                errbuf_set(err, errlen,
                           "unknown scope '%.*s' (known: read, run, editor, approve, agent, write)",
                           (int)((i - start) > 32 ? 32 : (i - start)), p + start);
                return -1;
            }
            mask |= bit;
            words++;
        }
        if (words == 0) {
            errbuf_set(err, errlen, "empty scope in list");
            return -1;
        }
        if (item_end == NULL)
            break;
        p = item_end + 1;
    }
    *out = mask;
    return 0;
}

void auth_grant_clear(struct auth_grant *g)
{
    if (g == NULL)
        return;
    free(g->user_id);
    g->user_id = NULL;
    g->scopes = 0;
    g->exp = 0;
    g->device_id[0] = '\0';
    g->pairing = 0;
}

int auth_device_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > AUTH_DEVICE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* Saturates instead of wrapping: exp near INT64_MAX must not turn into the past. */
static int64_t add_sat(int64_t a, int64_t b)
{
    int64_t r;

    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static int is_b64url(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Compact JWS shape: three non-empty base64url segments. Rejecting anything
 * else up front keeps odd bytes (NUL, '=', whitespace) away from libjwt's
 * lenient decoder. Sets *sig_at to the index of the second dot. */
static int token_shape_ok(const char *token, size_t len, size_t *sig_at)
{
    size_t dots = 0;
    size_t seg_len = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)token[i];
        if (c == '.') {
            if (seg_len == 0 || ++dots > 2)
                return 0;
            if (dots == 2)
                *sig_at = i;
            seg_len = 0;
        } else if (is_b64url(c)) {
            seg_len++;
        } else {
            return 0;
        }
    }
    return dots == 2 && seg_len > 0;
}

char *auth_b64url_encode(const unsigned char *in, size_t len, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    size_t i = 0;

    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
    }
    out[o] = '\0';
    return out;
}

/* Upstream libjwt 1.10.2 compares HMACs with strcmp, leaking how many leading
 * characters of a forged signature are right (CVE-2024-25189). Debian's
 * +deb12u1 patches that, other builds may not: checking here first in
 * constant time keeps the property whatever libjwt we are linked with. */
static int hs256_signature_ok(const unsigned char *key, size_t key_len, const char *token,
                              size_t sig_at, size_t len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    char expect[HS256_SIG_B64_LEN + 2];
    int ok;

    if (len - sig_at - 1 != HS256_SIG_B64_LEN)
        return 0;
    if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)token, sig_at, mac,
             &mac_len) == NULL ||
        mac_len != 32)
        return 0;
    auth_b64url_encode(mac, mac_len, expect);
    ok = auth_ct_equal(expect, token + sig_at + 1, HS256_SIG_B64_LEN);
    OPENSSL_cleanse(mac, sizeof(mac));
    OPENSSL_cleanse(expect, sizeof(expect));
    return ok;
}

/* The claims as a json-c object, re-serialised by libjwt from what it verified. */
static json_object *claims_object(jwt_t *j)
{
    char *text = jwt_get_grants_json(j, NULL);
    json_tokener *tok;
    json_object *root = NULL;

    if (text == NULL)
        return NULL;
    tok = json_tokener_new_ex(AUTH_JSON_DEPTH);
    if (tok != NULL) {
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        root = json_tokener_parse_ex(tok, text, (int)strlen(text));
        if (json_tokener_get_error(tok) != json_tokener_success) {
            json_object_put(root);
            root = NULL;
        }
        json_tokener_free(tok);
    }
    free(text);
    /* jansson accepts a top-level array as a payload; claims must be an object. */
    if (root != NULL && !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        root = NULL;
    }
    return root;
}

enum claim_state { CLAIM_ABSENT, CLAIM_OK, CLAIM_BAD_TYPE };

/* NumericDate as an integer only: a fractional or string date is refused
 * rather than rounded, so "1.5e9" can never become 0 or 1500000000 silently. */
static enum claim_state claim_int(json_object *root, const char *name, int64_t *out)
{
    json_object *v;

    if (!json_object_object_get_ex(root, name, &v))
        return CLAIM_ABSENT;
    if (!json_object_is_type(v, json_type_int))
        return CLAIM_BAD_TYPE;
    *out = json_object_get_int64(v);
    return CLAIM_OK;
}

static enum claim_state claim_string(json_object *root, const char *name, const char **out,
                                     size_t *len)
{
    json_object *v;

    if (!json_object_object_get_ex(root, name, &v))
        return CLAIM_ABSENT;
    if (!json_object_is_type(v, json_type_string))
        return CLAIM_BAD_TYPE;
    *out = json_object_get_string(v);
    *len = (size_t)json_object_get_string_len(v);
    /* An embedded NUL would make C comparisons see a different string. */
    if (strlen(*out) != *len)
        return CLAIM_BAD_TYPE;
    return CLAIM_OK;
}

/* The user id lands in logs, chat replies and audit events: printable only. */
static int sub_text_ok(const char *s, size_t len)
{
    if (len == 0 || len > AUTH_SUB_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

static enum auth_result check_times(json_object *root, const struct auth_config *cfg, int64_t now_s,
                                    int64_t *exp_out, char *err, size_t errlen)
{
    int64_t leeway = cfg->leeway_s > 0 ? cfg->leeway_s : 0;
    int64_t exp = 0;
    int64_t t = 0;

    switch (claim_int(root, "exp", &exp)) {
    case CLAIM_ABSENT:
        errbuf_set(err, errlen, "claim 'exp' missing");
        return AUTH_INVALID;
    case CLAIM_BAD_TYPE:
        errbuf_set(err, errlen, "claim 'exp' is not an integer");
        return AUTH_INVALID;
    case CLAIM_OK:
        break;
    }
    if (exp <= 0 || exp > AUTH_TIME_MAX_S) {
        errbuf_set(err, errlen, "claim 'exp' out of range");
        return AUTH_INVALID;
    }
    /* RFC 7519 4.1.4: valid only *before* exp. A session ends when the
     * wall clock reaches (exp + leeway) s, so a token accepted during that
     * second would open a session already past its end. */
    if (now_s >= add_sat(exp, leeway)) {
        errbuf_set(err, errlen, "token expired");
        return AUTH_EXPIRED;
    }

    static const char *const not_ahead[] = {"nbf", "iat"};
    for (size_t i = 0; i < 2; i++) {
        switch (claim_int(root, not_ahead[i], &t)) {
        case CLAIM_ABSENT:
            continue;
        case CLAIM_BAD_TYPE:
            errbuf_set(err, errlen, "claim '%s' is not an integer", not_ahead[i]);
            return AUTH_INVALID;
        case CLAIM_OK:
            break;
        }
        if (t < 0 || t > AUTH_TIME_MAX_S) {
            errbuf_set(err, errlen, "claim '%s' out of range", not_ahead[i]);
            return AUTH_INVALID;
        }
        if (t > add_sat(now_s, leeway)) {
            errbuf_set(err, errlen, "claim '%s' is in the future", not_ahead[i]);
            return AUTH_INVALID;
        }
    }
    *exp_out = exp;
    return AUTH_OK;
}

/* RFC 7519 4.1.3: a single string or an array of strings. */
static enum auth_result check_audience(json_object *root, const char *want, char *err,
                                       size_t errlen)
{
    json_object *v;

    if (!json_object_object_get_ex(root, "aud", &v)) {
        errbuf_set(err, errlen, "claim 'aud' missing");
        return AUTH_INVALID;
    }
    if (json_object_is_type(v, json_type_string)) {
        if (strcmp(json_object_get_string(v), want) == 0 &&
            strlen(want) == (size_t)json_object_get_string_len(v))
            return AUTH_OK;
        errbuf_set(err, errlen, "claim 'aud' does not match");
        return AUTH_INVALID;
    }
    if (json_object_is_type(v, json_type_array)) {
        int found = 0;
        size_t n = json_object_array_length(v);
        for (size_t i = 0; i < n; i++) {
            json_object *e = json_object_array_get_idx(v, i);
            if (!json_object_is_type(e, json_type_string)) {
                errbuf_set(err, errlen, "claim 'aud' has a non-string entry");
                return AUTH_INVALID;
            }
            if (strcmp(json_object_get_string(e), want) == 0 &&
                strlen(want) == (size_t)json_object_get_string_len(e))
                found = 1;
        }
        if (found)
            return AUTH_OK;
        errbuf_set(err, errlen, "claim 'aud' does not match");
        return AUTH_INVALID;
    }
    errbuf_set(err, errlen, "claim 'aud' is not a string or array");
    return AUTH_INVALID;
}

/* Known words only; unknown ones are ignored so issuers can carry other
 * scopes for other services in the same token. */
static unsigned scopes_from_claim(const char *s)
{
    unsigned mask = 0;

    while (*s != '\0') {
        while (*s == ' ')
            s++;
        const char *start = s;
        while (*s != '\0' && *s != ' ')
            s++;
        if (s > start)
            mask |= scope_bit(start, (size_t)(s - start));
    }
    return mask;
}

static enum auth_result check_claims(json_object *root, const struct auth_config *cfg,
                                     const char *msg_workspace_id, int64_t now_s,
                                     struct auth_grant *g, char *err, size_t errlen)
{
    enum auth_result r;
    const char *s = NULL;
    size_t n = 0;
    int64_t exp = 0;
    unsigned scopes = AUTH_SCOPE_READ;

    r = check_times(root, cfg, now_s, &exp, err, errlen);
    if (r != AUTH_OK)
        return r;

    switch (claim_string(root, "sub", &s, &n)) {
    case CLAIM_ABSENT:
        errbuf_set(err, errlen, "claim 'sub' missing");
        return AUTH_INVALID;
    case CLAIM_BAD_TYPE:
        errbuf_set(err, errlen, "claim 'sub' is not a string");
        return AUTH_INVALID;
    case CLAIM_OK:
        break;
    }
    if (!sub_text_ok(s, n)) {
        errbuf_set(err, errlen, n == 0 ? "claim 'sub' is empty" : "claim 'sub' is not a valid id");
        return AUTH_INVALID;
    }
    const char *sub = s;

    if (cfg->issuer != NULL && cfg->issuer[0] != '\0') {
        switch (claim_string(root, "iss", &s, &n)) {
        case CLAIM_ABSENT:
            errbuf_set(err, errlen, "claim 'iss' missing");
            return AUTH_INVALID;
        case CLAIM_BAD_TYPE:
            errbuf_set(err, errlen, "claim 'iss' is not a string");
            return AUTH_INVALID;
        case CLAIM_OK:
            break;
        }
        if (strcmp(s, cfg->issuer) != 0) {
            errbuf_set(err, errlen, "claim 'iss' does not match");
            return AUTH_INVALID;
        }
    }

    if (cfg->audience != NULL && cfg->audience[0] != '\0') {
        r = check_audience(root, cfg->audience, err, errlen);
        if (r != AUTH_OK)
            return r;
    }

    switch (claim_string(root, "scope", &s, &n)) {
    case CLAIM_ABSENT:
        break;
    case CLAIM_BAD_TYPE:
        errbuf_set(err, errlen, "claim 'scope' is not a string");
        return AUTH_INVALID;
    case CLAIM_OK:
        scopes = scopes_from_claim(s);
        break;
    }

    const char *dev = "";
    switch (claim_string(root, "dev", &s, &n)) {
    case CLAIM_ABSENT:
        break;
    case CLAIM_BAD_TYPE:
        errbuf_set(err, errlen, "claim 'dev' is not a string");
        return AUTH_INVALID;
    case CLAIM_OK:
        if (!auth_device_id_ok(s)) {
            errbuf_set(err, errlen, "claim 'dev' is not a valid device id");
            return AUTH_INVALID;
        }
        dev = s;
        break;
    }
    int pairing = 0;
    json_object *pv;
    if (json_object_object_get_ex(root, "pairing", &pv)) {
        if (!json_object_is_type(pv, json_type_boolean)) {
            errbuf_set(err, errlen, "claim 'pairing' is not a boolean");
            return AUTH_INVALID;
        }
        pairing = json_object_get_boolean(pv);
        if (pairing && dev[0] == '\0') {
            errbuf_set(err, errlen, "a pairing token must name its device ('dev')");
            return AUTH_INVALID;
        }
    }

    /* Last on purpose: a mismatch tells the client its token is fine but
     * meant for another workspace, which is only true if all else passed. */
    switch (claim_string(root, "workspaceId", &s, &n)) {
    case CLAIM_ABSENT:
        errbuf_set(err, errlen, "claim 'workspaceId' missing");
        return AUTH_WORKSPACE_MISMATCH;
    case CLAIM_BAD_TYPE:
        errbuf_set(err, errlen, "claim 'workspaceId' is not a string");
        return AUTH_INVALID;
    case CLAIM_OK:
        break;
    }
    if (strcmp(s, cfg->workspace_id) != 0) {
        errbuf_set(err, errlen, "token is for another workspace");
        return AUTH_WORKSPACE_MISMATCH;
    }
    if (msg_workspace_id != NULL && strcmp(s, msg_workspace_id) != 0) {
        errbuf_set(err, errlen, "workspaceId does not match the token");
        return AUTH_WORKSPACE_MISMATCH;
    }

    if (g != NULL) {
        g->user_id = strdup(sub);
        if (g->user_id == NULL) {
            errbuf_set(err, errlen, "out of memory");
            return AUTH_INVALID;
        }
        g->scopes = scopes;
        g->exp = exp;
        snprintf(g->device_id, sizeof(g->device_id), "%s", dev);
        g->pairing = pairing;
    }
    return AUTH_OK;
}

enum auth_result auth_verify(const struct auth_config *cfg, const char *token, size_t len,
                             const char *msg_workspace_id, int64_t now_s, struct auth_grant *out,
                             char *err, size_t errlen)
{
    char buf[AUTH_TOKEN_MAX + 1];
    jwt_alg_t want;
    jwt_t *j = NULL;
    json_object *root = NULL;
    const char *hdr_alg;
    char *crit;
    size_t sig_at = 0;
    enum auth_result r;

    if (out != NULL) {
        out->user_id = NULL;
        out->scopes = 0;
        out->exp = 0;
        out->device_id[0] = '\0';
        out->pairing = 0;
    }
    if (err != NULL && errlen > 0)
        err[0] = '\0';

    if (cfg == NULL || alg_to_jwt(cfg->alg, &want) != 0 || cfg->workspace_id == NULL ||
        cfg->workspace_id[0] == '\0') {
        errbuf_set(err, errlen, "authentication is not configured");
        return AUTH_INVALID;
    }
    /* libjwt treats an empty key as "do not verify": never let it see one. */
    if (cfg->key == NULL || cfg->key_len == 0 || cfg->key_len > INT_MAX) {
        errbuf_set(err, errlen, "no verification key configured");
        return AUTH_INVALID;
    }
    if (token == NULL || len == 0 || len > AUTH_TOKEN_MAX) {
        errbuf_set(err, errlen, len > AUTH_TOKEN_MAX ? "token too long" : "token missing");
        return AUTH_INVALID;
    }
    if (!token_shape_ok(token, len, &sig_at)) {
        errbuf_set(err, errlen, "token is not a well-formed JWT");
        return AUTH_INVALID;
    }
    if (cfg->alg == AUTH_ALG_HS256 &&
        !hs256_signature_ok(cfg->key, cfg->key_len, token, sig_at, len)) {
        errbuf_set(err, errlen, "signature or algorithm rejected");
        return AUTH_INVALID;
    }

    memcpy(buf, token, len);
    buf[len] = '\0';
    if (jwt_decode(&j, buf, cfg->key, (int)cfg->key_len) != 0 || j == NULL) {
        errbuf_set(err, errlen, "signature or algorithm rejected");
        r = AUTH_INVALID;
        goto done;
    }
    /* The pin: libjwt verified with whatever alg the header named, so an
     * HS256 token keyed with our RSA public PEM has "verified" by now. The
     * header string is compared too since libjwt reads it case-insensitively. */
    hdr_alg = jwt_get_header(j, "alg");
    if (jwt_get_alg(j) != want || hdr_alg == NULL ||
        strcmp(hdr_alg, auth_alg_name(cfg->alg)) != 0) {
        errbuf_set(err, errlen, "signature or algorithm rejected");
        r = AUTH_INVALID;
        goto done;
    }
    /* RFC 7515 4.1.11: extensions we do not understand must not be ignored. */
    crit = jwt_get_headers_json(j, "crit");
    if (crit != NULL) {
        free(crit);
        errbuf_set(err, errlen, "header 'crit' not supported");
        r = AUTH_INVALID;
        goto done;
    }
    root = claims_object(j);
    if (root == NULL) {
        errbuf_set(err, errlen, "token claims are not a JSON object");
        r = AUTH_INVALID;
        goto done;
    }
    r = check_claims(root, cfg, msg_workspace_id, now_s, out, err, errlen);

done:
    json_object_put(root);
    jwt_free(j);
    OPENSSL_cleanse(buf, len);
    return r;
}

int auth_mint_hs256(const unsigned char *secret, size_t secret_len, const struct auth_mint_req *req,
                    char **token_out, char *err, size_t errlen)
{
    char scope_text[AUTH_SCOPES_TEXT_MAX];
    int64_t exp;
    jwt_t *j = NULL;
    char *tok;
    int rc = 0;

    if (token_out == NULL) {
        errbuf_set(err, errlen, "no output for the token");
        return -1;
    }
    *token_out = NULL;
    if (req == NULL) {
        errbuf_set(err, errlen, "nothing to mint");
        return -1;
    }
    if (secret == NULL || secret_len == 0 || secret_len > INT_MAX) {
        errbuf_set(err, errlen, "no signing secret configured");
        return -1;
    }
    if (req->workspace_id == NULL || req->workspace_id[0] == '\0') {
        errbuf_set(err, errlen, "no workspace id");
        return -1;
    }
    /* Refuse what auth_verify would refuse, so a minted token always works. */
    if (req->user_id == NULL || !sub_text_ok(req->user_id, strlen(req->user_id))) {
        errbuf_set(err, errlen, "user id must be 1-%d printable bytes", AUTH_SUB_MAX);
        return -1;
    }
    if ((req->scopes & AUTH_SCOPE_ALL) == 0) {
        errbuf_set(err, errlen, "no scope to grant");
        return -1;
    }
    if (req->iat_s <= 0 || req->ttl_s <= 0 ||
        __builtin_add_overflow(req->iat_s, req->ttl_s, &exp) || exp > AUTH_TIME_MAX_S) {
        errbuf_set(err, errlen, "token lifetime out of range");
        return -1;
    }
    int has_dev = req->device_id != NULL && req->device_id[0] != '\0';
    if (has_dev && !auth_device_id_ok(req->device_id)) {
        errbuf_set(err, errlen, "device id must be 1-%d of A-Z a-z 0-9 _ -", AUTH_DEVICE_ID_MAX);
        return -1;
    }
    if (req->pairing && !has_dev) {
        errbuf_set(err, errlen, "a pairing token needs a device id");
        return -1;
    }
    auth_scopes_format(req->scopes & AUTH_SCOPE_ALL, scope_text, sizeof(scope_text));

    if (jwt_new(&j) != 0) {
        errbuf_set(err, errlen, "out of memory");
        return -1;
    }
    rc |= jwt_set_alg(j, JWT_ALG_HS256, secret, (int)secret_len);
    rc |= jwt_add_grant(j, "sub", req->user_id);
    rc |= jwt_add_grant(j, "workspaceId", req->workspace_id);
    rc |= jwt_add_grant(j, "scope", scope_text);
    rc |= jwt_add_grant_int(j, "iat", (long)req->iat_s);
    rc |= jwt_add_grant_int(j, "exp", (long)exp);
    if (req->audience != NULL && req->audience[0] != '\0')
        rc |= jwt_add_grant(j, "aud", req->audience);
    if (req->issuer != NULL && req->issuer[0] != '\0')
        rc |= jwt_add_grant(j, "iss", req->issuer);
    if (has_dev)
        rc |= jwt_add_grant(j, "dev", req->device_id);
    if (req->pairing)
        rc |= jwt_add_grant_bool(j, "pairing", 1);
    if (rc != 0) {
        jwt_free(j);
        errbuf_set(err, errlen, "cannot build the token");
        return -1;
    }
    tok = jwt_encode_str(j);
    jwt_free(j);
    if (tok == NULL) {
        errbuf_set(err, errlen, "cannot sign the token");
        return -1;
    }
    *token_out = tok;
    return 0;
}

int auth_derive_workspace_key(const char *secret, size_t secret_len, const char *workspace_id,
                              char out[AUTH_KEY_HEX_LEN + 1])
{
    static const char label[] = "companion-workspace-key/v1:";
    unsigned char mac[EVP_MAX_MD_SIZE], msg[sizeof(label) + 256];
    unsigned int mac_len = 0;
    size_t wl = strlen(workspace_id), ll = sizeof(label) - 1;
    out[0] = '\0';
    if (!secret || secret_len == 0 || secret_len > INT_MAX || wl > 256)
        return -1;
    memcpy(msg, label, ll);
    memcpy(msg + ll, workspace_id, wl);
    if (!HMAC(EVP_sha256(), secret, (int)secret_len, msg, ll + wl, mac, &mac_len) ||
        mac_len != AUTH_KEY_HEX_LEN / 2)
        return -1;
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < mac_len; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[AUTH_KEY_HEX_LEN] = '\0';
    OPENSSL_cleanse(mac, sizeof(mac));
    return 0;
}
