/*
 * devices: the registry of the devices that hold tokens for one workspace
 * (issue 19): their name, user, scopes, dates, whether they are revoked and,
 * for pairing tokens, whether the single use is spent.
 *
 * Persisted in $XDG_STATE_HOME/companion/devices-<workspace id>.json (0600,
 * written atomically by secret_write_private). Every change is a
 * read-modify-write under flock(devices-<id>.lock), so the CLI and a running
 * helper can both write; a running helper also watches the state folder
 * (inotify) so a revocation made by the CLI closes its sessions at once.
 * The file holds no token and no secret.
 *
 * Tokens without a `dev` claim (minted before devices existed) and tokens
 * naming an id the registry does not know (minted by whoever holds the
 * key) are admitted; they are listed from memory ("t-" + 12 hex of the
 * token's SHA-256 for the former) and written to the file only once
 * revoked. A registry file that cannot be read or written never stops the
 * helper: it keeps a registry in memory, leaves the file alone and says so
 * (devices_problem()).
 *
 * Ownership: the registry owns its entries; the env's members are borrowed.
 */
#ifndef COMPANION_DEVICES_H
#define COMPANION_DEVICES_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/auth.h"

struct devices;
struct logger;
struct loop;

#define DEVICES_MAX           512
#define DEVICES_ID_LEN        12 /* hex digits of an id the registry makes */
#define DEVICES_NAME_MAX      64 /* characters (UTF-8), printable */
#define DEVICES_PAIRING_TTL_S 600

struct devices_env {
    struct loop *loop;  /* NULL: no watch (the CLI) */
    struct logger *log; /* NULL: problems are printed to stderr */
    /* Called after any change to the registry, ours or another process's. */
    void (*changed)(void *ud);
    void *ud;
};

enum devices_verdict {
    DEVICES_ADMIT = 0,
    DEVICES_REVOKED,         /* the device was revoked */
    DEVICES_PAIRING_USED,    /* a pairing token whose single use is spent */
    DEVICES_PAIRING_UNKNOWN, /* a pairing token for a device the registry does not know */
};

/* What devices_admit tells about the device it admitted. */
struct devices_admitted {
    char id[AUTH_DEVICE_ID_MAX + 1];
    int paired_now;       /* a pairing token's first use: mint the device token */
    int64_t device_ttl_s; /* the device token's lifetime when paired_now */
};

struct devices_add_req {
    const char *name;    /* 1-64 printable characters */
    const char *user_id; /* the tokens' sub */
    unsigned scopes;
    int64_t ttl_s; /* the (device) token's lifetime */
    int pairing;   /* a pairing token first (DEVICES_PAIRING_TTL_S), then the device token */
    int64_t now_ms;
};

struct devices *devices_new(const struct devices_env *env);
void devices_free(struct devices *d);
/* Binds the registry to a workspace (loads its file; again when the id
 * changes). Returns 0; a problem with the file is kept, not returned. */
int devices_bind(struct devices *d, const char *workspace_id);

/* Registers a new device; id_out gets its id. -1 with err when the name is
 * invalid, the registry is full or not bound. */
int devices_add(struct devices *d, const struct devices_add_req *req,
                char id_out[DEVICES_ID_LEN + 1], char *err, size_t errlen);
/* The registry's word on a verified token. token_sha_hex: SHA-256 of the
 * token in hex (names tokens without `dev`). */
enum devices_verdict devices_admit(struct devices *d, const struct auth_grant *g,
                                   const char *token_sha_hex, int64_t now_ms,
                                   struct devices_admitted *out);
/* 0, or -1 when no device has that id. */
int devices_revoke(struct devices *d, const char *id, int64_t now_ms);
int devices_rename(struct devices *d, const char *id, const char *name);
/* 1 when that device is revoked. */
int devices_is_revoked(const struct devices *d, const char *id);
/* The device's name, or NULL when unknown. */
const char *devices_name(const struct devices *d, const char *id);
/* {devices:[...], problem?}; connected(ud, id) counts live sessions. */
json_object *devices_list_json(struct devices *d, int64_t now_ms,
                               int (*connected)(void *ud, const char *id), void *ud);
/* The registry file's problem (memory-only registry), or NULL. */
const char *devices_problem(const struct devices *d);
/* 1 when `name` is 1-64 printable characters (valid UTF-8, no controls). */
int devices_name_ok(const char *name);

#endif
