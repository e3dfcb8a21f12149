/*
 * agents_cmd: the agents' WebSocket commands (agent.prompt, cancel, list,
 * conversations, new, follow, unfollow), and how a turn's updates reach
 * people: stream_chunk to the client that prompted, agent_update to the
 * conversation's followers, and each conversation's bounded ring of numbered
 * updates that agent.follow replays from `since`.
 *
 * Ownership: a ring entry owns its chunk's JSON text; followers are
 * borrowed clients, removed by agents_followers_drop when they go.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/agents.h"
#include "app/agents_impl.h"
#include "app/client.h"
#include "app/dispatch.h"
#include "core/settings.h"
#include "server/server.h"
#include "workspace/commands.h"

/* ---- sending ---- */

void agents_stream_error(struct client *c, const char *session, const char *error)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "type", json_object_new_string("error"));
    json_object_object_add(m, "sessionId", json_object_new_string(session));
    json_object_object_add(m, "error", json_object_new_string(error));
    session_send_obj(c->s, m);
}

/* The streaming dialect's shape of a turn's message: the seed server's
 * top-level content (the answer's text for a chunk; what happened for the
 * start and the end) and sessionId, with the native data kept beside. */
static void send_stream_dialect(struct turn *t, const char *type, json_object *data)
{
    struct client *c = t->c;
    const char *content = "";
    json_object *v = NULL;
    if (strcmp(type, "stream_start") == 0) {
        content = "Starting response stream";
    } else if (strcmp(type, "stream_chunk") == 0) {
        if (json_object_object_get_ex(data, "kind", &v) &&
            strcmp(json_object_get_string(v), "message") == 0 &&
            json_object_object_get_ex(data, "text", &v))
            content = json_object_get_string(v);
    } else if (strcmp(type, "stream_end") == 0) {
        content = "Response stream complete";
        if (json_object_object_get_ex(data, "stopReason", &v) &&
            strcmp(json_object_get_string(v), "error") == 0) {
            json_object *msg = NULL;
            json_object_object_get_ex(data, "message", &msg);
            agents_stream_error(c, t->stream_session,
                                msg ? json_object_get_string(msg) : "the agent failed");
        }
    }
    json_object *m = json_object_new_object();
    json_object_object_add(m, "type", json_object_new_string(type));
    json_object_object_add(m, "sessionId", json_object_new_string(t->stream_session));
    json_object_object_add(m, "content", json_object_new_string(content));
    json_object_object_add(m, "data", data);
    session_send_obj(c->s, m);
}

void agents_turn_announce(struct turn *t)
{
    struct conv *cv = t->cv;
    json_object *d = json_object_new_object();
    json_object_object_add(d, "conversation", json_object_new_string(cv->id));
    json_object_object_add(d, "agent", json_object_new_string(cv->agent));
    json_object_object_add(d, "turn", json_object_new_int(t->n));
    json_object_object_add(d, "queued", json_object_new_int(cv->queued - 1 + (cv->cur ? 1 : 0)));
    agents_send(t, "stream_start", d);
    agents_pump_now(cv->a);
}

void agents_send(struct turn *t, const char *type, json_object *data)
{
    if (!t->c || t->c->gone)
        json_object_put(data);
    else if (t->stream_session)
        send_stream_dialect(t, type, data);
    else
        session_send(t->c->s, type, t->id, data);
}

