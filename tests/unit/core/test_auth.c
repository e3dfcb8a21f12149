/*
 * Unit tests for helper/auth: the token acceptance matrix of the protocol
 * (signature, alg pin, every claim, their order), minting and the small
 * helpers. Tokens are signed independently of auth.c: HMAC tokens with
 * OpenSSL directly, RS256/ES256 with libjwt and keys generated per run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "core/auth.h"

#define NOW    1700000000LL
#define LEEWAY 30
#define WS     "ws-zq9c1e"
#define SUB    "user-alice-zq7f3"
#define AUD    "aud-zq7d2b"
#define ISS    "iss-zq51aa"
#define SECRET "5f0c2a9e7b31d4486a1c0f9e2d7b5a3c8e6f1d0a9b2c4e7f3a5d8c1b0e9f2a7d"
#define HS256  "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

struct keys {
    char *rsa_priv, *rsa_pub;
    char *ec_priv, *ec_pub;
};

/* ---- token building ---------------------------------------------------- */

static char *b64url(const void *data, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *in = data;
    char *out = malloc(len / 3 * 4 + 5);
    size_t o = 0;

    assert_non_null(out);
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = tab[(v >> 6) & 63];
        if (i + 2 < len)
            out[o++] = tab[v & 63];
    }
    out[o] = '\0';
    return out;
}

/* header.payload signed with HMAC(md, key) — or with no signature when md is NULL. */
static char *hmac_token(const char *header, const char *payload, const EVP_MD *md, const void *key,
                        size_t key_len)
{
    char *h = b64url(header, strlen(header));
    char *p = b64url(payload, strlen(payload));
    size_t in_len = strlen(h) + 1 + strlen(p);
    char *tok = malloc(in_len + 200);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;

    assert_non_null(tok);
    sprintf(tok, "%s.%s", h, p);
    if (md != NULL) {
        static const unsigned char nothing = 0;
        assert_non_null(HMAC(md, key_len ? key : &nothing, (int)key_len, (unsigned char *)tok,
                             in_len, mac, &mac_len));
        char *s = b64url(mac, mac_len);
        sprintf(tok + in_len, ".%s", s);
        free(s);
    } else {
        strcpy(tok + in_len, ".");
    }
    free(h);
    free(p);
    return tok;
}

static char *hs256_token(const char *payload)
{
    return hmac_token(HS256, payload, EVP_sha256(), SECRET, strlen(SECRET));
}

/* RS/ES tokens through libjwt, with `payload` as the exact grants. */
static char *pem_token(jwt_alg_t alg, const char *priv_pem, const char *payload)
{
    jwt_t *j = NULL;
    char *tok;

    assert_int_equal(jwt_new(&j), 0);
    assert_int_equal(jwt_add_grants_json(j, payload), 0);
    assert_int_equal(jwt_set_alg(j, alg, (const unsigned char *)priv_pem, (int)strlen(priv_pem)),
                     0);
    tok = jwt_encode_str(j);
    jwt_free(j);
    assert_non_null(tok);
    return tok;
}

/* The usual claims; `extra` is spliced in (leading comma included). */
static char *claims(const char *extra)
{
    char *buf = malloc(512 + strlen(extra));

    assert_non_null(buf);
    sprintf(buf, "{\"sub\":\"" SUB "\",\"workspaceId\":\"" WS "\",\"exp\":%lld%s}", NOW + 600,
            extra);
    return buf;
}

static char *hs256_with(const char *extra)
{
    char *p = claims(extra);
    char *tok = hs256_token(p);
    free(p);
    return tok;
}

/* ---- verification ------------------------------------------------------ */

static struct auth_config hs_cfg(void)
{
    struct auth_config c = {
        .alg = AUTH_ALG_HS256,
        .key = (const unsigned char *)SECRET,
        .key_len = strlen(SECRET),
        .audience = "",
        .issuer = NULL,
        .leeway_s = LEEWAY,
        .workspace_id = WS,
    };
    return c;
}

static struct auth_config pem_cfg(enum auth_alg alg, const char *pub)
{
    struct auth_config c = hs_cfg();
    c.alg = alg;
    c.key = (const unsigned char *)pub;
    c.key_len = strlen(pub);
    return c;
}

/* Verifies and checks the invariants every call must keep: a message on
 * failure, none of the token, key or claim values in it, `out` empty on
 * failure. Returns the result for the caller to compare. */
static enum auth_result check_full(const struct auth_config *cfg, const char *tok, size_t len,
                                   const char *msg_ws, int64_t now, struct auth_grant *g,
                                   char *err_out)
{
    char err[256];
    struct auth_grant tmp;
    struct auth_grant *out = g ? g : &tmp;
    enum auth_result r;

    memset(err, 'x', sizeof(err));
    r = auth_verify(cfg, tok, len, msg_ws, now, out, err, sizeof(err));
    assert_non_null(memchr(err, '\0', sizeof(err)));
    if (r == AUTH_OK) {
        assert_string_equal(err, "");
        assert_non_null(out->user_id);
    } else {
        assert_true(strlen(err) > 0);
        assert_null(out->user_id);
        /* Every piece of the token longer than a claim name must stay out. */
        if (tok != NULL && len >= 8) {
            char piece[9];
            for (size_t i = 0; i + 8 <= len && i < 4096; i++) {
                memcpy(piece, tok + i, 8);
                piece[8] = '\0';
                if (memchr(piece, '\0', 8) == NULL && strchr(piece, ' ') == NULL)
                    assert_null(strstr(err, piece));
            }
        }
        assert_null(strstr(err, SECRET));
        /* Every claim value in these tests carries "zq"; names never do. */
        assert_null(strstr(err, "zq"));
        assert_null(strstr(err, "BEGIN"));
    }
    if (g == NULL)
        auth_grant_clear(&tmp);
    if (err_out != NULL)
        strcpy(err_out, err);
    return r;
}

static enum auth_result check_len(const struct auth_config *cfg, const char *tok, size_t len,
                                  const char *msg_ws, int64_t now, struct auth_grant *g)
{
    return check_full(cfg, tok, len, msg_ws, now, g, NULL);
}

static enum auth_result check(const struct auth_config *cfg, const char *tok, const char *msg_ws,
                              int64_t now)
{
    return check_len(cfg, tok, strlen(tok), msg_ws, now, NULL);
}

static enum auth_result check_hs(const char *extra)
{
    struct auth_config cfg = hs_cfg();
    char *tok = hs256_with(extra);
    enum auth_result r = check(&cfg, tok, WS, NOW);
    free(tok);
    return r;
}

/* Verifies a token with exactly `payload` as claims under the default HS256 config. */
static enum auth_result check_payload(const char *payload)
{
    struct auth_config cfg = hs_cfg();
    char *tok = hs256_token(payload);
    enum auth_result r = check(&cfg, tok, WS, NOW);
    free(tok);
    return r;
}

/* ---- keys -------------------------------------------------------------- */

static char *pem_of(EVP_PKEY *k, int private_part)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    char *out;
    long n;

    assert_non_null(b);
    if (private_part)
        assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    else
        assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
    n = BIO_get_mem_data(b, &data);
    assert_true(n > 0);
    out = strndup(data, (size_t)n);
    BIO_free(b);
    assert_non_null(out);
    return out;
}

static int group_setup(void **state)
{
    struct keys *k = calloc(1, sizeof(*k));
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    if (k == NULL || rsa == NULL || ec == NULL)
        return -1;
    k->rsa_priv = pem_of(rsa, 1);
    k->rsa_pub = pem_of(rsa, 0);
    k->ec_priv = pem_of(ec, 1);
    k->ec_pub = pem_of(ec, 0);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    *state = k;
    return 0;
}

static int group_teardown(void **state)
{
    struct keys *k = *state;

    free(k->rsa_priv);
    free(k->rsa_pub);
    free(k->ec_priv);
    free(k->ec_pub);
    free(k);
    return 0;
}

