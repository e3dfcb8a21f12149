/*
 * acp_map: what the helper makes of an ACP agent's messages, as pure JSON
 * transforms (no I/O, unit-tested): a session/update becomes the
 * stream_chunk a client sees, and a session/request_permission's options
 * become the decisions an approval offers, each bound to the agent's own
 * optionId.
 *
 * Ownership: inputs are borrowed; a returned json_object is the caller's.
 */
#ifndef COMPANION_ACP_MAP_H
#define COMPANION_ACP_MAP_H

#include <json-c/json.h>

/* Longest optionId kept (longer ones are not offered). */
#define ACP_OPTION_ID_MAX 128

/* {kind:"message"|"thought", text}, {kind:"tool", toolCallId, title,
 * status}, {kind:"plan", entries:[{content, status}]} from the `update` of
 * a session/update; NULL for kinds a phone does not show (user message
 * echoes, mode and command lists) and for malformed updates. */
json_object *acp_map_update(json_object *update);

/* The agent's options for one permission request, by decision. */
struct acp_permission_options {
    unsigned offered; /* enum approval_decision bits (1 allow_once, 2 allow_always, 4 deny) */
    char allow_once[ACP_OPTION_ID_MAX + 1];
    char allow_always[ACP_OPTION_ID_MAX + 1];
    char deny[ACP_OPTION_ID_MAX + 1]; /* its reject_once, else its reject_always */
};

/* Reads params.options of session/request_permission. Returns 0, or -1 when
 * options is missing or not an array of {optionId, kind}. */
int acp_map_permission(json_object *params, struct acp_permission_options *out);

/* The optionId for a decision bit, or NULL when the agent did not offer it. */
const char *acp_map_option_id(const struct acp_permission_options *o, unsigned decision);

#endif
