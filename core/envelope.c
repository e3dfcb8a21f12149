/*
 * envelope: parsing and validating a data-plane message (see envelope.h).
 */
#include "core/envelope.h"

#include <stdio.h>
#include <string.h>

/* json-c's strict mode still takes raw control characters inside strings,
 * which RFC 8259 forbids; outside strings only JSON whitespace may appear.
 * A NUL written as \u0000 is refused too: C compares strings up to the
 * first NUL, so "ping\u0000x" would be taken for "ping" and a checked value
 * would differ from the one forwarded. */
static const char *controls_ok(const char *msg, size_t len)
{
    int in_string = 0, escaped = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (in_string) {
            if (c < 0x20)
                return "control character in a string";
            if (escaped) {
                escaped = 0;
                if (c == 'u' && len - i > 4 && memcmp(msg + i + 1, "0000", 4) == 0)
                    return "a string holds a NUL character (\\u0000)";
            } else if (c == '\\')
                escaped = 1;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            return "control character outside a string";
        }
    }
    return NULL;
}

json_tokener *envelope_tokener_new(void)
{
    json_tokener *tok = json_tokener_new_ex(ENVELOPE_DEPTH);
    if (tok)
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    return tok;
}

/* Parses with json-c's strict mode and UTF-8 validation; NULL on error with
 * a description the client can act on. */
json_object *envelope_json_parse_with(json_tokener *kept, const char *msg, size_t len,
                                      const char **why)
{
    if ((*why = controls_ok(msg, len)) != NULL)
        return NULL;
    json_tokener *tok = kept && len < ENVELOPE_REUSE_MAX ? kept : envelope_tokener_new();
    if (!tok) {
        *why = "out of memory";
        return NULL;
    }
    json_object *o = json_tokener_parse_ex(tok, msg, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    if (e == json_tokener_continue) {
        *why = "incomplete JSON";
        json_object_put(o);
        o = NULL;
    } else if (e != json_tokener_success) {
        *why = json_tokener_error_desc(e);
        json_object_put(o);
        o = NULL;
    } else if (json_tokener_get_parse_end(tok) != len) {
        *why = "trailing data after JSON";
        json_object_put(o);
        o = NULL;
    }
    if (tok != kept)
        json_tokener_free(tok);
    else
        json_tokener_reset(tok); /* clean for the next message: no partial object kept */
    return o;
}

json_object *envelope_json_parse(const char *msg, size_t len, const char **why)
{
    return envelope_json_parse_with(NULL, msg, len, why);
}

int envelope_parse(const char *msg, size_t len, struct envelope *env, char *why, size_t whylen)
{
    return envelope_parse_with(NULL, msg, len, env, why, whylen);
}

int envelope_parse_with(json_tokener *tok, const char *msg, size_t len, struct envelope *env,
                        char *why, size_t whylen)
{
    memset(env, 0, sizeof(*env));
    const char *jwhy = NULL;
    env->root = envelope_json_parse_with(tok, msg, len, &jwhy);
    if (!env->root) {
        snprintf(why, whylen, "invalid JSON: %s", jwhy);
        return -1;
    }
    json_object *root = env->root, *type_o = NULL, *id = NULL, *data = NULL;
    if (!json_object_is_type(root, json_type_object)) {
        snprintf(why, whylen, "a message must be a JSON object");
        return -1;
    }
    /* The id first, so that every refusal below can echo it. */
    if (json_object_object_get_ex(root, "id", &id) && !json_object_is_type(id, json_type_null)) {
        if (!(json_object_is_type(id, json_type_string) &&
              json_object_get_string_len(id) <= ENVELOPE_ID_MAX) &&
            !json_object_is_type(id, json_type_int)) {
            snprintf(why, whylen, "id: expected a string of at most 256 characters or an integer");
            return -1;
        }
        env->id = id;
    }
    if (!json_object_object_get_ex(root, "type", &type_o) ||
        !json_object_is_type(type_o, json_type_string)) {
        snprintf(why, whylen, "type: expected a string");
        return -1;
    }
    if (json_object_object_get_ex(root, "data", &data) &&
        !json_object_is_type(data, json_type_null)) {
        if (!json_object_is_type(data, json_type_object)) {
            snprintf(why, whylen, "data: expected an object");
            return -1;
        }
        env->data = data;
    }
    env->type = json_object_get_string(type_o);
    return 0;
}

void envelope_clear(struct envelope *env)
{
    json_object_put(env->root);
    memset(env, 0, sizeof(*env));
}