static void ring_push(struct conv *cv, int turn, json_object *chunk, uint64_t seq)
{
    size_t len = 0;
    const char *text = json_object_to_json_string_length(
        chunk, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    char *json = text ? malloc(len + 1) : NULL;
    if (!json)
        return;
    memcpy(json, text, len + 1);
    size_t bytes = len + 64; /* the entry and the allocation's overhead */
    if (cv->ring_n == cv->ring_cap) {
        size_t cap = cv->ring_cap ? cv->ring_cap * 2 : 16;
        struct agents_update *r = malloc(cap * sizeof(*r));
        if (!r) {
            free(json);
            return;
        }
        for (size_t i = 0; i < cv->ring_n; i++)
            r[i] = cv->ring[(cv->ring_head + i) % cv->ring_cap];
        free(cv->ring);
        cv->ring = r;
        cv->ring_cap = cap;
        cv->ring_head = 0;
    }
    struct agents_update *u = &cv->ring[(cv->ring_head + cv->ring_n) % cv->ring_cap];
    u->seq = seq;
    u->turn = turn;
    u->json = json;
    u->bytes = bytes;
    cv->ring_n++;
    cv->ring_bytes += bytes;
    /* The oldest go first; the newest stays even when it alone is larger. */
    while (cv->ring_bytes > AGENTS_RING_BYTES && cv->ring_n > 1) {
        struct agents_update *old = &cv->ring[cv->ring_head];
        cv->ring_bytes -= old->bytes;
        free(old->json);
        cv->ring_head = (cv->ring_head + 1) % cv->ring_cap;
        cv->ring_n--;
    }
}

void agents_ring_free(struct conv *cv)
{
    for (size_t i = 0; i < cv->ring_n; i++)
        free(cv->ring[(cv->ring_head + i) % cv->ring_cap].json);
    free(cv->ring);
    cv->ring = NULL;
    cv->ring_n = cv->ring_cap = cv->ring_head = cv->ring_bytes = 0;
}

static json_object *update_msg(const struct conv *cv, uint64_t seq, int turn, json_object *chunk)
{
    json_object *d = json_object_new_object();
    json_object_object_add(d, "conversation", json_object_new_string(cv->id));
    json_object_object_add(d, "seq", json_object_new_int64((int64_t)seq));
    json_object_object_add(d, "turn", json_object_new_int(turn));
    json_object_object_add(d, "chunk", json_object_get(chunk));
    return d;
}

void agents_emit_followers(struct conv *cv, int turn, json_object *chunk)
{
    uint64_t seq = ++cv->seq;
    ring_push(cv, turn, chunk, seq);
    for (size_t i = 0; i < cv->n_followers; i++) {
        struct client *f = cv->followers[i];
        if (!f->gone && !session_is_closing(f->s))
            session_send(f->s, "agent_update", NULL, update_msg(cv, seq, turn, chunk));
    }
    json_object_put(chunk);
}

void agents_emit(struct turn *t, json_object *chunk)
{
    if (t->chat)
        agents_chat_chunk(t, chunk);
    else
        agents_send(t, "stream_chunk", json_object_get(chunk));
    agents_emit_followers(t->cv, t->n, chunk);
}

void agents_followers_drop(struct conv *cv, struct client *c)
{
    for (size_t i = 0; i < cv->n_followers; i++)
        if (cv->followers[i] == c) {
            cv->followers[i] = cv->followers[--cv->n_followers];
            return;
        }
}

static int follows(const struct conv *cv, const struct client *c)
{
    for (size_t i = 0; i < cv->n_followers; i++)
        if (cv->followers[i] == c)
            return 1;
    return 0;
}

/* ---- arguments ---- */

/* args.key as a string: 1 (out set), 0 absent or null, -1 wrong (answered). */
static int arg_string(struct client *c, json_object *id, json_object *args, const char *key,
                      const char **out)
{
    json_object *v = NULL;
    *out = NULL;
    if (!args || !json_object_object_get_ex(args, key, &v) ||
        json_object_is_type(v, json_type_null))
        return 0;
    if (!json_object_is_type(v, json_type_string)) {
        char msg[80];
        snprintf(msg, sizeof(msg), "%s: expected a string", key);
        dispatch_reply_command(c, id, NULL, "INVALID_ARGS", msg);
        return -1;
    }
    *out = json_object_get_string(v);
    return 1;
}

/* The agent a client names (or the default), answered when it is unusable. */
static const struct settings_agent *pick_agent(struct agents *a, struct client *c, json_object *id,
                                               const char *name)
{
    const struct settings_agent *sa =
        name ? settings_find_agent(a->env.st, name) : settings_default_agent(a->env.st);
    if (!sa) {
        dispatch_reply_command(c, id, NULL, name ? "UNKNOWN_AGENT" : "NOT_CONFIGURED",
                               name ? "no agent by that name is configured"
                                    : "no agent is configured (settings: agents)");
        return NULL;
    }
    const char *why = agents_unavailable(a, sa->name);
    if (why) {
        dispatch_reply_command(c, id, NULL, "UNAVAILABLE", why);
        return NULL;
    }
    return sa;
}

static struct conv *pick_conv(struct agents *a, struct client *c, json_object *id, const char *cid)
{
    struct conv *cv = agents_conv_find(a, cid);
    if (!cv)
        dispatch_reply_command(c, id, NULL, "UNKNOWN_CONVERSATION",
                               "no such conversation (it may have been forgotten to make room)");
    return cv;
}

/* ---- the commands ---- */

static void cmd_prompt(struct agents *a, struct client *c, json_object *id, json_object *args)
{
    const char *text = NULL, *agent = NULL, *cid = NULL;
    json_object *tv = NULL;
    if (arg_string(c, id, args, "text", &text) < 0 ||
        arg_string(c, id, args, "agent", &agent) < 0 ||
        arg_string(c, id, args, "conversation", &cid) < 0)
        return;
    json_object_object_get_ex(args, "text", &tv);
    size_t len = text ? (size_t)json_object_get_string_len(tv) : 0;
    if (!text || !len || len > AGENTS_PROMPT_MAX || strlen(text) != len) {
        char msg[96];
        snprintf(msg, sizeof(msg), "text: expected 1 to %d bytes of text without NUL",
                 AGENTS_PROMPT_MAX);
        dispatch_reply_command(c, id, NULL, "INVALID_ARGS", msg);
        return;
    }
    const char *code = NULL, *message = NULL;
    struct conv *cv = NULL;
    if (cid) {
        if (!(cv = pick_conv(a, c, id, cid)))
            return;
        if (agent && strcmp(agent, cv->agent) != 0) {
            dispatch_reply_command(c, id, NULL, "INVALID_ARGS",
                                   "agent: the conversation belongs to another agent");
            return;
        }
        if (!pick_agent(a, c, id, cv->agent))
            return;
    } else {
        const struct settings_agent *sa = pick_agent(a, c, id, agent);
        if (!sa)
            return;
        if (!(cv = agents_conv_new(a, sa->name, &code, &message))) {
            dispatch_reply_command(c, id, NULL, code, message);
            return;
        }
    }
    struct turn *t = agents_turn_new(cv, c, id, text, &code, &message);
    if (!t) {
        dispatch_reply_command(c, id, NULL, code, message);
        return;
    }
    agents_turn_announce(t);
}

/* The conversation of the turn c started last, still running or queued. */
static struct conv *latest_of(struct agents *a, struct client *c)
{
    struct conv *best = NULL;
    int64_t best_ms = -1;
    for (struct conv *cv = a->convs; cv; cv = cv->next) {
        int mine = cv->cur && cv->cur->c == c;
        for (struct turn *t = cv->queue; t && !mine; t = t->next)
            mine = t->c == c;
        if (mine && cv->last_ms >= best_ms) {
            best = cv;
            best_ms = cv->last_ms;
        }
    }
    return best;
}

static void cmd_cancel(struct agents *a, struct client *c, json_object *id, json_object *args)
{
    const char *cid = NULL;
    if (arg_string(c, id, args, "conversation", &cid) < 0)
        return;
    struct conv *cv = cid ? pick_conv(a, c, id, cid) : latest_of(a, c);
    if (cid && !cv)
        return;
    json_object *r = json_object_new_object();
    json_object_object_add(r, "conversation", cv ? json_object_new_string(cv->id) : NULL);
    json_object_object_add(r, "cancelled", json_object_new_boolean(cv && agents_conv_cancel(cv)));
    dispatch_reply_command(c, id, r, NULL, NULL);
}

static void cmd_list(struct agents *a, struct client *c, json_object *id)
{
    const struct settings *st = a->env.st;
    const struct settings_agent *dflt = settings_default_agent(st);
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < st->agents_n; i++) {
        const struct settings_agent *sa = &st->agents[i];
        struct agent_rt *rt = NULL;
        for (rt = a->rts; rt && strcmp(rt->name, sa->name) != 0; rt = rt->next)
            ;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(sa->name));
        json_object_object_add(o, "type",
                               json_object_new_string(settings_agent_type_name(sa->type)));
        json_object_object_add(o, "default", json_object_new_boolean(sa == dflt));
        const char *state = sa->type == AGENT_TYPE_VSCODE_LM
                                ? (agents_unavailable(a, sa->name) ? "unavailable" : "ready")
                                : agents_rt_state(a, rt);
        json_object_object_add(o, "state", json_object_new_string(state));
        if (rt && rt->last_error[0])
            json_object_object_add(o, "lastError", json_object_new_string(rt->last_error));
        if (rt)
            json_object_object_add(o, "starts", json_object_new_int(rt->starts));
        json_object_array_add(arr, o);
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "agents", arr);
    dispatch_reply_command(c, id, r, NULL, NULL);
}

