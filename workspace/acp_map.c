/*
 * acp_map: session/update -> stream_chunk, permission options -> decisions
 * (see acp_map.h).
 */
#include "workspace/acp_map.h"

#include <string.h>

static const char *str_of(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static json_object *text_chunk(const char *kind, json_object *update)
{
    json_object *content = NULL;
    if (!json_object_object_get_ex(update, "content", &content))
        return NULL;
    const char *type = str_of(content, "type"), *text = str_of(content, "text");
    if (!type || strcmp(type, "text") != 0 || !text)
        return NULL;
    json_object *c = json_object_new_object();
    json_object_object_add(c, "kind", json_object_new_string(kind));
    json_object_object_add(c, "text", json_object_new_string(text));
    return c;
}

static json_object *tool_chunk(json_object *update)
{
    const char *id = str_of(update, "toolCallId");
    if (!id)
        return NULL;
    const char *title = str_of(update, "title"), *status = str_of(update, "status");
    json_object *c = json_object_new_object();
    json_object_object_add(c, "kind", json_object_new_string("tool"));
    json_object_object_add(c, "toolCallId", json_object_new_string(id));
    if (title)
        json_object_object_add(c, "title", json_object_new_string(title));
    if (status)
        json_object_object_add(c, "status", json_object_new_string(status));
    return c;
}

static json_object *plan_chunk(json_object *update)
{
    json_object *entries = NULL;
    if (!json_object_object_get_ex(update, "entries", &entries) ||
        !json_object_is_type(entries, json_type_array))
        return NULL;
    json_object *out = json_object_new_array();
    size_t n = json_object_array_length(entries);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(entries, i);
        const char *content = str_of(e, "content"), *status = str_of(e, "status");
        if (!content)
            continue;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "content", json_object_new_string(content));
        json_object_object_add(o, "status", json_object_new_string(status ? status : "pending"));
        json_object_array_add(out, o);
    }
    json_object *c = json_object_new_object();
    json_object_object_add(c, "kind", json_object_new_string("plan"));
    json_object_object_add(c, "entries", out);
    return c;
}

json_object *acp_map_update(json_object *update)
{
    const char *kind = str_of(update, "sessionUpdate");
    if (!kind)
        return NULL;
    if (strcmp(kind, "agent_message_chunk") == 0)
        return text_chunk("message", update);
    if (strcmp(kind, "agent_thought_chunk") == 0)
        return text_chunk("thought", update);
    if (strcmp(kind, "tool_call") == 0 || strcmp(kind, "tool_call_update") == 0)
        return tool_chunk(update);
    if (strcmp(kind, "plan") == 0)
        return plan_chunk(update);
    return NULL;
}

static void keep(char *dst, const char *id, unsigned bit, unsigned *offered)
{
    if (*offered & bit)
        return; /* the first option of a kind wins */
    size_t len = strlen(id);
    if (len == 0 || len > ACP_OPTION_ID_MAX)
        return;
    memcpy(dst, id, len + 1);
    *offered |= bit;
}

int acp_map_permission(json_object *params, struct acp_permission_options *out)
{
    memset(out, 0, sizeof *out);
    json_object *options = NULL;
    if (!json_object_is_type(params, json_type_object) ||
        !json_object_object_get_ex(params, "options", &options) ||
        !json_object_is_type(options, json_type_array))
        return -1;
    char reject_always[ACP_OPTION_ID_MAX + 1] = "";
    unsigned always_reject = 0;
    size_t n = json_object_array_length(options);
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(options, i);
        const char *id = str_of(o, "optionId"), *kind = str_of(o, "kind");
        if (!id || !kind)
            return -1;
        if (strcmp(kind, "allow_once") == 0)
            keep(out->allow_once, id, 1u, &out->offered);
        else if (strcmp(kind, "allow_always") == 0)
            keep(out->allow_always, id, 2u, &out->offered);
        else if (strcmp(kind, "reject_once") == 0)
            keep(out->deny, id, 4u, &out->offered);
        else if (strcmp(kind, "reject_always") == 0)
            keep(reject_always, id, 1u, &always_reject);
    }
    if (!(out->offered & 4u) && always_reject)
        keep(out->deny, reject_always, 4u, &out->offered);
    return 0;
}

const char *acp_map_option_id(const struct acp_permission_options *o, unsigned decision)
{
    if (!(o->offered & decision))
        return NULL;
    switch (decision) {
    case 1u:
        return o->allow_once;
    case 2u:
        return o->allow_always;
    case 4u:
        return o->deny;
    default:
        return NULL;
    }
}
