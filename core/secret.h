/*
 * secret: the standalone HS256 secret file ($XDG_CONFIG_HOME/companion/secret).
 *
 * Made on first use from the kernel's CSPRNG, folder 0700, file 0600, written
 * to a temporary file and renamed so a full disk never leaves a half secret.
 * A file readable by group or others is refused.
 */
#ifndef COMPANION_SECRET_H
#define COMPANION_SECRET_H

#include <stddef.h>

/* Resolves the default path: $XDG_CONFIG_HOME/companion/secret, else
 * $HOME/.config/companion/secret. Returns 0 or -1 (no HOME). */
int secret_default_path(char *buf, size_t len, char *err, size_t errlen);

/* Loads the secret at `path`, creating it (and its folder) when missing and
 * `create` is set. *out is a malloc'd NUL-terminated string of printable
 * characters (64 hex digits when made here); the HS256 key is its bytes.
 * Returns 0, or -1 with a message in err. */
int secret_load(const char *path, int create, char **out, char *err, size_t errlen);

/* $XDG_STATE_HOME/companion/NAME (else ~/.local/state/companion/NAME). */
int secret_state_path(const char *name, char *buf, size_t len, char *err, size_t errlen);

/* Writes data to path atomically (temporary file, fsync, rename), mode 0600,
 * in a folder made 0700 when missing and refused when others may write it. */
int secret_write_private(const char *path, const char *data, size_t len, char *err, size_t errlen);

/* Opens (creating, mode 0600) $XDG_STATE_HOME/companion/NAME for reading and
 * writing, in a private folder made when missing; refuses a file that is not
 * the user's own and private. Returns the fd or -1 with err. */
int secret_state_open(const char *name, char *err, size_t errlen);

/* Overwrites and frees a secret string. */
void secret_free(char *secret);

#endif