static void cmd_conversations(struct agents *a, struct client *c, json_object *id)
{
    json_object *arr = json_object_new_array();
    for (struct conv *cv = a->convs; cv; cv = cv->next) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(cv->id));
        json_object_object_add(o, "agent", json_object_new_string(cv->agent));
        json_object_object_add(o, "state", json_object_new_string(cv->cur ? "running" : "idle"));
        json_object_object_add(o, "turns", json_object_new_int(cv->turns));
        json_object_object_add(o, "queued", json_object_new_int(cv->queued));
        json_object_object_add(o, "seq", json_object_new_int64((int64_t)cv->seq));
        json_object_object_add(o, "followers", json_object_new_int((int)cv->n_followers));
        json_object_object_add(o, "createdAt", json_object_new_int64(cv->created_ms));
        json_object_object_add(o, "lastActivityAt", json_object_new_int64(cv->last_ms));
        json_object_array_add(arr, o);
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "conversations", arr);
    dispatch_reply_command(c, id, r, NULL, NULL);
}

static void cmd_new(struct agents *a, struct client *c, json_object *id, json_object *args)
{
    const char *agent = NULL, *code = NULL, *message = NULL;
    if (arg_string(c, id, args, "agent", &agent) < 0)
        return;
    const struct settings_agent *sa = pick_agent(a, c, id, agent);
    if (!sa)
        return;
    struct conv *cv = agents_conv_new(a, sa->name, &code, &message);
    if (!cv) {
        dispatch_reply_command(c, id, NULL, code, message);
        return;
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "conversation", json_object_new_string(cv->id));
    json_object_object_add(r, "agent", json_object_new_string(cv->agent));
    dispatch_reply_command(c, id, r, NULL, NULL);
}

