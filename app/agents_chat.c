/*
 * agents_chat: the agents in chat mode (WhatsApp and other chat bridges).
 * A chat has one current conversation per user with the default agent;
 * `new` starts another, `stop` cancels. A turn's updates are merged by
 * workspace/chat_stream into a few whole messages, sent at most one every
 * AGENTS_CHAT_INTERVAL ms; what is left goes when the turn ends, the last
 * message saying how it ended.
 *
 * Ownership: a chat turn owns its chat_stream and its pacing timer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/agents.h"
#include "app/agents_impl.h"
#include "app/client.h"
#include "app/events.h"
#include "core/auth.h"
#include "core/clock.h"
#include "core/settings.h"
#include "server/loop.h"
#include "workspace/chat_stream.h"

static void send_text(struct turn *t, const char *text)
{
    if (t->c && !t->c->gone)
        events_chat_reply(t->c, t->id, text, 0);
}

/* One message when the pace allows it (and after a short wait, so what
 * comes together, a tool call and its approval, goes together), else the
 * timer is set for then. */
static void flush_paced(struct turn *t)
{
    if (!chat_stream_pending(t->chat))
        return;
    int64_t now = clock_mono_ms(), due = t->chat_sent_ms + AGENTS_CHAT_INTERVAL;
    if (!t->chat_due_ms) {
        t->chat_due_ms = now + AGENTS_CHAT_GATHER;
        if (due > t->chat_due_ms && t->chat_sent_ms)
            t->chat_due_ms = due;
    }
    if (now < t->chat_due_ms) {
        if (!loop_timer_armed(t->chat_timer))
            loop_timer_arm(t->chat_timer, t->chat_due_ms - now);
        return;
    }
    t->chat_due_ms = 0;
    char *text = chat_stream_take(t->chat);
    if (!text)
        return;
    send_text(t, text);
    free(text);
    t->chat_sent_ms = now;
    if (chat_stream_pending(t->chat)) {
        t->chat_due_ms = now + AGENTS_CHAT_INTERVAL;
        loop_timer_arm(t->chat_timer, AGENTS_CHAT_INTERVAL);
    }
}

static void chat_timer_cb(void *arg)
{
    flush_paced(arg);
}

void agents_chat_chunk(struct turn *t, json_object *chunk)
{
    /* A chat that hears of approvals already (notify on, approve) is not
     * told twice. */
    json_object *kind = NULL;
    if (t->c && t->c->chat_notify && (t->c->scopes & AUTH_SCOPE_APPROVE) &&
        json_object_object_get_ex(chunk, "kind", &kind) &&
        strncmp(json_object_get_string(kind), "permission", 10) == 0)
        return;
    chat_stream_add(t->chat, chunk);
    flush_paced(t);
}

void agents_chat_end(struct turn *t, const char *stop_reason, const char *message)
{
    loop_timer_cancel(t->chat_timer);
    chat_stream_end(t->chat, stop_reason, message);
    char *text;
    while ((text = chat_stream_take(t->chat))) {
        send_text(t, text);
        free(text);
    }
}

void agents_chat_free(struct turn *t)
{
    if (t->chat_timer)
        loop_timer_free(t->chat_timer);
    t->chat_timer = NULL;
    chat_stream_free(t->chat);
    t->chat = NULL;
}

/* Whose conversation a chat message continues: the token's user, and the
 * chat it came from when the bridge names one (one bridge serves many). */
static char *chat_owner(const struct client *c, const char *key)
{
    size_t n = strlen(c->user_id) + (key ? strlen(key) : 0) + 2;
    char *o = malloc(n);
    if (o)
        snprintf(o, n, "%s\x1f%s", c->user_id, key ? key : "");
    return o;
}

static struct conv *chat_conv(struct agents *a, const char *owner, const char *agent)
{
    struct conv *best = NULL;
    for (struct conv *cv = a->convs; cv; cv = cv->next)
        if (cv->chat_user && strcmp(cv->chat_user, owner) == 0 && strcmp(cv->agent, agent) == 0 &&
            (!best || cv->last_ms >= best->last_ms))
            best = cv;
    return best;
}

