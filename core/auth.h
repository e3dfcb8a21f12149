/*
 * auth: JWT validation and minting for the data plane.
 *
 * libjwt 1.10 checks only the signature and trusts the header's alg, so every
 * claim and the algorithm pin are enforced here (see docs/protocol.md,
 * "Authentication"). Nothing in this module logs: callers get a result code
 * and a message that never contains the token or the key.
 */
#ifndef COMPANION_AUTH_H
#define COMPANION_AUTH_H

#include <stddef.h>
#include <stdint.h>

/* Latest time a token may name (exp, nbf, iat): 9999-12-31T23:59:59Z. Later
 * values are AUTH_INVALID, so every deadline computed from a claim (in
 * milliseconds, plus leeway) stays far from int64 overflow. */
#define AUTH_TIME_MAX_S 253402300799LL

/* Longest token accepted; anything longer is AUTH_INVALID without decoding. */
#define AUTH_TOKEN_MAX 8192

enum auth_alg { AUTH_ALG_HS256 = 0, AUTH_ALG_RS256, AUTH_ALG_ES256 };

enum auth_scope {
    AUTH_SCOPE_READ = 1u << 0,
    AUTH_SCOPE_RUN = 1u << 1,
    AUTH_SCOPE_EDITOR = 1u << 2,
    AUTH_SCOPE_APPROVE = 1u << 3, /* answer approvals (allow or deny risky actions) */
    AUTH_SCOPE_AGENT = 1u << 4,   /* prompt the workspace's coding agent: as strong as run */
    AUTH_SCOPE_WRITE = 1u << 5,   /* fs.write, fs.delete: with run, amounts to running code */
};
/* Every scope word there is (no token gets it implicitly: a token without a
 * `scope` claim is read only). */
#define AUTH_SCOPE_ALL                                                                             \
    (AUTH_SCOPE_READ | AUTH_SCOPE_RUN | AUTH_SCOPE_EDITOR | AUTH_SCOPE_APPROVE |                   \
     AUTH_SCOPE_AGENT | AUTH_SCOPE_WRITE)

enum auth_result {
    AUTH_OK = 0,
    AUTH_INVALID,            /* signature, alg, format, missing/ill-typed claims, nbf/iat ahead */
    AUTH_EXPIRED,            /* exp + leeway is past */
    AUTH_WORKSPACE_MISMATCH, /* claim missing, != message workspaceId or != helper's id */
};

/* Borrowed pointers: the caller keeps them alive while verifying. */
struct auth_config {
    enum auth_alg alg;
    const unsigned char *key; /* HS256: the secret's bytes; RS256/ES256: public key PEM */
    size_t key_len;           /* must be > 0: libjwt skips verification for an empty key */
    const char *audience;     /* NULL or "" = not checked */
    const char *issuer;       /* NULL or "" = not checked */
    int64_t leeway_s;
    const char *workspace_id; /* the helper's own workspace id */
};

struct auth_grant {
    char *user_id;   /* the `sub` claim (1-256 printable bytes), malloc'd */
    unsigned scopes; /* no `scope` claim: read; else only the known words, possibly none */
    int64_t exp;     /* seconds since the epoch */
};

/* Verifies `token` (len bytes, need not be NUL-terminated). `msg_workspace_id`
 * is the workspaceId the client sent beside the token (NULL when the client
 * sent none: then only the helper's id is compared). On AUTH_OK fills `out`
 * (release with auth_grant_clear). On failure writes a short reason to err. */
enum auth_result auth_verify(const struct auth_config *cfg, const char *token, size_t len,
                             const char *msg_workspace_id, int64_t now_s, struct auth_grant *out,
                             char *err, size_t errlen);
void auth_grant_clear(struct auth_grant *g);

/* Mints an HS256 token: sub, workspaceId, scope (space-separated), iat, exp,
 * and aud/iss when non-empty. *token_out is malloc'd. Returns 0 or -1. */
int auth_mint_hs256(const unsigned char *secret, size_t secret_len, const char *workspace_id,
                    const char *user_id, unsigned scopes, int64_t iat_s, int64_t ttl_s,
                    const char *audience, const char *issuer, char **token_out, char *err,
                    size_t errlen);

/* The HS256 key of one workspace, derived from the stored secret:
 * lowercase hex of HMAC-SHA256(key = secret, message =
 * "companion-workspace-key/v1:" + workspace_id). The extension derives the
 * same key from its own secret (vscode-ext/src/workspaceKey.ts), so a key
 * or a token of one workspace is worthless for any other, and the stored
 * secret itself never signs anything. Returns 0, or -1 (empty secret). */
#define AUTH_KEY_HEX_LEN 64
int auth_derive_workspace_key(const char *secret, size_t secret_len, const char *workspace_id,
                              char out[AUTH_KEY_HEX_LEN + 1]);

/* "read,run" or "read run" -> mask. Unknown words are an error (-1). */
int auth_scopes_parse(const char *text, unsigned *out, char *err, size_t errlen);
/* Writes "read run editor approve" style text; returns buf. AUTH_SCOPES_TEXT_MAX
 * bytes hold every scope. */
#define AUTH_SCOPES_TEXT_MAX 64
const char *auth_scopes_format(unsigned scopes, char *buf, size_t len);
/* Error code strings of the contract: "AUTH_INVALID", "AUTH_EXPIRED",
 * "WORKSPACE_MISMATCH" ("OK" for AUTH_OK). */
const char *auth_result_code(enum auth_result r);
/* Constant-time equality for secrets and digests: 1 when equal. */
int auth_ct_equal(const void *a, const void *b, size_t len);
/* "HS256" -> AUTH_ALG_HS256; -1 if unsupported. */
int auth_alg_parse(const char *name);
const char *auth_alg_name(enum auth_alg alg);

#endif