static void cmd_follow(struct agents *a, struct client *c, json_object *id, json_object *args,
                       int on)
{
    const char *cid = NULL;
    json_object *since_o = NULL;
    if (arg_string(c, id, args, "conversation", &cid) < 0)
        return;
    if (!cid) {
        dispatch_reply_command(c, id, NULL, "INVALID_ARGS", "conversation: required");
        return;
    }
    int64_t since = 0;
    if (args && json_object_object_get_ex(args, "since", &since_o) &&
        !json_object_is_type(since_o, json_type_null)) {
        if (!json_object_is_type(since_o, json_type_int) || json_object_get_int64(since_o) < 0) {
            dispatch_reply_command(c, id, NULL, "INVALID_ARGS",
                                   "since: expected a non-negative integer");
            return;
        }
        since = json_object_get_int64(since_o);
    }
    struct conv *cv = pick_conv(a, c, id, cid);
    if (!cv)
        return;
    if (!on) {
        agents_followers_drop(cv, c);
        if (cv->cur)
            agents_watch_check(cv->cur);
        json_object *r = json_object_new_object();
        json_object_object_add(r, "conversation", json_object_new_string(cv->id));
        dispatch_reply_command(c, id, r, NULL, NULL);
        return;
    }
    if (!follows(cv, c)) {
        if (cv->n_followers == cv->cap_followers) {
            size_t cap = cv->cap_followers ? cv->cap_followers * 2 : 4;
            struct client **f = realloc(cv->followers, cap * sizeof(*f));
            if (!f) {
                dispatch_reply_command(c, id, NULL, "PROCESSING_ERROR", "out of memory");
                return;
            }
            cv->followers = f;
            cv->cap_followers = cap;
        }
        cv->followers[cv->n_followers++] = c;
    }
    uint64_t oldest = cv->ring_n ? cv->ring[cv->ring_head].seq : cv->seq + 1;
    json_object *r = json_object_new_object();
    json_object_object_add(r, "conversation", json_object_new_string(cv->id));
    json_object_object_add(r, "agent", json_object_new_string(cv->agent));
    json_object_object_add(r, "seq", json_object_new_int64((int64_t)cv->seq));
    json_object_object_add(r, "oldest", json_object_new_int64((int64_t)oldest));
    /* Updates after `since` that are no longer kept: the follower knows. */
    json_object_object_add(
        r, "truncated",
        json_object_new_boolean((uint64_t)since + 1 < oldest && (uint64_t)since < cv->seq));
    json_object_object_add(r, "state", json_object_new_string(cv->cur ? "running" : "idle"));
    dispatch_reply_command(c, id, r, NULL, NULL);
    for (size_t i = 0; i < cv->ring_n && !session_is_closing(c->s); i++) {
        const struct agents_update *u = &cv->ring[(cv->ring_head + i) % cv->ring_cap];
        if (u->seq <= (uint64_t)since)
            continue;
        /* Our own output: it parses (NULL only when memory runs out). */
        json_object *chunk = json_tokener_parse(u->json);
        if (!chunk)
            continue;
        session_send(c->s, "agent_update", NULL, update_msg(cv, u->seq, u->turn, chunk));
        json_object_put(chunk);
    }
    if (cv->cur)
        agents_watch_check(cv->cur);
}

void agents_command(struct agents *a, struct client *c, int op, json_object *id, json_object *args)
{
    switch ((enum cmd_agent_op)op) {
    case CMD_AGENT_PROMPT:
        cmd_prompt(a, c, id, args);
        return;
    case CMD_AGENT_CANCEL:
        cmd_cancel(a, c, id, args);
        return;
    case CMD_AGENT_LIST:
        cmd_list(a, c, id);
        return;
    case CMD_AGENT_CONVERSATIONS:
        cmd_conversations(a, c, id);
        return;
    case CMD_AGENT_NEW:
        cmd_new(a, c, id, args);
        return;
    case CMD_AGENT_FOLLOW:
    case CMD_AGENT_UNFOLLOW:
        cmd_follow(a, c, id, args, op == CMD_AGENT_FOLLOW);
        return;
    case CMD_AGENT_NONE:
        break;
    }
    dispatch_reply_command(c, id, NULL, "UNKNOWN_COMMAND", "unknown command");
}