/* ---- signature and algorithm ------------------------------------------- */

static void test_hs256_valid(void **state)
{
    struct auth_config cfg = hs_cfg();
    struct auth_grant g;
    char *tok = hs256_with("");

    assert_int_equal(check_len(&cfg, tok, strlen(tok), WS, NOW, &g), AUTH_OK);
    assert_string_equal(g.user_id, SUB);
    assert_int_equal(g.scopes, AUTH_SCOPE_READ);
    assert_int_equal(g.exp, NOW + 600);
    auth_grant_clear(&g);
    assert_null(g.user_id);
    auth_grant_clear(&g); /* twice is harmless */
    /* The client may send no workspaceId beside the token. */
    assert_int_equal(check(&cfg, tok, NULL, NOW), AUTH_OK);
    free(tok);
}

static void test_rs256_valid(void **state)
{
    struct keys *k = *state;
    struct auth_config cfg = pem_cfg(AUTH_ALG_RS256, k->rsa_pub);
    char *p = claims(",\"scope\":\"read run\"");
    char *tok = pem_token(JWT_ALG_RS256, k->rsa_priv, p);
    struct auth_grant g;

    assert_int_equal(check_len(&cfg, tok, strlen(tok), WS, NOW, &g), AUTH_OK);
    assert_string_equal(g.user_id, SUB);
    assert_int_equal(g.scopes, AUTH_SCOPE_READ | AUTH_SCOPE_RUN);
    auth_grant_clear(&g);
    free(tok);
    free(p);
}

static void test_es256_valid(void **state)
{
    struct keys *k = *state;
    struct auth_config cfg = pem_cfg(AUTH_ALG_ES256, k->ec_pub);
    char *p = claims("");
    char *tok = pem_token(JWT_ALG_ES256, k->ec_priv, p);

    assert_int_equal(check(&cfg, tok, WS, NOW), AUTH_OK);
    free(tok);
    free(p);
}

static void test_alg_none(void **state)
{
    struct keys *k = *state;
    struct auth_config hs = hs_cfg();
    struct auth_config rs = pem_cfg(AUTH_ALG_RS256, k->rsa_pub);
    char *p = claims("");
    char *tok = hmac_token("{\"alg\":\"none\",\"typ\":\"JWT\"}", p, NULL, NULL, 0);
    char *tok2 = hmac_token("{\"alg\":\"none\"}", p, NULL, NULL, 0);

    assert_int_equal(tok[strlen(tok) - 1], '.');
    assert_int_equal(check(&hs, tok, WS, NOW), AUTH_INVALID);
    assert_int_equal(check(&rs, tok, WS, NOW), AUTH_INVALID);
    assert_int_equal(check(&hs, tok2, WS, NOW), AUTH_INVALID);
    free(tok);
    free(tok2);
    /* Even carrying an HS256 signature, a "none" header must not pass. */
    tok = hmac_token("{\"alg\":\"none\",\"typ\":\"JWT\"}", p, EVP_sha256(), SECRET, strlen(SECRET));
    assert_int_equal(check(&hs, tok, WS, NOW), AUTH_INVALID);
    free(tok);
    free(p);
}

static void test_hs384_when_hs256_pinned(void **state)
{
    struct auth_config cfg = hs_cfg();
    char *p = claims("");
    char *tok =
        hmac_token("{\"alg\":\"HS384\",\"typ\":\"JWT\"}", p, EVP_sha384(), SECRET, strlen(SECRET));
    jwt_t *j = NULL;

    /* libjwt alone would take it. */
    assert_int_equal(jwt_decode(&j, tok, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    jwt_free(j);
    assert_int_equal(check(&cfg, tok, WS, NOW), AUTH_INVALID);
    free(tok);
    free(p);
}

static void test_other_alg_when_rs256_pinned(void **state)
{
    struct keys *k = *state;
    struct auth_config cfg = pem_cfg(AUTH_ALG_RS256, k->rsa_pub);
    char *p = claims("");
    char *rs384 = pem_token(JWT_ALG_RS384, k->rsa_priv, p);
    char *es256 = pem_token(JWT_ALG_ES256, k->ec_priv, p);

    assert_int_equal(check(&cfg, rs384, WS, NOW), AUTH_INVALID);
    assert_int_equal(check(&cfg, es256, WS, NOW), AUTH_INVALID);
    free(rs384);
    free(es256);
    free(p);
}

static void test_alg_confusion(void **state)
{
    struct keys *k = *state;
    struct auth_config cfg = pem_cfg(AUTH_ALG_RS256, k->rsa_pub);
    char *p = claims(",\"scope\":\"read run editor\"");
    /* The attacker knows the public key and uses its PEM as an HMAC secret. */
    char *tok = hmac_token(HS256, p, EVP_sha256(), k->rsa_pub, strlen(k->rsa_pub));
    jwt_t *j = NULL;

    assert_int_equal(
        jwt_decode(&j, tok, (const unsigned char *)k->rsa_pub, (int)strlen(k->rsa_pub)),
        0); /* the trap is real in this libjwt */
    jwt_free(j);
    assert_int_equal(check(&cfg, tok, WS, NOW), AUTH_INVALID);
    free(tok);
    free(p);
}

static void test_alg_header_case(void **state)
{
    char *p = claims("");
    char *tok =
        hmac_token("{\"alg\":\"hs256\",\"typ\":\"JWT\"}", p, EVP_sha256(), SECRET, strlen(SECRET));
    struct auth_config cfg = hs_cfg();

    assert_int_equal(check(&cfg, tok, WS, NOW), AUTH_INVALID);
    free(tok);
    free(p);
}

static void test_crit_header(void **state)
{
    char *p = claims("");
    char *tok = hmac_token("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"crit\":[\"b64\"],\"b64\":false}",
                           p, EVP_sha256(), SECRET, strlen(SECRET));
    struct auth_config cfg = hs_cfg();

    assert_int_equal(check(&cfg, tok, WS, NOW), AUTH_INVALID);
    free(tok);
    free(p);
}

static void test_wrong_secret(void **state)
{
    struct auth_config cfg = hs_cfg();
    char *p = claims("");
    char *tok = hmac_token(HS256, p, EVP_sha256(), "another-secret", 14);

    assert_int_equal(check(&cfg, tok, WS, NOW), AUTH_INVALID);
    free(tok);
    free(p);
}

static void test_empty_key(void **state)
{
    struct auth_config cfg = hs_cfg();
    char *p = claims("");
    char *tok = hmac_token(HS256, p, EVP_sha256(), "", 0);
    jwt_t *j = NULL;
    char last_err[256];

    /* libjwt skips verification without a key: any token passes it. */
    assert_int_equal(jwt_decode(&j, tok, NULL, 0), 0);
    jwt_free(j);

    /* Refused before libjwt is reached, whatever it would make of it. */
    cfg.key = (const unsigned char *)"";
    cfg.key_len = 0;
    assert_int_equal(check_full(&cfg, tok, strlen(tok), WS, NOW, NULL, last_err), AUTH_INVALID);
    assert_non_null(strstr(last_err, "key"));
    cfg.key = NULL;
    cfg.key_len = 0;
    assert_int_equal(check_full(&cfg, tok, strlen(tok), WS, NOW, NULL, last_err), AUTH_INVALID);
    assert_non_null(strstr(last_err, "key"));
    cfg.key = NULL;
    cfg.key_len = 32;
    assert_int_equal(check_full(&cfg, tok, strlen(tok), WS, NOW, NULL, last_err), AUTH_INVALID);
    assert_non_null(strstr(last_err, "key"));
    free(tok);
    free(p);
}

static void test_not_configured(void **state)
{
    struct auth_config cfg = hs_cfg();
    char *tok = hs256_with("");
    char err[128];

    assert_int_equal(auth_verify(NULL, tok, strlen(tok), WS, NOW, NULL, err, sizeof(err)),
                     AUTH_INVALID);
    cfg.workspace_id = NULL;
    assert_int_equal(check(&cfg, tok, WS, NOW), AUTH_INVALID);
    cfg.workspace_id = "";
    assert_int_equal(check(&cfg, tok, "", NOW), AUTH_INVALID);
    cfg = hs_cfg();
    cfg.alg = (enum auth_alg)7;
    assert_int_equal(check(&cfg, tok, WS, NOW), AUTH_INVALID);
    /* err and out are optional. */
    cfg = hs_cfg();
    assert_int_equal(auth_verify(&cfg, tok, strlen(tok), WS, NOW, NULL, NULL, 0), AUTH_OK);
    assert_int_equal(auth_verify(&cfg, tok, 0, WS, NOW, NULL, NULL, 0), AUTH_INVALID);
    free(tok);
}

static char *with_segment(const char *tok, int seg, const char *replacement)
{
    const char *d1 = strchr(tok, '.');
    const char *d2 = strchr(d1 + 1, '.');
    char *out = malloc(strlen(tok) + strlen(replacement) + 1);

    assert_non_null(out);
    if (seg == 1)
        sprintf(out, "%.*s.%s%s", (int)(d1 - tok), tok, replacement, d2);
    else
        sprintf(out, "%.*s.%s", (int)(d2 - tok), tok, replacement);
    return out;
}

static void tamper_both(const struct auth_config *cfg, const char *tok)
{
    const char *evil = "{\"sub\":\"mallory-zq\",\"workspaceId\":\"" WS "\",\"exp\":9999999999,"
                       "\"scope\":\"read run editor\"}";
    char *pb = b64url(evil, strlen(evil));
    char *t1 = with_segment(tok, 1, pb);
    char *t2 = strdup(tok);
    char *sig = strrchr(t2, '.') + 1;
    size_t mid = strlen(sig) / 2;

    assert_int_equal(check(cfg, tok, WS, NOW), AUTH_OK);
    assert_int_equal(check(cfg, t1, WS, NOW), AUTH_INVALID);
    /* A middle character: the last one may only carry padding bits. */
    sig[mid] = sig[mid] == 'A' ? 'B' : 'A';
    assert_int_equal(check(cfg, t2, WS, NOW), AUTH_INVALID);
    /* Signature of another token. */
    char *other = with_segment(tok, 2, "AAAA");
    assert_int_equal(check(cfg, other, WS, NOW), AUTH_INVALID);
    free(other);
    free(pb);
    free(t1);
    free(t2);
}

static void test_tampered(void **state)
{
    struct keys *k = *state;
    struct auth_config hs = hs_cfg();
    struct auth_config rs = pem_cfg(AUTH_ALG_RS256, k->rsa_pub);
    struct auth_config es = pem_cfg(AUTH_ALG_ES256, k->ec_pub);
    char *p = claims("");
    char *t_hs = hs256_token(p);
    char *t_rs = pem_token(JWT_ALG_RS256, k->rsa_priv, p);
    char *t_es = pem_token(JWT_ALG_ES256, k->ec_priv, p);

    tamper_both(&hs, t_hs);
    tamper_both(&rs, t_rs);
    tamper_both(&es, t_es);
    free(t_hs);
    free(t_rs);
    free(t_es);
    free(p);
}

static void test_garbage(void **state)
{
    struct auth_config cfg = hs_cfg();
    static const char *const junk[] = {
        "",
        "a",
        "a.b",
        "...",
        "..",
        "a..b",
        ".a.b",
        "a.b.",
        "a.b.c",
        "a.b.c.d",
        "!!!.@@@.###",
        "eyJ.eyJ.sig",
        "e30.e30.e30",
        "bm90IGpzb24.bm90IGpzb24.c2ln",
        "Bearer x.y.z",
        " x.y.z",
        "x.y.z\n",
        "x=.y=.z=",
    };
    char err[128];

    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        assert_int_equal(check_len(&cfg, junk[i], strlen(junk[i]), WS, NOW, NULL), AUTH_INVALID);
    assert_int_equal(auth_verify(&cfg, NULL, 10, WS, NOW, NULL, err, sizeof(err)), AUTH_INVALID);

    /* Random bytes, NULs included, at several lengths. */
    unsigned char rnd[512];
    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + (size_t)(round * 37 % 511);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            rnd[i] = (unsigned char)(seed >> 16);
        }
        if (round % 2)
            rnd[n / 3] = '.', rnd[2 * n / 3] = '.';
        assert_int_equal(check_len(&cfg, (const char *)rnd, n, WS, NOW, NULL), AUTH_INVALID);
    }
}