void agents_chat(struct agents *a, struct client *c, json_object *id, const char *key,
                 const char *text, int fresh)
{
    const struct settings_agent *sa = settings_default_agent(a->env.st);
    if (!sa) {
        events_chat_reply(c, id, "No agent is configured for this workspace.", 0);
        return;
    }
    const char *why = agents_unavailable(a, sa->name);
    if (why) {
        char msg[200];
        snprintf(msg, sizeof(msg), "The agent cannot answer now: %s.", why);
        events_chat_reply(c, id, msg, 0);
        return;
    }
    const char *code = NULL, *message = NULL;
    char *owner = chat_owner(c, key);
    if (!owner) {
        events_chat_reply(c, id, "Out of memory.", 0);
        return;
    }
    struct conv *cv = fresh ? NULL : chat_conv(a, owner, sa->name);
    if (cv) {
        free(owner);
    } else {
        if (!(cv = agents_conv_new(a, sa->name, &code, &message))) {
            free(owner);
            char msg[200];
            snprintf(msg, sizeof(msg), "The agent cannot take a new conversation: %s.",
                     message ? message : "out of memory");
            events_chat_reply(c, id, msg, 0);
            return;
        }
        cv->chat_user = owner;
    }
    if (!text) {
        char msg[160];
        snprintf(msg, sizeof(msg), "New conversation with %s. Your next message goes to it.",
                 sa->name);
        events_chat_reply(c, id, msg, 0);
        return;
    }
    struct turn *t = agents_turn_new(cv, c, id, text, &code, &message);
    if (!t) {
        char msg[200];
        snprintf(msg, sizeof(msg), "Not sent: %s.", message);
        events_chat_reply(c, id, msg, 0);
        return;
    }
    /* A chat turn before it starts. */
    t->chat = chat_stream_new();
    t->chat_timer = loop_timer_new(a->env.loop, chat_timer_cb, t);
    if (!t->chat || !t->chat_timer) {
        agents_conv_cancel(cv);
        return;
    }
    if (cv->cur || cv->queued > 1) {
        char msg[160];
        snprintf(msg, sizeof(msg), "Queued: %s is still answering. Say \"stop\" to cancel it.",
                 sa->name);
        events_chat_reply(c, id, msg, 0);
    }
    agents_pump_now(a);
}

void agents_chat_stop(struct agents *a, struct client *c, json_object *id, const char *key)
{
    const char *dflt = agents_default_name(a);
    char *owner = chat_owner(c, key);
    struct conv *cv = dflt && owner ? chat_conv(a, owner, dflt) : NULL;
    free(owner);
    if (cv && (cv->cur || cv->queue)) {
        agents_conv_cancel(cv);
        events_chat_reply(c, id, "Stopping the agent…", 0);
    } else {
        events_chat_reply(c, id, "The agent is not answering anything now.", 0);
    }
}

void agents_user_message(struct agents *a, struct client *c, const char *session, const char *text)
{
    const struct settings_agent *sa = settings_default_agent(a->env.st);
    if (!sa) {
        agents_stream_error(c, session, "no agent is configured for this workspace");
        return;
    }
    const char *why = agents_unavailable(a, sa->name);
    if (why) {
        char msg[200];
        snprintf(msg, sizeof(msg), "the agent cannot answer now: %s", why);
        agents_stream_error(c, session, msg);
        return;
    }
    /* One conversation per (user, sessionId): a reconnecting client that
     * sends its old sessionId goes on where it was. */
    char key[160];
    snprintf(key, sizeof(key), "stream:%s", session);
    const char *code = NULL, *message = NULL;
    char *owner = chat_owner(c, key);
    if (!owner) {
        agents_stream_error(c, session, "out of memory");
        return;
    }
    struct conv *cv = chat_conv(a, owner, sa->name);
    if (cv) {
        free(owner);
    } else {
        if (!(cv = agents_conv_new(a, sa->name, &code, &message))) {
            free(owner);
            agents_stream_error(c, session, message ? message : "out of memory");
            return;
        }
        cv->chat_user = owner;
    }
    struct turn *t = agents_turn_new(cv, c, NULL, text, &code, &message);
    if (!t) {
        agents_stream_error(c, session, message ? message : "out of memory");
        return;
    }
    if (!(t->stream_session = strdup(session))) {
        agents_conv_cancel(cv);
        return;
    }
    agents_turn_announce(t);
}
