/*
 * envelope: a data-plane message from bytes to {type, id, data}, with every
 * check the protocol makes before a message means anything: strict JSON
 * (json-c strict mode, UTF-8, no raw control characters in strings, nothing
 * after the value), an object, `id` a string of at most 256 bytes or an
 * integer, `type` a string, `data` an object. No lws, so it is fuzzed as is.
 */
#ifndef COMPANION_ENVELOPE_H
#define COMPANION_ENVELOPE_H

#include <stddef.h>
#include <json-c/json.h>

#define ENVELOPE_ID_MAX 256
#define ENVELOPE_DEPTH  32

struct envelope {
    json_object *root; /* owned: envelope_clear releases it */
    json_object *id;   /* borrowed from root; NULL when absent, null or refused */
    json_object *data; /* borrowed; NULL when absent or null */
    const char *type;  /* borrowed; NULL when refused */
};

/* 0 with *env filled, or -1 with why set to a message for the client (and
 * env->id set when it could be read, so the refusal can echo it). In both
 * cases envelope_clear must be called. */
int envelope_parse(const char *msg, size_t len, struct envelope *env, char *why, size_t whylen);
void envelope_clear(struct envelope *env);

/* Any JSON value under the same rules (strict, UTF-8, no raw control
 * characters or \u0000, nothing after it, depth ENVELOPE_DEPTH): owned
 * value, or NULL with *why a static description. */
json_object *envelope_json_parse(const char *msg, size_t len, const char **why);

/* The same two with a tokener the caller keeps between messages (made by
 * envelope_tokener_new, freed with json_tokener_free): a message then costs
 * no tokener allocation. A message of ENVELOPE_REUSE_MAX bytes or more
 * still gets a tokener of its own, so the kept one never holds on to a
 * large message's buffer. tok may be NULL. */
#define ENVELOPE_REUSE_MAX 65536
json_tokener *envelope_tokener_new(void);
int envelope_parse_with(json_tokener *tok, const char *msg, size_t len, struct envelope *env,
                        char *why, size_t whylen);
json_object *envelope_json_parse_with(json_tokener *tok, const char *msg, size_t len,
                                      const char **why);

#endif