static void nul_and_padding(const struct auth_config *cfg, const char *tok)
{
    size_t n = strlen(tok);
    char *buf = malloc(n + 16);

    assert_non_null(buf);
    /* The token need not be NUL-terminated: only len bytes count. */
    memcpy(buf, tok, n);
    memset(buf + n, 'Q', 16);
    assert_int_equal(check_len(cfg, buf, n, WS, NOW, NULL), AUTH_OK);
    /* A NUL inside those bytes is refused, not truncated at: libjwt would
     * stop there and verify only the part before it. */
    memcpy(buf, tok, n);
    memcpy(buf + n, "\0garbage", 8);
    assert_int_equal(check_len(cfg, buf, n + 8, WS, NOW, NULL), AUTH_INVALID);
    assert_int_equal(check_len(cfg, buf, n + 1, WS, NOW, NULL), AUTH_INVALID);
    buf[n - 5] = '\0';
    assert_int_equal(check_len(cfg, buf, n, WS, NOW, NULL), AUTH_INVALID);
    /* Padding, whitespace and a fourth segment are not a compact JWS. */
    static const char *const suffix[] = {"=", "==", " ", "\n", "\r\n", ".", ".x", "\t"};
    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        strcpy(buf, tok);
        strcat(buf, suffix[i]);
        assert_int_equal(check(cfg, buf, WS, NOW), AUTH_INVALID);
    }
    buf[0] = ' ';
    strcpy(buf + 1, tok);
    assert_int_equal(check(cfg, buf, WS, NOW), AUTH_INVALID);
    free(buf);
}

static void test_nul_and_padding(void **state)
{
    struct keys *k = *state;
    struct auth_config hs = hs_cfg();
    struct auth_config rs = pem_cfg(AUTH_ALG_RS256, k->rsa_pub);
    struct auth_config es = pem_cfg(AUTH_ALG_ES256, k->ec_pub);
    char *p = claims("");
    char *t_hs = hs256_token(p);
    char *t_rs = pem_token(JWT_ALG_RS256, k->rsa_priv, p);
    char *t_es = pem_token(JWT_ALG_ES256, k->ec_priv, p);

    nul_and_padding(&hs, t_hs);
    nul_and_padding(&rs, t_rs);
    nul_and_padding(&es, t_es);
    free(t_hs);
    free(t_rs);
    free(t_es);
    free(p);
}

static double elapsed_ms(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

static void test_huge_token(void **state)
{
    struct auth_config cfg = hs_cfg();
    size_t n = 100 * 1024;
    char *big = malloc(n + 1);
    struct timespec t0;
    char err[128];

    memset(big, 'A', n);
    big[n / 3] = '.';
    big[2 * n / 3] = '.';
    big[n] = '\0';
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(auth_verify(&cfg, big, n, WS, NOW, NULL, err, sizeof(err)), AUTH_INVALID);
    /* Refused by length, not by decoding: a thousand tries are instant. */
    assert_true(elapsed_ms(&t0) < 500.0);
    assert_int_equal(check_len(&cfg, big, n, WS, NOW, NULL), AUTH_INVALID);
    assert_int_equal(check_len(&cfg, big, AUTH_TOKEN_MAX + 1, WS, NOW, NULL), AUTH_INVALID);
    free(big);
}

/* A genuine token right at AUTH_TOKEN_MAX passes; one byte more does not. */
static void test_token_size_limit(void **state)
{
    struct auth_config cfg = hs_cfg();
    char *pad = malloc(AUTH_TOKEN_MAX);
    char *extra = malloc(AUTH_TOKEN_MAX + 32);
    int seen_max = 0, seen_over = 0;

    for (size_t n = 5500; n < 6300 && !(seen_max && seen_over); n++) {
        memset(pad, 'p', n);
        pad[n] = '\0';
        sprintf(extra, ",\"pad\":\"%s\"", pad);
        char *tok = hs256_with(extra);
        size_t len = strlen(tok);
        if (len == AUTH_TOKEN_MAX) {
            assert_int_equal(check(&cfg, tok, WS, NOW), AUTH_OK);
            seen_max = 1;
        } else if (len > AUTH_TOKEN_MAX && !seen_over) {
            assert_int_equal(check(&cfg, tok, WS, NOW), AUTH_INVALID);
            seen_over = 1;
        }
        free(tok);
    }
    assert_true(seen_max);
    assert_true(seen_over);
    free(pad);
    free(extra);
}

static void test_payload_not_object(void **state)
{
    struct auth_config cfg = hs_cfg();
    char *tok = hs256_token("[1,2,3]");
    char err[256];

    /* libjwt's jansson takes a top-level array as claims. */
    assert_int_equal(check_full(&cfg, tok, strlen(tok), WS, NOW, NULL, err), AUTH_INVALID);
    assert_non_null(strstr(err, "object"));
    free(tok);
    assert_int_equal(check_payload("[{\"sub\":\"" SUB "\"}]"), AUTH_INVALID);
}

/* ---- time claims ------------------------------------------------------- */

static void test_expired(void **state)
{
    struct auth_config cfg = hs_cfg();
    char *tok = hs256_with("");
    int64_t exp = NOW + 600;

    assert_int_equal(check(&cfg, tok, WS, exp), AUTH_OK);
    assert_int_equal(check(&cfg, tok, WS, exp + LEEWAY - 1), AUTH_OK); /* within leeway */
    /* RFC 7519: valid before exp (+ leeway), not at it: the session would
     * end in the second it began. */
    assert_int_equal(check(&cfg, tok, WS, exp + LEEWAY), AUTH_EXPIRED);
    assert_int_equal(check(&cfg, tok, WS, exp + 86400), AUTH_EXPIRED);
    cfg.leeway_s = 0;
    assert_int_equal(check(&cfg, tok, WS, exp - 1), AUTH_OK);
    assert_int_equal(check(&cfg, tok, WS, exp), AUTH_EXPIRED);
    cfg.leeway_s = -100; /* a negative leeway is no leeway, not a shorter life */
    assert_int_equal(check(&cfg, tok, WS, exp - 1), AUTH_OK);
    assert_int_equal(check(&cfg, tok, WS, exp), AUTH_EXPIRED);
    free(tok);
}

static void test_exp_far_future(void **state)
{
    struct auth_config cfg = hs_cfg();
    /* Beyond year 9999 a claim is refused outright: the helper computes
     * (exp + leeway) * 1000, which near INT64_MAX overflowed (UB). */
    char *tok =
        hs256_token("{\"sub\":\"" SUB "\",\"workspaceId\":\"" WS "\",\"exp\":9223372036854775807}");
    cfg.leeway_s = INT64_MAX;
    assert_int_equal(check(&cfg, tok, WS, NOW), AUTH_INVALID);
    free(tok);
    tok = hs256_token("{\"sub\":\"" SUB "\",\"workspaceId\":\"" WS "\",\"exp\":9223372036854775}");
    assert_int_equal(check(&cfg, tok, WS, NOW), AUTH_INVALID);
    free(tok);
    /* The bound itself is a valid (very long) life, leeway saturating. */
    tok = hs256_token("{\"sub\":\"" SUB "\",\"workspaceId\":\"" WS "\",\"exp\":253402300799}");
    assert_int_equal(check(&cfg, tok, WS, NOW), AUTH_OK);
    free(tok);
    tok = hs256_token("{\"sub\":\"" SUB "\",\"workspaceId\":\"" WS "\",\"exp\":253402300800}");
    assert_int_equal(check(&cfg, tok, WS, NOW), AUTH_INVALID);
    free(tok);
    /* nbf and iat too. */
    tok = hs256_token("{\"sub\":\"" SUB "\",\"workspaceId\":\"" WS
                      "\",\"exp\":1700000600,\"nbf\":-9223372036854775807}");
    cfg.leeway_s = 30;
    assert_int_equal(check(&cfg, tok, WS, NOW), AUTH_INVALID);
    free(tok);
}

static void test_derive_workspace_key(void **state)
{
    char key[AUTH_KEY_HEX_LEN + 1], other[AUTH_KEY_HEX_LEN + 1];
    const char *secret = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    /* Pinned: openssl dgst -sha256 -hmac <64 a> of "companion-workspace-key/v1:abc".
     * The extension (vscode-ext/src/workspaceKey.ts) must give the same. */
    assert_int_equal(auth_derive_workspace_key(secret, 64, "abc", key), 0);
    assert_string_equal(key, "e3877ab9a6557926588f4ae56f5f1c5490ed3b0e8b8cc7791eebb5d7783d0691");
    assert_int_equal(auth_derive_workspace_key(secret, 64, "abd", other), 0);
    assert_string_not_equal(key, other);
    assert_int_equal(auth_derive_workspace_key(secret, 0, "abc", other), -1);
}

static void test_exp_bad(void **state)
{
    static const char *const bad[] = {
        "{\"sub\":\"" SUB "\",\"workspaceId\":\"" WS "\"}",                        /* missing */
        "{\"sub\":\"" SUB "\",\"workspaceId\":\"" WS "\",\"exp\":1700000600.5}",   /* fractional */
        "{\"sub\":\"" SUB "\",\"workspaceId\":\"" WS "\",\"exp\":1.7000006e9}",    /* real */
        "{\"sub\":\"" SUB "\",\"workspaceId\":\"" WS "\",\"exp\":\"1700000600\"}", /* string */
        "{\"sub\":\"" SUB "\",\"workspaceId\":\"" WS "\",\"exp\":0}",              /* zero */
        "{\"sub\":\"" SUB "\",\"workspaceId\":\"" WS "\",\"exp\":-1}",             /* negative */
        "{\"sub\":\"" SUB "\",\"workspaceId\":\"" WS "\",\"exp\":true}",           /* bool */
        "{\"sub\":\"" SUB "\",\"workspaceId\":\"" WS "\",\"exp\":null}",           /* null */
        "{\"sub\":\"" SUB "\",\"workspaceId\":\"" WS "\",\"exp\":[1700000600]}",   /* array */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(check_payload(bad[i]), AUTH_INVALID);
}

static void test_nbf_iat(void **state)
{
    char extra[128];

    snprintf(extra, sizeof(extra), ",\"nbf\":%lld", NOW + LEEWAY + 1);
    assert_int_equal(check_hs(extra), AUTH_INVALID);
    snprintf(extra, sizeof(extra), ",\"nbf\":%lld", NOW + LEEWAY);
    assert_int_equal(check_hs(extra), AUTH_OK);
    snprintf(extra, sizeof(extra), ",\"nbf\":%lld", NOW - 100);
    assert_int_equal(check_hs(extra), AUTH_OK);
    snprintf(extra, sizeof(extra), ",\"iat\":%lld", NOW + LEEWAY + 1);
    assert_int_equal(check_hs(extra), AUTH_INVALID);
    snprintf(extra, sizeof(extra), ",\"iat\":%lld", NOW + LEEWAY);
    assert_int_equal(check_hs(extra), AUTH_OK);
    snprintf(extra, sizeof(extra), ",\"iat\":%lld,\"nbf\":%lld", NOW - 5, NOW - 5);
    assert_int_equal(check_hs(extra), AUTH_OK);
    assert_int_equal(check_hs(",\"nbf\":\"0\""), AUTH_INVALID);
    assert_int_equal(check_hs(",\"iat\":1.5"), AUTH_INVALID);
    assert_int_equal(check_hs(",\"iat\":null"), AUTH_INVALID);
}

/* ---- identity, audience, issuer, workspace ------------------------------ */

static void test_sub(void **state)
{
    char payload[1024];
    char long_sub[300];

    assert_int_equal(check_payload("{\"workspaceId\":\"" WS "\",\"exp\":1700000600}"),
                     AUTH_INVALID);
    assert_int_equal(check_payload("{\"sub\":\"\",\"workspaceId\":\"" WS "\",\"exp\":1700000600}"),
                     AUTH_INVALID);
    assert_int_equal(check_payload("{\"sub\":42,\"workspaceId\":\"" WS "\",\"exp\":1700000600}"),
                     AUTH_INVALID);
    assert_int_equal(check_payload("{\"sub\":null,\"workspaceId\":\"" WS "\",\"exp\":1700000600}"),
                     AUTH_INVALID);
    assert_int_equal(
        check_payload("{\"sub\":\"zq\\u0001b\",\"workspaceId\":\"" WS "\",\"exp\":1700000600}"),
        AUTH_INVALID);
    assert_int_equal(
        check_payload("{\"sub\":\"zq\\u0000b\",\"workspaceId\":\"" WS "\",\"exp\":1700000600}"),
        AUTH_INVALID);
    memset(long_sub, 'u', 256);
    memcpy(long_sub, "zq", 2);
    long_sub[256] = '\0';
    snprintf(payload, sizeof(payload), "{\"sub\":\"%s\",\"workspaceId\":\"" WS "\",\"exp\":%lld}",
             long_sub, NOW + 10);
    assert_int_equal(check_payload(payload), AUTH_OK);
    long_sub[256] = 'u';
    long_sub[257] = '\0';
    snprintf(payload, sizeof(payload), "{\"sub\":\"%s\",\"workspaceId\":\"" WS "\",\"exp\":%lld}",
             long_sub, NOW + 10);
    assert_int_equal(check_payload(payload), AUTH_INVALID);
    /* Non-ASCII names are fine. */
    assert_int_equal(
        check_payload("{\"sub\":\"J\xc3\xb6rg\",\"workspaceId\":\"" WS "\",\"exp\":1700000600}"),
        AUTH_OK);
}

static void test_workspace(void **state)
{
    struct auth_config cfg = hs_cfg();
    char *tok = hs256_with("");
    char *other =
        hs256_token("{\"sub\":\"" SUB "\",\"workspaceId\":\"ws-zq-other\",\"exp\":1700000600}");
    char *missing = hs256_token("{\"sub\":\"" SUB "\",\"exp\":1700000600}");
    char *typed = hs256_token("{\"sub\":\"" SUB "\",\"workspaceId\":7,\"exp\":1700000600}");

    assert_int_equal(check(&cfg, other, "ws-zq-other", NOW), AUTH_WORKSPACE_MISMATCH);
    assert_int_equal(check(&cfg, other, NULL, NOW), AUTH_WORKSPACE_MISMATCH);
    assert_int_equal(check(&cfg, tok, "ws-zq-other", NOW), AUTH_WORKSPACE_MISMATCH);
    assert_int_equal(check(&cfg, tok, "", NOW), AUTH_WORKSPACE_MISMATCH);
    assert_int_equal(check(&cfg, tok, WS "x", NOW), AUTH_WORKSPACE_MISMATCH);
    assert_int_equal(check(&cfg, missing, WS, NOW), AUTH_WORKSPACE_MISMATCH);
    assert_int_equal(check(&cfg, typed, WS, NOW), AUTH_INVALID);
    cfg.workspace_id = "ws-zq-other";
    assert_int_equal(check(&cfg, tok, WS, NOW), AUTH_WORKSPACE_MISMATCH);
    free(tok);
    free(other);
    free(missing);
    free(typed);
}

static void test_check_order(void **state)
{
    struct auth_config cfg = hs_cfg();
    char *expired_other_ws =
        hs256_token("{\"sub\":\"" SUB "\",\"workspaceId\":\"ws-zq-other\",\"exp\":1600000000}");
    char *nosub_other_ws = hs256_token("{\"workspaceId\":\"ws-zq-other\",\"exp\":1700000600}");
    char *badsig_other_ws = hmac_token(
        HS256, "{\"sub\":\"" SUB "\",\"workspaceId\":\"ws-zq-other\",\"exp\":1700000600}",
        EVP_sha256(), "nope", 4);
    char *expired_nosub = hs256_token("{\"workspaceId\":\"" WS "\",\"exp\":1600000000}");
    char *noexp_other_ws = hs256_token("{\"sub\":\"" SUB "\",\"workspaceId\":\"ws-zq-other\"}");

    assert_int_equal(check(&cfg, expired_other_ws, WS, NOW), AUTH_EXPIRED);
    assert_int_equal(check(&cfg, nosub_other_ws, WS, NOW), AUTH_INVALID);
    assert_int_equal(check(&cfg, badsig_other_ws, WS, NOW), AUTH_INVALID);
    assert_int_equal(check(&cfg, expired_nosub, WS, NOW), AUTH_EXPIRED);
    assert_int_equal(check(&cfg, noexp_other_ws, WS, NOW), AUTH_INVALID);
    /* Signature before expiry: a forged expired token is INVALID, not EXPIRED. */
    char *forged_expired =
        hmac_token(HS256, "{\"sub\":\"" SUB "\",\"workspaceId\":\"" WS "\",\"exp\":1600000000}",
                   EVP_sha256(), "nope", 4);
    assert_int_equal(check(&cfg, forged_expired, WS, NOW), AUTH_INVALID);
    /* aud is checked before the workspace. */
    cfg.audience = AUD;
    char *noaud_other_ws =
        hs256_token("{\"sub\":\"" SUB "\",\"workspaceId\":\"ws-zq-other\",\"exp\":1700000600}");
    assert_int_equal(check(&cfg, noaud_other_ws, WS, NOW), AUTH_INVALID);
    free(noaud_other_ws);
    free(forged_expired);
    free(expired_other_ws);
    free(nosub_other_ws);
    free(badsig_other_ws);
    free(expired_nosub);
    free(noexp_other_ws);
}

static enum auth_result check_aud_iss(const char *aud, const char *iss, const char *extra)
{
    struct auth_config cfg = hs_cfg();
    char *tok = hs256_with(extra);
    enum auth_result r;

    cfg.audience = aud;
    cfg.issuer = iss;
    r = check(&cfg, tok, WS, NOW);
    free(tok);
    return r;
}

static void test_audience(void **state)
{
    assert_int_equal(check_aud_iss(AUD, NULL, ",\"aud\":\"" AUD "\""), AUTH_OK);
    assert_int_equal(check_aud_iss(AUD, NULL, ""), AUTH_INVALID);
    assert_int_equal(check_aud_iss(AUD, NULL, ",\"aud\":\"aud-zq-other\""), AUTH_INVALID);
    assert_int_equal(check_aud_iss(AUD, NULL, ",\"aud\":\"" AUD "x\""), AUTH_INVALID);
    assert_int_equal(check_aud_iss(AUD, NULL, ",\"aud\":[\"x\",\"" AUD "\"]"), AUTH_OK);
    assert_int_equal(check_aud_iss(AUD, NULL, ",\"aud\":[\"" AUD "\"]"), AUTH_OK);
    assert_int_equal(check_aud_iss(AUD, NULL, ",\"aud\":[\"x\",\"y\"]"), AUTH_INVALID);
    assert_int_equal(check_aud_iss(AUD, NULL, ",\"aud\":[]"), AUTH_INVALID);
    assert_int_equal(check_aud_iss(AUD, NULL, ",\"aud\":[\"" AUD "\",3]"), AUTH_INVALID);
    assert_int_equal(check_aud_iss(AUD, NULL, ",\"aud\":7"), AUTH_INVALID);
    assert_int_equal(check_aud_iss(AUD, NULL, ",\"aud\":{\"" AUD "\":1}"), AUTH_INVALID);
    assert_int_equal(check_aud_iss(AUD, NULL, ",\"aud\":\"a\\u0000" AUD "\""), AUTH_INVALID);
    /* Not configured: whatever the token says is not checked. */
    assert_int_equal(check_aud_iss("", NULL, ",\"aud\":\"anything-zq\""), AUTH_OK);
    assert_int_equal(check_aud_iss(NULL, NULL, ",\"aud\":7"), AUTH_OK);
}

static void test_issuer(void **state)
{
    assert_int_equal(check_aud_iss(NULL, ISS, ",\"iss\":\"" ISS "\""), AUTH_OK);
    assert_int_equal(check_aud_iss(NULL, ISS, ""), AUTH_INVALID);
    assert_int_equal(check_aud_iss(NULL, ISS, ",\"iss\":\"iss-zq-other\""), AUTH_INVALID);
    assert_int_equal(check_aud_iss(NULL, ISS, ",\"iss\":[\"" ISS "\"]"), AUTH_INVALID);
    assert_int_equal(check_aud_iss(NULL, ISS, ",\"iss\":1"), AUTH_INVALID);
    assert_int_equal(check_aud_iss(AUD, ISS, ",\"iss\":\"" ISS "\",\"aud\":\"" AUD "\""), AUTH_OK);
    assert_int_equal(check_aud_iss(AUD, ISS, ",\"iss\":\"" ISS "\""), AUTH_INVALID);
    assert_int_equal(check_aud_iss("", "", ",\"iss\":\"whoever-zq\""), AUTH_OK);
}

/* ---- scopes ------------------------------------------------------------ */

static unsigned scopes_of(const char *extra, enum auth_result *r)
{
    struct auth_config cfg = hs_cfg();
    struct auth_grant g;
    char *tok = hs256_with(extra);
    unsigned s;

    *r = check_len(&cfg, tok, strlen(tok), WS, NOW, &g);
    s = g.scopes;
    auth_grant_clear(&g);
    free(tok);
    return s;
}

static void test_scope_claim(void **state)
{
    enum auth_result r;

    assert_int_equal(scopes_of("", &r), AUTH_SCOPE_READ);
    assert_int_equal(r, AUTH_OK);
    assert_int_equal(scopes_of(",\"scope\":\"read run editor\"", &r),
                     AUTH_SCOPE_ALL & ~(AUTH_SCOPE_APPROVE | AUTH_SCOPE_AGENT | AUTH_SCOPE_WRITE));
    assert_int_equal(scopes_of(",\"scope\":\"read run editor approve\"", &r),
                     AUTH_SCOPE_ALL & ~(AUTH_SCOPE_AGENT | AUTH_SCOPE_WRITE));
    assert_int_equal(scopes_of(",\"scope\":\"read run editor approve agent\"", &r),
                     AUTH_SCOPE_ALL & ~AUTH_SCOPE_WRITE);
    assert_int_equal(scopes_of(",\"scope\":\"read run editor approve agent write\"", &r),
                     AUTH_SCOPE_ALL);
    assert_int_equal(scopes_of(",\"scope\":\"write\"", &r), AUTH_SCOPE_WRITE);
    assert_int_equal(scopes_of(",\"scope\":\"agent\"", &r), AUTH_SCOPE_AGENT);
    assert_int_equal(scopes_of(",\"scope\":\"approve\"", &r), AUTH_SCOPE_APPROVE);
    assert_int_equal(r, AUTH_OK);
    assert_int_equal(scopes_of(",\"scope\":\"editor\"", &r), AUTH_SCOPE_EDITOR);
    assert_int_equal(scopes_of(",\"scope\":\"run\"", &r), AUTH_SCOPE_RUN);
    assert_int_equal(scopes_of(",\"scope\":\"  run   read \"", &r),
                     AUTH_SCOPE_RUN | AUTH_SCOPE_READ);
    assert_int_equal(scopes_of(",\"scope\":\"read admin openid run\"", &r),
                     AUTH_SCOPE_READ | AUTH_SCOPE_RUN);
    assert_int_equal(r, AUTH_OK);
    assert_int_equal(scopes_of(",\"scope\":\"admin\"", &r), 0);
    assert_int_equal(r, AUTH_OK);
    assert_int_equal(scopes_of(",\"scope\":\"\"", &r), 0);
    assert_int_equal(scopes_of(",\"scope\":\"READ Run\"", &r), 0);
    assert_int_equal(scopes_of(",\"scope\":\"read,run\"", &r),
                     0); /* the claim is space-separated */
    assert_int_equal(scopes_of(",\"scope\":\"readrun\"", &r), 0);
    scopes_of(",\"scope\":7", &r);
    assert_int_equal(r, AUTH_INVALID);
    scopes_of(",\"scope\":[\"read\"]", &r);
    assert_int_equal(r, AUTH_INVALID);
    scopes_of(",\"scope\":null", &r);
    assert_int_equal(r, AUTH_INVALID);
}

/* ---- device claims ----------------------------------------------------- */

static enum auth_result device_of(const char *extra, struct auth_grant *g)
{
    struct auth_config cfg = hs_cfg();
    char *tok = hs256_with(extra);
    enum auth_result r = check_len(&cfg, tok, strlen(tok), WS, NOW, g);
    free(tok);
    return r;
}

static void test_device_claims(void **state)
{
    struct auth_grant g;

    assert_int_equal(device_of("", &g), AUTH_OK);
    assert_string_equal(g.device_id, "");
    assert_int_equal(g.pairing, 0);
    auth_grant_clear(&g);
    assert_int_equal(device_of(",\"dev\":\"a1B2_c-3\"", &g), AUTH_OK);
    assert_string_equal(g.device_id, "a1B2_c-3");
    assert_int_equal(g.pairing, 0);
    auth_grant_clear(&g);
    assert_int_equal(device_of(",\"dev\":\"abc\",\"pairing\":true", &g), AUTH_OK);
    assert_string_equal(g.device_id, "abc");
    assert_int_equal(g.pairing, 1);
    auth_grant_clear(&g);
    assert_int_equal(device_of(",\"dev\":\"abc\",\"pairing\":false", &g), AUTH_OK);
    assert_int_equal(g.pairing, 0);
    auth_grant_clear(&g);
    /* 64 characters is the longest. */
    assert_int_equal(
        device_of(",\"dev\":\"0123456789012345678901234567890123456789012345678901234567890123\"",
                  &g),
        AUTH_OK);
    assert_int_equal(strlen(g.device_id), 64);
    auth_grant_clear(&g);

    static const char *const bad[] = {
        ",\"dev\":\"\"",
        ",\"dev\":\"a b\"",
        ",\"dev\":\"a/b\"",
        ",\"dev\":\"a.b\"",
        ",\"dev\":\"\\u00e9\"",
        ",\"dev\":7",
        ",\"dev\":null",
        ",\"dev\":[\"a\"]",
        ",\"dev\":\"01234567890123456789012345678901234567890123456789012345678901234\"",
        ",\"pairing\":true",
        ",\"dev\":\"abc\",\"pairing\":1",
        ",\"dev\":\"abc\",\"pairing\":\"true\"",
        ",\"dev\":\"abc\",\"pairing\":null",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(device_of(bad[i], &g), AUTH_INVALID);
        assert_null(g.user_id);
        auth_grant_clear(&g);
    }
    assert_true(auth_device_id_ok("x"));
    assert_false(auth_device_id_ok(""));
    assert_false(auth_device_id_ok(NULL));
    assert_false(auth_device_id_ok("a\nb"));
}

static void test_mint_device(void **state)
{
    struct auth_config cfg = hs_cfg();
    struct auth_grant g;
    char err[128] = "";
    char *tok = NULL;
    struct auth_mint_req req = {.workspace_id = WS,
                                .user_id = SUB,
                                .scopes = AUTH_SCOPE_READ,
                                .iat_s = NOW,
                                .ttl_s = 600,
                                .device_id = "0a1b2c3d4e5f",
                                .pairing = 1};

    assert_int_equal(auth_mint_hs256((const unsigned char *)SECRET, strlen(SECRET), &req, &tok, err,
                                     sizeof(err)),
                     0);
    assert_int_equal(check_len(&cfg, tok, strlen(tok), WS, NOW, &g), AUTH_OK);
    assert_string_equal(g.device_id, "0a1b2c3d4e5f");
    assert_int_equal(g.pairing, 1);
    auth_grant_clear(&g);
    free(tok);

    req.pairing = 0;
    assert_int_equal(auth_mint_hs256((const unsigned char *)SECRET, strlen(SECRET), &req, &tok, err,
                                     sizeof(err)),
                     0);
    assert_int_equal(check_len(&cfg, tok, strlen(tok), WS, NOW, &g), AUTH_OK);
    assert_string_equal(g.device_id, "0a1b2c3d4e5f");
    assert_int_equal(g.pairing, 0);
    auth_grant_clear(&g);
    free(tok);

    /* Refused: pairing without a device, a bad device id, no request. */
    req.device_id = NULL;
    req.pairing = 1;
    assert_int_equal(auth_mint_hs256((const unsigned char *)SECRET, strlen(SECRET), &req, &tok, err,
                                     sizeof(err)),
                     -1);
    assert_null(tok);
    req.device_id = "not valid";
    req.pairing = 0;
    assert_int_equal(auth_mint_hs256((const unsigned char *)SECRET, strlen(SECRET), &req, &tok, err,
                                     sizeof(err)),
                     -1);
    assert_int_equal(auth_mint_hs256((const unsigned char *)SECRET, strlen(SECRET), NULL, &tok, err,
                                     sizeof(err)),
                     -1);
}

/* ---- minting ----------------------------------------------------------- */

/* The old positional form, for the tests below. */
static int mint_pos(const unsigned char *secret, size_t secret_len, const char *ws,
                    const char *user, unsigned scopes, int64_t iat, int64_t ttl, const char *aud,
                    const char *iss, char **tok, char *err, size_t errlen)
{
    struct auth_mint_req req = {.workspace_id = ws,
                                .user_id = user,
                                .scopes = scopes,
                                .iat_s = iat,
                                .ttl_s = ttl,
                                .audience = aud,
                                .issuer = iss};
    return auth_mint_hs256(secret, secret_len, &req, tok, err, errlen);
}

static void test_mint_round_trip(void **state)
{
    struct auth_config cfg = hs_cfg();
    struct auth_grant g;
    char err[128] = "";
    char *tok = NULL;
    jwt_t *j = NULL;

    assert_int_equal(mint_pos((const unsigned char *)SECRET, strlen(SECRET), WS, SUB,
                              AUTH_SCOPE_READ | AUTH_SCOPE_RUN, NOW, 3600, AUD, ISS, &tok, err,
                              sizeof(err)),
                     0);
    assert_non_null(tok);
    cfg.audience = AUD;
    cfg.issuer = ISS;
    assert_int_equal(check_len(&cfg, tok, strlen(tok), WS, NOW + 10, &g), AUTH_OK);
    assert_string_equal(g.user_id, SUB);
    assert_int_equal(g.scopes, AUTH_SCOPE_READ | AUTH_SCOPE_RUN);
    assert_int_equal(g.exp, NOW + 3600);
    auth_grant_clear(&g);
    assert_int_equal(check(&cfg, tok, WS, NOW + 3600 + LEEWAY + 1), AUTH_EXPIRED);

    /* The claims, as another implementation would read them. */
    assert_int_equal(jwt_decode(&j, tok, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    assert_int_equal(jwt_get_alg(j), JWT_ALG_HS256);
    assert_string_equal(jwt_get_grant(j, "scope"), "read run");
    assert_string_equal(jwt_get_grant(j, "sub"), SUB);
    assert_string_equal(jwt_get_grant(j, "workspaceId"), WS);
    assert_string_equal(jwt_get_grant(j, "aud"), AUD);
    assert_string_equal(jwt_get_grant(j, "iss"), ISS);
    assert_int_equal(jwt_get_grant_int(j, "iat"), NOW);
    assert_int_equal(jwt_get_grant_int(j, "exp"), NOW + 3600);
    jwt_free(j);

    /* Another secret does not verify it. */
    cfg.key = (const unsigned char *)"other";
    cfg.key_len = 5;
    assert_int_equal(check(&cfg, tok, WS, NOW), AUTH_INVALID);
    free(tok);

    /* No aud/iss when empty. */
    assert_int_equal(mint_pos((const unsigned char *)SECRET, strlen(SECRET), WS, SUB,
                              AUTH_SCOPE_ALL, NOW, 60, "", NULL, &tok, err, sizeof(err)),
                     0);
    assert_int_equal(jwt_decode(&j, tok, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    assert_null(jwt_get_grant(j, "aud"));
    assert_null(jwt_get_grant(j, "iss"));
    assert_string_equal(jwt_get_grant(j, "scope"), "read run editor approve agent write");
    jwt_free(j);
    cfg = hs_cfg();
    assert_int_equal(check(&cfg, tok, WS, NOW), AUTH_OK);
    free(tok);
}

static void test_mint_errors(void **state)
{
    const unsigned char *s = (const unsigned char *)SECRET;
    size_t n = strlen(SECRET);
    char err[128];
    char *tok = (char *)"untouched";
    char long_user[300];

    memset(long_user, 'u', 257);
    long_user[257] = '\0';
#define MINT_FAILS(...)                                                                            \
    do {                                                                                           \
        err[0] = '\0';                                                                             \
        assert_int_equal(mint_pos(__VA_ARGS__, &tok, err, sizeof(err)), -1);                       \
        assert_null(tok);                                                                          \
        assert_true(strlen(err) > 0);                                                              \
        assert_null(strstr(err, SECRET));                                                          \
    } while (0)
    MINT_FAILS(s, 0, WS, SUB, AUTH_SCOPE_READ, NOW, 60, NULL, NULL);
    MINT_FAILS(NULL, 32, WS, SUB, AUTH_SCOPE_READ, NOW, 60, NULL, NULL);
    MINT_FAILS(s, n, "", SUB, AUTH_SCOPE_READ, NOW, 60, NULL, NULL);
    MINT_FAILS(s, n, NULL, SUB, AUTH_SCOPE_READ, NOW, 60, NULL, NULL);
    MINT_FAILS(s, n, WS, "", AUTH_SCOPE_READ, NOW, 60, NULL, NULL);
    MINT_FAILS(s, n, WS, NULL, AUTH_SCOPE_READ, NOW, 60, NULL, NULL);
    MINT_FAILS(s, n, WS, long_user, AUTH_SCOPE_READ, NOW, 60, NULL, NULL);
    MINT_FAILS(s, n, WS, "a\nb", AUTH_SCOPE_READ, NOW, 60, NULL, NULL);
    MINT_FAILS(s, n, WS, SUB, 0, NOW, 60, NULL, NULL);
    MINT_FAILS(s, n, WS, SUB, 1u << 8, NOW, 60, NULL, NULL);
    MINT_FAILS(s, n, WS, SUB, AUTH_SCOPE_READ, NOW, 0, NULL, NULL);
    MINT_FAILS(s, n, WS, SUB, AUTH_SCOPE_READ, NOW, -5, NULL, NULL);
    MINT_FAILS(s, n, WS, SUB, AUTH_SCOPE_READ, INT64_MAX - 10, 60, NULL, NULL);
#undef MINT_FAILS
    assert_int_equal(mint_pos(s, n, WS, SUB, AUTH_SCOPE_READ, NOW, 60, NULL, NULL, NULL, NULL, 0),
                     -1);
}

/* ---- small helpers ----------------------------------------------------- */

static void test_scopes_parse(void **state)
{
    unsigned m = 0;
    char err[128];

    assert_int_equal(auth_scopes_parse("read,run", &m, err, sizeof(err)), 0);
    assert_int_equal(m, AUTH_SCOPE_READ | AUTH_SCOPE_RUN);
    assert_int_equal(auth_scopes_parse("read run", &m, err, sizeof(err)), 0);
    assert_int_equal(m, AUTH_SCOPE_READ | AUTH_SCOPE_RUN);
    assert_int_equal(auth_scopes_parse(" read, run  editor ", &m, err, sizeof(err)), 0);
    assert_int_equal(m,
                     AUTH_SCOPE_ALL & ~(AUTH_SCOPE_APPROVE | AUTH_SCOPE_AGENT | AUTH_SCOPE_WRITE));
    assert_int_equal(auth_scopes_parse("read,run,editor,approve", &m, err, sizeof(err)), 0);
    assert_int_equal(m, AUTH_SCOPE_ALL & ~(AUTH_SCOPE_AGENT | AUTH_SCOPE_WRITE));
    assert_int_equal(auth_scopes_parse("read,run,editor,approve,agent", &m, err, sizeof(err)), 0);
    assert_int_equal(m, AUTH_SCOPE_ALL & ~AUTH_SCOPE_WRITE);
    assert_int_equal(auth_scopes_parse("read,run,editor,approve,agent,write", &m, err, sizeof(err)),
                     0);
    assert_int_equal(m, AUTH_SCOPE_ALL);
    assert_int_equal(auth_scopes_parse("write", &m, err, sizeof(err)), 0);
    assert_int_equal(m, AUTH_SCOPE_WRITE);
    assert_int_equal(auth_scopes_parse("editor", &m, err, sizeof(err)), 0);
    assert_int_equal(m, AUTH_SCOPE_EDITOR);
    assert_int_equal(auth_scopes_parse("read,read", &m, err, sizeof(err)), 0);
    assert_int_equal(m, AUTH_SCOPE_READ);

    m = 99;
    assert_int_equal(auth_scopes_parse("read admin", &m, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "'admin'"));
    assert_int_equal(m, 99); /* untouched on error */
    assert_int_equal(auth_scopes_parse("read,wrte", &m, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "wrte"));
    assert_int_equal(auth_scopes_parse("READ", &m, err, sizeof(err)), -1);
    assert_int_equal(auth_scopes_parse("", &m, err, sizeof(err)), -1);
    assert_int_equal(auth_scopes_parse("   ", &m, err, sizeof(err)), -1);
    assert_int_equal(auth_scopes_parse("read,,run", &m, err, sizeof(err)), -1);
    assert_int_equal(auth_scopes_parse("read,", &m, err, sizeof(err)), -1);
    assert_int_equal(auth_scopes_parse(",read", &m, err, sizeof(err)), -1);
    assert_int_equal(auth_scopes_parse(NULL, &m, err, sizeof(err)), -1);
    assert_int_equal(auth_scopes_parse("read", NULL, NULL, 0), -1);
    assert_int_equal(auth_scopes_parse("nope", &m, NULL, 0), -1);
}

static void test_scopes_format(void **state)
{
    char buf[AUTH_SCOPES_TEXT_MAX];
    char tiny[6];

    assert_string_equal(auth_scopes_format(AUTH_SCOPE_ALL, buf, sizeof(buf)),
                        "read run editor approve agent write");
    assert_string_equal(auth_scopes_format(AUTH_SCOPE_RUN, buf, sizeof(buf)), "run");
    assert_string_equal(auth_scopes_format(AUTH_SCOPE_EDITOR | AUTH_SCOPE_READ, buf, sizeof(buf)),
                        "read editor");
    assert_string_equal(auth_scopes_format(0, buf, sizeof(buf)), "");
    assert_string_equal(auth_scopes_format(1u << 9, buf, sizeof(buf)), "");
    assert_ptr_equal(auth_scopes_format(AUTH_SCOPE_READ, buf, sizeof(buf)), buf);
    /* Too small: nothing rather than a shorter list. */
    assert_string_equal(auth_scopes_format(AUTH_SCOPE_READ | AUTH_SCOPE_RUN, tiny, sizeof(tiny)),
                        "");
    assert_string_equal(auth_scopes_format(AUTH_SCOPE_READ, NULL, 0), "");

    /* format and parse agree. */
    for (unsigned s = 1; s <= AUTH_SCOPE_ALL; s++) {
        unsigned back = 0;
        assert_int_equal(auth_scopes_parse(auth_scopes_format(s, buf, sizeof(buf)), &back, NULL, 0),
                         0);
        assert_int_equal(back, s);
    }
}

static void test_names_and_codes(void **state)
{
    assert_string_equal(auth_result_code(AUTH_OK), "OK");
    assert_string_equal(auth_result_code(AUTH_INVALID), "AUTH_INVALID");
    assert_string_equal(auth_result_code(AUTH_EXPIRED), "AUTH_EXPIRED");
    assert_string_equal(auth_result_code(AUTH_WORKSPACE_MISMATCH), "WORKSPACE_MISMATCH");
    assert_string_equal(auth_result_code((enum auth_result)42), "AUTH_INVALID");

    assert_int_equal(auth_alg_parse("HS256"), AUTH_ALG_HS256);
    assert_int_equal(auth_alg_parse("RS256"), AUTH_ALG_RS256);
    assert_int_equal(auth_alg_parse("ES256"), AUTH_ALG_ES256);
    assert_int_equal(auth_alg_parse("hs256"), -1);
    assert_int_equal(auth_alg_parse("HS384"), -1);
    assert_int_equal(auth_alg_parse("none"), -1);
    assert_int_equal(auth_alg_parse(""), -1);
    assert_int_equal(auth_alg_parse(NULL), -1);
    assert_string_equal(auth_alg_name(AUTH_ALG_HS256), "HS256");
    assert_string_equal(auth_alg_name(AUTH_ALG_RS256), "RS256");
    assert_string_equal(auth_alg_name(AUTH_ALG_ES256), "ES256");
    assert_string_equal(auth_alg_name((enum auth_alg)9), "unknown");
}

static void test_ct_equal(void **state)
{
    assert_true(auth_ct_equal("abcdef", "abcdef", 6));
    assert_false(auth_ct_equal("abcdef", "abcdeg", 6));
    assert_false(auth_ct_equal("Abcdef", "abcdef", 6));
    assert_true(auth_ct_equal("abc", "abd", 2));
    assert_true(auth_ct_equal("x", "y", 0));
    assert_int_equal(auth_ct_equal("same", "same", 4), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hs256_valid),
        cmocka_unit_test(test_rs256_valid),
        cmocka_unit_test(test_es256_valid),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_hs384_when_hs256_pinned),
        cmocka_unit_test(test_other_alg_when_rs256_pinned),
        cmocka_unit_test(test_alg_confusion),
        cmocka_unit_test(test_alg_header_case),
        cmocka_unit_test(test_crit_header),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_empty_key),
        cmocka_unit_test(test_not_configured),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_nul_and_padding),
        cmocka_unit_test(test_huge_token),
        cmocka_unit_test(test_token_size_limit),
        cmocka_unit_test(test_payload_not_object),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_exp_far_future),
        cmocka_unit_test(test_derive_workspace_key),
        cmocka_unit_test(test_exp_bad),
        cmocka_unit_test(test_nbf_iat),
        cmocka_unit_test(test_sub),
        cmocka_unit_test(test_workspace),
        cmocka_unit_test(test_check_order),
        cmocka_unit_test(test_audience),
        cmocka_unit_test(test_issuer),
        cmocka_unit_test(test_scope_claim),
        cmocka_unit_test(test_device_claims),
        cmocka_unit_test(test_mint_device),
        cmocka_unit_test(test_mint_round_trip),
        cmocka_unit_test(test_mint_errors),
        cmocka_unit_test(test_scopes_parse),
        cmocka_unit_test(test_scopes_format),
        cmocka_unit_test(test_names_and_codes),
        cmocka_unit_test(test_ct_equal),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
